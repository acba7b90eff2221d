"""Turning decoded values back into Python values, following the field types.

The decoder writes every field as int64 values in declaration order (see
:mod:`tracewatch.ctf.vm`); a *reader* built here per type walks them: integers, enums
(:class:`EnumValue`), floats, strings, arrays, sequences, structs (dicts) and variants.
Field names lose one leading underscore, as in babeltrace2 (TSDL escapes keywords so).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from .compile import emits_nothing, is_char_array
from .types import (
    ArrayType,
    EnumType,
    FieldType,
    FloatType,
    IntType,
    SequenceType,
    StringType,
    StructType,
    VariantType,
)

__all__ = ["EnumValue", "VariantValue", "field_name", "make_reader", "Reader", "clock_to_ns",
           "decode_text"]

# reader(vals, i, buf, base) -> (value, next i); vals is a Python list
Reader = Callable[[list[int], int, bytes, int], tuple[Any, int]]

_U64 = (1 << 64) - 1


class EnumValue(int):
    """An enumeration value: an int that also knows its labels and field type."""

    labels: tuple[str, ...]
    enum_type: EnumType

    def __new__(cls, value: int, labels: tuple[str, ...], enum_type: EnumType) -> EnumValue:
        obj = super().__new__(cls, value)
        obj.labels = labels
        obj.enum_type = enum_type
        return obj

    @property
    def label(self) -> str | None:
        return self.labels[0] if self.labels else None


class VariantValue:
    """The selected option of a variant: its name and value."""

    __slots__ = ("option", "value", "tag")

    def __init__(self, option: str, value: Any) -> None:
        self.option = option
        self.value = value

    def __repr__(self) -> str:
        return f"VariantValue({self.option!r}, {self.value!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, VariantValue):
            return (self.option, self.value) == (other.option, other.value)
        return bool(self.value == other)


def field_name(name: str) -> str:
    return name[1:] if name.startswith("_") else name


def decode_text(raw: bytes) -> str:
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    return raw.decode("utf-8", errors="replace")


class _Typed:
    """Cache of readers per field type object."""

    def __init__(self) -> None:
        self.cache: dict[int, tuple[FieldType, Reader]] = {}


_CACHE = _Typed()


def make_reader(t: FieldType) -> Reader:
    hit = _CACHE.cache.get(id(t))
    if hit is not None and hit[0] is t:
        return hit[1]
    r = _build(t)
    _CACHE.cache[id(t)] = (t, r)
    return r


def _build(t: FieldType) -> Reader:
    if isinstance(t, IntType):
        if t.size > 64:
            order: Literal["big", "little"] = "big" if t.byte_order == "be" else "little"
            signed = t.signed

            def read_big(v: list[int], i: int, buf: bytes, base: int) -> tuple[Any, int]:
                o = base + v[i]
                return int.from_bytes(buf[o: o + v[i + 1]], order, signed=signed), i + 2
            return read_big
        if not t.signed and t.size == 64:
            def read_u64(v: list[int], i: int, buf: bytes, base: int) -> tuple[Any, int]:
                return v[i] & _U64, i + 1
            return read_u64

        def read_int(v: list[int], i: int, buf: bytes, base: int) -> tuple[Any, int]:
            return v[i], i + 1
        return read_int
    if isinstance(t, EnumType):
        et = t
        unsigned64 = not t.container.signed and t.container.size == 64
        label_cache: dict[int, EnumValue] = {}

        def read_enum(v: list[int], i: int, buf: bytes, base: int) -> tuple[Any, int]:
            x = v[i]
            e = label_cache.get(x)
            if e is None:
                val = x & _U64 if unsigned64 else x
                e = EnumValue(val, tuple(et.labels_for(val)), et)
                if len(label_cache) < 4096:
                    label_cache[x] = e
            return e, i + 1
        return read_enum
    if isinstance(t, FloatType):
        if t.size == 32:
            def read_f32(v: list[int], i: int, buf: bytes, base: int) -> tuple[Any, int]:
                return struct.unpack("<f", struct.pack("<I", v[i] & 0xFFFFFFFF))[0], i + 1
            return read_f32

        def read_f64(v: list[int], i: int, buf: bytes, base: int) -> tuple[Any, int]:
            return struct.unpack("<d", struct.pack("<Q", v[i] & _U64))[0], i + 1
        return read_f64
    if isinstance(t, StringType) or is_char_array(t):
        def read_str(v: list[int], i: int, buf: bytes, base: int) -> tuple[Any, int]:
            o = base + v[i]
            return decode_text(buf[o: o + v[i + 1]]), i + 2
        return read_str
    if isinstance(t, StructType):
        names = [field_name(n) for n, _ in t.fields]
        readers = [make_reader(ft) for _, ft in t.fields]
        pairs = list(zip(names, readers, strict=True))

        def read_struct(v: list[int], i: int, buf: bytes, base: int) -> tuple[Any, int]:
            d = {}
            for n, r in pairs:
                d[n], i = r(v, i, buf, base)
            return d, i
        return read_struct
    if isinstance(t, (ArrayType, SequenceType)):
        el = make_reader(t.element)
        empty = emits_nothing(t.element)

        def read_array(v: list[int], i: int, buf: bytes, base: int) -> tuple[Any, int]:
            n = v[i]
            i += 1
            if empty:
                return [{} for _ in range(min(n, 1 << 16))], i
            out = []
            for _ in range(n):
                x, i = el(v, i, buf, base)
                out.append(x)
            return out, i
        return read_array
    if isinstance(t, VariantType):
        opts = [(field_name(n), make_reader(ot)) for n, ot in t.options]

        def read_variant(v: list[int], i: int, buf: bytes, base: int) -> tuple[Any, int]:
            name, r = opts[v[i]]
            x, i = r(v, i + 1, buf, base)
            return VariantValue(name, x), i
        return read_variant
    raise TypeError(f"no reader for {t!r}")


def clock_to_ns(cycles: np.ndarray, freq: int, offset_s: int, offset: int) -> np.ndarray:
    """Vectorized :meth:`ClockClass.to_ns` (same arithmetic as babeltrace2)."""
    c = cycles.astype(np.int64)
    if freq == 1_000_000_000:
        return c + (offset_s * 1_000_000_000 + offset)
    off_s, off_c = offset_s + offset // freq, offset % freq
    base = off_s * 1_000_000_000 + int(1e9 * float(off_c) / float(freq))
    secs, rem = np.divmod(c, freq)
    return base + secs * 1_000_000_000 + ((1e9 * rem.astype(np.float64)) / float(freq)).astype(np.int64)
