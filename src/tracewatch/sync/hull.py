"""Fully incremental convex hull synchronization of two clocks (Duda; Poirier, Roy, Dagenais).

Model: ``y = a * x + b`` maps the clock of machine X (the pair's reference side) to the clock
of machine Y.  Every matched message gives a point:

- a message X -> Y, sent at ``x`` (X clock) and received at ``y`` (Y clock), lies *above* the
  true line (``y > a*x + b``: it arrived after it was sent);
- a message Y -> X, sent at ``y`` and received at ``x``, lies *below* it.

Every feasible line lies under the lower hull of the "above" points and over the upper hull of
the "below" points.  For any pair of points the constraints give, for ``q`` below and ``p``
above: ``a <= slope(q, p)`` when ``q.x < p.x`` and ``a >= slope(p, q)`` when ``p.x < q.x``
(``q.y <= p.y`` at equal ``x``), and these pairwise bounds are exact: the set of feasible
slopes is ``[a_min, a_max]`` and at each of them the intercept is unique.  The extreme lines are
the line of maximum slope (through an earlier "below" hull vertex and a later "above" one) and of
minimum slope (through an earlier "above" vertex and a later "below" one).

Points are added in non-decreasing ``x``.  A new rightmost point can only tighten one bound,
through its tangent to the *other* set's hull, which a binary search finds in O(log h); each
hull is a monotone chain (amortized O(1) per point).  Arithmetic is exact (Python ints, and
:class:`fractions.Fraction` for results): clocks are ~1.4e18 ns and slopes differ from 1 by
~1e-8, far beyond float64.

When the bounds cross (``a_min > a_max``), no line separates the two sets: the quality becomes
FAIL, the last good result is kept and later points are ignored.

This module imports nothing from tracewatch.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Quality", "Line", "HullAccuracy", "HullResult", "ConvexHullSync", "fit"]

Point = tuple[int, int]


class Quality(enum.Enum):
    """How well a pair of clocks is synchronized (best to worst: ACCURATE ... ABSENT)."""

    ACCURATE = "ACCURATE"  # both extreme lines are known
    APPROXIMATE = "APPROXIMATE"  # messages both ways, but one extreme line is missing
    INCOMPLETE = "INCOMPLETE"  # messages in one direction only: offset bound with slope 1
    ABSENT = "ABSENT"  # no matched message
    FAIL = "FAIL"  # the hulls crossed: the last good result is kept

    @property
    def rank(self) -> int:
        """Larger is better (FAIL below ABSENT: never prefer a failed pair)."""
        return {"ACCURATE": 4, "APPROXIMATE": 3, "INCOMPLETE": 2, "ABSENT": 1, "FAIL": 0}[self.value]


@dataclass(frozen=True)
class Line:
    """``y = slope * x + offset``, exactly."""

    slope: Fraction
    offset: Fraction

    def __call__(self, x: int | Fraction) -> Fraction:
        return self.slope * x + self.offset

    def inverse(self) -> Line:
        """``x`` as a function of ``y``."""
        if self.slope == 0:
            raise ZeroDivisionError("a line of slope 0 has no inverse")
        return Line(1 / self.slope, -self.offset / self.slope)


@dataclass(frozen=True)
class HullAccuracy:
    """Bounds of the feasible lines ``y = a*x + b``.

    ``slope_min``/``slope_max`` bound ``a``; ``offset_min``/``offset_max`` bound ``b`` (with all
    ``x`` > 0, the offsets of the two extreme lines are the extreme feasible offsets).
    ``time_error_ns`` is the half-width of the band between the extreme lines over the
    ``x`` range of the points (how far, at worst, a mapped time can be from the truth).
    """

    slope_min: Fraction
    slope_max: Fraction
    offset_min: Fraction
    offset_max: Fraction
    time_error_ns: float

    @property
    def slope_width(self) -> Fraction:
        return self.slope_max - self.slope_min


def _accuracy(l1: Line, l2: Line, x_range: tuple[int | Fraction, int | Fraction]) -> HullAccuracy:
    lo_s, hi_s = sorted((l1.slope, l2.slope))
    lo_b, hi_b = sorted((l1.offset, l2.offset))
    err = max(abs(l1(x) - l2(x)) for x in x_range) / 2
    return HullAccuracy(lo_s, hi_s, lo_b, hi_b, float(err))


@dataclass(frozen=True)
class HullResult:
    """The synchronization of one pair of clocks: ``y = line(x)``.

    ``line`` is None only when ABSENT (or FAIL before any good result).  For ACCURATE it is
    the mean of the two extreme lines (mean slope, mean offset); for APPROXIMATE the one extreme
    line known; for INCOMPLETE slope 1 through the tightest message (an offset bound only).
    ``good_quality`` is the quality of the kept result when ``quality`` is FAIL.
    """

    quality: Quality
    line: Line | None
    line_max: Line | None
    line_min: Line | None
    above: int  # points used (messages X -> Y)
    below: int  # points used (messages Y -> X)
    rejected: int = 0  # points ignored after a FAIL
    failed_at: tuple[int, int, bool] | None = None  # (x, y, above) of the first failing point
    good_quality: Quality | None = None
    x_range: tuple[int, int] | None = None

    @property
    def pairs(self) -> int:
        return self.above + self.below

    @property
    def accuracy(self) -> HullAccuracy | None:
        if self.line_max is None or self.line_min is None or self.x_range is None:
            return None
        return _accuracy(self.line_max, self.line_min, self.x_range)

    def inverse(self) -> HullResult:
        """The same result for ``x`` as a function of ``y`` (roles of the machines swapped)."""
        xr = None
        if self.x_range is not None and self.line is not None:
            a, b = (self.line(self.x_range[0]), self.line(self.x_range[1]))
            xr = (round(min(a, b)), round(max(a, b)))
        failed = None
        if self.failed_at is not None:
            failed = (self.failed_at[1], self.failed_at[0], not self.failed_at[2])
        line = self.line.inverse() if self.line is not None else None
        if self.quality is Quality.ACCURATE or self.good_quality is Quality.ACCURATE:
            # the mean of the inverse extreme lines, not the inverse of the mean line
            lmax, lmin = _inv(self.line_min), _inv(self.line_max)
            assert lmax is not None and lmin is not None
            line = Line((lmax.slope + lmin.slope) / 2, (lmax.offset + lmin.offset) / 2)
        return HullResult(self.quality, line, _inv(self.line_min), _inv(self.line_max), self.below,
                          self.above, self.rejected, failed, self.good_quality, xr)


def _inv(ln: Line | None) -> Line | None:
    return ln.inverse() if ln is not None else None


def _cross(o: Point, a: Point, b: Point) -> int:
    """> 0 when o -> a -> b turns left (counterclockwise)."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


