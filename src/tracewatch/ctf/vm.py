"""The packet decoder: a small JIT-compiled (numba) machine that runs decoding programs.

:mod:`tracewatch.ctf.compile` turns each metadata scope (packet header, packet context,
event header, contexts, payloads) into a program of fixed-width instructions; this module
runs those programs over a packet's bytes and writes every decoded value, in declaration
order, into one flat ``int64`` array (floats as their bits, strings as byte offset and
length, arrays and sequences preceded by their length, variants by the chosen option).
Per event it records the event class, the clock value and where its values start.

Nothing here allocates per event, and every read is bounds-checked against the packet's
content size: a fault returns an error code and the bit position instead of raising.
Imports only numpy and numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

__all__ = [
    "OP_END", "OP_ALIGN", "OP_INT", "OP_FLOAT", "OP_STRING", "OP_ARRAY", "OP_SEQ",
    "OP_LOOP_END", "OP_VARIANT", "OP_JUMP", "OP_BYTES", "NREGS", "R_MAGIC", "R_STREAM_ID",
    "R_STREAM_INSTANCE_ID", "R_CONTENT_SIZE", "R_PACKET_SIZE", "R_TS_BEGIN", "R_TS_END",
    "R_DISCARDED", "R_SEQ_NUM", "R_CPU_ID", "R_EVENT_ID", "R_CLOCK", "FIRST_USER_REG",
    "ST_OK", "ST_NEED_SPACE", "ST_ERROR", "E_BOUNDS", "E_UNKNOWN_ID", "E_VARIANT",
    "E_SEQ_LEN", "E_EMPTY_EVENT", "E_UNSET_REG", "E_NESTING", "E_STRING", "MAX_DEPTH",
    "run_program", "decode_events", "ERROR_TEXT",
]

OP_END, OP_ALIGN, OP_INT, OP_FLOAT, OP_STRING, OP_ARRAY, OP_SEQ, OP_LOOP_END, OP_VARIANT, OP_JUMP = range(10)
OP_BYTES = 10  # a byte-aligned array/sequence of 8-bit integers: emitted as (offset, length)

# Registers: values other programs refer to (sequence lengths, variant tags) and the
# special fields the reader needs (packet sizes, stream id, event id, clock).
R_MAGIC, R_STREAM_ID, R_STREAM_INSTANCE_ID, R_CONTENT_SIZE, R_PACKET_SIZE = 0, 1, 2, 3, 4
R_TS_BEGIN, R_TS_END, R_DISCARDED, R_SEQ_NUM, R_CPU_ID, R_EVENT_ID, R_CLOCK = 5, 6, 7, 8, 9, 10, 11
FIRST_USER_REG = 16
NREGS = 4096

ST_OK, ST_NEED_SPACE, ST_ERROR = 0, 1, 2
E_BOUNDS, E_UNKNOWN_ID, E_VARIANT, E_SEQ_LEN, E_EMPTY_EVENT, E_UNSET_REG, E_NESTING, E_STRING = range(1, 9)

ERROR_TEXT = {
    E_BOUNDS: "field extends past the end of the packet content",
    E_UNKNOWN_ID: "event id {arg} is not declared in the metadata",
    E_VARIANT: "variant tag value {arg} selects no option",
    E_SEQ_LEN: "sequence length {arg} does not fit in the rest of the packet",
    E_EMPTY_EVENT: "event of zero size (the packet would never end)",
    E_UNSET_REG: "length or tag field was not decoded before use",
    E_NESTING: "arrays nested too deeply",
    E_STRING: "string not terminated before the end of the packet content",
}

MAX_DEPTH = 64
MAX_EMPTY_SEQ = 1 << 24  # bound on element counts of sequences whose elements occupy no bits


@njit(cache=True, inline="always")
def _read_le(buf, pos, size):
    byte = pos >> 3
    shift = pos & 7
    if shift == 0:
        if size == 32:
            return (uint64(buf[byte]) | (uint64(buf[byte + 1]) << uint64(8))
                    | (uint64(buf[byte + 2]) << uint64(16)) | (uint64(buf[byte + 3]) << uint64(24)))
        if size == 8:
            return uint64(buf[byte])
        if size == 64:
            lo = (uint64(buf[byte]) | (uint64(buf[byte + 1]) << uint64(8))
                  | (uint64(buf[byte + 2]) << uint64(16)) | (uint64(buf[byte + 3]) << uint64(24)))
            hi = (uint64(buf[byte + 4]) | (uint64(buf[byte + 5]) << uint64(8))
                  | (uint64(buf[byte + 6]) << uint64(16)) | (uint64(buf[byte + 7]) << uint64(24)))
            return lo | (hi << uint64(32))
        if size == 16:
            return uint64(buf[byte]) | (uint64(buf[byte + 1]) << uint64(8))
    nbytes = (shift + size + 7) >> 3
    v = uint64(0)
    m = nbytes if nbytes < 8 else 8
    for i in range(m):
        v |= uint64(buf[byte + i]) << uint64(8 * i)
    v >>= uint64(shift)
    if nbytes == 9:
        v |= uint64(buf[byte + 8]) << uint64(64 - shift)
    if size < 64:
        v &= (uint64(1) << uint64(size)) - uint64(1)
    return v


@njit(cache=True, inline="always")
def _read_be(buf, pos, size):
    byte = pos >> 3
    shift = pos & 7
    nbytes = (shift + size + 7) >> 3
    v = uint64(0)
    if nbytes <= 8:
        for i in range(nbytes):
            v = (v << uint64(8)) | uint64(buf[byte + i])
        v >>= uint64(nbytes * 8 - shift - size)
    else:
        for i in range(8):
            v = (v << uint64(8)) | uint64(buf[byte + i])
        extra = shift + size - 64
        v = (v << uint64(extra)) | (uint64(buf[byte + 8]) >> uint64(8 - extra))
    if size < 64:
        v &= (uint64(1) << uint64(size)) - uint64(1)
    return v


@njit(cache=True)
def run_program(buf, pos, end, prog, vtab, pc, regs, rset, vals, nvals):
    """Run the program at ``pc``; return (status, pos, nvals, error code, error argument).

    Loop counters live in ``regs[NREGS - 2 * MAX_DEPTH:]`` so that no call allocates."""
    depth = 0
    lr = NREGS - 2 * MAX_DEPTH  # loop_rem[d] = regs[lr + d], loop_pc[d] = regs[lr + MAX_DEPTH + d]
    cap = vals.shape[0]
    while True:
        op = prog[pc, 0]
        if op == OP_END:
            return ST_OK, pos, nvals, 0, 0
        if op == OP_ALIGN:
            a = prog[pc, 1]
            pos = (pos + a - 1) & ~(a - 1)
            if pos > end:
                return ST_ERROR, pos, nvals, E_BOUNDS, 0
            pc += 1
        elif op == OP_INT:
            size = prog[pc, 1]
            if pos + size > end:
                return ST_ERROR, pos, nvals, E_BOUNDS, 0
            if prog[pc, 3]:
                u = _read_be(buf, pos, size)
            else:
                u = _read_le(buf, pos, size)
            pos += size
            if prog[pc, 2] and size < 64 and (u >> uint64(size - 1)) & uint64(1):
                u |= ~((uint64(1) << uint64(size)) - uint64(1))
            v = np.int64(u)
            clk = prog[pc, 5]
            if clk == 1:
                if size >= 64:
                    regs[R_CLOCK] = v
                else:
                    old = uint64(regs[R_CLOCK])
                    mask = (uint64(1) << uint64(size)) - uint64(1)
                    low = u & mask
                    new = (old & ~mask) | low
                    if low < (old & mask):
                        new += uint64(1) << uint64(size)
                    regs[R_CLOCK] = np.int64(new)
                rset[R_CLOCK] = 1
            r = prog[pc, 4]
            if r >= 0:
                regs[r] = v
                rset[r] = 1
            if prog[pc, 6]:
                if nvals >= cap:
                    return ST_NEED_SPACE, pos, nvals, 0, 0
                vals[nvals] = v
                nvals += 1
            pc += 1
        elif op == OP_FLOAT:
            size = prog[pc, 1]
            if pos + size > end:
                return ST_ERROR, pos, nvals, E_BOUNDS, 0
            if prog[pc, 2]:
                u = _read_be(buf, pos, size)
            else:
                u = _read_le(buf, pos, size)
            pos += size
            if nvals >= cap:
                return ST_NEED_SPACE, pos, nvals, 0, 0
            vals[nvals] = np.int64(u)
            nvals += 1
            pc += 1
        elif op == OP_STRING:
            pos = (pos + 7) & ~7
            start = pos >> 3
            limit = end >> 3
            i = start
            while i < limit and buf[i] != 0:
                i += 1
            if i >= limit:
                return ST_ERROR, pos, nvals, E_STRING, 0
            if nvals + 2 > cap:
                return ST_NEED_SPACE, pos, nvals, 0, 0
            vals[nvals] = start
            vals[nvals + 1] = i - start
            nvals += 2
            pos = (i + 1) << 3
            pc += 1
        elif op == OP_ARRAY or op == OP_SEQ:
            if op == OP_ARRAY:
                count = prog[pc, 1]
            else:
                r = prog[pc, 1]
                if not rset[r]:
                    return ST_ERROR, pos, nvals, E_UNSET_REG, 0
                count = regs[r]
                min_bits = prog[pc, 5]
                if count < 0 and prog[pc, 4]:
                    return ST_ERROR, pos, nvals, E_SEQ_LEN, count
                if count < 0:
                    return ST_ERROR, pos, nvals, E_SEQ_LEN, count
                if min_bits > 0:
                    if count > (end - pos) // min_bits:
                        return ST_ERROR, pos, nvals, E_SEQ_LEN, count
                elif count > MAX_EMPTY_SEQ and not prog[pc, 3]:
                    return ST_ERROR, pos, nvals, E_SEQ_LEN, count
            if nvals >= cap:
                return ST_NEED_SPACE, pos, nvals, 0, 0
            vals[nvals] = count
            nvals += 1
            if count == 0 or prog[pc, 3]:
                pc = prog[pc, 2]
            else:
                if depth >= MAX_DEPTH:
                    return ST_ERROR, pos, nvals, E_NESTING, 0
                regs[lr + depth] = count
                regs[lr + MAX_DEPTH + depth] = pc + 1
                depth += 1
                pc += 1
        elif op == OP_LOOP_END:
            regs[lr + depth - 1] -= 1
            if regs[lr + depth - 1] > 0:
                pc = regs[lr + MAX_DEPTH + depth - 1]
            else:
                depth -= 1
                pc += 1
        elif op == OP_VARIANT:
            r = prog[pc, 1]
            if not rset[r]:
                return ST_ERROR, pos, nvals, E_UNSET_REG, 0
            tag = regs[r]
            t0 = prog[pc, 2]
            nt = prog[pc, 3]
            target = -1
            opt = -1
            for k in range(t0, t0 + nt):
                if vtab[k, 0] <= tag <= vtab[k, 1]:
                    target = vtab[k, 2]
                    opt = vtab[k, 3]
                    break
            if target < 0:
                return ST_ERROR, pos, nvals, E_VARIANT, tag
            if nvals >= cap:
                return ST_NEED_SPACE, pos, nvals, 0, 0
            vals[nvals] = opt
            nvals += 1
            pc = target
        elif op == OP_JUMP:
            pc = prog[pc, 1]
        elif op == OP_BYTES:
            if prog[pc, 2]:
                r = prog[pc, 1]
                if not rset[r]:
                    return ST_ERROR, pos, nvals, E_UNSET_REG, 0
                count = regs[r]
            else:
                count = prog[pc, 1]
            if count < 0 or count > (end - pos) >> 3:
                if prog[pc, 2]:
                    return ST_ERROR, pos, nvals, E_SEQ_LEN, count
                return ST_ERROR, pos, nvals, E_BOUNDS, 0
            if nvals + 2 > cap:
                return ST_NEED_SPACE, pos, nvals, 0, 0
            vals[nvals] = pos >> 3
            vals[nvals + 1] = count
            nvals += 2
            pos += count << 3
            pc += 1
        else:
            return ST_ERROR, pos, nvals, E_BOUNDS, 0


@njit(cache=True)
def decode_events(buf, pos, end, prog, vtab, hdr_pc, sec_pc, ev_ids, ctx_pcs, pay_pcs,
                  regs, rset, out_cls, out_clk, out_off, vals, n, nvals, wanted, skip_bits, skip_align,
                  out_skip, nskip, clk_state):
    """Decode events from bit ``pos`` to ``end`` (the packet's content end).

    Events of a class with ``wanted[k] == 0`` and a static size (``skip_bits[k] >= 0``) are
    stepped over without decoding their payload and are not output; their clock values are
    written to ``out_skip`` (from index ``nskip`` on). ``clk_state`` (int64[2], kept from call
    to call for a stream): the greatest clock value of the stream's events so far, decoded or
    not, and the number of events whose clock was below it (timestamps going backwards).

    Outputs are written from index ``n`` (events) and ``nvals`` (values) on. Returns
    (status, events, values, skipped, bit position, error code, error arg), the counts being
    the new totals. On ST_NEED_SPACE the position is the start of the first event not
    decoded: grow the output arrays and call again from there.
    """
    cap_ev = out_cls.shape[0]
    cap_skip = out_skip.shape[0]
    single = ev_ids.shape[0] == 1
    while pos < end:
        if n >= cap_ev or nskip >= cap_skip:
            return ST_NEED_SPACE, n, nvals, nskip, pos, 0, 0
        start = pos
        v0 = nvals
        rset[R_EVENT_ID] = 0
        st = ST_OK
        err = 0
        arg = 0
        if hdr_pc >= 0:
            st, pos, nvals, err, arg = run_program(buf, pos, end, prog, vtab, hdr_pc, regs, rset, vals, nvals)
            if st != ST_OK:
                if st == ST_NEED_SPACE:
                    return st, n, v0, nskip, start, 0, 0
                return st, n, v0, nskip, pos, err, arg
        v1 = nvals
        if sec_pc >= 0:
            st, pos, nvals, err, arg = run_program(buf, pos, end, prog, vtab, sec_pc, regs, rset, vals, nvals)
            if st != ST_OK:
                if st == ST_NEED_SPACE:
                    return st, n, v0, nskip, start, 0, 0
                return st, n, v0, nskip, pos, err, arg
        if rset[R_EVENT_ID]:
            eid = regs[R_EVENT_ID]
        elif single:
            eid = ev_ids[0]
        else:
            eid = 0
        # binary search of the event class
        lo = 0
        hi = ev_ids.shape[0]
        while lo < hi:
            mid = (lo + hi) >> 1
            if ev_ids[mid] < eid:
                lo = mid + 1
            else:
                hi = mid
        if lo >= ev_ids.shape[0] or ev_ids[lo] != eid:
            return ST_ERROR, n, v0, nskip, start, E_UNKNOWN_ID, eid
        k = lo
        clk = regs[R_CLOCK]
        if not wanted[k] and skip_bits[k] >= 0:
            a = skip_align[k]
            pos = ((pos + a - 1) & ~(a - 1)) + skip_bits[k]
            if pos > end:
                return ST_ERROR, n, v0, nskip, start, E_BOUNDS, 0
            nvals = v0
            out_skip[nskip] = clk
            nskip += 1
            if clk < clk_state[0]:
                clk_state[1] += 1
            else:
                clk_state[0] = clk
            continue
        v2 = nvals
        if ctx_pcs[k] >= 0:
            st, pos, nvals, err, arg = run_program(buf, pos, end, prog, vtab, ctx_pcs[k], regs, rset, vals, nvals)
            if st != ST_OK:
                if st == ST_NEED_SPACE:
                    return st, n, v0, nskip, start, 0, 0
                return st, n, v0, nskip, pos, err, arg
        v3 = nvals
        if pay_pcs[k] >= 0:
            st, pos, nvals, err, arg = run_program(buf, pos, end, prog, vtab, pay_pcs[k], regs, rset, vals, nvals)
            if st != ST_OK:
                if st == ST_NEED_SPACE:
                    return st, n, v0, nskip, start, 0, 0
                return st, n, v0, nskip, pos, err, arg
        if pos == start:
            return ST_ERROR, n, v0, nskip, start, E_EMPTY_EVENT, 0
        clk = regs[R_CLOCK]  # a payload field may be mapped to the clock
        if clk < clk_state[0]:
            clk_state[1] += 1
        else:
            clk_state[0] = clk
        out_cls[n] = k
        out_clk[n] = clk
        out_off[n, 0] = v0
        out_off[n, 1] = v1
        out_off[n, 2] = v2
        out_off[n, 3] = v3
        out_off[n, 4] = start
        n += 1
    return ST_OK, n, nvals, nskip, pos, 0, 0
