"""read_columns and the analyses' Python API on a truncated trace: by default the
DecodeError is raised as before; with ``partial=True`` the columns (and results) cover the
events read before the fault, which is kept in ``fault``.

Oracle: babeltrace2's text of the intact trace up to the last event ``tracewatch dump``
prints before the fault (babeltrace2 cannot open the truncated stream itself), and the same
analyses on the intact trace with that ``end`` (a read that meets no fault).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracewatch
from tracewatch.analyses.cputop import cputop, cputop_periods
from tracewatch.analyses.io import io_stats
from tracewatch.analyses.irq import irq_stats
from tracewatch.analyses.sched import sched_latencies, sched_periods
from tracewatch.analyses.syscalls import syscall_stats, syscalls_periods
from tracewatch.ctf.trace import TraceSet
from tracewatch.errors import DecodeError
from tracewatch.kernel import detect_layout, read_columns

from ..conftest import MANY_THREADS, babeltrace2
from .truncated_trace import Cut, truncate_copy

LINE = re.compile(r"^\[(\d+)\.(\d{9})\] \([^)]+\) \S+ (\w+):", re.M)
WANTED = {"sched_switch": ("prev_tid", "next_tid", "next_comm"), "sched_wakeup": ("tid",)}


class _DecodeAll(TraceSet):
    """A trace set read by decoding every event (the read_columns path of live sets)."""

    def _batch_source(self, merged: bool, wanted: np.ndarray | None = None) -> Iterator[Any]:
        return super()._batch_source(merged, None)


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> Cut:
    return truncate_copy(MANY_THREADS, tmp_path_factory.mktemp("trunc") / "t", "channel0_3", 1, 137_979)


@pytest.fixture(scope="module")
def bt_times(cut: Cut) -> np.ndarray:
    out = babeltrace2("--clock-seconds", f"--end={cut.last}", str(MANY_THREADS)).stdout
    return np.array([int(s) * 1_000_000_000 + int(ns) for s, ns, _ in LINE.findall(out)], np.int64)


def test_default_still_raises(cut: Cut) -> None:
    for ts in (tracewatch.open(str(cut.path)), _DecodeAll([str(cut.path)])):
        with pytest.raises(DecodeError) as e:
            read_columns(ts, detect_layout(ts), WANTED)
        assert f"tracewatch: error: {e.value}" == cut.error


@pytest.mark.parametrize("cls", [TraceSet, _DecodeAll])
def test_partial_columns_are_those_of_the_events_read(cut: Cut, bt_times: np.ndarray, cls: type) -> None:
    ts = cls([str(cut.path)])
    period = 7_000_000
    kc = read_columns(ts, detect_layout(ts), WANTED, period=period, partial=True)
    assert isinstance(kc.fault, DecodeError) and f"tracewatch: error: {kc.fault}" == cut.error
    # range, count and windows: babeltrace2's events up to the last one read = dump's
    assert (kc.first_ts, kc.last_ts, kc.n_events) == (int(bt_times[0]), int(bt_times[-1]), bt_times.size)
    assert kc.n_events == cut.n_events and kc.last_ts == cut.last_ns
    w = (bt_times - bt_times[0]) // period
    assert kc.windows == {int(k): [int(bt_times[w == k].min()), int(bt_times[w == k].max()),
                                   int(np.count_nonzero(w == k))] for k in np.unique(w)}
    # the columns: those of the intact trace read up to that event (no fault)
    full = TraceSet([str(MANY_THREADS)])
    ref = read_columns(full, detect_layout(full), WANTED, end=kc.last_ts)
    assert ref.fault is None and ref.n_events == kc.n_events
    for ev, cols in ref.events.items():
        got = kc.events[ev]
        for k in cols:
            if k != "seq":  # positions among different sets of events read
                assert np.array_equal(got[k], cols[k]), (ev, k)
        assert np.array_equal(np.argsort(got["seq"], kind="stable"), np.argsort(cols["seq"], kind="stable"))


def _same_tables(a: Any, b: Any, names: tuple[str, ...]) -> None:
    assert (a.begin, a.end) == (b.begin, b.end)
    for n in names:
        ta, tb = getattr(a, n), getattr(b, n)
        assert ta.columns == tb.columns
        for c in ta.columns:
            x, y = ta[c], tb[c]
            if x.dtype.kind == "f":
                assert np.array_equal(x, y, equal_nan=True), (n, c)
            else:
                assert x.tolist() == y.tolist(), (n, c)


def test_analyses_raise_by_default_and_expose_the_fault(cut: Cut) -> None:
    ts = tracewatch.open(str(cut.path))
    full = tracewatch.open(str(MANY_THREADS))
    end = cut.last_ns
    cases = [
        (cputop, ("per_tid", "per_cpu")),
        (sched_latencies, ("latencies", "per_tid")),
        (syscall_stats, ("per_syscall", "per_tid")),
        (irq_stats, ("hard", "soft")),
        (io_stats, ("per_process", "per_fd")),
    ]
    for fn, tables in cases:
        with pytest.raises(DecodeError):
            fn(ts)  # type: ignore[operator]
        r = fn(ts, partial=True)  # type: ignore[operator]
        assert isinstance(r.fault, DecodeError) and f"tracewatch: error: {r.fault}" == cut.error
        ref = fn(full, None, end, partial=True)  # type: ignore[operator]
        assert ref.fault is None
        _same_tables(r, ref, tables)
    for fn_p, tables in [(cputop_periods, ("per_tid",)), (sched_periods, ("per_tid",)),
                         (syscalls_periods, ("per_tid",))]:
        rs = fn_p(ts, 50_000_000, partial=True)  # type: ignore[operator]
        refs = fn_p(full, 50_000_000, None, end)  # type: ignore[operator]
        assert len(rs) == len(refs) > 1
        assert all(r.fault is not None for r in rs) and all(r.fault is None for r in refs)
        for r, ref in zip(rs, refs, strict=True):
            _same_tables(r, ref, tables)


def test_fault_before_any_event(tmp_path: Path) -> None:
    cut = truncate_copy(MANY_THREADS, tmp_path / "t", "channel0_3", 0, 20)
    ts = tracewatch.open(str(cut.path))
    r = cputop(ts, partial=True)
    assert r.fault is not None and r.per_tid.nrows == 0
    # no window to hold the fault: raised even with partial
    with pytest.raises(DecodeError):
        cputop_periods(ts, 10_000_000, partial=True)


def test_periods_of_an_empty_range_are_none() -> None:
    """No event in [begin, end] (and no fault): no window (was an internal ValueError)."""
    ts = tracewatch.open(str(MANY_THREADS))
    assert cputop_periods(ts, 10_000_000, 1, 2) == []
    assert cputop_periods(ts, 10_000_000, 1, 2, partial=True) == []
