"""System call statistics per thread and per system call (what ``lttng-syscallstats`` computes).

Definition (lttng-analyses'): a system call entry event (``syscall_entry_X``, or the layout's
prefix, e.g. ``sys_X`` for LTTng 2.0-2.5; ``compat_syscall_entry_X`` too) is made by the task
current on its CPU (the ``next_tid`` of the last ``sched_switch`` there; entries and exits on a
CPU before its first ``sched_switch`` are ignored). A system call exit event of a thread ends
the last entry of that thread if no exit came in between (a newer entry replaces an older
unfinished one; an exit with no pending entry is ignored). The call's name is the entry's
(prefix removed), its duration exit - entry, its return value the exit's ``ret``. Calls are
counted when their exit is in [begin, end].

Paired in one compiled pass in trace order over the sched_switch, entry and exit columns
(:mod:`._machines`); Python loops run only over distinct (thread, system call, return
value) groups.

Imports :mod:`tracewatch.ctf` and :mod:`tracewatch.kernel`; never output or cli.
"""

from __future__ import annotations

import errno
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from ..ctf.trace import TraceSet
from ..errors import DecodeError
from ..kernel.fast import dense_index, texts
from ..kernel.layouts import KernelLayout, MissingEventsError, detect_layout
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
from ._machines import pair_syscalls
from ._stats import group_stats, groups

__all__ = ["SyscallsResult", "syscall_stats", "syscalls_periods", "syscalls_from_columns", "syscall_event_names",
           "return_key", "pair_calls", "pair_all", "current_rows"]


@dataclass
class SyscallsResult:
    """System call statistics over [begin, end] (ns since the epoch).

    ``calls``: one row per paired call, in order of exit (tid, syscall, entry_ts, exit_ts,
    duration_ns, ret, cpu: CPU of the exit). ``per_syscall``: one row per (thread, system
    call): tid, pid (-1 unknown), comm, syscall, count, min_ns, avg_ns, max_ns, stdev_ns
    (sample standard deviation, NaN below two calls), errors (calls returning < 0), returns
    (text like ``{'success': 12, 'ENOENT': 3}``: return kinds in order of first appearance),
    grouped by thread in ``per_tid`` order, then by count (most first, ties in order of first
    call). ``per_tid``: tid, pid, comm, count, sorted by count, most first (ties in order of
    first call). ``total``: number of calls.
    ``fault``: with ``partial=True``, the :class:`~tracewatch.errors.DecodeError` that cut
    the trace short (the result then covers the events read before it); None otherwise.
    """

    begin: int
    end: int
    calls: Table
    per_syscall: Table
    per_tid: Table
    total: int
    threads: ThreadTable
    fault: DecodeError | None = field(default=None, compare=False, repr=False)

    @property
    def duration(self) -> int:
        return self.end - self.begin


def syscall_event_names(names: Collection[str], layout: KernelLayout) -> tuple[list[str], list[str]]:
    """The entry and exit event names (in ``names``) of the system calls of a layout."""
    ep, xp = layout.syscall_entry_prefix, layout.syscall_exit_prefix
    entries = [n for n in names if n.startswith(ep) or n.startswith("compat_" + ep)]
    exits = [n for n in names if n.startswith(xp) or n.startswith("compat_" + xp)]
    return entries, exits


def _syscall_name(event: str, layout: KernelLayout) -> str:
    ep = layout.syscall_entry_prefix
    if event.startswith("compat_" + ep):
        return event[len("compat_" + ep):]
    return event[len(ep):] if event.startswith(ep) else event


def return_key(ret: int) -> str:
    """'success' for ret >= 0, else the errno name (ENOENT...) or the number as text."""
    if ret >= 0:
        return "success"
    return errno.errorcode.get(-ret, str(ret))


def syscall_stats(ts: TraceSet, begin: int | None = None, end: int | None = None,
                  tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
                  procnames: Collection[str] | None = None,
                  layout: KernelLayout | None = None, *, partial: bool = False) -> SyscallsResult:
    """System call statistics of the trace set over [begin, end] (whole trace when None).

    ``tids``/``procnames`` keep those threads (by tid / by name), ``cpus`` the calls whose
    exit is on those CPUs (lttng-analyses' ``--tid``/``--procname``/``--cpu``).
    ``partial``: on a corrupt or truncated trace, return the result over the events read
    before the fault, with the error in ``fault``, instead of raising
    :class:`~tracewatch.errors.DecodeError`.
    """
    kc = _read(ts, begin, end, layout, partial=partial)
    return syscalls_from_columns(kc, [c.name for c in ts.classes], tids, cpus, procnames)


def needed_columns(ts: TraceSet, layout: KernelLayout) -> ColumnSpec:
    """The columns syscalls reads (every ``syscall_entry_*`` / ``_exit_*`` of ``ts`` as two
    groups); raises :class:`~tracewatch.kernel.MissingEventsError` without them."""
    layout.require("syscalls", ["sched_switch"])
    entries, exits = syscall_event_names({c.name for c in ts.classes}, layout)
    if not entries or not exits:
        raise MissingEventsError("syscalls", [f"{layout.syscall_entry_prefix}* / {layout.syscall_exit_prefix}*"],
                                 ["--syscall -a"])
    return ColumnSpec({"sched_switch": ("next_tid", "next_comm"), **THREAD_EVENTS,
                       "syscall_exit": ("ret",)},
                      {"syscall_entry": entries, "syscall_exit": exits})


