"""Tests of tracewatch.ctf.writer, with babeltrace2 (via its Python bindings) as the oracle.

Every trace written here is read back by babeltrace2 2.0 (``/usr/bin/python3`` with the
system ``bt2`` module, in a subprocess that dumps messages as JSON) and compared, event by
event and stream by stream, with what was written.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tracewatch.ctf.writer import (
    Array,
    Enum,
    Float,
    Int,
    Sequence,
    Stream,
    String,
    Struct,
    TraceWriter,
    Variant,
)

SYSTEM_PYTHON = "/usr/bin/python3"

# Dumps babeltrace2's messages as JSON: events (name, clock value in cycles, stream,
# packet context, event context, payload with typed values), packet beginnings/ends and
# discarded-events messages.  (Its text output is not used for values: babeltrace2 2.0.4
# prints a stale string for an empty string field, see conv() below.)
DUMP_SCRIPT = r"""
import bt2, json, sys

def conv(f):
    if isinstance(f, bt2._StructureFieldConst):
        return {k: conv(v) for k, v in f.items()}
    if isinstance(f, bt2._VariantFieldConst):
        return [f.cls.option_at_index(f.selected_option_index).name, conv(f.selected_option)]
    if isinstance(f, bt2._ArrayFieldConst):
        return [conv(x) for x in f]
    if isinstance(f, bt2._EnumerationFieldConst):
        try:
            labels = sorted(f.labels)
        except AssertionError:  # bt2 2.0.4 bindings: a value without label asserts
            labels = []
        return {"enum": int(f), "labels": labels}
    if isinstance(f, bt2._IntegerFieldConst):
        return int(f)
    if isinstance(f, bt2._RealFieldConst):
        return float(f)
    if isinstance(f, bt2._StringFieldConst):
        # babeltrace2 2.0.4 bug: clearing a (recycled) string field only resets its length,
        # so an empty string reads back as the previous content: trust the length.
        return str(f).encode()[:len(f)].decode()
    raise TypeError(type(f))

out = []
for m in bt2.TraceCollectionMessageIterator(sys.argv[1]):
    if type(m) is bt2._EventMessageConst:
        ev = m.event
        ctx = ev.common_context_field
        out.append({"t": "event", "name": ev.name, "ts": m.default_clock_snapshot.value,
                    "sc": ev.stream.cls.id, "sid": ev.stream.id,
                    "cpu": int(ev.packet.context_field["cpu_id"]),
                    "ctx": conv(ctx) if ctx is not None else None,
                    "p": conv(ev.payload_field) if ev.payload_field is not None else None})
    elif type(m) is bt2._DiscardedEventsMessageConst:
        out.append({"t": "discarded", "count": m.count, "sc": m.stream.cls.id,
                    "sid": m.stream.id,
                    "begin": m.beginning_default_clock_snapshot.value,
                    "end": m.end_default_clock_snapshot.value})
    elif type(m) is bt2._PacketBeginningMessageConst:
        out.append({"t": "packet", "sc": m.packet.stream.cls.id, "sid": m.packet.stream.id,
                    "cpu": int(m.packet.context_field["cpu_id"]),
                    "ts": m.default_clock_snapshot.value})
    elif type(m) is bt2._PacketEndMessageConst:
        out.append({"t": "packet_end", "sid": m.packet.stream.id,
                    "ts": m.default_clock_snapshot.value})
    elif type(m) is bt2._DiscardedPacketsMessageConst:
        out.append({"t": "discarded_packets", "sid": m.stream.id})
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="module", autouse=True)
def _need_babeltrace2() -> None:
    if shutil.which("babeltrace2") is None:
        pytest.skip("babeltrace2 is not installed")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import bt2"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("the babeltrace2 Python bindings (python3-bt2) are not installed")


def bt2_dump(path: Path) -> list[dict[str, Any]]:
    """babeltrace2's view of a trace (see DUMP_SCRIPT)."""
    proc = subprocess.run([SYSTEM_PYTHON, "-c", DUMP_SCRIPT, str(path)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, f"babeltrace2 failed to read {path}:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def bt2_text(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["babeltrace2", "--clock-cycles", "--no-delta", str(path)],
                          capture_output=True, text=True, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})


# --------------------------------------------------------------------------------------
# What babeltrace2 should show for a written value
# --------------------------------------------------------------------------------------


def _text(x: str | bytes) -> str:
    raw = x.encode() if isinstance(x, str) else bytes(x)
    return raw.split(b"\0", 1)[0].decode()


def expected(t: Any, x: Any) -> Any:
    """Normalized value babeltrace2 reports for value ``x`` of type ``t``."""
    if isinstance(t, Int):
        return int(x)
    if isinstance(t, Enum):
        value = t.label_values[x] if isinstance(x, str) else int(x)
        return {"enum": value, "labels": sorted(t.labels_of(value))}
    if isinstance(t, Float):
        if t.size == 32:
            return struct.unpack("<f", struct.pack("<f", x))[0]
        return float(x)
    if isinstance(t, String):
        return _text(x)
    if isinstance(t, (Array, Sequence)):
        if isinstance(t.element, Int) and t.element.encoding == "UTF8" and t.element.size == 8:
            return _text(x)
        return [expected(t.element, e) for e in x]
    if isinstance(t, Variant):
        label, value = x
        return [label, expected(dict(t.options)[label], value)]
    if isinstance(t, Struct):
        return expected_struct(t, x)
    raise TypeError(t)


HIDDEN = object()  # babeltrace2 keeps clock-mapped integers (and structs of only those) out


def expected_struct(t: Struct, x: Mapping[str, Any] | None) -> Any:
    x = dict(x or {})
    types: dict[str, Any] = dict(t.fields)
    # fields the writer fills in: sequence lengths and variant tags
    for name, ft in t.fields:
        if isinstance(ft, Sequence) and ft.length_field not in x:
            v = x[name]
            x[ft.length_field] = len(v.encode() if isinstance(v, str) else v)
        if isinstance(ft, Variant) and ft.tag_field not in x:
            x[ft.tag_field] = types[ft.tag_field].label_values[x[name][0]]
    out = {}
    for name, ft in t.fields:
        if isinstance(ft, Int) and ft.map_clock:
            continue  # babeltrace2 keeps clock-mapped integers out of its trace IR
        value = expected(ft, x[name])
        if value is not HIDDEN:
            out[name] = value
    return out if out or not t.fields else HIDDEN


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and type(a) is type(b)


