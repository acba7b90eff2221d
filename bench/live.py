#!/usr/bin/env python3
"""Live stress: N concurrent LTTng live sessions followed by one tracewatch process, and by
babeltrace2's lttng-live source on the same load.

For each N of --sessions (default 1,10,100) and each viewer (tracewatch, then babeltrace2):
N live sessions (unique names, live timer --live-timer-ms) are created in the root
lttng-sessiond (started if none runs) and sent to one private lttng-relayd (free loopback
ports, temporary output directory); the viewer attaches to all of them; then N copies of a
tiny lttng-ust program (built here with gcc and liblttng-ust) each emit --rate numbered
events per second (``twbench:tick``, fields sid = its session, seq = 0, 1, ...) for
--duration seconds on an absolute schedule; each session keeps only its app's events (an
event filter ``sid == k``). Then the sessions are destroyed.

* tracewatch: one process, ``LiveTraceSet`` over the N URLs (events merged in time order);
  it takes the arrival time (wall clock) of each batch it delivers.
* tracewatch-streams (optional): the same, unmerged (``batches(merged=False)``: each
  packet as it comes, no wait for the other sessions' streams).
* babeltrace2: ``babeltrace2 --input-format=lttng-live URL`` per session (one babeltrace2
  process follows one session only: it refuses several URLs, and several lttng-live
  components in one process attach one after the other only as data flows), its output
  line-buffered (``stdbuf -oL``) into a pipe read here, each line stamped on arrival.

Reported per N and viewer: events delivered per second in the steady state (events arrived
from 2 s after the first emission to the last emission, per second), viewer CPU (user + sys, from /proc, over the emission window: seconds and share
of one core), end-to-end lag percentiles (arrival - event timestamp; LTTng timestamps are
the monotonic clock plus the trace's offset, i.e. the wall clock; "p99 after 2 s": events
emitted 2 s or more after the start, past the viewers' start-up), and events lost or
duplicated: compared with what babeltrace2 reads from relayd's on-disk output of the same
sessions (must be 0 and 0).

Every session, app, viewer and daemon started here is ended at exit, also on Ctrl-C. Needs
root (the root sessiond), lttng-tools, liblttng-ust-dev, gcc, babeltrace2.

    python bench/live.py [--sessions 1,10,100] [--rate 20] [--duration 20] [--viewers tracewatch,babeltrace2]

With ``TWBENCH_PROFILE=FILE`` in the environment, the tracewatch viewer runs under cProfile
(CPU time, not wall time) and writes its statistics to FILE (``pstats``); its CPU figure then
includes the profiler's overhead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TP_H = r"""
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER twbench
#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "./twbench_tp.h"
#if !defined(TWBENCH_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define TWBENCH_TP_H
#include <lttng/tracepoint.h>
TRACEPOINT_EVENT(twbench, tick,
    TP_ARGS(int32_t, sid, int64_t, seq),
    TP_FIELDS(ctf_integer(int32_t, sid, sid) ctf_integer(int64_t, seq, seq)))
#endif
#include <lttng/tracepoint-event.h>
"""

APP_C = r"""
/* twbench_app SID RATE COUNT: prints "ready" once registered with the session daemon (run
   it with LTTNG_UST_REGISTER_TIMEOUT=-1), reads START_NS on stdin, then emits COUNT events
   twbench:tick (sid, seq = 0..COUNT-1), RATE per second, from START_NS (CLOCK_REALTIME,
   absolute times: no drift). */
#define TRACEPOINT_DEFINE
#define TRACEPOINT_CREATE_PROBES
#include "twbench_tp.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s SID RATE COUNT\n", argv[0]);
        return 2;
    }
    int sid = atoi(argv[1]);
    double rate = atof(argv[2]);
    long long count = atoll(argv[3]), start = 0;
    printf("ready\n");
    fflush(stdout);
    if (scanf("%lld", &start) != 1)
        return 3;
    long long step = (long long) (1e9 / rate);
    for (long long i = 0; i < count; i++) {
        long long t = start + i * step;
        struct timespec ts = { t / 1000000000LL, t % 1000000000LL };
        while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) != 0) {
        }
        tracepoint(twbench, tick, sid, i);
    }
    printf("done %lld\n", count);
    return 0;
}
"""

# The tracewatch viewer, run in its own process: python -c VIEWER OUT MERGED URL...
VIEWER = r"""
import os, sys, time
import numpy as np
from tracewatch.live.source import LiveTraceSet
out, merged, urls = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
ts = LiveTraceSet(urls)
sid, seq, stamp, arrival = [], [], [], []
def follow():
    for b in ts.batches(merged=merged):
        now = time.time_ns()
        c = b.columns("twbench:tick", ["sid", "seq"])
        sid.append(c["sid"]); seq.append(c["seq"]); stamp.append(c["timestamp"])
        arrival.append(np.full(c["seq"].size, now, np.int64))
