"""tracewatch: performance monitoring of clouds (hosts and virtual machines) from kernel traces.

>>> import tracewatch
>>> with tracewatch.open("path/to/trace") as ts:       # doctest: +SKIP
...     for ev in ts.events(names=["sched_switch"]):
...         print(ev.timestamp, ev.cpu, ev.fields["next_tid"])

Layers (data flows one way): ``ctf`` (and ``live``) sources -> decoded column batches ->
analyses -> outputs; ``cli`` sits on top and nothing imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import DecodeError, MetadataError, TraceNotFoundError, TracewatchError

if TYPE_CHECKING:
    from .ctf import Event, EventBatch, TraceSet

__all__ = ["open", "TraceSet", "Event", "EventBatch", "TracewatchError", "DecodeError",
           "MetadataError", "TraceNotFoundError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The reader's types, imported on first use (the CLI starts without the JIT decoder)."""
    if name in ("TraceSet", "Event", "EventBatch"):
        from . import ctf

        return getattr(ctf, name)
    raise AttributeError(f"module 'tracewatch' has no attribute {name!r}")


def open(*paths: str, on_warning: Callable[[str], None] | None = None,  # noqa: A001
         sync: bool = False) -> TraceSet:
    """Open every CTF trace found under ``paths`` as one trace set.

    ``net://HOST[:PORT]/host/HOSTNAME/SESSION`` URLs (LTTng live) give a
    :class:`~tracewatch.live.source.LiveTraceSet` instead, whose events come as they are
    traced until the sessions end; URLs and paths cannot be mixed.

    ``sync=True`` synchronizes the traces' clocks first (:mod:`tracewatch.sync`: matched TCP
    packets, vmsync exchanges) and reads every trace on the reference machine's time base.
    """
    if not paths:
        raise TracewatchError("no trace path given")
    from .live.source import LiveTraceSet, is_live_url

    live = [is_live_url(p) for p in paths]
    if any(live):
        if not all(live):
            raise TracewatchError("cannot mix live URLs (net://) and trace paths")
        if sync:
            raise TracewatchError("live sessions cannot be synchronized (sync=True): read the "
                                  "recorded traces instead")
        return LiveTraceSet(list(paths), on_warning=on_warning)
    from .analysis_set import AnalysisTraceSet

    ts = AnalysisTraceSet(list(paths), on_warning=on_warning)
    if sync:
        from .sync.apply import synchronize_set

        synchronize_set(ts)
    return ts