class Recorder:
    """Writes events and remembers what babeltrace2 should report, per stream."""

    def __init__(self) -> None:
        self.events: dict[int, list[dict[str, Any]]] = {}

    def write(self, stream: Stream, ec: Any, ts: int, values: Any = None,
              context: Any = None) -> None:
        stream.write(ec, ts, values, context)
        self.record(stream, ec, ts, values, context)

    def record(self, stream: Stream, ec: Any, ts: int, values: Any = None,
               context: Any = None) -> None:
        sc = stream.stream_class
        ctx = expected_struct(sc.event_context, context) if sc.event_context is not None \
            else None
        payload = expected_struct(ec.fields, values)
        self.events.setdefault(stream.instance_id, []).append(
            {"name": ec.name, "ts": ts, "ctx": None if ctx is HIDDEN else ctx,
             "p": None if payload is HIDDEN else payload, "cpu": stream.cpu, "sc": sc.id})

    def check(self, path: Path) -> list[dict[str, Any]]:
        dump = bt2_dump(path)
        got: dict[int, list[dict[str, Any]]] = {}
        for m in dump:
            if m["t"] == "event":
                got.setdefault(m["sid"], []).append(
                    {k: m[k] for k in ("name", "ts", "ctx", "p", "cpu", "sc")})
        assert sorted(got) == sorted(self.events)
        for sid, events in self.events.items():
            assert len(got[sid]) == len(events), f"stream {sid}"
            for i, (g, e) in enumerate(zip(got[sid], events, strict=True)):
                assert same(g, e), f"stream {sid} event {i}:\n got      {g}\n expected {e}"
        return dump


# --------------------------------------------------------------------------------------
# Every field type, several stream classes, both byte orders
# --------------------------------------------------------------------------------------

COMM = Array(Int(8, encoding="UTF8"), 16)
STATE = Enum(Int(8), {"running": 0, "sleeping": 1, "blocked": (2, 5), "zombie": [16, (32, 40)]})
KIND = Enum(Int(3, signed=True), {"neg": (-4, -1), "zero": 0, "pos": (1, 3)})
EVERYTHING = Struct([
    ("prev_comm", COMM),
    ("prev_tid", Int(32, signed=True)),
    ("prev_state", Int(64, signed=True)),
    ("u8", Int(8)), ("s8", Int(8, signed=True)), ("u16", Int(16, base=16)),
    ("u64", Int(64, base=16)),
    ("bit1", Int(1)), ("bits3", Int(3, signed=True)), ("bits13", Int(13)),
    ("bits27", Int(27, signed=True)), ("bits33", Int(33)), ("bits63", Int(63, signed=True)),
    ("u24", Int(24)), ("s40", Int(40, signed=True)),
    ("al32", Int(16, align=32)), ("unal", Int(16, align=1)),
    ("be16", Int(16, byte_order="be")), ("le32", Int(32, signed=True, byte_order="le")),
    ("oct", Int(12, base=8)), ("bin", Int(5, base=2)),
    ("f32", Float(32)), ("f64", Float(64)), ("f64a", Float(64, align=64)),
    ("f32u", Float(32, align=1)),
    ("name", String()),
    ("state", STATE),
    ("kind", KIND),
    ("point", Struct([("x", Int(32, signed=True)), ("y", Int(7)), ("z", Float(64))])),
    ("padded", Struct([("a", Int(8))], align=64)),
    ("ints", Array(Int(32), 3)),
    ("bitarr", Array(Int(5, signed=True), 4)),
    ("grid", Array(Array(Int(8), 3), 2)),
    ("pairs", Array(Struct([("k", Int(4)), ("v", String())]), 2)),
    ("n", Int(8)),
    ("values", Sequence(Int(64, signed=True), "n")),
    ("m", Int(16)),
    ("text", Sequence(Int(8, encoding="UTF8"), "m")),
    ("structs", Sequence(Struct([("id", Int(16)), ("tags", Array(Int(2), 3))]), "n")),
    ("opt", Enum(Int(8), {"none": 0, "num": 1, "str": 2, "rec": 3, "list": 4})),
    ("payload", Variant("opt", {"none": Struct(), "num": Int(32, signed=True),
                                "str": String(),
                                "rec": Struct([("a", Int(3)), ("b", Float(32))]),
                                "list": Sequence(Int(16), "n")})),
    ("tail", Int(5)),
])


def everything_value(i: int) -> dict[str, Any]:
    n = i % 4
    options = [("none", {}), ("num", -i), ("str", f"ü{i}"), ("rec", {"a": i % 8, "b": 0.5}),
               ("list", list(range(n)))]
    v: dict[str, Any] = {
        "prev_comm": "kwörker/0:1" if i % 2 else "swapper",
        "prev_tid": -i, "prev_state": -(2**63) if i == 3 else 2**40 + i,
        "u8": 255, "s8": -128, "u16": 0xBEEF, "u64": 2**64 - 1 - i,
        "bit1": i % 2, "bits3": -4 + i % 8, "bits13": 8191 - i, "bits27": -(2**26) + i,
        "bits33": 2**33 - 1 - i, "bits63": -(2**62) + i, "u24": 2**24 - 1 - i,
        "s40": -(2**39) + i, "al32": i, "unal": 65535 - i, "be16": 0x1234 + i,
        "le32": -123456, "oct": 0o7777 - i, "bin": 0b10101,
        "f32": 3.25 + i, "f64": -1e-300 * (i + 1), "f64a": math.inf if i == 2 else math.pi,
        "f32u": -0.1 * i,
        "name": "héllo wörld ✓ 日本" * (i % 3),
        "state": ["running", 1, "blocked", 4, "zombie", 35][i % 6],
        "kind": ["neg", -3, 0, "pos", 3][i % 5],
        "point": {"x": -7 * i, "y": 127, "z": 1.0 / (i + 1)},
        "padded": {"a": i % 256},
        "ints": [i, 2 * i, 2**32 - 1],
        "bitarr": [-16, 15, 0, -1],
        "grid": [[1, 2, 3], [4, 5, i % 256]],
        "pairs": [{"k": 15, "v": "a"}, {"k": i % 16, "v": ""}],
        "values": [-(2**63), 2**63 - 1, 0][:n] + [i] * max(0, n - 3),
        "text": "ascii and ünïcödé"[: i % 10],
        "structs": [{"id": j, "tags": [j % 4, 3, 0]} for j in range(n)],
        "payload": options[i % 5],
        "tail": 31,
    }
    if i % 2:  # give the automatic fields explicitly half of the time
        v["n"] = n
        v["m"] = len(v["text"].encode())
        v["opt"] = ["none", "num", "str", "rec", "list"][i % 5]
    return v


