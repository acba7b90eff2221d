"""Critical paths on a real LTTng kernel trace (lttng-kernel-many-threads, 8 CPUs): property
checks on the 5 busiest tasks, errors, timing and the ``critical-path`` command."""

from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

import tracewatch
from tests.conftest import MANY_THREADS
from tracewatch.cli.critical import critical_path as critical_path_cmd
from tracewatch.critical import (
    CriticalPathError,
    EdgeType,
    ExecutionGraph,
    build_graph,
    critical_path,
    trace_critical_path,
)

pytestmark = pytest.mark.skipif(not MANY_THREADS.exists(), reason="many-threads trace missing")


@pytest.fixture(scope="module")
def graph() -> ExecutionGraph:
    with tracewatch.open(str(MANY_THREADS)) as ts:
        return build_graph(ts)


@pytest.fixture(scope="module")
def busiest() -> list[int]:
    """The 5 TIDs (not idle) switched in most often."""
    counts: Counter[int] = Counter()
    with tracewatch.open(str(MANY_THREADS)) as ts:
        for b in ts.batches(names=["sched_switch"]):
            counts.update(b.columns("sched_switch", ["next_tid"])["next_tid"].tolist())
    counts.pop(0, None)
    return [tid for tid, _ in counts.most_common(5)]


def _span(g: ExecutionGraph, key: int) -> int:
    ext = g.extent(key)
    return 0 if ext is None else ext[1] - ext[0]


def test_busiest_paths(graph: ExecutionGraph, busiest: list[int]) -> None:
    assert len(busiest) == 5
    for tid in busiest:
        p = critical_path(graph, tid)
        iv = p.intervals
        start, end, dur = iv["start"], iv["end"], iv["duration"]
        # contiguous from begin to end, no overlap, no empty interval
        assert start[0] == p.begin and end[-1] == p.end
        assert (start[1:] == end[:-1]).all()
        assert (dur > 0).all() and (dur == end - start).all()
        assert int(dur.sum()) == p.elapsed == int(p.summary["duration"].sum())
        # the whole lifetime of the task in the trace (its longest chain if its TID was reused)
        k = max(graph.keys_of(tid), key=lambda k: _span(graph, k))
        assert (p.begin, p.end) == graph.extent(k)
        # no BLOCKED interval is left: each was resolved to a waker or labelled
        assert "BLOCKED" not in set(iv["state"].tolist())
        # each BLOCKED edge of the task is covered by other tasks, and its waker was running
        # just before the wakeup
        a, b = graph.chain(k)
        blocked = np.flatnonzero(graph.edge_type[a:b] == EdgeType.BLOCKED) + a
        for i in blocked.tolist():
            s, e = int(graph.edge_start[i]), int(graph.edge_end[i])
            if s < p.begin or e > p.end:
                continue
            m = (start < e) & (end > s)
            assert (iv["tid"][m] != tid).all()
            j = int(np.searchsorted(end, e))
            assert iv["tid"][j] == graph.task_tid[graph.edge_waker[i]]
            assert iv["state"][j] == "RUNNING"


def test_graph_shape(graph: ExecutionGraph) -> None:
    # chains are contiguous and sorted; wakers only on BLOCKED edges
    same = graph.edge_task[1:] == graph.edge_task[:-1]
    assert (graph.edge_end[:-1][same] == graph.edge_start[1:][same]).all()
    assert (graph.edge_end > graph.edge_start).all()
    assert ((graph.edge_waker >= 0) == (graph.edge_type == EdgeType.BLOCKED)).all()
    # the trace has softirq events: some waits are labelled from interrupt context
    types = set(graph.edge_type.tolist())
    assert {EdgeType.BLOCK_DEVICE, EdgeType.TIMER} <= types


def test_errors(graph: ExecutionGraph, busiest: list[int]) -> None:
    with pytest.raises(CriticalPathError, match="no task with TID 999999"):
        critical_path(graph, 999999)
    tid = busiest[0]
    t = int(graph.first_ts) + 1000
    with pytest.raises(CriticalPathError, match="empty time range"):
        critical_path(graph, tid, t, t)
    with pytest.raises(CriticalPathError, match="empty time range"):
        critical_path(graph, tid, t + 5, t)
    # before the task's lifetime: it never ran there
    key = graph.keys_of(tid)[0]
    first = graph.extent(key)
    assert first is not None
    with pytest.raises(CriticalPathError, match="never ran"):
        critical_path(graph, tid, first[0] - 10_000, first[0] - 1)
    assert isinstance(CriticalPathError("x"), tracewatch.TracewatchError)


def test_timing(busiest: list[int]) -> None:
    """Graph + path of the busiest task over the whole trace, from opening the trace."""
    t = time.perf_counter()
    with tracewatch.open(str(MANY_THREADS)) as ts:
        p = trace_critical_path(ts, busiest[0])
    dt = time.perf_counter() - t
    print(f"\ncritical path of tid {busiest[0]} over many-threads: {dt:.3f} s "
          f"({p.intervals.nrows} intervals)")
    assert p.elapsed > 0
    assert dt < 5.0  # target 1 s on an idle machine; generous bound on a shared one


def test_cli(busiest: list[int]) -> None:
    runner = CliRunner()
    r = runner.invoke(critical_path_cmd, [str(MANY_THREADS), "--tid", str(busiest[0])])
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    assert first.split(" | ")[0].split()[1] == str(busiest[0])
    assert "RUNNING" in r.output
    r = runner.invoke(critical_path_cmd, [str(MANY_THREADS), "--tid", str(busiest[0]), "--csv"])
    assert r.exit_code == 0
    assert r.output.splitlines()[0] == "start,end,duration,tid,comm,state"
    r = runner.invoke(critical_path_cmd, [str(MANY_THREADS), "--tid", str(busiest[0]), "--mi"])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert len(doc["results"]) == 2
    r = runner.invoke(critical_path_cmd, [str(MANY_THREADS), "--tid", "999999"])
    assert r.exit_code != 0 and isinstance(r.exception, CriticalPathError)