class ConvexHullSync:
    """Incremental synchronization of one pair of clocks; add points in non-decreasing ``x``.

    >>> h = ConvexHullSync()
    >>> h.add(100, 1_000_150, above=True)    # X -> Y: sent at 100 on X, received on Y
    >>> h.add(300, 1_000_290, above=False)   # Y -> X: sent on Y, received at 300 on X
    >>> h.add(500, 1_000_560, above=True)
    >>> h.add(700, 1_000_680, above=False)
    >>> h.result().quality.value
    'ACCURATE'
    """

    def __init__(self) -> None:
        self._lower_above: list[Point] = []  # lower hull of the "above" points
        self._upper_below: list[Point] = []  # upper hull of the "below" points
        # extreme slopes as (dy, dx) with dx > 0, plus a point on the line
        self._amax: tuple[int, int, Point] | None = None
        self._amin: tuple[int, int, Point] | None = None
        self._n_above = 0
        self._n_below = 0
        self._min_above_gap: int | None = None  # min(y - x) over "above" points
        self._max_below_gap: int | None = None  # max(y - x) over "below" points
        self._x_first: int | None = None
        self._x_last: int | None = None
        self._failed: tuple[int, int, bool] | None = None
        self._rejected = 0

    @property
    def failed(self) -> bool:
        return self._failed is not None

    def add(self, x: int, y: int, above: bool) -> None:
        """Add a message point: ``above`` for X -> Y (x = send on X, y = receive on Y),
        not ``above`` for Y -> X (x = receive on X, y = send on Y)."""
        x, y = int(x), int(y)
        if self._x_last is not None and x < self._x_last:
            raise ValueError(f"points must come in non-decreasing x ({x} after {self._x_last})")
        if self._failed is not None:
            self._rejected += 1
            return
        if above:
            ok, cand = self._tangent_below(x, y)
            if not ok or (cand is not None and self._amin is not None
                          and _slope_lt(cand, self._amin)):
                self._fail(x, y, above)
                return
            if cand is not None and (self._amax is None or _slope_lt(cand, self._amax)):
                self._amax = cand
            _push(self._lower_above, (x, y), lower=True)
            self._n_above += 1
            g = y - x
            self._min_above_gap = g if self._min_above_gap is None else min(self._min_above_gap, g)
        else:
            ok, cand = self._tangent_above(x, y)
            if not ok or (cand is not None and self._amax is not None
                          and _slope_lt(self._amax, cand)):
                self._fail(x, y, above)
                return
            if cand is not None and (self._amin is None or _slope_lt(self._amin, cand)):
                self._amin = cand
            _push(self._upper_below, (x, y), lower=False)
            self._n_below += 1
            g = y - x
            self._max_below_gap = g if self._max_below_gap is None else max(self._max_below_gap, g)
        if self._x_first is None:
            self._x_first = x
        self._x_last = x

    def add_all(self, points: Iterable[tuple[int, int, bool]]) -> None:
        """:meth:`add` each ``(x, y, above)`` point in turn, with the same arithmetic inlined
        (several times faster in CPython)."""
        la, ub = self._lower_above, self._upper_below
        amax, amin = self._amax, self._amin
        na, nb = self._n_above, self._n_below
        gmin, gmax = self._min_above_gap, self._max_below_gap
        x_first, x_last = self._x_first, self._x_last
        failed, rejected = self._failed, self._rejected
        try:
            for x, y, above in points:
                x, y = int(x), int(y)
                if x_last is not None and x < x_last:
                    raise ValueError(f"points must come in non-decreasing x ({x} after {x_last})")
                if failed is not None:
                    rejected += 1
                    continue
                if above:
                    h = ub  # the tangent from the "below" hull (see _tangent_below)
                    ok, cand, k = True, None, len(h)
                    if k and h[-1][0] == x:
                        if h[-1][1] > y:
                            ok = False
                        k -= 1
                    if ok and k:
                        lo, hi = 0, k - 1
                        while lo < hi:
                            mid = (lo + hi) // 2
                            o, a = h[mid], h[mid + 1]
                            if (a[0] - o[0]) * (y - o[1]) - (a[1] - o[1]) * (x - o[0]) >= 0:
                                hi = mid
                            else:
                                lo = mid + 1
                        q = h[lo]
                        cand = (y - q[1], x - q[0], q)
                    if not ok or (cand is not None and amin is not None
                                  and cand[0] * amin[1] < amin[0] * cand[1]):
                        failed, x_last = (x, y, above), x
                        rejected += 1
                        continue
                    if cand is not None and (amax is None or cand[0] * amax[1] < amax[0] * cand[1]):
                        amax = cand
                    h = la  # _push(lower=True)
                    skip = False
                    if h and h[-1][0] == x:
                        if y >= h[-1][1]:
                            skip = True
                        else:
                            h.pop()
                    if not skip:
                        while len(h) >= 2:
                            o, a = h[-2], h[-1]
                            if (a[0] - o[0]) * (y - o[1]) - (a[1] - o[1]) * (x - o[0]) <= 0:
                                h.pop()
                            else:
                                break
                        h.append((x, y))
                    na += 1
                    g = y - x
                    gmin = g if gmin is None or g < gmin else gmin
                else:
                    h = la  # the tangent from the "above" hull (see _tangent_above)
                    ok, cand, k = True, None, len(h)
                    if k and h[-1][0] == x:
                        if h[-1][1] < y:
                            ok = False
                        k -= 1
                    if ok and k:
                        lo, hi = 0, k - 1
                        while lo < hi:
                            mid = (lo + hi) // 2
                            o, a = h[mid], h[mid + 1]
                            if (a[0] - o[0]) * (y - o[1]) - (a[1] - o[1]) * (x - o[0]) <= 0:
                                hi = mid
                            else:
                                lo = mid + 1
                        q = h[lo]
                        cand = (y - q[1], x - q[0], q)
                    if not ok or (cand is not None and amax is not None
                                  and amax[0] * cand[1] < cand[0] * amax[1]):
                        failed, x_last = (x, y, above), x
                        rejected += 1
                        continue
                    if cand is not None and (amin is None or amin[0] * cand[1] < cand[0] * amin[1]):
                        amin = cand
                    h = ub  # _push(lower=False)
                    skip = False
                    if h and h[-1][0] == x:
                        if y <= h[-1][1]:
                            skip = True
                        else:
                            h.pop()
                    if not skip:
                        while len(h) >= 2:
                            o, a = h[-2], h[-1]
                            if (a[0] - o[0]) * (y - o[1]) - (a[1] - o[1]) * (x - o[0]) >= 0:
                                h.pop()
                            else:
                                break
                        h.append((x, y))
                    nb += 1
                    g = y - x
                    gmax = g if gmax is None or g > gmax else gmax
                if x_first is None:
                    x_first = x
                x_last = x
        finally:
            self._amax, self._amin = amax, amin
            self._n_above, self._n_below = na, nb
            self._min_above_gap, self._max_below_gap = gmin, gmax
            self._x_first, self._x_last = x_first, x_last
            self._failed, self._rejected = failed, rejected

    def _fail(self, x: int, y: int, above: bool) -> None:
        self._failed = (x, y, above)
        self._rejected += 1
        self._x_last = x

    def _tangent_below(self, px: int, py: int) -> tuple[bool, tuple[int, int, Point] | None]:
        """Min slope from a "below" hull vertex left of p to p (p: new "above" point)."""
        h = self._upper_below
        k = len(h)
        if k and h[-1][0] == px:
            if h[-1][1] > py:  # a "below" point above an "above" point at the same x
                return False, None
            k -= 1
        if k == 0:
            return True, None
        p = (px, py)
        lo, hi = 0, k - 1
        while lo < hi:  # first i whose next vertex is on or below the chord h[i] -> p
            mid = (lo + hi) // 2
            if _cross(h[mid], h[mid + 1], p) >= 0:
                hi = mid
            else:
                lo = mid + 1
        q = h[lo]
        return True, (py - q[1], px - q[0], q)

    def _tangent_above(self, qx: int, qy: int) -> tuple[bool, tuple[int, int, Point] | None]:
        """Max slope from an "above" hull vertex left of q to q (q: new "below" point)."""
        h = self._lower_above
        k = len(h)
        if k and h[-1][0] == qx:
            if h[-1][1] < qy:
                return False, None
            k -= 1
        if k == 0:
            return True, None
        q = (qx, qy)
        lo, hi = 0, k - 1
        while lo < hi:  # first i whose next vertex is on or above the chord h[i] -> q
            mid = (lo + hi) // 2
            if _cross(h[mid], h[mid + 1], q) <= 0:
                hi = mid
            else:
                lo = mid + 1
        p = h[lo]
        return True, (qy - p[1], qx - p[0], p)

    def result(self) -> HullResult:
        """The current result (for FAIL: the last good one, with quality FAIL)."""
        na, nb = self._n_above, self._n_below
        lmax = _line(self._amax)
        lmin = _line(self._amin)
        xr = None
        if self._x_first is not None and self._x_last is not None:
            xr = (self._x_first, self._x_last)
        if na == 0 and nb == 0:
            q, line = Quality.ABSENT, None
        elif na == 0 or nb == 0:
            q = Quality.INCOMPLETE
            gap = self._min_above_gap if na else self._max_below_gap
            assert gap is not None
            line = Line(Fraction(1), Fraction(gap))
        elif lmax is not None and lmin is not None:
            q = Quality.ACCURATE
            line = Line((lmax.slope + lmin.slope) / 2, (lmax.offset + lmin.offset) / 2)
        elif lmax is not None or lmin is not None:
            q = Quality.APPROXIMATE
            line = lmax if lmax is not None else lmin
        else:  # every point at one x: slope 1 between the two offset bounds
            q = Quality.APPROXIMATE
            assert self._min_above_gap is not None and self._max_below_gap is not None
            line = Line(Fraction(1), Fraction(self._min_above_gap + self._max_below_gap, 2))
        if self._failed is not None:
            return HullResult(Quality.FAIL, line, lmax, lmin, na, nb, self._rejected, self._failed,
                              q, xr)
        return HullResult(q, line, lmax, lmin, na, nb, 0, None, None, xr)


