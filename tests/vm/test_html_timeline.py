"""The HTML timeline: self-contained (no network), and in headless Chromium (when
``/usr/bin/chromium`` exists: ``make test`` installs it) it loads, draws one row per vCPU with
its preemption marks, and a screenshot is written."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import tracewatch
from tracewatch.output.html_timeline import vm_timeline_html
from tracewatch.vm import analyze

from .stubs import STUBS, kvm, read_stub, statedump, stub_to_ctf, switch, write_ctf

CHROMIUM = Path("/usr/bin/chromium")


def _two_vms(tmp_path: Path) -> list[str]:
    """The OneQemuKvm stub (VM "guest", 1 vCPU, on CPU 0) plus a second VM without a guest
    trace: qemu process 40 with vCPU threads 41, 42 on CPUs 1 and 2; 41 is preempted by 31
    (the first VM's vCPU thread) from 120 to 140."""
    d = tmp_path / "traces"
    host_ev = list(read_stub(STUBS / "OneQemuKvm" / "host.xml"))
    host_ev += [statedump(0, 40, 40, "qemu-system-x86"), statedump(0, 41, 40, "CPU 0/KVM"),
                statedump(0, 42, 40, "CPU 1/KVM"),
                switch(2, 1, (0, "swapper/1"), (41, "CPU 0/KVM")),
                switch(2, 2, (0, "swapper/2"), (42, "CPU 1/KVM")),
                kvm(3, 1, "kvm_entry", 0), kvm(3, 2, "kvm_entry", 1),
                kvm(110, 1, "kvm_exit", 1), switch(120, 1, (41, "CPU 0/KVM"), (31, "qemucpu1")),
                switch(140, 1, (31, "qemucpu1"), (41, "CPU 0/KVM")), kvm(142, 1, "kvm_entry", 0)]
    h = write_ctf(d / "host", "host", host_ev)
    g = stub_to_ctf(STUBS / "OneQemuKvm" / "guest.xml", d / "guest", "guest")
    return [str(h), str(g)]


@pytest.fixture()
def page(tmp_path: Path) -> Path:
    rep = analyze(tracewatch.open(*_two_vms(tmp_path)), sync=False)
    assert [(v.vm, v.vcpu) for v in rep.states.vcpus] == \
        [("guest", 0), ("qemu-40", 0), ("qemu-40", 1)]
    # the culprit of qemu-40 vCPU 0 is the other VM's vCPU thread and its guest task
    p = rep.preemptions
    assert list(zip(p["vm"].tolist(), p["start"].tolist(), p["end"].tolist(),
                    p["culprit"].tolist(), strict=True)) == [
        ("guest", 100, 120, "any (30)"),
        ("qemu-40", 120, 140, "VM guest vCPU 0 (host tid 31): any2 (131)"),
        ("guest", 140, 150, "VM qemu-40 vCPU 0 (host tid 41): ?"),
        ("guest", 300, 350, "any (30)")]
    out = tmp_path / "timeline.html"
    out.write_text(vm_timeline_html(rep))
    return out


def test_page_is_self_contained(page: Path) -> None:
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<script" in text and "tl-data" in text


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed "
                    "(apt-get install chromium; make test does it)")
def test_chromium_renders_one_row_per_vcpu(page: Path, tmp_path: Path) -> None:
    base = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
            "--window-size=1200,500", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    rows = re.findall(r'<g class="tl-row"[^>]*data-vm="([^"]*)"[^>]*data-vcpu="(\d+)"', dom)
    assert rows == [("guest", "0"), ("qemu-40", "0"), ("qemu-40", "1")]
    assert dom.count('class="tl-mark"') == 4  # 3 preemptions of guest vCPU 0, 1 of qemu-40
    assert "st-PREEMPTED" in dom and "st-RUNNING" in dom and 'class="tl-task"' in dom
    shot = tmp_path / "timeline.png"
    subprocess.run([*base, f"--screenshot={shot}", page.as_uri()], capture_output=True,
                   timeout=120, check=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
