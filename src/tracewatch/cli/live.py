"""``tracewatch live``: list the sessions a relay daemon (lttng-relayd) serves live."""

from __future__ import annotations

import click

from ..errors import TracewatchError
from ..live.client import LiveClient, LiveError
from ..live.protocol import ProtocolError, SessionInfo
from ..live.url import LiveUrl, parse_live_url

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
@click.argument("url", metavar="net://HOST[:PORT]")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Network timeout (seconds).")
def live(url: str, timeout: float) -> None:
    """List the live sessions of the relay daemon at URL: host, name, live timer, streams,
    viewers, and the URL to follow each with ``tracewatch dump``."""
    try:
        u = parse_live_url(url)
    except ValueError as e:
        raise TracewatchError(str(e)) from None
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
