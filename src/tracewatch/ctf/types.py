"""The intermediate representation of CTF 1.8 metadata: field types and the trace's classes.

The TSDL parser (:mod:`tracewatch.ctf.tsdl`) produces these objects; the decoder compiler
(:mod:`tracewatch.ctf.compile`) turns them into programs for the packet decoder. Plain
dataclasses, no behaviour beyond alignment and size helpers. Imports nothing from tracewatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "FieldType",
    "IntType",
    "FloatType",
    "StringType",
    "EnumType",
    "StructType",
    "VariantType",
    "ArrayType",
    "SequenceType",
    "ClockClass",
    "EventClass",
    "StreamClass",
    "TraceClass",
    "Mapping",
]


class FieldType:
    """Base of every field type."""

    @property
    def alignment(self) -> int:
        """Alignment in bits."""
        raise NotImplementedError


@dataclass(eq=False)
class IntType(FieldType):
    size: int
    signed: bool = False
    align: int = 1
    byte_order: str = "native"  # "le", "be" or "native" (resolved by the compiler)
    base: int = 10
    encoding: str = "none"
    clock: str | None = None  # name of the clock this integer is mapped to

    @property
    def alignment(self) -> int:
        return self.align


@dataclass(eq=False)
class FloatType(FieldType):
    exp_dig: int
    mant_dig: int
    align: int = 1
    byte_order: str = "native"

    @property
    def size(self) -> int:
        return self.exp_dig + self.mant_dig

    @property
    def alignment(self) -> int:
        return self.align


@dataclass(eq=False)
class StringType(FieldType):
    encoding: str = "UTF8"

    @property
    def alignment(self) -> int:
        return 8


@dataclass(frozen=True)
class Mapping:
    label: str
    lo: int
    hi: int


@dataclass(eq=False)
class EnumType(FieldType):
    container: IntType
    mappings: list[Mapping] = field(default_factory=list)

    @property
    def alignment(self) -> int:
        return self.container.alignment

    def labels_for(self, value: int) -> list[str]:
        return [m.label for m in self.mappings if m.lo <= value <= m.hi]


@dataclass(eq=False)
class StructType(FieldType):
    fields: list[tuple[str, FieldType]] = field(default_factory=list)
    min_align: int = 1

    @property
    def alignment(self) -> int:
        a = self.min_align
        for _, t in self.fields:
            a = max(a, t.alignment)
        return a


@dataclass(eq=False)
class VariantType(FieldType):
    tag: str | None  # field path of the enum selecting the option
    options: list[tuple[str, FieldType]] = field(default_factory=list)
    # The field list (of the struct being declared) where a relative tag path was found when
    # the variant was declared: TSDL resolves relative paths lexically.
    anchor: list[tuple[str, FieldType]] | None = None

    @property
    def alignment(self) -> int:
        # A variant has no alignment of its own: each option aligns itself.
        return 1


@dataclass(eq=False)
class ArrayType(FieldType):
    element: FieldType
    length: int

    @property
    def alignment(self) -> int:
        return self.element.alignment


@dataclass(eq=False)
class SequenceType(FieldType):
    element: FieldType
    length: str  # field path of the length integer
    anchor: list[tuple[str, FieldType]] | None = None  # see VariantType.anchor

    @property
    def alignment(self) -> int:
        return self.element.alignment


@dataclass
class ClockClass:
    name: str
    freq: int = 1_000_000_000
    offset_s: int = 0
    offset: int = 0
    precision: int = 0
    absolute: bool = False
    uuid: str | None = None
    description: str | None = None

    def to_ns(self, cycles: int) -> int:
        """Nanoseconds since the clock's origin (the epoch for LTTng) of a cycle count.

        Computed as babeltrace2 does, so that both print the same times: the offset is
        normalized to whole seconds plus cycles below one second, and each part below one
        second is converted with a double-precision ``1e9 * cycles / freq``, truncated."""
        if self.freq == 1_000_000_000:
            return self.offset_s * 1_000_000_000 + self.offset + cycles
        off_s, off_c = self.offset_s + self.offset // self.freq, self.offset % self.freq
        secs, rem = divmod(cycles, self.freq)
        return ((off_s + secs) * 1_000_000_000 + int(1e9 * float(off_c) / float(self.freq))
                + int(1e9 * float(rem) / float(self.freq)))


@dataclass(eq=False)
class EventClass:
    name: str
    id: int
    stream_id: int
    context: StructType | None = None
    fields: StructType | None = None
    loglevel: int | None = None
    model_emf_uri: str | None = None
    attributes: dict[str, object] = field(default_factory=dict)


@dataclass(eq=False)
class StreamClass:
    id: int
    event_header: StructType | None = None
    packet_context: StructType | None = None
    event_context: StructType | None = None
    events: dict[int, EventClass] = field(default_factory=dict)
    id_given: bool = True

    @property
    def clock(self) -> str | None:
        """Name of the clock this stream's timestamps are mapped to."""
        for scope in (self.event_header, self.packet_context):
            name = _first_clock(scope)
            if name:
                return name
        return None


def _first_clock(t: FieldType | None) -> str | None:
    if isinstance(t, IntType):
        return t.clock
    if isinstance(t, EnumType):
        return t.container.clock
    if isinstance(t, StructType):
        for _, sub in t.fields:
            c = _first_clock(sub)
            if c:
                return c
    if isinstance(t, VariantType):
        for _, sub in t.options:
            c = _first_clock(sub)
            if c:
                return c
    return None


@dataclass(eq=False)
class TraceClass:
    major: int = 1
    minor: int = 8
    uuid: str | None = None
    byte_order: str = "le"
    packet_header: StructType | None = None
    env: dict[str, object] = field(default_factory=dict)
    clocks: dict[str, ClockClass] = field(default_factory=dict)
    streams: dict[int, StreamClass] = field(default_factory=dict)

    @property
    def hostname(self) -> str | None:
        h = self.env.get("hostname")
        return str(h) if h is not None else None
