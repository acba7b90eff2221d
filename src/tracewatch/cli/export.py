"""``tracewatch export``: replay a recorded trace's windows into Graphite (backfill), and the
Graphite/Prometheus plumbing that ``tracewatch live`` shares.

``tracewatch export PATH... --period 1s --graphite HOST[:PORT]`` reads the traces under
PATH, per host (the traces' ``hostname``), cuts them into windows like ``--period`` does
offline (:func:`~tracewatch.analyses.periodic.stream_periods`) and sends each window's
metrics (:mod:`tracewatch.export.metrics`) stamped with the window's end on the trace's own
clock, so that a recorded incident shows on the dashboards that watch the live hosts.

:class:`Sinks` holds the destinations of one run (a :class:`~tracewatch.export.graphite.
GraphiteSender`, a :class:`~tracewatch.export.prometheus.PrometheusExporter`), made from the
options; an unreachable Graphite or a port in use at the start is a one-line error.

Imports :mod:`tracewatch.export`, :mod:`tracewatch.analyses`, :mod:`tracewatch.ctf`, click.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from ..analyses import cputop as _cputop
from ..analyses import irq as _irq
from ..analyses import sched as _sched
from ..analyses import syscalls as _syscalls
from ..analyses.periodic import ANALYSES, PeriodResult, stream_periods
from ..ctf.trace import TraceSet
from ..errors import TracewatchError
from ..export.graphite import GraphiteSender, parse_address
from ..export.metrics import DEFAULT_TOP, Sample, window_samples
from ..kernel.layouts import MissingEventsError, detect_layout
from .timeparse import parse_duration_ns

__all__ = ["export", "Sinks", "sink_options", "parse_analyses"]

F = TypeVar("F", bound=Callable[..., Any])
_SECOND = 1_000_000_000


def _warn(message: str) -> None:
    click.echo(f"tracewatch: warning: {message}", err=True)


def parse_analyses(text: str, param: str = "--analysis") -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    bad = [a for a in names if a not in ANALYSES]
    if bad or not names:
        raise click.BadParameter(f"{', '.join(bad) or '(none)'}: choose among {', '.join(ANALYSES)}",
                                 param_hint=param)
    return list(dict.fromkeys(names))


def graphite_option(f: F) -> F:
    return click.option(
        "--graphite", metavar="HOST[:PORT]",
        help="Send each window's metrics to this Graphite (carbon plaintext receiver; port 2003 "
             "by default) as tracewatch.<host>.<analysis>.<entity>.<metric>, stamped with the "
             "window's end (whole seconds).")(f)


def top_option(f: F) -> F:
    return click.option(
        "--top", type=click.IntRange(min=0), default=DEFAULT_TOP, show_default=True,
        help="Per-thread/process metrics for the N first threads or processes of each window "
             "(by CPU time, scheduling latency, system calls) plus one 'other' for the rest.")(f)


def sink_options(f: F) -> F:
    """--graphite, --prometheus, --top (for ``live``)."""
    f = top_option(f)
    f = click.option(
        "--prometheus", metavar="[HOST:]PORT",
        help="Serve the latest window's metrics on http://HOST:PORT/metrics for Prometheus to "
             "scrape (HOST: 0.0.0.0 when left out; 9464 is the usual choice).")(f)
    return graphite_option(f)


class Sinks:
    """Where each window's samples go (see the module doc)."""

    def __init__(self, graphite: str | None, prometheus: str | None, period: int,
                 top: int = DEFAULT_TOP) -> None:
        self.top = top
        self.graphite: GraphiteSender | None = None
        self.prometheus: Any = None
        if graphite is not None:
            if period < _SECOND:
                raise click.BadParameter("Graphite keeps one point per second: the period must be "
                                         "at least 1s", param_hint="--period")
            try:
                host, port = parse_address(graphite)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="--graphite") from None
            sender = GraphiteSender(host, port, on_warning=_warn)
            if not sender.connect():
                raise TracewatchError(f"graphite {host}:{port}: cannot connect: {sender.last_error}")
            self.graphite = sender
        if prometheus is not None:
            from ..export.prometheus import PrometheusExporter, parse_listen  # prometheus_client

            try:
                host, port = parse_listen(prometheus)
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="--prometheus") from None
            try:
                self.prometheus = PrometheusExporter(host, port)
            except OSError as e:
                self.close(0)
                raise TracewatchError(f"prometheus endpoint {host}:{port}: {e.strerror or e}") from None

    @property
    def active(self) -> bool:
        return self.graphite is not None or self.prometheus is not None

    def push(self, samples: list[Sample]) -> None:
        if self.graphite is not None:
            self.graphite.send(samples)
        if self.prometheus is not None:
            self.prometheus.update(samples)

    def window(self, p: PeriodResult, host: str, lag_s: float | None = None) -> None:
        if self.active:
            self.push(window_samples(p, host, self.top, lag_s))

    def close(self, timeout: float = 10.0) -> bool:
        """Send what is buffered (up to ``timeout`` s), stop the endpoint; True when every
        line reached Graphite."""
        ok = True
        if self.graphite is not None:
            ok = self.graphite.close(timeout)
            self.graphite = None
        if self.prometheus is not None:
            with contextlib.suppress(Exception):
                self.prometheus.close()
            self.prometheus = None
        return ok


