"""The streaming per-period runner (:mod:`tracewatch.analyses.periodic`) on a file trace:
batch by batch, it gives the windows the offline ``*_periods`` functions give."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tracewatch
from tracewatch.analyses import Table
from tracewatch.analyses.cputop import cputop_periods
from tracewatch.analyses.irq import irq_periods
from tracewatch.analyses.periodic import PeriodicRunner, PeriodResult, stream_periods
from tracewatch.analyses.syscalls import syscalls_periods

from ..conftest import MANY_THREADS

P = 100_000_000  # 100 ms: many-threads lasts 0.43 s -> 5 windows


@pytest.fixture(scope="module")
def streamed() -> list[PeriodResult]:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    with tracewatch.open(str(MANY_THREADS)) as ts:
        return list(stream_periods(ts, P, ["syscalls", "irq", "cputop", "count"]))


def _same_table(a: Table, b: Table) -> None:
    assert a.columns == b.columns
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), c
        else:
            assert x.tolist() == y.tolist(), c


def _same(a: Any, b: Any) -> None:
    for k, v in vars(a).items():
        w = getattr(b, k)
        if isinstance(v, Table):
            _same_table(v, w)
        elif isinstance(v, float):
            assert v == w or (v != v and w != w), k
        elif not hasattr(v, "__dict__"):
            assert v == w, k


def test_streamed_windows_equal_offline_periods(streamed: list[PeriodResult]) -> None:
    """syscalls, irq and cputop per 100 ms window, streamed batch by batch, equal the offline
    ``syscalls_periods``/``irq_periods``/``cputop_periods`` (every table column: counts,
    durations, return values, ranges); windows are aligned on the first event and numbered;
    count's per-window totals are the windows' event counts and sum to the trace's."""
    with tracewatch.open(str(MANY_THREADS)) as ts:
        off = {"syscalls": syscalls_periods(ts, P), "irq": irq_periods(ts, P), "cputop": cputop_periods(ts, P)}
        n_all = sum(len(b) for b in ts.batches())
    assert len(streamed) == len(off["syscalls"]) == 5
    origin = streamed[0].first_ts
    for k, w in enumerate(streamed):
        assert (w.index, w.begin, w.end) == (k, origin + k * P, origin + (k + 1) * P)
        assert w.begin <= w.first_ts <= w.last_ts < w.end
        for name, results in off.items():
            _same(results[k], w.results[name])
        assert w.results["syscalls"].total == off["syscalls"][k].total
        c = w.results["count"]
        assert c.total == w.n_events == int(c.per_name["count"].sum())
        assert (c.begin, c.end) == (w.first_ts, w.last_ts)
        assert w.discarded == {} and w.late == 0
    assert sum(w.n_events for w in streamed) == n_all


def test_windows_are_emitted_as_soon_as_a_batch_passes_their_end() -> None:
    """Fed batch by batch, a window comes out with the first batch that reaches past its end
    (not before, not at the end of the trace), and finish() gives the last one."""
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    with tracewatch.open(str(MANY_THREADS)) as ts:
        runner = PeriodicRunner(ts, P, ["count"])
        emitted: list[tuple[int, int]] = []  # (window index, max timestamp fed so far)
        top = None
        for b in ts.batches():
            top = int(b.ts.max()) if top is None else max(top, int(b.ts.max()))
            before = top
            for r in runner.feed(b):
                emitted.append((r.index, before))
                assert before >= r.end
        last = runner.finish()
    assert [i for i, _ in emitted] == [0, 1, 2, 3]
    assert len(last) == 1 and last[0].index == 4
    assert runner.finish() == []


def test_late_events_are_counted_and_left_out() -> None:
    """An event older than the window being filled (a live stream found late) is left out of
    the results and reported in the next window's ``late``."""
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    with tracewatch.open(str(MANY_THREADS)) as ts:
        batches = [b for b in ts.batches()]
        runner = PeriodicRunner(ts, P, ["count"])
        first = batches[0]
        out = []
        for b in batches:
            out += runner.feed(b)
        out += runner.finish()
    total = sum(len(b) for b in batches)
    runner2 = PeriodicRunner(ts, P, ["count"])
    out2 = []
    for b in batches[1:]:
        out2 += runner2.feed(b)
    out2 += runner2.feed(first.take(np.arange(1)))  # an early event arriving at the end
    out2 += runner2.finish()
    assert sum(w.n_events for w in out) == total
    assert sum(w.n_events for w in out2) == total - len(first)
    assert out2[-1].late == 1
