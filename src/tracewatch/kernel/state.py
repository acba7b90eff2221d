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
           "current_tasks", "THREAD_EVENTS"]

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
                 groups: Mapping[str, Sequence[str]] | None = None) -> KernelColumns:
    """One pass over ``ts``: the columns of each wanted logical event the trace has.

    Events before ``begin`` are read too (the state at ``begin`` depends on them); reading
    stops after ``end``. Logical events the layout lacks are left out (check with
    :meth:`KernelLayout.require` first). Fields are gathered with :func:`_walk_column`
    (vectorized, also after variable-size fields); other layouts fall back to
    :meth:`EventBatch.columns` and then to per-event decoding.

    ``groups`` maps extra logical names to several actual event names read as one (e.g.
    every ``syscall_exit_*``); their field names are not remapped, and their columns hold
    ``gid`` too (the global event class id of each event, see ``ts.classes``).
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
                for f in fs:
                    out[f] = _column(b, idx, act, layout.field(ev, f))
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
    """Values of payload field ``fname`` of the events ``idx`` of ``b``, walking the decoded
    values of the payload (ints: 1 value; strings: offset, length; int arrays/sequences:
    count then elements). None when a field on the way (or the field) is of another kind."""
    gid, src, row = b.gid[idx], b.src[idx], b.row[idx]
    classes = b.trace_set.classes
    ints: np.ndarray | None = None
    texts: np.ndarray | None = None
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
            for name, t in st.fields:
                text = isinstance(t, StringType) or is_char_array(t)
                if field_name(name) == fname:
                    if text:
                        if texts is None:
                            texts = np.empty(idx.size, object)
                        texts[m] = _gather_text(chunk, chunk.vals[pos] + chunk.buf_base[r],
                                                chunk.vals[pos + 1])
                    elif isinstance(t, (IntType, EnumType)) and t.size <= 64 if isinstance(t, IntType) \
                            else isinstance(t, EnumType) and t.container.size <= 64:
                        if ints is None:
                            ints = np.zeros(idx.size, np.int64)
                        ints[m] = chunk.vals[pos]
                    else:
                        return None
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
            else:
                return None
    if ints is not None and texts is not None:
        return None
    return ints if ints is not None else texts


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
    cols = np.arange(width)
    take = np.minimum(offs[:, None] + cols, buf.size - 1)
    arr = buf[take]
    arr[cols[None, :] >= lens[:, None]] = 0
    arr[np.cumsum(arr == 0, axis=1) > 0] = 0
    keys = np.ascontiguousarray(arr).view(f"S{width}").ravel()
    uniq, inv = np.unique(keys, return_inverse=True)
    names = np.array([u.decode("utf-8", errors="replace") for u in uniq.tolist()], object)
    out[:] = names[inv.ravel()]
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
    """tid -> :class:`Thread`, as of the end of the columns it was built from."""

    def __init__(self, threads: dict[int, Thread]) -> None:
        self._t = threads

    def __getitem__(self, tid: int) -> Thread:
        return self._t[tid]

    def __iter__(self) -> Iterator[int]:
        return iter(self._t)

    def __len__(self) -> int:
        return len(self._t)

    def pid_of(self, tid: int) -> int | None:
        t = self._t.get(tid)
        return t.pid if t is not None else None

    def comm_of(self, tid: int, default: str = "") -> str:
        t = self._t.get(tid)
        return t.comm if t is not None else default

    def pids(self, tids: np.ndarray) -> np.ndarray:
        """pid of each tid (-1 where unknown)."""
        return np.array([(-1 if (t := self._t.get(x)) is None or t.pid is None else t.pid)
                         for x in tids.tolist()], np.int64)


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
    threads: dict[int, Thread] = {}
    pid_of: dict[int, tuple[int, int]] = {}
    if ptids:
        pt, ps, pp, ppp = (np.concatenate(x) for x in (ptids, pseqs, pids, ppids))
        # a -1 ppid (unknown) must not hide a known one: known values sort after unknown
        for i in _last_by_key(pt, ps * 2 + (ppp >= 0)).tolist():
            pid_of[int(pt[i])] = (int(pp[i]), int(ppp[i]))
    if tids:
        t, s, c = np.concatenate(tids), np.concatenate(seqs), np.concatenate(comms)
        for i in _last_by_key(t, s).tolist():
            tid = int(t[i])
            pid, ppid = pid_of.get(tid, (-1, -1))
            threads[tid] = Thread(tid, pid if pid >= 0 else None, str(c[i]), ppid if ppid >= 0 else None)
    for tid, (pid, ppid) in pid_of.items():
        if tid not in threads:
            threads[tid] = Thread(tid, pid, "", ppid if ppid >= 0 else None)
    if 0 in threads:
        threads[0] = Thread(0, 0, threads[0].comm or "swapper", None)
    exits = kc.get("sched_process_exit")
    if exits is not None and exits["seq"].size:
        for tid in np.unique(exits["tid"]).tolist():
            th = threads.get(int(tid))
            if th is not None:
                threads[int(tid)] = Thread(th.tid, th.pid, th.comm, th.ppid, True)
    return ThreadTable(threads)


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
