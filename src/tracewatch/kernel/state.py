"""Kernel state computed from columns: thread table and current task of each CPU.

:func:`read_columns` makes one pass over a trace set and gathers, for each *logical* kernel
event an analysis asks for (see :mod:`tracewatch.kernel.layouts`), its columns concatenated
over every batch, with a global ``seq`` (position in the time-ordered event sequence of the
trace set) so that events of different types can be put back in trace order.

:func:`thread_table` builds the tid -> (pid, comm, ppid) table from the statedump,
``sched_process_fork``/``exec``/``exit`` and ``sched_switch`` columns with NumPy (the last
value seen wins); :func:`current_tasks` gives the task running on each CPU at a time.
No per-event Python loop runs here: only loops over distinct threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..ctf.batch import EventBatch
from ..ctf.compile import is_char_array
from ..ctf.stream import Chunk
from ..ctf.trace import TraceSet
from ..ctf.types import ArrayType, EnumType, FloatType, IntType, SequenceType, StringType
from ..ctf.values import decode_text, field_name
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


@dataclass
class KernelColumns:
    """Columns of some logical kernel events, gathered over a whole trace set.

    ``events[logical]`` holds ``seq`` (int64 global position), ``timestamp`` (ns), ``cpu`` and
    each requested field under its logical name (strings as object arrays). ``first_ts`` /
    ``last_ts`` are the first and last timestamps of *any* event in [begin, end] (what
    lttng-analyses takes as the analysed time range); None when there is none.
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

    def get(self, logical: str) -> dict[str, np.ndarray] | None:
        return self.events.get(logical)

    def __contains__(self, logical: object) -> bool:
        return logical in self.events


