"""Scheduling latency: wakeup to switch-in, per thread and overall (``lttng-schedstats``).

Definition (lttng-analyses'): a wakeup event (``sched_waking``, ``sched_wakeup`` or
``sched_wakeup_new``) of a thread that is not running starts a wait; only the first wakeup
since the thread's last switch-in counts; the next ``sched_switch`` with ``next_tid`` equal
to the thread ends it. The latency is the time between the two. Wakeups of a running thread
(the last of its switch-ins/switch-outs is a switch-in) are ignored. Latencies are counted
when their switch-in is in [begin, end].

Computed in one compiled pass in trace order over the switch and wakeup columns
(:mod:`._machines`): no per-event Python loop, no sort.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from ..ctf.trace import TraceSet
from ..errors import DecodeError
from ..kernel.fast import dense_index, intern_strings, texts
from ..kernel.layouts import WAKEUP_EVENTS, KernelLayout, detect_layout
from ..kernel.state import ColumnSpec, KernelColumns, period_windows, read_columns
from . import Table
from ._machines import prio_changes, sched_run
from ._stats import group_stats, histogram
from .cputop import _prio_texts

__all__ = ["SchedResult", "sched_latencies", "sched_periods", "sched_from_columns", "NEEDED_EVENTS",
           "top_latencies", "latency_histogram", "filter_latencies"]

NEEDED_EVENTS: list[str | tuple[str, ...]] = ["sched_switch", WAKEUP_EVENTS]


@dataclass
class SchedResult:
    """Scheduling latencies over [begin, end] (ns since the epoch).

    ``latencies``: one row per wakeup-to-switch-in (wakeup_ts, switch_ts, latency_ns, tid,
    comm, prio, cpu of the switch-in, waker_tid: task running on the waking CPU, -1 if
    unknown), in trace order. ``per_tid``: tid, comm (lttng-schedstats' name: the thread's
    name when first met in a latency, as the woken thread or the waker), count, min_ns, avg_ns, max_ns,
    stdev_ns (sample standard deviation, NaN below two), prios (text like "[20]"), sorted
    like lttng-schedstats (by name, case-insensitive, then first appearance). ``total``: the
    same statistics over every latency.
    ``fault``: with ``partial=True``, the :class:`~tracewatch.errors.DecodeError` that cut
    the trace short (the result then covers the events read before it); None otherwise.
    """

    begin: int
    end: int
    latencies: Table
    per_tid: Table
    total: dict[str, float]
    fault: DecodeError | None = field(default=None, compare=False, repr=False)


def sched_latencies(ts: TraceSet, begin: int | None = None, end: int | None = None,
                    tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
                    layout: KernelLayout | None = None, *, partial: bool = False) -> SchedResult:
    """Wakeup latencies of the trace set over [begin, end] (whole trace when None).

    ``tids`` keeps the latencies of those (woken) threads; ``cpus`` those whose switch-in
    happened on those CPUs.
    ``partial``: on a corrupt or truncated trace, return the result over the events read
    before the fault, with the error in ``fault``, instead of raising
    :class:`~tracewatch.errors.DecodeError`.
    """
    return sched_from_columns(_read(ts, begin, end, layout, names=True, partial=partial), tids, cpus)


def needed_columns(layout: KernelLayout, names: bool = False) -> ColumnSpec:
    """The columns sched reads; ``names``: also statedump and fork, for lttng-analyses'
    thread names (see :func:`_lttng_names`; without them, names come from sched_switch;
    :func:`sched_latencies` reads them, :func:`sched_periods` does not)."""
    layout.require("sched", NEEDED_EVENTS)
    wanted: dict[str, tuple[str, ...]] = {"sched_switch": ("prev_tid", "next_tid", "next_prio", "next_comm")}
    for w in layout.wakeup_events():
        wanted[w] = ("tid",)
    if names:
        wanted["lttng_statedump_process_state"] = ("tid", "pid", "name")
        wanted["sched_process_fork"] = ("child_tid", "child_comm", "parent_pid", "parent_comm")
    return ColumnSpec(wanted)


def _read(ts: TraceSet, begin: int | None, end: int | None, layout: KernelLayout | None,
          period: int | None = None, names: bool = False, partial: bool = False) -> KernelColumns:
    layout = layout or detect_layout(ts)
    spec = needed_columns(layout, names)
    return read_columns(ts, layout, spec.wanted, begin, end, period=period, text="codes",
                        partial=partial)


def sched_periods(ts: TraceSet, period: int, begin: int | None = None, end: int | None = None,
                  tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
                  layout: KernelLayout | None = None, *, partial: bool = False) -> list[SchedResult]:
    """:func:`sched_latencies` per window of ``period`` ns ([t, t + period), aligned on the
    first event of the range; windows without events left out), from one pass
    (``partial``: see :func:`sched_latencies`; every window's result then holds the fault)."""
    kc = _read(ts, begin, end, layout, period, partial=partial)
    return [sched_from_columns(w, tids, cpus) for _, _, w in period_windows(kc)]


def _stats(lat: np.ndarray) -> dict[str, float]:
    n = lat.size
    if n == 0:
        return {"count": 0, "min_ns": float("nan"), "avg_ns": float("nan"), "max_ns": float("nan"),
                "stdev_ns": float("nan")}
    return {"count": n, "min_ns": float(lat.min()), "avg_ns": float(lat.mean()),
            "max_ns": float(lat.max()), "stdev_ns": float(lat.std(ddof=1)) if n > 1 else float("nan")}


def _wakeups(kc: KernelColumns) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """seq, tid, timestamp, cpu of every wakeup event, in trace order."""
    kinds = [kc.events[w] for w in WAKEUP_EVENTS if w in kc]
    if not kinds:
        z = np.zeros(0, np.int64)
        return z, z, z, z
    seq = np.concatenate([k["seq"] for k in kinds]).astype(np.int64)
    tid = np.concatenate([k["tid"] for k in kinds]).astype(np.int64)
    ts = np.concatenate([k["timestamp"] for k in kinds]).astype(np.int64)
    cpu = np.concatenate([k["cpu"] for k in kinds]).astype(np.int64)
    if len(kinds) > 1:
        o = np.argsort(seq, kind="stable")  # merges the sorted runs
        seq, tid, ts, cpu = seq[o], tid[o], ts[o], cpu[o]
    return seq, tid, ts, cpu


def sched_from_columns(kc: KernelColumns, tids: Collection[int] | None = None,
                       cpus: Collection[int] | None = None) -> SchedResult:
    """:func:`sched_latencies` on columns already read (text as object arrays or codes)."""
    sw = kc.events["sched_switch"]
    lo = kc.first_ts if kc.first_ts is not None else 0
    hi = kc.last_ts if kc.last_ts is not None else 0
    w_seq, w_tid, w_ts, w_cpu = _wakeups(kc)
    prev, nxt = sw["prev_tid"].astype(np.int64), sw["next_tid"].astype(np.int64)
    s_cpu = sw["cpu"].astype(np.int64)
    (pi, ni, wi), keys = dense_index([prev, nxt, w_tid])
    (sci, wci), ucpu = dense_index([s_cpu, w_cpu])
    sw_row, w_row, waker_all = sched_run(sw["seq"].astype(np.int64), sci, pi, ni, nxt, w_seq, wci, wi,
                                         keys.size, ucpu.size)
    s_ts = sw["timestamp"][sw_row]
    keep = (s_ts >= lo) & (s_ts <= hi) & (nxt[sw_row] != 0)
    if tids is not None:
        keep &= np.isin(nxt[sw_row], np.fromiter(tids, np.int64))
    if cpus is not None:
        keep &= np.isin(s_cpu[sw_row], np.fromiter(cpus, np.int64))
    sw_row, w_row = sw_row[keep], w_row[keep]
    lat_tid = nxt[sw_row]
    lat = (sw["timestamp"][sw_row] - w_ts[w_row]).astype(np.int64)
    latencies = Table({"wakeup_ts": w_ts[w_row], "switch_ts": sw["timestamp"][sw_row], "latency_ns": lat,
                       "tid": lat_tid, "comm": texts(sw["next_comm"][sw_row]), "prio": sw["next_prio"][sw_row],
                       "cpu": sw["cpu"][sw_row], "waker_tid": waker_all[w_row]})
    per_tid = _per_tid(latencies, _lttng_names(kc, sw_row, waker_all[w_row]))
    return SchedResult(lo, hi, latencies, per_tid, _stats(lat), fault=kc.fault)


def _comm_updates(kc: KernelColumns, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tid, seq, name code) of the events that set a thread's name in lttng-analyses' state
    (statedump name; fork child_comm for the child, parent_comm for the parent *process*
    (its pid: lttng-analyses keys the parent by parent_pid); sched_switch next_comm for
    next_tid: never prev_comm), for the tids in ``wanted``, sorted by (tid, seq)."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(cols: dict[str, np.ndarray] | None, tid: str, name: str) -> None:
        if cols is None or cols["seq"].size == 0 or tid not in cols or name not in cols:
            return
        t = cols[tid].astype(np.int64)
        m = np.isin(t, wanted)
        c = cols[name][m]
        parts.append((t[m], cols["seq"][m].astype(np.int64),
                      c if c.dtype != object else intern_strings(c.tolist())))

    add(kc.get("lttng_statedump_process_state"), "tid", "name")
    add(kc.get("sched_process_fork"), "child_tid", "child_comm")
    add(kc.get("sched_process_fork"), "parent_pid", "parent_comm")
    add(kc.get("sched_switch"), "next_tid", "next_comm")
    if not parts:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0, np.int32)
    tid = np.concatenate([p[0] for p in parts])
    seq = np.concatenate([p[1] for p in parts])
    code = np.concatenate([p[2] for p in parts])
    o = np.lexsort((seq, tid))
    return tid[o], seq[o], code[o]


