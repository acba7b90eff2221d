"""CPU usage per thread, per process and per CPU (what ``lttng-cputop`` computes).

Definition (lttng-analyses'): a thread uses a CPU from the ``sched_switch`` that switches it
in (``next_tid``) to the next ``sched_switch`` that switches it out (``prev_tid``); time
before the first switch-in of a thread is unknown and not counted; a thread still running at
the end is counted up to the end. Those intervals are clipped to the analysed range, whose
bounds are the timestamps of the first and last events (of any type) in [begin, end], and
each usage is divided by its duration. A CPU is busy while its current task is not the
idle task (swapper, tid 0), which never appears in the per-thread table. Total usage is the
mean of the per-CPU usages.

Computed in one compiled pass over the ``sched_switch`` columns (:mod:`._machines`): no
per-event Python loop, no sort of the events; names are decoded only for the rows shown.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from ..ctf.trace import TraceSet
from ..errors import DecodeError
from ..kernel.fast import dense_index, texts
from ..kernel.layouts import KernelLayout, detect_layout
from ..kernel.state import (
    THREAD_EVENTS,
    ColumnSpec,
    KernelColumns,
    ThreadTable,
    period_windows,
    read_columns,
    thread_table,
)
from . import Table
from ._machines import cputop_run

__all__ = ["CputopResult", "cputop", "cputop_periods", "cputop_from_columns", "NEEDED_EVENTS"]

NEEDED_EVENTS: list[str | tuple[str, ...]] = ["sched_switch"]
_SWITCH_FIELDS = ("prev_tid", "next_tid", "next_prio", "prev_comm", "next_comm")


@dataclass
class CputopResult:
    """CPU usage over [begin, end] (ns since the epoch).

    ``per_tid``: tid, pid (-1 unknown), comm, usage_ns, ratio, migrations, prios (the
    distinct priorities it was switched in with, as text like "[20]"), sorted by usage,
    most first. ``per_process``: pid, comm, threads, usage_ns, ratio (pid unknown: the
    thread counts as its own process). ``per_cpu``: cpu, usage_ns, ratio, by cpu.
    ``total``: mean per-CPU ratio.
    ``fault``: with ``partial=True``, the :class:`~tracewatch.errors.DecodeError` that cut
    the trace short (the result then covers the events read before it); None otherwise.
    """

    begin: int
    end: int
    per_tid: Table
    per_process: Table
    per_cpu: Table
    total: float
    threads: ThreadTable
    fault: DecodeError | None = field(default=None, compare=False, repr=False)

    @property
    def duration(self) -> int:
        return self.end - self.begin


def cputop(ts: TraceSet, begin: int | None = None, end: int | None = None,
           tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
           layout: KernelLayout | None = None, *, partial: bool = False) -> CputopResult:
    """CPU usage of the trace set over [begin, end] (whole trace when None).

    ``tids``/``cpus`` restrict the analysis like lttng-cputop's ``--tid``/``--cpu``: only
    those threads are counted (a CPU is busy only while one of them runs on it), only time
    on those CPUs is counted.
    ``partial``: on a corrupt or truncated trace, return the result over the events read
    before the fault, with the error in ``fault``, instead of raising
    :class:`~tracewatch.errors.DecodeError`.
    """
    return cputop_from_columns(_read(ts, begin, end, layout, partial=partial), tids, cpus)


def needed_columns(layout: KernelLayout) -> ColumnSpec:
    """The columns cputop reads (raises :class:`~tracewatch.kernel.MissingEventsError`
    without its events)."""
    layout.require("cputop", NEEDED_EVENTS)
    return ColumnSpec({"sched_switch": _SWITCH_FIELDS, **THREAD_EVENTS,
                       "sched_migrate_task": ("tid",)})


def _read(ts: TraceSet, begin: int | None, end: int | None, layout: KernelLayout | None,
          period: int | None = None, partial: bool = False) -> KernelColumns:
    layout = layout or detect_layout(ts)
    spec = needed_columns(layout)
    return read_columns(ts, layout, spec.wanted, begin, end, period=period, text="codes",
                        partial=partial)


def cputop_periods(ts: TraceSet, period: int, begin: int | None = None, end: int | None = None,
                   tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
                   layout: KernelLayout | None = None, *, partial: bool = False) -> list[CputopResult]:
    """:func:`cputop` per window of ``period`` ns ([t, t + period), aligned on the first event
    of the range; windows without events left out), from one pass over the trace
    (``partial``: see :func:`cputop`; every window's result then holds the fault)."""
    kc = _read(ts, begin, end, layout, period, partial=partial)
    return [cputop_from_columns(w, tids, cpus) for _, _, w in period_windows(kc)]


def _isin(a: np.ndarray, values: Collection[int] | None) -> np.ndarray:
    if values is None:
        return np.ones(a.size, bool)
    return np.isin(a, np.fromiter(values, np.int64))


def _dense_cpus(cpu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dense index of each CPU value, the CPU values) for per-CPU state arrays."""
    (ci,), ucpu = dense_index([cpu])
    return ci, ucpu


def cputop_from_columns(kc: KernelColumns, tids: Collection[int] | None = None,
                        cpus: Collection[int] | None = None) -> CputopResult:
    """:func:`cputop` on columns already read (must hold the sched_switch fields; text
    fields as object arrays or interned codes)."""
    sw = kc.events["sched_switch"]
    threads = thread_table(kc)
    if kc.first_ts is None or kc.last_ts is None:
        lo = hi = 0
    else:
        lo, hi = kc.first_ts, kc.last_ts
    t, cpu = sw["timestamp"].astype(np.int64), sw["cpu"].astype(np.int64)
    prev, nxt = sw["prev_tid"].astype(np.int64), sw["next_tid"].astype(np.int64)
    tid_ok = _isin(nxt, tids)
    prev_ok = _isin(prev, tids)
    cpu_ok = _isin(cpu, cpus)
    (pi, ni), keys = dense_index([prev, nxt])
    ci, ucpu_all = _dense_cpus(cpu)
    usage_all, has, first_row, pg, pv, cusage_all, cpu_seen = cputop_run(
        t, ci, pi, ni, prev, nxt, sw["next_prio"].astype(np.int64), tid_ok, cpu_ok, prev_ok,
        keys.size, ucpu_all.size, lo, hi)

    # ---- per thread (those with a counted interval; the idle task never is)
    sel = np.flatnonzero(has)
    order = np.argsort(keys[sel], kind="stable")
    sel = sel[order]
    utids = keys[sel]
    usage = usage_all[sel]
    duration = hi - lo
    ratio = usage / duration if duration > 0 else np.zeros(utids.size)
    # comm: name it was first switched in with in the range (lttng-analyses')
    r0 = first_row[sel]
    is_next = nxt[r0] == utids
    comm = np.empty(utids.size, object)
    comm[is_next] = texts(sw["next_comm"][r0[is_next]])
    comm[~is_next] = texts(sw["prev_comm"][r0[~is_next]])
    # prios: the distinct priorities it was switched in with, in order of appearance
    gmap = np.full(keys.size, -1, np.int64)
    gmap[sel] = np.arange(sel.size)
    prios = _prio_texts(utids.size, gmap[pg], pv)
    mig = np.zeros(utids.size, np.int64)
    mt = kc.get("sched_migrate_task")
    if mt is not None and mt["seq"].size:
        m = (mt["timestamp"] >= lo) & (mt["timestamp"] <= hi)
        mtids, mcount = np.unique(mt["tid"][m].astype(np.int64), return_counts=True)
        pos = np.searchsorted(utids, mtids)
        ok = (pos < utids.size) & (utids[np.minimum(pos, max(utids.size - 1, 0))] == mtids) \
            if utids.size else np.zeros(mtids.size, bool)
        mig[pos[ok]] = mcount[ok]
    pids = threads.pids(utids)
    per_tid = Table({"tid": utids, "pid": pids, "comm": comm, "usage_ns": usage, "ratio": ratio,
                     "migrations": mig, "prios": np.array(prios, object)})
    srt = np.lexsort((per_tid["tid"], -per_tid["usage_ns"]))
    per_tid = per_tid.take(srt)

    # ---- per process
    ppid = np.where(per_tid["pid"] >= 0, per_tid["pid"], per_tid["tid"])
    upids, pfirst, pinv = np.unique(ppid, return_index=True, return_inverse=True)
    pusage = np.bincount(pinv, weights=per_tid["usage_ns"], minlength=upids.size).astype(np.int64)
    pthreads = np.bincount(pinv, minlength=upids.size)
    # name of a process: its main thread's, else that of its first thread in per_tid order
    pcomm = threads.comms(upids)
    missing = np.flatnonzero(pcomm == "")
    pcomm[missing] = per_tid["comm"][pfirst[missing]]
    per_process = Table({"pid": upids, "comm": pcomm, "threads": pthreads, "usage_ns": pusage,
                         "ratio": pusage / duration if duration > 0 else np.zeros(upids.size)})
    per_process = per_process.take(np.lexsort((per_process["pid"], -per_process["usage_ns"])))

    # ---- per CPU
    co = np.argsort(ucpu_all, kind="stable")
    ucpu, cusage = ucpu_all[co], cusage_all[co]
    keep = cpu_seen[co] & (np.ones(ucpu.size, bool) if cpus is None else np.isin(ucpu, np.fromiter(cpus, np.int64)))
    ucpu, cusage = ucpu[keep], cusage[keep]
    cratio = cusage / duration if duration > 0 else np.zeros(ucpu.size)
    per_cpu = Table({"cpu": ucpu, "usage_ns": cusage, "ratio": cratio})
    total = float(cratio.mean()) if cratio.size else 0.0
    return CputopResult(lo, hi, per_tid, per_process, per_cpu, total, threads, fault=kc.fault)


def _prio_texts(ngroups: int, group: np.ndarray, prio: np.ndarray) -> np.ndarray:
    """Per group 0..ngroups-1, its distinct ``prio`` values in order of appearance (``group``
    and ``prio``: switch-ins, in trace order within each group) as text like "[20]" or
    "[20, 10]"; "[]" for a group without switch-in."""
    out = np.full(ngroups, "[]", object)
    if group.size == 0:
        return out
    pv, prank = np.unique(prio, return_inverse=True)
    key = group.astype(np.int64) * pv.size + prank
    ukey, first = np.unique(key, return_index=True)
    o = np.lexsort((first, ukey // pv.size))
    pg, pp = (ukey // pv.size)[o], pv[(ukey % pv.size)[o]]
    new = np.ones(pg.size, bool)
    new[1:] = pg[1:] != pg[:-1]
    single = new & np.r_[new[1:], True]
    # most threads have one priority: one text per distinct value, no per-thread loop
    vals, vinv = np.unique(pp[single], return_inverse=True)
    if vals.size:
        out[pg[single]] = np.array([f"[{v}]" for v in vals.tolist()], object)[vinv]
    starts = np.flatnonzero(new)
    bounds = np.r_[starts, pg.size]
    for j in np.flatnonzero(~single[starts]).tolist():
        seg = pp[bounds[j]: bounds[j + 1]].tolist()
        out[pg[bounds[j]]] = "[" + ", ".join(str(p) for p in seg) + "]"
    return out
