"""Reading a trace set on one time base: ``tracewatch.open(..., sync=True)`` and ``--sync``."""

from __future__ import annotations

import contextlib
import io
from fractions import Fraction

import numpy as np
import pytest

import tracewatch
from tracewatch.cli.main import main
from tracewatch.sync.apply import linear_map
from tracewatch.sync.matching import match_events
from tracewatch.sync.transform import ClockTransform

from ..conftest import TCP_SYNC

# Trace Compass' reference result for these traces (notes/vm-sync-critical-path.md): scp_dest
# is the reference, scp_src maps to it with this slope and offset (t_ref = S * t_src + O; the
# notes' formula is written the other way round, the numbers are in this direction).
SLOPE = Fraction("0.9999413783703139011")
OFFSET = Fraction("79796507913179.3335")


def _per_stream(ts: tracewatch.TraceSet) -> dict[str, np.ndarray]:
    out: dict[str, list[np.ndarray]] = {}
    for b in ts.batches(merged=False):
        out.setdefault(ts.streams[int(b.stream[0])].path, []).append(b.ts)
    return {k: np.concatenate(v) for k, v in out.items()}


def test_synced_times_follow_the_reference_transform() -> None:
    raw = _per_stream(tracewatch.open(str(TCP_SYNC)))
    synced = _per_stream(tracewatch.open(str(TCP_SYNC), sync=True))
    assert raw.keys() == synced.keys() and len(raw) == 2
    for path, t in raw.items():
        got = synced[path]
        if "scp_dest" in path:  # the reference keeps its times
            assert np.array_equal(got, t)
            continue
        # expected in exact rational arithmetic, on a sample spread over the whole trace
        idx = np.linspace(0, t.shape[0] - 1, 2000).astype(np.int64)
        want = np.array([round(SLOPE * int(t[i]) + OFFSET) for i in idx], np.int64)
        assert np.abs(got[idx] - want).max() <= 1  # the reference's digits: within 1 ns


def test_messages_arrive_after_they_leave_once_synced() -> None:
    raw = match_events(tracewatch.open(str(TCP_SYNC)))
    synced = match_events(tracewatch.open(str(TCP_SYNC), sync=True))
    assert synced.total == raw.total == 46
    late = 0
    for key, p in synced.pairs.items():
        assert np.all(p.recv > p.send), key  # causality holds on the common time base
        late += int(np.count_nonzero(raw.pairs[key].recv <= raw.pairs[key].send))
    assert late > 0  # and did not before: the clocks are ~22 h apart


def test_linear_map_is_exact_and_chunk_independent() -> None:
    tr = ClockTransform(Fraction(1_000_037, 1_000_000), Fraction(-123_456_789_012, 7))
    anchor = 1_700_000_000_000_000_000
    f = linear_map(tr, anchor)
    rng = np.random.default_rng(3)
    t = np.sort(anchor + rng.integers(0, 7 * 86_400 * 10**9, 5000))  # a week of trace
    whole = f(t)
    want = np.array([round(tr.exact(int(x))) for x in t], np.int64)
    assert np.abs(whole - want).max() <= 1
    assert np.array_equal(np.concatenate([f(t[:1234]), f(t[1234:])]), whole)
    assert np.all(np.diff(whole) >= 0)


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def test_dump_sync_prints_synced_times_in_order() -> None:
    names = "--names=inet_sock_local_out,inet_sock_local_in"
    rc, out, err = _run("dump", "--sync", "--clock-seconds", "--no-delta", names, str(TCP_SYNC))
    assert rc == 0
    assert "46 pairs, ACCURATE" in err and err.count("packets begin before") == 2  # warned once
    times = [float(line[1:line.index("]")]) for line in out.splitlines()]
    assert times == sorted(times)
    # the first scp_src event is printed at its synced time
    ts = tracewatch.open(str(TCP_SYNC), sync=True)
    first = next(ts.events(names=["inet_sock_local_out", "inet_sock_local_in"]))
    assert f"{first.timestamp // 10**9}.{first.timestamp % 10**9:09d}" in out.splitlines()[0]


@pytest.mark.parametrize("cmd", ["cputop", "syscalls", "irq", "sched", "io", "mem"])
def test_every_analysis_command_has_sync(cmd: str) -> None:
    rc, out, _ = _run(cmd, "--help")
    assert rc == 0 and "--sync" in out


def test_sync_of_live_url_is_refused() -> None:
    with pytest.raises(tracewatch.TracewatchError, match="live sessions cannot be synchronized"):
        tracewatch.open("net://localhost/host/h/s", sync=True)