def _empty_columns(fields: Sequence[str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"seq": np.zeros(0, np.int64), "timestamp": np.zeros(0, np.int64),
                                  "cpu": np.zeros(0, np.int32)}
    for f in fields:
        out[f] = np.empty(0, object) if f in _TEXT_FIELDS else np.zeros(0, np.int64)
    return out


def read_columns(ts: TraceSet, layout: KernelLayout, wanted: Mapping[str, Sequence[str]],
                 begin: int | None = None, end: int | None = None,
                 groups: Mapping[str, Sequence[str]] | None = None,
                 period: int | None = None) -> KernelColumns:
    """One pass over ``ts``: the columns of each wanted logical event the trace has.

    Events before ``begin`` are read too (the state at ``begin`` depends on them); reading
    stops after ``end``. Logical events the layout lacks are left out (check with
    :meth:`KernelLayout.require` first). Fields are gathered with :func:`_walk_column`
    (vectorized, also after variable-size fields); other layouts fall back to
    :meth:`EventBatch.columns` and then to per-event decoding.

    ``groups`` maps extra logical names to several actual event names read as one (e.g.
    every ``syscall_exit_*``); their field names are not remapped, and their columns hold
    ``gid`` too (the global event class id of each event, see ``ts.classes``).

    ``period`` (ns): also record the first/last timestamp and count of the events of each
    window of that length, aligned on the first event in [begin, end] (see
    :func:`period_windows`).
    """
    present = {ev: list(fs) for ev, fs in wanted.items() if layout.has(ev)}
    gids = {ev: ts.class_ids([layout.event(ev)]) for ev in present}
    actual: dict[str, str | None] = {ev: layout.event(ev) for ev in present}
    for ev, names in (groups or {}).items():
        present[ev] = list(wanted.get(ev, ()))
        gids[ev] = ts.class_ids(list(names))
        actual[ev] = None
    parts: dict[str, list[dict[str, np.ndarray]]] = {ev: [] for ev in present}
    kc = KernelColumns(layout)
    seq0 = 0
    for b in ts.batches(end=end):
        n = len(b)
        k = int(np.searchsorted(b.ts, begin, side="left")) if begin is not None else 0
        if k < n:
            if kc.first_ts is None:
                kc.first_ts = int(b.ts[k])
            kc.last_ts = int(b.ts[-1])
            kc.n_events += n - k
            if period is not None:
                _add_windows(kc, b.ts[k:], period)
        for ev, fs in present.items():
            idx = np.flatnonzero(np.isin(b.gid, gids[ev]))
            if idx.size == 0:
                continue
            out = {"seq": idx.astype(np.int64) + seq0, "timestamp": b.ts[idx], "cpu": b.cpu[idx]}
            act = actual[ev]
            if act is None:
                out["gid"] = b.gid[idx]
                for f in fs:
                    out[f] = _group_column(b, idx, f)
            else:
                names = [layout.field(ev, f) for f in fs]
                cols = _walk_columns(b, idx, names) if fs else {}
                for f, af in zip(fs, names, strict=True):
                    out[f] = cols[af] if cols is not None else _column(b, idx, act, af)
            parts[ev].append(out)
        seq0 += n
    for ev, fs in present.items():
        ps = parts[ev]
        if not ps:
            kc.events[ev] = _empty_columns(fs)
            if actual[ev] is None:
                kc.events[ev]["gid"] = np.zeros(0, np.int32)
        elif len(ps) == 1:
            kc.events[ev] = ps[0]
        else:
            kc.events[ev] = {k: np.concatenate([p[k] for p in ps]) for k in ps[0]}
    return kc


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
    and last event in the window)."""
    if kc.period is None or kc.origin is None:
        raise ValueError("columns were not read with a period")
    for w in sorted(kc.windows):
        first, last, count = kc.windows[w]
        start = kc.origin + w * kc.period
        stop = start + kc.period
        cut: dict[str, dict[str, np.ndarray]] = {}
        for ev, cols in kc.events.items():
            k = int(np.searchsorted(cols["timestamp"], stop - 1, side="right"))
            cut[ev] = cols if k == cols["timestamp"].size else {f: v[:k] for f, v in cols.items()}
        yield start, stop, KernelColumns(kc.layout, cut, first, last, count)


def _column(b: EventBatch, idx: np.ndarray, actual: str, fname: str) -> np.ndarray:
    col = _walk_column(b, idx, fname)
    if col is not None:
        return col
    try:
        return b.take(idx).columns(actual, [fname])[fname]
    except KeyError:  # after a variable-size field the columns API does not reach
        vals = [e.fields.get(fname) for e in b.take(idx).iter_events()]
        return np.array(vals, object if any(isinstance(v, str) for v in vals) else np.int64)


def _group_column(b: EventBatch, idx: np.ndarray, fname: str) -> np.ndarray:
    """Field ``fname`` of events ``idx`` of ``b``, which may be of several event classes."""
    col = _walk_column(b, idx, fname)
    if col is not None:
        return col
    vals = [e.fields.get(fname) for e in b.take(idx).iter_events()]
    return np.array(vals, object if any(isinstance(v, str) for v in vals) else np.int64)


def _walk_column(b: EventBatch, idx: np.ndarray, fname: str) -> np.ndarray | None:
    """Values of payload field ``fname`` of the events ``idx`` of ``b`` (see
    :func:`_walk_columns`); None when it cannot be walked to."""
    cols = _walk_columns(b, idx, [fname])
    return None if cols is None else cols[fname]


def _walk_columns(b: EventBatch, idx: np.ndarray, fnames: Sequence[str]) -> dict[str, np.ndarray] | None:
    """Values of payload fields ``fnames`` of the events ``idx`` of ``b``, in one walk of the
    decoded values of each payload (ints: 1 value; strings: offset, length; int
    arrays/sequences: count then elements). None when a field on the way (or a wanted
    field) is of another kind, is missing, or is an int in one event class and text in
    another."""
    gid, src, row = b.gid[idx], b.src[idx], b.row[idx]
    classes = b.trace_set.classes
    wanted = set(fnames)
    ints: dict[str, np.ndarray] = {}
    texts: dict[str, np.ndarray] = {}
    for g in np.unique(gid).tolist():
        st = classes[g].event.fields
        if st is None:
            return None
        mg = gid == g
        for c in np.unique(src[mg]).tolist():
            chunk = b.chunks[c]
            m = mg & (src == c)
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
                        col = texts.get(fname)
                        if col is None:
                            col = texts[fname] = np.empty(idx.size, object)
                        col[m] = _gather_text(chunk, chunk.vals[pos] + chunk.buf_base[r], chunk.vals[pos + 1])
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
    if set(ints) & set(texts):
        return None
    out = {**ints, **texts}
    if idx.size == 0:
        return None
    return out


def _gather_text(chunk: Chunk, offs: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Strings at byte offsets ``offs`` (lengths ``lens``) of a chunk's buffer, vectorized for
    short strings (task names), up to the first NUL, as an object array."""
    out = np.empty(offs.size, object)
    if offs.size == 0:
        return out
    buf = np.asarray(chunk.buf).view(np.uint8)
    width = int(lens.max())
    if width > 64:
        raw = buf.tobytes()
        for k, (o, n) in enumerate(zip(offs.tolist(), lens.tolist(), strict=True)):
            out[k] = decode_text(raw[o: o + n])
        return out
    width = max(width, 1)
    w8 = (width + 7) // 8 * 8
    cols = np.arange(w8)
    take = offs[:, None] + cols
    if int(offs.max()) + w8 > buf.size:
        take = np.minimum(take, buf.size - 1)
    arr = buf[take]
    if w8 != width or int(lens.min()) < width:
        arr[cols[None, :] >= lens[:, None]] = 0
    # group equal byte strings by sorting them as 64-bit words (faster than sorting bytes);
    # bytes after a NUL are cut when decoding (they are NULs in practice: few groups)
    words = arr.view(np.uint64)
    o = np.lexsort(words.T[::-1]) if words.shape[1] > 1 else np.argsort(words[:, 0], kind="stable")
    ws = words[o]
    new = np.ones(o.size, bool)
    new[1:] = np.any(ws[1:] != ws[:-1], axis=1)
    firsts = o[new]
    first_bytes = arr[firsts]
    names = np.array([bytes(x).split(b"\0", 1)[0].decode("utf-8", errors="replace") for x in first_bytes],
                     object)
    out[o] = names[np.cumsum(new) - 1]
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


