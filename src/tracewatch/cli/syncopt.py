"""The ``--sync`` option shared by the commands that read a trace set: synchronize the traces'
clocks (:mod:`tracewatch.sync`) before reading, and say on stderr what was done."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..ctf.trace import TraceSet
from ..sync import to_decimal
from ..sync.apply import synchronize_set

__all__ = ["sync_option", "sync_requested", "apply_sync"]

F = TypeVar("F", bound=Callable[..., Any])

SYNC_HELP = ("Put every trace on one time base first (clock synchronization from matched TCP "
             "packets or vmsync exchanges, as `tracewatch sync` computes it).")


_META_KEY = "tracewatch.sync"


def _remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta[_META_KEY] = value
    return value


def sync_option(f: F) -> F:
    """Add ``--sync`` (a flag) to a click command.  The value is not passed to the command:
    :func:`apply_sync` finds it in the click context, so commands need no extra parameter."""
    return click.option("--sync", is_flag=True, expose_value=False, callback=_remember,
                        help=SYNC_HELP)(f)


def sync_requested() -> bool:
    """Whether the running command was given ``--sync``."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(_META_KEY))


def apply_sync(ts: TraceSet, enabled: bool | None = None) -> None:
    """Synchronize ``ts`` in place when ``enabled`` (default: when the command was given
    ``--sync``); one stderr line per synchronized trace."""
    if enabled is None:
        enabled = sync_requested()
    if not enabled:
        return
    if len(ts.traces) < 2:
        click.echo("tracewatch: --sync: one trace only, nothing to synchronize", err=True)
        return
    _warn_once(ts)  # the sync pass and the analysis read the same files: same warnings
    res = synchronize_set(ts)
    for t in res.traces:
        if t.reference:
            continue
        q = t.quality.value if t.quality else "-"
        click.echo(f"tracewatch: sync: {t.hostname or t.path}: t_ref = "
                   f"{to_decimal(t.transform.slope)} * t + {to_decimal(t.transform.offset, 20)} ns "
                   f"({t.pairs} pairs, {q})", err=True)


def _warn_once(ts: TraceSet) -> None:
    inner = ts.on_warning
    if inner is None:
        return
    seen: set[str] = set()

    def once(msg: str) -> None:
        if msg not in seen:
            seen.add(msg)
            inner(msg)

    ts.on_warning = once
