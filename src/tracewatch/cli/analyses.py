"""The analysis commands: ``cputop``, ``sched``, ``syscalls``, ``irq``, ``io``, ``mem``.

Each runs an analysis of :mod:`tracewatch.analyses` on the traces under PATH... and prints
its result as tables (rich), as LAMI 1.0 JSON (``--mi``, lttng-analyses' machine interface;
``--mi --metadata`` describes the tables without reading a trace) or as CSV (``--csv``).
A progress bar goes to stderr while the trace is read, when stderr is a terminal.
``--period DURATION`` (cputop, sched, syscalls, irq) gives one result per window
[t, t + DURATION) aligned on the first event: one set of tables per window (``--mi``: every
window's tables in order, each with its time range, like lttng-analyses' ``--period``;
``--csv``: the windows' rows with ``period_begin``/``period_end`` columns first).

On a corrupt or truncated trace the results over the events read before the fault (those
``tracewatch dump`` prints) are printed as usual (``--mi``: still one LAMI document), then
the fault is raised: one line on stderr, exit status 1 (see :func:`_reports_fault`).

Imports :mod:`tracewatch.analyses`, :mod:`tracewatch.output` and click/rich; errors are
:class:`~tracewatch.errors.TracewatchError` (one line, exit 1, see :mod:`.main`).
"""

from __future__ import annotations

import functools
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from ..analyses import Table
from ..analyses.cputop import CputopResult, cputop, cputop_periods
from ..analyses.io import IoResult, io_stats, top_io_calls
from ..analyses.irq import IrqResult, irq_histograms, irq_periods, irq_stats
from ..analyses.mem import MemResult, mem_stats
from ..analyses.sched import (
    SchedResult,
    filter_latencies,
    latency_histogram,
    sched_latencies,
    sched_periods,
    top_latencies,
)
from ..analyses.syscalls import SyscallsResult, syscall_stats, syscalls_periods
from ..ctf.trace import TraceSet
from ..errors import DecodeError, TracewatchError
from ..output import lami
from .syncopt import apply_sync, sync_option
from .timeparse import parse_duration_ns, parse_time_ns

__all__ = ["cputop_cmd", "sched_cmd", "syscalls_cmd", "irq_cmd", "io_cmd", "mem_cmd"]

F = TypeVar("F", bound=Callable[..., Any])


def _ints(values: tuple[str, ...], what: str) -> list[int] | None:
    """Repeatable and/or comma-separated integers (None when not given)."""
    if not values:
        return None
    out: list[int] = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(int(part))
            except ValueError:
                raise click.BadParameter(f"{part!r} is not an integer", param_hint=what) from None
    return out


def _strs(values: tuple[str, ...]) -> list[str] | None:
    if not values:
        return None
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def _common(with_threads: bool = True, with_period: bool = True) -> Callable[[F], F]:
    def deco(f: F) -> F:
        opts = [
            click.argument("paths", nargs=-1, metavar="PATH..."),
            click.option("--begin", help="Start time: SECONDS[.NS] since the epoch, or ns."),
            click.option("--end", help="End time (inclusive), same formats as --begin."),
        ]
        if with_threads:
            opts += [
                click.option("--tid", "tids", multiple=True, help="Only these TIDs (repeatable, or a comma list)."),
                click.option("--procname", "procnames", multiple=True,
                             help="Only threads with these names (repeatable, or a comma list)."),
            ]
        opts += [
            click.option("--cpu", "cpus", multiple=True, help="Only these CPUs (repeatable, or a comma list)."),
            click.option("--top", type=click.IntRange(min=1), default=None, help="Only the first N rows."),
            click.option("--mi", is_flag=True, help="LAMI 1.0 JSON output (lttng-analyses' --mi)."),
            click.option("--metadata", is_flag=True, help="With --mi: describe the result tables."),
            click.option("--csv", "as_csv", is_flag=True, help="CSV output of the main table."),
        ]
        if with_period:
            opts.append(click.option("--period", help="One result per window of this duration "
                                     "(1s, 500ms, 100us...), aligned on the first event."))
        for o in reversed(opts):
            f = o(f)
        return sync_option(f)
    return deco


