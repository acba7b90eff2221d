"""The ``critical-path`` command: the critical path of one task over a time range.

``tracewatch critical-path PATH... --tid T [--machine M] [--begin B] [--end E]`` builds the
execution graph of the traces with :mod:`tracewatch.critical` and prints the path as a tree
(the task, then each task on its path with its total and its states) preceded by a one-line
summary (the 10 longest tasks, then the rest) like ``critical_task 3525 0.274714 | host
0.274714 (cc 2806 0.270551, ...)``, and as a flat list of intervals. When the traces are of
a host and its guests, the path goes across machines (guest clocks synchronized unless
``--no-sync``; ``--pair`` as for ``tracewatch vm``) and the summary has one group per machine
(``| VM Ubuntu 0.270565 (cc 2806 0.270551) | Host host 0.262080 (burnP6 30672 0.260352)``);
``--machine`` (or ``--host``) names the machine of the TID when several have it.
``--csv`` prints the intervals as CSV; ``--mi`` a LAMI 1.0 document with two result tables
(intervals and per-task summary, self-described table classes); ``--html FILE`` writes the
interactive timeline (the vCPU rows of ``tracewatch vm`` across machines) with a row for the
path.

Errors are :class:`~tracewatch.errors.TracewatchError` (one line, exit 1, see :mod:`.main`).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any

import click

from ..analyses import Table
from ..critical import CriticalPath, SystemPath, task_critical_path
from ..ctf.trace import TraceSet
from ..errors import TracewatchError
from ..output import lami
from ..output.html_timeline import path_timeline_html, vm_timeline_html
from ..vm import parse_pair, vm_report
from .timeparse import parse_time_ns

__all__ = ["critical_path", "format_tree", "format_intervals", "format_system_tree",
           "format_system_intervals", "summary_line"]


_TOP = 10  # tasks named in the one-line summary


def _s(ns: int) -> str:
    return f"{ns / 1e9:.6f}"


def _ts(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def format_tree(p: CriticalPath) -> str:
    """The one-line summary, then the tree: task -> total duration -> states."""
    host = p.hostname or "host"
    rows = list(p.summary.rows())
    parts = ", ".join(f"{r['comm']} {r['tid']} {_s(r['duration'])}" for r in rows[:_TOP])
    if len(rows) > _TOP:
        rest = sum(r["duration"] for r in rows[_TOP:])
        parts += f", {len(rows) - _TOP} more {_s(rest)}"
    lines = [f"{p.comm} {p.tid} {_s(p.elapsed)} | {host} {_s(p.elapsed)} ({parts})", ""]
    lines.append(f"{p.comm} {p.tid} {_s(p.elapsed)}  [{_ts(p.begin)}, {_ts(p.end)}]")
    states: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in p.intervals.rows():
        states[r["tid"]][r["state"]] += r["duration"]
    for i, r in enumerate(rows):
        last = i == len(rows) - 1
        lines.append(f"{'└──' if last else '├──'} {r['comm']} {r['tid']} {_s(r['duration'])}")
        st = sorted(states[r["tid"]].items(), key=lambda kv: -kv[1])
        for j, (name, d) in enumerate(st):
            pre = "    " if last else "│   "
            lines.append(f"{pre}{'└──' if j == len(st) - 1 else '├──'} {name} {_s(d)}")
    return "\n".join(lines)


def format_intervals(p: CriticalPath) -> str:
    """One line per interval: start, end, duration (s), tid, comm, state."""
    out = [f"{'start':>20} {'end':>20} {'duration':>10} {'tid':>7}  {'comm':<16} state"]
    for r in p.intervals.rows():
        out.append(f"{_ts(r['start']):>20} {_ts(r['end']):>20} {_s(r['duration']):>10} "
                   f"{r['tid']:>7}  {r['comm']:<16} {r['state']}")
    return "\n".join(out)


def _table_class(title: str, cols: list[tuple[str, str]]) -> dict[str, Any]:
    """An inline LAMI table class: title and (column title, value class) pairs."""
    return lami.TableClass("", title, tuple(lami.Column(t, c) for t, c in cols)).native()


def _mi(p: CriticalPath) -> dict[str, Any]:
    iv = _table_class("Critical path", [("Begin", "timestamp"), ("End", "timestamp"),
                                        ("Duration", "duration"), ("Process", "process"),
                                        ("State", "string")])
    sm = _table_class("Critical path per task", [("Process", "process"), ("Duration", "duration")])
    rng = lami.time_range(p.begin, p.end)
    return lami.document([
        {"class": iv, "time-range": rng, "data": [
            [lami.timestamp(r["start"]), lami.timestamp(r["end"]), lami.duration(r["duration"]),
             lami.process(r["comm"], None, r["tid"]), lami.string(r["state"])]
            for r in p.intervals.rows()]},
        {"class": sm, "time-range": rng, "data": [
            [lami.process(r["comm"], None, r["tid"]), lami.duration(r["duration"])]
            for r in p.summary.rows()]},
    ])


def _group(p: SystemPath) -> list[tuple[str, int, list[dict[str, Any]]]]:
    """(machine label, total, task rows) per machine, the task's machine first."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in p.summary.rows():
        label = f"VM {r['vm']}" if r["vm"] else f"Host {r['machine']}"
        groups[label].append(r)
    own = f"VM {p.vm}" if p.vm else f"Host {p.machine}"
    out = [(k, sum(r["duration"] for r in rs), rs) for k, rs in groups.items()]
    out.sort(key=lambda g: (g[0] != own, -g[1], g[0]))
    return out


