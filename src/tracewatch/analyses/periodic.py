"""Streaming per-period analyses: one result per window as soon as the window is over.

:class:`PeriodicRunner` takes the batches of a trace set as they come (a
:class:`~tracewatch.live.source.LiveTraceSet` yields them while a session runs; a file trace
set works too) and cuts them into windows [t0 + k * period, t0 + (k + 1) * period), t0 the
first event. When a batch reaches past the end of the current window, that window's result
is computed and returned; so is every window that ends at or before a *time mark* given to
:meth:`PeriodicRunner.advance` (a live trace set's low watermark: every event before it was
delivered, which beacons move forward on a quiet session). :meth:`PeriodicRunner.finish`
gives the last, partial one. Windows without events are left out, as ``--period`` does
offline. :func:`stream_periods` uses the trace set's ``timed_batches()`` when it has one.

Analyses: ``count`` (events per name, for any trace, UST included) and the kernel analyses
``cputop``, ``sched``, ``syscalls``, ``irq``. A kernel analysis reads each window's batches
with :func:`~tracewatch.kernel.state.read_columns` unchanged (through :class:`_BatchView`, a
trace set whose batches are the buffered ones) and appends them to the columns of the
previous windows, so that each window is analysed with the same columns
:func:`~tracewatch.kernel.state.period_windows` gives offline (the events before the window
are the state: thread names, the task running on each CPU...). Those columns grow with the
session (only the analysis' events are kept, not the batches).

Per window, the increase of ``ts.discarded`` (events discarded by the tracer, per stream, as
a live trace set counts them when their packets are decoded) and the number of *late*
events (older than the window being filled: a live stream found late) which are left out.

Imports :mod:`tracewatch.ctf`, :mod:`tracewatch.kernel` and :mod:`tracewatch.errors` only
(no live import: the trace set is duck-typed for ``discarded`` and ``timed_batches``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ctf.batch import EventBatch
from ..ctf.trace import TraceSet
from ..errors import DecodeError
from ..kernel.layouts import KernelLayout, detect_layout
from ..kernel.state import KernelColumns
from . import Table, periodic_state
from . import cputop as _cputop
from . import irq as _irq
from . import sched as _sched
from . import syscalls as _syscalls

__all__ = ["ANALYSES", "CountResult", "PeriodResult", "PeriodicRunner", "stream_periods",
           "count_events"]

#: analysis names the runner knows
ANALYSES = ("count", "cputop", "sched", "syscalls", "irq")


@dataclass
class CountResult:
    """Events per name over [begin, end] (first and last event); ``per_name``: columns
    ``name``, ``count`` (most frequent first, then by name)."""

    begin: int
    end: int
    per_name: Table
    total: int

    def as_dict(self) -> dict[str, int]:
        return dict(zip(self.per_name["name"].tolist(), self.per_name["count"].tolist(), strict=True))


def count_events(classes: Sequence[Any], gids: np.ndarray, begin: int, end: int) -> CountResult:
    """A :class:`CountResult` of events given by global class id (``classes``: the trace
    set's, with a ``name``)."""
    per_gid = np.bincount(gids.astype(np.int64), minlength=0) if gids.size else np.zeros(0, np.int64)
    counts: dict[str, int] = {}
    for g in np.flatnonzero(per_gid).tolist():
        name = classes[g].name
        counts[name] = counts.get(name, 0) + int(per_gid[g])
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    t = Table({"name": np.array([k for k, _ in items], object),
               "count": np.array([v for _, v in items], np.int64)})
    return CountResult(begin, end, t, int(gids.size))


@dataclass
class PeriodResult:
    """One window: its bounds ``[begin, end)``, its events (first/last timestamp, count),
    ``results`` (analysis name -> its result), the events discarded by the tracer during it
    (per stream, increase since the previous window emitted) and the late events left out."""

    index: int
    begin: int
    end: int
    first_ts: int
    last_ts: int
    n_events: int
    results: dict[str, Any]
    discarded: dict[str, int] = field(default_factory=dict)
    late: int = 0

    @property
    def total_discarded(self) -> int:
        return sum(self.discarded.values())


class _BatchView(TraceSet):
    """A trace set whose batches are given ones (event classes shared with ``base``), so
    that :func:`~tracewatch.kernel.state.read_columns` reads a window unchanged."""

    def __init__(self, base: TraceSet, batches: list[EventBatch]) -> None:
        super().__init__([], base.on_warning)
        self.traces, self.streams, self.classes = base.traces, base.streams, base.classes
        self.stream_class_base = base.stream_class_base
        self._batches = batches

    def _batch_source(self, merged: bool, wanted: np.ndarray | None = None) -> Iterator[Any]:
        return iter(self._batches)


Reader = Callable[..., KernelColumns]


@dataclass
class _Kernel:
    """One kernel analysis: its column reader, its per-window function, its columns so far."""

    read: Reader
    run: Callable[[KernelColumns, TraceSet], Any]
    columns: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def add(self, part: KernelColumns, seq0: int) -> None:
        for ev, cols in part.events.items():
            cols = {**cols, "seq": cols["seq"] + seq0}
            cur = self.columns.get(ev)
            if cur is None or cur["seq"].size == 0:
                self.columns[ev] = cols
            elif cols["seq"].size:
                self.columns[ev] = {k: np.concatenate([cur[k], cols[k]]) for k in cur}


class PeriodicRunner:
    """Cuts batches into windows of ``period`` ns and analyses each (see the module doc).

    ``analyses``: names of :data:`ANALYSES`; ``tids``/``cpus``/``procnames`` filter the kernel
    analyses as their offline functions do (``procnames``: syscalls only). ``layout``: the
    kernel layout (detected from ``ts`` when None).
    """

    def __init__(self, ts: TraceSet, period: int, analyses: Iterable[str] = ("count",),
                 tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
                 procnames: Collection[str] | None = None, layout: KernelLayout | None = None) -> None:
        if period <= 0:
            raise ValueError("the period must be positive")
        self.ts, self.period, self.layout = ts, int(period), layout
        self.analyses = list(dict.fromkeys(analyses))
        unknown = [a for a in self.analyses if a not in ANALYSES]
        if unknown or not self.analyses:
            raise ValueError(f"unknown analysis {', '.join(unknown) or '(none)'}; "
                             f"choose among {', '.join(ANALYSES)}")
        self._kernel: dict[str, _Kernel] = {}
        for a in self.analyses:
            k = self._make(a, tids, cpus, procnames)
            if k is not None:
                self._kernel[a] = k
        self.origin: int | None = None
        self._index = 0  # window being filled
        self._pending: list[EventBatch] = []
        self._seq0 = 0  # events of the windows already analysed
        self._late = 0
        self._discarded_seen: dict[str, int] = {}

    @staticmethod
    def _make(name: str, tids: Collection[int] | None, cpus: Collection[int] | None,
              procnames: Collection[str] | None) -> _Kernel | None:
        if name == "cputop":
            return _Kernel(_cputop._read, lambda kc, ts: _cputop.cputop_from_columns(kc, tids, cpus))
        if name == "sched":
            return _Kernel(_sched._read, lambda kc, ts: _sched.sched_from_columns(kc, tids, cpus))
        if name == "syscalls":
            return _Kernel(_syscalls._read, lambda kc, ts: _syscalls.syscalls_from_columns(
                kc, [c.name for c in ts.classes], tids, cpus, procnames))
        if name == "irq":
            return _Kernel(_irq._read, lambda kc, ts: _irq.irq_from_columns(kc, cpus))
        return None

    @property
    def retained_rows(self) -> dict[str, int]:
        """Per kernel analysis, the rows of past events it holds (its sequential state)."""
        return {name: periodic_state.rows(k.columns) for name, k in self._kernel.items()}

    @property
    def retained_bytes(self) -> int:
        """Bytes of those rows' column arrays."""
        return sum(periodic_state.nbytes(k.columns) for k in self._kernel.values())

    def advance(self, t: int) -> list[PeriodResult]:
        """Every event before ``t`` (ns) was fed: return the window being filled if it ends at
        or before ``t`` (later events of it would be late)."""
        if self.origin is None:
            return []
        w = (int(t) - self.origin) // self.period  # the window holding t
        if w <= self._index:
            return []
        r = self._close()
        self._index = w
        return [] if r is None else [r]

    def feed(self, batch: EventBatch) -> list[PeriodResult]:
        """Take the next batch (time order); return the windows it completed."""
        n = len(batch)
        if n == 0:
            return []
        if self.origin is None:
            self.origin = int(batch.ts.min())
        w = (batch.ts.astype(np.int64) - self.origin) // self.period
        late = w < self._index
        if late.any():
            self._late += int(np.count_nonzero(late))
            batch, w = batch.take(~late), w[~late]
        out: list[PeriodResult] = []
        values = np.unique(w).tolist()
        for v in values:
            if v > self._index:
                r = self._close()
                if r is not None:
                    out.append(r)
                self._index = v
            part = batch if len(values) == 1 else batch.take(w == v)
            self._pending.append(part)
        return out

    def finish(self) -> list[PeriodResult]:
        """The last (partial) window, if it has events; call when the trace set ended."""
        r = self._close()
        return [] if r is None else [r]

    def _discarded_delta(self) -> dict[str, int]:
        now: dict[str, int] = dict(getattr(self.ts, "discarded", None) or {})
        delta = {k: v - self._discarded_seen.get(k, 0) for k, v in now.items()
                 if v > self._discarded_seen.get(k, 0)}
        self._discarded_seen = now
        return delta

    def _close(self) -> PeriodResult | None:
        """Analyse the window being filled; None when it has no event."""
        batches, self._pending = self._pending, []
        n = sum(len(b) for b in batches)
        if n == 0 or self.origin is None:
            return None
        begin = self.origin + self._index * self.period
        first = min(int(b.ts.min()) for b in batches)
        last = max(int(b.ts.max()) for b in batches)
        results: dict[str, Any] = {}
        if self._kernel:
            layout = self.layout or detect_layout(self.ts)
            view = _BatchView(self.ts, batches)
            for name, k in self._kernel.items():
                part = k.read(view, None, None, layout)
                k.add(part, self._seq0)
                kc = KernelColumns(part.layout, dict(k.columns), first, last, n)
                results[name] = k.run(kc, self.ts)
                k.columns = periodic_state.retain(name, k.columns)
        if "count" in self.analyses:
            gids = np.concatenate([b.gid for b in batches])
            results["count"] = count_events(self.ts.classes, gids, first, last)
        self._seq0 += n
        late, self._late = self._late, 0
        ordered = {a: results[a] for a in self.analyses}
        return PeriodResult(self._index, begin, begin + self.period, first, last, n, ordered,
                            self._discarded_delta(), late)


def stream_periods(ts: TraceSet, period: int, analyses: Iterable[str] = ("count",),
                   **options: Any) -> Iterator[PeriodResult]:
    """Read ``ts`` once and yield each window's :class:`PeriodResult` as soon as it is over
    (the last one when the trace set ends). ``options`` go to :class:`PeriodicRunner`. A
    :class:`~tracewatch.errors.DecodeError` is raised after the window it cut short.

    A trace set with ``timed_batches()`` (a live one) also closes windows on its time marks,
    without waiting for a later event."""
    runner = PeriodicRunner(ts, period, analyses, **options)
    timed = getattr(ts, "timed_batches", None)
    items: Iterable[EventBatch | int] = timed() if timed is not None else ts.batches()
    try:
        for x in items:
            yield from runner.advance(x) if isinstance(x, int) else runner.feed(x)
    except DecodeError:
        # a corrupt or truncated trace: the window the fault cut short is given too (the
        # events before the fault are kept), then the error
        yield from runner.finish()
        raise
    yield from runner.finish()