def _check_modes(paths: tuple[str, ...], mi: bool, metadata: bool, as_csv: bool) -> None:
    if metadata and not mi:
        raise click.UsageError("--metadata needs --mi")
    if mi and as_csv:
        raise click.UsageError("--mi and --csv are exclusive")
    if not paths and not metadata:
        raise click.UsageError("missing trace PATH")


def _open(paths: tuple[str, ...]) -> TraceSet:
    if any(p.startswith("net://") for p in paths):
        raise TracewatchError("the analyses read trace files, not live sessions (net:// URLs)")
    ts = TraceSet(list(paths), on_warning=lambda m: click.echo(f"tracewatch: warning: {m}", err=True))
    apply_sync(ts)  # when --sync was given
    return ts


def _with_progress(ts: TraceSet, err: Console) -> Progress | None:
    """Show events read on stderr (a terminal) while ``ts`` is read: wraps its batches()."""
    if not err.is_terminal:
        return None
    progress = Progress(SpinnerColumn(), TextColumn("reading {task.description}"), BarColumn(),
                        TextColumn("{task.completed:,.0f} events"), TimeElapsedColumn(),
                        console=err, transient=True)
    task = progress.add_task("trace", total=None)
    inner = ts.batches

    def batches(*a: Any, **k: Any) -> Iterator[Any]:
        on_times = k.get("on_times")
        if on_times is None:
            for b in inner(*a, **k):
                progress.advance(task, len(b))
                yield b
            return

        def counted(times: Any, backwards: Any) -> None:  # every event, skipped ones too
            progress.advance(task, len(times))
            on_times(times, backwards)

        yield from inner(*a, **{**k, "on_times": counted})

    setattr(ts, "batches", batches)  # noqa: B010 - instance-level wrapper, this run only
    progress.start()
    return progress


def _run(paths: tuple[str, ...], fn: Callable[[TraceSet], Any]) -> Any:
    ts = _open(paths)
    err = Console(stderr=True)
    progress = _with_progress(ts, err)
    try:
        return fn(ts)
    finally:
        if progress is not None:
            progress.stop()
        ts.close()


def _reports_fault(f: F) -> F:
    """A command that returns the fault of a partial read (or None) after printing its
    results: the fault is then raised, for :func:`tracewatch.cli.main.main` to report like
    any error (one line on stderr, exit status 1)."""
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        fault = f(*args, **kwargs)
        if fault is not None:
            sys.stdout.flush()  # the results before the error message
            raise fault

    return wrapper  # type: ignore[return-value]


def _rich_table(title: str, columns: tuple[str, ...], left: tuple[str, ...]) -> RichTable:
    """A rich table with these columns: ``left`` ones left-justified, the others (numbers) right."""
    t = RichTable(title=title)
    for col in columns:
        t.add_column(col, justify="left" if col in left else "right")
    return t


def _console() -> Console:
    out = Console(soft_wrap=False, highlight=False)
    if not out.is_terminal:
        out = Console(width=200, highlight=False, color_system=None)
    return out


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj))


def _fmt_time(ns: int) -> str:
    s, frac = divmod(int(ns), 1_000_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s)) + f".{frac:09d}"


def _us(v: Any) -> str:
    f = float(v)
    return "?" if math.isnan(f) else f"{f / 1000:.3f}"


def _header(out: Console, begin: int, end: int) -> None:
    out.print(f"Timerange: [{_fmt_time(begin)}, {_fmt_time(end)}]")


def _head(t: Table, top: int | None) -> Table:
    return t if top is None or top >= t.nrows else t.take(np.arange(top))


def _by_comm(t: Table, procnames: list[str] | None) -> Table:
    if procnames is None:
        return t
    return t.take(np.isin(t["comm"].astype(str), np.array(procnames, dtype=str)))


