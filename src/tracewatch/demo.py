"""``make demo``: the VM monitoring use case of Gebai & Dagenais (2014), end to end.

A host runs two VMs; in VM "Ubuntu" a periodic ``critical_task`` (10 ms of work every 100 ms)
sometimes takes far longer, because ``burnP6`` on the host preempts the vCPU it runs on. The
demo simulates that cloud (host and guest kernel traces, guest clocks offset and drifting),
synchronizes the traces, rebuilds every vCPU's state, prints which executions were slow, by
how much and who was to blame (next to the simulator's ground truth), and writes the HTML
timeline. Then the critical path of the slowest execution, across the VMs and the host
(``tracewatch critical-path``), is printed like the study's ("critical_task 3525 0.275 s, of
which 0.260 s burnP6 on the host") and checked against the truth. Everything a user would
run is the ``tracewatch`` command line shown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

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
        _critical_path(traces, ex, worst, truth)
    print(f"\nHTML timeline: {html.resolve()}")
    return 0


def _critical_path(traces: Path, ex: Any, worst: int, truth: dict[str, Any]) -> None:
    """The critical path of the slowest execution, next to the simulator's truth."""
    import tracewatch

    from .cli.critical import format_system_tree
    from .critical import build_system_graph, system_critical_path
    from .output.html_timeline import vm_timeline_html
    from .vm import vm_report

    start, end = int(ex["start"][worst]), int(ex["end"][worst])
    html = OUT / "critical_path.html"
    print(f"\n$ tracewatch critical-path {traces} --tid 3525 --begin {start} --end {end} "
          f"--html {html}", flush=True)
    with tracewatch.open(str(traces)) as ts:
        sg = build_system_graph(ts)
    p = system_critical_path(sg, 3525, "Ubuntu", start, end)
    assert sg.states is not None
    html.write_text(vm_timeline_html(vm_report(sg.states), paths=[p],
                                     title="tracewatch critical-path: critical_task 3525"))
    print(format_system_tree(p))
    print(f"({p.intervals.nrows} intervals: listed by the command, or with --csv)")
    execs = truth["machines"]["guest-Ubuntu"]["critical_executions"]
    t = min(execs, key=lambda e: abs(e["end"] - end))
    vcpu0 = truth["machines"]["guest-Ubuntu"]["vcpu_tids"][0]
    got: dict[int, int] = {}  # host thread holding the CPU instead of Ubuntu's vCPU 0
    for r in p.intervals.rows():
        if r["host_tid"] >= 0 and r["host_tid"] != vcpu0:
            got[r["host_tid"]] = got.get(r["host_tid"], 0) + r["duration"]
    want: dict[int, tuple[str, int]] = {}
    for c in t["preempted_by"]:
        name = f"VM {c['vm']} vCPU thread" if "vm" in c else c["comm"]
        want[c["tid"]] = (name, want.get(c["tid"], ("", 0))[1] + c["ns"])
    print("\nslowest execution: time the critical path gives to each host thread that held "
          "Ubuntu's CPU vs the simulator's truth (ns):")
    for tid, (name, ns) in sorted(want.items(), key=lambda kv: -kv[1][1]):
        mark = "equal" if got.get(tid) == ns else "DIFFERENT"
        print(f"  {name + f' ({tid})':<28} path {got.get(tid, 0):>12}  truth {ns:>12}  {mark}")
    print(f"HTML timeline with the path: {html.resolve()}")


if __name__ == "__main__":
    sys.exit(main())
