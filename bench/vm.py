#!/usr/bin/env python3
"""Speed of tracewatch's clock synchronization and VM analysis against babeltrace2 reading the
same simulated trace set, measured in the same run.

The trace set comes from the simulator (:func:`tracewatch.sim.build_scenario`: one host,
``--guests`` VMs of 2 vCPUs on ``--cpus`` CPUs, two CPU hogs, TCP between paired guests, a
sync exchange every 20 ms): a 200 ms calibration run (also the JIT warm-up trace) gives the
events per simulated second, the duration is scaled to ``--events`` (default 10 million).
Generation runs at ~130k events/s: ``--keep DIR`` keeps the set and reuses it on later runs.

Measured, events/s of the whole set and ratios:

- babeltrace2 -o dummy: one process reading all the trace directories of the set (merged, as
  tracewatch reads them), and one process per trace directory, times summed;
- tracewatch, in-process after a warm-up of the JIT on the calibration set, each step on a
  freshly opened set: ``synchronize`` (matching of TCP and vmsync events, convex hulls, spanning
  tree), ``analyze`` (VM discovery and pairing, guest/host clock fit, vCPU states, report
  tables) and both; best of ``--repeat``.

    python bench/vm.py [--events N] [--keep DIR] [--guests G] [--cpus C] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MS = 1_000_000
CALIBRATION_NS = 200 * MS


def scenario(guests: int, cpus: int, duration: int) -> Any:
    from tracewatch.sim import build_scenario

    hogs = ["burnP6:cpu=0:on=60ms:off=140ms:prio=0:phase=30ms",
            f"burnP6:cpu={cpus - 1}:on=30ms:off=70ms:prio=20:phase=10ms"]
    return build_scenario(guests=guests, vcpus=2, cpus=cpus, duration=duration, seed=1,
                          hogs=hogs, sync_period=20 * MS, tcp_period=5 * MS)


def generate(path: Path, guests: int, cpus: int, duration: int) -> tuple[int, float]:
    from tracewatch.sim import simulate

    t0 = time.perf_counter()
    res = simulate(scenario(guests, cpus, duration), path)
    return res.events, time.perf_counter() - t0


def trace_dirs(path: Path) -> list[str]:
    truth = json.loads((path / "truth.json").read_text())
    return [str(path / m["dir"]) for m in truth["machines"].values()]


def total_events(path: Path) -> int:
    return int(json.loads((path / "truth.json").read_text())["total_events"])


def best(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def babeltrace2(dirs: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(["babeltrace2", "-o", "dummy", *dirs], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def tracewatch_steps(dirs: list[str]) -> dict[str, Callable[[], Any]]:
    import tracewatch
    from tracewatch.sync import synchronize
    from tracewatch.vm import analyze

    def both() -> None:
        synchronize(tracewatch.open(*dirs))
        analyze(tracewatch.open(*dirs))

    return {"synchronize": lambda: synchronize(tracewatch.open(*dirs)),
            "analyze": lambda: analyze(tracewatch.open(*dirs)),
            "sync + analyze": both}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--keep", help="directory to keep (and reuse) the generated trace set in")
    ap.add_argument("--guests", type=int, default=8)
    ap.add_argument("--cpus", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2, help="best of R runs (default 2)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warmup"
        n_cal, _ = generate(warm, args.guests, args.cpus, CALIBRATION_NS)
        path = Path(args.keep) if args.keep else Path(tmp) / "set"
        if (path / "truth.json").exists():
            print(f"reusing {path}")
        else:
            duration = math.ceil(args.events / n_cal * CALIBRATION_NS)
            n, t = generate(path, args.guests, args.cpus, duration)
            print(f"generated {n:,} events ({duration / 1e9:.2f} s simulated) in {t:.0f} s "
                  f"({n / t / 1e3:.0f}k ev/s)")
        dirs = trace_dirs(path)
        n = total_events(path)
        print(f"trace set {path}: {len(dirs)} traces, {n:,} events")
        for fn in tracewatch_steps(trace_dirs(warm)).values():  # JIT and metadata warm-up
            fn()
        bt_all = min(babeltrace2(dirs) for _ in range(args.repeat))
        bt_each = min(sum(babeltrace2([d]) for d in dirs) for _ in range(args.repeat))
        print(f"babeltrace2 -o dummy, 1 process, all {len(dirs)} dirs: {bt_all:7.3f} s  "
              f"{n / bt_all / 1e6:6.2f} M ev/s")
        print(f"babeltrace2 -o dummy, 1 process per dir, summed: {bt_each:7.3f} s  "
              f"{n / bt_each / 1e6:6.2f} M ev/s")
        for name, fn in tracewatch_steps(dirs).items():
            t = best(fn, args.repeat)
            print(f"tracewatch {name:15s} {t:7.3f} s  {n / t / 1e6:6.2f} M ev/s  "
                  f"vs babeltrace2 reading (1 process): {bt_all / t:5.2f}x, "
                  f"(per dir, summed): {bt_each / t:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
