"""Pages allocated and freed per thread (what ``lttng-memtop`` computes).

Definition (lttng-analyses'): each ``mm_page_alloc`` event (LTTng 2.6+: ``kmem_mm_page_alloc``;
perf: ``kmem:mm_page_alloc``) counts one allocated page, each ``mm_page_free``
(``kmem_mm_page_free``, ``kmem:mm_page_free``) one freed page, for the thread current on the
event's CPU (the ``next_tid`` of the last ``sched_switch`` there; events on a CPU before its
first ``sched_switch`` are not attributed, and the idle task's are not counted). As in
lttng-memtop, the allocation ``order`` is not used: one event, one page. Events are counted
when they are in [begin, end].

Computed with NumPy (current task by sorted search): no per-event Python loop. Imports
:mod:`tracewatch.ctf` and :mod:`tracewatch.kernel`; never output or cli.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from ..ctf.trace import TraceSet
from ..errors import DecodeError
from ..kernel.fast import texts
from ..kernel.layouts import KernelLayout, MissingEventsError, detect_layout
from ..kernel.state import THREAD_EVENTS, KernelColumns, ThreadTable, read_columns, thread_table
from . import Table
from .syscalls import current_rows

__all__ = ["MemResult", "mem_stats", "mem_from_columns", "mem_layout"]

#: logical event -> actual names it may have, in order of preference
_MEM_EVENTS: dict[str, tuple[str, ...]] = {
    "mm_page_alloc": ("kmem_mm_page_alloc", "mm_page_alloc", "kmem:mm_page_alloc"),
    "mm_page_free": ("kmem_mm_page_free", "mm_page_free", "kmem:mm_page_free"),
}


@dataclass
class MemResult:
    """Page allocations over [begin, end] (ns since the epoch).

    ``per_tid``: tid, pid (-1 unknown), comm, allocated, freed (pages), most allocated
    first (then most freed, then by tid). ``total_allocated``/``total_freed``: sums.
    ``fault``: with ``partial=True``, the :class:`~tracewatch.errors.DecodeError` that cut
    the trace short (the result then covers the events read before it); None otherwise.
    """

    begin: int
    end: int
    per_tid: Table
    total_allocated: int
    total_freed: int
    threads: ThreadTable
    fault: DecodeError | None = field(default=None, compare=False, repr=False)

    @property
    def duration(self) -> int:
        return self.end - self.begin


def mem_layout(ts: TraceSet, layout: KernelLayout | None = None) -> KernelLayout:
    """The kernel layout of ``ts`` with its page allocation events added (logical names)."""
    layout = layout or detect_layout(ts)
    present = {c.name for c in ts.classes}
    extra = {lg: next(a for a in alts if a in present) for lg, alts in _MEM_EVENTS.items()
             if any(a in present for a in alts)}
    return dataclasses.replace(layout, events={**layout.events, **extra})


def mem_stats(ts: TraceSet, begin: int | None = None, end: int | None = None,
              tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
              procnames: Collection[str] | None = None, layout: KernelLayout | None = None, *,
              partial: bool = False) -> MemResult:
    """Pages allocated/freed per thread over [begin, end] (whole trace when None).

    ``tids``/``procnames`` keep those threads, ``cpus`` the events on those CPUs.
    ``partial``: on a corrupt or truncated trace, return the result over the events read
    before the fault, with the error in ``fault``, instead of raising
    :class:`~tracewatch.errors.DecodeError`.
    """
    layout = mem_layout(ts, layout)
    if not (layout.has("mm_page_alloc") or layout.has("mm_page_free")):
        perf = layout.name == "perf"
        raise MissingEventsError("mem", ["kmem:mm_page_alloc / kmem:mm_page_free" if perf else
                                         "kmem_mm_page_alloc / kmem_mm_page_free"],
                                 ["kmem_mm_page_alloc,kmem_mm_page_free"])
    layout.require("mem", ["sched_switch"])
    wanted: dict[str, tuple[str, ...]] = {"sched_switch": ("next_tid", "next_comm"), **THREAD_EVENTS,
                                          "mm_page_alloc": (), "mm_page_free": ()}
    kc = read_columns(ts, layout, wanted, begin, end, text="codes", partial=partial)
    return mem_from_columns(kc, tids, cpus, procnames)


def _attribute(kc: KernelColumns, ev: str, lo: int, hi: int, cpus: Collection[int] | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(tid, sched_switch row) of each event ``ev`` in range on ``cpus`` with a known task."""
    cols = kc.get(ev)
    sw = kc.events["sched_switch"]
    if cols is None or cols["seq"].size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cpu = cols["cpu"].astype(np.int64)
    row = current_rows(sw, cpu, cols["seq"])
    m = (row >= 0) & (cols["timestamp"] >= lo) & (cols["timestamp"] <= hi)
    if cpus is not None:
        m &= np.isin(cpu, np.fromiter(cpus, np.int64))
    row = row[m]
    tid = sw["next_tid"][row].astype(np.int64)
    keep = tid != 0
    return tid[keep], row[keep]


def mem_from_columns(kc: KernelColumns, tids: Collection[int] | None = None,
                     cpus: Collection[int] | None = None,
                     procnames: Collection[str] | None = None) -> MemResult:
    """:func:`mem_stats` on columns already read."""
    lo = kc.first_ts if kc.first_ts is not None else 0
    hi = kc.last_ts if kc.last_ts is not None else 0
    threads = thread_table(kc)
    sw = kc.events["sched_switch"]
    a_tid, a_row = _attribute(kc, "mm_page_alloc", lo, hi, cpus)
    f_tid, f_row = _attribute(kc, "mm_page_free", lo, hi, cpus)
    all_tid = np.concatenate([a_tid, f_tid])
    all_row = np.concatenate([a_row, f_row])
    utid, first, inv = np.unique(all_tid, return_index=True, return_inverse=True)
    alloc = np.bincount(inv[: a_tid.size], minlength=utid.size).astype(np.int64)
    freed = np.bincount(inv[a_tid.size:], minlength=utid.size).astype(np.int64)
    first_comm = texts(sw["next_comm"][all_row[first]]) if first.size else np.empty(0, object)
    comm = np.array([str(c) or threads.comm_of(t) for t, c in
                     zip(utid.tolist(), first_comm.tolist(), strict=True)], object)
    keep = np.ones(utid.size, bool)
    if tids is not None:
        keep &= np.isin(utid, np.fromiter(tids, np.int64))
    if procnames is not None:
        keep &= np.isin(comm.astype(str), np.array(sorted(set(procnames)), dtype=str))
    per_tid = Table({"tid": utid, "pid": threads.pids(utid), "comm": comm, "allocated": alloc,
                     "freed": freed}).take(keep)
    per_tid = per_tid.take(np.lexsort((per_tid["tid"], -per_tid["freed"], -per_tid["allocated"])))
    return MemResult(lo, hi, per_tid, int(per_tid["allocated"].sum()), int(per_tid["freed"].sum()),
                     threads, fault=kc.fault)
