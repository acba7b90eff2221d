"""Graphite export against a real carbon-cache (Debian's graphite-carbon), read back from its
whisper files.

* ``tracewatch export TRACE --period 1s --graphite 127.0.0.1:PORT`` (backfill, the traces'
  own timestamps) of lttng-kernel-many-threads (one host, every analysis) and
  lttng-kernel-tcp-sync (two hosts, 18 and 24 windows): every whisper file and every point
  equals the metrics of the offline ``*_periods`` results of the same windows (oracle.py);
  the definitions are checked on their own against the offline tables (per-CPU and per-task
  ratios, the top N and ``other``, sched statistics and p99, system calls per name summed
  over threads, IRQ counts).
* A connection dropped mid-stream (carbon-cache stopped, then started again on the same
  ports): the sender buffers, reconnects, and every window reaches the whisper files.
* The buffer bound: past it the oldest lines are dropped and counted, with one warning per
  window (a plain TCP listener stands for carbon: it needs no carbon feature).
* The CLI: one-line error when nothing listens; a period under 1 s is refused for Graphite.
"""

from __future__ import annotations

import math
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tracewatch.analyses.periodic import stream_periods
from tracewatch.ctf.trace import TraceSet
from tracewatch.export.graphite import GraphiteSender, format_lines, parse_address
from tracewatch.export.metrics import Sample, graphite_path, graphite_timestamp, window_samples

from ..conftest import MANY_THREADS, TCP_SYNC
from .conftest import Carbon
from .oracle import expected_windows, offline_results

pytestmark = pytest.mark.timeout(300)

TRACEWATCH = [sys.executable, "-m", "tracewatch.cli.main"]
PERIOD = 1_000_000_000
TOP = 10


def _expected_points(windows: dict[int, list[Sample]]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for samples in windows.values():
        for s in samples:
            out.setdefault(graphite_path(s), {})[graphite_timestamp(s.timestamp_ns)] = s.value
    return out


def _compare(got: dict[str, dict[int, float]], want: dict[str, dict[int, float]], prefix: str) -> int:
    """Every expected path and point is there with the same value (exact: the values travel as
    shortest round-trip text into doubles) and there is no other path under ``prefix``."""
    got = {p: v for p, v in got.items() if p.startswith(prefix)}
    assert sorted(got) == sorted(want), (sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5])
    n = 0
    for path, points in want.items():
        assert got[path] == points, (path, got[path], points)
        n += len(points)
    return n


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TRACEWATCH, "export", *args], capture_output=True, text=True, timeout=240)


