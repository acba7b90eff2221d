"""CPU usage per thread, per process and per CPU (what ``lttng-cputop`` computes).

Definition (lttng-analyses'): a thread uses a CPU from the ``sched_switch`` that switches it
in (``next_tid``) to the next ``sched_switch`` that switches it out (``prev_tid``); time
before the first switch-in of a thread is unknown and not counted; a thread still running at
the end is counted up to the end. Those intervals are clipped to the analysed range, whose
bounds are the timestamps of the first and last events (of any type) in [begin, end], and
each usage is divided by its duration. A CPU is busy while its current task is not the
idle task (swapper, tid 0), which never appears in the per-thread table. Total usage is the
mean of the per-CPU usages.

All of it is computed with NumPy on the ``sched_switch`` columns: no per-event Python loop.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from ..ctf.trace import TraceSet
from ..kernel.layouts import KernelLayout, detect_layout
from ..kernel.state import (
    THREAD_EVENTS,
    KernelColumns,
    ThreadTable,
    period_windows,
    read_columns,
    thread_table,
)
from . import Table

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
    """

    begin: int
    end: int
    per_tid: Table
    per_process: Table
    per_cpu: Table
    total: float
    threads: ThreadTable

    @property
    def duration(self) -> int:
        return self.end - self.begin


def cputop(ts: TraceSet, begin: int | None = None, end: int | None = None,
           tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
           layout: KernelLayout | None = None) -> CputopResult:
    """CPU usage of the trace set over [begin, end] (whole trace when None).

    ``tids``/``cpus`` restrict the analysis like lttng-cputop's ``--tid``/``--cpu``: only
    those threads are counted (a CPU is busy only while one of them runs on it), only time
    on those CPUs is counted.
    """
    return cputop_from_columns(_read(ts, begin, end, layout), tids, cpus)


def _read(ts: TraceSet, begin: int | None, end: int | None, layout: KernelLayout | None,
          period: int | None = None) -> KernelColumns:
    layout = layout or detect_layout(ts)
    layout.require("cputop", NEEDED_EVENTS)
    wanted: dict[str, tuple[str, ...]] = {"sched_switch": _SWITCH_FIELDS, **THREAD_EVENTS,
                                          "sched_migrate_task": ("tid",)}
    return read_columns(ts, layout, wanted, begin, end, period=period)


def cputop_periods(ts: TraceSet, period: int, begin: int | None = None, end: int | None = None,
                   tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
                   layout: KernelLayout | None = None) -> list[CputopResult]:
    """:func:`cputop` per window of ``period`` ns ([t, t + period), aligned on the first event
    of the range; windows without events left out), from one pass over the trace."""
    kc = _read(ts, begin, end, layout, period)
    return [cputop_from_columns(w, tids, cpus) for _, _, w in period_windows(kc)]


def _isin(a: np.ndarray, values: Collection[int] | None) -> np.ndarray:
    if values is None:
        return np.ones(a.size, bool)
    return np.isin(a, np.fromiter(values, np.int64))