@pytest.mark.parametrize("byte_order", ["le", "be"])
def test_every_type_round_trips(tmp_path: Path, byte_order: str) -> None:
    rec = Recorder()
    path = tmp_path / "trace"
    with TraceWriter(path, byte_order=byte_order, hostname="sim-host",  # type: ignore[arg-type]
                     packet_size=1024) as w:
        kernel = w.add_stream_class("compact")
        ust = w.add_stream_class("large", event_context=Struct([
            ("vtid", Int(32, signed=True)), ("procname", COMM), ("flag", Int(3)),
            ("ip", Int(64, base=16))]))
        both = [kernel.add_event_class("everything", EVERYTHING),
                ust.add_event_class("everything", EVERYTHING, id=70_000)]
        empty = kernel.add_event_class("statedump_start", id=1000)
        small = ust.add_event_class("small", Struct([("v", Int(4))]))
        streams = [(w.add_stream(kernel, cpu), both[0], empty) for cpu in range(2)]
        streams += [(w.add_stream(ust, cpu), both[1], small) for cpu in range(2)]
        for k, (s, ec, other) in enumerate(streams):
            ts = 10**9 * (k + 1)
            for i in range(12):
                ctx = None
                if s.stream_class is ust:
                    ctx = {"vtid": 1000 + i, "procname": "sim", "flag": i % 8, "ip": 2**63 + i}
                rec.write(s, ec, ts, everything_value(i + k), ctx)
                ts += [0, 1, 2**27 - 1, 2**27, 2**27 + 1, 2**32, 5][i % 7]
                rec.write(s, other, ts, {"v": i % 16} if other is small else None, ctx)
    assert (path / "metadata").read_text().startswith("/* CTF 1.8 */")
    rec.check(path)


# --------------------------------------------------------------------------------------
# Event headers: compact/extended forms and timestamp wrap-arounds
# --------------------------------------------------------------------------------------


def _event_headers(data: bytes, byte_order: str, kind: str, payload: int) -> list[tuple]:
    """Decode (form, id, timestamp bits) of each event of the first packet (fixed payload)."""
    p = "<" if byte_order == "le" else ">"
    content = struct.unpack_from(p + "Q", data, 32 + 16)[0] // 8
    out, pos = [], 84
    while pos < content:
        if kind == "compact":
            (word,) = struct.unpack_from(p + "I", data, pos)
            eid, low = (word & 31, word >> 5) if byte_order == "le" else (word >> 27, word & (2**27 - 1))
            if eid == 31:
                eid, full = struct.unpack_from(p + "IQ", data, pos + 1)
                out.append(("extended", eid, full))
                pos += 13
            else:
                out.append(("compact", eid, low))
                pos += 4
        else:
            (eid,) = struct.unpack_from(p + "H", data, pos)
            if eid == 65535:
                eid, full = struct.unpack_from(p + "IQ", data, pos + 2)
                out.append(("extended", eid, full))
                pos += 14
            else:
                out.append(("compact", eid, struct.unpack_from(p + "I", data, pos + 2)[0]))
                pos += 6
        pos += payload
    return out


