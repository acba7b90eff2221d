"""Kernel state computed from columns: thread table and current task of each CPU.

:func:`read_columns` makes one pass over a trace set and gathers, for each *logical* kernel
event an analysis asks for (see :mod:`tracewatch.kernel.layouts`), its columns concatenated
over every batch, with ``seq`` (position in the time-ordered sequence of the events read)
so that events of different types can be put back in trace order. Only the classes asked
for are decoded (the others are stepped over, their times counted for the analysed range)
when the trace set reads files. Text fields can be read as interned codes
(``text="codes"``): no Python string per event.

:func:`thread_table` builds the tid -> (pid, comm, ppid) table from the statedump,
``sched_process_fork``/``exec``/``exit`` and ``sched_switch`` columns (the last value seen
wins, found in one compiled pass: :func:`tracewatch.kernel.fast.last_writer`; only the
winning names are decoded); :func:`current_tasks` gives the task running on each CPU at a
time. No per-event Python loop runs here: only loops over distinct threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..ctf.batch import EventBatch
from ..ctf.compile import is_char_array
from ..ctf.trace import TraceSet
from ..ctf.types import ArrayType, EnumType, FloatType, IntType, SequenceType, StringType
from ..ctf.values import field_name
from ..errors import DecodeError
from .fast import dense_index, intern_strings, intern_texts, last_writer, texts
from .layouts import KernelLayout

__all__ = ["KernelColumns", "Thread", "ThreadTable", "read_columns", "thread_table",
           "current_tasks", "period_windows", "THREAD_EVENTS"]

#: Logical events and fields :func:`thread_table` uses when the trace has them.
THREAD_EVENTS: dict[str, tuple[str, ...]] = {
    "lttng_statedump_process_state": ("tid", "pid", "ppid", "name"),
    "sched_process_fork": ("parent_tid", "parent_pid", "parent_comm", "child_tid", "child_pid",
                           "child_comm"),
    "sched_process_exec": ("tid", "filename"),
    "sched_process_exit": ("tid",),
}

_TEXT_FIELDS = {"comm", "prev_comm", "next_comm", "parent_comm", "child_comm", "name", "filename"}


@dataclass(frozen=True)
class ColumnSpec:
    """What :func:`read_columns` is asked for: fields per logical event (``wanted``) and
    groups of actual event names read as one logical event (``groups``). Each analysis
    says its own (``needed_columns``), so that one pass can serve several (:meth:`union`)."""

    wanted: dict[str, tuple[str, ...]]
    groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def events(self) -> set[str]:
        """The logical events read."""
        return set(self.wanted) | set(self.groups)

    def union(self, *others: ColumnSpec) -> ColumnSpec:
        """Every event and field of ``self`` and ``others``."""
        wanted: dict[str, tuple[str, ...]] = {}
        groups: dict[str, list[str]] = {}
        for spec in (self, *others):
            for ev, fs in spec.wanted.items():
                wanted[ev] = tuple(dict.fromkeys((*wanted.get(ev, ()), *fs)))
            for ev, names in spec.groups.items():
                groups[ev] = list(dict.fromkeys((*groups.get(ev, ()), *names)))
        return ColumnSpec(wanted, groups)


@dataclass
class KernelColumns:
    """Columns of some logical kernel events, gathered over a whole trace set.

    ``events[logical]`` holds ``seq`` (int64 position in the trace order of the events read:
    increasing, not dense, only comparable within one read), ``timestamp`` (ns), ``cpu`` and
    each requested field under its logical name (strings as object arrays). ``first_ts`` /
    ``last_ts`` are the first and last timestamps of *any* event in [begin, end] (what
    lttng-analyses takes as the analysed time range), ``n_events`` their number (events of
    every class); None / 0 when there is none.

    ``fault``: when read with ``partial=True`` and the trace is corrupt or truncated, the
    :class:`~tracewatch.errors.DecodeError` that stopped the pass; the columns, range, count
    and windows are then those of the events delivered before it (what ``tracewatch dump``
    prints). None when the whole range was read.
    """

    layout: KernelLayout
    events: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    first_ts: int | None = None
    last_ts: int | None = None
    n_events: int = 0
    #: with ``period``: window index -> [first ts, last ts, number of events] of the events
    #: in [begin, end], windows [origin + k * period, origin + (k + 1) * period)
    windows: dict[int, list[int]] = field(default_factory=dict)
    period: int | None = None
    origin: int | None = None
    fault: DecodeError | None = None

    def get(self, logical: str) -> dict[str, np.ndarray] | None:
        return self.events.get(logical)

    def __contains__(self, logical: object) -> bool:
        return logical in self.events


def _empty_columns(fields: Sequence[str], codes: bool = False) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"seq": np.zeros(0, np.int64), "timestamp": np.zeros(0, np.int64),
                                  "cpu": np.zeros(0, np.int32)}
    for f in fields:
        out[f] = (np.zeros(0, np.int32) if codes else np.empty(0, object)) if f in _TEXT_FIELDS \
            else np.zeros(0, np.int64)
    return out


def read_columns(ts: TraceSet, layout: KernelLayout, wanted: Mapping[str, Sequence[str]],
                 begin: int | None = None, end: int | None = None,
                 groups: Mapping[str, Sequence[str]] | None = None,
                 period: int | None = None, text: str = "object",
                 partial: bool = False) -> KernelColumns:
    """One pass over ``ts``: the columns of each wanted logical event the trace has.

    Events before ``begin`` are read too (the state at ``begin`` depends on them); reading
    stops after ``end``. A trace set reading files (:attr:`TraceSet.reports_times`) decodes
    only the wanted classes and tallies the times of the others (falling back to decoding
    everything when a stream's timestamps go backwards); others (live) decode every event. Logical events the layout lacks are left out (check with
    :meth:`KernelLayout.require` first). Fields are gathered with :func:`_walk_column`
    (vectorized, also after variable-size fields); other layouts fall back to
    :meth:`EventBatch.columns` and then to per-event decoding.

    ``groups`` maps extra logical names to several actual event names read as one (e.g.
    every ``syscall_exit_*``); their field names are not remapped, and their columns hold
    ``gid`` too (the global event class id of each event, see ``ts.classes``).

    ``period`` (ns): also record the first/last timestamp and count of the events of each
    window of that length, aligned on the first event in [begin, end] (see
    :func:`period_windows`).

    ``text="codes"``: text fields as int32 codes of the process-wide string pool
    (:func:`tracewatch.kernel.fast.texts` gives the strings) instead of object arrays: no
    Python string is made per event.

    A corrupt or truncated trace raises :class:`~tracewatch.errors.DecodeError`, unless
    ``partial``: the columns of the events the time-ordered merge delivered before the fault
    are then returned, with the error in :attr:`KernelColumns.fault` (the caller must report
    it). Those are exactly the events ``tracewatch dump`` prints: when the selective pass
    meets a fault, the events are read again decoding every class (the merge of the wanted
    classes alone would deliver a different set of other streams' events before the fault).
    """
    codes = text == "codes"
    present, actual, gids, luts, read = _plan(ts, layout, wanted, groups)
    if ts.reports_times:
        kc = _read_skipping(ts, layout, present, actual, gids, luts, read, begin, end, period, codes,
                            partial)
        if kc is not None:
            return kc
    return _read(ts, layout, present, actual, gids, luts, None, begin, end, period, codes,
                 partial=partial)


_Plan = tuple[dict[str, list[str]], dict[str, "str | None"], dict[str, np.ndarray],
              dict[str, np.ndarray], list[str]]


def _plan(ts: TraceSet, layout: KernelLayout, wanted: Mapping[str, Sequence[str]],
          groups: Mapping[str, Sequence[str]] | None) -> _Plan:
    """(fields per logical event the trace has, its actual event name or None for a group,
    its class ids, a lookup table of them, the names of the classes to decode)."""
    present = {ev: list(fs) for ev, fs in wanted.items() if layout.has(ev)}
    by_name: dict[str, list[int]] = {}
    for c in ts.classes:
        by_name.setdefault(c.name, []).append(c.gid)

    def class_ids(names: Sequence[str]) -> np.ndarray:
        return np.array([g for n in dict.fromkeys(names) for g in by_name.get(n, ())], np.int64)

    gids = {ev: class_ids([layout.event(ev)]) for ev in present}
    actual: dict[str, str | None] = {ev: layout.event(ev) for ev in present}
    for ev, names in (groups or {}).items():
        present[ev] = list(wanted.get(ev, ()))
        gids[ev] = class_ids(list(names))
        actual[ev] = None
    luts: dict[str, np.ndarray] = {}
    for ev, g in gids.items():
        lut = luts[ev] = np.zeros(max(len(ts.classes), 1), bool)
        lut[np.asarray(g, np.int64)] = True
    read = sorted({ts.classes[g].name for ids in gids.values() for g in ids.tolist()})
    return present, actual, gids, luts, read


class _Backwards(Exception):
    """Timestamps go backwards in a stream: the merged order of a subset of the events is
    not the subset of the merged order."""


class _Tally:
    """Count, first and last timestamp (and, with a period, every timestamp) of all the
    events in [begin, end], from the times :meth:`TraceSet.batches` reports per chunk."""

    def __init__(self, begin: int | None, end: int | None, period: int | None) -> None:
        self.begin, self.end, self.period = begin, end, period
        self.n = 0
        self.first: int | None = None
        self.last: int | None = None
        self.parts: list[np.ndarray] = []

    def add(self, t: np.ndarray, backwards: int) -> None:
        if backwards:
            raise _Backwards
        if self.begin is not None:
            t = t[t >= self.begin]
        if self.end is not None:
            t = t[t <= self.end]
        if t.size == 0:
            return
        self.n += int(t.size)
        lo, hi = int(t.min()), int(t.max())
        self.first = lo if self.first is None else min(self.first, lo)
        self.last = hi if self.last is None else max(self.last, hi)
        if self.period is not None:
            self.parts.append(t)

    def fill(self, kc: KernelColumns) -> None:
        kc.first_ts, kc.last_ts, kc.n_events = self.first, self.last, self.n
        if self.period is not None and self.parts:
            _add_windows(kc, np.sort(np.concatenate(self.parts)), self.period)


def _read_skipping(ts: TraceSet, layout: KernelLayout, present: dict[str, list[str]],
                   actual: dict[str, str | None], gids: dict[str, np.ndarray], luts: dict[str, np.ndarray],
                   names: list[str], begin: int | None, end: int | None, period: int | None,
                   codes: bool, partial: bool = False) -> KernelColumns | None:
    """:func:`_read` decoding only the wanted classes (the others are stepped over, their
    times tallied for the range, count and windows); ``seq`` is then the position among the
    events read, which orders them as the position among all events does when no stream's
    timestamps go backwards. None when some do, or (``partial``) at a decoding fault, the
    caller then reading everything: warnings are held back until the pass is known good,
    so that none is given twice."""
    tally = _Tally(begin, end, period)
    try:
        with _HeldWarnings(ts):
            kc = _read(ts, layout, present, actual, gids, luts, tally, begin, end, period, codes,
                       names)
    except _Backwards:
        return None
    except DecodeError:
        if partial:
            return None
        raise
    tally.fill(kc)
    return kc


class _HeldWarnings:
    """Holds back the warnings of ``ts`` during a pass that may be abandoned (and read again):
    given when the block ends normally, dropped when it raises."""

    def __init__(self, ts: TraceSet) -> None:
        self.ts = ts
        self.held: list[str] = []

    def __enter__(self) -> None:
        self.saved, self.ts.on_warning = self.ts.on_warning, self.held.append

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.ts.on_warning = self.saved
        if exc_type is None and self.saved is not None:
            for m in self.held:
                self.saved(m)


def _read(ts: TraceSet, layout: KernelLayout, present: dict[str, list[str]], actual: dict[str, str | None],
          gids: dict[str, np.ndarray], luts: dict[str, np.ndarray], tally: _Tally | None,
          begin: int | None, end: int | None, period: int | None, codes: bool,
          names: list[str] | None = None, partial: bool = False) -> KernelColumns:
    """The pass of :func:`read_columns`: every event (``tally`` None), or only the classes
    ``names``, the times of all events going to ``tally``. ``partial``: a DecodeError ends
    the pass, recorded in ``fault``, instead of propagating."""
    parts: dict[str, list[dict[str, np.ndarray]]] = {ev: [] for ev in present}
    kc = KernelColumns(layout, period=period)
    try:
        for got in _pass(ts, layout, present, actual, gids, luts, tally, begin, end, period,
                         codes, names, kc):
            for ev, cols in got.items():
                parts[ev].append(cols)
    except DecodeError as e:
        if not partial:
            raise
        kc.fault = e
    for ev, fs in present.items():
        ps = parts[ev]
        if not ps:
            kc.events[ev] = _empty_columns(fs, codes)
            if actual[ev] is None:
                kc.events[ev]["gid"] = np.zeros(0, np.int32)
        elif len(ps) == 1:
            kc.events[ev] = ps[0]
        else:
            kc.events[ev] = {k: np.concatenate([p[k] for p in ps]) for k in ps[0]}
    return kc


def _pass(ts: TraceSet, layout: KernelLayout, present: dict[str, list[str]],
          actual: dict[str, str | None], gids: dict[str, np.ndarray], luts: dict[str, np.ndarray],
          tally: _Tally | None, begin: int | None, end: int | None, period: int | None,
          codes: bool, names: list[str] | None, kc: KernelColumns
          ) -> Iterator[dict[str, dict[str, np.ndarray]]]:
    """Batch by batch, the columns of the wanted events it holds (``seq``: position in the
    pass); without ``tally``, the range, count and windows go to ``kc`` as batches come."""
    seq0 = 0
    source = ts.batches(end=end) if tally is None else ts.batches(names=names, end=end, on_times=tally.add)
    try:
        for b in source:
            n = len(b)
            if tally is None:
                k = int(np.searchsorted(b.ts, begin, side="left")) if begin is not None else 0
                if k < n:
                    if kc.first_ts is None:
                        kc.first_ts = int(b.ts[k])
                    kc.last_ts = int(b.ts[-1])
                    kc.n_events += n - k
                    if period is not None:
                        _add_windows(kc, b.ts[k:], period)
            parts: dict[str, list[dict[str, np.ndarray]]] = {ev: [] for ev in present}
            _gather(ts, b, layout, present, actual, gids, luts, parts, seq0, codes)
            seq0 += n
            yield {ev: ps[0] for ev, ps in parts.items() if ps}
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


class ColumnsRestart(Exception):
    """:func:`iter_columns` decoding only the wanted classes met a stream whose timestamps
    go backwards: the subset's order is not the trace's. Start over with ``skip=False``."""


class ColumnStream:
    """The columns of :func:`iter_columns`, one :class:`KernelColumns` per batch read (only
    the logical events the batch holds; ``seq`` counts from the start of the pass). Once
    iterated to the end, ``first_ts``, ``last_ts`` and ``n_events`` are those of every event
    in [begin, end], as :func:`read_columns` gives them; ``fault`` the decoding error that
    ended a ``partial`` stream early (None: read to the end)."""

    def __init__(self, ts: TraceSet, layout: KernelLayout, wanted: Mapping[str, Sequence[str]],
                 begin: int | None, end: int | None, groups: Mapping[str, Sequence[str]] | None,
                 codes: bool, skip: bool, partial: bool) -> None:
        self._ts, self._layout, self._codes = ts, layout, codes
        self._begin, self._end = begin, end
        self._plan = _plan(ts, layout, wanted, groups)
        self._skip = skip and ts.reports_times
        self._partial = partial
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.n_events = 0
        self.fault: DecodeError | None = None

    def __iter__(self) -> Iterator[KernelColumns]:
        ts, layout = self._ts, self._layout
        present, actual, gids, luts, names = self._plan
        kc = KernelColumns(layout)
        if not self._skip:
            try:
                for got in _pass(ts, layout, present, actual, gids, luts, None, self._begin,
                                 self._end, None, self._codes, None, kc):
                    yield KernelColumns(layout, got)
            except DecodeError as e:
                if not self._partial:
                    raise
                self.fault = e
        else:
            tally = _Tally(self._begin, self._end, None)
            try:
                with _HeldWarnings(ts):
                    for got in _pass(ts, layout, present, actual, gids, luts, tally, self._begin,
                                     self._end, None, self._codes, names, kc):
                        yield KernelColumns(layout, got)
            except _Backwards:
                raise ColumnsRestart("a stream's timestamps go backwards") from None
            except DecodeError:
                if not self._partial:
                    raise
                # the events before the fault are those the merge of every class delivers
                raise ColumnsRestart("a decoding fault: read every class up to it") from None
            tally.fill(kc)
        self.first_ts, self.last_ts, self.n_events = kc.first_ts, kc.last_ts, kc.n_events


def iter_columns(ts: TraceSet, layout: KernelLayout, wanted: Mapping[str, Sequence[str]],
                 begin: int | None = None, end: int | None = None,
                 groups: Mapping[str, Sequence[str]] | None = None, text: str = "object",
                 skip: bool = True, partial: bool = False) -> ColumnStream:
    """:func:`read_columns` batch by batch, for a consumer that keeps state rather than
    columns (memory stays bounded by a batch): see :class:`ColumnStream`. A trace set
    reading files decodes only the wanted classes (``skip``); when a stream's timestamps go
    backwards, iterating raises :class:`ColumnsRestart` (held warnings are dropped): start
    over with ``skip=False``. A decoding fault raises :class:`~tracewatch.errors.DecodeError`
    after the batches before it were yielded; with ``partial``, the stream ends there instead,
    the error in :attr:`ColumnStream.fault` (the batches are then those of the events
    ``tracewatch dump`` prints: a selective pass meeting a fault raises
    :class:`ColumnsRestart`, to be read again with ``skip=False``)."""
    return ColumnStream(ts, layout, wanted, begin, end, groups, text == "codes", skip, partial)


def _gather(ts: TraceSet, b: EventBatch, layout: KernelLayout, present: dict[str, list[str]],
            actual: dict[str, str | None], gids: dict[str, np.ndarray], luts: dict[str, np.ndarray],
            parts: dict[str, list[dict[str, np.ndarray]]], seq0: int, codes: bool) -> None:
    """Append the columns of the wanted events of batch ``b`` to ``parts``."""
    nclass = len(ts.classes)
    for ev, fs in present.items():
        lut = luts[ev]
        if lut.size < nclass:  # live: classes appeared since
            lut = luts[ev] = np.zeros(nclass, bool)
            act_ = actual[ev]
            lut[ts.class_ids([act_]) if act_ is not None else gids[ev]] = True
        idx = np.flatnonzero(lut[b.gid])
        if idx.size == 0:
            continue
        out = {"seq": idx.astype(np.int64) + seq0, "timestamp": b.ts[idx], "cpu": b.cpu[idx]}
        act = actual[ev]
        if act is None:
            out["gid"] = b.gid[idx]
            for f in fs:
                out[f] = _group_column(b, idx, f, codes)
        else:
            fnames = [layout.field(ev, f) for f in fs]
            cols = _walk_columns(b, idx, fnames, codes) if fs else {}
            for f, af in zip(fs, fnames, strict=True):
                out[f] = cols[af] if cols is not None else _column(b, idx, act, af, codes)
        parts[ev].append(out)


def _add_windows(kc: KernelColumns, ts: np.ndarray, period: int) -> None:
    if kc.origin is None:
        kc.origin, kc.period = int(ts[0]), period
    w = (ts.astype(np.int64) - kc.origin) // period
    uw, first, counts = np.unique(w, return_index=True, return_counts=True)
    for x, f, c in zip(uw.tolist(), first.tolist(), counts.tolist(), strict=True):
        lo, hi = int(ts[f]), int(ts[f + c - 1])
        cur = kc.windows.get(x)
        if cur is None:
            kc.windows[x] = [lo, hi, c]
        else:
            cur[0], cur[1], cur[2] = min(cur[0], lo), max(cur[1], hi), cur[2] + c


def period_windows(kc: KernelColumns) -> Iterator[tuple[int, int, KernelColumns]]:
    """For each window with events (read with ``period``), in time order: its start, its
    end (exclusive) and the columns as :func:`read_columns` would have given them with
    ``begin``/``end`` the window's bounds (events after the window cut off, range = first
    and last event in the window); each holds ``kc.fault``. None when no event is in the
    range; but when no event was read before a fault, that fault is raised (no window
    could hold it)."""
    if kc.period is None:
        raise ValueError("columns were not read with a period")
    if kc.origin is None:
        if kc.fault is not None:
            raise kc.fault
        return
    for w in sorted(kc.windows):
        first, last, count = kc.windows[w]
        start = kc.origin + w * kc.period
        stop = start + kc.period
        cut: dict[str, dict[str, np.ndarray]] = {}
        for ev, cols in kc.events.items():
            k = int(np.searchsorted(cols["timestamp"], stop - 1, side="right"))
            cut[ev] = cols if k == cols["timestamp"].size else {f: v[:k] for f, v in cols.items()}
        yield start, stop, KernelColumns(kc.layout, cut, first, last, count, fault=kc.fault)


def _slow_values(b: EventBatch, idx: np.ndarray, fname: str, codes: bool,
                 actual: str | None = None) -> np.ndarray:
    if actual is not None:
        try:
            col = b.take(idx).columns(actual, [fname])[fname]
            if codes and col.dtype == object:
                return intern_strings(col.tolist())
            return col
        except KeyError:  # after a variable-size field the columns API does not reach
            pass
    vals = [e.fields.get(fname) for e in b.take(idx).iter_events()]
    if any(isinstance(v, str) for v in vals):
        return intern_strings(vals) if codes else np.array(vals, object)
    # a field this tracer version does not record (LTTng 2.1's fork has no pids): -1, unknown
    return np.array([-1 if v is None else v for v in vals], np.int64)


def _column(b: EventBatch, idx: np.ndarray, actual: str, fname: str, codes: bool = False) -> np.ndarray:
    col = _walk_column(b, idx, fname, codes)
    return col if col is not None else _slow_values(b, idx, fname, codes, actual)


def _group_column(b: EventBatch, idx: np.ndarray, fname: str, codes: bool = False) -> np.ndarray:
    """Field ``fname`` of events ``idx`` of ``b``, which may be of several event classes."""
    col = _walk_column(b, idx, fname, codes)
    return col if col is not None else _slow_values(b, idx, fname, codes)


def _walk_column(b: EventBatch, idx: np.ndarray, fname: str, codes: bool = False) -> np.ndarray | None:
    """Values of payload field ``fname`` of the events ``idx`` of ``b`` (see
    :func:`_walk_columns`); None when it cannot be walked to."""
    cols = _walk_columns(b, idx, [fname], codes)
    return None if cols is None else cols[fname]


#: (id of an event class, wanted fields) -> (the class, {field: (value offset, is text)} or None)
_PLANS: dict[tuple[int, tuple[str, ...]], tuple[object, dict[str, tuple[int, bool]] | None]] = {}


def _static_plan(gc: object, fnames: tuple[str, ...]) -> dict[str, tuple[int, bool]] | None:
    """Where the wanted fields are among the decoded values of a payload of class ``gc`` when
    that does not depend on the event (no array before them); None otherwise."""
    key = (id(gc), fnames)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is gc:
        return hit[1]
    st = gc.event.fields  # type: ignore[attr-defined]
    plan: dict[str, tuple[int, bool]] | None = {}
    todo = set(fnames)
    k = 0
    for name, t in (st.fields if st is not None else ()):
        if not todo:
            break
        text = isinstance(t, StringType) or is_char_array(t)
        fname = field_name(name)
        if fname in todo:
            ok = text or (isinstance(t, IntType) and t.size <= 64) or \
                (isinstance(t, EnumType) and t.container.size <= 64)
            if not ok:
                break
            todo.discard(fname)
            plan[fname] = (k, text)  # type: ignore[index]
        if text or (isinstance(t, IntType) and t.size > 64):
            k += 2
        elif isinstance(t, (IntType, EnumType, FloatType)):
            k += 1
        else:
            break
    if todo:
        plan = None
    _PLANS[key] = (gc, plan)
    return plan


def _walk_static(b: EventBatch, idx: np.ndarray, gid: np.ndarray, src: np.ndarray, row: np.ndarray,
                 fnames: Sequence[str], codes: bool) -> dict[str, np.ndarray] | None:
    """:func:`_walk_columns` when every class has a static plan agreeing on each field's
    kind: one gather per chunk and field, whatever the number of classes."""
    classes = b.trace_set.classes
    present = np.flatnonzero(np.bincount(gid, minlength=1))
    fkey = tuple(fnames)
    plans = [_static_plan(classes[g], fkey) for g in present.tolist()]
    if any(p is None for p in plans):
        return None
    kinds = {f: {p[f][1] for p in plans if p is not None} for f in fnames}
    if any(len(v) != 1 for v in kinds.values()):
        return None
    koff: dict[str, np.ndarray] = {}
    for f in fnames:
        lut = np.zeros(int(present.max()) + 1, np.int64)
        lut[present] = [p[f][0] for p in plans if p is not None]
        koff[f] = lut[gid]
    out: dict[str, np.ndarray] = {f: np.zeros(idx.size, np.int32 if kinds[f] == {True} else np.int64)
                                  for f in fnames}
    nsrc = int(src.max()) + 1
    if nsrc == 1:
        runs = [np.arange(idx.size)]
    else:
        order = np.argsort(src.astype(np.uint16) if nsrc < 65536 else src, kind="stable")
        cut = np.flatnonzero(np.diff(src[order])) + 1
        runs = np.split(order, cut)
    for m in runs:
        chunk = b.chunks[int(src[m[0]])]
        r = row[m]
        base = chunk.off[r, 3].astype(np.int64)
        for f in fnames:
            pos = base + koff[f][m]
            if kinds[f] == {True}:
                buf = np.asarray(chunk.buf).view(np.uint8)
                out[f][m] = intern_texts(buf, chunk.vals[pos] + chunk.buf_base[r], chunk.vals[pos + 1])
            else:
                out[f][m] = chunk.vals[pos]
    if not codes:
        for f in fnames:
            if kinds[f] == {True}:
                out[f] = texts(out[f])
    return out


def _walk_columns(b: EventBatch, idx: np.ndarray, fnames: Sequence[str],
                  codes: bool = False) -> dict[str, np.ndarray] | None:
    """Values of payload fields ``fnames`` of the events ``idx`` of ``b``, in one walk of the
    decoded values of each payload (ints: 1 value; strings: offset, length; int
    arrays/sequences: count then elements). None when a field on the way (or a wanted
    field) is of another kind, is missing, or is an int in one event class and text in
    another. Text: object arrays, or int32 interned codes with ``codes``."""
    if idx.size == 0:
        return None
    gid, src, row = b.gid[idx], b.src[idx], b.row[idx]
    fast = _walk_static(b, idx, gid, src, row, fnames, codes)
    if fast is not None:
        return fast
    classes = b.trace_set.classes
    wanted = set(fnames)
    ints: dict[str, np.ndarray] = {}
    tcodes: dict[str, np.ndarray] = {}
    # runs of equal (class, chunk): one walk each
    nsrc = int(src.max()) + 1
    key = gid.astype(np.int64) * nsrc + src
    if key.size > 1 and bool(np.any(key[1:] != key[:-1])):
        order = np.argsort(key, kind="stable")
        ks = key[order]
        cut = np.flatnonzero(ks[1:] != ks[:-1]) + 1
        runs = np.split(order, cut)
    else:
        runs = [np.arange(idx.size)]
    for m in runs:
        g, c = int(gid[m[0]]), int(src[m[0]])
        st = classes[g].event.fields
        if st is None:
            return None
        chunk = b.chunks[c]
        r = row[m]
        pos = chunk.off[r, 3].astype(np.int64)
        todo = set(wanted)
        for name, t in st.fields:
            if not todo:
                break
            text = isinstance(t, StringType) or is_char_array(t)
            fname = field_name(name)
            if fname in todo:
                todo.discard(fname)
                if text:
                    col = tcodes.get(fname)
                    if col is None:
                        col = tcodes[fname] = np.zeros(idx.size, np.int32)
                    buf = np.asarray(chunk.buf).view(np.uint8)
                    col[m] = intern_texts(buf, chunk.vals[pos] + chunk.buf_base[r], chunk.vals[pos + 1])
                elif isinstance(t, (IntType, EnumType)) and t.size <= 64 if isinstance(t, IntType) \
                        else isinstance(t, EnumType) and t.container.size <= 64:
                    icol = ints.get(fname)
                    if icol is None:
                        icol = ints[fname] = np.zeros(idx.size, np.int64)
                    icol[m] = chunk.vals[pos]
                else:
                    return None
                if not todo:
                    break
            if text or (isinstance(t, IntType) and t.size > 64):
                pos = pos + 2
            elif isinstance(t, (IntType, EnumType, FloatType)):
                pos = pos + 1
            elif isinstance(t, (ArrayType, SequenceType)) and isinstance(t.element, (IntType, EnumType)) \
                    and not (isinstance(t.element, IntType) and t.element.size > 64):
                pos = pos + chunk.vals[pos] + 1
            else:
                return None
        if todo:
            return None
    if set(ints) & set(tcodes):
        return None
    out: dict[str, np.ndarray] = dict(ints)
    for f, cc in tcodes.items():
        out[f] = cc if codes else texts(cc)
    return out


@dataclass(frozen=True)
class Thread:
    """What the trace tells of a thread: its process (pid), parent process and name."""

    tid: int
    pid: int | None
    comm: str
    ppid: int | None = None
    exited: bool = False


class ThreadTable(Mapping[int, Thread]):
    """tid -> :class:`Thread`, as of the end of the columns it was built from.

    Stored as arrays sorted by tid (``tids``, ``pid_arr``/``ppid_arr`` with -1 for unknown,
    ``comm_arr``, ``exited_arr``); :class:`Thread` objects are made only when asked for.
    Use the vectorized :meth:`pids`/:meth:`comms` for many threads.
    """

    def __init__(self, tids: np.ndarray, pids: np.ndarray, ppids: np.ndarray, comms: np.ndarray,
                 exited: np.ndarray) -> None:
        self.tids = tids
        self.pid_arr = pids
        self.ppid_arr = ppids
        self.comm_arr = comms
        self.exited_arr = exited

    def _index(self, tid: int) -> int:
        i = int(np.searchsorted(self.tids, tid))
        return i if i < self.tids.size and int(self.tids[i]) == tid else -1

    def __getitem__(self, tid: int) -> Thread:
        i = self._index(tid)
        if i < 0:
            raise KeyError(tid)
        pid, ppid = int(self.pid_arr[i]), int(self.ppid_arr[i])
        return Thread(tid, pid if pid >= 0 else None, str(self.comm_arr[i]), ppid if ppid >= 0 else None,
                      bool(self.exited_arr[i]))

    def __contains__(self, tid: object) -> bool:
        return isinstance(tid, (int, np.integer)) and self._index(int(tid)) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self.tids.tolist())

    def __len__(self) -> int:
        return int(self.tids.size)

    def pid_of(self, tid: int) -> int | None:
        i = self._index(tid)
        return int(self.pid_arr[i]) if i >= 0 and self.pid_arr[i] >= 0 else None

    def comm_of(self, tid: int, default: str = "") -> str:
        i = self._index(tid)
        return str(self.comm_arr[i]) if i >= 0 else default

    def _lookup(self, tids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(tids).astype(np.int64)
        if self.tids.size == 0:
            return np.zeros(t.size, np.int64), np.zeros(t.size, bool)
        pos = np.minimum(np.searchsorted(self.tids, t), self.tids.size - 1)
        return pos, self.tids[pos] == t

    def pids(self, tids: np.ndarray) -> np.ndarray:
        """pid of each tid (-1 where unknown)."""
        pos, ok = self._lookup(tids)
        return np.where(ok, self.pid_arr[pos] if self.tids.size else -1, -1).astype(np.int64)

    def comms(self, tids: np.ndarray, default: str = "") -> np.ndarray:
        """Name of each tid (``default`` where unknown), as an object array."""
        pos, ok = self._lookup(tids)
        out = np.full(pos.size, default, object)
        if self.tids.size:
            out[ok] = self.comm_arr[pos[ok]]
        return out


def last_per_key(key: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Index (into key) of the element with the greatest ``order`` for each distinct key."""
    if key.size == 0:
        return np.zeros(0, np.int64)
    o = np.lexsort((order, key))
    ks = key[o]
    last = np.ones(ks.size, bool)
    last[:-1] = ks[1:] != ks[:-1]
    return o[last]


