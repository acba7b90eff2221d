"""CTF 1.8 trace writer.

This module owns the *writing* side of tracewatch's CTF support: it turns field-type
declarations and Python values into real CTF 1.8 traces laid out like LTTng kernel traces
(a directory holding a plain-text ``metadata`` file starting with ``/* CTF 1.8 */`` and one
binary stream file per stream, made of fixed-size packets), which babeltrace2 reads back
identically.  It is used to build synthetic traces (cloud simulator, round-trip tests).  It
imports only numpy and the standard library.

>>> from tracewatch.ctf.writer import TraceWriter, Int, String, Struct
>>> with TraceWriter("/tmp/t", hostname="sim-host") as w:            # doctest: +SKIP
...     sc = w.add_stream_class(header="compact")
...     ev = sc.add_event_class("irq", Struct([("irq", Int(32, signed=True)),
...                                             ("name", String())]))
...     s = w.add_stream(sc, cpu=0)
...     s.write(ev, 1000, {"irq": 3, "name": "eth0"})

Layout rules (CTF 1.8 as LTTng writes it):

- Every type has an alignment in bits, measured from the start of the packet; structures
  align on their most aligned member (or their ``align``), arrays and sequences on their
  element (even when empty), variants not at all (the selected option aligns itself),
  strings on bytes.
- Integers of any size from 1 to 64 bits are bit-packed: little-endian fills bytes from the
  least significant bit, big-endian from the most significant one.  As babeltrace2 refuses
  byte-order changes in the middle of a byte, so does the writer.
- Struct field names are written with a leading underscore (LTTng's convention, keeps TSDL
  keywords usable as names); readers strip it.  Variant option names are written as is and
  must equal labels of the tag enumeration (babeltrace2 matches them unstripped).
- Event headers: ``compact`` (LTTng kernel: 5-bit id + 27-bit timestamp, or id 31 followed by
  a 32-bit id and a 64-bit timestamp) or ``large`` (LTTng UST: 16-bit id + 32-bit timestamp,
  or id 65535 + 32-bit id + 64-bit timestamp).  The short form is used whenever the reader's
  timestamp reconstruction (``full = (last & ~mask) | low``, plus ``mask + 1`` if ``low <
  last & mask``) gives back the exact timestamp, i.e. when ``0 <= ts - last < 2**N``.
- A packet's ``timestamp_begin`` is the stream's previous timestamp (the first event's for
  the stream's first packet), its ``timestamp_end`` the timestamp of its last event.

Per event class, the event header, the stream event context and the payload are compiled
into generated Python functions (one ``struct.Struct`` packer per run of byte-aligned fields,
bit accumulators for the rest), so :meth:`Stream.write` does not walk the type tree per
event; :meth:`Stream.write_many` encodes fixed-layout events with numpy.

babeltrace2 2.0 (the reference reader) notes: it leaves integers mapped to the clock out of
the event fields it reports (but updates its clock from them, which the writer accounts
for), reports only ``cpu_id`` of the packet context, and reports an empty string field as
the previous event's string when it recycles field objects (a library bug: trust the field
length, ``len(field)`` in the Python bindings).
"""

from __future__ import annotations

import functools
import operator
import os
import re
import struct
import uuid as _uuid
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Sequence as _Seq
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, cast

import numpy as np

__all__ = [
    "Array",
    "Enum",
    "EventClass",
    "FieldType",
    "Float",
    "Int",
    "Sequence",
    "Stream",
    "StreamClass",
    "String",
    "Struct",
    "TraceWriter",
    "Variant",
]

ByteOrder: TypeAlias = Literal["le", "be"]
HeaderKind: TypeAlias = Literal["compact", "large"]

