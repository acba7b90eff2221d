"""The sequential part of the execution graph construction, JIT-compiled (numba), fed chunk
by chunk.

:class:`GraphLoop` holds the state between chunks: per task key its state (RUNNING /
PREEMPTED / BLOCKED / dead) since a time, per CPU the current task and a stack of
interrupt-context labels, and the edges closed so far. :meth:`GraphLoop.feed` runs the
compiled :func:`_step` over one chunk of events (already reduced to integer columns by
:mod:`.graph`, in trace order); :meth:`GraphLoop.finish` closes the chains of live tasks and
groups the edges by task. The rules are those of :mod:`.graph`'s docstring. Task ids are
small non-negative integers (``zero`` is the id of TID 0). Imports only numpy and numba.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

# event kinds of the merged loop
SWITCH, WAKE, FORK, EXIT, CTX_IN, CTX_OUT = range(6)
# states and edge types used here (EdgeType values)
R, P, B, UNKNOWN = 0, 1, 2, 8
DEAD = -1
MAX_DEPTH = 32
# columns of the key table and of the edge table
K_TID, K_CREATOR, K_STATE, K_SINCE, K_CPU, K_COMM, K_EXITING = range(7)
E_TASK, E_START, E_END, E_TYPE, E_WAKER, E_CPU = range(6)


@njit(cache=True)
def _new(kt: np.ndarray, key_of: np.ndarray, k: int, tid: int, t: int, state: int,
         creator: int, comm: int) -> None:
    key_of[tid] = k
    kt[k, K_TID] = tid
    kt[k, K_CREATOR] = creator
    kt[k, K_STATE] = state
    kt[k, K_SINCE] = t
    kt[k, K_CPU] = -1
    kt[k, K_COMM] = comm
    kt[k, K_EXITING] = 0


@njit(cache=True)
def _edge(eb: tuple[np.ndarray, ...], ne: int, k: int, start: int, end: int, typ: int,
          waker: int, cpu: int) -> None:
    eb[E_TASK][ne] = k
    eb[E_START][ne] = start
    eb[E_END][ne] = end
    eb[E_TYPE][ne] = typ
    eb[E_WAKER][ne] = waker
    eb[E_CPU][ne] = cpu


@njit(cache=True)
def _close(kt: np.ndarray, eb: tuple[np.ndarray, ...], ne: int, k: int, t: int) -> int:
    """End the current state of task ``k`` at ``t`` (an edge when it lasted); new count."""
    start = kt[k, K_SINCE]
    if t > start:
        st = kt[k, K_STATE]
        typ = UNKNOWN if st == B else st
        _edge(eb, ne, k, start, t, typ, -1, kt[k, K_CPU] if typ == R else -1)
        kt[k, K_SINCE] = t
        return ne + 1
    return ne


@njit(cache=True)
def _step(kind: np.ndarray, ts: np.ndarray, cpu: np.ndarray, a: np.ndarray, b: np.ndarray,
          c: np.ndarray, ca: np.ndarray, cc: np.ndarray, empty: int, zero: int,
          key_of: np.ndarray, kt: np.ndarray, eb: tuple[np.ndarray, ...], current: np.ndarray,
          depth: np.ndarray, stack: np.ndarray, counts: np.ndarray) -> None:
    """Runs over one chunk of events, in order (``counts`` = [keys, edges in the block ``eb``
    so far]).

    Per kind: SWITCH a=prev, b=prev_state & 3, c=next, ca=prev_comm, cc=next_comm; WAKE
    a=tid, ca=its comm; FORK a=parent, c=child, ca=child_comm; EXIT a=tid; CTX_IN a=label.
    Comms are codes of interned strings (``empty``: the empty string's, <0: none); a task's
    comm is the last non-empty one seen (the first one seen when none is)."""
    nk = counts[0]
    ne = counts[1]
    for i in range(kind.size):
        kd = kind[i]
        t = ts[i]
        cp = cpu[i]
        if kd == SWITCH:
            depth[cp] = 0  # no interrupt context spans a context switch
            prev = a[i]
            if prev != zero:
                k = key_of[prev]
                if k < 0:
                    _new(kt, key_of, nk, prev, t, R, -1, ca[i])
                    k = nk
                    nk += 1
                if kt[k, K_STATE] != DEAD:
                    if ca[i] >= 0 and ca[i] != empty:
                        kt[k, K_COMM] = ca[i]
                    ne = _close(kt, eb, ne, k, t)
                    if kt[k, K_EXITING]:
                        kt[k, K_STATE] = DEAD
                    elif b[i] == 0:
                        kt[k, K_STATE] = P
                    else:
                        kt[k, K_STATE] = B
            nxt = c[i]
            if nxt != zero:
                k = key_of[nxt]
                if k < 0 or kt[k, K_STATE] == DEAD:
                    _new(kt, key_of, nk, nxt, t, R, -1, cc[i])
                    k = nk
                    nk += 1
                else:
                    if cc[i] >= 0 and cc[i] != empty:
                        kt[k, K_COMM] = cc[i]
                    ne = _close(kt, eb, ne, k, t)
                    kt[k, K_STATE] = R
                kt[k, K_CPU] = cp
            current[cp] = nxt
        elif kd == WAKE:
            tid = a[i]
            if tid == zero:
                continue
            k = key_of[tid]
            if k < 0 or kt[k, K_STATE] == DEAD:
                _new(kt, key_of, nk, tid, t, P, -1, ca[i])
                nk += 1
                continue
            if kt[k, K_STATE] != B:
                continue
            waker = -1
            if depth[cp] > 0:
                typ = stack[cp, min(depth[cp], MAX_DEPTH) - 1]
            else:
                w = current[cp]
                wk = key_of[w] if w != zero else -1
                if wk < 0 or wk == k:
                    typ = UNKNOWN
                else:
                    typ = B
                    waker = wk
            start = kt[k, K_SINCE]
            if t > start:
                _edge(eb, ne, k, start, t, typ, waker, cp)
                ne += 1
                kt[k, K_SINCE] = t
            kt[k, K_STATE] = P
        elif kd == FORK:
            child = c[i]
            if child == zero:
                continue
            parent = a[i]
            pk = key_of[parent] if parent != zero else -1
            k = key_of[child]
            if k >= 0 and kt[k, K_STATE] != DEAD:
                continue
            _new(kt, key_of, nk, child, t, P, pk, ca[i])
            nk += 1
        elif kd == EXIT:
            k = key_of[a[i]]
            if k >= 0:
                kt[k, K_EXITING] = 1
        elif kd == CTX_IN:
            d = depth[cp]
            if d < MAX_DEPTH:
                stack[cp, d] = a[i]
            depth[cp] = d + 1
        else:  # CTX_OUT
            if depth[cp] > 0:
                depth[cp] -= 1
    counts[0] = nk
    counts[1] = ne


@njit(cache=True)
def _close_all(kt: np.ndarray, eb: tuple[np.ndarray, ...], counts: np.ndarray,
               last_ts: int) -> None:
    """Close the chains of live tasks at ``last_ts``."""
    ne = counts[1]
    for k in range(counts[0]):
        if kt[k, K_STATE] != DEAD:
            ne = _close(kt, eb, ne, k, last_ts)
    counts[1] = ne


@njit(cache=True)
def _count(task: np.ndarray, n: int, offsets: np.ndarray) -> None:
    for i in range(n):
        offsets[task[i] + 1] += 1


@njit(cache=True)
def _scatter(eb: tuple[np.ndarray, ...], n: int, fill: np.ndarray,
             out: tuple[np.ndarray, ...]) -> None:
    """Copy the ``n`` edges of a block to their task's place (``fill``: next free index per
    task; tasks' edges come in time order, blocks too)."""
    for i in range(n):
        k = eb[E_TASK][i]
        j = fill[k]
        fill[k] = j + 1
        out[E_TASK][j] = k
        out[E_START][j] = eb[E_START][i]
        out[E_END][j] = eb[E_END][i]
        out[E_TYPE][j] = eb[E_TYPE][i]
        out[E_WAKER][j] = eb[E_WAKER][i]
        out[E_CPU][j] = eb[E_CPU][i]


def _grown(x: np.ndarray, rows: int, fill: int | None = None) -> np.ndarray:
    """``x`` with at least ``rows`` rows (doubling), new rows set to ``fill`` if given.
    Resized in place when possible (a large block is remapped, not copied)."""
    old = x.shape[0]
    if old >= rows:
        return x
    n = max(rows, 2 * old, 1024)
    try:
        x.resize((n, *x.shape[1:]), refcheck=False)  # new rows are zeros
    except ValueError:  # does not own its data
        x = np.concatenate([x, np.zeros((n - old, *x.shape[1:]), x.dtype)])
    if fill is not None and fill != 0:
        x[old:] = fill
    return x


#: edges per block (the edges are stored in blocks of narrow columns, grouped at the end)
BLOCK = 1 << 20
_EDGE_DTYPES = (np.int32, np.int64, np.int64, np.int8, np.int32, np.int32)


def _block(n: int) -> tuple[np.ndarray, ...]:
    return tuple(np.empty(n, dt) for dt in _EDGE_DTYPES)


@dataclass
class GraphResult:
    """What :meth:`GraphLoop.finish` returns: per key its task id, creator key and comm code;
    the edges grouped by key (``offsets``)."""

    key_tid: np.ndarray
    key_creator: np.ndarray
    key_comm: np.ndarray
    offsets: np.ndarray
    edges: tuple[np.ndarray, ...]  # task, start, end, type, waker, cpu


class GraphLoop:
    """The state of the graph construction between chunks (see the module docstring)."""

    def __init__(self, zero: int, empty: int) -> None:
        self.zero, self.empty = zero, empty
        self.key_of = np.full(0, -1, np.int64)
        self.kt = np.zeros((0, 7), np.int64)
        self.current = np.zeros(0, np.int64)
        self.depth = np.zeros(0, np.int64)
        self.stack = np.zeros((0, MAX_DEPTH), np.int64)
        self.counts = np.zeros(2, np.int64)  # keys, edges in the current block
        self.sealed: list[tuple[tuple[np.ndarray, ...], int]] = []
        self.eb = _block(0)

    def _room(self, n: int) -> None:
        """At least ``n`` free edges in the current block (else a new block)."""
        used = int(self.counts[1])
        if self.eb[0].size - used >= n:
            return
        if used:
            self.sealed.append((self.eb, used))
        self.eb = _block(max(BLOCK, n))
        self.counts[1] = 0

    def feed(self, kind: np.ndarray, ts: np.ndarray, cpu: np.ndarray, a: np.ndarray,
             b: np.ndarray, c: np.ndarray, ca: np.ndarray, cc: np.ndarray) -> None:
        """Run one chunk (arrays of equal length, trace order; ids and CPUs >= 0)."""
        if kind.size == 0:
            return
        per = np.bincount(kind, minlength=6)
        nk = int(self.counts[0])
        self.kt = _grown(self.kt, nk + 2 * int(per[SWITCH]) + int(per[WAKE]) + int(per[FORK]) + 1)
        self._room(2 * int(per[SWITCH]) + int(per[WAKE]) + 1)
        top = max(int(a.max()), int(c.max()), self.zero) + 1
        self.key_of = _grown(self.key_of, top, -1)
        ncpu = int(cpu.max()) + 1
        self.current = _grown(self.current, ncpu, self.zero)
        self.depth = _grown(self.depth, ncpu, 0)
        self.stack = _grown(self.stack, ncpu, 0)
        _step(kind, ts, cpu, a, b, c, ca, cc, self.empty, self.zero, self.key_of, self.kt,
              self.eb, self.current, self.depth, self.stack, self.counts)

    def finish(self, last_ts: int) -> GraphResult:
        """Close the chains still open at ``last_ts`` and group the edges by task (block by
        block, each freed once copied)."""
        nk = int(self.counts[0])
        self._room(nk + 1)
        _close_all(self.kt, self.eb, self.counts, last_ts)
        blocks = [*self.sealed, (self.eb, int(self.counts[1]))]
        self.sealed, self.eb = [], _block(0)
        offsets = np.zeros(nk + 1, np.int64)
        for eb, n in blocks:
            _count(eb[E_TASK], n, offsets)
        np.cumsum(offsets, out=offsets)
        ne = int(offsets[-1])
        out = (np.empty(ne, np.int64), np.empty(ne, np.int64), np.empty(ne, np.int64),
               np.empty(ne, np.int8), np.empty(ne, np.int64), np.empty(ne, np.int64))
        fill = offsets[:nk].copy()
        while blocks:
            eb, n = blocks.pop(0)
            _scatter(eb, n, fill, out)
            del eb
        kt = self.kt[:nk]
        return GraphResult(kt[:, K_TID].copy(), kt[:, K_CREATOR].copy(), kt[:, K_COMM].copy(),
                           offsets, out)


@njit(cache=True)
def merge_order(seq: np.ndarray) -> np.ndarray:
    """Indices of ``seq`` (distinct positions, dense: max - min < 4 * size + 1024) in
    increasing order of position: a scatter, no sort."""
    lo = seq[0]
    hi = seq[0]
    for i in range(seq.size):
        if seq[i] < lo:
            lo = seq[i]
        if seq[i] > hi:
            hi = seq[i]
    inv = np.full(hi - lo + 1, -1, np.int64)
    for i in range(seq.size):
        inv[seq[i] - lo] = i
    out = np.empty(seq.size, np.int64)
    n = 0
    for p in range(hi - lo + 1):
        if inv[p] >= 0:
            out[n] = inv[p]
            n += 1
    return out[:n]
