"""Writer round trip: random traces written by tracewatch.ctf.writer read back identical by
tracewatch (compared with the values written) and by babeltrace2 (same text as ours)."""

from __future__ import annotations

import contextlib
import io
import re
import struct
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tracewatch
from tracewatch.cli.main import main
from tracewatch.ctf.values import EnumValue, VariantValue
from tracewatch.ctf.writer import (
    Array,
    Enum,
    Float,
    Int,
    Sequence,
    String,
    Struct,
    TraceWriter,
    Variant,
)

from ..conftest import babeltrace2

TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@st.composite
def int_field(draw: st.DrawFn) -> tuple[Int, st.SearchStrategy[int]]:
    size = draw(st.integers(1, 64))
    signed = draw(st.booleans())
    align = draw(st.sampled_from([1, 8, 32])) if size % 8 else draw(st.sampled_from([8, 16, 64]))
    # a byte order change is only allowed on byte boundaries: bit-packed fields keep the trace's
    bo = draw(st.sampled_from([None, "le", "be"])) if size % 8 == 0 and align >= 8 else None
    base = draw(st.sampled_from([10, 16]))
    t = Int(size, signed=signed, align=align, byte_order=bo, base=base)
    lo, hi = (-(1 << (size - 1)), (1 << (size - 1)) - 1) if signed else (0, (1 << size) - 1)
    return t, st.integers(lo, hi)


@st.composite
def field_type(draw: st.DrawFn, depth: int = 0) -> tuple[Any, st.SearchStrategy[Any]]:
    kind = draw(st.sampled_from(["int", "int", "float", "string", "enum", "array", "struct"]
                                if depth < 2 else ["int", "float", "string"]))
    if kind == "int":
        return draw(int_field())
    if kind == "float":
        size = draw(st.sampled_from([32, 64]))
        vals = st.floats(width=size, allow_nan=False, allow_infinity=False)
        return Float(size, byte_order=draw(st.sampled_from([None, "le", "be"]))), vals
    if kind == "string":
        return String(), TEXT
    if kind == "enum":
        t = Enum(Int(8), [("zero", 0), ("one", 1), ("range", (2, 9))])
        return t, st.integers(0, 12)
    if kind == "array":
        et, ev = draw(field_type(depth + 1))
        n = draw(st.integers(0, 3))
        return Array(et, n), st.lists(ev, min_size=n, max_size=n)
    sub = draw(st.lists(field_type(depth + 1), min_size=0, max_size=3))
    names = [f"s{i}" for i in range(len(sub))]
    return Struct(list(zip(names, [t for t, _ in sub], strict=True))), st.fixed_dictionaries(
        {n: v for n, (_, v) in zip(names, sub, strict=True)})


@st.composite
def event_class(draw: st.DrawFn) -> tuple[list[tuple[str, Any]], st.SearchStrategy[dict[str, Any]]]:
    fields = draw(st.lists(field_type(), min_size=1, max_size=5))
    names = [f"f{i}" for i in range(len(fields))]
    decl = list(zip(names, [t for t, _ in fields], strict=True))
    vals = {n: v for n, (_, v) in zip(names, fields, strict=True)}
    # a sequence with its length field, and a variant with its tag
    et, ev = draw(field_type(1))
    decl += [("len", Int(16)), ("seq", Sequence(et, "len")),
             ("tag", Enum(Int(8), [("a", 0), ("b", 1)])), ("var", Variant("tag", [("a", Int(16)), ("b", String())]))]
    seq_vals = st.lists(ev, max_size=4)
    var_vals = st.one_of(st.tuples(st.just("a"), st.integers(0, 65535)), st.tuples(st.just("b"), TEXT))
    return decl, st.fixed_dictionaries({**vals, "seq": seq_vals, "var": var_vals})


def _normalize(v: Any) -> Any:
    if isinstance(v, EnumValue):
        return int(v)
    if isinstance(v, VariantValue):
        return (v.option, _normalize(v.value))
    if isinstance(v, dict):
        return {k: _normalize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_normalize(x) for x in v]
    return v


