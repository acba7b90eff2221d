"""The three ways to get the VM analysis with clock sync give the same report: one pass
(``analyze(ts)``: the sync events are matched from the batches read for the VM analysis),
reusing a :func:`tracewatch.sync.synchronize` result (its matches and hull fits), and the
plain two-pass way (the VM events read alone, then the sync events matched by
:func:`tracewatch.sync.match_events` in a pass of their own, over merged batches).  And
reading stream by stream, then ordering, equals reading the merged batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tracewatch
from tracewatch.sim import simulate
from tracewatch.sync import MatchResult, SyncColumns, synchronize
from tracewatch.vm import (
    Machine,
    VmReport,
    analyze,
    discover,
    read_vm_events,
    vcpu_states,
    vm_report,
)

from .test_randomized_scenarios import scenario


def _digest(rep: VmReport) -> dict[str, object]:
    out: dict[str, object] = {
        "vms": [(vm.name, vm.pid, vm.transform, vm.refined, vm.clock_note)
                for vm in rep.states.setup.vms],
        "notes": rep.notes, "range": (rep.states.start, rep.states.end)}
    for name, t in rep.tables().items():
        out[name] = {c: t[c].tolist() for c in t.columns}
    for v in rep.states.vcpus:
        out[f"{v.vm}/{v.vcpu}"] = [v.intervals[c].tolist() for c in v.intervals.columns]
    return out


@pytest.mark.parametrize("seed", [1, 5, 9])
def test_same_report_three_ways(seed: int, tmp_path: Path) -> None:
    simulate(scenario(seed), tmp_path / "run")
    dirs = [str(p) for p in sorted((tmp_path / "run").iterdir()) if p.is_dir()]
    one = analyze(tracewatch.open(*dirs))
    ts = tracewatch.open(*dirs)
    reused = analyze(ts, sync_result=synchronize(ts))
    ts = tracewatch.open(*dirs)
    plain = vm_report(vcpu_states(discover(ts, machines=read_vm_events(ts))))
    assert any(vm.transform.slope != 1 for vm in one.states.setup.vms)  # clocks were fitted
    assert np.sum(one.preemptions["duration"]) > 0
    d = _digest(one)
    assert _digest(reused) == d
    assert _digest(plain) == d


def _read_both(dirs: list[str]) -> tuple[tuple[list[Machine], MatchResult], ...]:
    out = []
    for merged in (True, False):
        ts = tracewatch.open(*dirs)
        sc = SyncColumns(ts)
        out.append((read_vm_events(ts, sc, merged=merged), sc.result()))
    return tuple(out)


def _same_reads(a: tuple[list[Machine], MatchResult], b: tuple[list[Machine], MatchResult]
                ) -> None:
    (ma, ra), (mb, rb) = a, b
    assert [m.host_id for m in ma] == [m.host_id for m in mb]
    for x, y in zip(ma, mb, strict=True):
        assert x.first_switch == y.first_switch
        assert sorted(x.events) == sorted(y.events)
        for name, cols in x.events.items():
            for c, v in cols.items():
                assert np.array_equal(v, y.events[name][c]), (x.hostname, name, c)
    assert list(ra.pairs) == list(rb.pairs) and ra.events == rb.events
    assert list(ra.unmatched.items()) == list(rb.unmatched.items())
    for k, p in ra.pairs.items():
        assert p.send.tolist() == rb.pairs[k].send.tolist()
        assert p.recv.tolist() == rb.pairs[k].recv.tolist()


@pytest.mark.parametrize("seed", [2, 6])
def test_stream_by_stream_read_equals_merged_read(seed: int, tmp_path: Path) -> None:
    """Reading stream after stream and ordering afterwards gives the columns (seq included)
    and the matched pairs of reading the merged, time-ordered batches."""
    simulate(scenario(seed), tmp_path / "run")
    dirs = [str(p) for p in sorted((tmp_path / "run").iterdir()) if p.is_dir()]
    merged, streams = _read_both(dirs)
    assert sum(m.count("sched_switch") for m in merged[0]) > 200 and merged[1].total > 10
    _same_reads(merged, streams)


@pytest.mark.parametrize("trace", ["lttng-kernel-many-threads", "lttng-kernel-tcp-sync"])
def test_stream_by_stream_read_real_traces(trace: str) -> None:
    """The same on real LTTng traces (per-CPU streams, nested TCP layouts)."""
    root = Path("../shared/traces") / trace
    dirs = sorted({str(p.parent) for p in root.rglob("metadata")})
    merged, streams = _read_both(dirs)
    assert sum(m.count("sched_switch") for m in merged[0]) + merged[1].total > 40
    _same_reads(merged, streams)
