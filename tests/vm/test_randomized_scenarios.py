"""100 randomized simulated scenarios (``tracewatch.sim``) checked against their ground truth.

Each seed draws a small scenario: 1 host of 2-4 CPUs, 1-3 guests of 1-2 vCPUs, 100-200 ms,
a CPU hog, guest clock offsets up to +-10 hours and drifts up to +-100 ppm, sync exchange
latencies between 1 us and 100 us (guest -> host and host -> guest), TCP traffic between paired
guests or none.  For each:

- :func:`tracewatch.sync.synchronize`: the accuracy interval reported for every trace but the
  reference's (slope and offset bounds of its transform to its parent machine in the spanning
  tree, ``t_parent = a * t + b``; the reference, smallest clock uuid, is often a guest, so
  guest -> host, host -> guest and guest -> guest edges are all checked) contains the true
  transform (exact, from the clocks of ``truth.json``), and the fitted line is within its
  reported ``time_error_ns`` of the truth at both ends of the span of the sync points (the
  slope and offset intervals alone are loose: ~1e-3 wide over 100-200 ms with latencies up to
  100 us, the offset being at t = 0, ~1.7e18 ns before the traces);
- :func:`tracewatch.vm.analyze`: every completed vCPU preemption (start, end, culprit host tid
  and, for another VM's vCPU, its VM and guest task) equals the truth to the ns, so does every
  vCPU's preempted time (complete preemptions; the vcpus table adds the one still open at the
  end) and every guest thread's steal time (runs that ended before the last guest switch of
  its vCPU, as the truth counts them).

A failure names the seed: ``pytest tests/vm/test_randomized_scenarios.py -k seed17``.
"""

from __future__ import annotations

import json
import random
import shutil
from fractions import Fraction
from itertools import zip_longest
from pathlib import Path
from typing import Any

import pytest

import tracewatch
from tracewatch.sim import build_scenario, simulate
from tracewatch.sim.model import MS, US, S, Scenario
from tracewatch.sync import synchronize
from tracewatch.vm import PREEMPTED, analyze

N_SEEDS = 100


def scenario(seed: int) -> Scenario:
    rng = random.Random(f"randomized:{seed}")
    cpus = rng.randint(2, 4)
    hog = (f"burnP6:cpu={rng.randrange(cpus)}:on={rng.randint(10, 60)}ms"
           f":off={rng.randint(10, 60)}ms:prio={rng.choice([0, 20])}"
           f":phase={rng.randint(0, 40)}ms")
    sc = build_scenario(guests=rng.randint(1, 3), vcpus=rng.randint(1, 2), cpus=cpus,
                        duration=rng.randint(100, 200) * MS, seed=seed, hogs=[hog],
                        sync_period=rng.randint(4, 20) * MS,
                        tcp_period=rng.choice([0, 5 * MS, 20 * MS]))
    for g in sc.guests:
        g.offset_ns = rng.choice([rng.randint(-10 * 3600 * S, 10 * 3600 * S),
                                  rng.randint(-S, S)])
        g.drift_ppb = rng.choice([rng.randint(-100_000, 100_000), 100_000, -100_000, 0])
        lo = rng.randint(1 * US, 100 * US)
        g.gh_latency = (lo, rng.randint(lo, 100 * US))
        lo = rng.randint(1 * US, 100 * US)
        g.hg_latency = (lo, rng.randint(lo, 100 * US))
    sc.validate()
    return sc


def _line(clock: dict[str, Any]) -> tuple[Fraction, Fraction]:
    """``(a, b)`` with ``t_machine = a * t_host + b`` (exact, floor left out)."""
    fh = clock["from_host"]
    return Fraction(fh["slope"]), Fraction(fh["offset"])


