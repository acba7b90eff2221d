"""Clock synchronization of the traces of several machines (hosts, guests).

Matched sync events (TCP packets sent by one machine and received by another, the vmsync
hypercall exchange between a guest and its host: :mod:`.matching`) give, for each pair of
machines, points that the fully incremental convex hull method (:mod:`.hull`) turns into the
bounds of ``t_other = a * t_ref + b``; :mod:`.transform` picks the reference machine, composes
the transforms along a spanning tree and gives each trace its :class:`ClockTransform`.

>>> import tracewatch
>>> from tracewatch.sync import synchronize
>>> res = synchronize(tracewatch.open("scp_src", "scp_dest"))      # doctest: +SKIP
>>> res.traces[1].transform(1361203579_000000000)                  # doctest: +SKIP

Imports only :mod:`tracewatch.ctf` and :mod:`tracewatch.errors`.
"""

from .hull import ConvexHullSync, HullAccuracy, HullResult, Line, Quality, fit
from .matching import (
    SYNC_EVENTS,
    EventMatcher,
    MatchedPairs,
    MatchResult,
    SyncColumns,
    host_id,
    match_arrays,
    match_events,
)
from .transform import (
    ClockTransform,
    EdgeSync,
    NoSyncEventsError,
    SyncError,
    SyncFailedError,
    SyncResult,
    TraceSync,
    fit_pair,
    synchronize,
    synchronize_pairs,
    to_decimal,
)

__all__ = ["ClockTransform", "EdgeSync", "ConvexHullSync", "HullAccuracy", "HullResult", "Line",
           "Quality", "fit", "SYNC_EVENTS", "EventMatcher", "MatchedPairs", "MatchResult",
           "SyncColumns", "host_id", "match_arrays", "match_events", "NoSyncEventsError",
           "SyncError", "SyncFailedError", "SyncResult", "TraceSync", "fit_pair", "synchronize",
           "synchronize_pairs", "to_decimal"]