def _clip(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Length of [a, b] within [lo, hi] (0 when disjoint)."""
    return np.maximum(np.minimum(b, hi) - np.maximum(a, lo), 0)


def cputop_from_columns(kc: KernelColumns, tids: Collection[int] | None = None,
                        cpus: Collection[int] | None = None) -> CputopResult:
    """:func:`cputop` on columns already read (must hold the sched_switch fields)."""
    sw = kc.events["sched_switch"]
    threads = thread_table(kc)
    if kc.first_ts is None or kc.last_ts is None:
        lo = hi = 0
    else:
        lo, hi = kc.first_ts, kc.last_ts
    seq, t, cpu = sw["seq"], sw["timestamp"], sw["cpu"].astype(np.int64)
    prev, nxt = sw["prev_tid"].astype(np.int64), sw["next_tid"].astype(np.int64)
    n = seq.size
    tid_ok = _isin(nxt, tids)
    cpu_ok = _isin(cpu, cpus)

    # ---- per thread: in/out events of each tid in trace order
    k_tid = np.concatenate([nxt, prev])
    k_seq = np.concatenate([seq, seq])
    k_in = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    k_row = np.concatenate([np.arange(n), np.arange(n)])
    o = np.lexsort((k_seq, k_tid))
    k_tid, k_in, k_row = k_tid[o], k_in[o], k_row[o]
    has_next = np.zeros(o.size, bool)
    has_next[:-1] = k_tid[1:] == k_tid[:-1]
    nxt_is_out = np.zeros(o.size, bool)
    nxt_is_out[:-1] = ~k_in[1:]
    # a switch-in ends at the next event of the same tid if it is a switch-out, at the end
    # of the range if there is none; if it is another switch-in (inconsistent trace), the
    # time is lost, as in lttng-analyses (its start timestamp is overwritten)
    has_prev = np.zeros(o.size, bool)
    has_prev[1:] = k_tid[1:] == k_tid[:-1]
    closed = k_in & has_next & nxt_is_out
    open_ = k_in & ~has_next
    # a thread switched out before any switch-in was running since before the first event
    # read: it counts from the start of the range
    early = ~k_in & ~has_prev
    start = np.full(o.size, lo, np.int64)
    stop = np.full(o.size, hi, np.int64)
    nxt_row = np.zeros(o.size, np.int64)
    nxt_row[:-1] = k_row[1:]
    start[closed | open_] = t[k_row[closed | open_]]
    stop[closed] = t[nxt_row[closed]]
    stop[early] = t[k_row[early]]
    valid = (closed | open_ | early) & (k_tid != 0)
    valid &= cpu_ok[k_row] & np.where(k_in, tid_ok[k_row], _isin(k_tid, tids))
    start = np.minimum(start, stop)
    in_range = valid & (stop >= lo) & (start <= hi)
    vt, vrow, vin = k_tid[in_range], k_row[in_range], k_in[in_range]
    dur = _clip(start[in_range], stop[in_range], lo, hi)
    # vt is sorted by tid, then trace order (rows): groups without a sort
    utids, gstart, inv = _sorted_groups(vt)
    usage = np.bincount(inv, weights=dur, minlength=utids.size).astype(np.int64)
    duration = hi - lo
    ratio = usage / duration if duration > 0 else np.zeros(utids.size)
    # comm: name it was first switched in with in the range (lttng-analyses'), prios: the
    # distinct priorities it was switched in with, in order of appearance
    r0 = vrow[gstart]
    comm = np.where(nxt[r0] == utids, sw["next_comm"][r0], sw["prev_comm"][r0]).astype(object)
    prios = _prio_texts(utids.size, inv[vin], sw["next_prio"][vrow[vin]].astype(np.int64))
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

    # ---- per CPU: consecutive sched_switches of each CPU
    oc = np.lexsort((seq, cpu))
    c_cpu, c_t, c_next, c_ok = cpu[oc], t[oc], nxt[oc], tid_ok[oc]
    same = np.zeros(n, bool)
    same[:-1] = c_cpu[1:] == c_cpu[:-1]
    c_stop = np.full(n, hi, np.int64)
    c_stop[:-1] = np.where(same[:-1], c_t[1:], hi)
    busy = (c_next != 0) & c_ok
    cdur = np.where(busy, _clip(c_t, c_stop, lo, hi), 0)
    # before its first sched_switch, a CPU ran prev_tid since before the first event read
    c_prev = prev[oc]
    first = np.ones(n, bool)
    first[1:] = c_cpu[1:] != c_cpu[:-1]
    fbusy = first & (c_prev != 0) & _isin(c_prev, tids)
    cdur = cdur + np.where(fbusy, _clip(np.full(n, lo), c_t, lo, hi), 0)
    ucpu, _, cinv = _sorted_groups(c_cpu)
    cusage = np.bincount(cinv, weights=cdur, minlength=ucpu.size).astype(np.int64)
    keep = np.ones(ucpu.size, bool) if cpus is None else np.isin(ucpu, np.fromiter(cpus, np.int64))
    ucpu, cusage = ucpu[keep], cusage[keep]
    cratio = cusage / duration if duration > 0 else np.zeros(ucpu.size)
    per_cpu = Table({"cpu": ucpu, "usage_ns": cusage, "ratio": cratio})
    total = float(cratio.mean()) if cratio.size else 0.0
    return CputopResult(lo, hi, per_tid, per_process, per_cpu, total, threads)


def _sorted_groups(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a sorted array: its distinct values, the start of each run and the run index of
    each element (what np.unique returns, without sorting)."""
    new = np.ones(a.size, bool)
    new[1:] = a[1:] != a[:-1]
    starts = np.flatnonzero(new)
    return a[starts], starts, np.cumsum(new) - 1


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
