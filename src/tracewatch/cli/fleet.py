"""The ``fleet`` command: the analyses of many hosts' traces in parallel, one row per host.

``tracewatch fleet ROOT`` finds the hosts under ROOT (:func:`tracewatch.fleet.discover`),
analyses each (one task per host: on the Dask scheduler of ``--scheduler``, on a local
cluster of ``--workers N`` processes, or one host after the other in this process) and prints
the summary table (rich), a progress bar on stderr (a terminal) advancing as hosts complete.
``--csv DIR`` / ``--parquet DIR`` also write ``summary`` and every per-host table
concatenated (a ``host`` column first) as DIR/NAME.csv / .parquet; ``--mi`` prints the
summary as one LAMI 1.0 result table instead of text.

A host whose traces fail (corrupt, truncated, missing events) has its one-line error in the
``error`` column (the results over the events read before a fault are kept, as the analysis
commands print them); the others complete. Then one line on stderr and exit status 1.
Command errors (no trace under ROOT, a scheduler that cannot be reached, Dask missing) are
:class:`~tracewatch.errors.TracewatchError`: one line, exit 1 (see :mod:`.main`).

Imports :mod:`tracewatch.fleet`, :mod:`tracewatch.output` and click/rich; Dask only with
``--scheduler``/``--workers``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import TracewatchError
from ..fleet import ANALYSES, FleetResult, HostResult, analyze_fleet, discover, local_cluster
from ..output import lami
from .analyses import _console, _fmt_time, _rich_table
from .timeparse import parse_duration_ns, parse_time_ns

__all__ = ["fleet"]

#: how long to try reaching a --scheduler
CONNECT_TIMEOUT = "10s"


def _analyses(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in ANALYSES]
    if bad or not names:
        raise click.BadParameter(f"unknown analysis {', '.join(bad) or '(none)'}; choose among "
                                 f"{', '.join(ANALYSES)}", param_hint="--analysis")
    return list(dict.fromkeys(names))


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """The Dask client to use (None: run in this process)."""
    if scheduler is None and workers is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise TracewatchError("--scheduler/--workers need dask.distributed: "
                              "pip install 'dask[distributed]'") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as e:
            raise TracewatchError(f"cannot reach the Dask scheduler {scheduler}: "
                                  f"{' '.join(str(e).split())}") from None
        with client:
            yield client
        return
    with local_cluster(workers or 1) as cluster, Client(cluster) as client:
        yield client


def _num(v: Any, fmt: str, scale: float = 1.0) -> str:
    if v is None:
        return ""
    f = float(v)
    return "" if math.isnan(f) else format(f * scale, fmt)


_HEADS: dict[str, tuple[str, str, float]] = {
    # column -> (title, format, scale)
    "events": ("Events", ",.0f", 1.0),
    "cpu_usage": ("CPU usage (%)", ".2f", 100.0),
    "top_task_usage": ("Top task (%)", ".2f", 100.0),
    "sched_wakeups": ("Wakeups", ",.0f", 1.0),
    "sched_p99_ns": ("Sched p99 (us)", ".3f", 1e-3),
    "sched_max_ns": ("Sched max (us)", ".3f", 1e-3),
    "syscalls_per_s": ("Syscalls/s", ",.1f", 1.0),
    "irq_ns": ("IRQ time (ms)", ".3f", 1e-6),
}


def _print(out: Console, res: FleetResult, periodic: bool) -> None:
    s = res.summary
    cols = ["host"] + (["period_begin"] if periodic else []) + \
        [c for c in ("events", "cpu_usage", "top_task", "top_task_usage", "sched_wakeups", "sched_p99_ns",
                     "sched_max_ns", "syscalls_per_s", "irq_ns") if c in s.columns] + ["error"]
    titles = []
    for c in cols:
        if c in _HEADS:
            titles.append(_HEADS[c][0])
        else:
            titles.append({"host": "Host", "period_begin": "Window", "top_task": "Top task",
                           "error": "Error"}[c])
    t = _rich_table(f"Fleet: {len(res.hosts)} hosts", tuple(titles), left=("Host", "Window", "Top task", "Error"))
    for row in s.to_dict("records"):
        cells = []
        for c in cols:
            v = row.get(c)
            if c in _HEADS:
                cells.append(_num(v, _HEADS[c][1], _HEADS[c][2]))
            elif c == "period_begin":
                cells.append("" if v is None or v != v else _fmt_time(int(v)))
            elif c == "top_task":
                tid = row.get("top_tid")
                cells.append("" if not isinstance(v, str) else f"{v} ({int(tid)})")
            else:
                cells.append("" if not isinstance(v, str) else v)
        t.add_row(*cells)
    out.print(t)


def _lami(res: FleetResult) -> dict[str, Any]:
    """The summary as one LAMI 1.0 result table (its class given inline)."""
    s = res.summary
    spec: list[tuple[str, str, str, str | None]] = [("host", "Host", "string", None),
                                                    ("events", "Event count", "number", "events")]
    for col, title, cls, unit in (
            ("cpu_usage", "CPU usage", "ratio", None), ("top_task", "Top task", "process", None),
            ("top_task_usage", "Top task CPU usage", "ratio", None),
            ("sched_wakeups", "Scheduling latency count", "number", "sched switches"),
            ("sched_p99_ns", "Scheduling latency p99", "duration", None),
            ("sched_max_ns", "Maximum scheduling latency", "duration", None),
            ("syscalls", "System call count", "number", "calls"),
            ("syscalls_per_s", "System call rate", "number", "calls/s"),
            ("irqs", "Interrupt count", "number", "interrupts"),
            ("irq_ns", "Interrupt duration", "duration", None)):
        if col in s.columns:
            spec.append((col, title, cls, unit))
    spec.append(("error", "Error", "string", None))
    if "period_begin" in s.columns:
        spec.insert(1, ("period_begin", "Window start", "timestamp", None))

    def value(row: dict[str, Any], col: str, cls: str) -> dict[str, Any]:
        v = row.get(col)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return lami.unknown()
        if cls == "process":
            return lami.process(str(v), None, int(row["top_tid"]))
        if cls == "string":
            return lami.string(str(v))
        if cls == "ratio":
            return lami.ratio(float(v))
        if cls == "timestamp":
            return lami.timestamp(int(v))
        if cls == "duration":
            return lami.duration(int(v) if float(v).is_integer() else float(v))
        return lami.number(v)

    rows = s.to_dict("records")
    data = [[value(r, col, cls) for col, _, cls, _ in spec] for r in rows]
    begins = [int(r["begin"]) for r in rows if r.get("begin") == r.get("begin") and r.get("events")]
    ends = [int(r["end"]) for r in rows if r.get("end") == r.get("end") and r.get("events")]
    klass = {"title": "Fleet summary (per host)",
             "column-descriptions": [{"title": t, "class": c, **({"unit": u} if u else {})}
                                     for _, t, c, u in spec]}
    return lami.document([{"class": klass, "time-range": lami.time_range(min(begins, default=0), max(ends, default=0)),
                           "data": data}])


def _write(res: FleetResult, directory: str, fmt: str) -> None:
    os.makedirs(directory, exist_ok=True)
    frames = {"summary": res.summary, **res.tables}
    for name, df in frames.items():
        path = os.path.join(directory, f"{name}.{fmt}")
        try:
            if fmt == "csv":
                df.to_csv(path, index=False)
            else:
                df.to_parquet(path, index=False)
        except ImportError as e:
            raise TracewatchError(f"--parquet needs pyarrow: pip install pyarrow ({e})") from None
        except OSError as e:
            raise TracewatchError(f"{path}: {e.strerror or e}") from None


@click.command("fleet")
@click.argument("root", metavar="ROOT")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run on this Dask scheduler (its workers "
              "must see the traces at the same paths).")
@click.option("--workers", type=click.IntRange(min=1), help="Run on a local Dask cluster of N worker processes.")
@click.option("--analysis", "analysis", default=",".join(ANALYSES), show_default=True,
              help=f"Analyses to run (comma list of {', '.join(ANALYSES)}).")
@click.option("--begin", help="Start time: SECONDS[.NS] since the epoch, or ns.")
@click.option("--end", help="End time (inclusive), same formats as --begin.")
@click.option("--period", help="One summary row per host and window of this duration (1s, 500ms...).")
@click.option("--csv", "csv_dir", metavar="DIR", help="Write the summary and every table as DIR/NAME.csv.")
@click.option("--parquet", "parquet_dir", metavar="DIR", help="Write them as DIR/NAME.parquet.")
@click.option("--detail", is_flag=True, help="With --csv/--parquet: also the tables of one row per event "
              "(sched.latencies, syscalls.calls, irq.log).")
@click.option("--mi", is_flag=True, help="LAMI 1.0 JSON output of the summary.")
def fleet(root: str, scheduler: str | None, workers: int | None, analysis: str, begin: str | None,
          end: str | None, period: str | None, csv_dir: str | None, parquet_dir: str | None,
          detail: bool, mi: bool) -> None:
    """Per-host analyses of every host's traces under ROOT (one directory per host), in
    parallel on a Dask cluster, summed up in one row per host (CPU usage, top task,
    scheduling latency p99/max, system call rate, IRQ time)."""
    if scheduler is not None and workers is not None:
        raise click.UsageError("--scheduler and --workers are exclusive")
    if csv_dir is not None and parquet_dir is not None:
        raise click.UsageError("--csv and --parquet are exclusive")
    names = _analyses(analysis)
    b, e, p = parse_time_ns(begin), parse_time_ns(end), parse_duration_ns(period)
    hosts = discover(root)
    err = Console(stderr=True)
    progress = None
    if err.is_terminal:
        progress = Progress(TextColumn("hosts"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                            TimeElapsedColumn(), console=err, transient=True)
    task = progress.add_task("", total=len(hosts)) if progress is not None else None

    def done(r: HostResult) -> None:
        if progress is not None and task is not None:
            progress.update(task, advance=1, description=r.host.host)

    with _client(scheduler, workers) as client:
        if progress is not None:
            progress.start()
        try:
            res = analyze_fleet(hosts, names, client, b, e, p, detail=detail, on_host=done)
        finally:
            if progress is not None:
                progress.stop()
    for r in res.hosts:
        for w in r.warnings:
            click.echo(f"tracewatch: warning: {r.host.host}: {w}", err=True)
    if csv_dir is not None:
        _write(res, csv_dir, "csv")
    if parquet_dir is not None:
        _write(res, parquet_dir, "parquet")
    if mi:
        click.echo(json.dumps(_lami(res)))
    else:
        _print(_console(), res, p is not None)
    failed = res.errors
    if failed:
        host, line = next(iter(failed.items()))
        more = f" (and {len(failed) - 1} more, see the error column)" if len(failed) > 1 else ""
        raise TracewatchError(f"{len(failed)} of {len(res.hosts)} hosts failed: {host}: {line}{more}")
