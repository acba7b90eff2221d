"""Clock transforms and the synchronization of a whole trace set.

A :class:`ClockTransform` maps a trace's timestamps (ns) to the reference machine's
(``t_ref = slope * t + offset``, exact fractions).  :func:`synchronize` matches the sync events
of a trace set (:mod:`.matching`), fits every pair of machines that exchanged messages
(:mod:`.hull`, with the parent machine as ``x``), picks the reference (the smallest host id:
clock uuid, else hostname), builds a spanning tree from it over the pairs (best quality first,
then most pairs) and composes the transforms along the tree.

For each edge parent -> child the hull gives ``t_child = a * t_parent + b``; the child's
transform to its parent is its inverse (as Trace Compass does).  On the Trace Compass reference
traces (``lttng-kernel-tcp-sync``) this gives scp_src -> scp_dest: slope 0.99994137837031390110,
offset 79796507913179.3335 ns.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..ctf import TraceSet
from ..errors import TracewatchError
from .hull import ConvexHullSync, HullAccuracy, HullResult, Quality
from .matching import MatchResult, host_id, match_events

__all__ = ["ClockTransform", "SyncError", "NoSyncEventsError", "SyncFailedError", "TraceSync",
           "EdgeSync", "SyncResult", "synchronize", "synchronize_pairs", "fit_pair",
           "to_decimal"]

ENABLE_HINT = ("record inet_sock_local_in/out or the vmsync events: lttng enable-event -k "
               "inet_sock_local_in,inet_sock_local_out (or vmsync_gh_guest,vmsync_hg_guest on "
               "guests and vmsync_gh_host,vmsync_hg_host on hosts)")


class SyncError(TracewatchError):
    """Traces could not be synchronized."""


class NoSyncEventsError(SyncError):
    """A machine exchanged no matched sync event with the machines of the reference."""


class SyncFailedError(SyncError):
    """The convex hulls of a pair of machines crossed (inconsistent pairs)."""


def to_decimal(x: Fraction | int, digits: int = 22) -> str:
    """``x`` as a decimal string with ``digits`` significant digits (trailing zeros kept off)."""
    x = Fraction(x)
    with decimal.localcontext() as ctx:
        ctx.prec = digits
        d = decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator)
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


@dataclass(frozen=True)
class ClockTransform:
    """``t_ref = slope * t + offset`` (ns, exact)."""

    slope: Fraction = Fraction(1)
    offset: Fraction = Fraction(0)

    @classmethod
    def identity(cls) -> ClockTransform:
        return cls(Fraction(1), Fraction(0))

    @property
    def is_identity(self) -> bool:
        return self.slope == 1 and self.offset == 0

    def exact(self, t: int | Fraction) -> Fraction:
        return self.slope * t + self.offset

    def __call__(self, t: int) -> int:
        """The transformed timestamp, rounded to the nearest ns."""
        return round(self.slope * int(t) + self.offset)

    def apply_array(self, t: np.ndarray) -> np.ndarray:
        """Transform an int64 array (error well under 1 ns over hours of trace)."""
        t = np.asarray(t, np.int64)
        if t.size == 0 or self.is_identity:
            return t.copy()
        t0 = int(t.flat[0])
        c = self.exact(t0)
        base = round(c)
        frac = float(c - base)
        d = (t - t0).astype(np.float64)
        return base + (t - t0) + np.rint(float(self.slope - 1) * d + frac).astype(np.int64)

    def compose(self, inner: ClockTransform) -> ClockTransform:
        """``self(inner(t))``."""
        return ClockTransform(self.slope * inner.slope, self.slope * inner.offset + self.offset)

    def inverse(self) -> ClockTransform:
        if self.slope == 0:
            raise ZeroDivisionError("a clock transform of slope 0 has no inverse")
        return ClockTransform(1 / self.slope, -self.offset / self.slope)

    def __str__(self) -> str:
        return f"t_ref = {to_decimal(self.slope)} * t + {to_decimal(self.offset)}"


@dataclass(frozen=True)
class EdgeSync:
    """The fit between two machines, ``x`` = time on ``x_host``, ``y`` = time on ``y_host``."""

    x_host: str
    y_host: str
    result: HullResult

    def towards(self, parent: str) -> HullResult:
        """The fit with ``parent`` as ``x`` (the child's time as a function of the parent's)."""
        return self.result if parent == self.x_host else self.result.inverse()


@dataclass(frozen=True)
class TraceSync:
    """How one trace is put on the reference's time base."""

    path: str
    hostname: str
    host_id: str
    transform: ClockTransform  # this trace's ns -> the reference's ns
    reference: bool
    parent: str | None  # host id of the machine it was synchronized with (None: reference)
    pairs: int  # matched pairs with the parent
    quality: Quality | None  # of the fit with the parent (None: reference)
    accuracy: HullAccuracy | None  # bounds of the transform to the parent (same direction)
    good_quality: Quality | None = None  # when quality is FAIL: of the result kept

    @property
    def from_reference(self) -> ClockTransform:
        """The reference's ns -> this trace's ns."""
        return self.transform.inverse()


