"""File descriptors: which file each (process, fd) designates over time.

Rules (lttng-analyses' I/O state, kept per *process*: the threads of a process share its fd
table):

* ``lttng_statedump_file_descriptor`` (pid, fd, filename): the fd designates that file;
* a successful ``open``/``openat`` (``filename``) or ``creat`` (``pathname``): the returned
  fd designates a new file of that name (perf's syscall tracepoints record the name's
  address only: the name is then unknown, the file still tracked);
* ``dup`` (``fildes``), ``dup2``/``dup3`` (``oldfd`` -> ``newfd``), ``fcntl`` with
  ``F_DUPFD``/``F_DUPFD_CLOEXEC``: the returned fd designates the same file as the old one;
* a successful ``close``: the fd designates nothing;
* ``sched_process_fork`` of a new process (child_pid != parent_pid): the child starts with a
  copy of the parent's table.

A Python loop runs over those events only (opens, closes, dups, forks, statedump: few);
the I/O calls are then resolved with one sorted search (:meth:`FdTable.lookup`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FD_SYSCALLS", "F_DUPFD_CMDS", "FdTable", "track_fds"]

#: fd-changing system call -> the entry fields it is read with
FD_SYSCALLS: dict[str, tuple[str, ...]] = {
    "open": ("filename",), "openat": ("filename",), "creat": ("pathname",), "close": ("fd",),
    "dup": ("fildes",), "dup2": ("oldfd", "newfd"), "dup3": ("oldfd", "newfd"), "fcntl": ("fd", "cmd"),
}

#: fcntl commands that duplicate a file descriptor (F_DUPFD, F_DUPFD_CLOEXEC)
F_DUPFD_CMDS = (0, 1030)


@dataclass
class FdTable:
    """(pid, fd) -> file over time. ``pid``/``fd``/``seq``/``file``: from event ``seq`` on,
    ``fd`` of process ``pid`` designates ``file`` (-1: nothing), sorted by (pid, fd, seq).
    ``paths[file]``: its name ("" unknown); ``opener[file]``: the (pid, fd) that opened it."""

    pid: np.ndarray
    fd: np.ndarray
    seq: np.ndarray
    file: np.ndarray
    paths: list[str]
    opener: list[tuple[int, int]]

    def lookup(self, pid: np.ndarray, fd: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """The file (-1: unknown) that ``fd`` of ``pid`` designates just before event ``seq``."""
        if self.pid.size == 0 or pid.size == 0:
            return np.full(pid.size, -1, np.int64)
        # (pid, fd) pairs as dense ids of the table's pairs, then one int64 key per row
        vp = self.pid * (1 << 32) + (self.fd & 0xFFFFFFFF)
        upair, vid = np.unique(vp, return_inverse=True)
        qp = pid.astype(np.int64) * (1 << 32) + (fd.astype(np.int64) & 0xFFFFFFFF)
        qi = np.minimum(np.searchsorted(upair, qp), upair.size - 1)
        known = upair[qi] == qp
        vkey = vid.astype(np.int64) * (1 << 42) + self.seq
        order = np.argsort(vkey, kind="stable")
        vk = vkey[order]
        qkey = qi.astype(np.int64) * (1 << 42) + (seq.astype(np.int64) - 1)
        j = np.searchsorted(vk, qkey, side="right") - 1
        jc = np.maximum(j, 0)
        ok = known & (j >= 0) & (vk[jc] >> 42 == qi)
        return np.where(ok, self.file[order][jc], -1)


def track_fds(calls: dict[str, np.ndarray], forks: dict[str, np.ndarray],
              statedump: dict[str, np.ndarray]) -> FdTable:
    """The fd table over time from the paired fd system calls (``calls``: seq (of the exit),
    pid, kind (a key of :data:`FD_SYSCALLS`), a, b (the entry's fd arguments, -1 when none),
    path (str, "" unknown), ret; in trace order), the forks (seq, parent_pid, child_pid) and
    the statedump's file descriptors (seq, pid, fd, path)."""
    # one time-ordered list of (seq, source, row): few events, a Python loop is fine
    order = sorted([(int(s), 0, i) for i, s in enumerate(statedump["seq"].tolist())]
                   + [(int(s), 1, i) for i, s in enumerate(forks["seq"].tolist())]
                   + [(int(s), 2, i) for i, s in enumerate(calls["seq"].tolist())])
    tables: dict[int, dict[int, int]] = {}
    paths: list[str] = []
    opener: list[tuple[int, int]] = []
    out_p: list[int] = []
    out_f: list[int] = []
    out_s: list[int] = []
    out_file: list[int] = []

    def put(pid: int, fd: int, seq: int, file: int) -> None:
        t = tables.setdefault(pid, {})
        if file < 0:
            t.pop(fd, None)
        else:
            t[fd] = file
        out_p.append(pid)
        out_f.append(fd)
        out_s.append(seq)
        out_file.append(file)

    def new_file(path: str, pid: int, fd: int) -> int:
        paths.append(path)
        opener.append((pid, fd))
        return len(paths) - 1

    sd = {k: v.tolist() for k, v in statedump.items()}
    fk = {k: v.tolist() for k, v in forks.items()}
    cl = {k: v.tolist() for k, v in calls.items()}
    for seq, src, i in order:
        if src == 0:
            pid, fd = sd["pid"][i], sd["fd"][i]
            put(pid, fd, seq, new_file(str(sd["path"][i]), pid, fd))
        elif src == 1:
            parent, child = fk["parent_pid"][i], fk["child_pid"][i]
            if child != parent:
                for fd, file in sorted(tables.get(parent, {}).items()):
                    put(child, fd, seq, file)
        else:
            pid, kind, a, b, ret = cl["pid"][i], cl["kind"][i], cl["a"][i], cl["b"][i], cl["ret"][i]
            if ret < 0:
                continue
            if kind in ("open", "openat", "creat"):
                put(pid, ret, seq, new_file(str(cl["path"][i]), pid, ret))
            elif kind == "close":
                if ret == 0:
                    put(pid, a, seq, -1)
            elif kind in ("dup", "dup2", "dup3") or (kind == "fcntl" and b in F_DUPFD_CMDS):
                old = tables.get(pid, {}).get(a)
                if old is None:  # duplicating an fd of unknown origin: a new unknown file
                    old = new_file("", pid, a)
                    put(pid, a, seq, old)
                put(pid, ret, seq, old)
    return FdTable(np.array(out_p, np.int64), np.array(out_f, np.int64), np.array(out_s, np.int64),
                   np.array(out_file, np.int64), paths, opener)