def _read(ts: TraceSet, begin: int | None, end: int | None, layout: KernelLayout | None,
          period: int | None = None, partial: bool = False) -> KernelColumns:
    layout = layout or detect_layout(ts)
    spec = needed_columns(ts, layout)
    return read_columns(ts, layout, spec.wanted, begin, end, groups=spec.groups, period=period,
                        text="codes", partial=partial)


def syscalls_periods(ts: TraceSet, period: int, begin: int | None = None, end: int | None = None,
                     tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
                     procnames: Collection[str] | None = None,
                     layout: KernelLayout | None = None, *, partial: bool = False) -> list[SyscallsResult]:
    """:func:`syscall_stats` per window of ``period`` ns ([t, t + period), aligned on the first
    event of the range; windows without events left out), from one pass over the trace
    (``partial``: see :func:`syscall_stats`; every window's result then holds the fault)."""
    kc = _read(ts, begin, end, layout, period, partial=partial)
    names = [c.name for c in ts.classes]
    return [syscalls_from_columns(w, names, tids, cpus, procnames) for _, _, w in period_windows(kc)]


def current_rows(sw: dict[str, np.ndarray], cpu: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Row (in ``sw``) of the last sched_switch on ``cpu`` before event ``seq``; -1 if none."""
    if cpu.size == 0 or sw["seq"].size == 0:
        return np.full(cpu.size, -1, np.int64)
    skey = (sw["cpu"].astype(np.int64) << 40) | sw["seq"]
    order = np.argsort(skey, kind="stable")
    sk = skey[order]
    key = (cpu.astype(np.int64) << 40) | seq
    pos = np.searchsorted(sk, key, side="left") - 1
    ok = pos >= 0
    posc = np.maximum(pos, 0)
    ok &= (sk[posc] >> 40) == cpu.astype(np.int64)
    return np.where(ok, order[posc], -1)


def pair_all(kc: KernelColumns) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every paired call of the ``syscall_entry``/``syscall_exit`` columns of ``kc`` (module
    rules), whatever the range: (exit rows, entry rows, tids, sched_switch rows), in trace
    order of the exits."""
    sw = kc.events["sched_switch"]
    en, ex = kc.events["syscall_entry"], kc.events["syscall_exit"]
    nxt = sw["next_tid"].astype(np.int64)
    (si,), keys = dense_index([nxt])
    e_cpu, x_cpu, s_cpu = (c["cpu"].astype(np.int64) for c in (en, ex, sw))
    (sci, eci, xci), ucpu = dense_index([s_cpu, e_cpu, x_cpu])
    x_ref, e_ref, c_row = pair_syscalls(en["seq"].astype(np.int64), eci, ex["seq"].astype(np.int64), xci,
                                        sw["seq"].astype(np.int64), sci, si, keys.size, ucpu.size)
    return x_ref, e_ref, nxt[c_row], c_row


def pair_calls(kc: KernelColumns, tids: Collection[int] | None = None,
               cpus: Collection[int] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair the ``syscall_entry``/``syscall_exit`` group columns of ``kc`` (module rules).

    Returns, for each call whose exit is in the range (and made by ``tids``, exit on
    ``cpus``), in trace order of the exits: the exit row, the entry row, the tid and the row
    of the sched_switch that made the thread current.
    """
    ex = kc.events["syscall_exit"]
    lo = kc.first_ts if kc.first_ts is not None else 0
    hi = kc.last_ts if kc.last_ts is not None else 0
    x_ref, e_ref, c_tid, c_row = pair_all(kc)
    x_ts = ex["timestamp"][x_ref]
    keep = (x_ts >= lo) & (x_ts <= hi)
    if tids is not None:
        keep &= np.isin(c_tid, np.fromiter(tids, np.int64))
    if cpus is not None:
        keep &= np.isin(ex["cpu"][x_ref].astype(np.int64), np.fromiter(cpus, np.int64))
    return x_ref[keep], e_ref[keep], c_tid[keep], c_row[keep]


def syscalls_from_columns(kc: KernelColumns, class_names: list[str],
                          tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
                          procnames: Collection[str] | None = None) -> SyscallsResult:
    """:func:`syscall_stats` on columns already read (sched_switch next_tid/next_comm,
    ``syscall_entry``/``syscall_exit`` groups with gid, exit ret). ``class_names[gid]`` is
    the name of event class ``gid``."""
    layout = kc.layout
    sw = kc.events["sched_switch"]
    en, ex = kc.events["syscall_entry"], kc.events["syscall_exit"]
    lo = kc.first_ts if kc.first_ts is not None else 0
    hi = kc.last_ts if kc.last_ts is not None else 0
    threads = thread_table(kc)
    x_ref, e_ref, c_tid, c_row = pair_calls(kc, tids, cpus)
    # name of each thread: its name when its first call was counted (lttng-analyses')
    utid, tfirst, tinv = groups(c_tid)
    comm_first = texts(sw["next_comm"][c_row[tfirst]]) if c_row.size else np.empty(0, object)
    tcomm = np.array([_comm_at(threads, int(t), str(c)) for t, c in
                      zip(utid.tolist(), comm_first.tolist(), strict=True)], object)
    if procnames is not None:
        wanted_names = set(procnames)
        tok = np.array([c in wanted_names for c in tcomm.tolist()], bool)
        m = tok[tinv] if tinv.size else np.zeros(0, bool)
        x_ref, e_ref, c_tid, c_row = x_ref[m], e_ref[m], c_tid[m], c_row[m]
        utid, tfirst, tinv = groups(c_tid)
        comm_first = texts(sw["next_comm"][c_row[tfirst]]) if c_row.size else np.empty(0, object)
        tcomm = np.array([_comm_at(threads, int(t), str(c)) for t, c in
                          zip(utid.tolist(), comm_first.tolist(), strict=True)], object)
    gids = en["gid"][e_ref].astype(np.int64)
    ugid, _, ginv = groups(gids)
    gname = np.array([_syscall_name(class_names[g], layout) for g in ugid.tolist()], object)
    sc_name = gname[ginv] if gids.size else np.empty(0, object)
    e_ts = en["timestamp"][e_ref]
    x_ts = ex["timestamp"][x_ref]
    dur = (x_ts - e_ts).astype(np.int64)
    ret = ex["ret"][x_ref].astype(np.int64)
    calls = Table({"tid": c_tid, "syscall": sc_name, "entry_ts": e_ts, "exit_ts": x_ts,
                   "duration_ns": dur, "ret": ret, "cpu": ex["cpu"][x_ref].astype(np.int64)})

    # ---- per thread
    tpid = threads.pids(utid)
    tcount = np.bincount(tinv, minlength=utid.size).astype(np.int64)
    t_order = np.lexsort((tfirst, -tcount))
    per_tid = Table({"tid": utid, "pid": tpid, "comm": tcomm, "count": tcount}).take(t_order)
    t_rank = np.empty(utid.size, np.int64)
    t_rank[t_order] = np.arange(utid.size)

    # ---- per (thread, system call): key = thread index * n_names + name index
    nnames = max(ugid.size, 1)
    key = tinv.astype(np.int64) * nnames + (ginv.astype(np.int64) if ginv.size else 0)
    ukey, kfirst, kinv = groups(key)
    st = group_stats(kinv, dur, ukey.size)
    k_t = ukey // nnames
    k_n = ukey % nnames
    err = np.bincount(kinv, weights=(ret < 0).astype(np.float64), minlength=ukey.size).astype(np.int64)
    returns = _returns_text(kinv, ret, ukey.size)
    k_order = np.lexsort((kfirst, -st["count"], t_rank[k_t]))
    per_syscall = Table({"tid": utid[k_t], "pid": tpid[k_t], "comm": tcomm[k_t], "syscall": gname[k_n]
                         if gname.size else np.empty(0, object), **st, "errors": err,
                         "returns": returns}).take(k_order)
    return SyscallsResult(lo, hi, calls, per_syscall, per_tid, int(dur.size), threads, fault=kc.fault)


def _comm_at(threads: ThreadTable, tid: int, switched_in_as: str) -> str:
    return switched_in_as or threads.comm_of(tid)


def _returns_text(kinv: np.ndarray, ret: np.ndarray, ngroups: int) -> np.ndarray:
    """Per group, ``{'success': n, 'EAGAIN': m}`` with kinds in order of first appearance."""
    out = np.empty(ngroups, object)
    out[:] = "{}"
    if ret.size == 0:
        return out
    code = np.where(ret >= 0, 0, ret)
    codes, _, ci = groups(-code)
    codes = -codes
    key = kinv.astype(np.int64) * codes.size + ci  # one int64 per (group, kind)
    u, first, inv = groups(key)
    counts = np.bincount(inv, minlength=u.size)
    ug, uc = u // codes.size, codes[u % codes.size]
    nkinds = np.bincount(ug, minlength=ngroups)
    # groups with one kind (most): one text per distinct (kind, count), no per-group loop
    one = nkinds[ug] == 1
    pairs = np.stack([uc[one], counts[one]], axis=1)
    if pairs.size:
        up, pinv = np.unique(pairs, axis=0, return_inverse=True)
        ptext = np.array([f"{{{return_key(c)!r}: {n}}}" for c, n in up.tolist()], object)
        out[ug[one]] = ptext[pinv.ravel()]
    multi = ~one
    order = np.lexsort((first[multi], ug[multi]))
    texts: dict[int, list[str]] = {}
    for g, c, n in zip(ug[multi][order].tolist(), uc[multi][order].tolist(), counts[multi][order].tolist(),
                       strict=True):
        texts.setdefault(g, []).append(f"{return_key(c)!r}: {n}")
    for g, parts in texts.items():
        out[g] = "{" + ", ".join(parts) + "}"
    return out
