"""The sequential part of the execution graph construction, JIT-compiled (numba).

One pass over the merged events (already reduced to integer columns by :mod:`.graph`):
per task key its state (RUNNING / PREEMPTED / BLOCKED / dead) since a time, per CPU the
current TID and a stack of interrupt-context labels; each state change closes an edge.
The rules are those of :mod:`.graph`'s docstring. TIDs are compact ids (0..n-1, ``zero``
is the id of TID 0 or -1). Imports only numpy and numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# event kinds of the merged loop
SWITCH, WAKE, FORK, EXIT, CTX_IN, CTX_OUT = range(6)
# states and edge types used here (EdgeType values)
R, P, B, UNKNOWN = 0, 1, 2, 8
DEAD = -1
MAX_DEPTH = 32


@njit(cache=True)
def _new(k: int, tid: int, t: int, state: int, creator: int, comm: int,
         key_of: np.ndarray, k_tid: np.ndarray, k_creator: np.ndarray, k_state: np.ndarray,
         k_since: np.ndarray, k_cpu: np.ndarray, k_comm: np.ndarray) -> None:
    key_of[tid] = k
    k_tid[k] = tid
    k_creator[k] = creator
    k_state[k] = state
    k_since[k] = t
    k_cpu[k] = -1
    k_comm[k] = comm


@njit(cache=True)
def merge_order(seq: np.ndarray) -> np.ndarray:
    """Indices of ``seq`` (distinct non-negative positions, dense: max < 4 * size + 1024)
    in increasing order of position: a scatter, no sort."""
    mx = -1
    for i in range(seq.size):
        if seq[i] > mx:
            mx = seq[i]
    inv = np.full(mx + 1, -1, np.int64)
    for i in range(seq.size):
        inv[seq[i]] = i
    out = np.empty(seq.size, np.int64)
    n = 0
    for p in range(mx + 1):
        if inv[p] >= 0:
            out[n] = inv[p]
            n += 1
    return out[:n]


@njit(cache=True)
def build_loop(order: np.ndarray, kind: np.ndarray, ts: np.ndarray, cpu: np.ndarray, a: np.ndarray,
               b: np.ndarray, c: np.ndarray, ca: np.ndarray, cc: np.ndarray, empty: int,
               n_tids: int, zero: int, n_cpus: int, max_keys: int, max_edges: int,
               last_ts: int) -> tuple[np.ndarray, ...]:
    """Runs over the events in ``order`` (indices into the other arrays). Returns (n_keys,
    key tid, creator, comm code, offsets, then the edges grouped by task, each task's in
    time order: task, start, end, type, waker, cpu).

    Per kind: SWITCH a=prev, b=prev_state & 3, c=next, ca=prev_comm, cc=next_comm; WAKE
    a=tid, ca=its comm; FORK a=parent, c=child, ca=child_comm; EXIT a=tid; CTX_IN a=label. Comms
    are codes of interned strings (``empty``: the empty string's, <0: none); a task's comm is
    the last non-empty one seen (the first one seen when none is)."""
    key_of = np.full(n_tids, -1, np.int64)
    k_tid = np.empty(max_keys, np.int64)
    k_creator = np.empty(max_keys, np.int64)
    k_state = np.empty(max_keys, np.int64)
    k_since = np.empty(max_keys, np.int64)
    k_cpu = np.empty(max_keys, np.int64)
    k_comm = np.empty(max_keys, np.int64)
    k_exiting = np.zeros(max_keys, np.bool_)
    e_task = np.empty(max_edges, np.int64)
    e_start = np.empty(max_edges, np.int64)
    e_end = np.empty(max_edges, np.int64)
    e_type = np.empty(max_edges, np.int8)
    e_waker = np.empty(max_edges, np.int64)
    e_cpu = np.empty(max_edges, np.int64)
    current = np.full(n_cpus, zero, np.int64)
    depth = np.zeros(n_cpus, np.int64)
    stack = np.zeros((n_cpus, MAX_DEPTH), np.int64)
    nk = 0
    ne = 0
    for j in range(order.size):
        i = order[j]
        kd = kind[i]
        t = ts[i]
        cp = cpu[i]
        if kd == SWITCH:
            depth[cp] = 0  # no interrupt context spans a context switch
            prev = a[i]
            if prev != zero:
                k = key_of[prev]
                if k < 0:
                    _new(nk, prev, t, R, -1, ca[i], key_of, k_tid, k_creator, k_state,
                         k_since, k_cpu, k_comm)
                    k = nk
                    nk += 1
                st = k_state[k]
                if st != DEAD:
                    if ca[i] >= 0 and ca[i] != empty:
                        k_comm[k] = ca[i]
                    # close(k, t)
                    start = k_since[k]
                    if t > start:
                        e_task[ne] = k
                        e_start[ne] = start
                        e_end[ne] = t
                        typ = UNKNOWN if st == B else st
                        e_type[ne] = typ
                        e_waker[ne] = -1
                        e_cpu[ne] = k_cpu[k] if typ == R else -1
                        ne += 1
                        k_since[k] = t
                    if k_exiting[k]:
                        k_state[k] = DEAD
                    elif b[i] & 3 == 0:
                        k_state[k] = P
                    else:
                        k_state[k] = B
            nxt = c[i]
            if nxt != zero:
                k = key_of[nxt]
                if k < 0 or k_state[k] == DEAD:
                    _new(nk, nxt, t, R, -1, cc[i], key_of, k_tid, k_creator, k_state,
                         k_since, k_cpu, k_comm)
                    k = nk
                    nk += 1
                else:
                    if cc[i] >= 0 and cc[i] != empty:
                        k_comm[k] = cc[i]
                    st = k_state[k]
                    start = k_since[k]
                    if t > start:
                        e_task[ne] = k
                        e_start[ne] = start
                        e_end[ne] = t
                        typ = UNKNOWN if st == B else st
                        e_type[ne] = typ
                        e_waker[ne] = -1
                        e_cpu[ne] = k_cpu[k] if typ == R else -1
                        ne += 1
                        k_since[k] = t
                    k_state[k] = R
                k_cpu[k] = cp
            current[cp] = nxt
        elif kd == WAKE:
            tid = a[i]
            if tid == zero:
                continue
            k = key_of[tid]
            if k < 0 or k_state[k] == DEAD:
                _new(nk, tid, t, P, -1, ca[i], key_of, k_tid, k_creator, k_state, k_since,
                     k_cpu, k_comm)
                nk += 1
                continue
            if k_state[k] != B:
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
            start = k_since[k]
            if t > start:
                e_task[ne] = k
                e_start[ne] = start
                e_end[ne] = t
                e_type[ne] = typ
                e_waker[ne] = waker
                e_cpu[ne] = cp
                ne += 1
                k_since[k] = t
            k_state[k] = P
        elif kd == FORK:
            child = c[i]
            if child == zero:
                continue
            parent = a[i]
            pk = key_of[parent] if parent != zero else -1
            k = key_of[child]
            if k >= 0 and k_state[k] != DEAD:
                continue
            _new(nk, child, t, P, pk, ca[i], key_of, k_tid, k_creator, k_state, k_since,
                 k_cpu, k_comm)
            nk += 1
        elif kd == EXIT:
            k = key_of[a[i]]
            if k >= 0:
                k_exiting[k] = True
        elif kd == CTX_IN:
            d = depth[cp]
            if d < MAX_DEPTH:
                stack[cp, d] = a[i]
            depth[cp] = d + 1
        else:  # CTX_OUT
            if depth[cp] > 0:
                depth[cp] -= 1
    # close the chains of live tasks at the end of the trace
    for k in range(nk):
        st = k_state[k]
        if st == DEAD:
            continue
        start = k_since[k]
        if last_ts > start:
            e_task[ne] = k
            e_start[ne] = start
            e_end[ne] = last_ts
            typ = UNKNOWN if st == B else st
            e_type[ne] = typ
            e_waker[ne] = -1
            e_cpu[ne] = k_cpu[k] if typ == R else -1
            ne += 1
    # group the edges by task (a counting sort: each task's edges were produced in time order)
    offsets = np.zeros(nk + 1, np.int64)
    for i in range(ne):
        offsets[e_task[i] + 1] += 1
    for k in range(nk):
        offsets[k + 1] += offsets[k]
    fill = offsets[:nk].copy()
    g_task = np.empty(ne, np.int64)
    g_start = np.empty(ne, np.int64)
    g_end = np.empty(ne, np.int64)
    g_type = np.empty(ne, np.int8)
    g_waker = np.empty(ne, np.int64)
    g_cpu = np.empty(ne, np.int64)
    for i in range(ne):
        k = e_task[i]
        j = fill[k]
        fill[k] = j + 1
        g_task[j] = k
        g_start[j] = e_start[i]
        g_end[j] = e_end[i]
        g_type[j] = e_type[i]
        g_waker[j] = e_waker[i]
        g_cpu[j] = e_cpu[i]
    return (np.array([nk], np.int64), k_tid[:nk].copy(), k_creator[:nk].copy(),
            k_comm[:nk].copy(), offsets, g_task, g_start, g_end, g_type, g_waker, g_cpu)
