"""Events as text lines, in babeltrace2's ``sink.text.pretty`` format.

``[HH:MM:SS.nnnnnnnnn] (+D.nnnnnnnnn) HOST NAME: { cpu_id = N }, { context }, { fields }`` with
the same value syntax (hex bases, enums as ``( "LABEL" : container = N )``, arrays as
``[ [0] = ... ]``), so that output can be compared line for line with babeltrace2's.
Imports only :mod:`tracewatch.ctf`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
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


Fmt = Callable[[Any], str]
_FMT_CACHE: dict[int, tuple[FieldType, Fmt]] = {}


def formatter(t: FieldType) -> Fmt:
    """A function formatting values of type ``t`` (built once per type object)."""
    hit = _FMT_CACHE.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    f = _build(t)
    _FMT_CACHE[id(t)] = (t, f)
    return f


def _build(t: FieldType) -> Fmt:
    if isinstance(t, EnumType):
        et, cont = t, t.container

        def fmt_enum(v: Any) -> str:
            labels = v.labels if isinstance(v, EnumValue) else tuple(et.labels_for(int(v)))
            lab = ", ".join(_string(x) for x in labels) if labels else "<unknown>"
            return f"( {lab} : container = {_int(int(v), cont)} )"
        return fmt_enum
    if isinstance(t, IntType):
        if t.base == 10:
            return str
        it = t
        return lambda v: _int(v, it)
    if isinstance(t, FloatType):
        return _float
    if isinstance(t, StructType):
        if not t.fields:
            return lambda d: "{ }"
        parts = [(field_name(n), field_name(n) + " = ", formatter(ft)) for n, ft in t.fields]

        def fmt_struct(d: Any) -> str:
            return "{ " + ", ".join([p + f(d[n]) for n, p, f in parts]) + " }"
        return fmt_struct
    if isinstance(t, (ArrayType, SequenceType)):
        el = formatter(t.element)

        def fmt_array(v: Any) -> str:
            if isinstance(v, str):
                return _string(v)
            if not v:
                return "[ ]"
            return "[ " + ", ".join([f"[{i}] = {el(x)}" for i, x in enumerate(v)]) + " ]"
        return fmt_array
    if isinstance(t, VariantType):
        opts = {field_name(n): formatter(ot) for n, ot in t.options}

        def fmt_variant(v: Any) -> str:
            assert isinstance(v, VariantValue)
            return "{ " + opts[v.option](v.value) + " }"
        return fmt_variant
    return lambda v: _string(v) if isinstance(v, str) else str(v)


def format_value(v: Any, t: FieldType) -> str:
    return formatter(t)(v)


def format_struct(d: dict[str, Any], t: StructType) -> str:
    return formatter(t)(d)


@dataclass
class _ClassFormat:
    timestamps: bool
    head: str  # "HOST NAME:" part
    cpu: Fmt | None
    stream_ctx: Fmt | None
    event_ctx: Fmt | None
    payload: Fmt | None


class TextFormatter:
    """Formats events one per line; keeps the previous timestamp for the delta column."""

    def __init__(self, options: TextOptions | None = None) -> None:
        self.opt = options or TextOptions()
        self.last: int | None = None
        self._sec: int | None = None
        self._sec_text = ""
        self._classes: dict[int, _ClassFormat] = {}

    def timestamp(self, ns: int) -> str:
        if self.opt.clock_seconds:
            s, frac = divmod(abs(ns), 1_000_000_000)
            return f"[{'-' if ns < 0 else ''}{s}.{frac:09d}]"
        s, frac = divmod(ns, 1_000_000_000)
        if s != self._sec:
            tm = time.gmtime(s) if self.opt.clock_gmt else time.localtime(s)
            fmt = "%Y-%m-%d %H:%M:%S" if self.opt.clock_date else "%H:%M:%S"
            self._sec, self._sec_text = s, time.strftime(fmt, tm)
        return f"[{self._sec_text}.{frac:09d}]"

    def delta(self, ns: int) -> str:
        if self.last is None:
            out = "(+?.?????????)"
        else:
            d = ns - self.last
            s, frac = divmod(abs(d), 1_000_000_000)
            out = f"({'+' if d >= 0 else '-'}{s}.{frac:09d})"
        self.last = ns
        return out

    def _class(self, ev: Event) -> _ClassFormat:
        gc = ev.gclass
        cf = self._classes.get(gc.gid)
        if cf is not None:
            return cf
        trace = gc.trace
        head = []
        if self.opt.show_host:
            env = trace.trace_class.env
            parts = [str(env[k]) for k in ("hostname", "procname") if k in env]
            if "vpid" in env:
                parts.append(f"({env['vpid']})")
            if parts:
                head.append(":".join(parts))
        head.append(gc.name + ":")
        sc = trace.trace_class.streams[gc.stream_class_id]
        ct = _cpu_type(sc.packet_context)
        cf = _ClassFormat(
            timestamps=bool(trace.trace_class.clocks) or _has_timestamps(trace),
            head=" ".join(head),
            cpu=formatter(ct) if ct is not None else None,
            stream_ctx=formatter(sc.event_context) if sc.event_context is not None else None,
            event_ctx=formatter(gc.event.context) if gc.event.context is not None else None,
            payload=formatter(gc.event.fields) if gc.event.fields is not None else None,
        )
        self._classes[gc.gid] = cf
        return cf

    def format(self, ev: Event) -> str:
        cf = self._class(ev)
        line = ""
        if cf.timestamps:
            line = self.timestamp(ev.timestamp) + " "
            if self.opt.delta:
                line += self.delta(ev.timestamp) + " "
        scopes = []
        if cf.cpu is not None and ev.cpu >= 0:
            scopes.append("{ cpu_id = " + cf.cpu(ev.cpu) + " }")
        if cf.stream_ctx is not None:
            scopes.append(cf.stream_ctx(ev.stream_event_context))
        if cf.event_ctx is not None:
            scopes.append(cf.event_ctx(ev.event_context))
        if cf.payload is not None:
            scopes.append(cf.payload(ev.fields))
        return line + cf.head + " " + ", ".join(scopes)


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
