"""Per-window results (``--period``): windows partition the range, and per-window counts sum
to the whole-range result (syscalls, irq on many-threads); a window's result equals the
analysis run with begin/end at the window's bounds."""

from __future__ import annotations

import numpy as np
import pytest

import tracewatch
from tracewatch.analyses.cputop import cputop, cputop_periods
from tracewatch.analyses.irq import irq_periods, irq_stats
from tracewatch.analyses.sched import sched_latencies, sched_periods
from tracewatch.analyses.syscalls import syscall_stats, syscalls_periods

from ..conftest import MANY_THREADS

P = 100_000_000  # 100 ms: many-threads lasts 0.43 s -> 5 windows


@pytest.fixture(scope="module")
def ts() -> tracewatch.TraceSet:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    return tracewatch.open(str(MANY_THREADS))


def test_syscalls_windows_sum_to_whole(ts: tracewatch.TraceSet) -> None:
    """Every call is counted in exactly one window (that of its exit): the per-window totals,
    and the per-(thread, syscall) counts, sum to the whole-range ones; windows are aligned
    on the first event and each result's range lies in its window."""
    whole = syscall_stats(ts)
    parts = syscalls_periods(ts, P)
    assert len(parts) == 5
    origin = whole.begin
    for k, r in enumerate(parts):
        assert origin + k * P <= r.begin <= r.end < origin + (k + 1) * P
    assert parts[0].begin == whole.begin and parts[-1].end == whole.end
    assert sum(r.total for r in parts) == whole.total
    counts: dict[tuple[int, str], int] = {}
    for r in parts:
        for t, s, c in zip(r.per_syscall["tid"].tolist(), r.per_syscall["syscall"].tolist(),
                           r.per_syscall["count"].tolist(), strict=True):
            counts[(t, s)] = counts.get((t, s), 0) + c
    ps = whole.per_syscall
    assert counts == dict(zip(zip(ps["tid"].tolist(), ps["syscall"].tolist(), strict=True),
                              ps["count"].tolist(), strict=True))


def test_irq_windows_sum_to_whole(ts: tracewatch.TraceSet) -> None:
    """Hard IRQ counts per irq and softirq counts (and raise counts) per vector sum to the
    whole-range ones."""
    whole = irq_stats(ts)
    parts = irq_periods(ts, P)
    assert len(parts) == 5
    for table, key, cols in (("hard", "irq", ("count",)), ("soft", "vec", ("count", "raise_count"))):
        w = getattr(whole, table)
        for col in cols:
            total: dict[int, int] = {}
            for r in parts:
                t = getattr(r, table)
                for k, c in zip(t[key].tolist(), t[col].tolist(), strict=True):
                    total[k] = total.get(k, 0) + c
            assert total == dict(zip(w[key].tolist(), w[col].tolist(), strict=True))
            assert sum(total.values()) > 0


def test_window_equals_analysis_on_window_bounds(ts: tracewatch.TraceSet) -> None:
    """The second window's cputop, sched and syscalls results equal those of the analysis run
    with begin/end = the window's bounds."""
    origin = syscall_stats(ts).begin
    b, e = origin + P, origin + 2 * P - 1
    c1, c2 = cputop_periods(ts, P)[1], cputop(ts, b, e)
    assert (c1.begin, c1.end) == (c2.begin, c2.end)
    assert np.array_equal(c1.per_tid["usage_ns"], c2.per_tid["usage_ns"])
    assert np.array_equal(c1.per_tid["tid"], c2.per_tid["tid"])
    assert np.array_equal(c1.per_cpu["usage_ns"], c2.per_cpu["usage_ns"])
    s1, s2 = sched_periods(ts, P)[1], sched_latencies(ts, b, e)
    assert np.array_equal(s1.latencies["latency_ns"], s2.latencies["latency_ns"])
    y1, y2 = syscalls_periods(ts, P)[1], syscall_stats(ts, b, e)
    assert y1.total == y2.total
    assert np.array_equal(y1.per_syscall["count"], y2.per_syscall["count"])


def test_cputop_windows_usage_sums_to_whole(ts: tracewatch.TraceSet) -> None:
    """Per-CPU busy time over the windows sums to the whole range's, minus the gaps between
    windows (from a window's last event to the next one's first, which no window covers)."""
    whole = cputop(ts)
    parts = cputop_periods(ts, P)
    per_cpu = sum(r.per_cpu["usage_ns"] for r in parts)
    gaps = sum(parts[k + 1].begin - parts[k].end for k in range(len(parts) - 1))
    diff = whole.per_cpu["usage_ns"] - per_cpu
    assert np.all(diff >= 0) and np.all(diff <= gaps)