@pytest.mark.parametrize("byte_order", ["le", "be"])
@pytest.mark.parametrize("kind,bits", [("compact", 27), ("large", 32)])
def test_header_forms_and_wraparounds(tmp_path: Path, byte_order: str, kind: str,
                                      bits: int) -> None:
    span = 1 << bits
    mask = span - 1
    start = 5 * span - 100  # low bits close to wrapping
    deltas = [0, 50, 49, 1, span - 1, span, span + 1, 0, 3 * span, span - 2, 7, span // 2,
              span // 2 + 1, 2**40, 1]
    rec = Recorder()
    path = tmp_path / "trace"
    with TraceWriter(path, byte_order=byte_order) as w:  # type: ignore[arg-type]
        sc = w.add_stream_class(kind)  # type: ignore[arg-type]
        ec = sc.add_event_class("e", Struct([("i", Int(32))]))
        s = w.add_stream(sc, 0)
        ts, stamps = start, []
        for i, d in enumerate(deltas):
            ts += d
            stamps.append(ts)
            rec.write(s, ec, ts, {"i": i})
    rec.check(path)
    headers = _event_headers((path / "chan0_0").read_bytes(), byte_order, kind, 4)
    assert len(headers) == len(deltas)
    prev = stamps[0]  # timestamp_begin of the first packet is the first event's
    for (form, eid, value), ts in zip(headers, stamps, strict=True):
        assert eid == 0
        if ts - prev < span:
            assert form == "compact" and value == ts & mask, (ts, prev)
        else:
            assert form == "extended" and value == ts
        prev = ts


def test_event_ids_beyond_compact_range_use_extended_headers(tmp_path: Path) -> None:
    rec = Recorder()
    with TraceWriter(tmp_path / "t") as w:
        sc = w.add_stream_class("compact")
        low = sc.add_event_class("low", Struct([("x", Int(8))]), id=30)
        high = sc.add_event_class("high", Struct([("x", Int(8))]), id=31)
        huge = sc.add_event_class("huge", Struct([("x", Int(8))]), id=2**32 - 1)
        s = w.add_stream(sc, 0)
        for i in range(6):
            rec.write(s, [low, high, huge][i % 3], 100 + i, {"x": i})
    rec.check(tmp_path / "t")
    forms = [(f, e) for f, e, _ in _event_headers((tmp_path / "t" / "chan0_0").read_bytes(),
                                                  "le", "compact", 1)]
    assert forms == [("compact", 30), ("extended", 31), ("extended", 2**32 - 1)] * 2


# --------------------------------------------------------------------------------------
# Packets: sizes, context, sequence numbers, discarded events
# --------------------------------------------------------------------------------------


def _packet_contexts(data: bytes, packet_size: int, byte_order: str = "le") -> list[dict]:
    p = "<" if byte_order == "le" else ">"
    out = []
    for off in range(0, len(data), packet_size):
        magic, _uuid, sc, sid = struct.unpack_from(p + "I16sIQ", data, off)
        assert magic == 0xC1FC1FC1
        names = ("begin", "end", "content_size", "packet_size", "seq", "discarded", "cpu")
        out.append(dict(zip(names, struct.unpack_from(p + "QQQQQQI", data, off + 32),
                            strict=True)) | {"sc": sc, "sid": sid})
    return out


def test_packets_context_and_discarded_events(tmp_path: Path) -> None:
    path = tmp_path / "t"
    rec = Recorder()
    with TraceWriter(path, packet_size=256) as w:
        sc = w.add_stream_class("compact")
        ev = sc.add_event_class("ev", Struct([("s", String()), ("b", Int(3))]))
        s0, s1 = w.add_stream(sc, 0), w.add_stream(sc, 5)
        w.add_stream(sc, 7)  # idle: one empty packet
        ts = 1000
        for i in range(60):
            ts += 10_000
            rec.write(s0, ev, ts, {"s": "x" * (i % 40), "b": i % 8})
            if i == 20:
                s0.discard(3)
            if i == 40:
                s0.discard(4)
                s0.discard()
        rec.write(s1, ev, 500, {"s": "one", "b": 7})
        s1.flush_packet()
        s1.discard(9)  # reported in an empty packet when closing
    dump = rec.check(path)
    data = (path / "chan0_0").read_bytes()
    assert len(data) % 256 == 0 and len(data) // 256 == s0.packet_count > 5
    ctxs = _packet_contexts(data, 256)
    assert [c["seq"] for c in ctxs] == list(range(len(ctxs)))
    assert all(c["packet_size"] == 256 * 8 and c["cpu"] == 0 and c["sid"] == 0 for c in ctxs)
    assert all(c["begin"] <= c["end"] for c in ctxs)
    assert all(a["end"] <= b["begin"] for a, b in zip(ctxs, ctxs[1:], strict=False))
    assert ctxs[0]["begin"] == 11_000 and ctxs[-1]["end"] == ts
    assert [c["discarded"] for c in ctxs][-1] == 8
    assert sorted({c["discarded"] for c in ctxs}) == [0, 3, 8]
    # content_size is exact in bits: the last event of a packet ends mid-byte (3-bit field)
    assert all(c["content_size"] % 8 == 3 for c in ctxs)
    # babeltrace2 reports the discarded events, per stream
    discarded = [(m["sid"], m["count"]) for m in dump if m["t"] == "discarded"]
    assert discarded == [(0, 3), (0, 5), (1, 9)] or sorted(discarded) == [(0, 3), (0, 5), (1, 9)]
    assert not [m for m in dump if m["t"] == "discarded_packets"]
    packets = [m for m in dump if m["t"] == "packet"]
    assert {(m["sid"], m["cpu"]) for m in packets} == {(0, 0), (1, 5), (2, 7)}
    assert len([m for m in packets if m["sid"] == 0]) == len(ctxs)
    s1_ctx = _packet_contexts((path / "chan0_5").read_bytes(), 256)
    assert [(c["seq"], c["discarded"], c["begin"], c["end"]) for c in s1_ctx] == \
        [(0, 0, 500, 500), (1, 9, 500, 500)]
    assert s1_ctx[1]["content_size"] == 84 * 8  # empty packet
    assert len(_packet_contexts((path / "chan0_7").read_bytes(), 256)) == 1  # idle stream
    text = bt2_text(path)
    assert text.returncode == 0
    assert "discarded 3 events" in text.stderr and "discarded 9 events" in text.stderr
    assert text.stdout.count("{ cpu_id = 5 }") == 1


def test_event_too_large_for_packet(tmp_path: Path) -> None:
    with TraceWriter(tmp_path / "t", packet_size=128) as w:
        sc = w.add_stream_class()
        ev = sc.add_event_class("ev", Struct([("s", String())]))
        s = w.add_stream(sc)
        with pytest.raises(ValueError, match="does not fit"):
            s.write(ev, 1, {"s": "x" * 100})
        s.write(ev, 2, {"s": "x" * 20})
    assert [m["p"] for m in bt2_dump(tmp_path / "t") if m["t"] == "event"] == [{"s": "x" * 20}]


# --------------------------------------------------------------------------------------
# Clock-mapped fields, byte orders, nested references
# --------------------------------------------------------------------------------------


def test_clock_mapped_fields_keep_timestamps_right(tmp_path: Path) -> None:
    """babeltrace2 updates its clock from mapped fields (and hides them): the writer must
    account for that when choosing compact headers."""
    rec = Recorder()
    with TraceWriter(tmp_path / "t") as w:
        sc = w.add_stream_class("compact", event_context=Struct([("t16", Int(16, map_clock=True))]))
        m = sc.add_event_class("m", Struct([("a", Int(27, map_clock=True)), ("b", Int(3)),
                                            ("c", Int(64, map_clock=True))]))
        e = sc.add_event_class("e", Struct([("k", Int(8))]))
        s = w.add_stream(sc, 0)
        ts = 2**27 - 10
        for i, (a, c, t16) in enumerate([(3, 100, 0), (2**27 - 1, 2**30, 65535), (0, 0, 1),
                                         (5, 2**40, 7), (1, 2, 3)]):
            rec.write(s, m, ts, {"a": a, "b": i % 8, "c": c}, {"t16": t16})
            ts += 100
            rec.write(s, e, ts, {"k": i}, {"t16": (ts + 1) & 0xFFFF})
            ts += 2**26
    rec.check(tmp_path / "t")


def test_byte_order_change_mid_byte_is_refused(tmp_path: Path) -> None:
    with TraceWriter(tmp_path / "t") as w:
        sc = w.add_stream_class()
        with pytest.raises(ValueError, match="byte order change in the middle of a byte"):
            sc.add_event_class("bad", Struct([("a", Int(3)), ("b", Int(5, byte_order="be"))]))
        ok = sc.add_event_class("ok", Struct([("a", Int(3)), ("b", Int(5, byte_order="be",
                                                                       align=8)),
                                              ("c", Int(3, byte_order="be")), ("d", Int(4))]))
        with pytest.raises(ValueError, match=r"ok2\.d: byte order change"):
            sc.add_event_class("ok2", Struct([("b", Int(5, byte_order="be")),
                                              ("c", Int(4, byte_order="be")), ("d", Int(4))]))
        # only known at run time: after a variant ending mid-byte or not
        tag = Enum(Int(8), {"x": 0, "y": 1})
        dyn = sc.add_event_class("dyn", Struct([
            ("t", tag), ("v", Variant("t", {"x": Int(8), "y": Int(4)})),
            ("b", Int(4, byte_order="be"))]))
        s = w.add_stream(sc)
        s.write(ok, 1, {"a": 1, "b": 2, "c": 3, "d": 4})
        s.write(dyn, 2, {"v": ("x", 200), "b": 9})
        with pytest.raises(ValueError, match="byte order change"):
            s.write(dyn, 3, {"v": ("y", 2), "b": 9})
    got = [m["p"] for m in bt2_dump(tmp_path / "t") if m["t"] == "event"]
    assert got == [{"a": 1, "b": 2, "c": 3, "d": 4},
                   {"t": {"enum": 0, "labels": ["x"]}, "v": ["x", 200], "b": 9}]


def test_nested_sequences_and_variants_in_arrays(tmp_path: Path) -> None:
    rec = Recorder()
    tag = Enum(Int(4, signed=True), {"neg": (-8, -1), "pos": (0, 7)})
    fields = Struct([
        ("n", Int(8)), ("tag", tag),
        ("arr", Array(Sequence(Int(5), "n"), 2)),
        ("varr", Array(Variant("tag", {"neg": Int(7, signed=True),
                                       "pos": Array(Int(8, encoding="UTF8"), 3)}), 2)),
        ("seqseq", Sequence(Sequence(Int(16, byte_order="be"), "n"), "n")),
        ("st", Array(Struct([("len", Int(8)), ("s", Sequence(Float(64, align=64), "len")),
                             ("s2", Sequence(String(), "len"))], align=32), 2)),
    ])
    for bo in ("le", "be"):
        path = tmp_path / bo
        with TraceWriter(path, byte_order=bo) as w:
            sc = w.add_stream_class()
            ec = sc.add_event_class("nested", fields)
            s = w.add_stream(sc)
            rec = Recorder()
            rec.write(s, ec, 10, {"n": 2, "tag": "neg", "arr": [[1, 31], [0, 17]],
                                  "varr": [("neg", -64), ("neg", 63)],
                                  "seqseq": [[1, 2], [3, 65535]],
                                  "st": [{"s": [1.5, -2.0], "s2": ["a", "é"]},
                                         {"len": 0, "s": [], "s2": []}]})
            rec.write(s, ec, 20, {"n": 0, "tag": 3, "arr": [[], []],
                                  "varr": [("pos", "ab"), ("pos", "abc")], "seqseq": [],
                                  "st": [{"s": [], "s2": []}, {"s": [3.0], "s2": [""]}]})
            # n omitted: set from the direct sequence seqseq, nested uses must agree
            rec.write(s, ec, 25, {"tag": 3, "arr": [[1], [2]], "seqseq": [[7]],
                                  "varr": [("pos", ""), ("pos", "")],
                                  "st": [{"s": [], "s2": []}] * 2})
            with pytest.raises(ValueError, match=r"nested\.arr\[\]: length does not match"):
                s.write(ec, 30, {"tag": 3, "arr": [[1], []], "seqseq": [[7]],
                                 "varr": [("pos", ""), ("pos", "")],
                                 "st": [{"s": [], "s2": []}] * 2})
            with pytest.raises(ValueError, match="option does not match tag"):
                s.write(ec, 30, {"n": 0, "tag": 3, "arr": [[], []],
                                 "varr": [("pos", ""), ("neg", 1)], "seqseq": [],
                                 "st": [{"s": [], "s2": []}] * 2})
        rec.check(path)
    with TraceWriter(tmp_path / "only-nested") as w:
        ec = w.add_stream_class().add_event_class("e", Struct([
            ("k", Int(8)), ("arr", Array(Sequence(Int(8), "k"), 2))]))
        s = w.add_stream(ec.stream_class)
        with pytest.raises(ValueError, match=r"missing field\(s\) \['k'\]"):
            s.write(ec, 1, {"arr": [[1], [2]]})
        s.write(ec, 1, {"k": 1, "arr": [[1], [2]]})


def test_empty_sequence_aligns_like_babeltrace2(tmp_path: Path) -> None:
    """An empty sequence still aligns on its element's alignment (CTF 1.8, babeltrace2)."""
    rec = Recorder()
    with TraceWriter(tmp_path / "t") as w:
        sc = w.add_stream_class()
        ec = sc.add_event_class("e", Struct([("n", Int(8)),
                                             ("s", Sequence(Int(8, align=64), "n")),
                                             ("arr", Array(Int(16, align=32), 0)),
                                             ("c", Int(8))]))
        s = w.add_stream(sc)
        for i in range(4):
            rec.write(s, ec, i, {"s": list(range(i % 2)), "arr": [], "c": i})
    rec.check(tmp_path / "t")


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def test_bad_values_raise_clear_errors_and_write_nothing(tmp_path: Path) -> None:
    rec = Recorder()
    with TraceWriter(tmp_path / "t") as w:
        sc = w.add_stream_class(event_context=Struct([("pid", Int(32))]))
        ec = sc.add_event_class("e", Struct([
            ("u", Int(8)), ("s", Int(5, signed=True)), ("f", Float(32)), ("name", String()),
            ("comm", COMM), ("state", STATE), ("n", Int(2)), ("seq", Sequence(Int(8), "n")),
            ("tag", Enum(Int(8), {"a": 0, "b": 1})),
            ("v", Variant("tag", {"a": Int(8), "b": String()}))]))
        s = w.add_stream(sc, 0)
        good = {"u": 1, "s": -1, "f": 1.0, "name": "x", "comm": "c", "state": 0, "seq": [1],
                "v": ("a", 1)}
        rec.write(s, ec, 100, good, {"pid": 1})
        bad: list[tuple[dict[str, Any], dict[str, Any] | None, str]] = [
            ({"u": 256}, None, r"e\.u: value 256 out of range .*0\.\.255"),
            ({"u": -1}, None, "out of range"),
            ({"s": 16}, None, r"e\.s: value 16 out of range"),
            ({"u": 1.5}, None, "expected an integer"),
            ({"u": "1"}, None, "expected an integer"),
            ({"f": "x"}, None, "expected a number"),
            ({"f": 1e39}, None, "too large for a 32-bit float"),
            ({"name": "a\0b"}, None, "NUL"),
            ({"name": 5}, None, "expected str or bytes"),
            ({"comm": "x" * 17}, None, "does not fit in a 16-byte array"),
            ({"state": "dead"}, None, "unknown enum label 'dead'"),
            ({"state": 256}, None, "out of range"),
            ({"seq": [1, 2, 3, 4]}, None, "do not fit length field 'n'"),
            ({"seq": [1], "n": 2}, None, "has 1 elements but length field 'n' is 2"),
            ({"v": ("c", 1)}, None, "unknown variant option 'c'"),
            ({"v": "a"}, None, "variant values are"),
            ({"v": ("b", "x"), "tag": "a"}, None, "does not match tag"),
            ({"v": ("a", 300)}, None, r"e\.v\.a: value 300 out of range"),
            ({"extra": 1}, None, r"unknown field\(s\) \['extra'\]"),
            ({}, {"pid": 1, "tid": 2}, r"context: unknown field\(s\) \['tid'\]"),
            ({}, None, "context: missing field"),
            ({}, {"pid": -1}, r"context\.pid: value -1 out of range"),
        ]
        for change, ctx, msg in bad:
            values = dict(good) | change
            with pytest.raises(ValueError, match=msg):
                s.write(ec, 200, values, {"pid": 1} if ctx is None and "context" not in msg
                        else ctx)
        missing = dict(good)
        del missing["u"]
        with pytest.raises(ValueError, match=r"missing field\(s\) \['u'\]"):
            s.write(ec, 200, missing, {"pid": 1})
        with pytest.raises(ValueError, match="before the previous one"):
            s.write(ec, 99, good, {"pid": 1})
        with pytest.raises(ValueError, match="64 bits"):
            s.write(ec, 2**64, good, {"pid": 1})
        with pytest.raises(ValueError, match="integers"):
            s.write(ec, 100.5, good, {"pid": 1})  # type: ignore[arg-type]
        rec.write(s, ec, 200, good, {"pid": 2})
        other = w.add_stream_class().add_event_class("o")
        with pytest.raises(ValueError, match="does not belong"):
            s.write(other, 300)
    rec.check(tmp_path / "t")


def test_bad_declarations() -> None:
    with pytest.raises(ValueError, match="size"):
        Int(65)
    with pytest.raises(ValueError, match="alignment"):
        Int(8, align=3)
    with pytest.raises(ValueError, match="unsigned"):
        Int(64, signed=True, map_clock=True)
    with pytest.raises(ValueError, match="32 or 64"):
        Float(16)
    with pytest.raises(ValueError, match="does not fit the container"):
        Enum(Int(2), {"a": 4})
    with pytest.raises(ValueError, match="identifier"):
        Struct([("not ok", Int(8))])
    with pytest.raises(ValueError, match="duplicate"):
        Struct([("a", Int(8)), ("a", Int(8))])
    with pytest.raises(ValueError, match="keyword"):
        Variant("t", {"string": String()})
    with tempfile.TemporaryDirectory() as tmp, TraceWriter(tmp) as w:
        sc = w.add_stream_class()
        with pytest.raises(ValueError, match="previous field"):
            sc.add_event_class("e", Struct([("s", Sequence(Int(8), "n")), ("n", Int(8))]))
        with pytest.raises(ValueError, match="unsigned Int"):
            sc.add_event_class("e", Struct([("n", Int(8, signed=True)),
                                            ("s", Sequence(Int(8), "n"))]))
        with pytest.raises(ValueError, match="must be an Enum"):
            sc.add_event_class("e", Struct([("t", Int(8)), ("v", Variant("t", {"a": Int(8)}))]))
        with pytest.raises(ValueError, match="not a label"):
            sc.add_event_class("e", Struct([("t", Enum(Int(8), {"a": 0})),
                                            ("v", Variant("t", {"b": Int(8)}))]))
        with pytest.raises(ValueError, match="overlap"):
            sc.add_event_class("e", Struct([("t", Enum(Int(8), {"a": (0, 5), "b": 5})),
                                            ("v", Variant("t", {"a": Int(8), "b": Int(8)}))]))
        sc.add_event_class("e", id=3)
        with pytest.raises(ValueError, match="already has an event class"):
            sc.add_event_class("e")
        with pytest.raises(ValueError, match="id 3"):
            sc.add_event_class("f", id=3)
        w.add_stream(sc, 1)
        with pytest.raises(ValueError, match="already a stream"):
            w.add_stream(sc, 1)


def test_trace_directory_and_closed_writer(tmp_path: Path) -> None:
    path = tmp_path / "t"
    with TraceWriter(path) as w:
        sc = w.add_stream_class()
        ec = sc.add_event_class("e")
        s = w.add_stream(sc, 3)
        s.write(ec, 1)
    with pytest.raises(ValueError, match="closed"):
        s.write(ec, 2)
    with pytest.raises(ValueError, match="closed"):
        w.add_stream_class()
    with pytest.raises(ValueError, match="not empty"):
        TraceWriter(path)
    with TraceWriter(path, overwrite=True) as w2:  # the old chan0_3 must not survive
        s2 = w2.add_stream(w2.add_stream_class(), 1)
        s2.write(s2.stream_class.add_event_class("f"), 5)
    assert sorted(p.name for p in path.iterdir()) == ["chan0_1", "metadata"]
    assert [(m["name"], m["ts"]) for m in bt2_dump(path) if m["t"] == "event"] == [("f", 5)]


# --------------------------------------------------------------------------------------
# write_many
# --------------------------------------------------------------------------------------


def test_write_many_matches_write_byte_for_byte(tmp_path: Path) -> None:
    comm = Array(Int(8, encoding="UTF8"), 16)
    fields = Struct([("prev_comm", comm), ("prev_tid", Int(32, signed=True)),
                     ("prev_state", Int(64, signed=True)), ("next_comm", comm),
                     ("f", Float(32)), ("e", STATE), ("arr", Array(Int(16), 3)),
                     ("pt", Struct([("x", Int(8)), ("y", Float(64, byte_order="be"))]))])
    ctx = Struct([("vtid", Int(32)), ("flag", Int(8, signed=True))])
    rng = np.random.default_rng(7)
    n = 3000
    deltas = rng.choice([0, 1, 999, 2**27 - 1, 2**27, 2**27 + 5, 2**33], size=n)
    ts = (2**40 + np.cumsum(deltas)).astype(np.uint64)
    cols: dict[str, Any] = {
        "prev_comm": np.array([b"swapper/0", b"bash", b"\xc3\xa9t\xc3\xa9"])[np.arange(n) % 3],
        "prev_tid": rng.integers(-(2**31), 2**31, n), "prev_state": rng.integers(-5, 5, n),
        "next_comm": ["kworker/" + str(i % 7) for i in range(n)],
        "f": rng.normal(size=n), "e": ["zombie" if i % 5 == 0 else i % 3 for i in range(n)],
        "arr": rng.integers(0, 2**16, (n, 3)),
        "pt": [{"x": i % 256, "y": i / 3} for i in range(n)],
    }
    ctx_cols: dict[str, Any] = {"vtid": np.arange(n) + 100, "flag": -3}
    outs = []
    for mode in ("write", "write_many"):
        for kind, eid in (("compact", 3), ("compact", 500), ("large", 9)):
            path = tmp_path / f"{mode}-{kind}-{eid}"
            with TraceWriter(path, uuid="5e1f9a36-54c5-43a6-9a2a-7dc1f4cf1b6e",
                             packet_size=4096) as w:
                sc = w.add_stream_class(kind, event_context=ctx)  # type: ignore[arg-type]
                ec = sc.add_event_class("sched_switch", fields, id=eid)
                s = w.add_stream(sc, 2)
                s.write(ec, 2**40 - 5, {k: (v[0].tolist() if isinstance(v, np.ndarray) else v[0])
                                        for k, v in cols.items()}, {"vtid": 1, "flag": 0})
                if mode == "write":
                    for i in range(n):
                        s.write(ec, int(ts[i]),
                                {k: (v[i].tolist() if isinstance(v, np.ndarray) else v[i])
                                 for k, v in cols.items()},
                                {"vtid": int(ctx_cols["vtid"][i]), "flag": -3})
                else:
                    s.write_many(ec, ts[:1000], cols, ctx_cols)
                    s.write_many(ec, ts[1000:], {k: v[1000:] for k, v in cols.items()},
                                 {"vtid": ctx_cols["vtid"][1000:], "flag": -3})
                assert s.event_count == n + 1
            outs.append((path / "chan0_2").read_bytes())
    assert outs[:3] == outs[3:]
    dump = bt2_dump(tmp_path / "write_many-compact-3")
    events = [m for m in dump if m["t"] == "event"]
    assert len(events) == n + 1 and [m["ts"] for m in events[1:]] == ts.tolist()
    assert [m["p"]["prev_comm"] for m in events[1:4]] == ["swapper/0", "bash", "été"]
    assert events[3]["p"]["e"] == {"enum": 2, "labels": ["blocked"]}
    assert events[1]["p"]["e"] == {"enum": 16, "labels": ["zombie"]}


def test_write_many_variable_layout_falls_back(tmp_path: Path) -> None:
    rec = Recorder()
    with TraceWriter(tmp_path / "t", byte_order="be") as w:
        sc = w.add_stream_class()
        ec = sc.add_event_class("irq", Struct([("irq", Int(32, signed=True)), ("name", String()),
                                               ("bits", Int(3))]))
        s = w.add_stream(sc, 1)
        names = ["eth0", "ahci", "i915"]
        s.write_many(ec, [5, 6, 6, 2**30], {"irq": np.array([1, 2, 3, 4]),
                                            "name": names + ["x"], "bits": 7})
        for i, ts in enumerate([5, 6, 6, 2**30]):
            rec.record(s, ec, ts, {"irq": i + 1, "name": (names + ["x"])[i], "bits": 7})
    rec.check(tmp_path / "t")


def test_write_many_errors(tmp_path: Path) -> None:
    with TraceWriter(tmp_path / "t") as w:
        sc = w.add_stream_class()
        ec = sc.add_event_class("e", Struct([("a", Int(8)), ("c", COMM)]))
        s = w.add_stream(sc)
        with pytest.raises(ValueError, match="must not decrease"):
            s.write_many(ec, [3, 2], {"a": 1, "c": "x"})
        with pytest.raises(ValueError, match="out of range"):
            s.write_many(ec, [1, 2], {"a": [1, 256], "c": "x"})
        with pytest.raises(ValueError, match="longer than 16"):
            s.write_many(ec, [1, 2], {"a": 1, "c": ["x", "y" * 17]})
        with pytest.raises(ValueError, match="missing column"):
            s.write_many(ec, [1, 2], {"a": 1})
        with pytest.raises(ValueError, match="unknown field"):
            s.write_many(ec, [1, 2], {"a": 1, "c": "x", "d": 3})
        s.write_many(ec, np.array([1, 2], dtype=np.uint64), {"a": [3, 4], "c": "ok"})
        with pytest.raises(ValueError, match="before the previous"):
            s.write_many(ec, [1], {"a": 1, "c": "x"})
    got = [(m["ts"], m["p"]) for m in bt2_dump(tmp_path / "t") if m["t"] == "event"]
    assert got == [(1, {"a": 3, "c": "ok"}), (2, {"a": 4, "c": "ok"})]


def test_metadata_follows_lttng_conventions(tmp_path: Path) -> None:
    with TraceWriter(tmp_path / "t", hostname="h1", clock_offset_s=1_600_000_000,
                     clock_offset=123, env={"tracer_minor": 13, "vm": "guest-1"}) as w:
        sc = w.add_stream_class("compact", event_context=Struct([("tid", Int(32))]))
        sc.add_event_class("sched_switch", Struct([("event", Int(8)), ("_x", String())]),
                           loglevel=13)
        w.add_stream_class("large")
    text = (tmp_path / "t" / "metadata").read_text()
    assert text.startswith("/* CTF 1.8 */")
    for needle in ("major = 1;", "minor = 8;", "byte_order = le;",
                   "enum : uint5_t { compact = 0 ... 30, extended = 31 } id;",
                   "enum : uint16_t { compact = 0 ... 65534, extended = 65535 } id;",
                   "uint27_clock_monotonic_t timestamp;", "uint32_clock_monotonic_t timestamp;",
                   "map = clock.monotonic.value;", "} align(8);", 'hostname = "h1";',
                   'tracer_name = "lttng-modules";', "tracer_minor = 13;", 'vm = "guest-1";',
                   "offset_s = 1600000000;", "offset = 123;", "unsigned long events_discarded;",
                   "event.header := struct event_header_large;", "loglevel = 13;",
                   "_event;", "__x;", "_tid;"):
        assert needle in text, needle
    dump = bt2_text(tmp_path / "t")
    assert dump.returncode == 0


# --------------------------------------------------------------------------------------
# Property test: random event classes, values, byte orders, headers, timestamps
# --------------------------------------------------------------------------------------

NAMES = ["a", "b", "tid", "comm", "value", "_priv", "x1", "string", "event", "int", "struct",
         "id", "len", "data", "flags", "cpu", "v", "w"]
OPTION_NAMES = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]


