"""The ``critical-path`` command: the critical path of one task over a time range.

``tracewatch critical-path PATH... --tid T [--begin B] [--end E]`` builds the execution graph
of the traces (one machine) with :mod:`tracewatch.critical` and prints the path as a tree
(the task, then each task on its path with its total and its states) preceded by a one-line
summary (the 10 longest tasks, then the rest) like ``critical_task 3525 0.274714 | host 0.274714 (cc 2806 0.270551, ...)``, and as
a flat list of intervals. ``--csv`` prints the intervals as CSV; ``--mi`` a LAMI 1.0 document
with two result tables (intervals and per-task summary, self-described table classes).

Errors are :class:`~tracewatch.errors.TracewatchError` (one line, exit 1, see :mod:`.main`).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any

import click

from ..critical import CriticalPath, trace_critical_path
from ..ctf.trace import TraceSet
from ..errors import TracewatchError
from ..output import lami
from .timeparse import parse_time_ns

__all__ = ["critical_path", "format_tree", "format_intervals"]


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


def _mi(p: CriticalPath) -> dict[str, Any]:
    def cls(title: str, cols: list[tuple[str, str]]) -> dict[str, Any]:
        return {"title": title,
                "column-descriptions": [{"title": t, "class": c} for t, c in cols]}
    iv = cls("Critical path", [("Begin", "timestamp"), ("End", "timestamp"),
                               ("Duration", "duration"), ("Process", "process"),
                               ("State", "string")])
    sm = cls("Critical path per task", [("Process", "process"), ("Duration", "duration")])
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


@click.command("critical-path")
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option("--tid", type=int, required=True, help="The task (TID) whose critical path to compute.")
@click.option("--begin", help="Start time: SECONDS[.NS] since the epoch, or ns.")
@click.option("--end", help="End time, same formats as --begin.")
@click.option("--mi", is_flag=True, help="LAMI 1.0 JSON output.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV output of the intervals.")
def critical_path(paths: tuple[str, ...], tid: int, begin: str | None, end: str | None,
                  mi: bool, as_csv: bool) -> None:
    """Critical path of task TID in the traces under PATH... (one machine)."""
    if not paths:
        raise click.UsageError("missing trace PATH")
    if mi and as_csv:
        raise click.UsageError("--mi and --csv are exclusive")
    if any(p.startswith("net://") for p in paths):
        raise TracewatchError("critical-path reads trace files, not live sessions (net:// URLs)")
    ts = TraceSet(list(paths), on_warning=lambda m: click.echo(f"tracewatch: warning: {m}", err=True))
    p = trace_critical_path(ts, tid, parse_time_ns(begin), parse_time_ns(end))
    if mi:
        json.dump(_mi(p), sys.stdout)
        sys.stdout.write("\n")
    elif as_csv:
        lami.table_to_csv(p.intervals, sys.stdout)
    else:
        click.echo(format_tree(p))
        click.echo("")
        click.echo(format_intervals(p))