def _lttng_names(kc: KernelColumns, sw_row: np.ndarray, waker: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The name lttng-schedstats gives each thread with latencies: its name when its stats
    entry was created, i.e. at the first latency (in trace order) where it is the woken
    thread (then next_comm of that switch-in) or, before that, the waker (then its name at
    that switch-in in lttng-analyses' state, see :func:`_comm_updates`). Returns (tids,
    names) of the threads first met as wakers; the others keep next_comm at their first
    latency."""
    sw = kc.events["sched_switch"]
    nxt = sw["next_tid"].astype(np.int64)[sw_row]
    n = sw_row.size
    cand = np.empty(2 * n, np.int64)
    cand[0::2] = np.where(waker > 0, waker, -1)  # the waker's entry is created first
    cand[1::2] = nxt
    pos = np.flatnonzero(cand >= 0)
    (inv,), keys = dense_index([cand[pos]])
    new = np.ones(inv.size, bool)
    new[1:] = inv[1:] > np.maximum.accumulate(inv)[:-1]
    first = pos[new]  # first position of each tid among the candidates, in order of keys
    as_waker = first % 2 == 0
    wt = keys[as_waker]
    if wt.size == 0:
        return wt, np.empty(0, object)
    at_seq = sw["seq"].astype(np.int64)[sw_row[first[as_waker] // 2]]
    ut, us, uc = _comm_updates(kc, wt)
    shift = np.int64(1) << np.int64(40)
    ukey = ut * shift + us
    j = np.searchsorted(ukey, wt * shift + at_seq, side="right") - 1
    ok = (j >= 0) & (ut[np.maximum(j, 0)] == wt) if ut.size else np.zeros(wt.size, bool)
    return wt[ok], texts(uc[j[ok]])


def _per_tid(lt: Table, renamed: tuple[np.ndarray, np.ndarray] | None = None) -> Table:
    tid = lt["tid"]
    if tid.size == 0:
        return Table({"tid": np.zeros(0, np.int64), "comm": np.empty(0, object),
                      "count": np.zeros(0, np.int64), "min_ns": np.zeros(0), "avg_ns": np.zeros(0),
                      "max_ns": np.zeros(0), "stdev_ns": np.zeros(0), "prios": np.empty(0, object)})
    (inv,), u = dense_index([tid])  # groups numbered in order of first appearance
    new = np.ones(inv.size, bool)
    new[1:] = inv[1:] > np.maximum.accumulate(inv)[:-1]
    first = np.flatnonzero(new)
    cnt = np.bincount(inv, minlength=u.size)
    st = group_stats(inv, lt["latency_ns"], u.size)
    pr = lt["prio"].astype(np.int64)
    ch = prio_changes(inv, pr, u.size)
    prios = _prio_texts(u.size, inv[ch], pr[ch])
    comm = lt["comm"][first]
    if renamed is not None and renamed[0].size:
        lut = dict(zip(renamed[0].tolist(), renamed[1].tolist(), strict=True))
        comm = np.array([lut.get(t_, c) for t_, c in zip(u.tolist(), comm.tolist(), strict=True)], object)
    t = Table({"tid": u, "comm": comm, "count": cnt, "min_ns": st["min_ns"].astype(np.float64),
               "avg_ns": st["avg_ns"], "max_ns": st["max_ns"].astype(np.float64), "stdev_ns": st["stdev_ns"],
               "prios": prios})
    # lttng-schedstats order: name (case-insensitive), then first appearance
    lower = np.array([str(c).lower() for c in comm.tolist()], object)
    return t.take(np.lexsort((first, lower)))


def filter_latencies(latencies: Table, min_ns: int | None = None, max_ns: int | None = None) -> Table:
    """The latencies within [min_ns, max_ns] (lttng-analyses' --min/--max)."""
    lat = latencies["latency_ns"]
    keep = np.ones(lat.size, bool)
    if min_ns is not None:
        keep &= lat >= min_ns
    if max_ns is not None:
        keep &= lat <= max_ns
    return latencies.take(np.flatnonzero(keep))


def top_latencies(latencies: Table, n: int = 10) -> Table:
    """The ``n`` longest latencies, longest first (ties: earliest first)."""
    order = np.lexsort((latencies["switch_ts"], -latencies["latency_ns"]))
    return latencies.take(order[:n])


def latency_histogram(latencies: Table, resolution: int = 20, min_ns: int | None = None,
                      max_ns: int | None = None) -> Table:
    """Frequency distribution of the latencies: ``resolution`` buckets of equal width (ns,
    integers) between min and max (those of the data unless given); columns lo_ns, hi_ns
    (bucket [lo, hi), the last one closed) and count."""
    return Table(histogram(latencies["latency_ns"], resolution, min_ns, max_ns))
