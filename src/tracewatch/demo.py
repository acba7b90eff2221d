"""``make demo``: the VM monitoring use case of Gebai & Dagenais (2014), end to end.

A host runs two VMs; in VM "Ubuntu" a periodic ``critical_task`` (10 ms of work every 100 ms)
sometimes takes far longer, because ``burnP6`` on the host preempts the vCPU it runs on. The
demo simulates that cloud (host and guest kernel traces, guest clocks offset and drifting),
synchronizes the traces, rebuilds every vCPU's state, prints which executions were slow, by
how much and who was to blame (next to the simulator's ground truth), and writes the HTML
timeline. Everything a user would run is the ``tracewatch`` command line shown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path("out/demo")
SLOW_NS = 50_000_000


def _run(args: list[str]) -> None:
    from .cli.main import main as cli_main

    print(f"\n$ tracewatch {' '.join(args)}", flush=True)
    rc = cli_main(args)
    if rc:
        raise SystemExit(rc)


def main() -> int:
    import tracewatch

    from .vm.executions import task_executions
    from .vm.report import analyze

    traces = OUT / "traces"
    _run(["sim", str(traces), "--scenario", "gebai2014", "--duration", "2s", "--force"])
    _run(["sync", str(traces)])
    html = OUT / "timeline.html"
    _run(["vm", str(traces), "--html", str(html), "--limit", "8"])

    report = analyze(tracewatch.open(str(traces)))
    ex = task_executions(report.states, "Ubuntu", 3525, gap_ns=5_000_000)
    truth = json.loads((traces / "truth.json").read_text())
    true_ex = {e["start"] // 1_000_000: e for e in truth["machines"]["guest-Ubuntu"]["critical_executions"]}
    print("\ncritical_task (tid 3525) in VM Ubuntu, every execution (host time):")
    print(f"{'start (ms)':>11} {'took (ms)':>10} {'stolen (ms)':>12} {'truth took':>11}  culprits")
    t0 = int(ex["start"][0]) if len(ex["start"]) else 0
    for i in range(len(ex["start"])):
        start, took, stolen = int(ex["start"][i]), int(ex["duration_ns"][i]), int(ex["steal_ns"][i])
        t = true_ex.get(start // 1_000_000) or true_ex.get(start // 1_000_000 + 1)
        mark = "  <- SLOW" if took > SLOW_NS else ""
        if t is None and i == len(ex["start"]) - 1:
            mark += " (still running when the trace ends)"
        true_took = f"{t['duration'] / 1e6:11.3f}" if t else f"{'-':>11}"
        print(f"{(start - t0) / 1e6:11.3f} {took / 1e6:10.3f} {stolen / 1e6:12.3f} "
              f"{true_took}  {ex['culprits'][i] or '-'}{mark}")
    slow = [i for i in range(len(ex["start"])) if int(ex["duration_ns"][i]) > SLOW_NS]
    normal = [int(ex["duration_ns"][i]) for i in range(len(ex["start"])) if int(ex["duration_ns"][i]) <= SLOW_NS]
    if slow and normal:
        typical = sorted(normal)[len(normal) // 2]
        worst = max(slow, key=lambda i: int(ex["duration_ns"][i]))
        print(f"\n{len(slow)} of {len(ex['start'])} executions were slow: up to "
              f"{int(ex['duration_ns'][worst]) / 1e6:.1f} ms instead of ~{typical / 1e6:.1f} ms; "
              f"culprit: {str(ex['culprits'][worst]).split(',')[0]}")
    print(f"\nHTML timeline: {html.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
