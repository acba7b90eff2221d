"""Reading one CTF data stream: packets -> decoded chunks of events (columns).

Owns the packet layer: packet header and context (magic, UUID, stream id, sizes, timestamps,
discarded events), bounded windows of the file (a stream is never loaded whole), and the
conversion of decoder faults into :class:`~tracewatch.errors.DecodeError` with file and byte
offset. Every event decoded before a fault is delivered first; the error comes after.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import DecodeError
from . import vm
from .compile import CompiledStream, CompiledTrace

__all__ = ["Chunk", "PacketInfo", "StreamReader", "BytesSource", "FileSource"]

WINDOW = 1024 * 1024
_MAGIC = 0xC1FC1FC1


@dataclass
class PacketInfo:
    offset: int  # byte offset of the packet in its stream
    packet_size: int  # bits
    content_size: int  # bits
    stream_class_id: int
    stream_instance_id: int | None
    cpu_id: int | None
    begin_cycles: int | None
    end_cycles: int | None
    events_discarded: int | None
    seq_num: int | None


@dataclass
class Chunk:
    """Events decoded from consecutive packets of one stream (arrays are parallel, one per event)."""

    buf: np.ndarray  # uint8 bytes the string values point into
    vals: np.ndarray  # int64 flat decoded values
    cls: np.ndarray  # int32 event class index within the stream class
    cycles: np.ndarray  # int64 clock value of each event
    off: np.ndarray  # int64 [n, 5]: value offsets of header, stream ctx, event ctx, payload; bit pos
    cpu: np.ndarray  # int32 cpu id of each event's packet, -1 if unknown
    stream_class_id: np.ndarray  # int32
    packets: list[PacketInfo]
    packet_of: np.ndarray  # int32 index into packets of each event's packet
    packet_vals: np.ndarray  # int64 values of each packet's header+context, flat
    packet_val_off: np.ndarray  # int64 [npackets, 2]: header start, context start
    buf_base: np.ndarray  # int64 offset in buf of each event's packet (string offsets are packet-relative)
    #: int64 clock value of each event stepped over without decoding (classes not wanted,
    #: see :meth:`StreamReader.want_only`), in stream order
    skipped: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: events of this chunk, decoded or stepped over, whose clock value is below that of an
    #: earlier event of the stream (timestamps going backwards)
    backwards: int = 0

    def __len__(self) -> int:
        return int(self.cls.shape[0])


class BytesSource:
    """A medium giving bytes of a stream: a whole in-memory buffer (live packets, tests)."""

    def __init__(self, data: bytes, name: str = "<memory>") -> None:
        self.data = data
        self.name = name
        self.size = len(data)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset: offset + length]


class _PacketSource:
    """The bytes of one live packet, placed at their offset in the stream."""

    def __init__(self, data: bytes, base: int, name: str) -> None:
        self.data = data
        self.base = base
        self.name = name
        self.size = base + len(data)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset - self.base: offset - self.base + length]


class FileSource:
    """A medium reading a stream file by windows."""

    def __init__(self, path: str) -> None:
        self.name = path
        self.size = os.path.getsize(path)
        self.f = open(path, "rb")  # noqa: SIM115 - closed by close()

    def read(self, offset: int, length: int) -> bytes:
        self.f.seek(offset)
        return self.f.read(length)

    def close(self) -> None:
        self.f.close()


class StreamReader:
    """Decodes one stream's packets into :class:`Chunk` objects, packet by packet."""

    def __init__(self, ct: CompiledTrace, source: BytesSource | FileSource | _PacketSource,
                 on_warning: Callable[[str], None] | None = None) -> None:
        self.ct = ct
        self.src = source
        self.name = source.name
        self.on_warning = on_warning
        self.regs = np.zeros(vm.NREGS, np.int64)
        self.rset = np.zeros(vm.NREGS, np.uint8)
        self.discarded_total = 0
        self.overlaps = 0
        self.max_overlap = 0
        self.first_overlap: int | None = None
        self._prev_end: int | None = None
        # greatest clock value so far, events whose clock went below it (see vm.decode_events)
        self.clk_state = np.array([-(1 << 63), 0], np.int64)
        self.wanted: dict[int, np.ndarray] | None = None
        self._all: dict[int, np.ndarray] = {}
        self._live_pos = 0  # bytes given to decode_packet so far

    def want_only(self, wanted: dict[int, np.ndarray] | None) -> None:
        """Only output the events of the classes marked in ``wanted`` (per stream class id:
        a uint8 mask over its event classes); others of static size are stepped over."""
        self.wanted = wanted

    def _wanted(self, cs: CompiledStream) -> np.ndarray:
        w = self.wanted.get(cs.stream_class.id) if self.wanted is not None else None
        if w is None:
            w = self._all.get(cs.stream_class.id)
            if w is None:
                w = self._all[cs.stream_class.id] = np.ones(cs.ev_ids.shape[0], np.uint8)
        return w

    def _fault(self, offset: int, reason: str, packet_offset: int | None = None) -> DecodeError:
        return DecodeError(self.name, offset, reason, packet_offset)

    def chunks(self, max_events: int = 1 << 15) -> Iterator[Chunk]:
        """Yield chunks (the events of the packets of one window of the file, at most about
        ``max_events``); raise DecodeError at a fault after yielding everything before it."""
        size = self.src.size
        pos = 0  # byte offset of the next packet
        while pos < size:
            win = np.frombuffer(self.src.read(pos, WINDOW), np.uint8)
            out = _Out(self.ct, win, max(1024, min(max_events, win.shape[0] // 8)))
            back0 = int(self.clk_state[1])
            pos, fault = self._decode_window(win, pos, out, max_events)
            chunk = out.chunk(int(self.clk_state[1]) - back0)
            if chunk is not None:
                yield chunk
            if fault is not None:
                self._report_overlaps()
                raise fault
        self._report_overlaps()

    def decode_packet(self, data: bytes, offset: int | None = None) -> Chunk | None:
        """Decode one more packet (or several consecutive ones) of this stream, given as bytes
        (live reading), with the clock state left by the previous packets; None if it holds no
        packet. ``offset`` is the packet's byte offset in its stream, for messages (by default
        the bytes given so far). Raise DecodeError at a fault: the events decoded before it are
        lost with this packet."""
        base = self._live_pos if offset is None else offset
        self._live_pos = base + len(data)
        if not data:
            return None
        saved = self.src
        self.src = _PacketSource(data, base, self.name)
        try:
            win = np.frombuffer(data, np.uint8)
            out = _Out(self.ct, win, max(1024, win.shape[0] // 8))
            back0 = int(self.clk_state[1])
            _, fault = self._decode_window(win, base, out, 1 << 62)
        finally:
            self.src = saved
        if fault is not None:
            raise fault
        return out.chunk(int(self.clk_state[1]) - back0)

    def _decode_window(self, win: np.ndarray, win_start: int, out: _Out,
                       max_events: int) -> tuple[int, DecodeError | None]:
        """Decode the packets wholly inside ``win``; return (next packet offset, fault)."""
        ct = self.ct
        size = self.src.size
        pos = win_start
        regs, rset = self.regs, self.rset
        while pos < size:
            rel = pos - win_start
            if rel and (out.n >= max_events or rel + 4096 > win.shape[0]) and win_start + win.shape[0] < size:
                return pos, None  # next window
            rset[: vm.FIRST_USER_REG] = 0
            rset[vm.R_CLOCK] = 1  # the clock keeps its value from packet to packet
            pv0 = out.npv
            bit = rel * 8
            end_bits = win.shape[0] * 8
            if ct.header_pc >= 0:
                st, bit, out.npv, err, arg = vm.run_program(win, bit, end_bits, ct.prog, ct.vtab, ct.header_pc,
                                                            regs, rset, out.pvals, out.npv)
                if st != vm.ST_OK:
                    return pos, self._fault(win_start + bit // 8, "truncated packet header" if err == vm.E_BOUNDS
                                            else vm.ERROR_TEXT.get(err, "bad packet header").format(arg=arg), pos)
                if rset[vm.R_MAGIC] and (int(regs[vm.R_MAGIC]) & 0xFFFFFFFF) != _MAGIC:
                    return pos, self._fault(pos, f"bad packet magic 0x{int(regs[vm.R_MAGIC]) & 0xFFFFFFFF:08x}", pos)
                fault = self._check_uuid(win, rel, pos)
                if fault is not None:
                    return pos, fault
            sid = int(regs[vm.R_STREAM_ID]) if rset[vm.R_STREAM_ID] else None
            if sid is None:
                if len(ct.streams) != 1:
                    return pos, self._fault(pos, "packet header has no stream_id and there are several stream classes", pos)
                sid = next(iter(ct.streams))
            cs = ct.streams.get(sid)
            if cs is None:
                return pos, self._fault(pos, f"packet refers to undeclared stream class {sid}", pos)
            pv1 = out.npv
            if cs.context_pc >= 0:
                st, bit, out.npv, err, arg = vm.run_program(win, bit, end_bits, ct.prog, ct.vtab, cs.context_pc,
                                                            regs, rset, out.pvals, out.npv)
                if st != vm.ST_OK:
                    return pos, self._fault(win_start + bit // 8, "truncated packet context", pos)
            hdr_bits = bit - rel * 8
            remaining_bits = (size - pos) * 8
            psize = int(regs[vm.R_PACKET_SIZE]) if rset[vm.R_PACKET_SIZE] else None
            csize = int(regs[vm.R_CONTENT_SIZE]) if rset[vm.R_CONTENT_SIZE] else None
            if psize is None:
                psize = csize if csize is not None else remaining_bits
                if csize is not None and psize % 8:
                    psize += 8 - psize % 8
            if csize is None:
                csize = psize
            if psize <= 0 or psize % 8:
                return pos, self._fault(pos, f"bad packet size {psize} bits", pos)
            if csize > psize:
                return pos, self._fault(pos, f"content size {csize} bits larger than packet size {psize} bits", pos)
            if csize < hdr_bits:
                return pos, self._fault(pos, f"content size {csize} bits smaller than the packet header and "
                                        f"context ({hdr_bits} bits)", pos)
            truncated = None
            if psize > remaining_bits:
                # decode what the file still holds of this packet, then report the cut
                truncated = self._fault(pos, f"packet of {psize // 8} bytes extends past the end of the file "
                                        f"({size - pos} bytes left): truncated stream", pos)
                psize = remaining_bits - remaining_bits % 8
                csize = min(csize, psize)
            if psize // 8 > win.shape[0] - rel:
                if rel:
                    out.npv = pv0
                    return pos, None  # the packet starts a new window
                win2 = np.frombuffer(self.src.read(pos, psize // 8), np.uint8)
                out.retarget(win2)  # a packet larger than the window: its own window
                win = win2
            info = PacketInfo(
                offset=pos, packet_size=psize, content_size=csize, stream_class_id=sid,
                stream_instance_id=int(regs[vm.R_STREAM_INSTANCE_ID]) if rset[vm.R_STREAM_INSTANCE_ID] else None,
                cpu_id=int(regs[vm.R_CPU_ID]) if rset[vm.R_CPU_ID] else None,
                begin_cycles=int(regs[vm.R_TS_BEGIN]) if rset[vm.R_TS_BEGIN] else None,
                end_cycles=int(regs[vm.R_TS_END]) if rset[vm.R_TS_END] else None,
                events_discarded=int(regs[vm.R_DISCARDED]) if rset[vm.R_DISCARDED] else None,
                seq_num=int(regs[vm.R_SEQ_NUM]) if rset[vm.R_SEQ_NUM] else None,
            )
            self._note_discarded(info)
            self._note_overlap(info)
            n_before = out.n
            fault = self._decode_events(win, rel * 8 + hdr_bits, rel * 8 + csize, cs, out, info)
            out.add_packet(info, n_before, pv0, pv1)
            if truncated is not None:
                fault = truncated if fault is None else DecodeError(
                    self.name, fault.offset, f"{fault.reason} (stream truncated: {truncated.reason})", pos)
            if fault is not None:
                return size, fault
            pos += psize // 8
            if out.window is not win:
                return pos, None
        return pos, None

    def _check_uuid(self, win: np.ndarray, rel: int, pos: int) -> DecodeError | None:
        tc = self.ct.trace_class
        if tc.uuid is None or tc.packet_header is None:
            return None
        # the uuid array follows the magic when declared as "uint8_t uuid[16]"
        names = [n for n, _ in tc.packet_header.fields]
        if "uuid" not in names:
            return None
        # decoded as part of the header values: bytes at the uuid field's position
        # (byte-aligned in every real trace); compare only when it is the second field
        if names[:2] == ["magic", "uuid"]:
            got = bytes(win[rel + 4: rel + 20])
            want = bytes.fromhex(tc.uuid.replace("-", ""))
            if got != want:
                return self._fault(pos + 4, f"packet UUID {got.hex()} differs from the trace's {want.hex()}", pos)
        return None

    def _note_overlap(self, info: PacketInfo) -> None:
        prev = self._prev_end
        if prev is not None and info.begin_cycles is not None and info.begin_cycles < prev:
            self.overlaps += 1
            self.max_overlap = max(self.max_overlap, prev - info.begin_cycles)
            if self.first_overlap is None:
                self.first_overlap = info.offset
        if info.end_cycles is not None:
            self._prev_end = info.end_cycles

    def _report_overlaps(self) -> None:
        if self.overlaps and self.on_warning:
            self.on_warning(f"{self.name}: {self.overlaps} packets begin before the previous packet ended "
                            f"(first at byte {self.first_overlap}, by up to {self.max_overlap} clock cycles); "
                            "events delivered in stream order")

    def _note_discarded(self, info: PacketInfo) -> None:
        if info.events_discarded is None:
            return
        if info.events_discarded > self.discarded_total:
            new = info.events_discarded - self.discarded_total
            self.discarded_total = info.events_discarded
            if self.on_warning:
                self.on_warning(f"{self.name}: tracer discarded {new} events before packet at byte "
                                f"{info.offset} ({info.events_discarded} in this stream so far)")

    def _decode_events(self, win: np.ndarray, pos: int, end: int, cs: CompiledStream, out: _Out,
                       info: PacketInfo) -> DecodeError | None:
        """Decode one packet's events (bits ``pos`` to ``end`` of the window) into ``out``."""
        ct = self.ct
        if cs.ev_ids.shape[0] == 0:
            if pos < end:
                return self._fault(info.offset + (pos - (end - info.content_size)) // 8,
                                   "event data in a stream with no event classes", info.offset)
            return None
        base_bit = end - info.content_size  # bit offset of the packet in the window
        while True:
            st, out.n, out.nv, out.nskip, pos, err, arg = vm.decode_events(
                win, pos, end, ct.prog, ct.vtab, cs.header_pc, cs.event_context_pc, cs.ev_ids,
                cs.ctx_pcs, cs.pay_pcs, self.regs, self.rset, out.cls, out.clk, out.off, out.vals, out.n, out.nv,
                self._wanted(cs), cs.skip_bits, cs.skip_align, out.skip, out.nskip, self.clk_state)
            if st == vm.ST_OK:
                return None
            if st == vm.ST_NEED_SPACE:
                out.grow()
                continue
            reason = vm.ERROR_TEXT.get(err, "decoding error").format(arg=arg)
            return self._fault(info.offset + (pos - base_bit) // 8, reason, info.offset)


class _Out:
    """The growing output arrays of one chunk."""

    def __init__(self, ct: CompiledTrace, window: np.ndarray, cap: int) -> None:
        self.window = window
        self.cls = np.empty(cap, np.int32)
        self.clk = np.empty(cap, np.int64)
        self.off = np.empty((cap, 5), np.int64)
        self.vals = np.empty(cap * 10, np.int64)
        self.pvals = np.empty(4096, np.int64)
        self.skip = np.empty(cap, np.int64)
        self.n = 0
        self.nv = 0
        self.nskip = 0
        self.npv = 0
        self.packets: list[PacketInfo] = []
        self.packet_n: list[int] = []
        self.pvoff: list[tuple[int, int]] = []

    def retarget(self, window: np.ndarray) -> None:
        assert self.n == 0
        self.window = window

    def grow(self) -> None:
        if self.nskip >= self.skip.shape[0]:
            self.skip = np.resize(self.skip, self.skip.shape[0] * 2)
        elif self.n >= self.cls.shape[0] - 1:
            cap = self.cls.shape[0] * 2
            self.cls = np.resize(self.cls, cap)
            self.clk = np.resize(self.clk, cap)
            off = np.empty((cap, 5), np.int64)
            off[: self.n] = self.off[: self.n]
            self.off = off
        else:
            self.vals = np.resize(self.vals, self.vals.shape[0] * 2)

    def add_packet(self, info: PacketInfo, n_before: int, pv0: int, pv1: int) -> None:
        self.packets.append(info)
        self.packet_n.append(self.n - n_before)
        self.pvoff.append((pv0, pv1))
        if self.npv > self.pvals.shape[0] - 512:
            self.pvals = np.resize(self.pvals, self.pvals.shape[0] * 2)

    def chunk(self, backwards: int = 0) -> Chunk | None:
        if not self.packets:
            return None
        n = self.n
        packet_of = np.repeat(np.arange(len(self.packets), dtype=np.int32), self.packet_n)
        cpu = np.array([-1 if p.cpu_id is None else p.cpu_id for p in self.packets], np.int32)[packet_of]
        sc = np.array([p.stream_class_id for p in self.packets], np.int32)[packet_of]
        return Chunk(buf=self.window, vals=self.vals[: self.nv], cls=self.cls[:n], cycles=self.clk[:n],
                     off=self.off[:n], cpu=cpu, stream_class_id=sc, packets=self.packets,
                     packet_of=packet_of, packet_vals=self.pvals[: self.npv],
                     packet_val_off=np.array(self.pvoff, np.int64).reshape(-1, 2),
                     buf_base=np.zeros(n, np.int64), skipped=self.skip[: self.nskip], backwards=backwards)
