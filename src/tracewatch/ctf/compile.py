"""Compiles a :class:`TraceClass` into decoding programs for :mod:`tracewatch.ctf.vm`.

Owns field-path resolution (relative and absolute sequence lengths and variant tags), the
validation that needs it (a tag must be an enum, a length an integer, every variant option
must be reachable), the automatic clock mapping babeltrace2 does for ``timestamp`` fields,
and the static layout of each scope's values (for the columnar API).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import MetadataError
from . import vm
from .types import (
    ArrayType,
    ClockClass,
    EnumType,
    EventClass,
    FieldType,
    FloatType,
    IntType,
    SequenceType,
    StreamClass,
    StringType,
    StructType,
    TraceClass,
    VariantType,
)

__all__ = ["CompiledTrace", "CompiledStream", "compile_trace", "min_bits", "emits_nothing", "static_bits",
           "is_fixed_layout", "value_count", "is_char_array"]

SCOPES = ("trace.packet.header", "stream.packet.context", "stream.event.header",
          "stream.event.context", "event.context", "event.fields")

_SPECIAL = {
    "trace.packet.header": {"magic": vm.R_MAGIC, "stream_id": vm.R_STREAM_ID,
                            "stream_instance_id": vm.R_STREAM_INSTANCE_ID},
    "stream.packet.context": {"content_size": vm.R_CONTENT_SIZE, "packet_size": vm.R_PACKET_SIZE,
                              "timestamp_begin": vm.R_TS_BEGIN, "timestamp_end": vm.R_TS_END,
                              "events_discarded": vm.R_DISCARDED, "packet_seq_num": vm.R_SEQ_NUM,
                              "cpu_id": vm.R_CPU_ID},
}


def min_bits(t: FieldType) -> int:
    """The fewest bits a value of this type can occupy (alignment padding excluded)."""
    if isinstance(t, IntType):
        return t.size
    if isinstance(t, EnumType):
        return t.container.size
    if isinstance(t, FloatType):
        return t.size
    if isinstance(t, StringType):
        return 8
    if isinstance(t, StructType):
        return sum(min_bits(f) for _, f in t.fields)
    if isinstance(t, ArrayType):
        return t.length * min_bits(t.element)
    if isinstance(t, VariantType):
        return min((min_bits(o) for _, o in t.options), default=0)
    return 0


def emits_nothing(t: FieldType) -> bool:
    """True for types that decode to no values at all (empty structs, arrays of them)."""
    if isinstance(t, StructType):
        return all(emits_nothing(f) for _, f in t.fields)
    if isinstance(t, ArrayType):
        return emits_nothing(t.element)
    return False


def is_fixed_layout(t: FieldType) -> bool:
    """True when every value of the type decodes to the same number of values."""
    if isinstance(t, (IntType, EnumType, FloatType, StringType)):
        return True
    if isinstance(t, StructType):
        return all(is_fixed_layout(f) for _, f in t.fields)
    if isinstance(t, ArrayType):
        return is_fixed_layout(t.element)
    return is_char_array(t)


def is_char_array(t: FieldType) -> bool:
    """Arrays and sequences of byte-aligned 8-bit encoded integers: decoded as text."""
    if not isinstance(t, (ArrayType, SequenceType)):
        return False
    el = t.element
    return isinstance(el, IntType) and el.size == 8 and el.align % 8 == 0 and el.encoding != "none"


def value_count(t: FieldType) -> int:
    """Number of decoded values of a fixed-layout type."""
    if isinstance(t, StringType) or is_char_array(t) or (isinstance(t, IntType) and t.size > 64):
        return 2
    if isinstance(t, (IntType, EnumType, FloatType)):
        return 1
    if isinstance(t, StructType):
        return sum(value_count(f) for _, f in t.fields)
    if isinstance(t, ArrayType):
        return 1 + (0 if emits_nothing(t.element) else t.length * value_count(t.element))
    raise ValueError("variable layout")


def static_bits(t: FieldType, pos: int = 0) -> int | None:
    """End bit of a value of type ``t`` decoded from bit ``pos``, when it does not depend on
    the data (no strings, sequences, variants, clock-mapped integers, alignments over 8
    bits); None otherwise. Used to skip events nobody asked for without decoding them."""
    if isinstance(t, (IntType, EnumType)):
        it = t.container if isinstance(t, EnumType) else t
        if it.clock is not None or it.align > 8:
            return None
        return _align(pos, it.align) + it.size
    if isinstance(t, FloatType):
        return None if t.align > 8 else _align(pos, t.align) + t.size
    if isinstance(t, StructType):
        if t.alignment > 8:
            return None
        p: int | None = _align(pos, t.alignment)
        for _, ft in t.fields:
            p = static_bits(ft, p) if p is not None else None
        return p
    if isinstance(t, ArrayType):
        el = t.element
        if el.alignment > 8:
            return None
        p = _align(pos, el.alignment)
        for _ in range(min(t.length, 1 << 16)):
            p = static_bits(el, p) if p is not None else None
        return p if t.length <= 1 << 16 else None
    return None


def _align(pos: int, a: int) -> int:
    return (pos + a - 1) & ~(a - 1)


@dataclass
class CompiledStream:
    stream_class: StreamClass
    context_pc: int
    header_pc: int
    event_context_pc: int
    events: list[EventClass]
    ev_ids: np.ndarray
    ctx_pcs: np.ndarray
    pay_pcs: np.ndarray
    # per event class: bits its (context-free) payload occupies from a byte-aligned start
    # and that start's alignment, or -1 when it must be decoded to be skipped
    skip_bits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    skip_align: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class CompiledTrace:
    trace_class: TraceClass
    prog: np.ndarray
    vtab: np.ndarray
    header_pc: int
    streams: dict[int, CompiledStream]
    clock: ClockClass
    has_packet_header: bool = True
    warnings: list[str] = field(default_factory=list)


Key = tuple[int, str]


class _Compiler:
    def __init__(self, tc: TraceClass) -> None:
        self.tc = tc
        self.prog: list[list[int]] = []
        self.vtab: list[list[int]] = []
        self.regs: dict[Key, int] = {}
        self.next_reg = vm.FIRST_USER_REG
        self.roots: dict[str, StructType | None] = {}
        self.stack: list[list[tuple[str, FieldType]]] = []
        self.scope = ""
        self.clock_names = list(tc.clocks)
        self.implicit_clock = False

    # ---- registers and path resolution
    def reg_for(self, key: Key) -> int:
        r = self.regs.get(key)
        if r is None:
            if self.next_reg >= vm.NREGS - 2 * vm.MAX_DEPTH:
                raise MetadataError("too many length and tag fields referenced")
            r = self.next_reg
            self.next_reg += 1
            self.regs[key] = r
        return r

    def resolve(self, path: str, anchor: list[tuple[str, FieldType]] | None, what: str) -> tuple[Key, FieldType]:
        parts = path.split(".")
        for i in range(len(SCOPES)):
            prefix = SCOPES[i].split(".")
            if parts[: len(prefix)] == prefix and len(parts) > len(prefix):
                root = self.roots.get(SCOPES[i])
                if root is None:
                    raise MetadataError(f"{what} '{path}' refers to scope {SCOPES[i]}, which is not available")
                return self.walk(root.fields, parts[len(prefix):], path, what)
        lists: list[list[tuple[str, FieldType]]] = []
        if anchor is not None:
            lists.append(anchor)
        lists.extend(reversed(self.stack))
        order = SCOPES[: SCOPES.index(self.scope) + 1] if self.scope in SCOPES else SCOPES
        for s in reversed(order):
            root = self.roots.get(s)
            if root is not None:
                lists.append(root.fields)
        for fl in lists:
            if any(n == parts[0] for n, _ in fl):
                return self.walk(fl, parts, path, what)
        raise MetadataError(f"{what} '{path}' does not name a field declared before it")

    def walk(self, fl: list[tuple[str, FieldType]], parts: list[str], path: str, what: str) -> tuple[Key, FieldType]:
        for i, p in enumerate(parts):
            found = [t for n, t in fl if n == p]
            if not found:
                raise MetadataError(f"{what} '{path}': no field '{p}'")
            t = found[0]
            if i == len(parts) - 1:
                return (id(fl), p), t
            if not isinstance(t, StructType):
                raise MetadataError(f"{what} '{path}': '{p}' is not a struct")
            fl = t.fields
        raise MetadataError(f"{what} '{path}' is empty")

    # ---- emission
    def emit(self, *ins: int) -> int:
        row = list(ins) + [0] * (8 - len(ins))
        self.prog.append(row)
        return len(self.prog) - 1

    def byte_order(self, bo: str) -> int:
        if bo == "native":
            bo = self.tc.byte_order
        return 1 if bo == "be" else 0

    def compile_scope(self, scope: str, st: StructType | None) -> int:
        if st is None:
            return -1
        self.scope = scope
        self.roots[scope] = st
        pc = len(self.prog)
        self.struct(st, top=True)
        self.emit(vm.OP_END)
        self.scope = ""
        return pc

    def struct(self, st: StructType, top: bool = False) -> None:
        if st.alignment > 1:
            self.emit(vm.OP_ALIGN, st.alignment)
        self.stack.append(st.fields)
        try:
            for name, t in st.fields:
                self.field(st.fields, name, t, top)
        finally:
            self.stack.pop()

    def field(self, fl: list[tuple[str, FieldType]], name: str, t: FieldType, top: bool) -> None:
        key = (id(fl), name)
        if isinstance(t, (IntType, EnumType)):
            it = t.container if isinstance(t, EnumType) else t
            reg = self.regs.get(key, -1)
            clock = 0
            if top and self.scope in _SPECIAL and name in _SPECIAL[self.scope]:
                reg = self.regs.setdefault(key, _SPECIAL[self.scope][name])
            if self.scope == "stream.event.header" and name == "id":
                reg = self.regs.setdefault(key, vm.R_EVENT_ID)
            mapped = it.clock is not None or self.auto_mapped(name, top)
            if mapped and not (self.scope == "stream.packet.context" and name == "timestamp_end"):
                clock = 1
            if it.clock is not None and it.clock not in self.tc.clocks:
                raise MetadataError(f"field '{name}' is mapped to undeclared clock '{it.clock}'")
            if it.align > 1:
                self.emit(vm.OP_ALIGN, it.align)
            if it.size > 64:
                if it.align % 8:
                    raise MetadataError(f"integer '{name}' of {it.size} bits is not byte-aligned")
                self.emit(vm.OP_BYTES, it.size // 8, 0)
                return
            self.emit(vm.OP_INT, it.size, int(it.signed), self.byte_order(it.byte_order), reg, clock, 1)
        elif isinstance(t, FloatType):
            if t.align > 1:
                self.emit(vm.OP_ALIGN, t.align)
            self.emit(vm.OP_FLOAT, t.size, self.byte_order(t.byte_order))
        elif isinstance(t, StringType):
            self.emit(vm.OP_STRING)
        elif isinstance(t, StructType):
            self.struct(t)
        elif isinstance(t, (ArrayType, SequenceType)):
            self.array(t)
        elif isinstance(t, VariantType):
            self.variant(t)
        else:
            raise MetadataError(f"unsupported field type for '{name}'")

    def auto_mapped(self, name: str, top: bool) -> bool:
        auto = (self.scope == "stream.packet.context" and name in ("timestamp_begin", "timestamp_end")) or (
            self.scope == "stream.event.header" and name == "timestamp")
        if not auto:
            return False
        if not self.tc.clocks:
            self.implicit_clock = True
            return True
        return len(self.tc.clocks) == 1

    def array(self, t: ArrayType | SequenceType) -> None:
        el = t.element
        if el.alignment > 1:
            self.emit(vm.OP_ALIGN, el.alignment)
        empty = int(emits_nothing(el) and min_bits(el) == 0)
        if is_char_array(t):
            if isinstance(t, ArrayType):
                self.emit(vm.OP_BYTES, t.length, 0)
            else:
                key, lt = self.resolve(t.length, t.anchor, "sequence length")
                it = lt.container if isinstance(lt, EnumType) else lt
                if not isinstance(it, IntType):
                    raise MetadataError(f"sequence length '{t.length}' is not an integer field")
                self.emit(vm.OP_BYTES, self.reg_for(key), 1)
            return
        if isinstance(t, ArrayType):
            pc = self.emit(vm.OP_ARRAY, t.length, 0, empty)
        else:
            key, lt = self.resolve(t.length, t.anchor, "sequence length")
            it = lt.container if isinstance(lt, EnumType) else lt
            if not isinstance(it, IntType):
                raise MetadataError(f"sequence length '{t.length}' is not an integer field")
            pc = self.emit(vm.OP_SEQ, self.reg_for(key), 0, empty, int(it.signed), min_bits(el))
        if not empty:
            body = len(self.prog)
            self.field([], "", el, False)
            self.emit(vm.OP_LOOP_END, body)
        self.prog[pc][2] = len(self.prog)

    def variant(self, t: VariantType) -> None:
        if t.tag is None:
            raise MetadataError("variant without a tag")
        key, tt = self.resolve(t.tag, t.anchor, "variant tag")
        if not isinstance(tt, EnumType):
            raise MetadataError(f"variant tag '{t.tag}' is not an enum")
        reg = self.reg_for(key)
        names = [n for n, _ in t.options]
        norm = {n.lstrip("_") if n.startswith("_") else n: i for i, n in enumerate(names)}
        entries: list[tuple[int, int, int]] = []  # lo, hi, option
        matched: set[int] = set()
        for m in tt.mappings:
            i = norm.get(m.label)
            if i is None:
                i = norm.get(m.label.lstrip("_"))
            if i is not None:
                entries.append((m.lo, m.hi, i))
                matched.add(i)
        if names and not matched:
            raise MetadataError(f"no option of the variant tagged by '{t.tag}' matches a label of its enum")
        pc = self.emit(vm.OP_VARIANT, reg, len(self.vtab), len(entries))
        targets: dict[int, int] = {}
        jumps: list[int] = []
        rows = [[lo, hi, 0, i] for lo, hi, i in entries]
        self.vtab.extend(rows)
        for i, (n, ot) in enumerate(t.options):
            targets[i] = len(self.prog)
            self.field(t.options, n, ot, False)
            jumps.append(self.emit(vm.OP_JUMP, 0))
        end = len(self.prog)
        for j in jumps:
            self.prog[j][1] = end
        base = self.prog[pc][2]
        for k, (_, _, i) in enumerate(entries):
            self.vtab[base + k][2] = targets[i]

    # ---- whole trace
    def run(self) -> CompiledTrace:
        tc = self.tc
        hdr = self.compile_scope("trace.packet.header", tc.packet_header)
        streams: dict[int, CompiledStream] = {}
        for sid, sc in sorted(tc.streams.items()):
            self.roots = {"trace.packet.header": tc.packet_header}
            ctx = self.compile_scope("stream.packet.context", sc.packet_context)
            eh = self.compile_scope("stream.event.header", sc.event_header)
            sec = self.compile_scope("stream.event.context", sc.event_context)
            evs = [sc.events[i] for i in sorted(sc.events)]
            ctx_pcs, pay_pcs = [], []
            for ev in evs:
                self.roots.pop("event.context", None)
                self.roots.pop("event.fields", None)
                ctx_pcs.append(self.compile_scope("event.context", ev.context))
                pay_pcs.append(self.compile_scope("event.fields", ev.fields))
            if not evs:
                ids = np.zeros(0, np.int64)
            else:
                ids = np.array([ev.id for ev in evs], np.int64)
            skip_bits, skip_align = [], []
            for ev in evs:
                st = ev.fields
                n = None if ev.context is not None else (0 if st is None else static_bits(st, 0))
                skip_bits.append(-1 if n is None else n)
                skip_align.append(1 if st is None else max(1, st.alignment))
            streams[sid] = CompiledStream(sc, ctx, eh, sec, evs, ids,
                                          np.array(ctx_pcs, np.int64), np.array(pay_pcs, np.int64),
                                          np.array(skip_bits, np.int64), np.array(skip_align, np.int64))
        if len(tc.clocks) > 1:
            names = {s.stream_class.clock for s in streams.values() if s.stream_class.clock}
            clock = tc.clocks[sorted(names)[0]] if names else next(iter(tc.clocks.values()))
        elif tc.clocks:
            clock = next(iter(tc.clocks.values()))
        else:
            clock = ClockClass("default")
        prog = np.array(self.prog if self.prog else [[0] * 8], np.int64).reshape(-1, 8)
        vtab = np.array(self.vtab if self.vtab else [[0, -1, 0, 0]], np.int64).reshape(-1, 4)
        return CompiledTrace(tc, prog, vtab, hdr, streams, clock, tc.packet_header is not None)


def compile_trace(tc: TraceClass) -> CompiledTrace:
    """Compile every scope of a trace class (two passes: the first finds referenced fields)."""
    first = _Compiler(tc)
    first.run()
    second = _Compiler(tc)
    # keep the registers the first pass allocated for referenced fields
    second.regs = {k: v for k, v in first.regs.items() if v >= vm.FIRST_USER_REG}
    second.next_reg = first.next_reg
    return second.run()
