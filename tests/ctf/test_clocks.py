"""Clock conversion: cycles of any frequency with offsets, to ns since the epoch, as babeltrace2."""

from __future__ import annotations

from pathlib import Path

import pytest

import tracewatch
from tracewatch.ctf.types import ClockClass
from tracewatch.ctf.writer import Int, Struct, TraceWriter
from tracewatch.output.text import TextFormatter, TextOptions

from ..conftest import babeltrace2


@pytest.mark.parametrize(("freq", "offset_s", "offset"), [
    (1_000_000_000, 1_457_113_582, 0),
    (1_000_003, 1_600_000_000, 12_345),
    (2_399_987_000, 1_700_000_000, 2_399_986_999),
    (32_768, -1000, 5),
])
def test_clock_to_ns_like_babeltrace2(tmp_path: Path, freq: int, offset_s: int, offset: int) -> None:
    path = tmp_path / "t"
    stamps = sorted([0, 1, freq - 1, freq, 3 * freq + 17, (1 << 27) + 5, 10 * freq + (1 << 31)])
    with TraceWriter(str(path), hostname="h", clock_freq=freq, clock_offset_s=offset_s,
                     clock_offset=offset) as w:
        sc = w.add_stream_class(header="compact")
        ec = sc.add_event_class("e", Struct([("i", Int(32))]))
        s = w.add_stream(sc, cpu=0)
        for i, t in enumerate(stamps):
            s.write(ec, t, {"i": i})
    ts = tracewatch.open(str(path))
    events = list(ts.events())
    clock = ClockClass("c", freq=freq, offset_s=offset_s, offset=offset)
    assert [e.timestamp for e in events] == [clock.to_ns(t) for t in stamps]
    # hand computation: one second of cycles is 1e9 ns, whatever the frequency and offset
    assert clock.to_ns(freq) - clock.to_ns(0) == 1_000_000_000
    # and within a microsecond of the exact rational value
    for t in stamps:
        exact = offset_s * 10**9 + (offset + t) * 10**9 / freq
        assert abs(clock.to_ns(t) - exact) < 1000
    fmt = TextFormatter(TextOptions(clock_seconds=True, delta=False))
    ours = [fmt.format(e) for e in events]
    assert ours == babeltrace2("--clock-seconds", "--no-delta", str(path)).stdout.splitlines()