@dataclass
class SyncResult:
    """Per trace transforms to the reference machine's clock."""

    reference: str  # host id
    traces: list[TraceSync]
    edges: dict[tuple[str, str], EdgeSync] = field(default_factory=dict)
    matches: MatchResult | None = None

    def transform_of(self, path: str) -> ClockTransform:
        for t in self.traces:
            if t.path == path:
                return t.transform
        raise KeyError(path)

    def by_host(self, hid: str) -> TraceSync:
        for t in self.traces:
            if t.host_id == hid:
                return t
        raise KeyError(hid)


def fit_pair(x_to_y: tuple[Sequence[int], Sequence[int]],
             y_to_x: tuple[Sequence[int], Sequence[int]]) -> HullResult:
    """Fit ``t_y = a * t_x + b`` from the messages X -> Y (send on X, receive on Y) and
    Y -> X (send on Y, receive on X), in time order on X."""
    pts = [(int(s), int(r), True) for s, r in zip(x_to_y[0], x_to_y[1], strict=True)]
    pts += [(int(r), int(s), False) for s, r in zip(y_to_x[0], y_to_x[1], strict=True)]
    pts.sort(key=lambda p: p[0])
    h = ConvexHullSync()
    h.add_all(pts)
    return h.result()


@dataclass(frozen=True)
class _Machine:
    hid: str
    hostname: str
    paths: tuple[str, ...]


