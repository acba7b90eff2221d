"""``tracewatch live``: list the sessions a relay daemon (lttng-relayd) serves live, or
follow one and print analyses per period as each period ends (``--analysis``).

With ``net://HOST[:PORT]/host/HOSTNAME/SESSION --analysis count,cputop --period 1s`` the
session is followed (:class:`~tracewatch.live.source.LiveTraceSet`) and each window's
results (:mod:`tracewatch.analyses.periodic`) are printed, flushed, as soon as every stream
has passed the window's end: by an event, by an inactivity beacon of relayd (a quiet session
closes its windows one live timer period late at most) or by its end (``--mi``: one LAMI 1.0
document per line and window); the last, partial window when the session is destroyed, then
exit 0.

``--graphite HOST[:PORT]`` and/or ``--prometheus [HOST:]PORT`` also export each window's
metrics (:mod:`tracewatch.export`, through :class:`~.export.Sinks`) under the URL's host name,
with the live lag (wall clock at export minus the window's end); ``--quiet`` prints nothing
but warnings then.
"""

from __future__ import annotations

import json
import sys
import time

import click
import numpy as np

from ..analyses.periodic import ANALYSES, PeriodResult, stream_periods
from ..errors import TracewatchError
from ..live.client import LiveClient, LiveError
from ..live.protocol import ProtocolError, SessionInfo
from ..live.source import LiveTraceSet
from ..live.url import LiveUrl, parse_live_url
from ..output import lami
from .analyses import (
    _console,
    _fmt_time,
    _head,
    _print_cputop,
    _print_irq,
    _print_sched,
    _print_syscalls,
)
from .export import Sinks, parse_analyses, sink_options
from .timeparse import parse_duration_ns

_HEADERS = ("HOST", "SESSION", "LIVE TIMER", "STREAMS", "VIEWERS", "URL")


def _timer(us: int) -> str:
    return f"{us / 1e6:g} s" if us else "-"


def session_rows(url: LiveUrl, sessions: list[SessionInfo]) -> list[tuple[str, ...]]:
    """One row of text cells per session (the order of ``_HEADERS``)."""
    base = LiveUrl(url.host, url.port)
    return [(s.hostname, s.name, _timer(s.live_timer_us), str(s.streams), str(s.clients),
             f"{base}/host/{s.hostname}/{s.name}") for s in sessions]


def format_table(rows: list[tuple[str, ...]]) -> list[str]:
    """Plain text columns aligned on the widest cell (numbers right-aligned)."""
    table = [_HEADERS, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(_HEADERS))]
    right = {2, 3, 4}
    out = []
    for r in table:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
    return out


@click.command()
@click.argument("url", metavar="net://HOST[:PORT][/host/HOSTNAME/SESSION]")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Network timeout (seconds).")
@click.option("--analysis", "analysis",
              help=f"Follow the session of URL and print these analyses per period "
                   f"(comma list of {', '.join(ANALYSES)}).")
@click.option("--period", default="1s", show_default=True,
              help="With --analysis: window duration (1s, 500ms...), aligned on the first event.")
@click.option("--mi", is_flag=True, help="With --analysis: one LAMI 1.0 JSON document per line and period.")
@sink_options
@click.option("--quiet", "-q", is_flag=True,
              help="With --graphite/--prometheus: print no per-period results (warnings only).")
def live(url: str, timeout: float, analysis: str | None, period: str, mi: bool, graphite: str | None,
         prometheus: str | None, top: int, quiet: bool) -> None:
    """List the live sessions of the relay daemon at URL: host, name, live timer, streams,
    viewers, and the URL to follow each with ``tracewatch dump``.

    With --analysis and a session URL: follow that session and print each period's results
    as soon as the period is over, until the session is destroyed. With --graphite and/or
    --prometheus, also export each period's metrics (per thread: the --top first, plus
    'other') to Graphite (pushed) and/or an HTTP endpoint for Prometheus (latest period)."""
    try:
        u = parse_live_url(url)
    except ValueError as e:
        raise TracewatchError(str(e)) from None
    exporting = graphite is not None or prometheus is not None
    if exporting and analysis is None:
        raise click.UsageError("--graphite/--prometheus export the analyses' results: give --analysis")
    if quiet and not exporting:
        raise click.UsageError("--quiet needs --graphite or --prometheus")
    if analysis is not None:
        if not u.names_session:
            raise click.UsageError("--analysis needs a session URL: net://HOST[:PORT]/host/HOSTNAME/SESSION")
        names = parse_analyses(analysis)
        ns = parse_duration_ns(period)
        assert ns is not None
        sinks = Sinks(graphite, prometheus, ns, top) if exporting else None
        try:
            follow(url, names, ns, mi, timeout, sinks=sinks, host=u.hostname or "unknown", quiet=quiet)
        finally:
            if sinks is not None:
                sinks.close()
        return
    try:
        with LiveClient(u.host, u.port, timeout) as client:
            sessions = client.list_sessions()
    except (LiveError, ProtocolError, OSError) as e:
        raise TracewatchError(f"{u}: {e}") from None
    if u.names_session:
        sessions = [s for s in sessions if s.hostname == u.hostname and s.name == u.session_name]
    sessions.sort(key=lambda s: (s.hostname, s.name, s.id))
    if not sessions:
        click.echo(f"no live session on {LiveUrl(u.host, u.port)}")
        return
    for line in format_table(session_rows(u, sessions)):
        click.echo(line)


def follow(url: str, analyses: list[str], period: int, mi: bool, timeout: float = 10.0,
           sinks: Sinks | None = None, host: str = "unknown", quiet: bool = False) -> None:
    """Follow a live session; print each period's results as it ends (flushed) and export
    its metrics to ``sinks``."""
    ts = LiveTraceSet(url, on_warning=lambda m: click.echo(f"tracewatch: warning: {m}", err=True),
                      timeout=timeout)
    try:
        for r in stream_periods(ts, period, analyses):
            if sinks is not None:
                sinks.window(r, host, lag_s=(time.time_ns() - r.end) / 1e9)
            if not quiet:
                _print_period(r, mi)
    finally:
        ts.close()


def _print_period(p: PeriodResult, mi: bool) -> None:
    if mi:
        tables: list[lami.Obj] = []
        for name, r in p.results.items():
            if name == "count":
                tables += lami.count_tables(r, p.total_discarded)
            elif name == "cputop":
                tables += lami.cputop_tables(r, 10)
            elif name == "sched":
                tables += lami.sched_tables(r)
            elif name == "syscalls":
                tables += lami.syscalls_tables(r)
            elif name == "irq":
                tables += lami.irq_tables(r)
        click.echo(json.dumps(lami.document(tables)))  # click.echo flushes
        return
    out = _console()
    late = f", {p.late} late events left out" if p.late else ""
    out.print(f"Period {p.index}: [{_fmt_time(p.begin)}, {_fmt_time(p.end)}): {p.n_events} events, "
              f"{p.total_discarded} discarded by the tracer{late}")
    for name, r in p.results.items():
        if name == "count":
            for x in r.per_name.rows():
                out.print(f"{x['count']:>10}  {x['name']}")
        elif name == "cputop":
            _print_cputop(out, r, 10)
        elif name == "sched":
            _print_sched(out, r, None)
        elif name == "syscalls":
            rows = r.per_syscall.take(np.isin(r.per_syscall["tid"], r.per_tid["tid"]))
            _print_syscalls(out, r, _head(r.per_tid, None), rows)
        elif name == "irq":
            _print_irq(out, r)
    sys.stdout.flush()
