"""critical-path on a truncated trace: the path over the events read before the fault (those
``tracewatch dump`` prints), then dump's one-line error, exit 1.

Oracle: babeltrace2 reads the *intact* trace up to the last event dump printed and finds as
many events (tests/kernel/truncated_trace.py); the graph of the truncated trace must then be
the graph of the intact trace built up to that time, and the path the path on that graph."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest

import tracewatch
from tracewatch.critical import build_graph, critical_path
from tracewatch.critical.path import trace_critical_path
from tracewatch.errors import DecodeError

from ..conftest import MANY_THREADS
from ..kernel.truncated_trace import Cut, check_babeltrace2, run, truncate_copy
from .test_graph_streaming import _same

pytestmark = pytest.mark.skipif(not MANY_THREADS.exists(), reason="many-threads trace missing")


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> Cut:
    c = truncate_copy(MANY_THREADS, tmp_path_factory.mktemp("trunc") / "trace", "channel0_3", 1,
                      137_979)
    check_babeltrace2(c)
    return c


@pytest.fixture(scope="module")
def tid(cut: Cut) -> int:
    """The task switched in most often before the fault."""
    counts: Counter[int] = Counter()
    with tracewatch.open(str(MANY_THREADS)) as ts:
        for b in ts.batches(names=["sched_switch"], end=cut.last_ns):
            counts.update(b.columns("sched_switch", ["next_tid"])["next_tid"].tolist())
    counts.pop(0, None)
    return counts.most_common(1)[0][0]


def test_graph_is_the_intact_graph_up_to_the_fault(cut: Cut) -> None:
    with tracewatch.open(str(cut.path)) as ts:
        with pytest.raises(DecodeError):
            build_graph(ts)
        got = build_graph(ts, partial=True)
    with tracewatch.open(str(cut.intact)) as ts:
        ref = build_graph(ts, end=cut.last_ns)
    assert got.fault is not None and ref.fault is None
    assert str(got.fault) in cut.error
    assert got.n_edges > 1000
    _same(got, ref)


def test_path_before_the_fault(cut: Cut, tid: int) -> None:
    with tracewatch.open(str(cut.path)) as ts:
        p = trace_critical_path(ts, tid, partial=True)
    with tracewatch.open(str(cut.intact)) as ts:
        ref = critical_path(build_graph(ts, end=cut.last_ns), tid)
    assert p.fault is not None
    assert (p.begin, p.end) == (ref.begin, ref.end)
    for c in ("start", "end", "tid", "comm", "state"):
        assert p.intervals[c].tolist() == ref.intervals[c].tolist(), c


@pytest.mark.parametrize("mode", ["text", "mi", "csv"])
def test_cli_prints_the_path_then_one_line_error(cut: Cut, tid: int, mode: str) -> None:
    args = {"text": (), "mi": ("--mi",), "csv": ("--csv",)}[mode]
    rc, out, err = run("critical-path", "--tid", str(tid), *args, str(cut.path))
    assert rc == 1
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.strip() == cut.error  # dump's line: file, packet offset, reason
    with tracewatch.open(str(cut.intact)) as ts:
        ref = critical_path(build_graph(ts, end=cut.last_ns), tid)
    if mode == "mi":
        doc = json.loads(out)
        assert doc["results"]
    elif mode == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [int(r["start"]) for r in rows] == ref.intervals["start"].tolist()
    else:
        assert f"{tid}" in out and "RUNNING" in out


def test_fault_before_the_task_ran_is_the_error(cut: Cut) -> None:
    """A task that only appears after the fault: the fault is the error, not 'no task'."""
    with tracewatch.open(str(MANY_THREADS)) as ts:
        late = set()
        for b in ts.batches(names=["sched_switch"]):
            late.update(b.columns("sched_switch", ["next_tid"])["next_tid"].tolist())
        early = set()
        for b in ts.batches(names=["sched_switch"], end=cut.last_ns):
            early.update(b.columns("sched_switch", ["next_tid"])["next_tid"].tolist())
    only_late = sorted(late - early)
    if not only_late:
        pytest.skip("every task ran before the fault")
    rc, out, err = run("critical-path", "--tid", str(only_late[0]), str(cut.path))
    assert rc == 1 and out == "" and err.strip() == cut.error