def synchronize_pairs(machines: Sequence[tuple[str, str, Sequence[str]]], matches: MatchResult,
                      strict: bool = True,
                      fitted: Mapping[tuple[str, str], EdgeSync] | None = None) -> SyncResult:
    """Synchronize machines ``(host id, hostname, trace paths)`` from matched pairs.

    The reference is the machine with the smallest host id.  ``strict`` raises
    :class:`SyncFailedError` when a fit used by the tree FAILed (otherwise its last good result
    is used and its quality says FAIL).  ``fitted``: fits already made from the same
    ``matches`` (``SyncResult.edges`` of a larger set), reused instead of fitted again.
    """
    ms = sorted((_Machine(h, n, tuple(p)) for h, n, p in machines), key=lambda m: m.hid)
    if not ms:
        raise SyncError("no trace to synchronize")
    ids = [m.hid for m in ms]
    edges: dict[tuple[str, str], EdgeSync] = {}
    for i, u in enumerate(ids):
        for v in ids[i + 1:]:
            known = (fitted or {}).get((u, v))
            if known is not None:
                edges[(u, v)] = known
                continue
            uv, vu = matches.between(u, v), matches.between(v, u)
            if len(uv) or len(vu):
                res = fit_pair((uv.send.tolist(), uv.recv.tolist()),
                               (vu.send.tolist(), vu.recv.tolist()))
                edges[(u, v)] = EdgeSync(u, v, res)
    ref = ids[0]
    name = {m.hid: m for m in ms}

    def rank(e: EdgeSync) -> tuple[int, int]:
        r = e.result
        q = r.good_quality if r.quality is Quality.FAIL else r.quality
        assert q is not None
        # a failed fit comes after every good one, then by its kept quality
        return (q.rank + (0 if r.quality is Quality.FAIL else 10), r.pairs)

    parent: dict[str, tuple[str, EdgeSync] | None] = {ref: None}
    while True:  # Prim: the best edge from the tree to a new machine
        best: tuple[tuple[int, int], str, str, EdgeSync] | None = None
        for (u, v), e in edges.items():
            for a, b in ((u, v), (v, u)):
                if a in parent and b not in parent:
                    k = rank(e)
                    if best is None or k > best[0]:
                        best = (k, a, b, e)
        if best is None:
            break
        _, a, b, e = best
        parent[b] = (a, e)
    missing = [h for h in ids if h not in parent]
    if missing:
        if not any(ref in k for k in edges):  # the reference itself is cut off
            missing = [ref]
        m = name[missing[0]]
        alone = not any(missing[0] in k for k in edges)
        what = "no matched sync event with another machine" if alone else \
            f"no matched sync event linking it to the reference machine {_label(name[ref])}"
        raise NoSyncEventsError(f"cannot synchronize {m.paths[0]} (host {m.hostname or '?'}): "
                                f"{what}; {ENABLE_HINT}")
    transforms: dict[str, ClockTransform] = {ref: ClockTransform.identity()}
    fits: dict[str, HullResult] = {}

    def resolve(h: str) -> ClockTransform:
        if h in transforms:
            return transforms[h]
        p = parent[h]
        assert p is not None
        par, e = p
        fit = e.towards(par)
        if fit.quality is Quality.FAIL and strict:
            assert fit.failed_at is not None
            raise SyncFailedError(
                f"synchronization of {_label(name[h])} with {_label(name[par])} FAILed: the "
                f"convex hulls cross at the pair ({fit.failed_at[0]}, {fit.failed_at[1]}) after "
                f"{fit.pairs} consistent pairs (inconsistent or mismatched events)")
        assert fit.line is not None
        fits[h] = fit
        # fit: t_h = a * t_par + b  ->  t_par = inverse(t_h)
        to_parent = ClockTransform(fit.line.slope, fit.line.offset).inverse()
        transforms[h] = resolve(par).compose(to_parent)
        return transforms[h]

    out: list[TraceSync] = []
    for m in ms:
        tr = resolve(m.hid)
        p = parent[m.hid]
        fit = fits.get(m.hid)
        acc = fit.inverse().accuracy if fit is not None else None
        for path in m.paths:
            out.append(TraceSync(
                path=path, hostname=m.hostname, host_id=m.hid, transform=tr,
                reference=m.hid == ref, parent=p[0] if p else None,
                pairs=fit.pairs if fit else 0, quality=fit.quality if fit else None,
                accuracy=acc, good_quality=fit.good_quality if fit else None))
    return SyncResult(ref, out, edges, matches)


def _label(m: _Machine) -> str:
    return f"{m.paths[0]} (host {m.hostname or '?'})"


def synchronize(ts: TraceSet, strict: bool = True,
                match: Callable[[TraceSet], MatchResult] = match_events) -> SyncResult:
    """Match the sync events of ``ts`` and put every trace on the reference machine's clock.

    Raises :class:`NoSyncEventsError` when a machine has no matched sync event linking it to
    the reference, :class:`SyncFailedError` when a needed fit FAILed (unless not ``strict``).
    The result lists the traces in ``ts.traces`` order.
    """
    by_host: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for t in ts.traces:
        h = host_id(t)
        by_host.setdefault(h, []).append(t.path)
        names.setdefault(h, t.hostname)
    matches = match(ts)
    res = synchronize_pairs([(h, names[h], p) for h, p in by_host.items()], matches, strict)
    order = {t.path: i for i, t in enumerate(ts.traces)}
    res.traces.sort(key=lambda s: order.get(s.path, len(order)))
    return res
