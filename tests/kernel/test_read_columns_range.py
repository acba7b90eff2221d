"""read_columns decodes only the classes asked for: the analysed range, event count and
period windows still cover every event, and ``seq`` still puts the events read in trace
order; checked against babeltrace2's text (an independent reader)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracewatch
from tracewatch.analyses.irq import irq_layout
from tracewatch.ctf.trace import TraceSet
from tracewatch.kernel import detect_layout, read_columns
from tracewatch.kernel.state import KernelColumns

from ..analyses.kernel_trace import SCHEMAS, switch
from ..conftest import MANY_THREADS, babeltrace2

LINE = re.compile(r"^\[(\d+)\.(\d{9})\] \([^)]+\) \S+ (\w+):", re.M)
BEGIN, END = 1_457_113_582_900_000_000, 1_457_113_583_100_000_000


def _bt2(*args: str) -> list[tuple[int, str]]:
    """(timestamp ns, event name) of every event babeltrace2 reads from many-threads, in order."""
    out = babeltrace2("--clock-seconds", *args, str(MANY_THREADS)).stdout
    return [(int(s) * 1_000_000_000 + int(ns), name) for s, ns, name in LINE.findall(out)]


def _windows(times: np.ndarray, period: int) -> dict[int, list[int]]:
    """Window index -> [first, last, count], windows aligned on the first event (by hand)."""
    w = (times - times.min()) // period
    return {int(k): [int(times[w == k].min()), int(times[w == k].max()), int(np.count_nonzero(w == k))]
            for k in np.unique(w)}


@pytest.mark.parametrize("bounds", [(None, None), (BEGIN, END)])
def test_range_count_and_windows_are_babeltrace2s(bounds: tuple[int | None, int | None]) -> None:
    begin, end = bounds
    args = [] if begin is None else ["--begin", "1457113582.900000000", "--end", "1457113583.100000000"]
    bt = _bt2(*args)
    times = np.array([t for t, _ in bt], np.int64)
    ts = tracewatch.open(str(MANY_THREADS))
    period = 7_000_000
    kc = read_columns(ts, detect_layout(ts), {"sched_switch": ("next_tid",)}, begin, end, period=period)
    assert (kc.first_ts, kc.last_ts, kc.n_events) == (int(times.min()), int(times.max()), times.size)
    assert kc.origin == int(times.min()) and kc.windows == _windows(times, period)
    # only sched_switch was asked for: the rest was not decoded, yet counted
    assert times.size > 2 * kc.events["sched_switch"]["seq"].size


def test_seq_orders_the_events_read_like_babeltrace2() -> None:
    wanted = ("sched_switch", "irq_handler_entry", "irq_handler_exit")
    expected = [(t, n) for t, n in _bt2() if n in wanted]
    ts = tracewatch.open(str(MANY_THREADS))
    kc = read_columns(ts, irq_layout(ts), {n: () for n in wanted})
    seq = np.concatenate([kc.events[n]["seq"] for n in wanted])
    t = np.concatenate([kc.events[n]["timestamp"] for n in wanted])
    names = np.concatenate([np.full(kc.events[n]["seq"].size, n, object) for n in wanted])
    o = np.argsort(seq, kind="stable")
    assert np.unique(seq).size == seq.size
    assert list(zip(t[o].tolist(), names[o].tolist(), strict=True)) == expected


class _DecodeAll(TraceSet):
    """A trace set read by decoding every event (the read_columns path of live sets)."""

    def _batch_source(self, merged: bool, wanted: np.ndarray | None = None) -> Iterator[Any]:
        return super()._batch_source(merged, None)


def _backwards_trace(path: Path) -> str:
    """Two CPUs; on CPU 0 a stepped-over event (irq_softirq_raise) whose 64-bit timestamp is
    patched, after writing, to go back before the previous event of its stream."""
    from tracewatch.ctf.writer import TraceWriter

    gap = 1 << 28  # beyond the compact header's 27 bits: full 64-bit timestamps
    t0 = 1_000_000_000_000
    sentinel = t0 + 3 * gap + 12345
    with TraceWriter(str(path), hostname="synthetic") as w:
        sc = w.add_stream_class(header="compact")
        sw = sc.add_event_class("sched_switch", SCHEMAS["sched_switch"])
        rz = sc.add_event_class("irq_softirq_raise", SCHEMAS["irq_softirq_raise"])
        s0, s1 = w.add_stream(sc, cpu=0), w.add_stream(sc, cpu=1)
        s0.write(sw, t0, switch(0, 5))
        s0.write(sw, t0 + 2 * gap, switch(5, 6))
        s0.write(rz, sentinel, {"vec": 1})
        s0.write(sw, t0 + 4 * gap, switch(6, 0))
        s1.write(rz, t0 + gap, {"vec": 2})
        s1.write(sw, t0 + 5 * gap, switch(0, 7))
    f = next(p for p in path.iterdir() if p.name.endswith("_0"))
    data = f.read_bytes()
    old = sentinel.to_bytes(8, "little")
    assert data.count(old) == 1
    f.write_bytes(data.replace(old, (t0 + gap).to_bytes(8, "little")))
    return str(path)


def _same(a: KernelColumns, b: KernelColumns) -> None:
    assert (a.first_ts, a.last_ts, a.n_events) == (b.first_ts, b.last_ts, b.n_events)
    assert a.events.keys() == b.events.keys()
    for ev in a.events:
        for k in a.events[ev]:
            assert np.array_equal(a.events[ev][k], b.events[ev][k]), (ev, k)


def test_timestamps_going_backwards_fall_back_to_decoding_everything(tmp_path: Path) -> None:
    """A stream whose times go backwards: the merged order of a subset of its events need not
    be the subset of the merged order, so read_columns decodes everything (the path the
    reference tests check against lttng-analyses); warnings are given once."""
    path = _backwards_trace(tmp_path / "t")
    warned: list[str] = []
    ts = TraceSet([path], on_warning=warned.append)
    assert ts.reports_times
    got = read_columns(ts, detect_layout(ts), {"sched_switch": ("next_tid",)})
    ref = read_columns(_DecodeAll([path]), detect_layout(ts), {"sched_switch": ("next_tid",)})
    _same(got, ref)
    assert got.n_events == 6
    assert len(warned) == 1 and "earlier than a previous event" in warned[0]