def supported(ts: TraceSet, names: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """The analyses of ``names`` the trace set has the events for, and why the others not."""
    layout = detect_layout(ts)
    ok: list[str] = []
    why: dict[str, str] = {}
    for a in names:
        try:
            if a == "cputop":
                layout.require(a, _cputop.NEEDED_EVENTS)
            elif a == "sched":
                layout.require(a, _sched.NEEDED_EVENTS)
            elif a == "syscalls":
                layout.require(a, ["sched_switch"])
                entries, exits = _syscalls.syscall_event_names({c.name for c in ts.classes}, layout)
                if not entries or not exits:
                    raise TracewatchError("no system call events")
            elif a == "irq":
                _irq.irq_layout(ts, layout).require(a, _irq.NEEDED_EVENTS)
            ok.append(a)
        except (MissingEventsError, TracewatchError) as e:
            why[a] = str(e)
    return ok, why


@click.command("export")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--period", default="1s", show_default=True,
              help="Window duration (at least 1s: Graphite's resolution), aligned on each host's "
                   "first event.")
@graphite_option
@click.option("--analysis", "analysis", default=",".join(ANALYSES), show_default=True,
              help=f"Comma list of analyses to export (among {', '.join(ANALYSES)}); by default "
                   "those the trace has the events for.")
@top_option
@click.option("--host", "host_name", metavar="NAME",
              help="Host name of the metrics (default: the trace's hostname; traces of several "
                   "hosts are exported each under its own).")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to keep trying to send what is buffered at the end.")
def export(paths: tuple[str, ...], period: str, graphite: str | None, analysis: str, top: int,
           host_name: str | None, timeout: float) -> None:
    """Replay the windows of the traces under PATH... into Graphite (backfill).

    Each window of --period is analysed like `tracewatch cputop --period` etc. would, and its
    metrics are sent stamped with the window's end on the trace's own clock: a recorded
    incident can be looked at on the dashboards of the live hosts (the Graphite storage
    schema must keep points that old). Prints one line per host: windows and points sent."""
    if graphite is None:
        raise click.UsageError("nothing to export to: give --graphite HOST[:PORT]")
    if any(p.startswith("net://") for p in paths):
        raise click.UsageError("export reads trace files; follow a live session with "
                               "`tracewatch live URL --analysis ... --graphite ...`")
    ns = parse_duration_ns(period)
    assert ns is not None
    names = parse_analyses(analysis)
    explicit = click.get_current_context().get_parameter_source("analysis") != \
        click.core.ParameterSource.DEFAULT
    ts = TraceSet(list(paths), on_warning=_warn)
    if not ts.traces:
        raise TracewatchError(f"no trace under {', '.join(paths)}")
    by_host: dict[str, list[str]] = {}
    for t in ts.traces:
        by_host.setdefault(host_name or t.hostname or "unknown", []).append(t.path)
    sinks = Sinks(graphite, None, ns, top)
    try:
        for host, trace_paths in by_host.items():
            hts = TraceSet(trace_paths, on_warning=_warn)
            wanted, why = supported(hts, names)
            if why and explicit:
                raise TracewatchError("; ".join(why.values()))
            windows = 0
            assert sinks.graphite is not None
            sent0 = sinks.graphite.sent + sinks.graphite.pending
            for p in stream_periods(hts, ns, wanted or ["count"]):
                sinks.window(p, host)
                windows += 1
            points = sinks.graphite.sent + sinks.graphite.pending - sent0
            skipped = f" (without {', '.join(why)}: events missing)" if why else ""
            click.echo(f"{host}: {windows} windows, {points} points{skipped}")
    finally:
        ok = sinks.close(timeout)
    if not ok:
        raise TracewatchError(f"graphite {graphite}: some points could not be sent (see the warnings)")
