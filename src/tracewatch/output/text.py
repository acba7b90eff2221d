"""Events as text lines, in babeltrace2's ``sink.text.pretty`` format.

``[HH:MM:SS.nnnnnnnnn] (+D.nnnnnnnnn) HOST NAME: { cpu_id = N }, { context }, { fields }`` with
the same value syntax (hex bases, enums as ``( "LABEL" : container = N )``, arrays as
``[ [0] = ... ]``), so that output can be compared line for line with babeltrace2's.
Imports only :mod:`tracewatch.ctf`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from ..ctf.batch import Event
from ..ctf.types import (
    ArrayType,
    EnumType,
    FieldType,
    FloatType,
    IntType,
    SequenceType,
    StructType,
    VariantType,
)
from ..ctf.values import EnumValue, VariantValue, field_name

__all__ = ["TextOptions", "TextFormatter"]


@dataclass
class TextOptions:
    clock_seconds: bool = False
    clock_gmt: bool = False
    clock_date: bool = False
    delta: bool = True
    show_host: bool = True


def _int(v: int, t: IntType) -> str:
    """An integer in its display base, as babeltrace2 prints it: negative values in base 16
    (8) are masked to the size rounded up to a whole nibble (3-bit group); base 2 shows every
    bit of the field."""
    if t.base == 10:
        return str(v)
    size = t.size
    if t.base == 16:
        if v < 0:
            v &= (1 << min(64, (size + 3) & ~3)) - 1
        return "0x" + format(v, "X")
    if t.base == 8:
        if v < 0:
            v &= (1 << min(64, ((size - 1) // 3 + 1) * 3)) - 1
        return "0" + format(v, "o")
    return "0b" + format(v & ((1 << size) - 1), "b").zfill(size)


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\v": "\\v", "\\": "\\\\", '"': '\\"', "'": "\\'", "?": "\\?"}
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f\x7f"\\\'?]')


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    return _ESCAPES.get(c) or f"\\x{ord(c):02x}"


def _string(s: str) -> str:
    """A string literal as babeltrace2 prints it (C escapes, \\xNN for other control chars)."""
    if _NEEDS_ESCAPE.search(s):
        s = _NEEDS_ESCAPE.sub(_escape_char, s)
    return '"' + s + '"'


def _float(x: float) -> str:
    return f"{x:g}"


def format_value(v: Any, t: FieldType) -> str:
    if isinstance(t, EnumType):
        labels = v.labels if isinstance(v, EnumValue) else tuple(t.labels_for(int(v)))
        if not labels:
            lab = "<unknown>"
        elif len(labels) == 1:
            lab = _string(labels[0])
        else:
            lab = ", ".join(_string(x) for x in labels)
        return f"( {lab} : container = {_int(int(v), t.container)} )"
    if isinstance(t, IntType):
        return _int(v, t)
    if isinstance(t, FloatType):
        return _float(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(t, StructType):
        return format_struct(v, t)
    if isinstance(t, (ArrayType, SequenceType)):
        if not v:
            return "[ ]"
        return "[ " + ", ".join(f"[{i}] = {format_value(x, t.element)}" for i, x in enumerate(v)) + " ]"
    if isinstance(t, VariantType):
        assert isinstance(v, VariantValue)
        ot = next(ot for n, ot in t.options if field_name(n) == v.option)
        return "{ " + format_value(v.value, ot) + " }"
    return str(v)


def format_struct(d: dict[str, Any], t: StructType) -> str:
    if not t.fields:
        return "{ }"
    parts = []
    for n, ft in t.fields:
        fn = field_name(n)
        parts.append(f"{fn} = {format_value(d[fn], ft)}")
    return "{ " + ", ".join(parts) + " }"


class TextFormatter:
    """Formats events one per line; keeps the previous timestamp for the delta column."""

    def __init__(self, options: TextOptions | None = None) -> None:
        self.opt = options or TextOptions()
        self.last: int | None = None

    def timestamp(self, ns: int) -> str:
        s, frac = divmod(ns, 1_000_000_000)
        if self.opt.clock_seconds:
            return f"[{s}.{frac:09d}]"
        tm = time.gmtime(s) if self.opt.clock_gmt else time.localtime(s)
        if self.opt.clock_date:
            return f"[{time.strftime('%Y-%m-%d %H:%M:%S', tm)}.{frac:09d}]"
        return f"[{time.strftime('%H:%M:%S', tm)}.{frac:09d}]"

    def delta(self, ns: int) -> str:
        if self.last is None:
            out = "(+?.?????????)"
        else:
            d = ns - self.last
            s, frac = divmod(abs(d), 1_000_000_000)
            out = f"({'+' if d >= 0 else '-'}{s}.{frac:09d})"
        self.last = ns
        return out

    def format(self, ev: Event) -> str:
        gc = ev.gclass
        trace = gc.trace
        head = []
        if trace.trace_class.clocks or _has_timestamps(trace):
            head.append(self.timestamp(ev.timestamp))
            if self.opt.delta:
                head.append(self.delta(ev.timestamp))
        if self.opt.show_host:
            env = trace.trace_class.env
            parts = [str(env[k]) for k in ("hostname", "procname") if k in env]
            if "vpid" in env:
                parts.append(f"({env['vpid']})")
            if parts:
                head.append(":".join(parts))
        head.append(ev.name + ":")
        scopes = []
        sc = trace.trace_class.streams[gc.stream_class_id]
        ct = _cpu_type(sc.packet_context)
        if ct is not None and ev.cpu >= 0:
            scopes.append("{ cpu_id = " + format_value(ev.cpu, ct) + " }")
        if sc.event_context is not None:
            scopes.append(format_struct(ev.stream_event_context, sc.event_context))
        if gc.event.context is not None:
            scopes.append(format_struct(ev.event_context, gc.event.context))
        if gc.event.fields is not None:
            scopes.append(format_struct(ev.fields, gc.event.fields))
        return " ".join(head) + " " + ", ".join(scopes)


def _has_timestamps(trace: Any) -> bool:
    return bool(trace.compiled.streams) and any(
        cs.stream_class.clock is not None for cs in trace.compiled.streams.values())


def _cpu_type(st: StructType | None) -> FieldType | None:
    if st is None:
        return None
    for n, t in st.fields:
        if field_name(n) == "cpu_id":
            return t
    return None
