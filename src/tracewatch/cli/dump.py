"""``tracewatch dump``: print events as text, one per line, like babeltrace2."""

from __future__ import annotations

import sys

import click

from .. import open as open_traces
from ..live.source import LiveTraceSet
from ..output.text import TextFormatter, TextOptions
from .syncopt import apply_sync, sync_option, sync_requested
from .timeparse import parse_time_ns


def _warn(msg: str) -> None:
    click.echo(f"tracewatch: warning: {msg}", err=True)


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH|URL...")
@click.option("--names", help="Only these events (comma-separated names).")
@click.option("--begin", help="Start time: SECONDS[.NS] since the epoch, or ns.")
@click.option("--end", help="End time (inclusive), same formats as --begin.")
@click.option("--count", is_flag=True, help="Print only the number of events.")
@click.option("--clock-seconds", is_flag=True, help="Print timestamps as SECONDS.NANOSECONDS.")
@click.option("--clock-gmt", is_flag=True, help="Print times in UTC, not local time.")
@click.option("--clock-date", is_flag=True, help="Print the date too.")
@click.option("--no-delta", is_flag=True, help="Do not print the time since the previous event.")
@sync_option
def dump(paths: tuple[str, ...], names: str | None, begin: str | None, end: str | None, count: bool,
         clock_seconds: bool, clock_gmt: bool, clock_date: bool, no_delta: bool) -> None:
    """Print the events of the traces under PATHS in time order, one per line.

    A ``net://HOST[:PORT]/host/HOSTNAME/SESSION`` URL follows an LTTng live session:
    events are printed as they arrive, until the session is destroyed.

    The format is babeltrace2's text format. On a corrupt or truncated trace every event
    before the fault is printed, then a one-line error (file, byte offset, reason) and the
    exit status is 1.
    """
    ts = open_traces(*paths, on_warning=_warn)
    if not isinstance(ts, LiveTraceSet):
        apply_sync(ts)  # when --sync was given
    elif sync_requested():
        raise click.UsageError("--sync applies to recorded traces, not live sessions")
    wanted = [n for n in names.split(",") if n] if names else None
    b, e = parse_time_ns(begin), parse_time_ns(end)
    if count:
        n = 0
        try:
            for batch in ts.batches(names=wanted, begin=b, end=e):
                n += len(batch)
        finally:
            click.echo(n)
        return
    fmt = TextFormatter(TextOptions(clock_seconds=clock_seconds, clock_gmt=clock_gmt,
                                    clock_date=clock_date, delta=not no_delta))
    out = sys.stdout
    write = out.write
    live = isinstance(ts, LiveTraceSet)  # events as they arrive: flush every batch
    try:
        for batch in ts.batches(names=wanted, begin=b, end=e):
            lines = [fmt.format(ev) for ev in batch.iter_events()]
            write("\n".join(lines))
            write("\n")
            if live:
                out.flush()
    finally:
        out.flush()
        ts.close()