def summary_line(p: SystemPath) -> str:
    """``critical_task 3525 0.274714 | VM Ubuntu 0.270565 (cc 2806 0.270551) | Host ...``"""
    parts = [f"{p.comm} {p.tid} {_s(p.elapsed)}"]
    for label, total, rs in _group(p):
        tasks = ", ".join(f"{r['comm']} {r['tid']} {_s(r['duration'])}" for r in rs[:_TOP])
        if len(rs) > _TOP:
            tasks += f", {len(rs) - _TOP} more {_s(sum(r['duration'] for r in rs[_TOP:]))}"
        parts.append(f"{label} {_s(total)} ({tasks})")
    return " | ".join(parts)


def format_system_tree(p: SystemPath) -> str:
    """The one-line summary, then the tree: machine / VM -> task -> states."""
    lines = [summary_line(p), "",
             f"{p.comm} {p.tid} {_s(p.elapsed)}  [{_ts(p.begin)}, {_ts(p.end)}] "
             f"({p.clock})"]
    states: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in p.intervals.rows():
        states[(r["machine"], r["tid"])][r["state"]] += r["duration"]
    groups = _group(p)
    for gi, (label, total, rs) in enumerate(groups):
        glast = gi == len(groups) - 1
        lines.append(f"{'└──' if glast else '├──'} {label} {_s(total)}")
        gpre = "    " if glast else "│   "
        for i, r in enumerate(rs):
            last = i == len(rs) - 1
            st = sorted(states[(r["machine"], r["tid"])].items(), key=lambda kv: -kv[1])
            detail = ", ".join(f"{n} {_s(d)}" for n, d in st)
            lines.append(f"{gpre}{'└──' if last else '├──'} {r['comm']} {r['tid']} "
                         f"{_s(r['duration'])} ({detail})")
    return "\n".join(lines)


def format_system_intervals(p: SystemPath) -> str:
    """One line per interval: start, end, duration (s), machine, tid, comm, state."""
    out = [f"{'start':>20} {'end':>20} {'duration':>10}  {'machine':<14} {'tid':>7}  "
           f"{'comm':<16} state"]
    for r in p.intervals.rows():
        m = f"VM {r['vm']}" if r["vm"] else r["machine"]
        out.append(f"{_ts(r['start']):>20} {_ts(r['end']):>20} {_s(r['duration']):>10}  "
                   f"{m:<14} {r['tid']:>7}  {r['comm']:<16} {r['state']}")
    return "\n".join(out)


def _system_mi(p: SystemPath) -> dict[str, Any]:
    iv = _table_class("Critical path", [("Begin", "timestamp"), ("End", "timestamp"),
                                        ("Duration", "duration"), ("Machine", "string"),
                                        ("VM", "string"), ("Process", "process"), ("State", "string"),
                                        ("Host thread", "number")])
    sm = _table_class("Critical path per task", [("Machine", "string"), ("VM", "string"),
                                                 ("Process", "process"), ("Duration", "duration")])
    rng = lami.time_range(p.begin, p.end)
    return lami.document([
        {"class": iv, "time-range": rng, "data": [
            [lami.timestamp(r["start"]), lami.timestamp(r["end"]), lami.duration(r["duration"]),
             lami.string(r["machine"]), lami.string(r["vm"]),
             lami.process(r["comm"], None, r["tid"]), lami.string(r["state"]),
             lami.number(r["host_tid"])]
            for r in p.intervals.rows()]},
        {"class": sm, "time-range": rng, "data": [
            [lami.string(r["machine"]), lami.string(r["vm"]),
             lami.process(r["comm"], None, r["tid"]), lami.duration(r["duration"])]
            for r in p.summary.rows()]},
    ])


