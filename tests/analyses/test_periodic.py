"""The streaming per-period runner (:mod:`tracewatch.analyses.periodic`) on a file trace:
batch by batch, it gives the windows the offline ``*_periods`` functions give, while holding
only the rows of the past that the kernel state needs (:mod:`tracewatch.analyses.periodic_state`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracewatch
from tracewatch.analyses import Table
from tracewatch.analyses.cputop import cputop_periods
from tracewatch.analyses.irq import irq_periods
from tracewatch.analyses.periodic import PeriodicRunner, PeriodResult, stream_periods
from tracewatch.analyses.sched import sched_periods
from tracewatch.analyses.syscalls import syscalls_periods
from tracewatch.sim import gebai2014, simulate

from ..conftest import MANY_THREADS

P = 100_000_000  # 100 ms: many-threads lasts 0.43 s -> 5 windows


@pytest.fixture(scope="module")
def streamed() -> list[PeriodResult]:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    with tracewatch.open(str(MANY_THREADS)) as ts:
        return list(stream_periods(ts, P, ["syscalls", "irq", "cputop", "sched", "count"]))


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
        elif isinstance(v, dict):  # sched's total: NaN statistics below two latencies
            assert v.keys() == w.keys() and all(v[x] == w[x] or (v[x] != v[x] and w[x] != w[x])
                                                for x in v), k
        elif not hasattr(v, "__dict__"):
            assert v == w, k


def test_streamed_windows_equal_offline_periods(streamed: list[PeriodResult]) -> None:
    """syscalls, irq, cputop and sched per 100 ms window, streamed batch by batch, equal the
    offline ``*_periods`` functions (every table column: counts,
    durations, return values, ranges); windows are aligned on the first event and numbered;
    count's per-window totals are the windows' event counts and sum to the trace's."""
    with tracewatch.open(str(MANY_THREADS)) as ts:
        off = {"syscalls": syscalls_periods(ts, P), "irq": irq_periods(ts, P), "cputop": cputop_periods(ts, P),
               "sched": sched_periods(ts, P)}
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


KERNEL = ["cputop", "sched", "syscalls", "irq"]


def _offline(path: str, period: int) -> dict[str, list[Any]]:
    with tracewatch.open(path) as ts:
        return {"cputop": cputop_periods(ts, period), "sched": sched_periods(ts, period),
                "syscalls": syscalls_periods(ts, period), "irq": irq_periods(ts, period)}


def _stream(path: str, period: int) -> tuple[list[PeriodResult], list[dict[str, int]]]:
    """The windows, and the rows retained by each analysis after each close."""
    with tracewatch.open(path) as ts:
        runner = PeriodicRunner(ts, period, KERNEL)
        out: list[PeriodResult] = []
        held: list[dict[str, int]] = []
        for b in ts.batches():
            got = runner.feed(b)
            out += got
            held += [runner.retained_rows] * len(got)
        out += runner.finish()
        assert runner.retained_bytes > 0
    return out, held


def test_many_windows_equal_offline_with_the_past_cut_away() -> None:
    """many-threads (8000 threads forked and exited, softirq raises, syscalls in flight across
    window ends) cut into 10 ms windows: every window of the four kernel analyses, computed
    from the cut columns, equals the offline ``--period`` results computed from every event."""
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    period = 10_000_000
    out, _ = _stream(str(MANY_THREADS), period)
    off = _offline(str(MANY_THREADS), period)
    assert len(out) > 40
    for name in KERNEL:
        assert len(off[name]) == len(out)
        for k, w in enumerate(out):
            _same(off[name][k], w.results[name])


_BT_FIELD = re.compile(r"\b(prev_tid|next_tid|tid|irq|vec) = (\d+)")
_BT_CPU = re.compile(r"\{ cpu_id = (\d+) \}")


def _bt_state_sizes(trace: Path) -> tuple[int, int, int, int]:
    """From babeltrace2's text: distinct threads, CPUs, IRQ numbers, (CPU, softirq vector)."""
    text = subprocess.run(["babeltrace2", str(trace)], capture_output=True, text=True, check=True,
                          timeout=120).stdout
    tids, cpus, irqs, vecs = set(), set(), set(), set()
    for line in text.splitlines():
        cpu = int(_BT_CPU.search(line).group(1))  # type: ignore[union-attr]
        cpus.add(cpu)
        for name, v in _BT_FIELD.findall(line):
            if name == "irq":
                irqs.add(int(v))
            elif name == "vec":
                vecs.add((cpu, int(v)))
            else:
                tids.add(int(v))
    return len(tids), len(cpus), len(irqs), len(vecs)


