"""``tracewatch vm``: vCPU states, steal time, hypervisor time and preemptions of the VMs of a
host (and their guests' traces).

Text tables (rich) by default; ``--mi`` prints one JSON document with every table;
``--csv`` prints one table (``--table``, default ``vcpus``) as CSV; ``--html FILE`` writes a
self-contained interactive timeline (one row per vCPU).
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

from .. import open as open_traces
from ..analyses import Table
from ..output.html_timeline import vm_timeline_html
from ..vm import VmReport, analyze, parse_pair

TABLES = ("vms", "vcpus", "exits", "preemptions", "threads")


def _warn(msg: str) -> None:
    click.echo(f"tracewatch: warning: {msg}", err=True)


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def mi_document(rep: VmReport) -> dict[str, Any]:
    """Every table as ``{"columns": [...], "rows": [[...], ...]}`` plus the VMs and notes."""
    tables = {name: {"columns": t.columns,
                     "rows": [[_py(r[c]) for c in t.columns] for r in t.rows()]}
              for name, t in rep.tables().items()}
    vms = [{"name": vm.name, "host": vm.host.hostname, "pid": vm.pid,
            "vcpus": {str(k): v for k, v in vm.vcpus.items()},
            "guest": vm.guest.paths if vm.guest else None, "paired_by": vm.paired_by,
            "vm_uid": vm.vm_uid, "clock": vm.clock_note,
            "transform": {"slope": str(vm.transform.slope), "offset": str(vm.transform.offset)}}
           for vm in rep.states.setup.vms]
    return {"mi-version": {"major": 1, "minor": 0}, "command": "vm",
            "begin": rep.states.start, "end": rep.states.end, "vms": vms,
            "tables": tables, "notes": rep.notes}


def write_csv(t: Table, out: Any) -> None:
    w = csv.writer(out)
    w.writerow(t.columns)
    for r in t.rows():
        w.writerow([r[c] for c in t.columns])


def _ms(ns: Any) -> str:
    return f"{float(ns) / 1e6:.3f}"


def _us(ns: Any) -> str:
    return f"{float(ns) / 1e3:.3f}"


def _print(rep: VmReport, limit: int) -> None:
    out = Console(highlight=False)
    t = RichTable(title="VMs (times in ms)")
    for c in ("VM", "Host", "PID", "Paired", "vCPUs", "Running", "Real", "Steal", "Preempt",
              "Hyperv", "#Pre"):
        t.add_column(c, justify="left" if c in ("VM", "Host", "Paired") else "right")
    for r in rep.vms.rows():
        t.add_row(r["vm"], r["host"], str(r["pid"]), r["paired_by"] or "-",
                  str(r["vcpus"]), _ms(r["running_ns"]), _ms(r["real_ns"]), _ms(r["steal_ns"]),
                  _ms(r["preempted_ns"]), _ms(r["hypervisor_ns"]), str(r["preemptions"]))
    out.print(t)
    t = RichTable(title="vCPUs (times in ms)")
    for c in ("VM", "vCPU", "TID", "Running", "Real", "Steal", "Preempt", "Hyperv", "Idle",
              "#Pre", "Exits"):
        t.add_column(c, justify="left" if c == "VM" else "right")
    for r in rep.vcpus.rows():
        t.add_row(r["vm"], str(r["vcpu"]), str(r["tid"]), _ms(r["running_ns"]), _ms(r["real_ns"]),
                  _ms(r["steal_ns"]), _ms(r["preempted_ns"]), _ms(r["hypervisor_ns"]),
                  _ms(r["idle_ns"]), str(r["preemptions"]), str(r["exits"]))
    out.print(t)
    t = RichTable(title="Hypervisor time by exit reason (on-CPU time, us)")
    for c in ("VM", "Exit reason", "Count", "Total", "Min", "Avg", "Max", "Wall"):
        t.add_column(c, justify="left" if c in ("VM", "Exit reason") else "right")
    for r in rep.exits.rows():
        t.add_row(r["vm"], f"{r['reason_name']} ({r['reason']})", str(r["count"]),
                  _us(r["total_ns"]), _us(r["min_ns"]), _us(r["avg_ns"]), _us(r["max_ns"]),
                  _us(r["wall_ns"]))
    out.print(t)
    p = rep.preemptions
    order = np.argsort(-p["duration"], kind="stable") if p.nrows else np.zeros(0, np.int64)
    t = RichTable(title=f"Preemptions ({p.nrows}; longest {min(limit, p.nrows)} shown)")
    for c in ("Start (ns)", "Duration (us)", "VM", "vCPU", "CPU", "Culprit"):
        t.add_column(c, justify="left" if c in ("VM", "Culprit") else "right")
    for i in order[:limit].tolist():
        t.add_row(str(p["start"][i]), _us(p["duration"][i]), str(p["vm"][i]),
                  str(p["vcpu"][i]), str(p["cpu"][i]),
                  str(p["culprit"][i]) + ("" if p["complete"][i] else " (until the end)"))
    out.print(t)
    t = RichTable(title="Guest threads: apparent vs real running time (ms)")
    for c in ("VM", "TID", "Command", "Apparent", "Real", "Steal", "Hypervisor"):
        t.add_column(c, justify="left" if c in ("VM", "Command") else "right")
    for r in rep.threads.rows():
        t.add_row(r["vm"], str(r["tid"]), r["comm"], _ms(r["apparent_ns"]), _ms(r["real_ns"]),
                  _ms(r["steal_ns"]), _ms(r["hypervisor_ns"]))
    out.print(t)
    for n in rep.notes:
        out.print(f"note: {n}")


@click.command("vm")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--pair", "pairs", multiple=True, metavar="GUEST_HOST=QEMU_PID",
              help="Pair a guest trace (hostname or path) with its VM process on the host "
                   "(when the traces have no vmsync events). Repeatable.")
@click.option("--no-sync", is_flag=True,
              help="Do not synchronize clocks: guest timestamps are taken as host time.")
@click.option("--mi", is_flag=True, help="Print a JSON document with every table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print one table (--table) as CSV.")
@click.option("--table", "table", type=click.Choice(TABLES), default="vcpus", show_default=True,
              help="The table --csv prints.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True),
              help="Write an interactive HTML timeline (one row per vCPU) to FILE.")
@click.option("--limit", type=int, default=20, show_default=True,
              help="Preemptions listed in the text output.")
def vm(paths: tuple[str, ...], pairs: tuple[str, ...], no_sync: bool, mi: bool, as_csv: bool,
       table: str, html_file: str | None, limit: int) -> None:
    """vCPU states of the VMs of the host traces under PATHS (with their guests' traces).

    A host is a trace with kvm_entry/kvm_exit (kvm_x86_entry/kvm_x86_exit) events; guest
    traces are paired with their VM through the vmsync events (vm_uid) or --pair, and put on
    the host's clock with the vmsync/TCP sync events (matched in the same single pass over
    the traces).  Reports per VM and per vCPU: running,
    real, steal (preempted while the guest runs a task), hypervisor time by exit reason (as
    perf kvm stat), every preemption with its culprit, and per guest thread the apparent vs
    real running time.
    """
    if mi and as_csv:
        raise click.UsageError("--mi and --csv are exclusive")
    pair_map = dict(parse_pair(p) for p in pairs)
    ts = open_traces(*paths, on_warning=_warn)
    try:
        rep = analyze(ts, pair_map, sync=not no_sync)
    finally:
        ts.close()
    if html_file:
        with open(html_file, "w", encoding="utf-8") as f:
            f.write(vm_timeline_html(rep))
    if mi:
        click.echo(json.dumps(mi_document(rep), indent=2))
    elif as_csv:
        write_csv(rep.tables()[table], sys.stdout)
    else:
        _print(rep, limit)
        if html_file:
            click.echo(f"timeline written to {html_file}")
