"""``TraceSet.batches(names=..., on_times=...)``: the events of other classes are stepped over
without decoding, yet the times reported per chunk cover every event; their count and
first/last timestamps (in [begin, end] or not) are babeltrace2's."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracewatch

from ..conftest import MANY_THREADS, SUITE, TCP_SYNC, babeltrace2

_TS = re.compile(r"^\[(\d+)\.(\d{9})\]", re.M)


def _bt2_times(path: Path, *args: str) -> np.ndarray:
    """Timestamps (ns) of the events babeltrace2 reads, in its order."""
    out = babeltrace2("--clock-seconds", *args, str(path)).stdout
    return np.array([int(s) * 1_000_000_000 + int(ns) for s, ns in _TS.findall(out)], np.int64)


class _Tally:
    def __init__(self, begin: int | None = None, end: int | None = None) -> None:
        self.begin, self.end = begin, end
        self.times: list[np.ndarray] = []
        self.backwards = 0

    def __call__(self, t: np.ndarray, backwards: int) -> None:
        self.backwards += backwards
        lo = self.begin if self.begin is not None else -(1 << 63)
        hi = self.end if self.end is not None else (1 << 63) - 1
        self.times.append(t[(t >= lo) & (t <= hi)])

    def all(self) -> np.ndarray:
        return np.sort(np.concatenate(self.times)) if self.times else np.zeros(0, np.int64)


def _read(path: Path, names: list[str], begin: int | None = None, end: int | None = None,
          merged: bool = True) -> tuple[_Tally, int, int]:
    """(tally of every event's time, events decoded in the batches, events stepped over)."""
    ts = tracewatch.open(str(path))
    assert ts.reports_times
    tally = _Tally(begin, end)
    n = sum(len(b) for b in ts.batches(names=names, end=end, merged=merged, on_times=tally))
    skipped = 0
    for sf in ts.streams:  # how many the decoder stepped over, to know the test skips some
        skipped += sum(c.skipped.size for c in ts.stream_chunks(sf, ts.class_ids(names)))
    return tally, n, skipped


@pytest.mark.parametrize("merged", [True, False])
def test_many_threads_every_event_time_when_decoding_one_class(merged: bool) -> None:
    bt = _bt2_times(MANY_THREADS)
    tally, n, skipped = _read(MANY_THREADS, ["sched_switch"], merged=merged)
    got = tally.all()
    assert bt.size == 240_644 and tally.backwards == 0
    assert got.size == bt.size and int(got[0]) == int(bt[0]) and int(got[-1]) == int(bt[-1])
    # the multiset of times, not just its size and bounds
    assert np.array_equal(got, np.sort(bt))
    # most events were stepped over; the decoded ones are the sched_switch events (and
    # those of variable size, which cannot be stepped over, filtered out by names)
    assert skipped > 150_000 and 0 < n < 60_000


def test_many_threads_range_like_babeltrace2_begin_end() -> None:
    b, e = 1_457_113_582_900_000_000, 1_457_113_583_100_000_000
    bt = _bt2_times(MANY_THREADS, "--begin", "1457113582.900000000", "--end", "1457113583.100000000")
    tally, _, _ = _read(MANY_THREADS, ["sched_switch", "irq_handler_entry"], begin=b, end=e)
    got = tally.all()
    assert 50_000 < bt.size < 200_000
    assert got.size == bt.size and int(got[0]) == int(bt[0]) and int(got[-1]) == int(bt[-1])


def test_two_traces_every_event_time() -> None:
    """Two traces of two machines in one set."""
    tally, _, skipped = _read(TCP_SYNC, ["sched_switch"])
    got = tally.all()
    # per trace, babeltrace2 without its muxer (which stops at a time going backwards
    # between the two machines' traces)
    bt = []
    for sub in ("scp_src", "scp_dest"):
        out = babeltrace2("run", "--component=src:src.ctf.fs", f'--params=inputs=["{TCP_SYNC / sub}"]',
                          "--component=sink:sink.text.pretty", "--params=clock-seconds=true",
                          "--connect=src:sink").stdout
        bt += [int(s) * 1_000_000_000 + int(ns) for s, ns in _TS.findall(out)]
    assert skipped > 0 and len(bt) == 110_771 + 85_729
    assert np.array_equal(got, np.sort(np.array(bt, np.int64)))


def _suite_pass_cases() -> list[Path]:
    return sorted(p for p in SUITE.glob("*/pass/*") if p.is_dir())


@pytest.mark.parametrize("case", _suite_pass_cases(), ids=lambda p: "/".join(p.parts[-3:]))
def test_suite_pass_case_counts(case: Path) -> None:
    """Decoding no class at all: every event still counted, at babeltrace2's times."""
    if shutil.which("babeltrace2") is None:
        pytest.skip("babeltrace2 is not installed")
    bt = subprocess.run(["babeltrace2", "--clock-seconds", str(case)], capture_output=True, text=True,
                        timeout=60, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})
    if bt.returncode != 0:
        pytest.skip("babeltrace2 2.0.4 cannot read this pass case")
    counter = babeltrace2("--component=sink.utils.counter", str(case)).stdout
    count = int(re.findall(r"^\s*(\d+) Event messages?$", counter, re.M)[-1])
    ts = tracewatch.open(str(case))
    tally = _Tally()
    assert sum(len(b) for b in ts.batches(names=[], on_times=tally)) == 0
    got = tally.all()
    assert got.size == count
    times = [int(s) * 1_000_000_000 + int(ns) for s, ns in _TS.findall(bt.stdout)]
    if times:  # events with a timestamp
        assert len(times) == count
        assert int(got[0]) == min(times) and int(got[-1]) == max(times)


def test_live_like_sets_refuse_on_times() -> None:
    class Own(tracewatch.TraceSet):
        def _batch_source(self, merged: bool, wanted: np.ndarray | None = None) -> Iterator[Any]:
            return iter(())

    ts = Own([str(MANY_THREADS)])
    assert not ts.reports_times
    with pytest.raises(ValueError):
        next(iter(ts.batches(on_times=lambda t, b: None)))