@st.composite
def int_types(draw: st.DrawFn, byte_aligned_override: bool = True) -> Int:
    size = draw(st.integers(1, 64))
    align = draw(st.sampled_from([None, None, 1, 8, 16, 32, 64]))
    natural = align if align is not None else (8 if size % 8 == 0 else 1)
    bo: Any = None
    if size % 8 == 0 and natural >= 8:  # never a byte-order change mid-byte
        bo = draw(st.sampled_from([None, "le", "be"]))
    return Int(size, signed=draw(st.booleans()), align=align, byte_order=bo,
               base=draw(st.sampled_from([2, 8, 10, 16])))


@st.composite
def enum_types(draw: st.DrawFn, labels: list[str] | None = None) -> Enum:
    cont = draw(int_types())
    if cont.max - cont.min < 8:
        cont = Int(8, signed=cont.signed)
    labels = labels or draw(st.lists(st.sampled_from(OPTION_NAMES + ["other label", "é"]),
                                     min_size=1, max_size=4, unique=True))
    # disjoint ranges, one per label, from a random start
    lo = draw(st.integers(cont.min, cont.max - 2 * len(labels)))
    mapping: list[tuple[str, Any]] = []
    for label in labels:
        width = draw(st.integers(0, 1))
        mapping.append((label, lo if width == 0 else (lo, lo + 1)))
        lo += width + 1
    return Enum(cont, mapping)