def check_sync(ts: tracewatch.TraceSet, truth: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    machines = {str(Path(m["dir"])): m for m in truth["machines"].values()}
    res = synchronize(ts)
    dir_of = {t.host_id: Path(t.path).name for t in res.traces}
    for t in res.traces:
        d = Path(t.path).name
        m = machines[d]
        if t.reference:  # the reference machine (smallest clock uuid) may be a guest
            continue
        if t.accuracy is None or t.parent is None:
            errors.append(f"{d}: no accuracy (quality {t.quality}, {t.pairs} pairs)")
            continue
        a_c, b_c = _line(m["clock"])
        a_p, b_p = _line(machines[dir_of[t.parent]]["clock"])
        # t_parent = a_p * t_host + b_p, t_host = (t_child - b_c) / a_c
        slope = a_p / a_c
        offset = b_p - a_p * b_c / a_c
        acc = t.accuracy
        # the fit (child time as a function of the parent's) is within its reported time
        # error of the truth over the span of the sync points (+1 ns: guest clocks floor)
        edge = res.edges.get((t.parent, t.host_id)) or res.edges[(t.host_id, t.parent)]
        fit = edge.towards(t.parent)
        assert fit.line is not None and fit.accuracy is not None and fit.x_range is not None
        for x in fit.x_range:
            err = abs(fit.line(x) - (x - offset) / slope)
            if err > fit.accuracy.time_error_ns + 1:
                errors.append(f"{d} -> {dir_of[t.parent]}: at parent time {x} the fit is "
                              f"{float(err):.1f} ns from the truth, reported time error "
                              f"{fit.accuracy.time_error_ns:.1f} ns")
        if not acc.slope_min <= slope <= acc.slope_max:
            errors.append(f"{d} -> {dir_of[t.parent]}: true slope {float(slope)!r} outside "
                          f"[{float(acc.slope_min)!r}, {float(acc.slope_max)!r}]")
        if not acc.offset_min <= offset <= acc.offset_max:
            errors.append(f"{d} -> {dir_of[t.parent]}: true offset {float(offset)} outside "
                          f"[{float(acc.offset_min)}, {float(acc.offset_max)}]")
    return errors


def check_vm(ts: tracewatch.TraceSet, truth: dict[str, Any]) -> tuple[list[str], int]:
    errors: list[str] = []
    rep = analyze(ts)
    vcpus = {(r["vm"], r["vcpu"]): r for r in rep.vcpus.rows()}
    n = 0
    for key, g in truth["machines"].items():
        if key == "host":
            continue
        vm = g["hostname"]
        for v in g["vcpus"]:
            st = rep.states.of(vm, v["vcpu"])
            pre = st.preemptions
            p = pre.take(pre["complete"])
            got = [(int(r["start"]), int(r["end"]), int(r["culprit_tid"])) for r in p.rows()]
            want = [(x["start"], x["end"], x["culprit"]["tid"]) for x in v["preemptions"]]
            if got != want:
                bad = next((i, a, b) for i, (a, b) in enumerate(zip_longest(got, want))
                           if a != b)
                errors.append(f"{vm} vCPU {v['vcpu']}: preemptions differ ({len(got)} vs "
                              f"{len(want)} true; first difference #{bad[0]}: got {bad[1]}, "
                              f"true {bad[2]})")
                continue
            for row, x in zip(p.rows(), v["preemptions"], strict=True):
                c = x["culprit"]
                gc = (row["culprit_vm"], row["culprit_guest_tid"], row["culprit_guest_comm"]) \
                    if "vm" in c else (row["culprit_vm"], row["culprit_comm"])
                wc = (c["vm"], c["guest_tid"], c["guest_comm"]) if "vm" in c else ("", c["comm"])
                if gc != wc:
                    errors.append(f"{vm} vCPU {v['vcpu']}: preemption at {x['start']}: "
                                  f"culprit {gc}, true {wc}")
            n += len(got)
            complete = int(p["duration"].sum())
            if complete != v["preempted_ns"]:
                errors.append(f"{vm} vCPU {v['vcpu']}: preempted {complete} ns, true "
                              f"{v['preempted_ns']}")
            open_ns = int(pre["duration"][~pre["complete"]].sum())
            table = int(vcpus[(vm, v["vcpu"])]["preempted_ns"])
            if table != v["preempted_ns"] + open_ns:
                errors.append(f"{vm} vCPU {v['vcpu']}: vcpus table preempted_ns {table}, true "
                              f"{v['preempted_ns']} + {open_ns} still open at the end")
        for t in g["threads"]:
            st = rep.states.of(vm, t["vcpu"])
            last = int(rep.states.timelines[(vm, t["vcpu"])].t[-1])
            iv = st.intervals
            sel = (iv["guest_tid"] == t["tid"]) & (iv["end"] <= last)
            d, s = (iv["end"] - iv["start"])[sel], iv["state"][sel]
            steal = int(d[(s & PREEMPTED) != 0].sum())
            if steal != t["preempted_ns"]:
                errors.append(f"{vm} thread {t['tid']} ({t['comm']}): steal {steal} ns, true "
                              f"{t['preempted_ns']}")
    return errors, n


@pytest.mark.parametrize("seed", range(N_SEEDS), ids=lambda s: f"seed{s}")
def test_randomized_scenario(seed: int, tmp_path: Path) -> None:
    sc = scenario(seed)
    out = tmp_path / "run"
    try:
        res = simulate(sc, out)
        truth = json.loads(res.truth_path.read_text())
        dirs = [str(out / m["dir"]) for m in truth["machines"].values()]
        ts = tracewatch.open(*dirs)
        errors = check_sync(ts, truth)
        vm_errors, _ = check_vm(tracewatch.open(*dirs), truth)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    errors += vm_errors
    desc = (f"seed={seed}: {len(sc.guests)} guests x {sc.guests[0].vcpus} vCPUs on {sc.cpus} "
            f"CPUs, {sc.duration // MS} ms")
    assert not errors, desc + "\n" + "\n".join(errors[:20])