def thread_table(kc: KernelColumns) -> ThreadTable:
    """The thread table from statedump, fork, exec, exit and sched_switch columns.

    comm: last name seen (statedump name, fork child_comm/parent_comm, exec file name,
    sched_switch next_comm/prev_comm; at equal positions the later of these wins); pid/ppid:
    last known (statedump, fork; a known ppid wins over an unknown one at the same event).
    Text columns may be object arrays or interned codes; only the winning names are decoded.
    """
    n_tid: list[np.ndarray] = []
    n_seq: list[np.ndarray] = []
    n_val: list[np.ndarray] = []
    p_tid: list[np.ndarray] = []
    p_seq: list[np.ndarray] = []
    p_pid: list[np.ndarray] = []
    p_ppid: list[np.ndarray] = []

    def names(tid: np.ndarray, seq: np.ndarray, comm: np.ndarray) -> None:
        n_tid.append(tid)
        n_seq.append(seq)
        n_val.append(comm)

    def procs(tid: np.ndarray, seq: np.ndarray, pid: np.ndarray, ppid: np.ndarray) -> None:
        p_tid.append(tid)
        p_seq.append(seq)
        p_pid.append(pid.astype(np.int64))
        p_ppid.append(ppid.astype(np.int64))

    sd = kc.get("lttng_statedump_process_state")
    if sd is not None and sd["seq"].size:
        names(sd["tid"], sd["seq"], sd["name"])
        procs(sd["tid"], sd["seq"], sd["pid"], sd["ppid"] if "ppid" in sd else np.full(sd["seq"].size, -1))
    fk = kc.get("sched_process_fork")
    if fk is not None and fk["seq"].size:
        names(fk["child_tid"], fk["seq"], fk["child_comm"])
        names(fk["parent_tid"], fk["seq"], fk["parent_comm"])
        procs(fk["child_tid"], fk["seq"], fk["child_pid"], fk["parent_pid"])
        procs(fk["parent_tid"], fk["seq"], fk["parent_pid"], np.full(fk["seq"].size, -1))
    ex = kc.get("sched_process_exec")
    if ex is not None and ex["seq"].size:
        fn = np.array([os.path.basename(str(f)) for f in texts(ex["filename"]).tolist()], object)
        names(ex["tid"], ex["seq"], fn)
    sw = kc.get("sched_switch")
    if sw is not None and sw["seq"].size:
        if "next_comm" in sw:
            names(sw["next_tid"], sw["seq"], sw["next_comm"])
        if "prev_comm" in sw:
            names(sw["prev_tid"], sw["seq"], sw["prev_comm"])
    ids, all_tid = dense_index(n_tid + p_tid)
    order = np.argsort(all_tid, kind="stable")
    rank = np.empty(all_tid.size, np.int64)
    rank[order] = np.arange(all_tid.size)
    all_tid = all_tid[order]
    nt = all_tid.size
    k = len(n_tid)
    comm = np.full(nt, "", object)
    src, row = last_writer([rank[i] for i in ids[:k]], n_seq, nt)
    for s_, vals in enumerate(n_val):
        m = np.flatnonzero(src == s_)
        if m.size:
            comm[m] = texts(vals[row[m]])
    pid = np.full(nt, -1, np.int64)
    ppid = np.full(nt, -1, np.int64)
    # a -1 ppid (unknown) must not hide a known one at the same event
    src, row = last_writer([rank[i] for i in ids[k:]], p_seq, nt, [pp >= 0 for pp in p_ppid])
    for s_ in range(len(p_tid)):
        m = np.flatnonzero(src == s_)
        if m.size:
            pid[m] = p_pid[s_][row[m]]
            ppid[m] = p_ppid[s_][row[m]]
    if nt and all_tid[0] == 0:
        pid[0], ppid[0] = 0, -1
        comm[0] = comm[0] or "swapper"
    exited = np.zeros(nt, bool)
    exits = kc.get("sched_process_exit")
    if exits is not None and exits["seq"].size:
        exited = np.isin(all_tid, exits["tid"].astype(np.int64))
    return ThreadTable(all_tid, pid, ppid, comm, exited)


def current_tasks(kc: KernelColumns, at: int | None = None) -> dict[int, int]:
    """cpu -> tid running on it at time ``at`` (after the last sched_switch at or before it;
    0 is the idle task). CPUs without a sched_switch by then are absent."""
    sw = kc.get("sched_switch")
    if sw is None or sw["seq"].size == 0:
        return {}
    m = np.ones(sw["seq"].size, bool) if at is None else sw["timestamp"] <= at
    cpu, seq, nxt = sw["cpu"][m], sw["seq"][m], sw["next_tid"][m]
    idx = last_per_key(cpu.astype(np.int64), seq)
    return {int(cpu[i]): int(nxt[i]) for i in idx.tolist()}
