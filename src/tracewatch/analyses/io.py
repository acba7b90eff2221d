"""I/O: system call read/write latency and bytes per process and per fd, block request latency
(what ``lttng-iolatencystats`` / ``lttng-iousagetop`` compute).

Definitions:

* I/O system calls are the read kind (``read``, ``pread64``, ``readv``, ``preadv``,
  ``preadv2``, ``recvfrom``, ``recvmsg``, ``recvmmsg``, ``recv``) and the write kind (``write``,
  ``pwrite64``, ``writev``, ``pwritev``, ``pwritev2``, ``sendto``, ``sendmsg``, ``sendmmsg``,
  ``send``), as LTTng's ``syscall_entry_X``/``syscall_exit_X`` events (``compat_`` too) or
  perf's ``syscalls:sys_enter_X``/``syscalls:sys_exit_X``. Entries and exits are paired,
  attributed to threads and kept when their exit is in [begin, end] by the rules of
  :mod:`.syscalls` (with the fd system calls of :mod:`.fds`; the entries and exits of other
  system calls are not read). The file descriptor is the entry's ``fd``, the file it
  designated then comes from the fd table of :mod:`.fds`; the bytes transferred are the
  exit's ``ret`` when positive (0 for errors and end of file), as lttng-analyses counts them.
* Block requests: a ``block_rq_issue`` is completed by the next ``block_rq_complete`` with the
  same (``dev``, ``sector``); its latency is the time between them, counted when the
  completion is in [begin, end]. Disks are named from ``lttng_statedump_block_device`` when
  the trace has it, else ``MAJOR:MINOR`` (kernel dev_t: 20 minor bits).

Computed with NumPy, but for the fd table (a loop over the opens, closes, dups and forks
only, see :mod:`.fds`). Imports :mod:`tracewatch.ctf` and :mod:`tracewatch.kernel`; never
output or cli.
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
from ._stats import group_stats, groups
from .fds import FD_SYSCALLS, FdTable, track_fds
from .syscalls import pair_all

__all__ = ["IoResult", "io_stats", "io_from_columns", "READ_SYSCALLS", "WRITE_SYSCALLS", "top_io_calls",
           "syscall_prefixes"]

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
    syscall, kind ("read"/"write"), fd, path (the file the fd designated, see
    :mod:`.fds`; "" unknown), entry_ts, exit_ts, duration_ns, ret, bytes.
    ``per_file``: path (files whose name the trace lacks: "unknown (pid P, fd N, #k)", the
    fd that opened it; calls on an fd of unknown origin: "unknown (pid P, fd N)"),
    read_bytes, write_bytes, read_count, write_count, fds ("pid:fd" of the calls); most bytes
    first. ``fds``: the fd table over time (:class:`~.fds.FdTable`).
    ``per_process``: pid (the tid when the pid is unknown), comm, read_bytes, write_bytes,
    read_count, write_count; most bytes (read + write) first, then by pid.
    ``per_fd``: pid, comm, fd, read_bytes, write_bytes, count; most bytes first.
    ``latency``: one row per kind ("read", "write") with calls: kind, count, min_ns, avg_ns,
    max_ns, stdev_ns. ``per_syscall``: the same per system call name, most calls first.
    ``disk``: one row per disk with completed requests: dev, disk, count, sectors, min_ns,
    avg_ns, max_ns, stdev_ns (latency), by dev. ``requests``: every block request: dev,
    sector, nr_sector, issue_ts, complete_ts, latency_ns, in order of completion.
    ``fault``: with ``partial=True``, the :class:`~tracewatch.errors.DecodeError` that cut
    the trace short (the result then covers the events read before it); None otherwise.
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
    per_file: Table | None = None
    fds: FdTable | None = None
    fault: DecodeError | None = field(default=None, compare=False, repr=False)

    @property
    def duration(self) -> int:
        return self.end - self.begin


def syscall_prefixes(layout: KernelLayout, names: Collection[str]) -> tuple[str, str]:
    """Entry and exit prefixes of the per-system-call events: the layout's, or perf's
    ``syscalls:sys_enter_``/``syscalls:sys_exit_`` tracepoints when the trace has them."""
    if any(n.startswith("syscalls:sys_enter_") for n in names):
        return "syscalls:sys_enter_", "syscalls:sys_exit_"
    return layout.syscall_entry_prefix, layout.syscall_exit_prefix


def _named(names: Collection[str], prefix: str, calls: Collection[str]) -> list[str]:
    wanted = {prefix + s for s in calls} | {"compat_" + prefix + s for s in calls}
    return sorted(n for n in names if n in wanted)


def _call_name(event: str, prefixes: tuple[str, str]) -> str:
    for p in prefixes:
        for q in (p, "compat_" + p):
            if event.startswith(q):
                return event[len(q):]
    return event


def io_layout(ts: TraceSet, layout: KernelLayout | None = None) -> KernelLayout:
    """The kernel layout of ``ts`` with the block and statedump fd events it has added."""
    layout = layout or detect_layout(ts)
    present = {c.name for c in ts.classes}
    extra = {lg: next(a for a in alts if a in present) for lg, alts in _BLOCK_EVENTS.items()
             if any(a in present for a in alts)}
    return dataclasses.replace(layout, events={**layout.events, **extra})


def io_stats(ts: TraceSet, begin: int | None = None, end: int | None = None,
             tids: Collection[int] | None = None, cpus: Collection[int] | None = None,
             procnames: Collection[str] | None = None, layout: KernelLayout | None = None, *,
             partial: bool = False) -> IoResult:
    """I/O statistics of the trace set over [begin, end] (whole trace when None).

    ``tids``/``procnames`` keep the system calls of those threads, ``cpus`` those whose exit
    is on those CPUs (block requests are not filtered by them: they belong to no thread; the
    fd table is built from every process's calls). Raises :class:`MissingEventsError` when
    the trace has neither I/O system calls (with sched_switch) nor block requests.
    ``partial``: on a corrupt or truncated trace, return the result over the events read
    before the fault, with the error in ``fault``, instead of raising
    :class:`~tracewatch.errors.DecodeError`.
    """
    layout = io_layout(ts, layout)
    names = {c.name for c in ts.classes}
    ep, xp = syscall_prefixes(layout, names)
    io_calls = READ_SYSCALLS + WRITE_SYSCALLS
    entries, exits = _named(names, ep, io_calls), _named(names, xp, io_calls)
    has_sys = bool(entries and exits and layout.has("sched_switch"))
    has_block = layout.has("block_rq_issue") and layout.has("block_rq_complete")
    if not has_sys and not has_block:
        if entries and exits:
            layout.require("io", ["sched_switch"])
        raise MissingEventsError(
            "io", [f"{ep}read / {xp}read (I/O system call)", "block_rq_issue / block_rq_complete"],
            ["--syscall read,write,pread64,pwrite64,readv,writev,sendto,recvfrom,open,openat,close,dup,dup2,fcntl",
             "sched_switch,block_rq_issue,block_rq_complete"])
    wanted: dict[str, tuple[str, ...]] = {
        "block_rq_issue": ("dev", "sector", "nr_sector"), "block_rq_complete": ("dev", "sector"),
        "lttng_statedump_block_device": ("dev", "diskname")}
    groups: dict[str, list[str]] = {}
    if has_sys:
        wanted.update({"sched_switch": ("next_tid", "next_comm"), **THREAD_EVENTS,
                       "syscall_entry": ("fd",), "syscall_exit": ("ret",),
                       "fd_statedump": ("pid", "fd", "filename")})
        groups = {"syscall_entry": entries,
                  "syscall_exit": exits + _named(names, xp, FD_SYSCALLS),
                  "fd_statedump": [n for n in ("lttng_statedump_file_descriptor",) if n in names]}
        for kind, fields in FD_SYSCALLS.items():
            groups[f"fd_{kind}"] = _named(names, ep, (kind,))
            wanted[f"fd_{kind}"] = fields
    kc = read_columns(ts, layout, wanted, begin, end, groups=groups, text="codes", partial=partial)
    return io_from_columns(kc, [c.name for c in ts.classes], tids, cpus, procnames, (ep, xp))


def _stats_table(key: str, names: np.ndarray, inv: np.ndarray, dur: np.ndarray) -> Table:
    st = group_stats(inv, dur, names.size)
    return Table({key: names, **st})


def _path_texts(col: np.ndarray) -> np.ndarray:
    """File names of a filename column: text (codes or strings), or "" where the trace has
    only the name's address (perf)."""
    if col.dtype == object or col.dtype == np.int32:
        return texts(col)
    return np.full(col.size, "", object)


def _all_entries(kc: KernelColumns) -> dict[str, np.ndarray]:
    """The I/O and fd system call entries as one table in trace order: seq, timestamp, cpu,
    gid, fd (I/O calls; -1 otherwise), a, b (fd arguments of the fd calls, -1 when none),
    path (object)."""
    parts: list[dict[str, np.ndarray]] = []
    io_en = kc.events.get("syscall_entry")
    if io_en is not None:
        n = io_en["seq"].size
        parts.append({"fd": io_en["fd"].astype(np.int64), "a": np.full(n, -1, np.int64),
                      "b": np.full(n, -1, np.int64), "path": np.full(n, "", object), **_base(io_en)})
    for kind, fields in FD_SYSCALLS.items():
        cols = kc.events.get(f"fd_{kind}")
        if cols is None or cols["seq"].size == 0:
            continue
        n = cols["seq"].size
        if fields[0] in ("filename", "pathname"):
            a, b, path = np.full(n, -1, np.int64), np.full(n, -1, np.int64), _path_texts(cols[fields[0]])
        else:
            a = cols[fields[0]].astype(np.int64)
            b = cols[fields[1]].astype(np.int64) if len(fields) > 1 else np.full(n, -1, np.int64)
            path = np.full(n, "", object)
        parts.append({"fd": np.full(n, -1, np.int64), "a": a, "b": b, "path": path, **_base(cols)})
    if not parts:
        return {"seq": np.zeros(0, np.int64), "timestamp": np.zeros(0, np.int64), "cpu": np.zeros(0, np.int64),
                "gid": np.zeros(0, np.int64), "fd": np.zeros(0, np.int64), "a": np.zeros(0, np.int64),
                "b": np.zeros(0, np.int64), "path": np.empty(0, object)}
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if len(parts) > 1:
        o = np.argsort(out["seq"], kind="stable")
        out = {k: v[o] for k, v in out.items()}
    return out


def _base(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"seq": cols["seq"].astype(np.int64), "timestamp": cols["timestamp"].astype(np.int64),
            "cpu": cols["cpu"].astype(np.int64), "gid": cols["gid"].astype(np.int64)}


def io_from_columns(kc: KernelColumns, class_names: list[str], tids: Collection[int] | None = None,
                    cpus: Collection[int] | None = None, procnames: Collection[str] | None = None,
                    prefixes: tuple[str, str] | None = None) -> IoResult:
    """:func:`io_stats` on columns already read. ``class_names[gid]`` names event class gid;
    ``prefixes``: the system call event prefixes (the layout's when None)."""
    lo = kc.first_ts if kc.first_ts is not None else 0
    hi = kc.last_ts if kc.last_ts is not None else 0
    pfx = prefixes or (kc.layout.syscall_entry_prefix, kc.layout.syscall_exit_prefix)
    threads = thread_table(kc)
    fdt: FdTable | None = None
    if "syscall_entry" in kc and "sched_switch" in kc:
        en, ex, sw = _all_entries(kc), kc.events["syscall_exit"], kc.events["sched_switch"]
        kc2 = KernelColumns(kc.layout, {**kc.events, "syscall_entry": en}, kc.first_ts, kc.last_ts)
        x_ref, e_ref, c_tid, c_row = pair_all(kc2)
        gids = en["gid"][e_ref]
        ugid, _, ginv = groups(gids)
        gname = np.array([_call_name(class_names[g], pfx) for g in ugid.tolist()], object)
        name = gname[ginv] if gids.size else np.empty(0, object)
        g_fd = np.array([n in FD_SYSCALLS for n in gname.tolist()], bool)
        g_read = np.array([n in READ_SYSCALLS for n in gname.tolist()], bool)
        ret_all = ex["ret"][x_ref].astype(np.int64)
        pid_all = threads.pids(c_tid)
        # the fd table, from every process's fd calls, whatever the range and filters
        is_fd = g_fd[ginv] if gids.size else np.zeros(0, bool)
        sd = kc.events.get("fd_statedump")
        fk = kc.get("sched_process_fork")
        fdt = track_fds(
            {"seq": ex["seq"][x_ref][is_fd].astype(np.int64),
             "pid": np.where(pid_all >= 0, pid_all, c_tid)[is_fd], "kind": name[is_fd],
             "a": en["a"][e_ref][is_fd], "b": en["b"][e_ref][is_fd], "path": en["path"][e_ref][is_fd],
             "ret": ret_all[is_fd]},
            {"seq": fk["seq"], "parent_pid": fk["parent_pid"].astype(np.int64),
             "child_pid": fk["child_pid"].astype(np.int64)} if fk is not None else
            {"seq": np.zeros(0, np.int64), "parent_pid": np.zeros(0, np.int64), "child_pid": np.zeros(0, np.int64)},
            {"seq": sd["seq"], "pid": sd["pid"].astype(np.int64), "fd": sd["fd"].astype(np.int64),
             "path": _path_texts(sd["filename"])} if sd is not None and sd["seq"].size else
            {"seq": np.zeros(0, np.int64), "pid": np.zeros(0, np.int64), "fd": np.zeros(0, np.int64),
             "path": np.empty(0, object)})
        # the I/O calls in the range, filtered
        x_ts = ex["timestamp"][x_ref]
        keep = ~is_fd & (x_ts >= lo) & (x_ts <= hi)
        if tids is not None:
            keep &= np.isin(c_tid, np.fromiter(tids, np.int64))
        if cpus is not None:
            keep &= np.isin(ex["cpu"][x_ref].astype(np.int64), np.fromiter(cpus, np.int64))
        if procnames is not None:
            comm_all = texts(sw["next_comm"][c_row]) if c_row.size else np.empty(0, object)
            keep &= np.isin(comm_all.astype(str), np.array(sorted(set(procnames)), dtype=str))
        x_ref, e_ref, c_tid, c_row, name = x_ref[keep], e_ref[keep], c_tid[keep], c_row[keep], name[keep]
        pid_k = pid_all[keep]
        gi = ginv[keep] if gids.size else np.zeros(0, np.int64)
        is_read = g_read[gi] if gids.size else np.zeros(0, bool)
        kind = np.array(["write", "read"], object)[is_read.astype(np.int64)]
        e_ts, x_ts = en["timestamp"][e_ref], ex["timestamp"][x_ref]
        ret = ex["ret"][x_ref].astype(np.int64)
        fd = en["fd"][e_ref]
        comm_in = texts(sw["next_comm"][c_row]) if c_row.size else np.empty(0, object)
        file = fdt.lookup(np.where(pid_k >= 0, pid_k, c_tid), fd, en["seq"][e_ref])
    else:
        c_tid = fd = ret = e_ts = x_ts = file = gi = np.zeros(0, np.int64)
        name = kind = comm_in = gname = np.empty(0, object)
        is_read = np.zeros(0, bool)
        pid_k = np.zeros(0, np.int64)
    pid = pid_k if c_tid.size else np.zeros(0, np.int64)
    nbytes = np.maximum(ret, 0)
    dur = (x_ts - e_ts).astype(np.int64)
    paths = np.array((fdt.paths if fdt is not None else []) + [""], object)
    calls = Table({"tid": c_tid, "pid": pid, "syscall": name, "kind": kind, "fd": fd, "path": paths[file],
                   "entry_ts": e_ts, "exit_ts": x_ts, "duration_ns": dur, "ret": ret, "bytes": nbytes})

    # ---- per process (the thread when its pid is unknown)
    proc = np.where(pid >= 0, pid, c_tid)
    up, pfirst, pinv = _sorted_groups(proc)
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
    k_pid, k_fd, kinv = _pairs(pinv, up, fd)
    uk = k_pid
    frb = np.bincount(kinv, weights=np.where(is_read, nbytes, 0), minlength=uk.size).astype(np.int64)
    fwb = np.bincount(kinv, weights=np.where(is_read, 0, nbytes), minlength=uk.size).astype(np.int64)
    fcount = np.bincount(kinv, minlength=uk.size).astype(np.int64)
    pos = np.searchsorted(up, k_pid)
    per_fd = Table({"pid": k_pid, "comm": pcomm[pos] if up.size else np.empty(0, object), "fd": k_fd,
                    "read_bytes": frb, "write_bytes": fwb, "count": fcount})
    per_fd = per_fd.take(np.lexsort((k_fd, k_pid, -(frb + fwb))))

    # ---- latency per kind and per system call
    kinds = [k for k, r in (("read", True), ("write", False)) if bool(np.any(is_read == r))]
    latency = _stats_table("kind", np.array(kinds, object), (~is_read).astype(np.int64) if kinds != ["write"]
                           else np.zeros(is_read.size, np.int64), dur)
    used, _, ninv_g = groups(gi)
    gnames = gname[used] if used.size else np.empty(0, object)
    uname, ninv = np.unique(gnames.astype(str), return_inverse=True)  # compat_ and native together
    ninv = ninv[ninv_g] if ninv_g.size else np.zeros(0, np.int64)
    per_syscall = _stats_table("syscall", uname.astype(object), ninv, dur)
    per_syscall = per_syscall.take(np.lexsort((uname, -per_syscall["count"])))

    per_file = _per_file(calls, is_read, file, (k_pid, k_fd, kinv), fdt)
    disk, requests = _block(kc, lo, hi)
    return IoResult(lo, hi, calls, per_process, per_fd, latency, per_syscall, disk, requests, threads,
                    per_file, fdt, fault=kc.fault)


def _sorted_groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.unique(values, return_index=True, return_inverse=True), grouping without a sort
    of the elements (:func:`._stats.groups`) and sorting the distinct values only."""
    keys, first, inv = groups(values.astype(np.int64))
    order = np.argsort(keys, kind="stable")
    rank = np.empty(keys.size, np.int64)
    rank[order] = np.arange(keys.size)
    return keys[order], first[order], rank[inv] if inv.size else inv


def _pairs(pinv: np.ndarray, up: np.ndarray, fd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pid, fd) groups of the calls: pid and fd of each group, group of each call (``pinv``:
    index of each call's process in ``up``)."""
    fd = fd.astype(np.int64)
    lo = int(fd.min()) if fd.size else 0
    span = (int(fd.max()) - lo + 1) if fd.size else 1
    kp, _, kinv = groups(pinv.astype(np.int64) * span + (fd - lo))
    return up[kp // span] if kp.size else kp, kp % span + lo, kinv


def _per_file(calls: Table, is_read: np.ndarray, file: np.ndarray,
              pf: tuple[np.ndarray, np.ndarray, np.ndarray], fdt: FdTable | None) -> Table:
    """Bytes and calls per file (see :class:`IoResult`): grouped by file id (or by
    (process, fd) for fds of unknown origin), then by name; Python loops only over files."""
    nbytes = calls["bytes"]
    upf_pid, upf_fd, pfid = pf
    nfiles = len(fdt.paths) if fdt is not None else 0
    code = np.where(file >= 0, file, nfiles + pfid)
    ucode, _, cinv = groups(code)
    labels: list[str] = []
    seen: dict[tuple[int, int], int] = {}
    for c in ucode.tolist():
        if c < nfiles and fdt is not None and fdt.paths[c]:
            labels.append(fdt.paths[c])
        elif c < nfiles and fdt is not None:  # name not in the trace: the fd that opened it
            p, d = fdt.opener[c]
            k = seen[(p, d)] = seen.get((p, d), 0) + 1
            labels.append(f"unknown (pid {p}, fd {d}, #{k})")
        else:
            labels.append(f"unknown (pid {upf_pid[c - nfiles]}, fd {upf_fd[c - nfiles]})")
    ulab, linv_c = np.unique(np.array(labels, dtype=str), return_inverse=True) if labels else \
        (np.empty(0, str), np.zeros(0, np.int64))
    linv = linv_c[cinv] if cinv.size else np.zeros(0, np.int64)
    n = ulab.size
    rb = np.bincount(linv, weights=np.where(is_read, nbytes, 0), minlength=n).astype(np.int64)
    wb = np.bincount(linv, weights=np.where(is_read, 0, nbytes), minlength=n).astype(np.int64)
    rc = np.bincount(linv, weights=is_read, minlength=n).astype(np.int64)
    wc = np.bincount(linv, minlength=n).astype(np.int64) - rc
    # the (pid, fd) of the calls of each file: distinct (file, pid:fd) pairs
    npf = max(upf_pid.size, 1)
    pairs, _, _ = groups(linv.astype(np.int64) * npf + pfid)
    owners: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for g, k in zip((pairs // npf).tolist(), (pairs % npf).tolist(), strict=True):
        owners[g].append((int(upf_pid[k]), int(upf_fd[k])))
    fds = np.array([", ".join(f"{p}:{d}" for p, d in sorted(o)) for o in owners], object)
    t = Table({"path": ulab.astype(object), "read_bytes": rb, "write_bytes": wb, "read_count": rc,
               "write_count": wc, "fds": fds})
    return t.take(np.lexsort((ulab, -(rb + wb))))


def top_io_calls(r: IoResult, n: int = 10, kind: str | None = None) -> Table:
    """The ``n`` longest I/O system calls of ``r`` (of one kind, "read" or "write", when
    given), longest first (ties: earliest first)."""
    c = r.calls
    if kind is not None:
        c = c.take(np.flatnonzero(c["kind"] == kind))
    return c.take(np.lexsort((c["exit_ts"], -c["duration_ns"]))[:n])


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
        names = {int(k): str(v) for k, v in zip(sd["dev"].tolist(), texts(sd["diskname"]).tolist(), strict=True)}
    disk = Table({"dev": udev, "disk": np.array([names.get(x, _dev_name(x)) for x in udev.tolist()], object),
                  "sectors": np.bincount(dinv, weights=nsec, minlength=udev.size).astype(np.int64), **st})
    return disk, requests