def test_export_many_threads_backfill_equals_offline_results(carbon: Carbon) -> None:
    """One window (the trace lasts 0.43 s) of every analysis; 615 whisper files, each with the
    value of the offline results, at the window's end (whole seconds, trace clock)."""
    analyses = ["count", "cputop", "sched", "syscalls", "irq"]
    t = time.monotonic()
    proc = _export(str(MANY_THREADS), "--period", "1s", "--graphite", f"127.0.0.1:{carbon.line_port}")
    took = time.monotonic() - t
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wilbrod: 1 windows, "), proc.stdout
    want_windows = expected_windows([str(MANY_THREADS)], PERIOD, analyses, "wilbrod", TOP)
    want = _expected_points(want_windows)
    stamps = [graphite_timestamp(e) for e in want_windows]
    got = carbon.wait_for(want, min(stamps) - 5, max(stamps) + 5)
    n = _compare(got, want, "tracewatch.wilbrod.")
    print(f"export of many-threads: {took:.2f} s; {len(want)} whisper files, {n} points equal")
    assert len(want) > 500

    # the definitions, against the offline tables themselves
    (window,) = want_windows
    ts_s = graphite_timestamp(window)

    def v(path: str) -> float:
        """``analysis.entity.leaf`` with the entity's own characters made safe (the test's
        sanitizing: anything but letters, digits, _ and - becomes _)."""
        analysis, rest = path.split(".", 1)
        entity, leaf = rest.rsplit(".", 1)
        return got[f"tracewatch.wilbrod.{analysis}.{_safe(entity)}.{leaf}"][ts_s]

    _, by_k, windows = offline_results([str(MANY_THREADS)], PERIOD, analyses)
    r = by_k[0]
    cp = r["cputop"]
    for cpu, ratio in zip(cp.per_cpu["cpu"].tolist(), cp.per_cpu["ratio"].tolist(), strict=True):
        assert v(f"cputop.cpu{cpu}.usage_ratio") == ratio
    assert v("cputop.all.usage_ratio") == cp.total
    rows = list(cp.per_tid.rows())
    assert len(rows) > 8000  # the point of the bound
    for x in rows[:TOP]:
        assert v(f"cputop.{x['comm']}-{x['tid']}.task_usage_ratio") == x["ratio"]
    assert math.isclose(v("cputop.other.task_usage_ratio"), sum(x["ratio"] for x in rows[TOP:]), rel_tol=1e-9)
    tasks = [p for p in got if p.startswith("tracewatch.wilbrod.cputop.") and p.endswith(".task_usage_ratio")]
    assert len(tasks) == TOP + 1

    sc = r["sched"]
    lat = np.sort(sc.latencies["latency_ns"])
    assert v("sched.all.wakeups") == sc.total["count"] == lat.size
    assert v("sched.all.latency_max_seconds") == sc.total["max_ns"] * 1e-9
    assert math.isclose(v("sched.all.latency_avg_seconds"), sc.total["avg_ns"] * 1e-9, rel_tol=1e-12)
    p99 = float(np.percentile(lat, 99, method="inverted_cdf"))
    assert v("sched.all.latency_p99_seconds") == p99 * 1e-9
    by_total = sorted(sc.per_tid.rows(), key=lambda x: (-x["count"] * x["avg_ns"], x["tid"]))
    for x in by_total[:3]:
        assert v(f"sched.{x['comm']}-{x['tid']}.task_wakeups") == x["count"]
        assert v(f"sched.{x['comm']}-{x['tid']}.task_latency_max_seconds") == x["max_ns"] * 1e-9
        assert math.isclose(v(f"sched.{x['comm']}-{x['tid']}.task_latency_avg_seconds"), x["avg_ns"] * 1e-9,
                            rel_tol=1e-12)
    assert v("sched.other.task_wakeups") == sum(x["count"] for x in by_total[TOP:])

    sy = r["syscalls"]
    assert v("syscalls.all.calls") == sy.total
    per_name: dict[str, list[float]] = {}
    for x in sy.per_syscall.rows():
        c = per_name.setdefault(x["syscall"], [0, 0, 0.0, 0])
        c[0] += x["count"]
        c[1] += x["errors"]
        c[2] += x["count"] * x["avg_ns"]
        c[3] = max(c[3], x["max_ns"])
    for name, (count, errors, dsum, mx) in per_name.items():
        assert v(f"syscalls.{name}.calls") == count
        assert v(f"syscalls.{name}.errors") == errors
        assert v(f"syscalls.{name}.latency_max_seconds") == mx * 1e-9
        assert math.isclose(v(f"syscalls.{name}.latency_avg_seconds"), dsum / count * 1e-9, rel_tol=1e-9)
    procs = [p for p in got if p.endswith(".process_calls") and "wilbrod.syscalls." in p]
    assert len(procs) == TOP + 1
    assert sum(got[p][ts_s] for p in procs) == sy.total

    iq = r["irq"]
    for x in iq.hard.rows():
        ent = f"irq.irq{x['irq']}-{x['name']}"
        assert v(f"{ent}.count") == x["count"]
        assert v(f"{ent}.duration_max_seconds") == x["max_ns"] * 1e-9
    for x in iq.soft.rows():
        assert v(f"irq.softirq{x['vec']}-{x['name']}.count") == x["count"]
        assert math.isclose(v(f"irq.softirq{x['vec']}-{x['name']}.duration_avg_seconds"), x["avg_ns"] * 1e-9,
                            rel_tol=1e-12)

    counts = r["count"].as_dict()
    assert v("trace.events.count") == windows[0][2] == sum(counts.values())
    for name, n_ in counts.items():
        assert v(f"count.{name}.count") == n_


def test_export_two_hosts_many_windows(carbon: Carbon) -> None:
    """lttng-kernel-tcp-sync: hosts VM1 (24 windows) and VM3 (18) exported under their own
    names, without syscalls (no such events: said on stdout); every point of every window
    equals the offline results'."""
    proc = _export(str(TCP_SYNC), "--period", "1s", "--graphite", f"127.0.0.1:{carbon.line_port}")
    assert proc.returncode == 0, proc.stderr
    lines = sorted(proc.stdout.splitlines())
    assert lines[0].startswith("VM1: 24 windows, ") and lines[1].startswith("VM3: 18 windows, "), lines
    assert all("without syscalls" in ln for ln in lines)
    total = 0
    for host, sub in (("VM1", "scp_src"), ("VM3", "scp_dest")):
        want_windows = expected_windows([str(TCP_SYNC / sub)], PERIOD, ["count", "cputop", "sched", "irq"],
                                        host, TOP)
        assert len(want_windows) == (24 if host == "VM1" else 18)
        want = _expected_points(want_windows)
        stamps = [graphite_timestamp(e) for e in want_windows]
        assert len(set(stamps)) == len(stamps)
        got = carbon.wait_for(want, min(stamps) - 5, max(stamps) + 5)
        total += _compare(got, want, f"tracewatch.{host}.")
    print(f"tcp-sync: {total} points equal")