@st.composite
def leaf_types(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["int", "int", "float", "string", "enum", "text"]))
    if kind == "int":
        return draw(int_types())
    if kind == "float":
        align = draw(st.sampled_from([1, 8, 32, 64]))
        fbo: Any = draw(st.sampled_from([None, "le", "be"])) if align >= 8 else None
        return Float(draw(st.sampled_from([32, 64])), byte_order=fbo, align=align)
    if kind == "string":
        return String()
    if kind == "enum":
        return draw(enum_types())
    return Array(Int(8, encoding="UTF8"), draw(st.integers(1, 6)))


@st.composite
def struct_types(draw: st.DrawFn, depth: int = 0) -> Struct:
    fields: list[tuple[str, Any]] = []
    names = draw(st.lists(st.sampled_from(NAMES), max_size=5, unique=True))
    used = set(names)
    for name in names:
        kind = draw(st.sampled_from(["leaf", "leaf", "leaf", "struct", "array", "sequence",
                                     "variant"] if depth < 2 else ["leaf"]))
        if kind == "leaf":
            fields.append((name, draw(leaf_types())))
        elif kind == "struct":
            fields.append((name, draw(struct_types(depth + 1))))
        elif kind == "array":
            elem = draw(st.one_of(leaf_types(), struct_types(depth + 1)))
            fields.append((name, Array(elem, draw(st.integers(0, 3)))))
        elif kind == "sequence":
            ref = f"{name}_n"
            if ref in used:
                continue
            used.add(ref)
            fields.append((ref, Int(draw(st.sampled_from([3, 8, 16, 64])))))
            elem = draw(st.one_of(leaf_types(), struct_types(depth + 1)))
            fields.append((name, Sequence(elem, ref)))
        else:
            ref = f"{name}_tag"
            if ref in used:
                continue
            used.add(ref)
            opts = draw(st.lists(st.sampled_from(OPTION_NAMES), min_size=1, max_size=3,
                                 unique=True))
            fields.append((ref, draw(enum_types(labels=opts))))
            fields.append((name, Variant(ref, [(o, draw(st.one_of(leaf_types(),
                                                                  struct_types(depth + 1))))
                                               for o in opts])))
    return Struct(fields, align=draw(st.sampled_from([1, 1, 8, 32, 64])))


TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"),
               max_size=6)


def _fit(s: str, size: int) -> str:
    while len(s.encode()) > size:
        s = s[:-1]
    return s


def values_for(t: Any) -> st.SearchStrategy[Any]:
    if isinstance(t, Int):
        return st.integers(t.min, t.max)
    if isinstance(t, Enum):
        return st.one_of(st.sampled_from(sorted(t.label_values)),
                         st.integers(t.container.min, t.container.max))
    if isinstance(t, Float):
        return st.floats(width=32 if t.size == 32 else 64, allow_nan=False)
    if isinstance(t, String):
        return TEXT
    if isinstance(t, Array):
        if isinstance(t.element, Int) and t.element.encoding == "UTF8":
            return TEXT.map(lambda s: _fit(s, t.length))
        return st.lists(values_for(t.element), min_size=t.length, max_size=t.length)
    if isinstance(t, Sequence):
        return st.lists(values_for(t.element), max_size=3)
    if isinstance(t, Variant):
        return st.one_of([st.tuples(st.just(name), values_for(opt)) for name, opt in t.options])
    if isinstance(t, Struct):
        return struct_values(t)
    raise TypeError(t)


@st.composite
def struct_values(draw: st.DrawFn, t: Struct) -> dict[str, Any]:
    types: dict[str, Any] = dict(t.fields)
    refs = {ft.length_field if isinstance(ft, Sequence) else ft.tag_field: name
            for name, ft in t.fields if isinstance(ft, (Sequence, Variant))}
    out: dict[str, Any] = {}
    for name, ft in t.fields:
        if name in refs:
            continue
        if isinstance(ft, Sequence):
            limit = min(3, types[ft.length_field].max)
            out[name] = draw(st.lists(values_for(ft.element), max_size=limit))
            if draw(st.booleans()):
                out[ft.length_field] = len(out[name])
        elif isinstance(ft, Variant):
            out[name] = draw(values_for(ft))
            if draw(st.booleans()):
                tag = types[ft.tag_field]
                out[ft.tag_field] = draw(st.sampled_from(
                    [out[name][0]] + [v for lo, hi in dict(tag.mappings)[out[name][0]]
                                      for v in (lo, hi)]))
        else:
            out[name] = draw(values_for(ft))
    return out


