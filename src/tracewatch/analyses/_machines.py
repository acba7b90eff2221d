"""Compiled (numba) state machines of the kernel analyses: one pass in trace order over the
int64 columns of the events an analysis needs, merging the sorted ``seq`` columns of its
event types on the fly (no sort). Threads and CPUs are dense indices (see
:func:`tracewatch.kernel.fast.dense_index`). The rules are those of the analyses' module
docstrings; the Python callers do the filtering and the tables.

Private helper of :mod:`tracewatch.analyses`; imports only numpy and numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["cputop_run", "sched_run", "pair_syscalls", "pair_hard_irqs", "pair_soft_irqs"]


@njit(cache=True)
def _clip(a, b, lo, hi):
    d = min(b, hi) - max(a, lo)
    return d if d > 0 else 0


@njit(cache=True)
def _close(k, r0, start, stop, lo, hi, usage, first_row, has, prio, last_prio, pg, pv, npr, with_prio):
    if start > stop:
        start = stop
    if stop >= lo and start <= hi:
        usage[k] += _clip(start, stop, lo, hi)
        if not has[k]:
            has[k] = True
            first_row[k] = r0
        if with_prio and last_prio[k] != prio[r0]:
            last_prio[k] = prio[r0]
            pg[npr] = k
            pv[npr] = prio[r0]
            npr += 1
    return npr


@njit(cache=True)
def cputop_run(t, cpu, prev_i, next_i, prev_tid, next_tid, prio, tid_ok, cpu_ok, prev_ok, ntid, ncpu, lo, hi):
    """CPU usage per dense tid and per CPU (see :mod:`.cputop`). ``tid_ok[r]``: next_tid of
    row r is analysed; ``prev_ok[r]``: prev_tid is; ``cpu_ok[r]``: its CPU is. Returns
    (usage, has, first_row, prio_group, prio_value, cpu_usage, cpu_seen)."""
    n = t.shape[0]
    pending = np.full(ntid, -1, np.int64)
    seen = np.zeros(ntid, np.bool_)
    usage = np.zeros(ntid, np.int64)
    has = np.zeros(ntid, np.bool_)
    first_row = np.full(ntid, -1, np.int64)
    last_prio = np.full(ntid, -(1 << 62), np.int64)
    pg = np.empty(n + ntid, np.int64)
    pv = np.empty(n + ntid, np.int64)
    npr = 0
    last_row = np.full(ncpu, -1, np.int64)
    cusage = np.zeros(ncpu, np.int64)
    for r in range(n):
        c = cpu[r]
        # per CPU: the interval since its previous sched_switch
        p = last_row[c]
        if p >= 0:
            if next_tid[p] != 0 and tid_ok[p]:
                cusage[c] += _clip(t[p], t[r], lo, hi)
        elif prev_tid[r] != 0 and prev_ok[r]:
            cusage[c] += _clip(lo, t[r], lo, hi)
        last_row[c] = r
        # switch-in of next_tid (before the switch-out of prev_tid at the same event)
        k = next_i[r]
        pending[k] = r  # an unfinished earlier switch-in is lost
        seen[k] = True
        # switch-out of prev_tid
        k = prev_i[r]
        q = pending[k]
        if q >= 0:
            if prev_tid[r] != 0 and cpu_ok[q] and tid_ok[q]:
                npr = _close(k, q, t[q], t[r], lo, hi, usage, first_row, has, prio, last_prio, pg, pv, npr, True)
            pending[k] = -1
        elif not seen[k]:
            if prev_tid[r] != 0 and cpu_ok[r] and prev_ok[r]:
                npr = _close(k, r, lo, t[r], lo, hi, usage, first_row, has, prio, last_prio, pg, pv, npr, False)
        seen[k] = True
    # threads still running at the end
    for k in range(ntid):
        q = pending[k]
        if q >= 0 and next_tid[q] != 0 and cpu_ok[q] and tid_ok[q]:
            npr = _close(k, q, t[q], hi, lo, hi, usage, first_row, has, prio, last_prio, pg, pv, npr, True)
    cpu_seen = last_row >= 0
    for c in range(ncpu):
        p = last_row[c]
        if p >= 0 and next_tid[p] != 0 and tid_ok[p]:
            cusage[c] += _clip(t[p], hi, lo, hi)
    return usage, has, first_row, pg[:npr], pv[:npr], cusage, cpu_seen


@njit(cache=True)
def sched_run(s_seq, s_cpu, prev_i, next_i, next_tid, w_seq, w_cpu, w_i, ntid, ncpu):
    """Wakeup-to-switch-in pairs (see :mod:`.sched`): (switch rows, wakeup rows) in trace
    order of the switch-ins, and the waker of each wakeup (tid current on its CPU, -1)."""
    ns = s_seq.shape[0]
    nw = w_seq.shape[0]
    pending = np.full(ntid, -1, np.int64)
    running = np.zeros(ntid, np.bool_)
    cur = np.full(ncpu, -1, np.int64)
    out_s = np.empty(min(ns, nw), np.int64)
    out_w = np.empty(min(ns, nw), np.int64)
    waker = np.full(nw, -1, np.int64)
    no = 0
    i = 0
    j = 0
    while i < ns or j < nw:
        if j >= nw or (i < ns and s_seq[i] < w_seq[j]):
            running[prev_i[i]] = False
            k = next_i[i]
            q = pending[k]
            if q >= 0:
                out_s[no] = i
                out_w[no] = q
                no += 1
                pending[k] = -1
            running[k] = True
            cur[s_cpu[i]] = next_tid[i]
            i += 1
        else:
            k = w_i[j]
            c = w_cpu[j]
            if 0 <= c < ncpu:
                waker[j] = cur[c]
            if not running[k] and pending[k] < 0:
                pending[k] = j
            j += 1
    return out_s[:no], out_w[:no], waker


@njit(cache=True)
def pair_syscalls(e_seq, e_cpu, x_seq, x_cpu, s_seq, s_cpu, s_i, ntid, ncpu):
    """Entry/exit pairs of system calls (see :mod:`.syscalls`): (exit rows, entry rows,
    sched_switch rows making the thread current), in trace order of the exits."""
    ne = e_seq.shape[0]
    nx = x_seq.shape[0]
    ns = s_seq.shape[0]
    big = np.int64(1) << np.int64(62)
    cur = np.full(ncpu, -1, np.int64)
    pend = np.full(ntid, -1, np.int64)
    out_x = np.empty(min(ne, nx), np.int64)
    out_e = np.empty(min(ne, nx), np.int64)
    out_r = np.empty(min(ne, nx), np.int64)
    no = 0
    i = 0
    j = 0
    k = 0
    while j < ne or k < nx:
        qs = s_seq[i] if i < ns else big
        qe = e_seq[j] if j < ne else big
        qx = x_seq[k] if k < nx else big
        if qs < qe and qs < qx:
            c = s_cpu[i]
            if 0 <= c < ncpu:
                cur[c] = i
            i += 1
        elif qe < qx:
            c = e_cpu[j]
            r = cur[c] if 0 <= c < ncpu else -1
            if r >= 0:
                pend[s_i[r]] = j
            j += 1
        else:
            c = x_cpu[k]
            r = cur[c] if 0 <= c < ncpu else -1
            if r >= 0:
                t = s_i[r]
                q = pend[t]
                if q >= 0:
                    out_x[no] = k
                    out_e[no] = q
                    out_r[no] = r
                    no += 1
                pend[t] = -1
            k += 1
    return out_x[:no], out_e[:no], out_r[:no]


@njit(cache=True)
def pair_hard_irqs(e_seq, e_cpu, e_nr, x_seq, x_cpu, x_nr, ncpu):
    """(entry rows, exit rows) of hard IRQs: an exit directly after an entry of the same irq
    on its CPU, in trace order of the exits."""
    ne = e_seq.shape[0]
    nx = x_seq.shape[0]
    last = np.full(ncpu, -1, np.int64)  # entry row, or -1 after an exit
    out_e = np.empty(min(ne, nx), np.int64)
    out_x = np.empty(min(ne, nx), np.int64)
    no = 0
    j = 0
    k = 0
    while k < nx:
        if j < ne and e_seq[j] < x_seq[k]:
            last[e_cpu[j]] = j
            j += 1
        else:
            c = x_cpu[k]
            q = last[c]
            if q >= 0 and e_nr[q] == x_nr[k]:
                out_e[no] = q
                out_x[no] = k
                no += 1
            last[c] = -1
            k += 1
    return out_e[:no], out_x[:no]


@njit(cache=True)
def pair_soft_irqs(e_seq, e_key, x_seq, x_key, r_seq, r_key, r_ts, nkey):
    """(entry rows, exit rows) of softirqs: an exit directly after an entry of the same
    (cpu, vec) key among that key's entries and exits, in trace order of the exits; and the
    raise timestamp of each entry (first raise of its key since the key's previous entry;
    -1 when none)."""
    ne = e_seq.shape[0]
    nx = x_seq.shape[0]
    nr = r_seq.shape[0]
    big = np.int64(1) << np.int64(62)
    last = np.full(nkey, -1, np.int64)
    pend_raise = np.full(nkey, -1, np.int64)
    raise_ts = np.full(ne, -1, np.int64)
    out_e = np.empty(min(ne, nx), np.int64)
    out_x = np.empty(min(ne, nx), np.int64)
    no = 0
    i = 0
    j = 0
    k = 0
    while j < ne or k < nx:
        qr = r_seq[i] if i < nr else big
        qe = e_seq[j] if j < ne else big
        qx = x_seq[k] if k < nx else big
        if qr < qe and qr < qx:
            key = r_key[i]
            if pend_raise[key] < 0:
                pend_raise[key] = r_ts[i]
            i += 1
        elif qe < qx:
            key = e_key[j]
            raise_ts[j] = pend_raise[key]
            pend_raise[key] = -1
            last[key] = j
            j += 1
        else:
            key = x_key[k]
            q = last[key]
            if q >= 0:
                out_e[no] = q
                out_x[no] = k
                no += 1
            last[key] = -1
            k += 1
    return out_e[:no], out_x[:no], raise_ts


@njit(cache=True)
def prio_changes(group, prio, ngroups):
    """Rows where ``prio`` differs from the previous one of the same group (the first of
    each group included): enough to list each group's distinct values in order."""
    last = np.full(ngroups, -(1 << 62), np.int64)
    keep = np.zeros(group.shape[0], np.bool_)
    for i in range(group.shape[0]):
        g = group[i]
        if last[g] != prio[i]:
            last[g] = prio[i]
            keep[i] = True
    return keep
