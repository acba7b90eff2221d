"""I/O per file (fd -> file tracking) on many-threads against an independent computation
from babeltrace2's text output, and on small synthetic traces computed by hand."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracewatch
from tracewatch.analyses.io import READ_SYSCALLS, WRITE_SYSCALLS, IoResult, io_stats, top_io_calls

from ..conftest import MANY_THREADS, babeltrace2
from .kernel_trace import switch, write_kernel_trace

LINE = re.compile(r"^\[[^\]]+\] \([^)]+\) \S+ (\w+): \{ cpu_id = (\d+) \}, \{ (.*) \}$")
FIELD = re.compile(r'(\w+) = ("(?:[^"\\]|\\.)*"|[^,]+)')
FD_CALLS = {"open", "openat", "creat", "close", "dup", "dup2", "dup3", "fcntl"}


def _per_file_from_babeltrace2(path: str) -> dict[str, list[int]]:
    """path -> [read bytes, write bytes, read calls, write calls] from ``babeltrace2`` text,
    with a plain loop: current thread per CPU (sched_switch), pid per thread (statedump,
    fork), a system call exit pairs with its thread's pending entry, fd tables per process
    (open/openat/creat set, close clears, dup/dup2/fcntl F_DUPFD(_CLOEXEC) copy, a forked
    process copies its parent's), bytes = max(ret, 0). Calls on an fd of unknown origin go
    under "?"."""
    cur: dict[int, int] = {}
    pid_of: dict[int, int] = {}
    pending: dict[int, tuple[str, dict[str, str]]] = {}
    fds: dict[int, dict[int, str]] = defaultdict(dict)
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for line in babeltrace2(path).stdout.splitlines():
        m = LINE.match(line)
        if m is None:
            continue
        name, cpu = m.group(1), int(m.group(2))
        f = dict(FIELD.findall(m.group(3)))
        if name == "sched_switch":
            cur[cpu] = int(f["next_tid"])
        elif name == "lttng_statedump_process_state":
            pid_of[int(f["tid"])] = int(f["pid"])
        elif name == "sched_process_fork":
            ppid, cpid = int(f["parent_pid"]), int(f["child_pid"])
            pid_of[int(f["child_tid"])] = cpid
            pid_of[int(f["parent_tid"])] = ppid
            if cpid != ppid:
                fds[cpid] = dict(fds[ppid])
        elif name.startswith("syscall_entry_"):
            call = name[len("syscall_entry_"):]
            if cpu in cur and (call in FD_CALLS or call in READ_SYSCALLS or call in WRITE_SYSCALLS):
                pending[cur[cpu]] = (call, f)
        elif name.startswith("syscall_exit_") and cpu in cur:
            tid = cur[cpu]
            got = pending.pop(tid, None)
            if got is None or got[0] != name[len("syscall_exit_"):]:
                continue
            call, args = got
            ret = int(f["ret"])
            table = fds[pid_of.get(tid, tid)]
            if call in READ_SYSCALLS or call in WRITE_SYSCALLS:
                row = out[table.get(int(args["fd"]), "?")]
                k = 0 if call in READ_SYSCALLS else 1
                row[k] += max(ret, 0)
                row[k + 2] += 1
            elif ret < 0:
                continue
            elif call in ("open", "openat", "creat"):
                table[ret] = args.get("filename", args.get("pathname", "")).strip('"')
            elif call == "close":
                table.pop(int(args["fd"]), None)
            elif call == "dup" and int(args["fildes"]) in table:
                table[ret] = table[int(args["fildes"])]
            elif call in ("dup2", "dup3") and int(args["oldfd"]) in table:
                table[ret] = table[int(args["oldfd"])]
            elif call == "fcntl" and int(args["cmd"]) in (0, 1030) and int(args["fd"]) in table:
                table[ret] = table[int(args["fd"])]
    return dict(out)


@pytest.fixture(scope="module")
def many_threads_io() -> IoResult:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    return io_stats(tracewatch.open(str(MANY_THREADS)))


def test_per_file_bytes_equal_babeltrace2_computation(many_threads_io: IoResult) -> None:
    """Every named file's read/write bytes and calls equal the independent computation over
    babeltrace2's output (more than 8,000 files: the workload opens, writes and closes a
    file per thread), and so do the totals of the calls on fds of unknown origin."""
    want = _per_file_from_babeltrace2(str(MANY_THREADS))
    pf = many_threads_io.per_file
    ours: dict[str, list[int]] = {}
    unknown = [0, 0, 0, 0]
    for x in pf.rows():
        vals = [x["read_bytes"], x["write_bytes"], x["read_count"], x["write_count"]]
        if x["path"].startswith("unknown ("):
            unknown = [a + b for a, b in zip(unknown, vals, strict=True)]
        else:
            ours[x["path"]] = vals
    want_unknown = want.pop("?", [0, 0, 0, 0])
    assert len(ours) > 8000
    assert ours == want
    assert unknown == want_unknown
    # the calls table carries the same attribution
    calls = many_threads_io.calls
    assert int(calls["bytes"][calls["path"] != ""].sum()) == sum(v[0] + v[1] for v in want.values())


def test_top_io_calls_are_the_longest(many_threads_io: IoResult) -> None:
    top = top_io_calls(many_threads_io, 5)
    d = many_threads_io.calls["duration_ns"]
    assert top["duration_ns"].tolist() == sorted(d.tolist(), reverse=True)[:5]
    w = top_io_calls(many_threads_io, 3, "write")
    assert set(w["kind"].tolist()) == {"write"}


# --------------------------------------------------------------- synthetic, by hand

def _fd_events() -> list[tuple[int, int, str, dict[str, Any]]]:
    """One CPU; tid 10 (process 10) runs from t=100.

    * open("/a") -> fd 3; write 3 bytes to fd 3; dup2(3, 7); write 4 bytes to fd 7 (same file);
    * close(3); open("/b") -> fd 3 again; write 5 bytes to fd 3 (now /b); read fd 9 (never
      opened: unknown origin) 2 bytes;
    * a failed open (ret -2) changes nothing; close(7); write to fd 7 -> unknown (closed).
    Expected per file: /a write 7 bytes in 2 calls (fds 10:3, 10:7); /b 5 bytes in 1 call;
    unknown (pid 10, fd 9): read 2; unknown (pid 10, fd 7): write 1.
    """
    e: list[tuple[int, int, str, dict[str, Any]]] = [(100, 0, "sched_switch", switch(0, 10, "swapper/0", "app"))]
    t = 100

    def call(name: str, args: dict[str, Any], ret: int, exit_fields: dict[str, Any] | None = None) -> None:
        nonlocal t
        e.append((t + 1, 0, f"syscall_entry_{name}", args))
        e.append((t + 2, 0, f"syscall_exit_{name}", {"ret": ret, **(exit_fields or {})}))
        t += 10

    call("open", {"filename": "/a", "flags": 0, "mode": 0}, 3)
    call("write", {"fd": 3, "buf": 0, "count": 3}, 3)
    call("dup2", {"oldfd": 3, "newfd": 7}, 7)
    call("write", {"fd": 7, "buf": 0, "count": 4}, 4)
    call("close", {"fd": 3}, 0)
    call("open", {"filename": "/b", "flags": 0, "mode": 0}, 3)
    call("write", {"fd": 3, "buf": 0, "count": 5}, 5)
    call("read", {"fd": 9, "count": 2}, 2, {"buf": 0})
    call("open", {"filename": "/missing", "flags": 0, "mode": 0}, -2)
    call("close", {"fd": 7}, 0)
    call("write", {"fd": 7, "buf": 0, "count": 1}, 1)
    return e


def test_fd_tracking_hand_computed(tmp_path: Path) -> None:
    r = io_stats(tracewatch.open(write_kernel_trace(tmp_path / "fd", _fd_events(), ncpus=1)))
    got = {x["path"]: (x["read_bytes"], x["write_bytes"], x["read_count"], x["write_count"], x["fds"])
           for x in r.per_file.rows()}
    assert got == {"/a": (0, 7, 0, 2, "10:3, 10:7"), "/b": (0, 5, 0, 1, "10:3"),
                   "unknown (pid 10, fd 9)": (2, 0, 1, 0, "10:9"),
                   "unknown (pid 10, fd 7)": (0, 1, 0, 1, "10:7")}
    assert r.per_file["path"].tolist()[0] == "/a"  # most bytes first
    assert r.calls["path"].tolist() == ["/a", "/a", "/b", "", ""]
    assert np.array_equal(r.calls["bytes"], [3, 4, 5, 2, 1])