def _last_by_key(key: np.ndarray, order: np.ndarray) -> np.ndarray:
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

    comm: last name seen (statedump name, fork child_comm, exec file name, sched_switch
    next_comm/prev_comm, wakeup comm); pid/ppid: last known (statedump, fork).
    """
    tids: list[np.ndarray] = []
    seqs: list[np.ndarray] = []
    comms: list[np.ndarray] = []
    ptids: list[np.ndarray] = []
    pseqs: list[np.ndarray] = []
    pids: list[np.ndarray] = []
    ppids: list[np.ndarray] = []

    def names(tid: np.ndarray, seq: np.ndarray, comm: np.ndarray) -> None:
        tids.append(tid.astype(np.int64))
        seqs.append(seq)
        comms.append(comm)

    def procs(tid: np.ndarray, seq: np.ndarray, pid: np.ndarray, ppid: np.ndarray) -> None:
        ptids.append(tid.astype(np.int64))
        pseqs.append(seq)
        pids.append(pid.astype(np.int64))
        ppids.append(ppid.astype(np.int64))

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
        fn = np.array([os.path.basename(str(f)) for f in ex["filename"].tolist()], object)
        names(ex["tid"], ex["seq"], fn)
    sw = kc.get("sched_switch")
    if sw is not None and sw["seq"].size:
        if "next_comm" in sw:
            names(sw["next_tid"], sw["seq"], sw["next_comm"])
        if "prev_comm" in sw:
            names(sw["prev_tid"], sw["seq"], sw["prev_comm"])
    # last (pid, ppid) of each tid; a -1 ppid (unknown) must not hide a known one: known
    # values sort after unknown ones
    if ptids:
        pt, ps, pp, ppp = (np.concatenate(x) for x in (ptids, pseqs, pids, ppids))
        li = _last_by_key(pt, ps * 2 + (ppp >= 0))
        p_tid, p_pid, p_ppid = pt[li], pp[li], ppp[li]
    else:
        p_tid = p_pid = p_ppid = np.zeros(0, np.int64)
    if tids:
        t, s, c = np.concatenate(tids), np.concatenate(seqs), np.concatenate(comms)
        li = _last_by_key(t, s)
        n_tid, n_comm = t[li], c[li]
    else:
        n_tid, n_comm = np.zeros(0, np.int64), np.empty(0, object)
    all_tid = np.union1d(n_tid, p_tid).astype(np.int64)
    comm = np.full(all_tid.size, "", object)
    comm[np.searchsorted(all_tid, n_tid)] = n_comm
    pid = np.full(all_tid.size, -1, np.int64)
    ppid = np.full(all_tid.size, -1, np.int64)
    pos = np.searchsorted(all_tid, p_tid)
    pid[pos] = p_pid
    ppid[pos] = p_ppid
    if all_tid.size and all_tid[0] == 0:
        pid[0], ppid[0] = 0, -1
        comm[0] = comm[0] or "swapper"
    exited = np.zeros(all_tid.size, bool)
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
    idx = _last_by_key(cpu.astype(np.int64), seq)
    return {int(cpu[i]): int(nxt[i]) for i in idx.tolist()}