_U64_MAX = (1 << 64) - 1
_PACKET_MAGIC = 0xC1FC1FC1
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: TSDL keywords (babeltrace2's lexer) and the type names this writer declares: they cannot
#: be used as bare identifiers (variant option names, clock name).
_RESERVED = frozenset(
    "align const char clock double enum env event floating_point float integer int long short "
    "signed stream string struct trace callsite typealias typedef unsigned variant void _Bool "
    "_Complex _Imaginary uint8_t uint16_t uint32_t uint64_t uint5_t uint27_t".split()
)
_TYPE_NAME = re.compile(r"uint\d+(_clock_\w+)?_t\Z")
_PACKET_HEADER_SIZE = 32  # u32 magic, u8 uuid[16], u32 stream_id, u64 stream_instance_id
_PACKET_CONTEXT_SIZE = 52  # 6 x u64 + u32 cpu_id
_EVENTS_START = _PACKET_HEADER_SIZE + _PACKET_CONTEXT_SIZE
_F32_MAX = 3.4028234663852886e38


# --------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------


def _check_align(align: int, what: str) -> None:
    if not isinstance(align, int) or align < 1 or align & (align - 1):
        raise ValueError(f"{what}: alignment must be a power of two >= 1 (bits), got {align!r}")


def _check_byte_order(bo: object, what: str) -> None:
    if bo not in (None, "le", "be"):
        raise ValueError(f"{what}: byte_order must be None, 'le' or 'be', got {bo!r}")


class FieldType:
    """Base class of the field types (:class:`Int`, :class:`Float`, :class:`String`,
    :class:`Enum`, :class:`Struct`, :class:`Array`, :class:`Sequence`, :class:`Variant`)."""

    __slots__ = ()

    @property
    def alignment(self) -> int:
        """Effective alignment in bits."""
        raise NotImplementedError


@dataclass(frozen=True)
class Int(FieldType):
    """Integer of ``size`` bits (1..64), two's complement when ``signed``.

    ``align`` defaults to 8 when ``size`` is a multiple of 8, else 1 (bit-packed).
    ``byte_order`` None means the trace's.  ``base`` is a display hint (2, 8, 10, 16).
    ``encoding="UTF8"`` on an 8-bit, byte-aligned integer makes arrays and sequences of it
    text (values are then ``str`` or ``bytes``).  ``map_clock`` maps the (unsigned) integer
    to the trace clock (``map = clock.<name>.value``), like the header timestamps.  Note that
    babeltrace2 2.0 updates its clock from such fields (with the same low-bits rule as
    compact timestamps; the writer accounts for it when choosing event header forms) and
    leaves them out of the event fields it reports.
    """

    size: int
    signed: bool = False
    align: int | None = None
    byte_order: ByteOrder | None = None
    base: int = 10
    encoding: Literal["none", "UTF8"] = "none"
    map_clock: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 1 <= self.size <= 64:
            raise ValueError(f"Int: size must be in 1..64, got {self.size!r}")
        if self.align is not None:
            _check_align(self.align, "Int")
        _check_byte_order(self.byte_order, "Int")
        if self.base not in (2, 8, 10, 16):
            raise ValueError(f"Int: base must be 2, 8, 10 or 16, got {self.base!r}")
        if self.encoding not in ("none", "UTF8"):
            raise ValueError(f"Int: encoding must be 'none' or 'UTF8', got {self.encoding!r}")
        if self.map_clock and self.signed:
            raise ValueError("Int: only unsigned integers can be mapped to the clock")

    @property
    def alignment(self) -> int:
        """Effective alignment in bits."""
        if self.align is not None:
            return self.align
        return 8 if self.size % 8 == 0 else 1

    @property
    def min(self) -> int:
        """Smallest representable value."""
        return -(1 << (self.size - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        """Largest representable value."""
        return (1 << (self.size - 1)) - 1 if self.signed else (1 << self.size) - 1


@dataclass(frozen=True)
class Float(FieldType):
    """IEEE 754 binary32 (``size=32``) or binary64 (``size=64``) number."""

    size: int = 64
    byte_order: ByteOrder | None = None
    align: int = 8

    def __post_init__(self) -> None:
        if self.size not in (32, 64):
            raise ValueError(f"Float: size must be 32 or 64, got {self.size!r}")
        _check_byte_order(self.byte_order, "Float")
        _check_align(self.align, "Float")

    @property
    def alignment(self) -> int:
        """Effective alignment in bits."""
        return self.align


@dataclass(frozen=True)
class String(FieldType):
    """NUL-terminated UTF-8 string (values: ``str`` or ``bytes`` without NUL)."""

    @property
    def alignment(self) -> int:
        """Effective alignment in bits."""
        return 8



@dataclass(frozen=True, init=False)
class Enum(FieldType):
    """Enumeration over an :class:`Int` container.

    ``labels`` maps each label to a value, an inclusive ``(low, high)`` range, or a list of
    those; ranges may overlap (a value then has several labels).  Values written are ints or
    label strings (a label stands for the low end of its first range).
    """

    container: Int
    mappings: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]

    def __init__(self, container: Int,
                 labels: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
        if not isinstance(container, Int):
            raise ValueError(f"Enum: container must be an Int, got {container!r}")
        if container.encoding != "none" or container.map_clock:
            raise ValueError("Enum: the container cannot have an encoding or a clock mapping")
        items = list(labels.items()) if isinstance(labels, Mapping) else list(labels)
        if not items:
            raise ValueError("Enum: at least one label is needed")
        mappings: list[tuple[str, tuple[tuple[int, int], ...]]] = []
        seen: set[str] = set()
        for label, spec in items:
            if not isinstance(label, str) or not label:
                raise ValueError(f"Enum: labels must be non-empty strings, got {label!r}")
            if label in seen:
                raise ValueError(f"Enum: duplicate label {label!r}")
            seen.add(label)
            specs: list[Any] = spec if isinstance(spec, list) else [spec]
            ranges: list[tuple[int, int]] = []
            for one in specs:
                if isinstance(one, tuple):
                    lo, hi = one
                else:
                    lo = hi = one
                if not isinstance(lo, int) or not isinstance(hi, int) or lo > hi:
                    raise ValueError(f"Enum: bad value or range {one!r} for label {label!r}")
                if lo < container.min or hi > container.max:
                    raise ValueError(f"Enum: range {one!r} of label {label!r} does not fit the "
                                     f"container ({container.min}..{container.max})")
                ranges.append((lo, hi))
            mappings.append((label, tuple(ranges)))
        object.__setattr__(self, "container", container)
        object.__setattr__(self, "mappings", tuple(mappings))

    @property
    def alignment(self) -> int:
        """Effective alignment in bits."""
        return self.container.alignment

    @functools.cached_property
    def label_values(self) -> dict[str, int]:
        """Label -> the value it stands for when written (low end of its first range)."""
        return {label: ranges[0][0] for label, ranges in self.mappings}

    def labels_of(self, value: int) -> list[str]:
        """Labels whose ranges contain ``value``."""
        return [label for label, ranges in self.mappings
                if any(lo <= value <= hi for lo, hi in ranges)]


@dataclass(frozen=True, init=False)
class Struct(FieldType):
    """Ordered named fields; ``align`` (bits) forces a minimum alignment (TSDL ``align(N)``)."""

    fields: tuple[tuple[str, FieldType], ...]
    align: int

    def __init__(self, fields: Mapping[str, FieldType] | Iterable[tuple[str, FieldType]] = (),
                 align: int = 1) -> None:
        items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        names: set[str] = set()
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                raise ValueError(f"Struct: fields must be (name, type) pairs, got {item!r}")
            name, ftype = item
            if not isinstance(name, str) or not _IDENT.match(name):
                raise ValueError(f"Struct: field name {name!r} is not an identifier")
            if name in names:
                raise ValueError(f"Struct: duplicate field name {name!r}")
            if not isinstance(ftype, _FIELD_TYPES):
                raise ValueError(f"Struct: field {name!r} has no field type ({ftype!r})")
            names.add(name)
        _check_align(align, "Struct")
        object.__setattr__(self, "fields", tuple(items))
        object.__setattr__(self, "align", align)

    @property
    def alignment(self) -> int:
        """Effective alignment in bits (explicit ``align`` or the most aligned member)."""
        return max([self.align] + [_alignment(t) for _, t in self.fields])

    @property
    def names(self) -> list[str]:
        """Field names in order."""
        return [name for name, _ in self.fields]


@dataclass(frozen=True)
class Array(FieldType):
    """Fixed-length array (values: lists; ``str``/``bytes`` for text arrays, NUL-padded)."""

    element: FieldType
    length: int

    def __post_init__(self) -> None:
        if not isinstance(self.element, _FIELD_TYPES):
            raise ValueError(f"Array: bad element type {self.element!r}")
        if not isinstance(self.length, int) or self.length < 0:
            raise ValueError(f"Array: length must be an int >= 0, got {self.length!r}")

    @property
    def alignment(self) -> int:
        """Effective alignment in bits (the element's)."""
        return _alignment(self.element)


@dataclass(frozen=True)
class Sequence(FieldType):
    """Variable-length array whose length is the value of ``length_field``, an unsigned
    :class:`Int` that is a previous sibling in the nearest enclosing struct.  When writing,
    the length field may be omitted: it is then set from the sequence's length."""

    element: FieldType
    length_field: str

    def __post_init__(self) -> None:
        if not isinstance(self.element, _FIELD_TYPES):
            raise ValueError(f"Sequence: bad element type {self.element!r}")
        if not isinstance(self.length_field, str) or not _IDENT.match(self.length_field):
            raise ValueError(f"Sequence: bad length field name {self.length_field!r}")

    @property
    def alignment(self) -> int:
        """Effective alignment in bits (the element's)."""
        return _alignment(self.element)


@dataclass(frozen=True, init=False)
class Variant(FieldType):
    """Tagged union selected by ``tag_field``, an :class:`Enum` that is a previous sibling in
    the nearest enclosing struct.  Option names must be labels of that enum (and TSDL
    identifiers); their label ranges must not overlap.  Values are ``(label, value)`` pairs;
    the tag field may be omitted when writing (it is then set to the label's value).

    Option names are written without the underscore prefix used for struct fields, because
    babeltrace2 matches options to enum labels before stripping it; it does strip one
    leading underscore from option names when reporting them, so avoid such names."""

    tag_field: str
    options: tuple[tuple[str, FieldType], ...]

    def __init__(self, tag_field: str,
                 options: Mapping[str, FieldType] | Iterable[tuple[str, FieldType]]) -> None:
        if not isinstance(tag_field, str) or not _IDENT.match(tag_field):
            raise ValueError(f"Variant: bad tag field name {tag_field!r}")
        items = list(options.items()) if isinstance(options, Mapping) else list(options)
        if not items:
            raise ValueError("Variant: at least one option is needed")
        names: set[str] = set()
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2:
                raise ValueError(f"Variant: options must be (name, type) pairs, got {item!r}")
            name, ftype = item
            if not isinstance(name, str) or not _IDENT.match(name) or name in _RESERVED \
                    or _TYPE_NAME.match(name):
                raise ValueError(f"Variant: option name {name!r} must be an identifier that "
                                 "is not a TSDL keyword or type name")
            if name in names:
                raise ValueError(f"Variant: duplicate option {name!r}")
            if not isinstance(ftype, _FIELD_TYPES):
                raise ValueError(f"Variant: option {name!r} has no field type ({ftype!r})")
            names.add(name)
        object.__setattr__(self, "tag_field", tag_field)
        object.__setattr__(self, "options", tuple(items))

    @property
    def alignment(self) -> int:
        """Effective alignment in bits: 1 (the selected option aligns itself)."""
        return 1


_FIELD_TYPES = (Int, Float, String, Enum, Struct, Array, Sequence, Variant)


def _alignment(t: FieldType) -> int:
    return t.alignment


def _is_text(elem: Any) -> bool:
    return (isinstance(elem, Int) and elem.size == 8 and elem.alignment == 8
            and elem.encoding == "UTF8")


def _walk_refs(t: Any) -> Iterable[tuple[Any, bool]]:
    """Sequences and variants whose length/tag is looked up in the struct holding ``t``.

    Yields (node, direct): direct means ``t`` itself is the node."""
    stack: list[tuple[Any, bool]] = [(t, True)]
    while stack:
        node, direct = stack.pop()
        if isinstance(node, Sequence):
            yield node, direct
            stack.append((node.element, False))
        elif isinstance(node, Variant):
            yield node, direct
            stack.extend((opt, False) for _, opt in node.options)
        elif isinstance(node, Array):
            stack.append((node.element, False))


def _check_type(t: Any, path: str, siblings: dict[str, Any]) -> None:
    """Validate references (sequence lengths, variant tags) of a type tree."""
    if isinstance(t, Struct):
        before: dict[str, Any] = {}
        for name, ft in t.fields:
            _check_type(ft, f"{path}.{name}", before)
            before[name] = ft
    elif isinstance(t, Array):
        _check_type(t.element, f"{path}[]", siblings)
    elif isinstance(t, Sequence):
        target = siblings.get(t.length_field)
        if target is None:
            raise ValueError(f"{path}: sequence length field {t.length_field!r} is not a "
                             "previous field of the enclosing struct")
        if not isinstance(target, Int) or target.signed:
            raise ValueError(f"{path}: sequence length field {t.length_field!r} must be an "
                             "unsigned Int")
        _check_type(t.element, f"{path}[]", siblings)
    elif isinstance(t, Variant):
        tag = siblings.get(t.tag_field)
        if tag is None:
            raise ValueError(f"{path}: variant tag field {t.tag_field!r} is not a previous "
                             "field of the enclosing struct")
        if not isinstance(tag, Enum):
            raise ValueError(f"{path}: variant tag field {t.tag_field!r} must be an Enum")
        labels = dict(tag.mappings)
        used: list[tuple[int, int, str]] = []
        for name, opt in t.options:
            if name not in labels:
                raise ValueError(f"{path}: variant option {name!r} is not a label of the tag "
                                 f"enum {t.tag_field!r}")
            used.extend((lo, hi, name) for lo, hi in labels[name])
            _check_type(opt, f"{path}.{name}", siblings)
        used.sort()
        for (_, hi1, n1), (lo2, _, n2) in zip(used, used[1:], strict=False):
            if lo2 <= hi1 and n1 != n2:
                raise ValueError(f"{path}: tag ranges of variant options {n1!r} and {n2!r} "
                                 "overlap")


def _variant_selector(var: Variant, tag: Enum) -> Callable[[int], str | None]:
    labels = dict(tag.mappings)
    ranges = [(lo, hi, name) for name, _ in var.options for lo, hi in labels[name]]
    small = {v: name for lo, hi, name in ranges if hi - lo < 256 for v in range(lo, hi + 1)}
    large = [r for r in ranges if r[1] - r[0] >= 256]

    def select(value: int) -> str | None:
        name = small.get(value)
        if name is not None:
            return name
        for lo, hi, n in large:
            if lo <= value <= hi:
                return n
        return None

    return select


# --------------------------------------------------------------------------------------
# Slow-path validation (precise error messages)
# --------------------------------------------------------------------------------------


def _fail(path: str, msg: str) -> ValueError:
    return ValueError(f"{path}: {msg}")


def _validate(t: Any, x: Any, path: str) -> None:
    if isinstance(t, (Int, Enum)):
        cont = t.container if isinstance(t, Enum) else t
        if isinstance(t, Enum) and isinstance(x, str):
            if x not in t.label_values:
                raise _fail(path, f"unknown enum label {x!r} (labels: "
                                  f"{sorted(t.label_values)})")
            return
        if not isinstance(x, (int, np.integer)):
            raise _fail(path, f"expected an integer, got {type(x).__name__} {x!r}")
        if not cont.min <= int(x) <= cont.max:
            raise _fail(path, f"value {x} out of range for a {cont.size}-bit "
                              f"{'signed' if cont.signed else 'unsigned'} integer "
                              f"({cont.min}..{cont.max})")
    elif isinstance(t, Float):
        if not isinstance(x, (int, float, np.integer, np.floating)) or isinstance(x, bool):
            raise _fail(path, f"expected a number, got {type(x).__name__} {x!r}")
        if t.size == 32 and abs(float(x)) > _F32_MAX and abs(float(x)) != float("inf"):
            raise _fail(path, f"value {x} too large for a 32-bit float")
    elif isinstance(t, String):
        raw = _text_bytes(x, path)
        if b"\0" in raw:
            raise _fail(path, "strings cannot contain NUL characters")
    elif isinstance(t, Struct):
        _validate_struct(t, x, path)
    elif isinstance(t, Array):
        if _is_text(t.element):
            raw = _text_bytes(x, path)
            if len(raw) > t.length:
                raise _fail(path, f"text of {len(raw)} bytes does not fit in a "
                                  f"{t.length}-byte array")
            return
        items = _items(x, path)
        if len(items) != t.length:
            raise _fail(path, f"expected {t.length} elements, got {len(items)}")
        for i, e in enumerate(items):
            _validate(t.element, e, f"{path}[{i}]")
    elif isinstance(t, Sequence):
        if _is_text(t.element):
            _text_bytes(x, path)
            return
        for i, e in enumerate(_items(x, path)):
            _validate(t.element, e, f"{path}[{i}]")
    elif isinstance(t, Variant):
        if not isinstance(x, (tuple, list)) or len(x) != 2 or not isinstance(x[0], str):
            raise _fail(path, f"variant values are (label, value) pairs, got {x!r}")
        opts = dict(t.options)
        if x[0] not in opts:
            raise _fail(path, f"unknown variant option {x[0]!r} (options: {sorted(opts)})")
        _validate(opts[x[0]], x[1], f"{path}.{x[0]}")


def _text_bytes(x: Any, path: str) -> bytes:
    if isinstance(x, str):
        try:
            return x.encode()
        except UnicodeEncodeError as exc:
            raise _fail(path, f"cannot encode {x!r} as UTF-8 ({exc.reason})") from None
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    raise _fail(path, f"expected str or bytes, got {type(x).__name__} {x!r}")


def _items(x: Any, path: str) -> _Seq[Any]:
    if isinstance(x, (str, bytes, Mapping)) or not hasattr(x, "__len__"):
        raise _fail(path, f"expected a list, got {type(x).__name__} {x!r}")
    return cast(_Seq[Any], x)


def _validate_struct(t: Struct, x: Any, path: str) -> None:
    if x is None:
        x = {}
    if not isinstance(x, Mapping):
        raise _fail(path, f"expected a dict of fields, got {type(x).__name__} {x!r}")
    names = t.names
    unknown = [k for k in x if k not in names]
    if unknown:
        raise _fail(path, f"unknown field(s) {unknown} (fields: {names})")
    auto = {node.length_field if isinstance(node, Sequence) else node.tag_field
            for _, ft in t.fields for node, direct in _walk_refs(ft) if direct}
    missing = [n for n in names if n not in x and n not in auto]
    if missing:
        raise _fail(path, f"missing field(s) {missing}")
    types = dict(t.fields)
    for name, ft in t.fields:
        if name in x:
            _validate(ft, x[name], f"{path}.{name}")
    # references: lengths and tags against the values written
    for name, ft in t.fields:
        if name not in x:
            continue
        for node, direct in _walk_refs(ft):
            ref = node.length_field if isinstance(node, Sequence) else node.tag_field
            if not direct:
                if ref not in x and ref not in auto:
                    raise _fail(f"{path}.{ref}", "must be given (it is used by a nested "
                                                 f"sequence or variant in {name!r})")
                continue
            if isinstance(node, Sequence):
                value = x[name]
                n = len(_text_bytes(value, path)) if _is_text(node.element) else len(value)
                if ref in x and x[ref] != n:
                    raise _fail(f"{path}.{name}", f"has {n} elements but length field "
                                                  f"{ref!r} is {x[ref]}")
                rtype = cast(Int, types[ref])
                if n > rtype.max:
                    raise _fail(f"{path}.{name}", f"{n} elements do not fit length field "
                                                  f"{ref!r}")
            else:
                tag = cast(Enum, types[ref])
                label = x[name][0]
                if ref in x:
                    tv = x[ref]
                    tv = tag.label_values[tv] if isinstance(tv, str) else tv
                    if label not in tag.labels_of(int(tv)):
                        raise _fail(f"{path}.{name}", f"option {label!r} does not match "
                                                      f"tag {ref!r} = {x[ref]!r}")


# --------------------------------------------------------------------------------------
# Code generation
# --------------------------------------------------------------------------------------


def _bad_keys(d: Any, names: tuple[str, ...], path: str) -> None:
    if not isinstance(d, Mapping):
        raise _fail(path, f"expected a dict of fields, got {type(d).__name__}")
    unknown = [k for k in d if k not in names]
    raise _fail(path, f"unknown field(s) {unknown} (fields: {list(names)})")


def _raise(msg: str) -> None:
    raise ValueError(msg)


def _f2u(fmt: str) -> Callable[[Any], int]:
    packer = struct.Struct(fmt).pack
    size = struct.calcsize(fmt)
    little = fmt[0] == "<"

    def conv(x: Any) -> int:
        return int.from_bytes(packer(x), "little" if little else "big") & ((1 << (8 * size)) - 1)

    return conv


def _clock_update(cur: int, value: int, size: int) -> int:
    """babeltrace2's default-clock update from an integer of ``size`` bits."""
    if size == 64:
        return value
    mask = (1 << size) - 1
    if value < cur & mask:
        cur += mask + 1
    return (cur & ~mask) | value


_STRUCT_CHARS = {8: "b", 16: "h", 32: "i", 64: "q"}
_ZEROS = tuple(bytes(n) for n in range(65))


@dataclass
class _State:
    phase: int | None  # bit position modulo 8, None if unknown at generation time
    bo: str | None  # byte order of the last bit-packed field, None if unknown


class _Gen:
    """Generates the Python source of one event-class encoder.

    Runtime variables of the generated function: ``buf`` (the packet bytearray; its length is
    the byte offset from the packet start), ``pb``/``nacc`` (the partial last byte, as it will
    be stored, and how many of its bits are used), ``abo`` (byte order of the last
    bit-packed field).  Byte-aligned fields with a struct format are batched into "runs"
    packed by one precompiled ``struct.Struct``.
    """

    def __init__(self, trace_bo: ByteOrder) -> None:
        self.trace_bo = trace_bo
        self.lines: list[str] = []
        self.ind = 1
        self.ns: dict[str, Any] = {
            "_bad_keys": _bad_keys, "_raise": _raise, "_clk": _clock_update,
            "_pack": struct.pack, "_Z": _ZEROS, "_EMPTY": {},
        }
        self.count = 0
        self.st = _State(0, None)
        self.run_fmt: list[str] = []
        self.run_args: list[str] = []
        self.run_bo: str | None = None
        self.uses_bits = False
        self.mapped = False
        self.checked: set[str] = set()  # value expressions already checked against their ref

    # -- helpers
    def tmp(self, prefix: str = "t") -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, obj: Any, prefix: str = "k") -> str:
        name = self.tmp("_" + prefix)
        self.ns[name] = obj
        return name

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.ind + line)

    def fail(self, cond: str, msg: str) -> None:
        self.emit(f"if {cond}: _raise({msg!r})")

    def bo_of(self, t: Any) -> str:
        return cast(str, t.byte_order or self.trace_bo)

    def flush_run(self) -> None:
        if not self.run_fmt:
            return
        prefix = "<" if self.run_bo == "le" else ">"
        packer = self.const(struct.Struct(prefix + "".join(self.run_fmt)).pack, "p")
        self.emit(f"buf += {packer}({', '.join(self.run_args)})")
        self.run_fmt, self.run_args = [], []

    def add_run(self, bo: str, fmt: str, arg: str) -> None:
        assert self.st.phase == 0
        if self.run_fmt and self.run_bo != bo:
            self.flush_run()
        self.run_bo = bo
        self.run_fmt.append(fmt)
        self.run_args.append(arg)

    def align(self, a: int) -> None:
        st = self.st
        if a == 1:
            return
        if a < 8:
            if st.phase is None:
                self.uses_bits = True
                self.emit(f"nacc += -nacc % {a}")
                self.emit("if nacc == 8: buf.append(pb); pb = 0; nacc = 0")
            elif st.phase % a:
                self.uses_bits = True
                pad = -st.phase % a
                if st.phase + pad == 8:
                    self.emit("buf.append(pb); pb = 0; nacc = 0")
                    st.phase = 0
                else:
                    self.emit(f"nacc += {pad}")
                    st.phase += pad
            return
        if st.phase is None:
            self.flush_run()
            self.emit("if nacc: buf.append(pb); pb = 0; nacc = 0")
        elif st.phase:
            self.flush_run()
            self.emit("buf.append(pb); pb = 0; nacc = 0")
        st.phase = 0
        if a > 8:
            self.flush_run()
            if a <= 512:
                self.emit(f"buf += _Z[-len(buf) & {a // 8 - 1}]")
            else:
                self.emit(f"buf += bytes(-len(buf) & {a // 8 - 1})")

    def bits(self, x: str, n: int, bo: str, path: str) -> None:
        """Append the low ``n`` bits of the int variable ``x`` (already masked)."""
        self.flush_run()
        self.uses_bits = True
        st = self.st
        if st.phase != 0:
            if st.bo is None or st.phase is None:
                other = "be" if bo == "le" else "le"
                self.fail(f"nacc and abo == {other!r}",
                          f"{path}: byte order change in the middle of a byte")
            elif st.bo != bo:
                raise ValueError(f"{path}: byte order change in the middle of a byte "
                                 "(babeltrace2 refuses it)")
        p = st.phase
        if p is not None:
            k, r = divmod(p + n, 8)
            if bo == "le":
                self.emit(f"t = pb | ({x} << {p})" if p else f"t = {x}")
                if k and r:
                    self.emit(f"buf += (t & {(1 << 8 * k) - 1}).to_bytes({k}, 'little')")
                elif k:
                    self.emit(f"buf += t.to_bytes({k}, 'little')")
                self.emit(f"pb = t >> {8 * k}; nacc = {r}" if r else "pb = 0; nacc = 0")
            else:
                self.emit(f"t = ((pb >> {8 - p}) << {n}) | {x}" if p else f"t = {x}")
                if k and r:
                    self.emit(f"buf += (t >> {r}).to_bytes({k}, 'big')")
                elif k:
                    self.emit(f"buf += t.to_bytes({k}, 'big')")
                self.emit(f"pb = (t & {(1 << r) - 1}) << {8 - r}; nacc = {r}" if r
                          else "pb = 0; nacc = 0")
            st.phase = r
        elif bo == "le":
            self.emit(f"t = pb | ({x} << nacc); nb = nacc + {n}; k = nb >> 3")
            self.emit("if k: buf += (t & ((1 << (k << 3)) - 1)).to_bytes(k, 'little'); "
                      "t >>= k << 3")
            self.emit("pb = t; nacc = nb & 7")
        else:
            self.emit(f"t = ((pb >> (8 - nacc)) << {n}) | {x}; nb = nacc + {n}; r = nb & 7")
            self.emit("k = nb >> 3")
            self.emit("if k: buf += (t >> r).to_bytes(k, 'big')")
            self.emit("pb = ((t & ((1 << r) - 1)) << 8) >> r; nacc = r")
        self.emit(f"abo = {bo!r}")
        st.bo = bo

    # -- types
    def gen(self, t: Any, expr: str, path: str, scope: dict[str, tuple[str, Any]]) -> None:
        if isinstance(t, Int):
            self.gen_int(t, expr, path)
        elif isinstance(t, Enum):
            x = self.tmp("e")
            lv = self.const(t.label_values, "lv")
            self.emit(f"{x} = {expr}")
            self.emit(f"if type({x}) is str: {x} = {lv}[{x}]")
            self.gen_int(t.container, x, path)
        elif isinstance(t, Float):
            self.gen_float(t, expr, path)
        elif isinstance(t, String):
            self.align(8)
            self.flush_run()
            s = self.tmp("s")
            self.emit(f"{s} = {expr}")
            self.emit(f"if type({s}) is str: {s} = {s}.encode()")
            self.fail(f"b'\\0' in {s}", f"{path}: strings cannot contain NUL")
            self.emit(f"buf += {s}; buf.append(0)")
            self.st.bo = None
        elif isinstance(t, Struct):
            self.gen_struct(t, expr, path)
        elif isinstance(t, Array):
            self.gen_array(t, expr, path, scope)
        elif isinstance(t, Sequence):
            self.gen_sequence(t, expr, path, scope)
        elif isinstance(t, Variant):
            self.gen_variant(t, expr, path, scope)
        else:  # pragma: no cover - types are validated on construction
            raise TypeError(t)

    def gen_int(self, t: Int, expr: str, path: str) -> None:
        self.align(t.alignment)
        bo = self.bo_of(t)
        n = t.size
        if t.map_clock:
            self.mapped = True
            x = self.tmp("m")
            self.emit(f"{x} = {expr}")
            self.fail(f"not 0 <= {x} <= {t.max}", f"{path}: value out of range")
            self.emit(f"st[0] = _clk(st[0], {x}, {n})")
            expr = x
        if self.st.phase == 0 and n in _STRUCT_CHARS:
            c = _STRUCT_CHARS[n]
            self.add_run(bo, c if t.signed else c.upper(), expr)
        elif self.st.phase == 0 and n % 8 == 0:
            b = self.tmp("b")
            order = "little" if bo == "le" else "big"
            self.emit(f"{b} = ({expr}).to_bytes({n // 8}, {order!r}, signed={t.signed})")
            self.add_run(bo, f"{n // 8}s", b)
        else:
            x = self.tmp("x")
            self.emit(f"{x} = {expr}")
            self.fail(f"not {t.min} <= {x} <= {t.max}", f"{path}: value out of range")
            self.emit(f"{x} &= {(1 << n) - 1}")
            self.bits(x, n, bo, path)

    def gen_float(self, t: Float, expr: str, path: str) -> None:
        self.align(t.alignment)
        bo = self.bo_of(t)
        c = "f" if t.size == 32 else "d"
        if self.st.phase == 0:
            self.add_run(bo, c, expr)
        else:
            conv = self.const(_f2u(("<" if bo == "le" else ">") + c), "f")
            x = self.tmp("x")
            self.emit(f"{x} = {conv}({expr})")
            self.bits(x, t.size, bo, path)

    def gen_struct(self, t: Struct, expr: str, path: str, root: bool = False) -> None:
        self.align(t.alignment)
        d = self.tmp("d")
        self.emit(f"{d} = {expr} or _EMPTY" if root else f"{d} = {expr}")
        # references made by members: referenced field -> [(member index, node, direct)]
        refs: dict[str, list[tuple[int, Any, bool]]] = {}
        for idx, (_, ft) in enumerate(t.fields):
            for node, direct in _walk_refs(ft):
                ref = node.length_field if isinstance(node, Sequence) else node.tag_field
                refs.setdefault(ref, []).append((idx, node, direct))
        scope: dict[str, tuple[str, Any]] = {}
        pre: dict[int, str] = {}  # member index -> expression of its prepared value
        miss: str | None = None
        for idx, (name, ft) in enumerate(t.fields):
            fpath = f"{path}.{name}"
            if name not in refs:
                self.gen(ft, pre.get(idx, f"{d}[{name!r}]"), fpath, scope)
                continue
            var = self.tmp("r")
            scope[name] = (var, ft)
            directs = [(j, node) for j, node, direct in refs[name] if direct]
            if directs:
                # the first member using this field directly gives its value when omitted
                j, node = directs[0]
                mname = t.fields[j][0]
                if miss is None:
                    miss = self.tmp("miss")
                    self.emit(f"{miss} = 0")
                mv = self.tmp("v")
                self.emit(f"{var} = {d}.get({name!r})")
                if isinstance(node, Sequence):
                    self.emit(f"{mv} = {d}[{mname!r}]")
                    if _is_text(node.element):
                        self.emit(f"if type({mv}) is str: {mv} = {mv}.encode()")
                    self.emit(f"if {var} is None: {var} = len({mv}); {miss} += 1")
                    self.fail(f"{var} != len({mv})",
                              f"{fpath}: does not match the length of {mname}")
                    pre[j] = mv
                else:
                    assert isinstance(ft, Enum)
                    lab = self.tmp("l")
                    self.emit(f"{lab}, {mv} = {d}[{mname!r}]")
                    tv = self.const({o: ft.label_values[o] for o, _ in node.options}, "tv")
                    lv = self.const(ft.label_values, "lv")
                    sel = self.const(_variant_selector(node, ft), "sel")
                    self.emit(f"if {var} is None: {var} = {tv}[{lab}]; {miss} += 1")
                    self.emit(f"elif type({var}) is str: {var} = {lv}[{var}]")
                    self.fail(f"{sel}({var}) != {lab}",
                              f"{fpath}: does not select the option given for {mname}")
                    pre[j] = f"({lab}, {mv})"
                self.checked.add(pre[j])
            else:
                self.emit(f"{var} = {d}[{name!r}]")
                if isinstance(ft, Enum):
                    lv = self.const(ft.label_values, "lv")
                    self.emit(f"if type({var}) is str: {var} = {lv}[{var}]")
            self.gen_int(ft.container if isinstance(ft, Enum) else cast(Int, ft), var, fpath)
        names = self.const(tuple(t.names), "n")
        count = f"{len(t.fields)} - {miss}" if miss is not None else str(len(t.fields))
        self.emit(f"if len({d}) != {count}: _bad_keys({d}, {names}, {path!r})")

    def loop(self, seq: str, body: Callable[[str], None]) -> None:
        """``for e in seq: body(e)`` with a loop-invariant generation state."""
        self.flush_run()
        entry = _State(self.st.phase, self.st.bo)
        mark, count_mark = len(self.lines), self.count

        def once() -> _State:
            e = self.tmp("e")
            self.emit(f"for {e} in {seq}:")
            self.ind += 1
            body(e)
            self.flush_run()
            self.emit("pass")
            self.ind -= 1
            return _State(self.st.phase, self.st.bo)

        exit_ = once()
        if exit_ != entry:
            del self.lines[mark:]
            self.count = count_mark
            self.st = _State(entry.phase if entry.phase == exit_.phase else None,
                             entry.bo if entry.bo == exit_.bo else None)
            exit_ = once()
        self.st = _State(entry.phase if entry.phase == exit_.phase else None,
                         entry.bo if entry.bo == exit_.bo else None)

    @staticmethod
    def simple_numeric(elem: Any) -> str | None:
        """struct format char when ``elem`` values can be packed back to back."""
        if isinstance(elem, Int) and elem.size in _STRUCT_CHARS and not elem.map_clock \
                and elem.alignment <= elem.size:
            c = _STRUCT_CHARS[elem.size]
            return c if elem.signed else c.upper()
        if isinstance(elem, Float) and elem.alignment <= elem.size:
            return "f" if elem.size == 32 else "d"
        return None

    def gen_array(self, t: Array, expr: str, path: str,
                  scope: dict[str, tuple[str, Any]]) -> None:
        elem = t.element
        self.align(_alignment(elem))
        a = self.tmp("a")
        self.emit(f"{a} = {expr}")
        if _is_text(elem):
            self.emit(f"if type({a}) is str: {a} = {a}.encode()")
            self.fail(f"len({a}) > {t.length}", f"{path}: text longer than {t.length} bytes")
            self.add_run(self.bo_of(elem), f"{t.length}s", a)
            return
        self.fail(f"len({a}) != {t.length}", f"{path}: expected {t.length} elements")
        c = self.simple_numeric(elem)
        if c is not None and self.st.phase == 0:
            if t.length:
                self.add_run(self.bo_of(elem), f"{t.length}{c}", f"*{a}")
            return
        self.loop(a, lambda e: self.gen(elem, e, f"{path}[]", scope))

    def gen_sequence(self, t: Sequence, expr: str, path: str,
                     scope: dict[str, tuple[str, Any]]) -> None:
        elem = t.element
        self.align(_alignment(elem))
        n = scope[t.length_field][0]
        q = self.tmp("q")
        self.emit(f"{q} = {expr}")
        text = _is_text(elem)
        if text:
            self.emit(f"if type({q}) is str: {q} = {q}.encode()")
        if expr not in self.checked:
            self.fail(f"len({q}) != {n}", f"{path}: length does not match field "
                                          f"{t.length_field}")
        if text:
            self.flush_run()
            self.emit(f"buf += {q}")
            return
        c = self.simple_numeric(elem)
        if c is not None and self.st.phase == 0:
            self.flush_run()
            fmt = ("<" if self.bo_of(elem) == "le" else ">") + "%d" + c
            self.emit(f"if {n}: buf += _pack({fmt!r} % {n}, *{q})")
            return
        self.loop(q, lambda e: self.gen(elem, e, f"{path}[]", scope))

    def gen_variant(self, t: Variant, expr: str, path: str,
                    scope: dict[str, tuple[str, Any]]) -> None:
        lab, val = self.tmp("l"), self.tmp("w")
        self.emit(f"{lab}, {val} = {expr}")
        tag_var, tag_type = scope[t.tag_field]
        if expr not in self.checked:
            sel = self.const(_variant_selector(t, tag_type), "sel")
            self.fail(f"{sel}({tag_var}) != {lab}",
                      f"{path}: option does not match tag {t.tag_field}")
        self.flush_run()
        entry = _State(self.st.phase, self.st.bo)
        exits: list[_State] = []
        for i, (name, opt) in enumerate(t.options):
            self.emit(f"{'if' if i == 0 else 'elif'} {lab} == {name!r}:")
            self.ind += 1
            self.st = _State(entry.phase, entry.bo)
            self.gen(opt, val, f"{path}.{name}", scope)
            self.flush_run()
            self.emit("pass")
            self.ind -= 1
            exits.append(self.st)
        self.emit(f"else: _raise({path + ': unknown variant option'!r})")
        phases = {s.phase for s in exits}
        bos = {s.bo for s in exits}
        self.st = _State(phases.pop() if len(phases) == 1 else None,
                         bos.pop() if len(bos) == 1 else None)


def _compile_event(trace_bo: ByteOrder, header: HeaderKind, event_id: int,
                   context: Struct | None, fields: Struct, name: str, compact: bool
                   ) -> tuple[Callable[..., int], bool, str]:
    """Generate ``emit(buf, ts, v, c[, st]) -> pending bits`` for one event class.

    ``compact`` selects the short event header form.  ``st`` (only when some field is mapped
    to the clock) is a one-item list holding the reader's clock value, updated in place.
    The function appends the event to ``buf`` and returns how many bits of its last byte
    are used (0: all of them)."""
    g = _Gen(trace_bo)
    le = trace_bo == "le"
    if header == "compact":
        if compact:
            g.add_run(trace_bo, "I", f"((ts & 134217727) << 5) | {event_id}" if le
                      else f"(ts & 134217727) | {event_id << 27}")
        else:
            g.add_run(trace_bo, "B", str(31 if le else 31 << 3))
            g.add_run(trace_bo, "I", str(event_id))
            g.add_run(trace_bo, "Q", "ts")
    else:
        if compact:
            g.add_run(trace_bo, "H", str(event_id))
            g.add_run(trace_bo, "I", "ts & 4294967295")
        else:
            g.add_run(trace_bo, "H", "65535")
            g.add_run(trace_bo, "I", str(event_id))
            g.add_run(trace_bo, "Q", "ts")
    if context is not None:
        g.gen_struct(context, "c", "context", root=True)
    else:
        g.fail("c", "this stream class has no event context")
    g.st.bo = None  # babeltrace2 restarts its byte-order check on each scope
    g.gen_struct(fields, "v", name, root=True)
    g.flush_run()
    if g.st.phase == 0:
        g.emit("return 0")
    else:
        g.emit("if nacc: buf.append(pb)")
        g.emit("return nacc")
    if g.uses_bits:
        g.lines.insert(0, "    pb = 0; nacc = 0; abo = None")
    args = "buf, ts, v, c, st" if g.mapped else "buf, ts, v, c"
    src = f"def emit({args}):\n" + "\n".join(g.lines) + "\n"
    ns = dict(g.ns)
    exec(compile(src, f"<ctf-writer event {name!r}>", "exec"), ns)  # noqa: S102
    return cast(Callable[..., int], ns["emit"]), g.mapped, src


# --------------------------------------------------------------------------------------
# Metadata (TSDL)
# --------------------------------------------------------------------------------------


def _quote(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    out = out.replace("\t", "\\t").replace("\r", "\\r")
    return f'"{out}"'


class _Tsdl:
    def __init__(self, clock_name: str) -> None:
        self.clock_name = clock_name

    def integer(self, t: Int) -> str:
        parts = [f"size = {t.size};", f"align = {t.alignment};",
                 f"signed = {int(t.signed)};", f"encoding = {t.encoding};", f"base = {t.base};"]
        if t.byte_order:
            parts.append(f"byte_order = {t.byte_order};")
        if t.map_clock:
            parts.append(f"map = clock.{self.clock_name}.value;")
        return "integer { " + " ".join(parts) + " }"

    def spec(self, t: Any, ind: int) -> tuple[str, str]:
        """(type specifier, declarator suffix) of a field type."""
        tab = "\t" * ind
        if isinstance(t, Int):
            return self.integer(t), ""
        if isinstance(t, Float):
            exp, mant = (8, 24) if t.size == 32 else (11, 53)
            bo = f" byte_order = {t.byte_order};" if t.byte_order else ""
            return (f"floating_point {{ exp_dig = {exp}; mant_dig = {mant}; "
                    f"align = {t.alignment};{bo} }}"), ""
        if isinstance(t, String):
            return "string { encoding = UTF8; }", ""
        if isinstance(t, Enum):
            entries = []
            for label, ranges in t.mappings:
                for lo, hi in ranges:
                    value = str(lo) if lo == hi else f"{lo} ... {hi}"
                    entries.append(f"{_quote(label)} = {value}")
            return f"enum : {self.integer(t.container)} {{ {', '.join(entries)} }}", ""
        if isinstance(t, Struct):
            body = "".join(self.decl(f"_{name}", ft, ind + 1) for name, ft in t.fields)
            align = f" align({t.align})" if t.align > 1 else ""
            return f"struct {{\n{body}{tab}}}{align}", ""
        if isinstance(t, Variant):
            body = "".join(self.decl(name, ft, ind + 1) for name, ft in t.options)
            return f"variant <_{t.tag_field}> {{\n{body}{tab}}}", ""
        if isinstance(t, Array):
            spec, suffix = self.spec(t.element, ind)
            return spec, f"[{t.length}]{suffix}"
        if isinstance(t, Sequence):
            spec, suffix = self.spec(t.element, ind)
            return spec, f"[_{t.length_field}]{suffix}"
        raise TypeError(t)  # pragma: no cover

    def decl(self, name: str, t: Any, ind: int) -> str:
        spec, suffix = self.spec(t, ind)
        return f"{chr(9) * ind}{spec} {name}{suffix};\n"


# --------------------------------------------------------------------------------------
# Trace, stream classes, event classes, streams
# --------------------------------------------------------------------------------------


class EventClass:
    """An event class of a stream class (create with :meth:`StreamClass.add_event_class`)."""

    def __init__(self, stream_class: StreamClass, name: str, event_id: int, fields: Struct,
                 loglevel: int | None) -> None:
        self.stream_class = stream_class
        self.name = name
        self.id = event_id
        self.fields = fields
        self.loglevel = loglevel
        writer = stream_class.writer
        if stream_class.header == "compact":
            self._span = 1 << 27 if event_id < 31 else 0
        else:
            self._span = 1 << 32 if event_id < 65535 else 0
        args = (writer.byte_order, stream_class.header, event_id, stream_class.event_context,
                fields, name)
        self._emit_x, self._mapped, src = _compile_event(*args, compact=False)
        self._emit_c = self._emit_x
        if self._span:
            self._emit_c, _, src_c = _compile_event(*args, compact=True)
            src = src_c + "\n" + src
        #: generated Python source of the encoders (for debugging)
        self.source = src
        self._fast: _FixedLayout | None | bool = False  # lazily computed for write_many

    def __repr__(self) -> str:
        return f"EventClass({self.name!r}, id={self.id}, stream_class={self.stream_class.id})"

    def diagnose(self, values: Any, context: Any, exc: BaseException) -> ValueError:
        """A ValueError describing why ``values``/``context`` cannot be written."""
        try:
            sc = self.stream_class
            if sc.event_context is not None:
                _validate_struct(sc.event_context, context, "context")
            elif context:
                raise ValueError(f"stream class {sc.id} has no event context, got {context!r}")
            _validate_struct(self.fields, values, self.name)
        except ValueError as err:
            return err
        if isinstance(exc, ValueError):
            return exc
        return ValueError(f"cannot encode event {self.name!r}: {type(exc).__name__}: {exc}")


class StreamClass:
    """A stream class (one ``stream {}`` block): event header kind, event context, events."""

    def __init__(self, writer: TraceWriter, sc_id: int, header: HeaderKind,
                 event_context: Struct | None) -> None:
        self.writer = writer
        self.id = sc_id
        self.header = header
        self.event_context = event_context
        self.event_classes: list[EventClass] = []
        self._ids: dict[int, EventClass] = {}
        self._names: dict[str, EventClass] = {}

    def __repr__(self) -> str:
        return f"StreamClass(id={self.id}, header={self.header!r})"

    def add_event_class(self, name: str, fields: Struct | None = None, *,
                        id: int | None = None,  # noqa: A002 - TSDL's name for it
                        loglevel: int | None = None) -> EventClass:
        """Declare an event class; ids default to the next free one (0, 1, ...).

        With a compact header, ids >= 31 always use the extended header (LTTng kernel ids
        are in the thousands); with a large header, ids >= 65535."""
        self.writer._check_open()
        if not isinstance(name, str) or not name:
            raise ValueError(f"event name must be a non-empty string, got {name!r}")
        if name in self._names:
            raise ValueError(f"stream class {self.id} already has an event class {name!r}")
        if fields is None:
            fields = Struct()
        if not isinstance(fields, Struct):
            raise ValueError(f"event fields must be a Struct, got {fields!r}")
        if id is None:
            id = max(self._ids, default=-1) + 1
        if not isinstance(id, int) or not 0 <= id <= 0xFFFFFFFF:
            raise ValueError(f"event id must be in 0..2**32-1, got {id!r}")
        if id in self._ids:
            raise ValueError(f"stream class {self.id} already has an event class with id {id}")
        _check_type(fields, name, {})
        ec = EventClass(self, name, id, fields, loglevel)
        self.event_classes.append(ec)
        self._ids[id] = ec
        self._names[name] = ec
        return ec


class TraceWriter:
    """Writes one CTF 1.8 trace directory.

    ``packet_size`` is in bytes (every packet of every stream has this size; events never
    straddle packets).  ``path`` must be a new or empty directory; ``overwrite=True``
    deletes the files of a previous trace there first.  ``env`` entries (str or int values) extend or override the default
    LTTng-like environment (``hostname``, ``domain``, ``tracer_name = "lttng-modules"``,
    ``tracer_major/minor/patchlevel``, ``sysname``).  The clock UUID defaults to one derived
    from the host name and clock name, so traces of one host share their clock (as LTTng
    traces of one boot do).  Usable as a context manager; :meth:`close` flushes every stream
    and writes the metadata.
    """

    def __init__(self, path: str | os.PathLike[str], *, byte_order: ByteOrder = "le",
                 hostname: str = "sim-host", domain: str = "kernel",
                 clock_name: str = "monotonic", clock_freq: int = 1_000_000_000,
                 clock_offset_s: int = 0, clock_offset: int = 0,
                 clock_description: str = "Monotonic Clock",
                 clock_uuid: str | _uuid.UUID | None = None, clock_absolute: bool = False,
                 uuid: str | _uuid.UUID | bytes | None = None,
                 env: Mapping[str, str | int] | None = None,
                 packet_size: int = 4096 * 8, overwrite: bool = False) -> None:
        if byte_order not in ("le", "be"):
            raise ValueError(f"byte_order must be 'le' or 'be', got {byte_order!r}")
        if not isinstance(clock_name, str) or not _IDENT.match(clock_name) \
                or clock_name in _RESERVED:
            raise ValueError(f"clock_name must be an identifier, got {clock_name!r}")
        if not isinstance(clock_freq, int) or clock_freq <= 0:
            raise ValueError(f"clock_freq must be a positive int, got {clock_freq!r}")
        if not isinstance(packet_size, int) or packet_size < 128:
            raise ValueError(f"packet_size must be an int >= 128 (bytes), got {packet_size!r}")
        self.path = Path(path)
        self.byte_order: ByteOrder = byte_order
        self.hostname = hostname
        self.domain = domain
        self.clock_name = clock_name
        self.clock_freq = clock_freq
        self.clock_offset_s = int(clock_offset_s)
        self.clock_offset = int(clock_offset)
        self.clock_description = clock_description
        self.clock_absolute = clock_absolute
        self.clock_uuid = _as_uuid(clock_uuid) if clock_uuid is not None else \
            _uuid.uuid5(_uuid.NAMESPACE_DNS, f"{clock_name}.{hostname}.tracewatch")
        self.uuid = _as_uuid(uuid) if uuid is not None else _uuid.uuid4()
        self.env: dict[str, str | int] = {
            "hostname": hostname, "domain": domain, "sysname": "Linux",
            "tracer_name": "lttng-modules", "tracer_major": 2, "tracer_minor": 12,
            "tracer_patchlevel": 0,
        }
        for key, value in (env or {}).items():
            if not isinstance(key, str) or not _IDENT.match(key):
                raise ValueError(f"env key {key!r} is not an identifier")
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise ValueError(f"env value of {key!r} must be str or int, got {value!r}")
            self.env[key] = value
        self.packet_size = packet_size
        self.stream_classes: list[StreamClass] = []
        self.streams: list[Stream] = []
        self._closed = False
        p = "<" if byte_order == "le" else ">"
        self._packet_header = struct.Struct(p + "I16sIQ")
        self._packet_context = struct.Struct(p + "QQQQQQI")
        self.path.mkdir(parents=True, exist_ok=True)
        existing = list(self.path.iterdir())
        if existing:
            # readers take every file of a trace directory as a stream: never mix traces
            if not overwrite or any(not f.is_file() or f.is_symlink() for f in existing):
                raise ValueError(f"{self.path} is not empty (pass overwrite=True to replace "
                                 "the files of a previous trace)")
            for f in existing:
                f.unlink()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the trace writer is closed")

    def add_stream_class(self, header: HeaderKind = "compact",
                         event_context: Struct | None = None) -> StreamClass:
        """Declare a stream class (ids 0, 1, ...) with a ``compact`` (LTTng kernel) or
        ``large`` (LTTng UST) event header and an optional event context struct."""
        self._check_open()
        if header not in ("compact", "large"):
            raise ValueError(f"header must be 'compact' or 'large', got {header!r}")
        if event_context is not None:
            if not isinstance(event_context, Struct):
                raise ValueError(f"event_context must be a Struct, got {event_context!r}")
            _check_type(event_context, "context", {})
        sc = StreamClass(self, len(self.stream_classes), header, event_context)
        self.stream_classes.append(sc)
        return sc

    def add_stream(self, stream_class: StreamClass, cpu: int = 0,
                   name: str | None = None) -> Stream:
        """Create a stream (one file, default name ``chan<stream class id>_<cpu>``)."""
        self._check_open()
        if stream_class.writer is not self:
            raise ValueError("the stream class belongs to another trace writer")
        if not isinstance(cpu, int) or not 0 <= cpu <= 0xFFFFFFFF:
            raise ValueError(f"cpu must be in 0..2**32-1, got {cpu!r}")
        name = name if name is not None else f"chan{stream_class.id}_{cpu}"
        if not name or "/" in name or name in ("metadata", ".", "..") or name.startswith("."):
            raise ValueError(f"bad stream file name {name!r}")
        if any(s.name == name for s in self.streams):
            raise ValueError(f"there is already a stream named {name!r}")
        stream = Stream(self, stream_class, cpu, len(self.streams), name)
        self.streams.append(stream)
        return stream

    def metadata_text(self) -> str:
        """The TSDL metadata of the trace as declared so far."""
        bo = self.byte_order
        tsdl = _Tsdl(self.clock_name)
        out = ["/* CTF 1.8 */\n\n"]
        out.append(
            "typealias integer { size = 8; align = 8; signed = false; } := uint8_t;\n"
            "typealias integer { size = 16; align = 8; signed = false; } := uint16_t;\n"
            "typealias integer { size = 32; align = 8; signed = false; } := uint32_t;\n"
            "typealias integer { size = 64; align = 8; signed = false; } := uint64_t;\n"
            "typealias integer { size = 64; align = 8; signed = false; } := unsigned long;\n"
            "typealias integer { size = 5; align = 1; signed = false; } := uint5_t;\n"
            "typealias integer { size = 27; align = 1; signed = false; } := uint27_t;\n\n")
        out.append(
            "trace {\n\tmajor = 1;\n\tminor = 8;\n"
            f'\tuuid = "{self.uuid}";\n\tbyte_order = {bo};\n'
            "\tpacket.header := struct {\n\t\tuint32_t magic;\n\t\tuint8_t  uuid[16];\n"
            "\t\tuint32_t stream_id;\n\t\tuint64_t stream_instance_id;\n\t};\n};\n\n")
        out.append("env {\n")
        for key, value in self.env.items():
            out.append(f"\t{key} = {value if isinstance(value, int) else _quote(value)};\n")
        out.append("};\n\n")
        cn = self.clock_name
        out.append(
            f"clock {{\n\tname = {_quote(cn)};\n\tuuid = \"{self.clock_uuid}\";\n"
            f"\tdescription = {_quote(self.clock_description)};\n"
            f"\tfreq = {self.clock_freq}; /* Frequency, in Hz */\n"
            "\t/* clock value offset from Epoch is: offset_s + offset * (1/freq) */\n"
            f"\toffset_s = {self.clock_offset_s};\n\toffset = {self.clock_offset};\n"
            + ("\tabsolute = TRUE;\n" if self.clock_absolute else "") + "};\n\n")
        for size, align in ((27, 1), (32, 8), (64, 8)):
            out.append(f"typealias integer {{\n\tsize = {size}; align = {align}; "
                       f"signed = false;\n\tmap = clock.{cn}.value;\n}} := "
                       f"uint{size}_clock_{cn}_t;\n\n")
        out.append(
            "struct packet_context {\n"
            f"\tuint64_clock_{cn}_t timestamp_begin;\n\tuint64_clock_{cn}_t timestamp_end;\n"
            "\tuint64_t content_size;\n\tuint64_t packet_size;\n\tuint64_t packet_seq_num;\n"
            "\tunsigned long events_discarded;\n\tuint32_t cpu_id;\n};\n\n")
        for kind, idt, bits, last in (("compact", "uint5_t", 27, 30),
                                      ("large", "uint16_t", 32, 65534)):
            out.append(
                f"struct event_header_{kind} {{\n"
                f"\tenum : {idt} {{ compact = 0 ... {last}, extended = {last + 1} }} id;\n"
                "\tvariant <id> {\n\t\tstruct {\n"
                f"\t\t\tuint{bits}_clock_{cn}_t timestamp;\n\t\t}} compact;\n"
                "\t\tstruct {\n\t\t\tuint32_t id;\n"
                f"\t\t\tuint64_clock_{cn}_t timestamp;\n\t\t}} extended;\n"
                "\t} v;\n} align(8);\n\n")
        for sc in self.stream_classes:
            out.append(f"stream {{\n\tid = {sc.id};\n"
                       f"\tevent.header := struct event_header_{sc.header};\n"
                       "\tpacket.context := struct packet_context;\n")
            if sc.event_context is not None:
                spec, _ = tsdl.spec(sc.event_context, 1)
                out.append(f"\tevent.context := {spec};\n")
            out.append("};\n\n")
            for ec in sc.event_classes:
                out.append(f"event {{\n\tname = {_quote(ec.name)};\n\tid = {ec.id};\n"
                           f"\tstream_id = {sc.id};\n")
                if ec.loglevel is not None:
                    out.append(f"\tloglevel = {ec.loglevel};\n")
                spec, _ = tsdl.spec(ec.fields, 1)
                out.append(f"\tfields := {spec};\n}};\n\n")
        return "".join(out)

    def write_metadata(self) -> None:
        """(Re)write the ``metadata`` file (done by :meth:`close`)."""
        (self.path / "metadata").write_text(self.metadata_text(), encoding="utf-8")

    def close(self) -> None:
        """Flush and close every stream, write the metadata.  Idempotent."""
        if self._closed:
            return
        for stream in self.streams:
            stream._close()
        self.write_metadata()
        self._closed = True


def _as_uuid(value: str | _uuid.UUID | bytes) -> _uuid.UUID:
    if isinstance(value, _uuid.UUID):
        return value
    if isinstance(value, bytes):
        return _uuid.UUID(bytes=value)
    return _uuid.UUID(value)


def _as_timestamp(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"timestamps must be integers (clock cycles), got {value!r}")
    return operator.index(value)


class Stream:
    """One data stream (one file of fixed-size packets) of a stream class.

    Create with :meth:`TraceWriter.add_stream`.  Timestamps are clock cycles and must not
    decrease within a stream."""

    def __init__(self, writer: TraceWriter, stream_class: StreamClass, cpu: int,
                 instance_id: int, name: str) -> None:
        self.writer = writer
        self.stream_class = stream_class
        self.cpu = cpu
        self.instance_id = instance_id
        self.name = name
        self.path = writer.path / name
        self.event_count = 0
        self.packet_count = 0
        self._file: Any = open(self.path, "wb")  # noqa: SIM115 - closed by _close()
        self._cap = writer.packet_size
        self._buf: bytearray | None = None
        self._begin = 0
        self._clock = 0  # the reader's clock value (for timestamp reconstruction)
        self._last_ts = 0
        self._tail = 0  # bits used in the last byte of the packet content (0: all 8)
        self._packet_first = 0  # event_count when the current packet was opened
        self._discarded = 0
        self._discarded_written = 0

    def __repr__(self) -> str:
        return f"Stream({self.name!r}, stream_class={self.stream_class.id}, cpu={self.cpu})"

    @property
    def discarded(self) -> int:
        """Cumulative number of discarded events declared with :meth:`discard`."""
        return self._discarded

    @property
    def last_timestamp(self) -> int:
        """Timestamp of the last event written (0 before any)."""
        return self._last_ts

    # -- events
    def write(self, event_class: EventClass, timestamp: int, values: Mapping[str, Any] | None
              = None, context: Mapping[str, Any] | None = None) -> None:
        """Append one event.  ``values`` maps payload field names to values, ``context``
        the stream class's event-context fields.  Raises ValueError on bad values (nothing
        is written then)."""
        ec = event_class
        if ec.stream_class is not self.stream_class:
            raise ValueError(f"{ec!r} does not belong to the stream class of {self!r}")
        ts = timestamp if type(timestamp) is int else _as_timestamp(timestamp)
        if not self._last_ts <= ts <= _U64_MAX:
            raise ValueError(f"{self.name}: timestamp {ts} is before the previous one "
                             f"({self._last_ts}) or out of range" if ts < self._last_ts else
                             f"{self.name}: timestamp {ts} does not fit 64 bits")
        buf = self._buf
        if buf is None:
            buf = self._open_packet(self._last_ts if self.event_count else ts)
        start = len(buf)
        emit = ec._emit_c if 0 <= ts - self._clock < ec._span else ec._emit_x
        try:
            if ec._mapped:
                st = [ts]
                tail = emit(buf, ts, values, context, st)
                clock = st[0]
            else:
                tail = emit(buf, ts, values, context)
                clock = ts
        except Exception as exc:  # noqa: BLE001 - turned into a precise ValueError
            del buf[start:]
            raise ec.diagnose(values, context, exc) from None
        if len(buf) > self._cap:
            tail, clock = self._spill(ec, ts, values, context, start)
        self._tail = tail
        self._last_ts = ts
        self._clock = clock
        self.event_count += 1

    def _spill(self, ec: EventClass, ts: int, values: Any, context: Any, start: int
               ) -> tuple[int, int]:
        """The event at ``start`` overflows its packet: move it to a new packet."""
        buf = self._buf
        assert buf is not None
        del buf[start:]
        if start == _EVENTS_START:
            raise ValueError(f"event {ec.name!r} does not fit in a packet of "
                             f"{self._cap} bytes")
        self._close_packet()
        buf = self._open_packet(self._last_ts)
        emit = ec._emit_c if 0 <= ts - self._clock < ec._span else ec._emit_x
        st = [ts]
        tail = emit(buf, ts, values, context, st) if ec._mapped else \
            emit(buf, ts, values, context)
        if len(buf) > self._cap:
            del buf[_EVENTS_START:]
            raise ValueError(f"event {ec.name!r} does not fit in a packet of "
                             f"{self._cap} bytes")
        return tail, st[0]

    def discard(self, count: int = 1) -> None:
        """Declare ``count`` more events lost (the cumulative ``events_discarded`` of the
        next packet written; babeltrace2 reports a discarded-events message)."""
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"discard count must be an int >= 0, got {count!r}")
        if self._discarded + count > _U64_MAX:
            raise ValueError("discarded event count does not fit 64 bits")
        self._discarded += count

    def flush_packet(self) -> None:
        """Close the current packet now (writes an empty packet if none is open and
        discarded events are pending)."""
        if self._buf is None and self._discarded != self._discarded_written:
            self._open_packet(self._last_ts)
        if self._buf is not None:
            self._close_packet()

    # -- packets
    def _open_packet(self, begin: int) -> bytearray:
        if self._file is None:
            raise ValueError(f"{self.name}: the trace writer is closed")
        buf = bytearray(_EVENTS_START)
        self._buf = buf
        self._begin = begin
        self._clock = begin
        self._tail = 0
        self._packet_first = self.event_count
        return buf

    def _close_packet(self) -> None:
        buf = self._buf
        assert buf is not None
        w = self.writer
        content = len(buf) * 8 - ((8 - self._tail) & 7)
        end = self._last_ts if self.event_count > self._packet_first else self._begin
        w._packet_header.pack_into(buf, 0, _PACKET_MAGIC, w.uuid.bytes, self.stream_class.id,
                                   self.instance_id)
        w._packet_context.pack_into(buf, _PACKET_HEADER_SIZE, self._begin, end, content,
                                    self._cap * 8, self.packet_count, self._discarded,
                                    self.cpu)
        buf += bytes(self._cap - len(buf))
        self._file.write(buf)
        self._discarded_written = self._discarded
        self.packet_count += 1
        self._buf = None

    def _close(self) -> None:
        if self._file is None:
            return
        if self._buf is None and (self.packet_count == 0
                                  or self._discarded != self._discarded_written):
            self._open_packet(self._last_ts)
        if self._buf is not None:
            self._close_packet()
        self._file.close()
        self._file = None

    # -- batches
    def write_many(self, event_class: EventClass, timestamps: Any,
                   columns: Mapping[str, Any] | None = None,
                   context: Mapping[str, Any] | None = None) -> None:
        """Append many events of one class.

        ``timestamps`` is a non-decreasing sequence (e.g. a numpy uint64 array);
        ``columns`` maps each payload field name to a sequence of per-event values (or one
        value for all events), ``context`` likewise for the event-context fields.  Event
        classes made only of byte-aligned fixed-size fields (ints of 8/16/32/64 bits,
        floats, text arrays, numeric arrays, nested structs of those; alignments <= 8) are
        encoded with numpy; others fall back to :meth:`write` per event.  Columns of
        nested structs hold dicts; columns of arrays hold lists or 2-D arrays."""
        ec = event_class
        if ec.stream_class is not self.stream_class:
            raise ValueError(f"{ec!r} does not belong to the stream class of {self!r}")
        ts = _timestamps_array(timestamps)
        n = len(ts)
        if n == 0:
            return
        if n > 1 and bool(np.any(ts[1:] < ts[:-1])):
            raise ValueError(f"{self.name}: timestamps must not decrease")
        if int(ts[0]) < self._last_ts:
            raise ValueError(f"{self.name}: timestamp {int(ts[0])} is before the previous "
                             f"one ({self._last_ts})")
        columns = dict(columns or {})
        ctx_columns = dict(context or {})
        layout = ec._fast if ec._fast is not False else _FixedLayout.build(ec)
        ec._fast = layout
        if not isinstance(layout, _FixedLayout):
            for i, (values, ctx) in enumerate(_rows(ec, n, columns, ctx_columns)):
                self.write(ec, int(ts[i]), values, ctx)
            return
        chunk = max(1, (1 << 22) // (layout.size + 16))
        for lo in range(0, n, chunk):
            self._write_fixed(ec, layout, ts[lo:lo + chunk], columns, ctx_columns, lo)

    def _write_fixed(self, ec: EventClass, layout: _FixedLayout, ts: np.ndarray,
                     columns: dict[str, Any], ctx_columns: dict[str, Any], offset: int) -> None:
        n = len(ts)
        payload = layout.encode(ec, n, columns, ctx_columns, offset)
        ref = self._clock if self._buf is not None else \
            (self._last_ts if self.event_count else int(ts[0]))
        d0 = int(ts[0]) - ref
        if n > 1:
            compact = (ts[1:] - ts[:-1]) < np.uint64(ec._span) if ec._span else \
                np.zeros(n - 1, dtype=bool)
            compact = np.concatenate([[0 <= d0 < ec._span], compact])
        else:
            compact = np.array([0 <= d0 < ec._span])
        hdr_c, hdr_x = _batch_headers(self.writer.byte_order, self.stream_class.header, ec.id,
                                      ts)
        hc, hx, psize = hdr_c.shape[1], hdr_x.shape[1], layout.size
        sizes = (hx + psize) - (hx - hc) * compact.astype(np.int64)
        width = hx + psize
        full = np.zeros((n, width), dtype=np.uint8)
        full[:, :hx] = hdr_x
        full[:, hx:] = payload
        if hc and bool(compact.any()):
            full[compact, :hc] = hdr_c[compact]
            full[compact, hc:hc + psize] = payload[compact]
        out = full[np.arange(width)[None, :] < sizes[:, None]]
        cum = np.cumsum(sizes, dtype=np.int64)
        i = 0
        while i < n:
            buf = self._buf
            if buf is None:
                buf = self._open_packet(self._last_ts if self.event_count else int(ts[i]))
            base = int(cum[i - 1]) if i else 0
            j = int(np.searchsorted(cum, base + self._cap - len(buf), side="right"))
            if j == i:
                if len(buf) == _EVENTS_START:
                    raise ValueError(f"event {ec.name!r} does not fit in a packet of "
                                     f"{self._cap} bytes")
                self._close_packet()
                continue
            buf += out[base:int(cum[j - 1])].data
            self._tail = 0
            self._last_ts = self._clock = int(ts[j - 1])
            self.event_count += j - i
            i = j
            if i < n:
                self._close_packet()


def _timestamps_array(timestamps: Any) -> np.ndarray:
    arr = np.asarray(timestamps)
    if arr.ndim != 1:
        raise ValueError("timestamps must be a 1-D sequence")
    if arr.dtype.kind == "O":
        values = [_as_timestamp(x) for x in arr]
        if values and (min(values) < 0 or max(values) > _U64_MAX):
            raise ValueError("timestamps must be in 0..2**64-1")
        return np.array(values, dtype=np.uint64)
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            return arr.astype(np.uint64)
        raise ValueError(f"timestamps must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0:
        raise ValueError("timestamps must be >= 0")
    return arr.astype(np.uint64, copy=False)


def _rows(ec: EventClass, n: int, columns: dict[str, Any], ctx_columns: dict[str, Any]
          ) -> Iterable[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Per-event dicts from columns (scalars broadcast)."""
    sc = ec.stream_class

    def getter(col: Any) -> Callable[[int], Any]:
        if isinstance(col, (str, bytes, tuple, Mapping)) or not hasattr(col, "__len__"):
            return lambda i: col
        if len(col) != n:
            raise ValueError(f"column of length {len(col)} for {n} timestamps")
        if isinstance(col, np.ndarray):
            return lambda i: col[i].tolist() if col.ndim > 1 else col[i].item()
        return lambda i: col[i]

    getters = {k: getter(v) for k, v in columns.items()}
    ctx_getters = {k: getter(v) for k, v in ctx_columns.items()}
    for i in range(n):
        values = {k: g(i) for k, g in getters.items()}
        ctx = {k: g(i) for k, g in ctx_getters.items()} if sc.event_context is not None \
            else (ctx_columns or None)
        yield values, ctx


def _batch_headers(bo: ByteOrder, kind: HeaderKind, event_id: int, ts: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(compact, extended) event header bytes for every timestamp, as (n, size) uint8."""
    p = "<" if bo == "le" else ">"
    n = len(ts)
    if kind == "compact":
        if event_id < 31:
            low = ts & np.uint64(0x7FFFFFF)
            word = (low << np.uint64(5)) | np.uint64(event_id) if bo == "le" else \
                low | np.uint64(event_id << 27)
            hc = word.astype(p + "u4").view(np.uint8).reshape(n, 4)
        else:
            hc = np.zeros((n, 0), dtype=np.uint8)
        x = np.zeros(n, dtype=[("a", "u1"), ("i", p + "u4"), ("t", p + "u8")])
        x["a"] = 31 if bo == "le" else 31 << 3
    else:
        if event_id < 65535:
            c = np.zeros(n, dtype=[("i", p + "u2"), ("t", p + "u4")])
            c["i"] = event_id
            c["t"] = ts & np.uint64(0xFFFFFFFF)
            hc = c.view(np.uint8).reshape(n, 6)
        else:
            hc = np.zeros((n, 0), dtype=np.uint8)
        x = np.zeros(n, dtype=[("a", p + "u2"), ("i", p + "u4"), ("t", p + "u8")])
        x["a"] = 65535
    x["i"] = event_id
    x["t"] = ts
    return hc, x.view(np.uint8).reshape(n, x.dtype.itemsize)


@dataclass
class _Leaf:
    scope: str  # "c" (context) or "v" (payload)
    path: tuple[str, ...]
    ftype: Any
    dtype: str  # numpy dtype of the field (with byte order) or "S<n>"
    count: int  # array length, 0 for scalars


class _FixedLayout:
    """Numpy encoding of an event class whose context + payload have a fixed layout."""

    def __init__(self, leaves: list[_Leaf]) -> None:
        self.leaves = leaves
        fields = []
        for i, leaf in enumerate(leaves):
            fields.append((f"f{i}", leaf.dtype, (leaf.count,)) if leaf.count
                          else (f"f{i}", leaf.dtype))
        self.dtype = np.dtype(fields)
        self.size = self.dtype.itemsize

    @staticmethod
    def build(ec: EventClass) -> _FixedLayout | None:
        bo = ec.stream_class.writer.byte_order
        leaves: list[_Leaf] = []

        def visit(t: Any, scope: str, path: tuple[str, ...]) -> bool:
            if isinstance(t, Struct):
                if t.alignment > 8:
                    return False
                return all(visit(ft, scope, path + (name,)) for name, ft in t.fields)
            if isinstance(t, (Int, Enum, Float)):
                base = t.container if isinstance(t, Enum) else t
                if base.alignment > 8 or base.size not in (8, 16, 32, 64):
                    return False
                if isinstance(base, Int) and base.map_clock:
                    return False
                leaves.append(_Leaf(scope, path, t, _np_dtype(base, bo), 0))
                return True
            if isinstance(t, Array):
                if _is_text(t.element):
                    leaves.append(_Leaf(scope, path, t, f"S{t.length}", 0))
                    return t.length > 0
                e = t.element
                if isinstance(e, (Int, Float)) and e.alignment <= 8 and e.size in (8, 16, 32, 64) \
                        and not (isinstance(e, Int) and e.map_clock) and t.length > 0:
                    leaves.append(_Leaf(scope, path, t, _np_dtype(e, bo), t.length))
                    return True
                return False
            return False

        sc = ec.stream_class
        ok = sc.event_context is None or visit(sc.event_context, "c", ())
        ok = ok and visit(ec.fields, "v", ())
        return _FixedLayout(leaves) if ok and leaves else None

    def encode(self, ec: EventClass, n: int, columns: dict[str, Any],
               ctx_columns: dict[str, Any], offset: int) -> np.ndarray:
        """Context + payload bytes of ``n`` events as an (n, size) uint8 array."""
        rec = np.zeros(n, dtype=self.dtype)
        for cols, root in ((ctx_columns, ec.stream_class.event_context),
                           (columns, ec.fields)):
            if root is None:
                if cols:
                    raise ValueError(f"stream class {ec.stream_class.id} has no event context")
                continue
            names = set(root.names)
            unknown = [k for k in cols if k not in names]
            if unknown:
                raise ValueError(f"{ec.name}: unknown field(s) {unknown} (fields: {root.names})")
            missing = [k for k in root.names if k not in cols]
            if missing:
                raise ValueError(f"{ec.name}: missing column(s) {missing}")
        for i, leaf in enumerate(self.leaves):
            cols = ctx_columns if leaf.scope == "c" else columns
            where = ("context" if leaf.scope == "c" else ec.name) + "." + ".".join(leaf.path)
            col = cols[leaf.path[0]]
            col = _slice_column(col, n, offset, where)
            for key in leaf.path[1:]:
                col = [row[key] for row in col] if isinstance(col, list) else col[key]
            rec[f"f{i}"] = _leaf_values(leaf, col, n, where)
        return rec.view(np.uint8).reshape(n, self.size)


def _np_dtype(t: Int | Float, bo: ByteOrder) -> str:
    p = "<" if (t.byte_order or bo) == "le" else ">"
    if isinstance(t, Float):
        return f"{p}f{t.size // 8}"
    return f"{p}{'i' if t.signed else 'u'}{t.size // 8}"


def _slice_column(col: Any, n: int, offset: int, where: str) -> Any:
    """The ``n`` rows of a column starting at ``offset`` (a scalar is kept as is)."""
    if isinstance(col, np.ndarray):
        if col.ndim == 0:
            return col
        return col[offset:offset + n] if len(col) >= offset + n else _short(where, len(col))
    if isinstance(col, (str, bytes, int, float, np.generic, Mapping, tuple)):
        return col
    if hasattr(col, "__len__") and hasattr(col, "__getitem__"):
        if len(col) < offset + n:
            _short(where, len(col))
        return list(col[offset:offset + n])
    return col


def _short(where: str, length: int) -> Any:
    raise ValueError(f"{where}: column has too few rows ({length})")


def _leaf_values(leaf: _Leaf, col: Any, n: int, where: str) -> np.ndarray:
    t = leaf.ftype
    if isinstance(t, Array) and _is_text(t.element):
        if isinstance(col, (str, bytes)):
            col = [col] * n
        if isinstance(col, np.ndarray) and col.dtype.kind == "S":
            if col.dtype.itemsize > t.length:
                raise ValueError(f"{where}: text longer than {t.length} bytes")
            return col
        raw = [_text_bytes(x, where) for x in col]
        if any(len(x) > t.length for x in raw):
            raise ValueError(f"{where}: text longer than {t.length} bytes")
        return np.array(raw, dtype=f"S{t.length}") if raw else np.zeros(0, f"S{t.length}")
    if isinstance(t, Enum):
        lv = t.label_values
        if isinstance(col, str) or (not isinstance(col, np.ndarray) and hasattr(col, "__len__")
                                    and any(isinstance(x, str) for x in col)):
            try:
                col = lv[col] if isinstance(col, str) else [lv[x] if isinstance(x, str) else x
                                                            for x in col]
            except KeyError as exc:
                raise ValueError(f"{where}: unknown enum label {exc.args[0]!r}") from None
        base: Int | Float = t.container
    elif isinstance(t, Array):
        base = cast("Int | Float", t.element)
    else:
        base = t
    arr = np.asarray(col)
    if leaf.count:
        if arr.shape[-1:] != (leaf.count,) or arr.ndim not in (1, 2):
            raise ValueError(f"{where}: expected rows of {leaf.count} elements")
    elif arr.ndim > 1:
        raise ValueError(f"{where}: expected one value per event")
    if arr.ndim >= 1 and not leaf.count and len(arr) != n:
        raise ValueError(f"{where}: column has {len(arr)} rows for {n} events")
    if leaf.count and arr.ndim == 2 and len(arr) != n:
        raise ValueError(f"{where}: column has {len(arr)} rows for {n} events")
    if isinstance(base, Int):
        if arr.dtype.kind == "O":
            try:
                arr = np.array([operator.index(x) for x in arr.ravel()], dtype=object)
            except TypeError:
                raise ValueError(f"{where}: expected integers") from None
        elif arr.dtype.kind not in "iub":
            raise ValueError(f"{where}: expected integers, got dtype {arr.dtype}")
        if arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < base.min or hi > base.max:
                bad = lo if lo < base.min else hi
                raise ValueError(f"{where}: value {bad} out of range for a {base.size}-bit "
                                 f"{'signed' if base.signed else 'unsigned'} integer")
        return arr.astype(leaf.dtype) if arr.dtype.kind != "O" else \
            np.array(arr.tolist(), dtype=leaf.dtype)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{where}: expected numbers, got dtype {arr.dtype}")
    if base.size == 32 and arr.size:
        finite = np.abs(arr[np.isfinite(arr)]) if arr.dtype.kind == "f" else np.abs(arr)
        if finite.size and float(finite.max()) > _F32_MAX:
            raise ValueError(f"{where}: value too large for a 32-bit float")
    return arr.astype(leaf.dtype)
