"""The convex hull fit: exact bounds, qualities, FAIL, checked against the truth and brute force."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracewatch.sync.hull import ConvexHullSync, Quality, fit

BASE = 1_361_203_569_335_098_971  # a real LTTng clock offset (ns since the epoch)


def simulate(rng: random.Random, a: Fraction, b: Fraction, n: int, both: bool = True,
             lat: tuple[int, int] = (1_000, 100_000), start: int = 0) -> tuple[list[tuple[int, int]],
                                                               list[tuple[int, int]]]:
    """Messages between X and Y with t_y = a * t_x + b: "above" (X -> Y) and "below" points."""
    above: list[tuple[int, int]] = []
    below: list[tuple[int, int]] = []
    t = BASE + rng.randrange(10**12) + start
    for _ in range(n):
        t += rng.randrange(1_000, 2 * 10**8)
        d = rng.randint(*lat)
        if rng.random() < 0.5 or not both:  # X -> Y: sent at t on X, received at t + d
            above.append((t, round(a * (t + d) + b)))
        else:  # Y -> X: sent on Y at true X time t, received at t + d on X
            below.append((t + d, round(a * t + b)))
    return above, below


def brute_force(above: list[tuple[int, int]], below: list[tuple[int, int]]
                ) -> tuple[Fraction | None, Fraction | None]:
    """a_min, a_max from every pair of points (O(n^2))."""
    amax = amin = None
    for px, py in above:
        for qx, qy in below:
            if qx < px:
                s = Fraction(py - qy, px - qx)
                amax = s if amax is None else min(amax, s)
            elif px < qx:
                s = Fraction(qy - py, qx - px)
                amin = s if amin is None else max(amin, s)
    return amin, amax


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), drift_ppm=st.floats(-100, 100),
       offset_s=st.floats(-4 * 3600, 4 * 3600), n=st.integers(8, 200))
def test_accuracy_interval_contains_the_truth(seed: int, drift_ppm: float, offset_s: float,
                                              n: int) -> None:
    """Random clocks (drift up to 100 ppm, offsets up to hours, latencies 1-100 us), messages
    both ways: ACCURATE, and the slope and offset bounds contain the true (a, b)."""
    rng = random.Random(seed)
    a = 1 + Fraction(drift_ppm) / 10**6
    b = Fraction(round(offset_s * 1e9)) + Fraction(rng.randrange(1000), 1000)
    above, below = simulate(rng, a, b, n)
    if not above or not below:
        above, below = simulate(rng, a, b, n)
    r = fit(above, below)
    assert r.quality in (Quality.ACCURATE, Quality.APPROXIMATE)
    acc = r.accuracy
    if r.quality is Quality.ACCURATE:
        assert acc is not None
        assert acc.slope_min <= a <= acc.slope_max
        assert acc.offset_min <= b <= acc.offset_max
        assert r.line is not None and acc.slope_min <= r.line.slope <= acc.slope_max
        # the fitted line is within the band: never further from the truth than its width
        x0, x1 = r.x_range or (0, 0)
        for x in (x0, x1):
            assert abs(r.line(x) - (a * x + b)) <= 2 * acc.time_error_ns + 1
    amin, amax = brute_force(above, below)
    assert (r.line_min.slope if r.line_min else None) == amin
    assert (r.line_max.slope if r.line_max else None) == amax


def test_accurate_many_points_exact_and_tight() -> None:
    rng = random.Random(7)
    a, b = 1 + Fraction(37, 10**6), Fraction(-2 * 3600 * 10**9 + 123)
    above, below = simulate(rng, a, b, 3000, lat=(1_000, 3_000))
    r = fit(above, below)
    assert r.quality is Quality.ACCURATE and r.pairs == 3000
    acc = r.accuracy
    assert acc is not None
    assert acc.slope_min <= a <= acc.slope_max and acc.offset_min <= b <= acc.offset_max
    assert acc.slope_width < Fraction(5, 10**8)
    assert acc.time_error_ns < 3_000
    assert brute_force(above[:300], below[:300]) == (
        fit(above[:300], below[:300]).line_min.slope,  # type: ignore[union-attr]
        fit(above[:300], below[:300]).line_max.slope)  # type: ignore[union-attr]


def test_resolves_sub_ppb_drift() -> None:
    """A drift of 1e-9 at x ~ 1.4e18 ns (x*y products ~ 1e36: far beyond float64's 53 bits)
    is resolved exactly: the slope interval excludes 1."""
    rng = random.Random(3)
    a = 1 + Fraction(1, 10**9)
    above: list[tuple[int, int]] = []
    below: list[tuple[int, int]] = []
    for _ in range(4):  # four long, sparse runs of messages (hours)
        up, down = simulate(rng, a, Fraction(0), 400, lat=(1_000, 1_500), start=len(above) * 10**11)
        above += up
        below += down
    r = fit(above, below)
    acc = r.accuracy
    assert r.quality is Quality.ACCURATE and acc is not None
    assert acc.slope_min <= a <= acc.slope_max
    assert acc.slope_min > 1


def test_one_direction_is_incomplete() -> None:
    rng = random.Random(1)
    a, b = Fraction(1), Fraction(5_000_000)
    above, _ = simulate(rng, a, b, 50, both=False)
    r = fit(above, [])
    assert r.quality is Quality.INCOMPLETE and r.accuracy is None
    assert r.line is not None and r.line.slope == 1
    assert r.line.offset >= b  # an upper bound of the offset (messages take time)
    r2 = fit([], [(y, x) for x, y in above])
    assert r2.quality is Quality.INCOMPLETE


def test_no_pairs_is_absent() -> None:
    r = fit([], [])
    assert r.quality is Quality.ABSENT and r.line is None and r.pairs == 0


def test_one_extreme_line_is_approximate() -> None:
    # every "below" point before every "above" one: only the max-slope line exists
    r = fit([(3000, 3100), (4000, 4100)], [(1000, 900), (2000, 1900)])
    assert r.quality is Quality.APPROXIMATE
    assert r.line_max is not None and r.line_min is None and r.accuracy is None
    assert r.line == r.line_max


def test_inconsistent_pairs_fail_and_keep_last_good_result() -> None:
    rng = random.Random(11)
    a, b = 1 + Fraction(20, 10**6), Fraction(10**12)
    above, below = simulate(rng, a, b, 100)
    good = fit(above, below)
    assert good.quality is Quality.ACCURATE
    last_x = max(p[0] for p in above + below)
    # a message X -> Y "received" 1 ms before it was sent: below the true line
    bad_x = last_x + 10**6
    h = ConvexHullSync()
    for x, y, up in sorted([(x, y, True) for x, y in above] + [(x, y, False) for x, y in below]):
        h.add(x, y, up)
    h.add(bad_x, round(a * (bad_x - 10**6) + b), True)
    h.add(bad_x + 10**6, round(a * (bad_x + 10**6) + b) + 10**5, True)  # ignored after FAIL
    r = h.result()
    assert r.quality is Quality.FAIL and r.good_quality is Quality.ACCURATE
    assert r.line == good.line and r.pairs == good.pairs and r.rejected == 2
    assert r.failed_at is not None and r.failed_at[0] == bad_x


def test_same_x_conflict_fails() -> None:
    r = fit([(100, 50), (200, 150)], [(200, 160)])
    assert r.quality is Quality.FAIL


def test_points_out_of_order_are_refused() -> None:
    h = ConvexHullSync()
    h.add(10, 20, True)
    with pytest.raises(ValueError, match="non-decreasing"):
        h.add(5, 20, False)


def test_inverse_is_the_fit_with_roles_swapped() -> None:
    rng = random.Random(5)
    above, below = simulate(rng, 1 + Fraction(3, 10**5), Fraction(-10**13), 200)
    r = fit(above, below)
    swapped = fit([(y, x) for x, y in below], [(y, x) for x, y in above])
    inv = r.inverse()
    assert swapped.quality is inv.quality is Quality.ACCURATE
    assert swapped.line == inv.line
    assert swapped.line_max == inv.line_max and swapped.line_min == inv.line_min


def test_add_all_equals_add_one_by_one() -> None:
    """The inlined batch method gives the very result (lines, counts, FAIL point, x range) of
    adding the points one by one, on random point sets: simulated messages, some with equal
    x, some shuffled in y so that the hulls cross (FAIL)."""
    rng = random.Random(5)
    for trial in range(300):
        a = 1 + Fraction(rng.randint(-100_000, 100_000), 10**9)
        above, below = simulate(rng, a, Fraction(rng.randint(-10**9, 10**9)),
                                rng.randint(0, 40), both=rng.random() < 0.8)
        pts = [(x, y, True) for x, y in above] + [(x, y, False) for x, y in below]
        if trial % 3 == 0 and pts:  # duplicate some x, perturb some y (FAIL cases)
            for _ in range(rng.randint(1, 5)):
                x, y, ab = rng.choice(pts)
                pts.append((x, y + rng.randint(-300_000, 300_000), rng.random() < 0.5))
        pts.sort(key=lambda p: p[0])
        one = ConvexHullSync()
        for x, y, ab in pts:
            one.add(x, y, ab)
        many = ConvexHullSync()
        many.add_all(pts)
        assert many.result() == one.result()
        assert many._lower_above == one._lower_above and many._upper_below == one._upper_below