DELTAS = st.one_of(st.integers(0, 1000), st.sampled_from([2**27 - 1, 2**27, 2**27 + 1,
                                                          2**32 - 1, 2**32, 2**32 + 1]),
                   st.integers(2**26, 2**27 + 10), st.integers(0, 2**34))


@st.composite
def traces(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"byte_order": draw(st.sampled_from(["le", "be"])),
                            "packet_size": draw(st.sampled_from([256, 512, 4096])),
                            "classes": [], "streams": []}
    for _ in range(draw(st.integers(1, 2))):
        ctx = draw(st.none() | struct_types(1))
        kind = draw(st.sampled_from(["compact", "large"]))
        events = []
        for j in range(draw(st.integers(1, 3))):
            eid = draw(st.sampled_from([None, None, 30, 31, 65534, 65535, 2**20]))
            events.append((f"ev{j}", eid, draw(struct_types())))
        spec["classes"].append((kind, ctx, events))
    cpus = draw(st.lists(st.integers(0, 7), min_size=1, max_size=3, unique=True))
    for cpu in cpus:
        sc = draw(st.integers(0, len(spec["classes"]) - 1))
        kind, ctx, events = spec["classes"][sc]
        ts = draw(st.integers(0, 2**50))
        items = []
        for _ in range(draw(st.integers(1, 12))):
            ts += draw(DELTAS)
            k = draw(st.integers(0, len(events) - 1))
            items.append((ts, k, draw(struct_values(events[k][2])),
                          draw(struct_values(ctx)) if ctx is not None else None))
        spec["streams"].append((sc, cpu, items))
    return spec


@settings(max_examples=int(os.environ.get("TRACEWATCH_WRITER_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(traces())
def test_property_random_traces_round_trip(spec: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace"
        rec = Recorder()
        with TraceWriter(path, byte_order=spec["byte_order"],
                         packet_size=spec["packet_size"]) as w:
            classes = []
            for kind, ctx, events in spec["classes"]:
                sc = w.add_stream_class(kind, event_context=ctx)
                ecs = []
                for name, eid, fields in events:
                    if eid is not None and eid in sc._ids:
                        eid = None
                    ecs.append(sc.add_event_class(name, fields, id=eid))
                classes.append((sc, ecs))
            for sc_index, cpu, items in spec["streams"]:
                sc, ecs = classes[sc_index]
                s = w.add_stream(sc, cpu)
                for ts, k, values, ctx_values in items:
                    try:
                        s.write(ecs[k], ts, values, ctx_values)
                    except ValueError as exc:
                        if "does not fit in a packet" in str(exc):
                            continue
                        raise
                    rec.record(s, ecs[k], ts, values, ctx_values)
                rec.events.setdefault(s.instance_id, [])
        rec.events = {k: v for k, v in rec.events.items() if v}
        total = sum(len(v) for v in rec.events.values())
        event(f"events written: {'0' if not total else '1-9' if total < 10 else '10+'}")
        event(f"packets: {'1' if max(s.packet_count for s in w.streams) == 1 else '2+'}")
        rec.check(path)
