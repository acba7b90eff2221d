"""I/O: system call read/write latency and bytes per process and per fd, block request latency
(what ``lttng-iolatencystats`` / ``lttng-iousagetop`` compute).

Definitions:

* I/O system calls are the read kind (``read``, ``pread64``, ``readv``, ``preadv``,
  ``preadv2``, ``recvfrom``, ``recvmsg``, ``recvmmsg``, ``recv``) and the write kind (``write``,
  ``pwrite64``, ``writev``, ``pwritev``, ``pwritev2``, ``sendto``, ``sendmsg``, ``sendmmsg``,
  ``send``), as LTTng's ``syscall_entry_X``/``syscall_exit_X`` events (``compat_`` too).
  Entries and exits are paired, attributed to threads and kept when their exit is in
  [begin, end] by the rules of :mod:`.syscalls` (the entries and exits of other system calls
  are not read). The file descriptor is the entry's ``fd``; the bytes transferred are the
  exit's ``ret`` when positive (0 for errors and end of file), as lttng-analyses counts them.
* Block requests: a ``block_rq_issue`` is completed by the next ``block_rq_complete`` with the
  same (``dev``, ``sector``); its latency is the time between them, counted when the
  completion is in [begin, end]. Disks are named from ``lttng_statedump_block_device`` when
  the trace has it, else ``MAJOR:MINOR`` (kernel dev_t: 20 minor bits).

Computed with NumPy: no per-event Python loop. Imports :mod:`tracewatch.ctf` and
:mod:`tracewatch.kernel`; never output or cli.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from ..ctf.trace import TraceSet
from ..kernel.layouts import KernelLayout, MissingEventsError, detect_layout
from ..kernel.state import THREAD_EVENTS, KernelColumns, ThreadTable, read_columns, thread_table
from . import Table
from ._stats import group_stats
from .syscalls import _syscall_name, pair_calls

__all__ = ["IoResult", "io_stats", "io_from_columns", "READ_SYSCALLS", "WRITE_SYSCALLS"]

READ_SYSCALLS: tuple[str, ...] = ("read", "pread64", "readv", "preadv", "preadv2", "recvfrom",
                                  "recvmsg", "recvmmsg", "recv")
WRITE_SYSCALLS: tuple[str, ...] = ("write", "pwrite64", "writev", "pwritev", "pwritev2", "sendto",
                                   "sendmsg", "sendmmsg", "send")

#: logical event -> actual names it may have (LTTng's, then perf's)
_BLOCK_EVENTS: dict[str, tuple[str, ...]] = {
    "block_rq_issue": ("block_rq_issue", "block:block_rq_issue"),
    "block_rq_complete": ("block_rq_complete", "block:block_rq_complete"),
    "lttng_statedump_block_device": ("lttng_statedump_block_device",),
}

_EMPTY_STATS = ("count", "min_ns", "avg_ns", "max_ns", "stdev_ns")


@dataclass
class IoResult:
    """I/O statistics over [begin, end] (ns since the epoch).

    ``calls``: one row per I/O system call, in order of exit: tid, pid (-1 unknown),
    syscall, kind ("read"/"write"), fd, entry_ts, exit_ts, duration_ns, ret, bytes.
    ``per_process``: pid (the tid when the pid is unknown), comm, read_bytes, write_bytes,
    read_count, write_count; most bytes (read + write) first, then by pid.
    ``per_fd``: pid, comm, fd, read_bytes, write_bytes, count; most bytes first.
    ``latency``: one row per kind ("read", "write") with calls: kind, count, min_ns, avg_ns,
    max_ns, stdev_ns. ``per_syscall``: the same per system call name, most calls first.
    ``disk``: one row per disk with completed requests: dev, disk, count, sectors, min_ns,
    avg_ns, max_ns, stdev_ns (latency), by dev. ``requests``: every block request: dev,
    sector, nr_sector, issue_ts, complete_ts, latency_ns, in order of completion.
    """

    begin: int
    end: int
    calls: Table
    per_process: Table
    per_fd: Table
    latency: Table
    per_syscall: Table
    disk: Table
    requests: Table
    threads: ThreadTable

    @property
    def duration(self) -> int:
        return self.end - self.begin


def _io_event_names(names: Collection[str], layout: KernelLayout) -> tuple[list[str], list[str]]:
    io = set(READ_SYSCALLS) | set(WRITE_SYSCALLS)
    ep, xp = layout.syscall_entry_prefix, layout.syscall_exit_prefix
    entries = [n for n in names if any(n in (ep + s, "compat_" + ep + s) for s in io)]
    exits = [n for n in names if any(n in (xp + s, "compat_" + xp + s) for s in io)]
    return sorted(entries), sorted(exits)


def io_layout(ts: TraceSet, layout: KernelLayout | None = None) -> KernelLayout:
    """The kernel layout of ``ts`` with the block events it has added (logical names)."""
    layout = layout or detect_layout(ts)
    present = {c.name for c in ts.classes}
    extra = {lg: next(a for a in alts if a in present) for lg, alts in _BLOCK_EVENTS.items()
             if any(a in present for a in alts)}
    return dataclasses.replace(layout, events={**layout.events, **extra})


def io_stats(ts: TraceSet, begin: int | None = None, end: int | None = None,
             tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
             procnames: Collection[str] | None = None, layout: KernelLayout | None = None) -> IoResult:
    """I/O statistics of the trace set over [begin, end] (whole trace when None).

    ``tids``/``procnames`` keep the system calls of those threads, ``cpus`` those whose exit
    is on those CPUs (block requests are not filtered by them: they belong to no thread).
    Raises :class:`MissingEventsError` when the trace has neither I/O system calls (with
    sched_switch) nor block requests.
    """
    layout = io_layout(ts, layout)
    entries, exits = _io_event_names({c.name for c in ts.classes}, layout)
    has_sys = bool(entries and exits and layout.has("sched_switch"))
    has_block = layout.has("block_rq_issue") and layout.has("block_rq_complete")
    if not has_sys and not has_block:
        if entries and exits:
            layout.require("io", ["sched_switch"])
        raise MissingEventsError(
            "io", [f"{layout.syscall_entry_prefix}read / {layout.syscall_exit_prefix}read (I/O system call)",
                   "block_rq_issue / block_rq_complete"],
            ["--syscall read,write,pread64,pwrite64,readv,writev,sendto,recvfrom",
             "sched_switch,block_rq_issue,block_rq_complete"])
    wanted: dict[str, tuple[str, ...]] = {
        "block_rq_issue": ("dev", "sector", "nr_sector"), "block_rq_complete": ("dev", "sector"),
        "lttng_statedump_block_device": ("dev", "diskname")}
    groups: dict[str, list[str]] = {}
    if has_sys:
        wanted.update({"sched_switch": ("next_tid", "next_comm"), **THREAD_EVENTS,
                       "syscall_entry": ("fd",), "syscall_exit": ("ret",)})
        groups = {"syscall_entry": entries, "syscall_exit": exits}
    kc = read_columns(ts, layout, wanted, begin, end, groups=groups)
    return io_from_columns(kc, [c.name for c in ts.classes], tids, cpus, procnames)


def _stats_table(key: str, names: np.ndarray, inv: np.ndarray, dur: np.ndarray) -> Table:
    st = group_stats(inv, dur, names.size)
    return Table({key: names, **st})


def io_from_columns(kc: KernelColumns, class_names: list[str], tids: Collection[int] | None = None,
                    cpus: Collection[int] | None = None,
                    procnames: Collection[str] | None = None) -> IoResult:
    """:func:`io_stats` on columns already read. ``class_names[gid]`` names event class gid."""
    lo = kc.first_ts if kc.first_ts is not None else 0
    hi = kc.last_ts if kc.last_ts is not None else 0
    threads = thread_table(kc)
    if "syscall_entry" in kc and "sched_switch" in kc:
        en, ex, sw = kc.events["syscall_entry"], kc.events["syscall_exit"], kc.events["sched_switch"]
        x_ref, e_ref, c_tid, c_row = pair_calls(kc, tids, cpus)
        if procnames is not None:
            wanted = np.array(sorted(set(procnames)), object)
            comm = sw["next_comm"][c_row] if c_row.size else np.empty(0, object)
            m = np.isin(comm.astype(str), wanted.astype(str))
            x_ref, e_ref, c_tid, c_row = x_ref[m], e_ref[m], c_tid[m], c_row[m]
        gids = en["gid"][e_ref].astype(np.int64)
        ugid, ginv = np.unique(gids, return_inverse=True)
        gname = np.array([_syscall_name(class_names[g], kc.layout) for g in ugid.tolist()], object)
        gkind = np.array(["read" if n in READ_SYSCALLS else "write" for n in gname.tolist()], object)
        name = gname[ginv] if gids.size else np.empty(0, object)
        kind = gkind[ginv] if gids.size else np.empty(0, object)
        e_ts, x_ts = en["timestamp"][e_ref], ex["timestamp"][x_ref]
        ret = ex["ret"][x_ref].astype(np.int64)
        fd = en["fd"][e_ref].astype(np.int64)
        comm_in = sw["next_comm"][c_row] if c_row.size else np.empty(0, object)
    else:
        c_tid = fd = ret = e_ts = x_ts = np.zeros(0, np.int64)
        name = kind = comm_in = np.empty(0, object)
    pid = threads.pids(c_tid)
    nbytes = np.maximum(ret, 0)
    dur = (x_ts - e_ts).astype(np.int64)
    calls = Table({"tid": c_tid, "pid": pid, "syscall": name, "kind": kind, "fd": fd, "entry_ts": e_ts,
                   "exit_ts": x_ts, "duration_ns": dur, "ret": ret, "bytes": nbytes})
    is_read = kind == "read"

    # ---- per process (the thread when its pid is unknown)
    proc = np.where(pid >= 0, pid, c_tid)
    up, pfirst, pinv = np.unique(proc, return_index=True, return_inverse=True)
    rb = np.bincount(pinv, weights=np.where(is_read, nbytes, 0), minlength=up.size).astype(np.int64)
    wb = np.bincount(pinv, weights=np.where(is_read, 0, nbytes), minlength=up.size).astype(np.int64)
    rc = np.bincount(pinv, weights=is_read, minlength=up.size).astype(np.int64)
    wc = np.bincount(pinv, minlength=up.size).astype(np.int64) - rc
    pcomm = np.array([threads.comm_of(p) or str(comm_in[f]) for p, f in
                      zip(up.tolist(), pfirst.tolist(), strict=True)], object)
    per_process = Table({"pid": up, "comm": pcomm, "read_bytes": rb, "write_bytes": wb,
                         "read_count": rc, "write_count": wc})
    per_process = per_process.take(np.lexsort((up, -(rb + wb))))

    # ---- per (process, fd)
    shift = np.int64(1) << np.int64(32)
    key = proc * shift + (fd & 0xFFFFFFFF)
    uk, kinv = np.unique(key, return_inverse=True)
    k_pid, k_fd = uk // shift, uk % shift
    frb = np.bincount(kinv, weights=np.where(is_read, nbytes, 0), minlength=uk.size).astype(np.int64)
    fwb = np.bincount(kinv, weights=np.where(is_read, 0, nbytes), minlength=uk.size).astype(np.int64)
    fcount = np.bincount(kinv, minlength=uk.size).astype(np.int64)
    pos = np.searchsorted(up, k_pid)
    per_fd = Table({"pid": k_pid, "comm": pcomm[pos] if up.size else np.empty(0, object), "fd": k_fd,
                    "read_bytes": frb, "write_bytes": fwb, "count": fcount})
    per_fd = per_fd.take(np.lexsort((k_fd, k_pid, -(frb + fwb))))

    # ---- latency per kind and per system call
    ukind, kdinv = np.unique(kind.astype(str), return_inverse=True)
    latency = _stats_table("kind", ukind.astype(object), kdinv, dur)
    uname, ninv = np.unique(name.astype(str), return_inverse=True)
    per_syscall = _stats_table("syscall", uname.astype(object), ninv, dur)
    per_syscall = per_syscall.take(np.lexsort((uname, -per_syscall["count"])))

    disk, requests = _block(kc, lo, hi)
    return IoResult(lo, hi, calls, per_process, per_fd, latency, per_syscall, disk, requests, threads)


def _dev_name(dev: int) -> str:
    return f"{dev >> 20}:{dev & 0xFFFFF}"


def _block(kc: KernelColumns, lo: int, hi: int) -> tuple[Table, Table]:
    """Per-disk request latency and the request log (empty without block events)."""
    iss, cmp_ = kc.get("block_rq_issue"), kc.get("block_rq_complete")
    if iss is None or cmp_ is None:
        z = np.zeros(0, np.int64)
        return (Table({"dev": z, "disk": np.empty(0, object), "sectors": z, **{k: z for k in _EMPTY_STATS}}),
                Table({"dev": z, "sector": z, "nr_sector": z, "issue_ts": z, "complete_ts": z,
                       "latency_ns": z}))
    ni = iss["seq"].size
    dev = np.concatenate([iss["dev"], cmp_["dev"]]).astype(np.int64)
    sector = np.concatenate([iss["sector"], cmp_["sector"]]).astype(np.int64)
    seq = np.concatenate([iss["seq"], cmp_["seq"]])
    is_c = np.arange(seq.size) >= ni
    o = np.lexsort((seq, sector, dev))
    d, s, c = dev[o], sector[o], is_c[o]
    ok = np.zeros(o.size, bool)
    if o.size > 1:
        ok[1:] = c[1:] & ~c[:-1] & (d[1:] == d[:-1]) & (s[1:] == s[:-1])
    xi = np.flatnonzero(ok)
    ir, cr = o[xi - 1], o[xi] - ni
    c_ts = cmp_["timestamp"][cr]
    keep = (c_ts >= lo) & (c_ts <= hi)
    ir, cr = ir[keep], cr[keep]
    order = np.argsort(cmp_["seq"][cr], kind="stable")
    ir, cr = ir[order], cr[order]
    i_ts, c_ts = iss["timestamp"][ir], cmp_["timestamp"][cr]
    lat = (c_ts - i_ts).astype(np.int64)
    rdev = iss["dev"][ir].astype(np.int64)
    nsec = iss["nr_sector"][ir].astype(np.int64)
    requests = Table({"dev": rdev, "sector": iss["sector"][ir].astype(np.int64), "nr_sector": nsec,
                      "issue_ts": i_ts, "complete_ts": c_ts, "latency_ns": lat})
    udev, dinv = np.unique(rdev, return_inverse=True)
    st = group_stats(dinv, lat, udev.size)
    names: dict[int, str] = {}
    sd = kc.get("lttng_statedump_block_device")
    if sd is not None:
        names = {int(k): str(v) for k, v in zip(sd["dev"].tolist(), sd["diskname"].tolist(), strict=True)}
    disk = Table({"dev": udev, "disk": np.array([names.get(x, _dev_name(x)) for x in udev.tolist()], object),
                  "sectors": np.bincount(dinv, weights=nsec, minlength=udev.size).astype(np.int64), **st})
    return disk, requests
