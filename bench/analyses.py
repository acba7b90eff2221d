#!/usr/bin/env python3
"""Speed of the kernel analyses against babeltrace2 reading the same trace, in the same run.

For each analysis (cputop, sched, syscalls, irq, io): wall time in-process (opening the
trace included, JIT warm, best of 3), events/s of the trace, the ratio to babeltrace2 merely
reading the trace to its dummy sink, and the ratio to lttng-analyses' measured time on
many-threads (3.7 s for cputop/sched/irq, 5.8 s for syscalls: ../shared/notes/references.md;
lttng-analyses is not installable here, so that figure is the reference's, not re-measured;
none for io). Traces: many-threads and a generated kernel-like trace (--events, default 10
million; --skip-generated to omit).

    python bench/analyses.py [--events N] [--keep DIR] [--skip-generated]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MANY_THREADS = (ROOT / ".." / "shared" / "traces" / "lttng-kernel-many-threads").resolve()
LTTNG_ANALYSES_S = {"cputop": 3.7, "sched": 3.7, "syscalls": 5.8, "irq": 3.7}


def analyses() -> dict[str, Callable[[Any], Any]]:
    from tracewatch.analyses.cputop import cputop
    from tracewatch.analyses.io import io_stats
    from tracewatch.analyses.irq import irq_stats
    from tracewatch.analyses.sched import sched_latencies
    from tracewatch.analyses.syscalls import syscall_stats

    return {"cputop": cputop, "sched": sched_latencies, "syscalls": syscall_stats, "irq": irq_stats,
            "io": io_stats}


def best(fn: Callable[[], Any], n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def babeltrace2_dummy(path: str, n: int = 2) -> float:
    def run() -> None:
        subprocess.run(["babeltrace2", "-o", "dummy", path], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return best(run, n)


def generate_kernel(path: Path, n_events: int) -> None:
    """A kernel-like trace: sched_switch/sched_waking/syscalls/irqs on 4 CPUs."""
    import numpy as np

    from tracewatch.ctf.writer import Int, String, Struct, TraceWriter

    rng = np.random.default_rng(7)
    sw_fields = Struct([("prev_comm", String()), ("prev_tid", Int(32, signed=True)),
                        ("prev_prio", Int(32, signed=True)), ("prev_state", Int(64, signed=True)),
                        ("next_comm", String()), ("next_tid", Int(32, signed=True)),
                        ("next_prio", Int(32, signed=True))])
    with TraceWriter(str(path), hostname="bench-kernel", packet_size=1 << 20) as w:
        sc = w.add_stream_class(header="compact")
        sw = sc.add_event_class("sched_switch", sw_fields)
        wk = sc.add_event_class("sched_waking", Struct([("comm", String()), ("tid", Int(32, signed=True)),
                                                        ("prio", Int(32, signed=True)),
                                                        ("target_cpu", Int(32, signed=True))]))
        en = sc.add_event_class("syscall_entry_read", Struct([("fd", Int(32)), ("buf", Int(64, base=16)),
                                                              ("count", Int(64))]))
        ex = sc.add_event_class("syscall_exit_read", Struct([("ret", Int(64, signed=True)),
                                                             ("buf", Int(64, base=16))]))
        ie = sc.add_event_class("irq_handler_entry", Struct([("irq", Int(32, signed=True)), ("name", String())]))
        ix = sc.add_event_class("irq_handler_exit", Struct([("irq", Int(32, signed=True)),
                                                            ("ret", Int(32, signed=True))]))
        ncpu = 4
        per = n_events // ncpu
        cycle = 6  # waking, switch, entry, exit, irq entry, irq exit
        for cpu in range(ncpu):
            s = w.add_stream(sc, cpu=cpu)
            t = 1_000 + cpu
            tids = rng.integers(100, 2000, per // cycle + 1).tolist()
            prev = 0
            for k in range(per // cycle):
                tid = tids[k]
                t += 500
                s.write(wk, t, {"comm": "worker", "tid": tid, "prio": 20, "target_cpu": cpu})
                t += 700
                s.write(sw, t, {"prev_comm": "worker", "prev_tid": prev, "prev_prio": 20, "prev_state": 1,
                                "next_comm": "worker", "next_tid": tid, "next_prio": 20})
                prev = tid
                t += 300
                s.write(en, t, {"fd": 3, "buf": 0x7FFF0000, "count": 4096})
                t += 2000
                s.write(ex, t, {"ret": 4096, "buf": 0x7FFF0000})
                t += 400
                s.write(ie, t, {"irq": 30, "name": "eth0"})
                t += 1500
                s.write(ix, t, {"irq": 30, "ret": 1})


def report(label: str, path: str, reference: bool) -> None:
    """Each analysis, and babeltrace2 measured again just before it: on a shared machine the
    load changes from one minute to the next, adjacent runs compare fairly."""
    import tracewatch

    ts = tracewatch.open(path)
    n = sum(len(b) for b in ts.batches())  # warm-up: JIT cache, metadata cache
    read = best(lambda: sum(len(b) for b in tracewatch.open(path).batches()))
    bt = babeltrace2_dummy(path)
    print(f"\n== {label}: {n:,} events; babeltrace2 -o dummy {bt:.3f} s ({n / bt / 1e6:.2f} M ev/s); "
          f"tracewatch reading every event {read:.3f} s")
    for name, fn in analyses().items():
        bt = babeltrace2_dummy(path)
        t = best(lambda fn=fn: fn(tracewatch.open(path)))  # type: ignore[misc]
        line = (f"{name:9s} {t:7.3f} s  {n / t / 1e6:6.2f} M ev/s  vs babeltrace2 reading "
                f"({bt:.3f} s just before): {bt / t:5.2f}x")
        if reference and name in LTTNG_ANALYSES_S:
            line += f"  vs lttng-analyses ({LTTNG_ANALYSES_S[name]} s): {LTTNG_ANALYSES_S[name] / t:5.1f}x"
        print(line, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--keep", help="directory to keep (and reuse) the generated trace in")
    ap.add_argument("--skip-generated", action="store_true")
    args = ap.parse_args()
    report("many-threads", str(MANY_THREADS), reference=True)
    if args.skip_generated:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = generated_trace(args.keep, Path(tmp), args.events)
        report("generated kernel trace", str(path), reference=False)
    return 0


def generated_trace(keep: str | None, tmp: Path, events: int) -> Path:
    """The generated kernel trace: in ``keep`` (generated there once, then reused) or under
    ``tmp``."""
    path = Path(keep) if keep else tmp / "kernel"
    if not (path / "metadata").exists():
        t0 = time.perf_counter()
        generate_kernel(path, events)
        print(f"\n(generated {events:,} events in {time.perf_counter() - t0:.0f} s)")
    return path


if __name__ == "__main__":
    sys.exit(main())