def _periodic(period: str | None, whole: Callable[[TraceSet], Any],
              windows: Callable[[TraceSet, int], list[Any]]
              ) -> Callable[[TraceSet], tuple[list[Any], DecodeError | None]]:
    """The analysis to run: one result for the whole range, or one per window of --period
    (both called with ``partial=True``); with the fault that cut the trace short, if any."""
    ns = parse_duration_ns(period)

    def run(ts: TraceSet) -> tuple[list[Any], DecodeError | None]:
        if ns is None:
            r = whole(ts)
            return [r], r.fault
        try:
            rs = windows(ts, ns)
        except DecodeError as e:  # the fault came before any event: no window to show
            return [], e
        return rs, rs[0].fault if rs else None

    return run


def _csv_periods(results: list[Any], table: Callable[[Any], Table], periodic: bool) -> None:
    """CSV of ``table(r)`` for each result; with --period, the window bounds come first."""
    if not periodic:
        lami.table_to_csv(table(results[0]) if results else Table({}), sys.stdout)
        return
    parts = []
    for r in results:
        t = table(r)
        n = t.nrows
        parts.append(Table({"period_begin": np.full(n, r.begin, np.int64),
                            "period_end": np.full(n, r.end, np.int64), **{k: t[k] for k in t.columns}}))
    if not parts:
        return
    lami.table_to_csv(Table({k: np.concatenate([p[k] for p in parts]) for k in parts[0].columns}), sys.stdout)


# ------------------------------------------------------------------ cputop

@click.command("cputop")
@_common()
@_reports_fault
def cputop_cmd(paths: tuple[str, ...], begin: str | None, end: str | None, tids: tuple[str, ...],
               procnames: tuple[str, ...], cpus: tuple[str, ...], top: int | None, mi: bool,
               metadata: bool, as_csv: bool, period: str | None) -> DecodeError | None:
    """CPU usage per thread, per CPU and in total (lttng-cputop)."""
    _check_modes(paths, mi, metadata, as_csv)
    if metadata:
        _emit_json(lami.metadata("cputop"))
        return None
    names = _strs(procnames)
    b, e, t_, c_ = parse_time_ns(begin), parse_time_ns(end), _ints(tids, "--tid"), _ints(cpus, "--cpu")
    results: list[CputopResult]
    results, fault = _run(paths, _periodic(
        period, lambda ts: cputop(ts, b, e, t_, c_, partial=True),
        lambda ts, p: cputop_periods(ts, p, b, e, t_, c_, partial=True)))
    for r in results:
        r.per_tid = _by_comm(r.per_tid, names)
    n = 10 if top is None else top
    if mi:
        _emit_json(lami.document([t for r in results for t in lami.cputop_tables(r, n)]))
        return fault
    if as_csv:
        _csv_periods(results, lambda r: _head(r.per_tid, top), period is not None)
        return fault
    out = _console()
    for r in results:
        _print_cputop(out, r, n)
    return fault


def _print_cputop(out: Console, r: CputopResult, n: int) -> None:
    _header(out, r.begin, r.end)
    t = _rich_table("Per-TID CPU usage",
                    ("Process", "TID", "PID", "Migrations", "Priorities", "Usage"),
                    left=("Process", "Priorities"))
    for x in _head(r.per_tid, n).rows():
        t.add_row(str(x["comm"]), str(x["tid"]), "?" if x["pid"] < 0 else str(x["pid"]),
                  str(x["migrations"]), str(x["prios"]), f"{x['ratio'] * 100:.2f} %")
    out.print(t)
    c = RichTable(title="Per-CPU usage")
    c.add_column("CPU", justify="right")
    c.add_column("Usage", justify="right")
    for x in r.per_cpu.rows():
        c.add_row(str(x["cpu"]), f"{x['ratio'] * 100:.2f} %")
    out.print(c)
    out.print(f"Total CPU usage: {r.total * 100:.2f}%")


# ------------------------------------------------------------------ sched

@click.command("sched")
@_common()
@click.option("--log", "show_log", is_flag=True, help="Also list every latency (lttng-schedlog).")
@click.option("--top-latencies", type=int, metavar="N",
              help="Also list the N longest latencies (lttng-schedtop).")
