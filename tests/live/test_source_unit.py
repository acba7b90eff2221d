"""Parts of the live trace set that need no daemon: metadata cut mid-declaration and growing,
and packet-by-packet decoding with one reader state (``StreamReader.decode_packet``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tracewatch.ctf.compile import compile_trace
from tracewatch.ctf.metadata import read_metadata
from tracewatch.ctf.stream import BytesSource, FileSource, StreamReader
from tracewatch.ctf.writer import Int, String, Struct, TraceWriter
from tracewatch.live.source import _LiveTrace, complete_tsdl_prefix


def test_complete_prefix_ends_after_top_level_declaration() -> None:
    text = ('/* CTF 1.8 */\ntypealias integer { size = 8; align = 8; } := uint8_t;\n'
            'trace { major = 1; minor = 8; };\nenv { name = "a;b}"; /* ; } */ };\nevent { name = "x"; ')
    prefix = complete_tsdl_prefix(text)
    assert prefix.endswith('/* ; } */ };')
    assert complete_tsdl_prefix(text[:40]) == ""
    assert complete_tsdl_prefix(prefix) == prefix
    cut = text.index("a;b") + 2  # inside a string
    assert complete_tsdl_prefix(text[:cut]).endswith("minor = 8; };")


def _write_trace(path: Path, n: int) -> None:
    with TraceWriter(path, hostname="h", packet_size=256) as w:
        sc = w.add_stream_class(header="compact")
        a = sc.add_event_class("a", Struct([("x", Int(32, signed=True))]))
        b = sc.add_event_class("b", Struct([("s", String())]))
        s = w.add_stream(sc, cpu=0)
        for i in range(n):
            s.write(a if i % 3 else b, (1 << 40) + 50_000_000 * i, {"x": i} if i % 3 else {"s": f"e{i}"})


def test_metadata_parsed_by_complete_prefixes_and_growing(tmp_path: Path) -> None:
    _write_trace(tmp_path / "t", 10)
    data = (tmp_path / "t" / "metadata").read_bytes()
    second = data.index(b'name = "b"')  # inside the second event declaration
    lt = _LiveTrace("t")
    first = None
    for i in range(0, second, 97):  # metadata arriving in small pieces
        got = lt.feed(data[i: min(i + 97, second)])
        if got is not None:
            first = got
    assert first is not None
    tc1, _ = first
    assert [e.name for sc in tc1.streams.values() for e in sc.events.values()] == ["a"]
    got = lt.feed(data[second:])
    assert got is not None
    tc2, ct2 = got
    assert sorted(e.name for sc in tc2.streams.values() for e in sc.events.values()) == ["a", "b"]
    assert lt.feed(b"") is None  # nothing new: not parsed again
    assert ct2.clock.freq == read_metadata(str(tmp_path / "t")).clocks[next(iter(tc2.clocks))].freq


@pytest.mark.parametrize("n", [1, 50, 400])
def test_decode_packet_equals_reading_the_file(tmp_path: Path, n: int) -> None:
    _write_trace(tmp_path / "t", n)
    ct = compile_trace(read_metadata(str(tmp_path / "t")))
    path = tmp_path / "t" / "stream_0"
    if not path.exists():
        path = next(p for p in (tmp_path / "t").iterdir() if p.name != "metadata")
    src = FileSource(str(path))
    try:
        chunks = list(StreamReader(ct, src).chunks(max_events=64))
    finally:
        src.close()
    packets = [p for c in chunks for p in c.packets]
    assert len(packets) > (1 if n > 50 else 0)
    data = path.read_bytes()
    live = StreamReader(ct, BytesSource(b"", "live"))
    got = [live.decode_packet(data[p.offset: p.offset + p.packet_size // 8]) for p in packets]
    assert [c.packets[0].offset for c in got if c is not None] == [p.offset for p in packets]
    for field in ("cycles", "cls"):
        want = np.concatenate([getattr(c, field) for c in chunks])
        have = np.concatenate([getattr(c, field) for c in got if c is not None])
        assert np.array_equal(want, have)
    assert live.decode_packet(b"") is None