@click.command("critical-path")
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option("--tid", type=int, required=True, help="The task (TID) whose critical path to compute.")
@click.option("--machine", "--host", "machine", metavar="M",
              help="The machine of the TID (hostname, VM name or trace path) when several "
                   "machines have it.")
@click.option("--begin", help="Start time: SECONDS[.NS] since the epoch, or ns (host time).")
@click.option("--end", help="End time, same formats as --begin.")
@click.option("--pair", "pairs", multiple=True, metavar="GUEST_HOST=QEMU_PID",
              help="Pair a guest trace with its VM process on the host (as tracewatch vm).")
@click.option("--no-sync", is_flag=True,
              help="Do not synchronize clocks: guest timestamps are taken as host time.")
@click.option("--mi", is_flag=True, help="LAMI 1.0 JSON output.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV output of the intervals.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True),
              help="Write an interactive HTML timeline with the path to FILE.")
def critical_path(paths: tuple[str, ...], tid: int, machine: str | None, begin: str | None,
                  end: str | None, pairs: tuple[str, ...], no_sync: bool, mi: bool,
                  as_csv: bool, html_file: str | None) -> None:
    """Critical path of task TID in the traces under PATH... (one machine, or a host and
    its guests)."""
    if not paths:
        raise click.UsageError("missing trace PATH")
    if mi and as_csv:
        raise click.UsageError("--mi and --csv are exclusive")
    if any(p.startswith("net://") for p in paths):
        raise TracewatchError("critical-path reads trace files, not live sessions (net:// URLs)")
    pair_map = dict(parse_pair(p) for p in pairs)
    seen: set[str] = set()

    def warn(msg: str) -> None:  # the set is read several times: say each thing once
        if msg not in seen:
            seen.add(msg)
            click.echo(f"tracewatch: warning: {msg}", err=True)

    ts = TraceSet(list(paths), on_warning=warn)
    with ts:
        sp, sg = task_critical_path(ts, tid, machine, parse_time_ns(begin), parse_time_ns(end),
                                    pair_map, not no_sync, partial=True)
    if html_file:
        if sg is not None and sg.states is not None:
            page = vm_timeline_html(vm_report(sg.states), paths=[sp],
                                    title=f"tracewatch critical-path: {sp.comm} {sp.tid}")
        else:
            page = path_timeline_html(sp)
        with open(html_file, "w", encoding="utf-8") as f:
            f.write(page)
    if sg is None:  # one machine: the per-task layout
        single = _as_single(sp)
        if mi:
            json.dump(_mi(single), sys.stdout)
            sys.stdout.write("\n")
        elif as_csv:
            lami.table_to_csv(single.intervals, sys.stdout)
        else:
            click.echo(format_tree(single))
            click.echo("")
            click.echo(format_intervals(single))
    elif mi:
        json.dump(_system_mi(sp), sys.stdout)
        sys.stdout.write("\n")
    elif as_csv:
        lami.table_to_csv(sp.intervals, sys.stdout)
    else:
        click.echo(format_system_tree(sp))
        click.echo("")
        click.echo(format_system_intervals(sp))
        for n in sp.notes:
            click.echo(f"note: {n}")
    if html_file and not (mi or as_csv):
        click.echo(f"timeline written to {html_file}")
    if sp.fault is not None:  # the path up to the fault is printed: now the error, exit 1
        sys.stdout.flush()
        raise sp.fault


def _as_single(sp: SystemPath) -> CriticalPath:
    iv = sp.intervals
    cols = ("start", "end", "duration", "tid", "comm", "state")
    sm = sp.summary
    return CriticalPath(sp.tid, sp.comm, sp.machine, sp.begin, sp.end,
                        Table({c: iv[c] for c in cols}),
                        Table({c: sm[c] for c in ("tid", "comm", "duration")}))

