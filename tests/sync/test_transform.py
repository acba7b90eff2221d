"""Clock transforms, the spanning tree over N machines, and the real Trace Compass TCP case."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest

import tracewatch
from tracewatch.sync import (
    ClockTransform,
    MatchedPairs,
    MatchResult,
    NoSyncEventsError,
    Quality,
    SyncFailedError,
    synchronize,
    synchronize_pairs,
)

from ..conftest import TCP_SYNC

BASE = 1_361_203_569_335_098_971


def test_clock_transform_algebra() -> None:
    f = ClockTransform(1 + Fraction(3, 10**6), Fraction(-7 * 10**12))
    g = ClockTransform(1 - Fraction(1, 10**5), Fraction(123456789, 7))
    t = BASE + 987_654_321
    assert f.compose(g).exact(t) == f.exact(g.exact(t))
    assert f.inverse().exact(f.exact(t)) == t
    assert f.compose(f.inverse()).is_identity
    assert f(t) == round(f.exact(t))
    arr = np.array([BASE + i * 3_600 * 10**9 // 7 for i in range(8)], np.int64)
    assert arr.dtype == np.int64
    assert f.apply_array(arr).tolist() == [f(int(x)) for x in arr.tolist()]


def _pairs(rng: random.Random, x: str, y: str, a: Fraction, b: Fraction, n: int,
           both: bool = True, start: int = BASE) -> dict[tuple[str, str], MatchedPairs]:
    """Messages between machines x and y where t_y = a * t_x + b, from ``start`` on x."""
    xy: tuple[list[int], list[int]] = ([], [])
    yx: tuple[list[int], list[int]] = ([], [])
    t = start
    for _ in range(n):
        t += rng.randrange(10**6, 10**8)
        d = rng.randrange(2_000, 50_000)
        if both and rng.random() < 0.5:
            yx[0].append(round(a * t + b))
            yx[1].append(t + d)
        else:
            xy[0].append(t)
            xy[1].append(round(a * (t + d) + b))
    out = {}
    for (s, r), (ss, rr) in (((x, y), xy), ((y, x), yx)):
        if ss:
            out[(s, r)] = MatchedPairs(s, r, np.array(ss, np.int64), np.array(rr, np.int64))
    return out


def _matches(*parts: dict[tuple[str, str], MatchedPairs]) -> MatchResult:
    pairs: dict[tuple[str, str], MatchedPairs] = {}
    for p in parts:
        pairs.update(p)
    return MatchResult(pairs, {}, {})


def test_three_machines_compose_along_the_tree() -> None:
    """h1 (reference) <-> h2 <-> h3, no h1 <-> h3 messages: h3 reaches h1 through h2 and its
    transform is the composition, within the accuracy of the two fits."""
    rng = random.Random(42)
    a12, b12 = 1 + Fraction(40, 10**6), Fraction(3 * 3600 * 10**9 + 17)  # t2 = a12 t1 + b12
    a23, b23 = 1 - Fraction(65, 10**6), Fraction(-5 * 10**12)  # t3 = a23 t2 + b23
    m = _matches(_pairs(rng, "h1", "h2", a12, b12, 400),
                 _pairs(rng, "h2", "h3", a23, b23, 400, start=round(a12 * BASE + b12)))
    res = synchronize_pairs([("h3", "c", ["/t3"]), ("h1", "a", ["/t1"]), ("h2", "b", ["/t2"])],
                            m)
    assert res.reference == "h1"
    s1, s2, s3 = (res.by_host(h) for h in ("h1", "h2", "h3"))
    assert s1.reference and s1.transform.is_identity and s1.parent is None
    assert s2.parent == "h1" and s3.parent == "h2"
    assert s2.quality is s3.quality is Quality.ACCURATE
    # true transforms to h1
    true2 = ClockTransform(a12, b12).inverse()
    true3 = true2.compose(ClockTransform(a23, b23).inverse())
    a2, a3 = s2.accuracy, s3.accuracy
    assert a2 is not None and a3 is not None
    assert a2.slope_min <= true2.slope <= a2.slope_max
    assert a2.offset_min <= true2.offset <= a2.offset_max
    for k in range(0, 20 * 10**9, 10**9):  # over the traced interval
        t1 = BASE + k
        t3 = round(a23 * (a12 * t1 + b12) + b23)
        err = abs(s3.transform.exact(t3) - true3.exact(t3))
        assert err <= a2.time_error_ns + a3.time_error_ns + 2
    assert s3.transform == s2.transform.compose(_edge_to_parent(res, "h3", "h2"))


def _edge_to_parent(res: object, child: str, parent: str) -> ClockTransform:
    from tracewatch.sync.transform import SyncResult

    assert isinstance(res, SyncResult)
    key = (min(child, parent), max(child, parent))
    fit = res.edges[key].towards(parent)
    assert fit.line is not None
    return ClockTransform(fit.line.slope, fit.line.offset).inverse()


def test_tree_prefers_the_better_fit() -> None:
    """h3 exchanges both ways with h2 but only one way with h1: it goes through h2."""
    rng = random.Random(9)
    a, b = 1 + Fraction(1, 10**5), Fraction(10**9)
    m = _matches(_pairs(rng, "h1", "h2", a, b, 100), _pairs(rng, "h2", "h3", a, b, 100),
                 _pairs(rng, "h1", "h3", a * a, a * b + b, 300, both=False))
    res = synchronize_pairs([("h1", "", ["/1"]), ("h2", "", ["/2"]), ("h3", "", ["/3"])], m)
    assert res.edges[("h1", "h3")].result.quality is Quality.INCOMPLETE
    assert res.by_host("h3").parent == "h2"


def test_machine_without_pairs_is_an_error() -> None:
    rng = random.Random(1)
    m = _matches(_pairs(rng, "h1", "h2", Fraction(1), Fraction(0), 20))
    with pytest.raises(NoSyncEventsError, match=r"cannot synchronize /3 \(host c\): no matched "
                       r"sync event with another machine; record inet_sock_local_in/out"):
        synchronize_pairs([("h1", "a", ["/1"]), ("h2", "b", ["/2"]), ("h3", "c", ["/3"])], m)


def test_failed_pair_is_an_error_unless_allowed() -> None:
    rng = random.Random(2)
    m = _matches(_pairs(rng, "h1", "h2", Fraction(1), Fraction(0), 50))
    bad = m.pairs[("h1", "h2")]
    last = int(max(bad.send.max(), m.pairs[("h2", "h1")].recv.max()))
    bad.send = np.append(bad.send, last + 10**7)
    bad.recv = np.append(bad.recv, last + 10**7 - 10**6)  # received before it was sent
    machines = [("h1", "a", ["/1"]), ("h2", "b", ["/2"])]
    with pytest.raises(SyncFailedError, match=r"FAILed: the convex hulls cross") as ei:
        synchronize_pairs(machines, m)
    assert "\n" not in str(ei.value)
    res = synchronize_pairs(machines, m, strict=False)
    s = res.by_host("h2")
    assert s.quality is Quality.FAIL and s.good_quality is Quality.ACCURATE and s.pairs == 50


def test_real_tcp_traces_match_trace_compass() -> None:
    """Trace Compass's reference: 46 TCP pairs; scp_dest is the reference; scp_src's
    timestamps map to scp_dest's with slope 0.9999413783703139011, offset 79796507913179.3335
    ns (t_dest = slope * t_src + offset: the notes state the formula the other way round)."""
    ts = tracewatch.open(str(TCP_SYNC / "scp_src"), str(TCP_SYNC / "scp_dest"),
                         on_warning=lambda m: None)
    res = synchronize(ts)
    src, dest = res.traces
    assert src.path.endswith("scp_src") and dest.path.endswith("scp_dest")
    assert dest.reference and dest.transform.is_identity and not src.reference
    assert src.pairs == 46 and src.quality is Quality.ACCURATE
    assert res.matches is not None and res.matches.total == 46
    slope = Fraction("0.9999413783703139011")
    offset = Fraction("79796507913179.3335")
    assert abs(src.transform.slope - slope) / slope < Fraction(1, 10**12)
    assert abs(src.transform.offset - offset) < 1
    acc = src.accuracy
    assert acc is not None and acc.slope_min <= src.transform.slope <= acc.slope_max
    # the other direction: t_src = slope' * t_dest + offset'
    back = src.from_reference
    assert abs(back.slope - 1 / slope) < Fraction(1, 10**12)
