"""Compiled (numba) helpers of the kernel state: interned task names and dense thread ids.

* :func:`intern_texts` turns the strings of a column (byte offsets and lengths in a chunk's
  buffer) into int32 codes of a process-wide pool (:func:`texts` turns codes back into
  strings), without making a Python string per event: names of at most 16 bytes (task
  names: ``TASK_COMM_LEN``) are compared as two 64-bit words in a hash table; longer ones go
  through a dict. Codes are stable for the life of the process, so columns read separately
  (windows of a live trace) can be concatenated.
* :func:`dense_index` maps tids to 0..n-1 (a lookup table when they are small, as kernel
  tids are; a sort otherwise).
* :func:`last_writer` finds, per key, the last of several time-ordered sources to write it.

Imports numpy, numba and :mod:`tracewatch.ctf.values` only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit, uint64

from ..ctf.values import decode_text

__all__ = ["intern_texts", "intern_strings", "texts", "dense_index", "last_writer"]

_M1 = uint64(0x9E3779B97F4A7C15)
_M2 = uint64(0xC2B2AE3D27D4EB4F)


@njit(cache=True)
def _intern(buf, offs, lens, start, keys, klen, kcode, count, limit, out, new_pos, new_len):
    """Codes of strings ``start..`` (up to the first NUL); -2 for strings longer than 16
    bytes. Stops when ``limit`` codes exist (the table must grow). Returns (next index,
    number of new codes); new codes are count, count + 1..., their bytes at new_pos/new_len."""
    mask = keys.shape[0] - 1
    n_new = 0
    nbuf = buf.shape[0]
    for i in range(start, offs.shape[0]):
        o = offs[i]
        L = lens[i]
        w0 = uint64(0)
        w1 = uint64(0)
        m = 0
        long_ = False
        for j in range(L):
            if o + j >= nbuf:
                break
            c = buf[o + j]
            if c == 0:
                break
            if j >= 16:
                long_ = True
                break
            if j < 8:
                w0 |= uint64(c) << uint64(8 * j)
            else:
                w1 |= uint64(c) << uint64(8 * (j - 8))
            m = j + 1
        if long_:
            out[i] = -2
            continue
        h = (w0 * _M1) ^ (w1 * _M2) ^ uint64(m)
        h ^= h >> uint64(29)
        slot = np.int64(h & uint64(mask))
        while True:
            code = kcode[slot]
            if code < 0:
                break
            if keys[slot, 0] == w0 and keys[slot, 1] == w1 and klen[slot] == m:
                break
            slot = (slot + 1) & mask
        if code >= 0:
            out[i] = code
            continue
        if count + n_new >= limit:
            return i, n_new
        code = count + n_new
        kcode[slot] = code
        keys[slot, 0] = w0
        keys[slot, 1] = w1
        klen[slot] = m
        new_pos[n_new] = o
        new_len[n_new] = m
        n_new += 1
        out[i] = code
    return offs.shape[0], n_new


class _Pool:
    """The process-wide string pool: code -> string, and the hash table of short strings."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self.by_text: dict[str, int] = {}
        self._alloc(1 << 12)
        self._array: np.ndarray = np.empty(0, object)

    def _alloc(self, cap: int) -> None:
        self.keys = np.zeros((cap, 2), np.uint64)
        self.klen = np.zeros(cap, np.int64)
        self.kcode = np.full(cap, -1, np.int32)

    def grow(self) -> None:
        keys, klen, kcode = self.keys, self.klen, self.kcode
        self._alloc(keys.shape[0] * 2)
        used = np.flatnonzero(kcode >= 0)
        for s in used.tolist():  # a few thousand names at most: not per event
            self._put(int(keys[s, 0]), int(keys[s, 1]), int(klen[s]), int(kcode[s]))

    def _put(self, w0: int, w1: int, m: int, code: int) -> None:
        mask = self.keys.shape[0] - 1
        h = ((w0 * 0x9E3779B97F4A7C15) ^ (w1 * 0xC2B2AE3D27D4EB4F) ^ m) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
        slot = h & mask
        while self.kcode[slot] >= 0:
            slot = (slot + 1) & mask
        self.keys[slot] = (w0, w1)
        self.klen[slot] = m
        self.kcode[slot] = code

    def add(self, text: str) -> int:
        code = len(self.strings)
        self.strings.append(text)
        return code

    def array(self) -> np.ndarray:
        if self._array.size != len(self.strings):
            self._array = np.array(self.strings + [""], object)[:-1]
        return self._array


_POOL = _Pool()