@click.option("--freq", is_flag=True, help="Also print the latency frequency distribution (lttng-schedfreq).")
@click.option("--freq-resolution", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Number of buckets of --freq.")
@click.option("--min", "min_us", type=float, help="Ignore latencies shorter than this (us).")
@click.option("--max", "max_us", type=float, help="Ignore latencies longer than this (us).")
@_reports_fault
def sched_cmd(paths: tuple[str, ...], begin: str | None, end: str | None, tids: tuple[str, ...],
              procnames: tuple[str, ...], cpus: tuple[str, ...], top: int | None, mi: bool,
              metadata: bool, as_csv: bool, period: str | None, show_log: bool,
              top_latencies: int | None, freq: bool, freq_resolution: int,
              min_us: float | None, max_us: float | None) -> DecodeError | None:
    """Scheduling latency (wakeup to switch-in) statistics per thread (lttng-schedstats),
    with the latency log, the longest latencies and their frequency distribution on request."""
    _check_modes(paths, mi, metadata, as_csv)
    if metadata:
        _emit_json(lami.metadata("sched"))
        return None
    names = _strs(procnames)
    b, e, t_, c_ = parse_time_ns(begin), parse_time_ns(end), _ints(tids, "--tid"), _ints(cpus, "--cpu")
    lo = None if min_us is None else int(min_us * 1000)
    hi = None if max_us is None else int(max_us * 1000)
    results: list[SchedResult]
    results, fault = _run(paths, _periodic(
        period, lambda ts: sched_latencies(ts, b, e, t_, c_, partial=True),
        lambda ts, p: sched_periods(ts, p, b, e, t_, c_, partial=True)))
    for r in results:
        r.per_tid = _by_comm(r.per_tid, names)
        r.latencies = filter_latencies(_by_comm(r.latencies, names), lo, hi)
    if mi:
        tables = []
        for r in results:
            tables.extend(lami.sched_tables(r, top))
            if show_log:
                tables.append(lami.sched_event_table(r, "log", r.latencies))
            if top_latencies:
                tables.append(lami.sched_event_table(r, "top", top_latencies_of(r, top_latencies)))
            if freq:
                tables.append(lami.sched_freq_table(r, latency_histogram(r.latencies, freq_resolution, lo, hi)))
        _emit_json(lami.document(tables))
        return fault
    if as_csv:
        _csv_periods(results, lambda r: _head(r.per_tid, top), period is not None)
        return fault
    out = _console()
    for r in results:
        _print_sched(out, r, top)
        if show_log:
            _print_latencies(out, "Scheduling latency log", r.latencies)
        if top_latencies:
            _print_latencies(out, f"Top {top_latencies} scheduling latencies", top_latencies_of(r, top_latencies))
        if freq:
            _print_freq(out, latency_histogram(r.latencies, freq_resolution, lo, hi))
    return fault


def top_latencies_of(r: SchedResult, n: int) -> Table:
    return top_latencies(r.latencies, n)


def _print_latencies(out: Console, title: str, lat: Table) -> None:
    t = _rich_table(f"{title} (us)",
                    ("Wakeup", "Switch", "Latency", "Priority", "CPU", "Wakee", "Waker TID"),
                    left=("Wakeup", "Switch", "Wakee"))
    for x in lat.rows():
        t.add_row(_fmt_time(int(x["wakeup_ts"])), _fmt_time(int(x["switch_ts"])), _us(x["latency_ns"]),
                  str(x["prio"]), str(x["cpu"]), f"{x['comm']} ({x['tid']})", str(x["waker_tid"]))
    out.print(t)


def _print_freq(out: Console, hist: Table,
                title: str = "Scheduling latency frequency distribution (us)") -> None:
    counts = hist["count"]
    peak = int(counts.max()) if counts.size else 0
    t = RichTable(title=title)
    for col in ("Latency", "Count", ""):
        t.add_column(col, justify="right" if col == "Count" else "left")
    for x in hist.rows():
        bar = "#" * (0 if peak == 0 else round(40 * int(x["count"]) / peak))
        t.add_row(f"{_us(x['lo_ns'])} - {_us(x['hi_ns'])}", str(x["count"]), bar)
    out.print(t)


def _print_sched(out: Console, r: SchedResult, top: int | None) -> None:
    _header(out, r.begin, r.end)
    t = _rich_table("Scheduling latency stats (per-TID) (us)",
                    ("Process", "TID", "Count", "Min", "Avg", "Max", "Stdev", "Priorities"),
                    left=("Process", "Priorities"))
    for x in _head(r.per_tid, top).rows():
        t.add_row(str(x["comm"]), str(x["tid"]), str(x["count"]), _us(x["min_ns"]), _us(x["avg_ns"]),
                  _us(x["max_ns"]), _us(x["stdev_ns"]), str(x["prios"]))
    out.print(t)


# ------------------------------------------------------------------ syscalls

@click.command("syscalls")
@_common()
@_reports_fault
def syscalls_cmd(paths: tuple[str, ...], begin: str | None, end: str | None, tids: tuple[str, ...],
                 procnames: tuple[str, ...], cpus: tuple[str, ...], top: int | None, mi: bool,
                 metadata: bool, as_csv: bool, period: str | None) -> DecodeError | None:
    """System call counts, durations and return values per thread (lttng-syscallstats).

    --top N keeps the N threads that made the most calls.
    """
    _check_modes(paths, mi, metadata, as_csv)
    if metadata:
        _emit_json(lami.metadata("syscalls"))
        return None
    b, e, t_, c_ = parse_time_ns(begin), parse_time_ns(end), _ints(tids, "--tid"), _ints(cpus, "--cpu")
    names = _strs(procnames)
    results: list[SyscallsResult]
    results, fault = _run(paths, _periodic(
        period, lambda ts: syscall_stats(ts, b, e, t_, c_, names, partial=True),
        lambda ts, p: syscalls_periods(ts, p, b, e, t_, c_, names, partial=True)))
    if mi:
        _emit_json(lami.document([t for r in results for t in lami.syscalls_tables(r, top)]))
        return fault

    def rows_of(r: SyscallsResult) -> Table:
        return r.per_syscall.take(np.isin(r.per_syscall["tid"], _head(r.per_tid, top)["tid"]))

    if as_csv:
        _csv_periods(results, rows_of, period is not None)
        return fault
    out = _console()
    for r in results:
        _print_syscalls(out, r, _head(r.per_tid, top), rows_of(r))
    return fault


def _print_syscalls(out: Console, r: SyscallsResult, per_tid: Table, rows: Table) -> None:
    _header(out, r.begin, r.end)
    if rows.nrows > _RICH_MAX_ROWS:
        _syscalls_plain(rows, per_tid)
        return
    t = _rich_table("Per-TID syscalls statistics (us)",
                    ("Thread", "Syscall", "Count", "Min", "Avg", "Max", "Stdev", "Return values"),
                    left=("Thread", "Syscall", "Return values"))
    label = {int(x["tid"]): lami.thread_label(x["comm"], x["pid"], x["tid"]) for x in per_tid.rows()}
    counts = dict(zip(per_tid["tid"].tolist(), per_tid["count"].tolist(), strict=True))
    prev: int | None = None
    cols = {k: rows[k].tolist() for k in rows.columns}
    n = rows.nrows
    for i in range(n):
        tid = cols["tid"][i]
        last = i + 1 == n or cols["tid"][i + 1] != tid
        t.add_row(label[tid] if tid != prev else "", str(cols["syscall"][i]), str(cols["count"][i]),
                  _us(cols["min_ns"][i]), _us(cols["avg_ns"][i]), _us(cols["max_ns"][i]),
                  _us(cols["stdev_ns"][i]), str(cols["returns"][i]))
        if last:
            t.add_row("Total:", "", str(counts[tid]), "", "", "", "", "", end_section=True)
        prev = tid
    out.print(t)
    out.print(f"Total syscalls: {int(per_tid['count'].sum())}")


#: above this many rows, tables are printed as plain aligned text (rich takes ~1 ms a row)
_RICH_MAX_ROWS = 2000


def _syscalls_plain(rows: Table, per_tid: Table) -> None:
    """lttng-syscallstats' text layout, for outputs too long for rich tables."""
    fmt = "{:<38} {:>14} {:>14} {:>14} {:>12} {:>10}  {:<14}"
    cols = {k: rows[k].tolist() for k in rows.columns}
    lines = ["Per-TID syscalls statistics (usec)"]
    i, n = 0, rows.nrows
    for x in per_tid.rows():
        lines.append(fmt.format(lami.thread_label(x["comm"], x["pid"], x["tid"]), "Count", "Min",
                                "Average", "Max", "Stdev", "Return values"))
        while i < n and cols["tid"][i] == x["tid"]:
            lines.append(fmt.format(" - " + str(cols["syscall"][i]), cols["count"][i], _us(cols["min_ns"][i]),
                                    _us(cols["avg_ns"][i]), _us(cols["max_ns"][i]),
                                    _us(cols["stdev_ns"][i]), str(cols["returns"][i])))
            i += 1
        lines.append(fmt.format("Total:", x["count"], "", "", "", "", ""))
        lines.append("-" * 113)
    lines.append(f"\nTotal syscalls: {int(per_tid['count'].sum())}")
    sys.stdout.write("\n".join(lines) + "\n")


# ------------------------------------------------------------------ irq

def _irq_table(r: IrqResult) -> Table:
    """Hard then soft IRQ rows in one table (the CSV of the irq command)."""
    h, s = r.hard, r.soft
    return Table({
        "kind": np.array(["hard"] * h.nrows + ["soft"] * s.nrows, object),
        "nr": np.concatenate([h["irq"], s["vec"]]).astype(np.int64),
        "name": np.concatenate([h["name"], s["name"]]).astype(object),
        **{k: np.concatenate([h[k], s[k]]) for k in ("count", "min_ns", "avg_ns", "max_ns", "stdev_ns")},
        "raise_count": np.concatenate([np.zeros(h.nrows, np.int64), s["raise_count"]]),
        **{k: np.concatenate([np.full(h.nrows, np.nan), s[k].astype(float)])
           for k in ("min_latency_ns", "avg_latency_ns", "max_latency_ns", "stdev_latency_ns")},
    })


@click.command("irq")
@_common(with_threads=False)
@click.option("--irq", "irqs", multiple=True, help="Only these hard IRQ numbers (repeatable, or a comma list).")
@click.option("--softirq", "softirqs", multiple=True, help="Only these softirq vectors (repeatable, or a comma list).")
@click.option("--freq", is_flag=True, help="Also print each interrupt's duration frequency distribution (lttng-irqfreq).")
@click.option("--freq-resolution", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Number of buckets of --freq.")
@_reports_fault
def irq_cmd(paths: tuple[str, ...], begin: str | None, end: str | None, cpus: tuple[str, ...],
            top: int | None, mi: bool, metadata: bool, as_csv: bool, period: str | None,
            irqs: tuple[str, ...], softirqs: tuple[str, ...], freq: bool,
            freq_resolution: int) -> DecodeError | None:
    """Hard and soft interrupt counts, durations and softirq raise latencies (lttng-irqstats)."""
    _check_modes(paths, mi, metadata, as_csv)
    if metadata:
        _emit_json(lami.metadata("irq"))
        return None
    b, e, c_ = parse_time_ns(begin), parse_time_ns(end), _ints(cpus, "--cpu")
    q, sq = _ints(irqs, "--irq"), _ints(softirqs, "--softirq")
    results: list[IrqResult]
    results, fault = _run(paths, _periodic(
        period, lambda ts: irq_stats(ts, b, e, c_, q, sq, partial=True),
        lambda ts, p: irq_periods(ts, p, b, e, c_, q, sq, partial=True)))
    if top is not None:
        for r in results:
            r.hard = r.hard.take(np.argsort(-r.hard["count"], kind="stable")[:top])
            r.soft = r.soft.take(np.argsort(-r.soft["count"], kind="stable")[:top])
    if mi:
        tables = []
        for r in results:
            tables.extend(lami.irq_tables(r))
            if freq:
                tables.extend(lami.irq_freq_table(r, *h) for h in irq_histograms(r, freq_resolution))
        _emit_json(lami.document(tables))
        return fault
    if as_csv:
        _csv_periods(results, _irq_table, period is not None)
        return fault
    out = _console()
    for r in results:
        _print_irq(out, r)
        if freq:
            for hard, nr, name, h in irq_histograms(r, freq_resolution):
                _print_freq(out, h, f"{'IRQ' if hard else 'Softirq'} {nr} ({name}) duration frequency distribution (us)")
    return fault


def _print_irq(out: Console, r: IrqResult) -> None:
    _header(out, r.begin, r.end)
    if r.hard.nrows:
        t = _rich_table("Hard IRQ duration (us)",
                        ("IRQ", "Name", "Count", "Min", "Avg", "Max", "Stdev"),
                        left=("Name",))
        for x in r.hard.rows():
            t.add_row(str(x["irq"]), str(x["name"]), str(x["count"]), _us(x["min_ns"]), _us(x["avg_ns"]),
                      _us(x["max_ns"]), _us(x["stdev_ns"]))
        out.print(t)
    if r.soft.nrows:
        t = _rich_table("Soft IRQ duration and raise latency (us)",
                        ("Vec", "Name", "Count", "Min", "Avg", "Max", "Stdev", "Raises", "Lat min",
                         "Lat avg", "Lat max", "Lat stdev"),
                        left=("Name",))
        for x in r.soft.rows():
            t.add_row(str(x["vec"]), str(x["name"]), str(x["count"]), _us(x["min_ns"]), _us(x["avg_ns"]),
                      _us(x["max_ns"]), _us(x["stdev_ns"]), str(x["raise_count"]),
                      _us(x["min_latency_ns"]), _us(x["avg_latency_ns"]), _us(x["max_latency_ns"]),
                      _us(x["stdev_latency_ns"]))
        out.print(t)


# ------------------------------------------------------------------ io

def _size(n: Any) -> str:
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{int(v)} B" if unit == "B" else f"{v:.2f} {unit}"
        v /= 1024
    return f"{v:.2f} GiB"  # pragma: no cover - loop returns


@click.command("io")
@_common(with_period=False)
@_reports_fault
def io_cmd(paths: tuple[str, ...], begin: str | None, end: str | None, tids: tuple[str, ...],
           procnames: tuple[str, ...], cpus: tuple[str, ...], top: int | None, mi: bool,
           metadata: bool, as_csv: bool) -> DecodeError | None:
    """I/O system call latency and bytes per process and fd, block request latency per disk
    (lttng-iolatencystats, lttng-iousagetop). --csv gives the per-process table."""
    _check_modes(paths, mi, metadata, as_csv)
    if metadata:
        _emit_json(lami.metadata("io"))
        return None
    b, e, t_, c_ = parse_time_ns(begin), parse_time_ns(end), _ints(tids, "--tid"), _ints(cpus, "--cpu")
    names = _strs(procnames)
    r: IoResult = _run(paths, lambda ts: io_stats(ts, b, e, t_, c_, names, partial=True))
    n = 10 if top is None else top
    if mi:
        _emit_json(lami.document(lami.io_tables(r, n)))
        return r.fault
    if as_csv:
        lami.table_to_csv(_head(r.per_process, top), sys.stdout)
        return r.fault
    out = _console()
    _header(out, r.begin, r.end)
    t = _rich_table("Per-process I/O (system calls)",
                    ("Process", "PID", "Read", "Write", "Reads", "Writes"),
                    left=("Process",))
    for x in _head(r.per_process, n).rows():
        t.add_row(str(x["comm"]), str(x["pid"]), _size(x["read_bytes"]), _size(x["write_bytes"]),
                  str(x["read_count"]), str(x["write_count"]))
    out.print(t)
    f = _rich_table("Per-fd I/O",
                    ("Process", "PID", "FD", "Read", "Write", "Calls"),
                    left=("Process",))
    for x in _head(r.per_fd, n).rows():
        f.add_row(str(x["comm"]), str(x["pid"]), str(x["fd"]), _size(x["read_bytes"]),
                  _size(x["write_bytes"]), str(x["count"]))
    out.print(f)
    if r.per_file is not None and r.per_file.nrows:
        pf = _rich_table("Per-file I/O", ("File", "Read", "Write", "Reads", "Writes", "FDs (pid:fd)"),
                         left=("File", "FDs (pid:fd)"))
        for x in _head(r.per_file, n).rows():
            pf.add_row(str(x["path"]), _size(x["read_bytes"]), _size(x["write_bytes"]), str(x["read_count"]),
                       str(x["write_count"]), str(x["fds"]))
        out.print(pf)
    if r.calls.nrows:
        tl = _rich_table("Top I/O system call latencies (us)",
                         ("Begin", "Syscall", "Latency", "Process", "TID", "FD", "File", "Bytes"),
                         left=("Begin", "Syscall", "Process", "File"))
        for x in top_io_calls(r, n).rows():
            tl.add_row(_fmt_time(int(x["entry_ts"])), str(x["syscall"]), _us(x["duration_ns"]),
                       r.threads.comm_of(int(x["tid"])), str(x["tid"]), str(x["fd"]), str(x["path"]),
                       _size(x["bytes"]))
        out.print(tl)
    lt = _rich_table("System call latency statistics (us)",
                     ("Syscall", "Count", "Min", "Avg", "Max", "Stdev"),
                     left=("Syscall",))
    for x in r.per_syscall.rows():
        lt.add_row(str(x["syscall"]), str(x["count"]), _us(x["min_ns"]), _us(x["avg_ns"]), _us(x["max_ns"]),
                   _us(x["stdev_ns"]))
    out.print(lt)
    if r.disk.nrows:
        d = _rich_table("Disk request latency statistics (us)",
                        ("Disk", "Requests", "Sectors", "Min", "Avg", "Max", "Stdev"),
                        left=("Disk",))
        for x in r.disk.rows():
            d.add_row(str(x["disk"]), str(x["count"]), str(x["sectors"]), _us(x["min_ns"]), _us(x["avg_ns"]),
                      _us(x["max_ns"]), _us(x["stdev_ns"]))
        out.print(d)
    return r.fault


# ------------------------------------------------------------------ mem

@click.command("mem")
@_common(with_period=False)
@_reports_fault
def mem_cmd(paths: tuple[str, ...], begin: str | None, end: str | None, tids: tuple[str, ...],
            procnames: tuple[str, ...], cpus: tuple[str, ...], top: int | None, mi: bool,
            metadata: bool, as_csv: bool) -> DecodeError | None:
    """Pages allocated and freed per thread (lttng-memtop)."""
    _check_modes(paths, mi, metadata, as_csv)
    if metadata:
        _emit_json(lami.metadata("mem"))
        return None
    b, e, t_, c_ = parse_time_ns(begin), parse_time_ns(end), _ints(tids, "--tid"), _ints(cpus, "--cpu")
    names = _strs(procnames)
    r: MemResult = _run(paths, lambda ts: mem_stats(ts, b, e, t_, c_, names, partial=True))
    n = 10 if top is None else top
    if mi:
        _emit_json(lami.document(lami.mem_tables(r, n)))
        return r.fault
    if as_csv:
        lami.table_to_csv(_head(r.per_tid, top), sys.stdout)
        return r.fault
    out = _console()
    _header(out, r.begin, r.end)
    t = _rich_table("Per-TID memory allocations and frees (pages)",
                    ("Process", "TID", "PID", "Allocated", "Freed"),
                    left=("Process",))
    for x in _head(r.per_tid, n).rows():
        t.add_row(str(x["comm"]), str(x["tid"]), "?" if x["pid"] < 0 else str(x["pid"]), str(x["allocated"]),
                  str(x["freed"]))
    out.print(t)
    out.print(f"Total memory usage: {r.total_allocated} pages allocated, {r.total_freed} pages freed")
    return r.fault
