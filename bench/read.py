#!/usr/bin/env python3
"""Reading speed of tracewatch against babeltrace2, measured in the same run.

For each trace: babeltrace2 to its dummy sink (whole process), bt2 Python iteration
(/usr/bin/python3, messages counted in-process), tracewatch's columnar API (merged batches
with the sched_switch columns gathered) and its event iteration (name and timestamp of
every event), both in-process after a warm-up run, and the columnar API as a whole cold
process too. Prints events/s and ratios. Traces: the shared many-threads trace and a
generated trace (--events, default 10 million) written with tracewatch.ctf.writer.

    python bench/read.py [--events N] [--skip-generated]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MANY_THREADS = (ROOT / ".." / "shared" / "traces" / "lttng-kernel-many-threads").resolve()

BT2_PY = r"""
import sys, time, bt2
t0 = time.perf_counter(); n = 0
for m in bt2.TraceCollectionMessageIterator(sys.argv[1]):
    if type(m) is bt2._EventMessageConst:
        ev = m.event; ev.name; m.default_clock_snapshot.ns_from_origin
        n += 1
print(n, time.perf_counter() - t0)
"""

COLD = r"""
import sys, time
t0 = time.perf_counter()
import tracewatch
n = 0
for b in tracewatch.open(sys.argv[1]).batches():
    n += len(b)
print(n, time.perf_counter() - t0)
"""


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def columnar(path: str) -> tuple[int, float]:
    import tracewatch

    t0 = time.perf_counter()
    n = 0
    for b in tracewatch.open(path).batches():
        n += len(b)
        if len(b):
            b.columns("sched_switch", ["prev_tid", "next_tid", "prev_state"])
    return n, time.perf_counter() - t0


def iteration(path: str) -> tuple[int, float]:
    import tracewatch

    t0 = time.perf_counter()
    n = 0
    for e in tracewatch.open(path).events():
        _ = (e.name, e.timestamp)
        n += 1
    return n, time.perf_counter() - t0


def generate(path: Path, n_events: int) -> None:
    from tracewatch.ctf.writer import Int, String, Struct, TraceWriter

    rng = np.random.default_rng(1)
    with TraceWriter(str(path), hostname="bench", packet_size=1 << 20) as w:
        sc = w.add_stream_class(header="compact")
        switch = sc.add_event_class("sched_switch", Struct([
            ("prev_comm", String()), ("prev_tid", Int(32, signed=True)), ("prev_prio", Int(32, signed=True)),
            ("prev_state", Int(64, signed=True)), ("next_comm", String()), ("next_tid", Int(32, signed=True)),
            ("next_prio", Int(32, signed=True))]))
        entry = sc.add_event_class("syscall_entry_read", Struct([
            ("fd", Int(32, signed=True)), ("buf", Int(64, base=16)), ("count", Int(64))]))
        ncpu = 4
        per = n_events // ncpu
        for cpu in range(ncpu):
            s = w.add_stream(sc, cpu=cpu)
            deltas = rng.integers(200, 5000, per)
            stamps = np.cumsum(deltas) + cpu
            tids = rng.integers(1, 3000, per).tolist()
            for i, t in enumerate(stamps.tolist()):
                if i % 3 == 0:
                    s.write(switch, t, {"prev_comm": "worker", "prev_tid": tids[i], "prev_prio": 20,
                                        "prev_state": 1, "next_comm": "burnP6", "next_tid": tids[i - 1],
                                        "next_prio": 20})
                else:
                    s.write(entry, t, {"fd": 3, "buf": 0x7FFF0000, "count": 4096})


def report(label: str, path: str) -> None:
    import tracewatch

    n_total = sum(len(b) for b in tracewatch.open(path).batches())  # warm-up (JIT cache, metadata)
    bt_dummy = min(timed(["babeltrace2", "-o", "dummy", path]) for _ in range(2))
    out = subprocess.run(["/usr/bin/python3", "-c", BT2_PY, path], capture_output=True, text=True, check=True)
    bt_n, bt_py = out.stdout.split()
    bt_py_s = float(bt_py)
    n_col, t_col = min((columnar(path) for _ in range(2)), key=lambda x: x[1])
    n_it, t_it = iteration(path)
    cold = subprocess.run([sys.executable, "-c", COLD, path], capture_output=True, text=True, check=True)
    n_cold, t_cold = cold.stdout.split()
    assert n_col == n_it == n_total == int(bt_n) == int(n_cold), (n_col, n_it, n_total, bt_n, n_cold)
    print(f"\n== {label}: {n_total:,} events")
    print(f"babeltrace2 -o dummy (process)     {bt_dummy:8.3f} s  {n_total / bt_dummy / 1e6:7.2f} M ev/s")
    print(f"bt2 Python iteration               {bt_py_s:8.3f} s  {n_total / bt_py_s / 1e6:7.2f} M ev/s")
    print(f"tracewatch columnar (in-process)   {t_col:8.3f} s  {n_total / t_col / 1e6:7.2f} M ev/s"
          f"   ratio vs babeltrace2 dummy: {bt_dummy / t_col:5.2f}x")
    print(f"tracewatch columnar (cold process) {float(t_cold):8.3f} s  {n_total / float(t_cold) / 1e6:7.2f} M ev/s"
          f"   ratio vs babeltrace2 dummy: {bt_dummy / float(t_cold):5.2f}x")
    print(f"tracewatch event iteration         {t_it:8.3f} s  {n_total / t_it / 1e6:7.2f} M ev/s"
          f"   ratio vs bt2 Python: {bt_py_s / t_it:5.2f}x")
    print(f"max RSS of this process so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--skip-generated", action="store_true")
    ap.add_argument("--keep", help="directory to keep (and reuse) the generated trace in")
    args = ap.parse_args()
    report("many-threads", str(MANY_THREADS))
    if args.skip_generated:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "generated"
        if not (path / "metadata").exists():
            t0 = time.perf_counter()
            generate(path, args.events)
            size = sum(f.stat().st_size for f in path.iterdir())
            print(f"\n(generated {args.events:,} events, {size / 1e6:.0f} MB, in {time.perf_counter() - t0:.0f} s)")
        report(f"generated ({os.path.basename(path)})", str(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
