"""I/O and memory analyses: hand-computed results on small synthetic traces, the missing-events
errors, and sanity checks of io on many-threads against the system call analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracewatch
from tracewatch.analyses.io import READ_SYSCALLS, WRITE_SYSCALLS, IoResult, io_stats
from tracewatch.analyses.mem import MemResult, mem_stats
from tracewatch.analyses.syscalls import syscall_stats
from tracewatch.kernel import MissingEventsError

from ..conftest import MANY_THREADS
from .kernel_trace import switch, write_kernel_trace

SDA = 8 << 20  # dev_t of 8:0 (kernel encoding: 20 minor bits)


def _io_events() -> list[tuple[int, int, str, dict[str, Any]]]:
    """CPU 0 runs tid 10 from t=100 to 400, then tid 11; CPU 1 runs tid 12 from t=105.

    * t=50/60 on CPU 1: a read before CPU 1's first sched_switch -> no thread, not counted;
    * tid 10: read fd 3 [110, 150] ret 64; read fd 3 [200, 230] ret -11 (EAGAIN: 0 bytes);
      write fd 4 [300, 310] ret 10;
    * tid 11: write fd 1 [410, 470] ret 5;
    * tid 12: close fd 5 [120, 125] (not an I/O call); read fd 7 [130, 190] ret 1000;
    * block: sector 1000 (8 sectors) issued t=200, completed t=500 (300 ns); sector 2000
      (16 sectors) issued t=220, completed t=260 (40 ns); the statedump names 8:0 "sda".
    """
    rd = {"fd": 3, "count": 100}
    return [
        (40, 1, "lttng_statedump_block_device", {"dev": SDA, "diskname": "sda"}),
        (50, 1, "syscall_entry_read", {"fd": 9, "count": 1}),
        (60, 1, "syscall_exit_read", {"ret": 1, "buf": 0}),
        (100, 0, "sched_switch", switch(0, 10, "swapper/0", "reader")),
        (110, 0, "syscall_entry_read", rd),
        (150, 0, "syscall_exit_read", {"ret": 64, "buf": 0}),
        (200, 0, "syscall_entry_read", rd),
        (230, 0, "syscall_exit_read", {"ret": -11, "buf": 0}),
        (300, 0, "syscall_entry_write", {"fd": 4, "buf": 0, "count": 10}),
        (310, 0, "syscall_exit_write", {"ret": 10}),
        (400, 0, "sched_switch", switch(10, 11, "reader", "writer")),
        (410, 0, "syscall_entry_write", {"fd": 1, "buf": 0, "count": 5}),
        (470, 0, "syscall_exit_write", {"ret": 5}),
        (105, 1, "sched_switch", switch(0, 12, "swapper/1", "other")),
        (120, 1, "syscall_entry_close", {"fd": 5}),
        (125, 1, "syscall_exit_close", {"ret": 0}),
        (130, 1, "syscall_entry_read", {"fd": 7, "count": 4096}),
        (190, 1, "syscall_exit_read", {"ret": 1000, "buf": 0}),
        (200, 1, "block_rq_issue", {"dev": SDA, "sector": 1000, "nr_sector": 8, "bytes": 4096, "tid": 12}),
        (220, 0, "block_rq_issue", {"dev": SDA, "sector": 2000, "nr_sector": 16, "bytes": 8192, "tid": 10}),
        (260, 1, "block_rq_complete", {"dev": SDA, "sector": 2000, "nr_sector": 16, "error": 0}),
        (500, 1, "block_rq_complete", {"dev": SDA, "sector": 1000, "nr_sector": 8, "error": 0}),
    ]


@pytest.fixture
def io_result(tmp_path: Path) -> IoResult:
    return io_stats(tracewatch.open(write_kernel_trace(tmp_path / "io", _io_events())))


def test_io_calls_hand_computed(io_result: IoResult) -> None:
    """The 5 I/O calls with a known thread, in order of exit (the close and the read before
    CPU 1's first sched_switch are left out); bytes = ret when > 0."""
    r = io_result
    assert (r.begin, r.end) == (40, 500)
    c = r.calls
    assert c["tid"].tolist() == [10, 12, 10, 10, 11]
    assert c["syscall"].tolist() == ["read", "read", "read", "write", "write"]
    assert c["fd"].tolist() == [3, 7, 3, 4, 1]
    assert c["duration_ns"].tolist() == [40, 60, 30, 10, 60]
    assert c["ret"].tolist() == [64, 1000, -11, 10, 5]
    assert c["bytes"].tolist() == [64, 1000, 0, 10, 5]


def test_io_per_process_and_fd_hand_computed(io_result: IoResult) -> None:
    """Per process (pid unknown: the tid): 12 read 1000 B; 10 read 64 B in 2 reads and wrote
    10 B; 11 wrote 5 B; most bytes first. Per fd: (12, 7) 1000 B, (10, 3) 64 B in 2 calls,
    (10, 4) 10 B, (11, 1) 5 B."""
    p = io_result.per_process
    assert p["pid"].tolist() == [12, 10, 11]
    assert p["comm"].tolist() == ["other", "reader", "writer"]
    assert p["read_bytes"].tolist() == [1000, 64, 0]
    assert p["write_bytes"].tolist() == [0, 10, 5]
    assert p["read_count"].tolist() == [1, 2, 0]
    assert p["write_count"].tolist() == [0, 1, 1]
    f = io_result.per_fd
    assert list(zip(f["pid"].tolist(), f["fd"].tolist(), f["read_bytes"].tolist(), f["write_bytes"].tolist(),
                    f["count"].tolist(), strict=True)) == [
        (12, 7, 1000, 0, 1), (10, 3, 64, 0, 2), (10, 4, 0, 10, 1), (11, 1, 0, 5, 1)]


def test_io_latency_hand_computed(io_result: IoResult) -> None:
    """Read latencies 40, 60, 30 ns: min 30, max 60, mean 130/3, sample stdev 15.275...;
    write latencies 10, 60: min 10, max 60, mean 35, stdev sqrt(2 * 25**2) = 35.355..."""
    lt = {x["kind"]: x for x in io_result.latency.rows()}
    assert (lt["read"]["count"], lt["read"]["min_ns"], lt["read"]["max_ns"]) == (3, 30, 60)
    assert lt["read"]["avg_ns"] == pytest.approx(130 / 3)
    assert lt["read"]["stdev_ns"] == pytest.approx(np.std([40, 60, 30], ddof=1))
    assert (lt["write"]["count"], lt["write"]["min_ns"], lt["write"]["max_ns"]) == (2, 10, 60)
    assert lt["write"]["avg_ns"] == 35
    assert lt["write"]["stdev_ns"] == pytest.approx(35.35533905932738)


def test_block_requests_hand_computed(io_result: IoResult) -> None:
    """Requests pair by (dev, sector) although they complete out of issue order: 40 ns then
    300 ns, on disk "sda" (statedump name), 24 sectors, mean 170 ns."""
    rq = io_result.requests
    assert rq["sector"].tolist() == [2000, 1000]
    assert rq["latency_ns"].tolist() == [40, 300]
    d = io_result.disk
    assert d["disk"].tolist() == ["sda"]
    assert (d["count"][0], d["sectors"][0], d["min_ns"][0], d["max_ns"][0], d["avg_ns"][0]) == (2, 24, 40, 300, 170)


def test_io_filters(tmp_path: Path) -> None:
    """--tid keeps that thread's calls; --cpu the calls whose exit is on those CPUs."""
    ts = tracewatch.open(write_kernel_trace(tmp_path / "io", _io_events()))
    assert io_stats(ts, tids=[10]).calls["tid"].tolist() == [10, 10, 10]
    assert io_stats(ts, cpus=[1]).calls["tid"].tolist() == [12]
    assert io_stats(ts, procnames=["writer"]).calls["tid"].tolist() == [11]


def test_io_missing_events(tmp_path: Path) -> None:
    """A trace with sched_switch only: no I/O system call and no block request events."""
    ts = tracewatch.open(write_kernel_trace(tmp_path / "t", [(1, 0, "sched_switch", switch(0, 1))]))
    with pytest.raises(MissingEventsError, match=r"io: the trace has no .*read.* / block_rq_issue") as e:
        io_stats(ts)
    assert "lttng enable-event -k" in str(e.value)


def _mem_events() -> list[tuple[int, int, str, dict[str, Any]]]:
    """CPU 0 runs tid 10 in [100, 200], then idle; CPU 1 runs tid 11 from 105.

    * t=50 CPU 1: allocation before CPU 1's first sched_switch -> not attributed;
    * tid 10: allocations at 110 and 120, a free at 130;
    * t=210 CPU 0: allocation by the idle task -> not counted;
    * tid 11: frees at 150 and 160 (an order-2 allocation still counts one page, as in
      lttng-memtop) and one allocation of order 2 at 170.
    """
    alloc = {"page": 0, "pfn": 1, "order": 0, "gfp_flags": 0, "migratetype": 0}
    free = {"page": 0, "pfn": 1, "order": 0}
    return [
        (50, 1, "kmem_mm_page_alloc", alloc),
        (100, 0, "sched_switch", switch(0, 10, "swapper/0", "alloc")),
        (110, 0, "kmem_mm_page_alloc", alloc),
        (120, 0, "kmem_mm_page_alloc", alloc),
        (130, 0, "kmem_mm_page_free", free),
        (200, 0, "sched_switch", switch(10, 0, "alloc", "swapper/0")),
        (210, 0, "kmem_mm_page_alloc", alloc),
        (105, 1, "sched_switch", switch(0, 11, "swapper/1", "freer")),
        (150, 1, "kmem_mm_page_free", free),
        (160, 1, "kmem_mm_page_free", free),
        (170, 1, "kmem_mm_page_alloc", {**alloc, "order": 2}),
    ]


def test_mem_hand_computed(tmp_path: Path) -> None:
    """tid 10: 2 allocated, 1 freed; tid 11: 1 allocated, 2 freed; totals 3 and 3 (the
    allocations before the first sched_switch and by the idle task are not counted)."""
    r: MemResult = mem_stats(tracewatch.open(write_kernel_trace(tmp_path / "m", _mem_events())))
    pt = r.per_tid
    assert list(zip(pt["tid"].tolist(), pt["comm"].tolist(), pt["allocated"].tolist(), pt["freed"].tolist(),
                    strict=True)) == [(10, "alloc", 2, 1), (11, "freer", 1, 2)]
    assert (r.total_allocated, r.total_freed) == (3, 3)
    assert (r.begin, r.end) == (50, 210)


def test_mem_range_and_filters(tmp_path: Path) -> None:
    """[begin, end] = [125, 165] keeps tid 10's free and tid 11's two frees; --tid 11 only its
    row."""
    ts = tracewatch.open(write_kernel_trace(tmp_path / "m", _mem_events()))
    r = mem_stats(ts, begin=125, end=165)
    assert (r.total_allocated, r.total_freed) == (0, 3)
    r = mem_stats(ts, tids=[11])
    assert r.per_tid["tid"].tolist() == [11]


def test_mem_missing_events(tmp_path: Path) -> None:
    """No page allocation events: a clear error naming them and how to record them."""
    ts = tracewatch.open(write_kernel_trace(tmp_path / "t", [(1, 0, "sched_switch", switch(0, 1))]))
    with pytest.raises(MissingEventsError, match="mem: the trace has no kmem_mm_page_alloc / kmem_mm_page_free"):
        mem_stats(ts)


@pytest.fixture(scope="module")
def many() -> tracewatch.TraceSet:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    return tracewatch.open(str(MANY_THREADS))


def test_io_many_threads_totals_equal_syscalls_sum(many: tracewatch.TraceSet) -> None:
    """On many-threads (no block events), io's read/write totals per process and overall equal
    the sums of ret > 0 over the read/write system calls that the syscalls analysis pairs
    (read from every system call event: a different event selection and code path); so do
    the call counts per system call."""
    r = io_stats(many)
    s = syscall_stats(many)
    c = s.calls
    is_r = np.isin(c["syscall"].astype(str), list(READ_SYSCALLS))
    is_w = np.isin(c["syscall"].astype(str), list(WRITE_SYSCALLS))
    pos = np.maximum(c["ret"], 0)
    assert int(r.per_process["read_bytes"].sum()) == int(pos[is_r].sum()) > 0
    assert int(r.per_process["write_bytes"].sum()) == int(pos[is_w].sum()) > 0
    assert r.calls.nrows == int((is_r | is_w).sum())
    assert int(r.per_fd["read_bytes"].sum() + r.per_fd["write_bytes"].sum()) == int(pos[is_r | is_w].sum())
    names, counts = np.unique(c["syscall"][is_r | is_w].astype(str), return_counts=True)
    ours = dict(zip(r.per_syscall["syscall"].tolist(), r.per_syscall["count"].tolist(), strict=True))
    assert ours == dict(zip(names.tolist(), counts.tolist(), strict=True))
    assert r.disk.nrows == 0


def test_mem_many_threads_missing(many: tracewatch.TraceSet) -> None:
    with pytest.raises(MissingEventsError):
        mem_stats(many)