def test_dropped_connection_loses_nothing_buffered(carbon: Carbon) -> None:
    """Windows 0-11 of VM1 go to carbon; carbon-cache is stopped (SIGTERM, it exits); windows
    12-23 are buffered (no connection); carbon-cache starts again on the same ports; closing
    the sender sends the buffer: all 24 windows are in the whisper files, equal to the
    offline results (host renamed 'droptest')."""
    path = str(TCP_SYNC / "scp_src")
    periods = list(stream_periods(TraceSet([path]), PERIOD, ["count", "cputop", "sched", "irq"]))
    assert len(periods) == 24
    warnings: list[str] = []
    sender = GraphiteSender("127.0.0.1", carbon.line_port, on_warning=warnings.append, retry_interval=0.2,
                            timeout=2.0)
    want = _expected_points(expected_windows([path], PERIOD, ["count", "cputop", "sched", "irq"], "droptest", TOP))
    frm, until = graphite_timestamp(periods[0].end) - 5, graphite_timestamp(periods[-1].end) + 5
    for p in periods[:12]:
        assert sender.send(window_samples(p, "droptest", TOP))
    first_half = {k: {t: x for t, x in v.items() if t <= graphite_timestamp(periods[11].end)} for k, v in want.items()}
    first_half = {k: v for k, v in first_half.items() if v}
    carbon.wait_for(first_half, frm, until)
    carbon.stop()
    try:
        for p in periods[12:]:
            sender.send(window_samples(p, "droptest", TOP))
        assert sender.pending > 0 and not sender.connected
        assert any("connection lost" in w or "cannot connect" in w for w in warnings), warnings
        buffered = sender.pending
    finally:
        carbon.start()
    t = time.monotonic()
    assert sender.close(timeout=20)
    assert sender.dropped == 0
    got = carbon.wait_for(want, frm, until)
    n = _compare(got, want, "tracewatch.droptest.")
    print(f"{buffered} lines buffered while carbon was down, sent {time.monotonic() - t:.2f} s after its "
          f"restart; {n} points equal")


class _Listener:
    """A loopback TCP server that keeps what it receives (stands for carbon's line receiver)."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.data = b""
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while chunk := conn.recv(65536):
                    self.data += chunk

    def close(self) -> None:
        self.sock.close()


def _samples(n: int, ts: int) -> list[Sample]:
    return [Sample("tracewatch_events_total", {"host": "h"}, float(i), ts * 1_000_000_000,
                   ("trace", f"e{i}", "count")) for i in range(n)]


def test_buffer_bound_drops_oldest_with_a_counted_warning() -> None:
    """Nothing listens: 5 windows of 4 lines into a buffer of 10 lines keep the last 10 lines
    (the last 2 of window 2, windows 3 and 4), 10 dropped, one warning per window that
    dropped (windows 2, 3, 4); a listener then gets exactly those 10 lines, in order."""
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()
    warnings: list[str] = []
    sender = GraphiteSender("127.0.0.1", free, max_lines=10, retry_interval=0.0, timeout=1.0,
                            on_warning=warnings.append)
    for w in range(5):
        assert not sender.send(_samples(4, 100 + w))
    assert sender.dropped == 10 and sender.pending == 10
    drops = [m for m in warnings if "dropped" in m]
    assert len(drops) == 3 and drops[-1].endswith("(10 in all)"), warnings
    listener = _Listener(free)
    try:
        assert sender.close(timeout=5)
        deadline = time.monotonic() + 5
        while listener.data.count(b"\n") < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = listener.data.decode().splitlines()
    finally:
        listener.close()
    assert lines == [ln.decode().rstrip("\n") for w in range(2, 5) for ln in format_lines(_samples(4, 100 + w))][2:]
    assert lines[0] == "tracewatch.h.trace.e2.count 2.0 102"


def test_send_never_blocks_long_when_graphite_is_away() -> None:
    """With nobody listening, 50 windows cost little time: one failed connection attempt per
    retry interval at most."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
    s.close()
    sender = GraphiteSender("127.0.0.1", free, retry_interval=10.0, timeout=1.0)
    t = time.monotonic()
    for w in range(50):
        sender.send(_samples(20, 100 + w))
    assert time.monotonic() - t < 1.0
    assert sender.pending == 1000 and not sender.close()


def test_cli_error_when_nothing_listens(tmp_path: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
    s.close()
    proc = _export(str(MANY_THREADS), "--graphite", f"127.0.0.1:{free}")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [f"tracewatch: error: graphite 127.0.0.1:{free}: cannot connect: "
                                        "Connection refused"], proc.stderr
    proc = _export(str(MANY_THREADS), "--period", "500ms", "--graphite", f"127.0.0.1:{free}")
    assert proc.returncode == 2 and "at least 1s" in proc.stderr
    proc = _export(str(MANY_THREADS))
    assert proc.returncode == 2 and "--graphite" in proc.stderr


def test_parse_address() -> None:
    assert parse_address("carbon") == ("carbon", 2003)
    assert parse_address("carbon:2103") == ("carbon", 2103)
    assert parse_address("[::1]:2004") == ("::1", 2004)
    assert parse_address("::1") == ("::1", 2003)
    for bad in ("", ":2003", "h:0", "h:x", "h:70000"):
        with pytest.raises(ValueError):
            parse_address(bad)
