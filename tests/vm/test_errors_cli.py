"""Clear one-line errors (no host, unpairable guest, clocks that cannot be reconciled, bad
--pair), the user pairing fallback (identity clock, said so), and the ``tracewatch vm`` CLI
(--mi, --csv, --html) on the OneQemuKvm stub."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import tracewatch
from tracewatch.cli.main import main
from tracewatch.vm import (
    ClockReconcileError,
    NoKvmEventsError,
    PairingError,
    UnpairedGuestError,
    analyze,
    parse_pair,
)

from .stubs import STUBS, kvm, statedump, stub_to_ctf, switch, write_ctf

HOST, GUEST = STUBS / "OneQemuKvm" / "host.xml", STUBS / "OneQemuKvm" / "guest.xml"
VMSYNC = ("vmsync_gh_host", "vmsync_hg_host", "vmsync_gh_guest", "vmsync_hg_guest")


def test_host_without_kvm_events(tmp_path: Path) -> None:
    h = stub_to_ctf(HOST, tmp_path / "host", "host", drop=("kvm_entry", "kvm_exit"))
    g = stub_to_ctf(GUEST, tmp_path / "guest", "guest")
    with pytest.raises(NoKvmEventsError,
                       match=r"record kvm_entry/kvm_exit: lttng enable-event -k "
                             r"kvm_x86_entry,kvm_x86_exit"):
        analyze(tracewatch.open(str(h), str(g)))


def test_unpairable_guest_then_user_pairing(tmp_path: Path) -> None:
    h = stub_to_ctf(HOST, tmp_path / "host", "host", drop=VMSYNC)
    g = stub_to_ctf(GUEST, tmp_path / "guest", "guest", drop=VMSYNC)
    ts = tracewatch.open(str(h), str(g))
    with pytest.raises(UnpairedGuestError, match=r"cannot pair guest .*no vmsync_gh_guest.*"
                                                 r"--pair guest=QEMU_PID \(VM processes: 31\)"):
        analyze(ts)
    rep = analyze(ts, {"guest": 31})
    (vm,) = rep.states.setup.vms
    assert vm.paired_by == "user" and vm.transform.is_identity
    assert any("identity" in n for n in rep.notes)
    assert rep.preemptions["start"].tolist() == [100, 300]
    with pytest.raises(PairingError, match="no VM process 99"):
        analyze(ts, {"guest": 99})
    with pytest.raises(PairingError, match="no guest trace has that hostname"):
        analyze(ts, {"guest": 31, "nosuchvm": 31})


def test_clocks_cannot_be_reconciled(tmp_path: Path) -> None:
    # the guest receives each host->guest message 30 ns earlier: before the host sent it
    # (in any linear time base consistent with the guest->host messages): the hulls cross
    h = stub_to_ctf(HOST, tmp_path / "host", "host")
    g = stub_to_ctf(GUEST, tmp_path / "guest", "guest", shift={"vmsync_hg_guest": -30})
    with pytest.raises(ClockReconcileError, match="cannot reconcile the clocks of guest guest "
                                                  "and host host: .*FAILed"):
        analyze(tracewatch.open(str(h), str(g)))


def test_parse_pair() -> None:
    assert parse_pair("vm-1=4242") == ("vm-1", 4242)
    with pytest.raises(PairingError, match="GUEST_HOST=QEMU_PID"):
        parse_pair("vm1")


def test_vcpu_pid_from_statedump_two_vcpus(tmp_path: Path) -> None:
    """Two vCPU threads (41, 42) of qemu process 40 (statedump): one VM with 2 vCPUs; a
    vCPU thread that blocks (prev_state 1: halted) is not preempted."""
    ev = [statedump(0, 40, 40, "qemu-system-x86"), statedump(0, 41, 40, "CPU 0/KVM"),
          statedump(0, 42, 40, "CPU 1/KVM"),
          switch(10, 0, (0, "swapper/0"), (41, "CPU 0/KVM")),
          switch(10, 1, (0, "swapper/1"), (42, "CPU 1/KVM")),
          kvm(12, 0, "kvm_entry", 0), kvm(12, 1, "kvm_entry", 1),
          kvm(20, 0, "kvm_exit", 1), switch(21, 0, (41, "CPU 0/KVM"), (77, "burnP6")),
          kvm(30, 1, "kvm_exit", 12), switch(31, 1, (42, "CPU 1/KVM"), (0, "swapper/1"), 1),
          switch(50, 0, (77, "burnP6"), (41, "CPU 0/KVM")), kvm(52, 0, "kvm_entry", 0),
          switch(60, 1, (0, "swapper/1"), (42, "CPU 1/KVM")), kvm(61, 1, "kvm_entry", 1),
          kvm(70, 0, "kvm_exit", 1), kvm(70, 1, "kvm_exit", 1)]
    h = write_ctf(tmp_path / "host", "host", ev)
    rep = analyze(tracewatch.open(str(h)))
    (vm,) = rep.states.setup.vms
    assert (vm.name, vm.pid, vm.comm, vm.vcpus) == ("qemu-40", 40, "qemu-system-x86",
                                                    {0: 41, 1: 42})
    p = rep.preemptions
    assert list(zip(p["vcpu"].tolist(), p["start"].tolist(), p["end"].tolist(),
                    p["culprit"].tolist(), strict=True)) == [(0, 21, 50, "burnP6 (77)")]
    ex1 = rep.states.of("qemu-40", 1).exits
    # HLT exit 30 .. entry 61: blocked 31..60 is not hypervisor time: 31 - 29 = 2 ns on CPU
    assert (ex1["reason"].tolist(), ex1["wall_ns"].tolist(), ex1["hypervisor_ns"].tolist()) == \
        ([12], [31], [2])


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = stub_to_ctf(GUEST, tmp_path / "guest", "guest")
    assert main(["vm", str(g)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("tracewatch: error: no host trace")


def test_cli_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = stub_to_ctf(HOST, tmp_path / "host", "host")
    g = stub_to_ctf(GUEST, tmp_path / "guest", "guest")
    assert main(["vm", str(h), str(g), "--no-sync", "--mi"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["vms"][0]["name"] == "guest" and doc["vms"][0]["paired_by"] == "vmsync"
    pre = doc["tables"]["preemptions"]
    assert [r[pre["columns"].index("start")] for r in pre["rows"]] == [100, 300]
    assert main(["vm", str(h), str(g), "--no-sync", "--csv", "--table", "exits"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["reason_name"] == "MSR_WRITE" and rows[0]["total_ns"] == "65"
    html_file = tmp_path / "t.html"
    assert main(["vm", str(h), str(g), "--no-sync", "--html", str(html_file)]) == 0
    out = capsys.readouterr().out
    assert "Steal" in out and "any (30)" in out and html_file.read_text().count("tl-data") >= 1
