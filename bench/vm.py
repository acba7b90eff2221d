#!/usr/bin/env python3
"""Speed of tracewatch's clock synchronization and VM analysis against babeltrace2 reading the
same simulated trace set, measured in the same run.

The trace set comes from the simulator (:func:`tracewatch.sim.build_scenario`: one host,
``--guests`` VMs of 2 vCPUs on ``--cpus`` CPUs, two CPU hogs, TCP between paired guests, a
sync exchange every 20 ms): a 200 ms calibration run (also the warm-up trace) gives the events
per simulated second, the duration is scaled to ``--events`` (default 10 million).  Both sets
are generated once (about a minute for 10M events) into a cache directory (``--cache``, default
``$XDG_CACHE_HOME/tracewatch/bench-vm`` or ``~/.cache/tracewatch/bench-vm``) and reused.

Measured (wall time, best of ``--repeat`` rounds, each round running every measure once;
peak RSS of the process):

- babeltrace2 -o dummy: one process reading all the trace directories (merged, as tracewatch
  reads them), and one process per trace directory, times summed;
- tracewatch, each step in a fresh Python process warmed up (JIT, imports) on the calibration
  set, on a freshly opened trace set:

  * ``sync``: :func:`tracewatch.sync.synchronize` (matching of the TCP and vmsync events,
    convex hulls, spanning tree);
  * ``VM analysis``: :func:`tracewatch.vm.analyze` given that sync result (VM discovery and
    pairing, vCPU states, guest clock refinement, report tables);
  * ``sync, then VM analysis``: both, two passes over the traces;
  * ``sync + VM analysis, one pass``: :func:`tracewatch.vm.analyze` alone, matching the sync
    events in the pass that reads the VM events (what ``tracewatch vm`` does);

- ``tracewatch vm DIRS > /dev/null`` end to end in a new process (Python start-up and
  imports, ~1 s here, included; no warm-up).

    python bench/vm.py [--events N] [--cache DIR] [--guests G] [--cpus C] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MS = 1_000_000
CALIBRATION_NS = 200 * MS
STEPS = {"sync": "sync", "analysis": "VM analysis (given sync)",
         "sync+analysis": "sync, then VM analysis", "one-pass": "sync + VM analysis, one pass"}


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tracewatch" / "bench-vm"


def scenario(guests: int, cpus: int, duration: int) -> Any:
    from tracewatch.sim import build_scenario

    hogs = ["burnP6:cpu=0:on=60ms:off=140ms:prio=0:phase=30ms",
            f"burnP6:cpu={cpus - 1}:on=30ms:off=70ms:prio=20:phase=10ms"]
    return build_scenario(guests=guests, vcpus=2, cpus=cpus, duration=duration, seed=1,
                          hogs=hogs, sync_period=20 * MS, tcp_period=5 * MS)


def ensure(path: Path, guests: int, cpus: int, duration: int) -> bool:
    """Generate the set into ``path`` unless it is there; True when generated."""
    if (path / "truth.json").exists():
        return False
    from tracewatch.sim import simulate

    t0 = time.perf_counter()
    res = simulate(scenario(guests, cpus, duration), path)
    t = time.perf_counter() - t0
    print(f"generated {res.events:,} events ({duration / 1e9:.2f} s simulated) into {path} in "
          f"{t:.0f} s", flush=True)
    return True


def trace_dirs(path: Path) -> list[str]:
    truth = json.loads((path / "truth.json").read_text())
    return [str(path / m["dir"]) for m in truth["machines"].values()]


def total_events(path: Path) -> int:
    return int(json.loads((path / "truth.json").read_text())["total_events"])


def babeltrace2(dirs: list[str]) -> tuple[float, int]:
    """(wall s, peak RSS bytes) of ``babeltrace2 -o dummy DIRS``."""
    t0 = time.perf_counter()
    p = subprocess.Popen(["babeltrace2", "-o", "dummy", *dirs], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    t = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"babeltrace2 failed on {dirs} (exit {p.returncode})")
    return t, ru.ru_maxrss * 1024


def steps(dirs: list[str]) -> dict[str, Callable[[], Any]]:
    import tracewatch
    from tracewatch.sync import synchronize
    from tracewatch.vm import analyze

    given: dict[str, Any] = {}

    def analysis() -> None:
        analyze(tracewatch.open(*dirs), sync_result=given["res"])

    def both() -> None:
        ts = tracewatch.open(*dirs)
        analyze(ts, sync_result=synchronize(ts))

    def prepare() -> None:
        given["res"] = synchronize(tracewatch.open(*dirs))

    return {"sync": lambda: synchronize(tracewatch.open(*dirs)), "analysis": analysis,
            "sync+analysis": both, "one-pass": lambda: analyze(tracewatch.open(*dirs)),
            "prepare": prepare}


def child(step: str, warm: list[str], dirs: list[str], repeat: int) -> None:
    """Run one step ``repeat`` times after a warm-up; print {"best": s, "rss": bytes}."""
    w = steps(warm)
    w["prepare"]()
    w[step]()
    fns = steps(dirs)
    if step == "analysis":
        fns["prepare"]()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fns[step]()
        times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"best": min(times), "rss": rss}))


def cli_vm(dirs: list[str]) -> tuple[float, int]:
    """(wall s, peak RSS bytes) of ``python -m tracewatch vm DIRS`` (text output)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "tracewatch", "vm", *dirs],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    t = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"tracewatch vm failed on {dirs}")
    return t, ru.ru_maxrss * 1024


