#!/usr/bin/env python3
"""Speed of ``tracewatch.fleet`` on N hosts: sequential vs a local Dask cluster of 1 and 2
worker processes, against babeltrace2 reading the same traces, in the same run.

The fleet root is N symlinks to one trace (many-threads by default: ``--trace``), N hosts
for :func:`tracewatch.fleet.discover`. Measured (best of ``--repeat``, JIT warm: one warm-up
run per mode first, the cluster's start not counted but printed):

- ``sequential``: :func:`~tracewatch.fleet.analyze_fleet` without a client (this process,
  one host after the other; every host's trace read once for cputop, sched, syscalls, irq);
- ``4 passes``: the same analyses as four separate functions per host (each reads the
  trace), for the gain of the single pass;
- ``dask 1 worker`` / ``dask 2 workers``: :func:`tracewatch.fleet.local_cluster` (processes of
  one thread, without Dask's ``MALLOC_TRIM_THRESHOLD_``); the speedup of 2 over 1 worker (the
  machine has 2 cores); ``--default-env``: also a plain ``LocalCluster`` of 2 workers;
- ``babeltrace2``: ``babeltrace2 -o dummy`` on each host's trace, one after the other, summed.

    python bench/fleet.py [--hosts 8] [--trace DIR] [--repeat 2] [--default-env]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from analyses import MANY_THREADS, best  # noqa: E402


def make_root(trace: Path, n: int, where: Path) -> Path:
    root = where / "fleet"
    root.mkdir()
    for i in range(n):
        (root / f"host{i:03d}").symlink_to(trace, target_is_directory=True)
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--trace", type=Path, default=MANY_THREADS)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--default-env", action="store_true",
                    help="Also time a plain LocalCluster (Dask's MALLOC_TRIM_THRESHOLD_ for workers).")
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    from tracewatch.analyses.cputop import cputop
    from tracewatch.analyses.irq import irq_stats
    from tracewatch.analyses.sched import sched_latencies
    from tracewatch.analyses.syscalls import syscall_stats
    from tracewatch.ctf.trace import TraceSet
    from tracewatch.fleet import analyze_fleet, discover, local_cluster

    with tempfile.TemporaryDirectory() as tmp:
        root = make_root(args.trace, args.hosts, Path(tmp))
        hosts = discover(root)
        assert len(hosts) == args.hosts, [h.host for h in hosts]
        first = analyze_fleet(hosts[:1])  # JIT warm
        events = int(first.summary["events"].iloc[0]) * args.hosts
        size = sum(h.nbytes for h in hosts)
        print(f"{args.hosts} hosts x {args.trace.name}: {events:,} events, {size / 2**20:.1f} MiB "
              f"({os.cpu_count()} CPUs)")

        def four_passes() -> None:
            for h in hosts:
                for fn in (cputop, sched_latencies, syscall_stats, irq_stats):
                    fn(TraceSet(list(h.paths)), partial=True)

        rows: list[tuple[str, float]] = []
        rows.append(("sequential (1 pass/host)", best(lambda: analyze_fleet(hosts), args.repeat)))
        rows.append(("4 passes/host", best(four_passes, args.repeat)))
        cluster_start: dict[int, float] = {}
        for n in (1, 2):
            t0 = time.perf_counter()
            with local_cluster(n) as cluster, Client(cluster) as client:
                cluster_start[n] = time.perf_counter() - t0
                analyze_fleet(hosts, client=client)  # warm-up: JIT in each worker
                res = analyze_fleet(hosts, client=client)
                assert not res.errors, res.errors
                rows.append((f"dask {n} worker{'s' if n > 1 else ''}",
                             best(lambda c=client: analyze_fleet(hosts, client=c), args.repeat)))
        if args.default_env:  # Dask's own LocalCluster: workers with MALLOC_TRIM_THRESHOLD_=65536
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                analyze_fleet(hosts, client=client)
                rows.append(("dask 2 workers, Dask's env",
                             best(lambda c=client: analyze_fleet(hosts, client=c), args.repeat)))
        bt2: float | None = None
        if shutil.which("babeltrace2"):
            def read_all() -> None:
                for h in hosts:
                    subprocess.run(["babeltrace2", "-o", "dummy", *h.paths], check=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bt2 = best(read_all, args.repeat)
            rows.append(("babeltrace2 -o dummy (summed)", bt2))

    t = dict(rows)
    print(f"{'':32} {'seconds':>8} {'Mevents/s':>10} {'vs bt2':>8}")
    for name, s in rows:
        ratio = f"{bt2 / s:7.2f}x" if bt2 else "       -"
        print(f"{name:32} {s:8.3f} {events / s / 1e6:10.2f} {ratio}")
    print(f"cluster start: 1 worker {cluster_start[1]:.2f} s, 2 workers {cluster_start[2]:.2f} s (not counted)")
    print(f"speedup 2 workers vs 1 worker: {t['dask 1 worker'] / t['dask 2 workers']:.2f}x; "
          f"vs sequential: {t['sequential (1 pass/host)'] / t['dask 2 workers']:.2f}x; "
          f"single pass vs 4 passes: {t['4 passes/host'] / t['sequential (1 pass/host)']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
