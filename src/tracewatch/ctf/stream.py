"""Reading one CTF data stream: packets -> decoded chunks of events (columns).

Owns the packet layer: packet header and context (magic, UUID, stream id, sizes, timestamps,
discarded events), bounded windows of the file (a stream is never loaded whole), and the
conversion of decoder faults into :class:`~tracewatch.errors.DecodeError` with file and byte
offset. Every event decoded before a fault is delivered first; the error comes after.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import DecodeError
from . import vm
from .compile import CompiledStream, CompiledTrace

__all__ = ["Chunk", "PacketInfo", "StreamReader", "BytesSource", "FileSource"]

WINDOW = 4 * 1024 * 1024
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

    def __init__(self, ct: CompiledTrace, source: BytesSource | FileSource,
                 on_warning: Callable[[str], None] | None = None) -> None:
        self.ct = ct
        self.src = source
        self.name = source.name
        self.on_warning = on_warning
        self.regs = np.zeros(vm.NREGS, np.int64)
        self.rset = np.zeros(vm.NREGS, np.uint8)
        self.discarded_total = 0
        self.error: DecodeError | None = None

    def _fault(self, offset: int, reason: str, packet_offset: int | None = None) -> DecodeError:
        return DecodeError(self.name, offset, reason, packet_offset)

    def chunks(self, max_events: int = 1 << 16) -> Iterator[Chunk]:
        """Yield chunks of at most about ``max_events`` events; raise DecodeError at a fault
        after yielding everything decoded before it."""
        ct = self.ct
        size = self.src.size
        pos = 0  # byte offset of the next packet
        win_start = 0
        win = np.zeros(0, np.uint8)
        pending: list[_Part] = []
        pending_events = 0
        while pos < size:
            # make sure the window holds at least the packet header+context
            if pos < win_start or pos + 4096 > win_start + win.shape[0] and win_start + win.shape[0] < size:
                win_start = pos
                win = np.frombuffer(self.src.read(pos, WINDOW), np.uint8)
            rel = pos - win_start
            regs, rset = self.regs, self.rset
            rset[: vm.FIRST_USER_REG] = 0
            rset[vm.R_CLOCK] = 1  # the clock keeps its value from packet to packet
            pvals = np.zeros(256, np.int64)
            pv = 0
            bit = rel * 8
            end_bits = win.shape[0] * 8
            hdr_start = 0
            if ct.header_pc >= 0:
                st, bit, pv, err, arg = vm.run_program(win, bit, end_bits, ct.prog, ct.vtab, ct.header_pc,
                                                       regs, rset, pvals, pv)
                if st != vm.ST_OK:
                    yield from _flush(pending)
                    raise self._fault(win_start + bit // 8, "truncated packet header" if err == vm.E_BOUNDS
                                      else vm.ERROR_TEXT.get(err, "bad packet header").format(arg=arg), pos)
                if rset[vm.R_MAGIC] and (int(regs[vm.R_MAGIC]) & 0xFFFFFFFF) != _MAGIC:
                    yield from _flush(pending)
                    raise self._fault(pos, f"bad packet magic 0x{int(regs[vm.R_MAGIC]) & 0xFFFFFFFF:08x}", pos)
                self._check_uuid(win, rel, pos, pending)
            sid = int(regs[vm.R_STREAM_ID]) if rset[vm.R_STREAM_ID] else None
            if sid is None:
                if len(ct.streams) != 1:
                    yield from _flush(pending)
                    raise self._fault(pos, "packet header has no stream_id and there are several stream classes", pos)
                sid = next(iter(ct.streams))
            cs = ct.streams.get(sid)
            if cs is None:
                yield from _flush(pending)
                raise self._fault(pos, f"packet refers to undeclared stream class {sid}", pos)
            ctx_start = pv
            if cs.context_pc >= 0:
                st, bit, pv, err, arg = vm.run_program(win, bit, end_bits, ct.prog, ct.vtab, cs.context_pc,
                                                       regs, rset, pvals, pv)
                if st != vm.ST_OK:
                    yield from _flush(pending)
                    raise self._fault(win_start + bit // 8, "truncated packet context", pos)
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
                yield from _flush(pending)
                raise self._fault(pos, f"bad packet size {psize} bits", pos)
            if csize > psize:
                yield from _flush(pending)
                raise self._fault(pos, f"content size {csize} bits larger than packet size {psize} bits", pos)
            if csize < hdr_bits:
                yield from _flush(pending)
                raise self._fault(pos, f"content size {csize} bits smaller than the packet header and context ({hdr_bits} bits)", pos)
            truncated = None
            if psize > remaining_bits:
                # decode what the file still holds of this packet, then report the cut
                truncated = self._fault(pos, f"packet of {psize // 8} bytes extends past the end of the file "
                                        f"({size - pos} bytes left): truncated stream", pos)
                psize = remaining_bits - remaining_bits % 8
                csize = min(csize, psize)
            if (psize // 8) > win.shape[0] - rel:
                # the packet is not wholly in the window: re-read from its start
                win_start = pos
                win = np.frombuffer(self.src.read(pos, max(WINDOW, psize // 8)), np.uint8)
                rel = 0
                bit = hdr_bits
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
            part, fault = self._decode_events(win, win_start, rel, bit, csize, cs, info, pvals[:pv].copy(),
                                              (hdr_start, ctx_start))
            if part is not None:
                pending.append(part)
                pending_events += len(part.cls)
            if truncated is not None:
                fault = truncated if fault is None else DecodeError(
                    self.name, fault.offset, f"{fault.reason} (stream truncated: {truncated.reason})", pos)
            if fault is not None:
                yield from _flush(pending)
                raise fault
            if pending_events >= max_events:
                yield from _flush(pending)
                pending = []
                pending_events = 0
            pos += psize // 8
        yield from _flush(pending)

    def _check_uuid(self, win: np.ndarray, rel: int, pos: int, pending: list[_Part]) -> None:
        tc = self.ct.trace_class
        if tc.uuid is None or tc.packet_header is None:
            return
        # the uuid array follows the magic when declared as "uint8_t uuid[16]"
        names = [n for n, _ in tc.packet_header.fields]
        if "uuid" not in names:
            return
        # decoded as part of the header values: bytes at the uuid field's position
        # (byte-aligned in every real trace); compare only when it is the second field
        if names[:2] == ["magic", "uuid"]:
            got = bytes(win[rel + 4: rel + 20])
            want = bytes.fromhex(tc.uuid.replace("-", ""))
            if got != want:
                raise self._fault(pos + 4, f"packet UUID {got.hex()} differs from the trace's {want.hex()}", pos)

    def _note_overlap(self, info: PacketInfo) -> None:
        prev = getattr(self, "_prev_end", None)
        if prev is not None and info.begin_cycles is not None and info.begin_cycles < prev and self.on_warning:
            self.on_warning(f"{self.name}: packet at byte {info.offset} begins before the previous packet "
                            f"ended ({prev - info.begin_cycles} clock cycles earlier); events kept in stream order")
        if info.end_cycles is not None:
            self._prev_end = info.end_cycles

    def _note_discarded(self, info: PacketInfo) -> None:
        if info.events_discarded is None:
            return
        if info.events_discarded > self.discarded_total:
            new = info.events_discarded - self.discarded_total
            self.discarded_total = info.events_discarded
            if self.on_warning:
                self.on_warning(f"{self.name}: tracer discarded {new} events before packet at byte "
                                f"{info.offset} ({info.events_discarded} in this stream so far)")

    def _decode_events(self, win: np.ndarray, win_start: int, rel: int, bit: int, csize: int,
                       cs: CompiledStream, info: PacketInfo, pvals: np.ndarray,
                       pvoff: tuple[int, int]) -> tuple[_Part | None, DecodeError | None]:
        ct = self.ct
        end = rel * 8 + csize
        pkt_bytes = win[rel: rel + info.packet_size // 8]
        # decode in packet-relative coordinates so string offsets index pkt_bytes
        pos = bit - rel * 8
        end -= rel * 8
        if cs.ev_ids.shape[0] == 0:
            if pos < end:
                return None, self._fault(info.offset + pos // 8, "event data in a stream with no event classes",
                                         info.offset)
            return None, None
        est = max(16, (end - pos) // 64 + 1)
        parts_cls, parts_clk, parts_off, parts_vals = [], [], [], []
        nv_total = 0
        fault = None
        while True:
            out_cls = np.empty(est, np.int32)
            out_clk = np.empty(est, np.int64)
            out_off = np.empty((est, 5), np.int64)
            vals = np.empty(est * 12 + 64, np.int64)
            st, n, nv, pos, err, arg = vm.decode_events(
                pkt_bytes, pos, end, ct.prog, ct.vtab, cs.header_pc, cs.event_context_pc, cs.ev_ids,
                cs.ctx_pcs, cs.pay_pcs, self.regs, self.rset, out_cls, out_clk, out_off, vals)
            if n:
                off = out_off[:n]
                off[:, :4] += nv_total
                parts_cls.append(out_cls[:n])
                parts_clk.append(out_clk[:n])
                parts_off.append(off)
                parts_vals.append(vals[:nv])
                nv_total += nv
            if st == vm.ST_OK:
                break
            if st == vm.ST_NEED_SPACE:
                if n == 0 and nv == 0:
                    est *= 4
                continue
            reason = vm.ERROR_TEXT.get(err, "decoding error").format(arg=arg)
            fault = self._fault(info.offset + pos // 8, reason, info.offset)
            break
        if not parts_cls:
            return None, fault
        cls = np.concatenate(parts_cls) if len(parts_cls) > 1 else parts_cls[0]
        return _Part(pkt_bytes, np.concatenate(parts_vals) if len(parts_vals) > 1 else parts_vals[0], cls,
                     np.concatenate(parts_clk) if len(parts_clk) > 1 else parts_clk[0],
                     np.concatenate(parts_off) if len(parts_off) > 1 else parts_off[0], info, pvals, pvoff), fault


@dataclass
class _Part:
    buf: np.ndarray
    vals: np.ndarray
    cls: np.ndarray
    clk: np.ndarray
    off: np.ndarray
    info: PacketInfo
    pvals: np.ndarray
    pvoff: tuple[int, int]


def _flush(parts: list[_Part]) -> Iterator[Chunk]:
    if not parts:
        return
    bufs, vals, offs, pvals, pvoffs = [], [], [], [], []
    boff = 0
    voff = 0
    pvo = 0
    for p in parts:
        off = p.off.copy()
        off[:, :4] += voff
        off[:, 4] += boff * 8
        offs.append(off)
        v = p.vals
        bufs.append(p.buf)
        vals.append((v, boff))
        boff += p.buf.shape[0]
        voff += v.shape[0]
        pvals.append(p.pvals)
        pvoffs.append((pvo + p.pvoff[0], pvo + p.pvoff[1]))
        pvo += p.pvals.shape[0]
    buf = np.concatenate(bufs) if len(bufs) > 1 else bufs[0].copy()
    # string offsets are packet-relative: the chunk keeps a per-event base to add
    allvals = np.concatenate([v for v, _ in vals]) if len(vals) > 1 else vals[0][0]
    cls = np.concatenate([p.cls for p in parts])
    n = cls.shape[0]
    packet_of = np.repeat(np.arange(len(parts), dtype=np.int32), [p.cls.shape[0] for p in parts])
    cpu = np.array([-1 if p.info.cpu_id is None else p.info.cpu_id for p in parts], np.int32)[packet_of]
    sc = np.array([p.info.stream_class_id for p in parts], np.int32)[packet_of]
    chunk = Chunk(buf=buf, vals=allvals, cls=cls, cycles=np.concatenate([p.clk for p in parts]),
                  off=np.concatenate(offs), cpu=cpu, stream_class_id=sc, packets=[p.info for p in parts],
                  packet_of=packet_of, packet_vals=np.concatenate(pvals),
                  packet_val_off=np.array(pvoffs, np.int64).reshape(-1, 2),
                  buf_base=np.array([b for _, b in vals], np.int64)[packet_of] if n else np.zeros(0, np.int64))
    parts.clear()
    yield chunk