if os.environ.get("TWBENCH_PROFILE"):  # cProfile of the viewer, written to that file
    import cProfile
    prof = cProfile.Profile(time.process_time)  # CPU time, not waits
    prof.runcall(follow)
    prof.dump_stats(os.environ["TWBENCH_PROFILE"])
else:
    follow()
cat = lambda xs: np.concatenate(xs).astype(np.int64) if xs else np.zeros(0, np.int64)
np.savez(out, sid=cat(sid), seq=cat(seq), ts=cat(stamp), arrival=cat(arrival))
"""

_BT_LINE = re.compile(r"^\[(\d+)\.(\d{9})\].*\bsid = (\d+), seq = (\d+)")
_TICK = os.sysconf("SC_CLK_TCK")


def _run(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _cpu_seconds(pid: int) -> float:
    """user + sys CPU seconds of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class Result:
    n: int
    viewer: str
    expected: int
    received: int
    lost: int
    duplicated: int
    rate: float
    cpu_s: float
    cpu_share: float
    lag_ms: dict[str, float]


@dataclass
class Bench:
    """Daemons, sessions and processes of one run; :meth:`close` ends all of them."""

    work: Path
    live_timer_us: int
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    relayd: subprocess.Popen[bytes] | None = None
    sessiond_pid: int | None = None
    ports: list[int] = field(default_factory=list)
    app: Path | None = None

    # -- setup ------------------------------------------------------------

    def start(self) -> None:
        if subprocess.run(["pgrep", "-x", "lttng-sessiond"], capture_output=True).returncode != 0:
            _run("lttng-sessiond", "-d", "--no-kernel")
            pids = subprocess.run(["pgrep", "-x", "lttng-sessiond"], capture_output=True,
                                  text=True).stdout.split()
            self.sessiond_pid = int(pids[0]) if len(pids) == 1 else None
        (self.work / "tp").mkdir()
        (self.work / "tp" / "twbench_tp.h").write_text(TP_H)
        (self.work / "tp" / "twbench_app.c").write_text(APP_C)
        self.app = self.work / "tp" / "twbench_app"
        _run("gcc", "-O1", "-Wall", f"-I{self.work / 'tp'}", "-o", str(self.app),
             str(self.work / "tp" / "twbench_app.c"), "-llttng-ust", "-ldl", timeout=120)
        self.ports = _free_ports(3)
        c, d, v = self.ports
        self.relayd = subprocess.Popen(
            ["lttng-relayd", "-C", f"tcp://127.0.0.1:{c}", "-D", f"tcp://127.0.0.1:{d}",
             "-L", f"tcp://127.0.0.1:{v}", "-o", str(self.work / "relay")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", v), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("lttng-relayd did not start")

    def create_sessions(self, names: list[str]) -> None:
        c, d, _ = self.ports
        for k, name in enumerate(names):
            self.sessions.append(name)
            _run("lttng", "create", name, "--live", str(self.live_timer_us), "-U",
                 f"net://127.0.0.1:{c}:{d}")
            _run("lttng", "enable-channel", "-u", "-s", name, "--subbuf-size", "64K",
                 "--num-subbuf", "4", "ch")
            _run("lttng", "enable-event", "-u", "-s", name, "-c", "ch", "twbench:tick",
                 "--filter", f"sid == {k}")
            _run("lttng", "start", name)

    def url(self, name: str) -> str:
        return f"net://127.0.0.1:{self.ports[2]}/host/{socket.gethostname()}/{name}"

    def viewers_attached(self, names: list[str]) -> bool:
        from tracewatch.live import LiveClient

        with LiveClient("127.0.0.1", self.ports[2], 5) as client:
            clients = {s.name: s.clients for s in client.list_sessions()}
        return all(clients.get(n, 0) >= 1 for n in names)

    def destroy(self, names: list[str]) -> None:
        # newest first: lttng-sessiond 2.13 hangs destroying a live session while a later
        # one to the same relayd exists (see tests/live/conftest.py destroy_all)
        for name in reversed(names):
            _run("lttng", "destroy", name, check=False)
            if name in self.sessions:
                self.sessions.remove(name)

    def session_dirs(self, names: list[str]) -> list[Path]:
        host = self.work / "relay" / socket.gethostname()
        return [p for n in names for p in sorted(host.glob(f"{n}-*"))]

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(5)
        self.destroy(list(self.sessions))
        if self.relayd is not None and self.relayd.poll() is None:
            self.relayd.terminate()
            try:
                self.relayd.wait(10)
            except subprocess.TimeoutExpired:
                self.relayd.kill()
        if self.sessiond_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.sessiond_pid, signal.SIGTERM)

    # -- one measurement -----------------------------------------------------

    def run(self, n: int, viewer: str, rate: float, duration: float) -> Result:
        tag = f"twbench-{os.getpid()}-{viewer[:2]}-{n}"
        names = [f"{tag}-{k}" for k in range(n)]
        self.create_sessions(names)
        try:
            return self._measure(names, viewer, rate, duration)
        finally:
            for p in self.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)
            self.procs.clear()
            self.destroy(names)

    def _start_viewer(self, names: list[str], viewer: str, arrivals: list[list[tuple[int, str]]]
                      ) -> list[int]:
        if viewer.startswith("tracewatch"):
            out = self.work / f"tw-{len(names)}.npz"
            merged = "0" if viewer == "tracewatch-streams" else "1"
            p = subprocess.Popen([sys.executable, "-c", VIEWER, str(out), merged, *[self.url(x) for x in names]],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.procs.append(p)
            return [p.pid]
        pids = []
        for name in names:
            p = subprocess.Popen(["stdbuf", "-oL", "babeltrace2", "--input-format=lttng-live",
                                  "--clock-seconds", "--no-delta", self.url(name)],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.procs.append(p)
            pids.append(p.pid)
            lines: list[tuple[int, str]] = []
            arrivals.append(lines)
            threading.Thread(target=_read_lines, args=(p, lines), daemon=True).start()
        return pids

    def _measure(self, names: list[str], viewer: str, rate: float, duration: float) -> Result:
        n = len(names)
        arrivals: list[list[tuple[int, str]]] = []
        pids = self._start_viewer(names, viewer, arrivals)
        deadline = time.monotonic() + 60 + n
        while not self.viewers_attached(names):
            if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in self.procs):
                raise RuntimeError(f"{viewer} did not attach to the {n} sessions")
            time.sleep(0.2)
        count = int(rate * duration)
        assert self.app is not None
        # each app registers with every session of the sessiond (per-UID buffers), then waits
        env = {**os.environ, "LTTNG_UST_REGISTER_TIMEOUT": "-1"}
        apps = [subprocess.Popen([str(self.app), str(k), str(rate), str(count)], env=env, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE) for k in range(n)]
        self.procs += apps
        for a in apps:
            assert a.stdout is not None
            if a.stdout.readline().strip() != "ready":
                raise RuntimeError("a traced app did not start")
        start = time.time_ns() + 500_000_000
        for a in apps:
            assert a.stdin is not None
            a.stdin.write(f"{start}\n")
            a.stdin.close()
        while time.time_ns() < start:
            time.sleep(0.01)
        cpu0, t0 = sum(_cpu_seconds(p) for p in pids), time.monotonic()
        for a in apps:
            assert a.stdout is not None
            a.stdout.read()
            a.wait()
        time.sleep(2 * self.live_timer_us / 1e6 + 0.5)  # the last packets reach the viewer
        cpu1, t1 = sum(_cpu_seconds(p) for p in pids), time.monotonic()
        self.destroy(names)
        for p in self.procs:
            if p not in apps:
                p.wait(120)
        sid, seq, ts, arr = self._received(viewer, n, arrivals)
        expected = _on_disk(self.session_dirs(names))
        got = sorted(zip(sid.tolist(), seq.tolist(), strict=True))
        got_set = set(got)
        lost = len(expected - got_set)
        dup = len(got) - len(got_set) + len(got_set - expected)
        lag = (arr - ts) / 1e6
        warm = ts >= start + 2_000_000_000  # after the viewer's start-up (metadata, JIT)
        # steady state: events arrived from 2 s after the first emission to the last one
        t_lo, t_hi = start + 2_000_000_000, start + int(duration * 1e9)
        steady = int(np.count_nonzero((arr >= t_lo) & (arr < t_hi))) / ((t_hi - t_lo) / 1e9)
        pct = {f"p{q}": float(np.percentile(lag, q)) if lag.size else float("nan") for q in (50, 90, 99)}
        pct["max"] = float(lag.max()) if lag.size else float("nan")
        pct["steady_p99"] = float(np.percentile(lag[warm], 99)) if warm.any() else float("nan")
        return Result(n, viewer, len(expected), len(got), lost, dup, steady, cpu1 - cpu0,
                      (cpu1 - cpu0) / (t1 - t0), pct)

    def _received(self, viewer: str, n: int, arrivals: list[list[tuple[int, str]]]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(sid, seq, event timestamp ns, arrival ns) of every event the viewer delivered."""
        if viewer.startswith("tracewatch"):
            proc = self.procs[0]
            if proc.returncode != 0:
                err = proc.stderr.read() if proc.stderr is not None else ""
                raise RuntimeError(f"tracewatch viewer failed: {err}")
            with np.load(self.work / f"tw-{n}.npz") as z:
                return z["sid"], z["seq"], z["ts"], z["arrival"]
        rows = [(int(m.group(1)) * 1_000_000_000 + int(m.group(2)), int(m.group(3)), int(m.group(4)), t)
                for lines in arrivals for t, line in lines if (m := _BT_LINE.match(line))]
        a = np.array(rows, np.int64).reshape(-1, 4)
        return a[:, 1], a[:, 2], a[:, 0], a[:, 3]


def _read_lines(p: subprocess.Popen[str], lines: list[tuple[int, str]]) -> None:
    assert p.stdout is not None
    for line in p.stdout:
        lines.append((time.time_ns(), line))


def _on_disk(dirs: list[Path]) -> set[tuple[int, int]]:
    """(sid, seq) of the events babeltrace2 reads from relayd's output directories."""
    if not dirs:
        return set()
    out = _run("babeltrace2", *map(str, dirs), timeout=600).stdout
    got = set()
    for line in out.splitlines():
        m = re.search(r"\bsid = (\d+), seq = (\d+)", line)
        if m:
            got.add((int(m.group(1)), int(m.group(2))))
    return got


def _table(results: list[Result], rate: float) -> Iterator[str]:
    head = ("N", "viewer", "offered ev/s", "delivered ev/s", "events", "lost", "dup", "CPU s",
            "CPU %", "lag p50 ms", "p90", "p99", "max", "p99 after 2 s")
    rows: list[tuple[str, ...]] = [head]
    for r in results:
        rows.append((str(r.n), r.viewer, f"{r.n * rate:.0f}", f"{r.rate:.0f}", f"{r.received}/{r.expected}",
                     str(r.lost), str(r.duplicated), f"{r.cpu_s:.2f}", f"{100 * r.cpu_share:.1f}",
                     *(f"{r.lag_ms[k]:.0f}" for k in ("p50", "p90", "p99", "max", "steady_p99"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        yield "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", default="1,10,100", help="comma list of session counts N")
    ap.add_argument("--rate", type=float, default=20.0, help="events per second per session")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of emission per N and viewer")
    ap.add_argument("--live-timer-ms", type=int, default=1000)
    ap.add_argument("--viewers", default="tracewatch,babeltrace2")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args()
    counts = [int(x) for x in args.sessions.split(",") if x.strip()]
    viewers = [v.strip() for v in args.viewers.split(",") if v.strip()]
    if os.geteuid() != 0:
        sys.exit("bench/live.py runs as root (it uses the root lttng-sessiond)")
    missing = [t for t in ("lttng", "lttng-sessiond", "lttng-relayd", "babeltrace2", "gcc", "stdbuf")
               if shutil.which(t) is None]
    if missing:
        sys.exit(f"bench/live.py needs {', '.join(missing)}")

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="twbench-") as tmp:
        bench = Bench(Path(tmp), args.live_timer_ms * 1000)
        try:
            bench.start()
            for n in counts:
                for v in viewers:
                    r = bench.run(n, v, args.rate, args.duration)
                    results.append(r)
                    print(f"N={n} {v}: {r.received}/{r.expected} events, lost {r.lost}, dup {r.duplicated}, "
                          f"CPU {r.cpu_s:.2f} s ({100 * r.cpu_share:.1f} %), lag p50/p99/max "
                          f"{r.lag_ms['p50']:.0f}/{r.lag_ms['p99']:.0f}/{r.lag_ms['max']:.0f} ms", flush=True)
        except KeyboardInterrupt:
            print("interrupted: cleaning up", file=sys.stderr)
            return 130
        finally:
            bench.close()
    print(f"\nlive timer {args.live_timer_ms} ms, {args.rate:g} events/s per session, "
          f"{args.duration:g} s of emission, {os.cpu_count()} CPUs")
    for line in _table(results, args.rate):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
