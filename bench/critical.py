#!/usr/bin/env python3
"""Speed of the critical path analysis, measured in the same run as babeltrace2 reading the
same trace.

1. many-threads (the shared LTTng kernel trace): execution graph + critical path of its
   busiest task over the whole trace, from opening the trace (JIT warm), best of 3 (target:
   under 1 s);
2. a generated kernel-like trace (``bench/analyses.py``'s generator, imported; --events,
   default 10 million): graph construction alone vs ``babeltrace2 -o dummy`` reading it;
3. a simulated host + 2 VMs (``tracewatch.sim`` gebai2014, --sim-duration seconds): the
   graphs of every machine with the VM analysis and network links (``build_system_graph``),
   then the path of the slowest critical_task execution.

    python bench/critical.py [--events N] [--keep DIR] [--skip-generated] [--sim-duration S]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from analyses import MANY_THREADS, babeltrace2_dummy, best, generated_trace  # noqa: E402


def many_threads() -> None:
    import tracewatch
    from tracewatch.critical import build_graph, critical_path

    counts: Counter[int] = Counter()
    with tracewatch.open(str(MANY_THREADS)) as ts:
        n = sum(len(b) for b in ts.batches())
        for b in ts.batches(names=["sched_switch"]):
            counts.update(b.columns("sched_switch", ["next_tid"])["next_tid"].tolist())
    counts.pop(0, None)
    tid = counts.most_common(1)[0][0]

    def run() -> None:
        with tracewatch.open(str(MANY_THREADS)) as ts:
            g = build_graph(ts)
        run.path = critical_path(g, tid)  # type: ignore[attr-defined]

    run()
    t = best(run)
    p = run.path  # type: ignore[attr-defined]
    bt = babeltrace2_dummy(str(MANY_THREADS))
    print(f"== many-threads: {n:,} events; babeltrace2 -o dummy {bt:.3f} s")
    print(f"graph + critical path of tid {tid} ({p.comm}) over the whole trace: {t:.3f} s "
          f"({p.intervals.nrows} intervals, {p.elapsed / 1e9:.3f} s of trace)  "
          f"target < 1 s: {'yes' if t < 1 else 'NO'}")


def generated(path: Path) -> None:
    import tracewatch
    from tracewatch.critical import build_graph

    with tracewatch.open(str(path)) as ts:
        n = sum(len(b) for b in ts.batches())
    bt = babeltrace2_dummy(str(path))

    def run() -> None:
        with tracewatch.open(str(path)) as ts:
            run.g = build_graph(ts)  # type: ignore[attr-defined]

    t = best(run, 2)
    g = run.g  # type: ignore[attr-defined]
    print(f"\n== generated kernel trace: {n:,} events; babeltrace2 -o dummy {bt:.3f} s "
          f"({n / bt / 1e6:.2f} M ev/s)")
    print(f"graph construction: {t:.3f} s ({n / t / 1e6:.2f} M ev/s; {g.n_tasks} tasks, "
          f"{g.n_edges:,} edges)  vs babeltrace2 reading: {bt / t:.2f}x "
          f"({'no slower' if t <= bt else 'SLOWER'})")
    edges_mb = sum(getattr(g, f).nbytes for f in ("edge_task", "edge_start", "edge_end",
                                                   "edge_type", "edge_waker", "edge_cpu")) / 2**20
    build = ("import tracewatch\nfrom tracewatch.critical import build_graph\n"
             f"with tracewatch.open({str(path)!r}) as ts:\n    build_graph(ts)")
    rss = min(_peak_rss([sys.executable, "-c", build]) for _ in range(2))
    print(f"peak RSS, graph construction in a fresh process: {rss:.0f} MB (of which the "
          f"graph's edges {edges_mb:.0f} MB); babeltrace2 -o dummy: "
          f"{_peak_rss(['babeltrace2', '-o', 'dummy', str(path)]):.0f} MB")


def _peak_rss(cmd: list[str]) -> float:
    """Peak RSS (MB) of a command, measured by a Python process that only runs it."""
    code = ("import resource, subprocess, sys\n"
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], check=True, capture_output=True,
                         text=True)
    return int(out.stdout.split()[-1]) / 1024


def simulated(duration_s: float) -> None:
    import tracewatch
    from tracewatch.critical import build_system_graph, system_critical_path
    from tracewatch.sim import gebai2014, simulate

    with tempfile.TemporaryDirectory() as tmp:
        res = simulate(gebai2014(duration=int(duration_s * 1e9), seed=1), Path(tmp) / "g")
        truth = json.loads(res.truth_path.read_text())
        ex = max(truth["machines"]["guest-Ubuntu"]["critical_executions"],
                 key=lambda e: e["duration"])
        t0 = time.perf_counter()
        with tracewatch.open(str(res.outdir)) as ts:
            sg = build_system_graph(ts)
        t1 = time.perf_counter()
        p = system_critical_path(sg, 3525, "Ubuntu", ex["start"], ex["end"])
        t2 = time.perf_counter()
        bt = babeltrace2_dummy(str(res.outdir))
    print(f"\n== simulated host + 2 VMs ({duration_s:g} s, {res.events:,} events); "
          f"babeltrace2 -o dummy {bt:.3f} s")
    print(f"system graph (VM analysis, clock sync, 3 graphs, packet links): {t1 - t0:.3f} s; "
          f"path of the slowest critical_task execution ({ex['duration'] / 1e6:.1f} ms, "
          f"{p.intervals.nrows} intervals): {t2 - t1:.4f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--keep", help="directory to keep (and reuse) the generated trace in")
    ap.add_argument("--skip-generated", action="store_true")
    ap.add_argument("--sim-duration", type=float, default=4.0)
    args = ap.parse_args()
    many_threads()
    if not args.skip_generated:
        with tempfile.TemporaryDirectory() as tmp:
            generated(generated_trace(args.keep, Path(tmp), args.events))
    if args.sim_duration > 0:
        simulated(args.sim_duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