def _expected(written: dict[str, Any], decl: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(written)
    out["len"] = len(written["seq"])
    out["tag"] = 0 if written["var"][0] == "a" else 1
    out["var"] = tuple(written["var"])
    return _normalize(_f32(out, dict(decl)))


def _f32(vals: Any, types: Any) -> Any:
    """Floats written as 32-bit come back rounded to float32."""
    if isinstance(types, Float) and types.size == 32:
        return struct.unpack("<f", struct.pack("<f", vals))[0]
    if isinstance(types, dict):
        return {k: _f32(v, types.get(k)) for k, v in vals.items()}
    if isinstance(types, Struct):
        return _f32(vals, dict(types.fields))
    if isinstance(types, (Array, Sequence)):
        return [_f32(x, types.element) for x in vals]
    return vals


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data(), bo=st.sampled_from(["le", "be"]))
def test_roundtrip(tmp_path_factory: Any, data: st.DataObject, bo: str) -> None:
    path = Path(tmp_path_factory.mktemp("rt")) / "trace"
    classes = [data.draw(event_class()) for _ in range(2)]
    written: list[tuple[int, str, int, dict[str, Any], list[tuple[str, Any]]]] = []
    with TraceWriter(str(path), byte_order=bo, hostname="rt", packet_size=4096) as w:
        for header in ("compact", "large"):
            sc = w.add_stream_class(header=header)
            ecs = [(sc.add_event_class(f"{header}_ev{i}", Struct(decl)), decl, vals)
                   for i, (decl, vals) in enumerate(classes)]
            for cpu in range(2):
                s = w.add_stream(sc, cpu=cpu)
                t = 1000 + cpu
                for _ in range(data.draw(st.integers(1, 25))):
                    ec, decl, vals = ecs[data.draw(st.integers(0, 1))]
                    t += data.draw(st.sampled_from([1, 3, 1 << 20, (1 << 27) - 1, 1 << 27, (1 << 27) + 5, 1 << 33]))
                    v = data.draw(vals)
                    s.write(ec, t, v)
                    written.append((t, ec.name, cpu, v, decl))
    events = list(tracewatch.open(str(path)).events())
    assert len(events) == len(written)
    by_key = sorted(written, key=lambda x: (x[0], x[1], x[2]))
    got = sorted(((e.timestamp, e.name, e.cpu), _normalize(e.fields)) for e in events)
    for (key, fields), (t, name, cpu, v, decl) in zip(got, by_key, strict=True):
        assert key == (t, name, cpu)
        assert fields == _expected(v, decl)
    # babeltrace2 prints the same text
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["dump", "--clock-gmt", "--no-delta", str(path)]) == 0
    ours, theirs = out.getvalue(), babeltrace2("--clock-gmt", "--no-delta", str(path)).stdout
    # Two babeltrace2 2.0.4 bugs, where our values are the written ones (checked above):
    # it prints 0x0 for every hexadecimal integer of 61 to 63 bits (it masks with 1 << 64,
    # undefined in C), and an empty string as the previous event's value of that field (it
    # reuses the string field without clearing it). A token may differ only in those ways.
    buggy = {i for i, (decl, _) in enumerate(classes) if _bt2_hex_bug_fields(decl)}
    assert len(ours.splitlines()) == len(theirs.splitlines())
    for a, b in zip(ours.splitlines(), theirs.splitlines(), strict=True):
        if a == b:
            continue
        ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
        assert len(ta) == len(tb), (a, b)
        cls = int(re.search(r"_ev(\d+):", a).group(1))  # type: ignore[union-attr]
        for x, y in zip(ta, tb, strict=True):
            if x == y:
                continue
            stale_empty = x.rstrip(",") == '""' and y.startswith('"')
            hex_bug = cls in buggy and y.rstrip(",") == "0x0" and re.fullmatch(r"0x[0-9A-F]+,?", x)
            assert stale_empty or hex_bug, (x, y, a, b)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*",?|\S+')


def _bt2_hex_bug_fields(decl: Any) -> list[str]:
    out: list[str] = []
    for name, t in decl:
        inner = t
        while isinstance(inner, (Array, Sequence)):
            inner = inner.element
        if isinstance(inner, Int) and inner.base == 16 and 61 <= inner.size <= 63:
            out.append(name)
        if isinstance(inner, Struct):
            out.extend(_bt2_hex_bug_fields(inner.fields))
    return out
