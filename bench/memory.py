#!/usr/bin/env python3
"""Memory bound: read a trace of several GB and report the reader's peak RSS.

Generates (or reuses, with --keep) a trace of about --gb gigabytes with tracewatch.ctf.writer,
then, in a fresh process, reads every event through the merged columnar API (gathering the
sched_switch columns of each batch) and prints that process's peak RSS next to the trace size.
Target: under 300 MB whatever the trace size (packets are streamed, never the whole trace).

    python bench/memory.py [--gb 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

READ = r"""
import resource, sys, time
import tracewatch
t0 = time.perf_counter(); n = 0
for b in tracewatch.open(sys.argv[1]).batches():
    n += len(b)
    b.columns("sched_switch", ["prev_tid", "next_tid"])
print(n, time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=3.0)
    ap.add_argument("--keep", help="directory to keep (and reuse) the generated trace in")
    args = ap.parse_args()
    from read import generate  # the same generator as bench/read.py (about 30 bytes an event)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep) if args.keep else Path(tmp) / "big"
        if not (path / "metadata").exists():
            t0 = time.perf_counter()
            generate(path, int(args.gb * 1e9 / 30.2))
            print(f"generated in {time.perf_counter() - t0:.0f} s")
        size = sum(f.stat().st_size for f in path.iterdir())
        out = subprocess.run([sys.executable, "-c", READ, str(path)], capture_output=True, text=True, check=True)
        n, secs, rss = out.stdout.split()
        print(f"trace {size / 1e9:.2f} GB, {int(n):,} events read in {float(secs):.1f} s "
              f"({int(n) / float(secs) / 1e6:.2f} M ev/s); peak RSS of the reader {float(rss):.0f} MB "
              f"(target < 300 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