def _slope_lt(s: tuple[int, int, Point], t: tuple[int, int, Point]) -> bool:
    """s < t for slopes given as (dy, dx, point) with dx > 0."""
    return s[0] * t[1] < t[0] * s[1]


def _line(s: tuple[int, int, Point] | None) -> Line | None:
    if s is None:
        return None
    a = Fraction(s[0], s[1])
    return Line(a, s[2][1] - a * s[2][0])


def _push(h: list[Point], p: Point, lower: bool) -> None:
    """Append p (x >= every x in h) to a lower (or upper) monotone-chain hull."""
    if h and h[-1][0] == p[0]:
        if (p[1] >= h[-1][1]) if lower else (p[1] <= h[-1][1]):
            return
        h.pop()
    if lower:
        while len(h) >= 2 and _cross(h[-2], h[-1], p) <= 0:
            h.pop()
    else:
        while len(h) >= 2 and _cross(h[-2], h[-1], p) >= 0:
            h.pop()
    h.append(p)


def fit(above: Iterable[tuple[int, int]], below: Iterable[tuple[int, int]]) -> HullResult:
    """Synchronize from whole point sets: sort them by ``x`` and add them in that order.

    At equal ``x`` the points keep their order, "above" points first.
    """
    pts = [(int(x), int(y), True) for x, y in above] + [(int(x), int(y), False) for x, y in below]
    pts.sort(key=lambda p: p[0])
    h = ConvexHullSync()
    h.add_all(pts)
    return h.result()