def run_child(step: str, warm: list[str], dirs: list[str], repeat: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", step, "--warm", *warm, "--dirs",
                          *dirs, "--repeat", str(repeat)], check=True, capture_output=True,
                         text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--cache", type=Path, default=None,
                    help="directory of the generated trace sets (default: "
                         "$XDG_CACHE_HOME/tracewatch/bench-vm)")
    ap.add_argument("--guests", type=int, default=8)
    ap.add_argument("--cpus", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="best of R rounds (default 3)")
    ap.add_argument("--child", choices=[*STEPS], help=argparse.SUPPRESS)
    ap.add_argument("--warm", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--dirs", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.warm, args.dirs, args.repeat)
        return 0
    cache = args.cache or default_cache()
    shape = f"g{args.guests}-c{args.cpus}"
    cal = cache / f"calibration-{shape}"
    ensure(cal, args.guests, args.cpus, CALIBRATION_NS)
    path = cache / f"events-{args.events}-{shape}"
    if not ensure(path, args.guests, args.cpus,
                  math.ceil(args.events / total_events(cal) * CALIBRATION_NS)):
        print(f"reusing {path}")
    dirs, warm = trace_dirs(path), trace_dirs(cal)
    n = total_events(path)
    print(f"trace set: {len(dirs)} traces, {n:,} events; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    # rounds interleave every measure, so that a change of load on the machine hits all
    labels = ["babeltrace2 -o dummy, 1 process, all dirs",
              "babeltrace2 -o dummy, 1 process per dir, summed",
              *(f"tracewatch {label}" for label in STEPS.values()),
              "tracewatch vm CLI, new process, end to end"]
    best: dict[str, tuple[float, int]] = {}

    def keep(label: str, t: float, rss: int) -> None:
        old = best.get(label)
        best[label] = (min(t, old[0]) if old else t, max(rss, old[1]) if old else rss)

    for _ in range(args.repeat):
        keep(labels[0], *babeltrace2(dirs))
        keep(labels[1], sum(babeltrace2([d])[0] for d in dirs), 0)
        for step, label in STEPS.items():
            got = run_child(step, warm, dirs, 1)
            keep(f"tracewatch {label}", float(got["best"]), int(got["rss"]))
        keep(labels[-1], *cli_vm(dirs))
    rows = [(label, *best[label]) for label in labels]
    bt_all, bt_each = best[labels[0]][0], best[labels[1]][0]
    print(f"{'':50s} {'time':>8s} {'M ev/s':>7s} {'vs bt2':>7s} {'vs bt2/dir':>10s} "
          f"{'peak RSS':>9s}")
    for label, t, rss in rows:
        mem = f"{rss / 2**20:7.0f} MB" if rss else ""
        print(f"{label:50s} {t:7.2f}s {n / t / 1e6:7.2f} {bt_all / t:6.2f}x "
              f"{bt_each / t:9.2f}x {mem:>9s}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
