"""Against the simulator's ground truth (``tracewatch.sim``: 1 host, 2 guests of 2 vCPUs on 2
CPUs, a host hog, random guest clock offsets and drifts): every completed vCPU preemption
interval and its culprit, every vCPU's preempted time, every guest thread's steal and
hypervisor time and the per exit reason hypervisor statistics equal the truth to the ns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracewatch
from tracewatch.vm import EXIT_REASONS, HALTED, IN_HYPERVISOR, PREEMPTED, VmReport, analyze

NAME_OF = {v: k for k, v in EXIT_REASONS.items()}


def _simulator() -> Any:
    try:
        import tracewatch.sim as sim
    except Exception as e:  # pragma: no cover - depends on the simulator's progress
        pytest.skip(f"tracewatch.sim is not importable yet ({type(e).__name__}: {e})")
    for name in ("simulate", "build_scenario"):
        if not hasattr(sim, name):  # pragma: no cover
            pytest.skip(f"tracewatch.sim has no {name}() yet")
    return sim


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[VmReport, dict[str, Any]]:
    sim = _simulator()
    out = tmp_path_factory.mktemp("sim") / "run"
    sc = sim.build_scenario(guests=2, vcpus=2, cpus=2, duration=300_000_000, seed=5,
                            hogs=["burnP6:cpu=0:on=40ms:off=60ms:prio=0:phase=20ms"])
    res = sim.simulate(sc, out)
    truth = json.loads(Path(res.truth_path).read_text())
    if not truth.get("format", "").startswith("tracewatch-sim-truth/"):  # pragma: no cover
        pytest.skip(f"unknown truth format {truth.get('format')!r}")
    guests = [str(out / m["dir"]) for k, m in truth["machines"].items() if k != "host"]
    rep = analyze(tracewatch.open(str(out / "host"), *guests))
    return rep, truth


def _guests(truth: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for k, m in truth["machines"].items() if k != "host"]


def test_pairing(run: tuple[VmReport, dict[str, Any]]) -> None:
    rep, truth = run
    vms = {vm.name: vm for vm in rep.states.setup.vms}
    for g in _guests(truth):
        vm = vms[g["hostname"]]
        assert (vm.pid, vm.vm_uid, vm.paired_by) == (g["qemu_pid"], g["vm_uid"], "vmsync")
        assert [vm.vcpus[i] for i in range(len(g["vcpu_tids"]))] == g["vcpu_tids"]


def test_preemptions_and_culprits(run: tuple[VmReport, dict[str, Any]]) -> None:
    rep, truth = run
    n = 0
    for g in _guests(truth):
        for v in g["vcpus"]:
            p = rep.states.of(g["hostname"], v["vcpu"]).preemptions.take(
                rep.states.of(g["hostname"], v["vcpu"]).preemptions["complete"])
            got = list(zip(p["start"].tolist(), p["end"].tolist(), strict=True))
            assert got == [(x["start"], x["end"]) for x in v["preemptions"]]
            assert int(p["duration"].sum()) == v["preempted_ns"]
            for row, x in zip(p.rows(), v["preemptions"], strict=True):
                c = x["culprit"]
                assert row["culprit_tid"] == c["tid"]
                if "vm" in c:
                    assert (row["culprit_vm"], row["culprit_guest_tid"],
                            row["culprit_guest_comm"]) == (c["vm"], c["guest_tid"],
                                                           c["guest_comm"])
                else:
                    assert (row["culprit_vm"], row["culprit_comm"]) == ("", c["comm"])
            n += len(got)
    assert n > 20  # the scenario does preempt


def test_steal_and_hypervisor_per_thread(run: tuple[VmReport, dict[str, Any]]) -> None:
    """Truth per guest thread counts the runs that ended (switched out) before the end: so
    do we, up to the last guest switch of each vCPU."""
    rep, truth = run
    steal_total = 0
    for g in _guests(truth):
        for t in g["threads"]:
            st = rep.states.of(g["hostname"], t["vcpu"])
            last = int(rep.states.timelines[(g["hostname"], t["vcpu"])].t[-1])
            iv = st.intervals
            sel = (iv["guest_tid"] == t["tid"]) & (iv["end"] <= last)
            d, s = (iv["end"] - iv["start"])[sel], iv["state"][sel]
            assert int(d[(s & PREEMPTED) != 0].sum()) == t["preempted_ns"], t
            hv = (s & (IN_HYPERVISOR | PREEMPTED | HALTED)) == IN_HYPERVISOR
            assert int(d[hv].sum()) == t["hypervisor_ns"], t
            # apparent time depends on guest switch times: as exact as the clock mapping
            assert abs(int(d.sum()) - t["apparent_ns"]) <= max(10_000, t["apparent_ns"] // 10_000)
            steal_total += t["preempted_ns"]
    assert steal_total > 0


def test_hypervisor_by_exit_reason(run: tuple[VmReport, dict[str, Any]]) -> None:
    rep, truth = run
    for g in _guests(truth):
        for v in g["vcpus"]:
            ex = rep.states.of(g["hostname"], v["vcpu"]).exits
            for reason, s in v["hypervisor"].items():
                sel = ex["reason"] == NAME_OF[reason]
                hv = ex["hypervisor_ns"][sel]
                assert (int(sel.sum()), int(hv.sum()), int(ex["wall_ns"][sel].sum()),
                        int(hv.min()), int(hv.max())) == \
                    (s["count"], s["total_ns"], s["wall_ns"], s["min_ns"], s["max_ns"]), reason
            assert set(np.unique(ex["reason"]).tolist()) == {NAME_OF[r] for r in v["hypervisor"]}
