"""Putting a trace set on one time base: the transforms of :func:`.transform.synchronize`
installed as the set's time maps, so every later read (events, batches, analyses) sees
timestamps on the reference machine's clock.

>>> import tracewatch
>>> from tracewatch.sync.apply import synchronize_set
>>> ts = tracewatch.open("host", "guest")                        # doctest: +SKIP
>>> res = synchronize_set(ts)                                     # doctest: +SKIP

Imports :mod:`tracewatch.ctf` and this package only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ctf import TraceSet
from .transform import ClockTransform, SyncResult, synchronize

__all__ = ["linear_map", "synchronize_set"]


def linear_map(tr: ClockTransform, anchor: int) -> Callable[[np.ndarray], np.ndarray]:
    """``t -> round(slope * t + offset)`` over int64 arrays, exact to the ns for times within
    ~2^53 ns (104 days) of ``anchor``: integer parts stay integers, only the drift term
    ``(slope - 1) * (t - anchor)`` goes through a double.  The result depends on ``t`` only
    (not on the array it comes in), so equal inputs give equal outputs chunk after chunk."""
    if tr.is_identity:
        return lambda t: t
    c = tr.exact(anchor)
    base = round(c)
    frac = float(c - base)
    k = float(tr.slope - 1)

    def apply(t: np.ndarray) -> np.ndarray:
        d = np.asarray(t, np.int64) - anchor
        return base + d + np.rint(k * d.astype(np.float64) + frac).astype(np.int64)

    return apply


def synchronize_set(ts: TraceSet, strict: bool = True) -> SyncResult:
    """Synchronize ``ts`` (:func:`.transform.synchronize`) and install the transforms as its
    time maps; returns the synchronization result (per-trace transforms, quality...)."""
    res = synchronize(ts, strict=strict)
    maps = {}
    for t in ts.traces:
        tr = res.transform_of(t.path)
        clock = t.clock
        anchor = int(clock.offset_s) * 1_000_000_000  # near the trace's times: its clock origin
        maps[t.path] = None if tr.is_identity else linear_map(tr, anchor)
    ts.set_time_maps(maps)
    return res