def test_long_stream_holds_a_bounded_past(tmp_path: Path) -> None:
    """A simulated guest (fixed set of threads, syscalls, IRQs, softirqs, wakeups) over 4 s in
    20 ms windows (200 windows): after every window close, the rows each analysis keeps stay
    under a bound set by the machine's state, not by the session's length, and every window
    still equals the offline results.

    The bounds (T threads, C CPUs, I IRQ numbers, K (CPU, vector) pairs, counted by
    babeltrace2) follow from what :func:`~tracewatch.analyses.periodic_state.retain` keeps:
    cputop: last switch per next/prev tid and CPU (2T + C) and per-tid thread rows (5T);
    sched: the same switches, per tid a pending wakeup with its two switches (2T + C + 3T);
    syscalls: last switch per next tid and CPU, per tid its last entry/exit and its switch,
    thread rows (T + C + 2T + 5T); irq: per CPU its last hard event, per IRQ its last
    entry, per (CPU, vector) its last softirq event and two raises (C + I + 3K).
    """
    simulate(gebai2014(duration=4_000_000_000, seed=2), tmp_path / "sim")
    guest = tmp_path / "sim" / "guest-Ubuntu"
    period = 20_000_000
    out, held = _stream(str(guest), period)
    off = _offline(str(guest), period)
    t, c, i, k = _bt_state_sizes(guest)
    bound = {"cputop": 7 * t + c, "sched": 5 * t + c, "syscalls": 8 * t + c, "irq": c + i + 3 * k}
    assert len(out) >= 190 and len(held) == len(out) - 1
    for h in held:
        for name in KERNEL:
            assert 0 < h[name] <= bound[name], (name, h[name], bound[name])
    print(f"T={t} C={c} I={i} K={k}; held at most", {n: max(h[n] for h in held) for n in KERNEL},
          "bounds", bound)
    with tracewatch.open(str(guest)) as ts:
        n_events = sum(len(b) for b in ts.batches())
    assert n_events > 50 * sum(bound.values())  # keeping the whole past would exceed them
    for name in KERNEL:
        assert len(off[name]) == len(out)
        for j, w in enumerate(out):
            _same(off[name][j], w.results[name])


def test_time_marks_close_windows_without_a_later_event() -> None:
    """``advance(t)`` (every event before t was fed) closes the window being filled when it
    ends at or before t, not before; events of a closed window arriving later are left out
    and counted as late in the next window emitted."""
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    with tracewatch.open(str(MANY_THREADS)) as ts:
        batches = list(ts.batches())
        t0 = int(batches[0].ts[0])
        runner = PeriodicRunner(ts, P, ["count"])
        first = batches[0]
        head, rest = first.take(first.ts < t0 + 1000), first.take(first.ts >= t0 + 1000)
        assert len(head) and len(rest)
        assert runner.feed(head) == []
        assert runner.advance(t0 + P - 1) == []  # an event at t0 + P - 1 could still come
        (w,) = runner.advance(t0 + P)
        assert (w.index, w.begin, w.end, w.n_events, w.late) == (0, t0, t0 + P, len(head), 0)
        assert runner.advance(t0 + 3 * P) == []  # windows 1 and 2 were not filled: left out
        assert runner.feed(rest) == []  # those of windows 0..2 (closed) are late
        n_late = int(np.count_nonzero(rest.ts < t0 + 3 * P))
        out: list[PeriodResult] = []
        for b in batches:
            if int(b.ts[0]) >= t0 + 3 * P:
                out += runner.feed(b)
        out += runner.finish()
    assert [x.index for x in out] == [3, 4]
    assert n_late and [x.late for x in out] == [n_late, 0]


def test_truncated_trace_gives_the_windows_before_the_fault_then_the_error(
        tmp_path: Path) -> None:
    """Oracle: the events dump prints before the fault (babeltrace2 reads as many from the
    intact trace up to the last of them, tests/kernel/truncated_trace.py); the windows
    streamed from the truncated trace hold exactly those, the last one cut short by the
    fault, and equal the windows of the intact trace read up to that event."""
    from tracewatch.errors import DecodeError

    from ..kernel.truncated_trace import check_babeltrace2, truncate_copy

    cut = truncate_copy(MANY_THREADS, tmp_path / "trace", "channel0_3", 1, 137_979)
    check_babeltrace2(cut)
    got: list[PeriodResult] = []
    with pytest.raises(DecodeError) as e:
        with tracewatch.open(str(cut.path)) as ts:
            for p in stream_periods(ts, 50_000_000, ["count", "cputop"]):
                got.append(p)
    assert str(e.value) in cut.error
    assert sum(p.n_events for p in got) == cut.n_events
    assert got[-1].last_ts == cut.last_ns
    with tracewatch.open(str(cut.intact)) as ts:
        ref = [p for p in stream_periods(ts, 50_000_000, ["count", "cputop"])
               if p.first_ts <= cut.last_ns]
    assert [(p.begin, p.first_ts, p.n_events) for p in got[:-1]] == \
        [(p.begin, p.first_ts, p.n_events) for p in ref[:len(got) - 1]]
    for a, b in zip(got[:-1], ref, strict=False):
        assert a.results["cputop"].per_tid["usage_ns"].tolist() == \
            b.results["cputop"].per_tid["usage_ns"].tolist()