def intern_texts(buf: np.ndarray, offs: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """int32 codes (see :func:`texts`) of the strings at byte offsets ``offs`` (lengths
    ``lens``, cut at the first NUL) of ``buf`` (uint8)."""
    pool = _POOL
    out = np.empty(offs.size, np.int32)
    offs = np.ascontiguousarray(offs, np.int64)
    lens = np.ascontiguousarray(lens, np.int64)
    start = 0
    while True:
        limit = pool.keys.shape[0] // 2
        new_pos = np.empty(max(0, limit - len(pool.strings)), np.int64)
        new_len = np.empty_like(new_pos)
        start, n_new = _intern(buf, offs, lens, start, pool.keys, pool.klen, pool.kcode, len(pool.strings),
                               limit, out, new_pos, new_len)
        for o, m in zip(new_pos[:n_new].tolist(), new_len[:n_new].tolist(), strict=True):
            pool.add(bytes(buf[o: o + m]).decode("utf-8", errors="replace"))
        if start >= offs.size:
            break
        pool.grow()
    longs = np.flatnonzero(out == -2)
    for i in longs.tolist():  # names longer than 16 bytes (file names): few
        o, n = int(offs[i]), int(lens[i])
        text = decode_text(bytes(buf[o: o + n]))
        code = pool.by_text.get(text)
        if code is None:
            code = pool.by_text[text] = pool.add(text)
        out[i] = code
    return out


def intern_strings(values: Sequence[object]) -> np.ndarray:
    """int32 codes of Python strings (slow path, for the few strings not read from a buffer)."""
    pool = _POOL
    out = np.empty(len(values), np.int32)
    for i, v in enumerate(values):
        raw = str(v).encode()
        if len(raw) <= 16 and b"\0" not in raw:
            c = intern_texts(np.frombuffer(raw + b"\0", np.uint8), np.zeros(1, np.int64),
                             np.array([len(raw)], np.int64))
            out[i] = c[0]
        else:
            text = str(v)
            code = pool.by_text.get(text)
            if code is None:
                code = pool.by_text[text] = pool.add(text)
            out[i] = code
    return out


def texts(codes: np.ndarray) -> np.ndarray:
    """The strings of interned ``codes``, as an object array (an object array is returned
    unchanged: columns may hold either)."""
    if codes.dtype == object:
        return codes
    return _POOL.array()[codes]


@njit(cache=True)
def _first_seen(lut, values, out, n):
    for i in range(values.shape[0]):
        v = values[i]
        k = lut[v]
        if k < 0:
            k = lut[v] = n
            n += 1
        out[i] = k
    return n


_DENSE_MAX = 1 << 23


@njit(cache=True)
def _first_pos(inv, k):
    first = np.full(k, -1, np.int64)
    for i in range(inv.shape[0]):
        if first[inv[i]] < 0:
            first[inv[i]] = i
    return first


def dense_index(arrays: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Map the values of ``arrays`` to 0..n-1 (in order of first appearance, array after
    array): the index arrays and the n values."""
    arrs = [np.ascontiguousarray(a, np.int64) for a in arrays]
    lo = min((int(a.min()) for a in arrs if a.size), default=0)
    hi = max((int(a.max()) for a in arrs if a.size), default=0)
    if lo < 0 or hi >= _DENSE_MAX:  # sort, then number the groups by first appearance
        allv = np.concatenate(arrs) if arrs else np.zeros(0, np.int64)
        keys, inv = np.unique(allv, return_inverse=True)
        inv = inv.ravel().astype(np.int64)
        first = _first_pos(inv, keys.size)
        order = np.argsort(first, kind="stable")
        rank = np.empty(keys.size, np.int64)
        rank[order] = np.arange(keys.size)
        keys, inv = keys[order], rank[inv]
        out, k = [], 0
        for a in arrs:
            out.append(inv[k: k + a.size].astype(np.int64))
            k += a.size
        return out, keys
    lut = np.full(hi + 1, -1, np.int64)
    n = 0
    outs = []
    for a in arrs:
        o = np.empty(a.size, np.int64)
        n = _first_seen(lut, a, o, n)
        outs.append(o)
    keys = np.empty(n, np.int64)
    used = np.flatnonzero(lut >= 0)
    keys[lut[used]] = used
    return outs, keys


@njit(cache=True)
def _last(key, seq, best_seq, best_src, best_row, s):
    for i in range(key.shape[0]):
        k = key[i]
        if seq[i] >= best_seq[k]:
            best_seq[k] = seq[i]
            best_src[k] = s
            best_row[k] = i


def last_writer(keys: Sequence[np.ndarray], seqs: Sequence[np.ndarray], nkeys: int,
                rank: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each key 0..nkeys-1, the (source, row) of its last write: the greatest seq (then
    ``rank``, when given), ties going to the later source. Sources: ``keys[s][i]`` written at
    ``seqs[s][i]`` (each source in seq order). Source -1 where never written."""
    best_seq = np.full(nkeys, -(1 << 62), np.int64)
    best_src = np.full(nkeys, -1, np.int64)
    best_row = np.full(nkeys, -1, np.int64)
    for s, (k, q) in enumerate(zip(keys, seqs, strict=True)):
        qq = q.astype(np.int64)
        if rank is not None:
            qq = qq * 2 + rank[s].astype(np.int64)
        _last(np.ascontiguousarray(k, np.int64), qq, best_seq, best_src, best_row, s)
    return best_src, best_row
