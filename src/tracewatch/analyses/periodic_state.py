"""What a streaming window runner must keep of the past: the sequential kernel state.

:class:`~tracewatch.analyses.periodic.PeriodicRunner` analyses each window with the columns of
every event before it (the state at the window's start depends on them). :func:`retain` cuts
those columns, at each window close, down to the rows that can still change a later window's
result, so that memory follows the state, not the session's length:

* thread table (``thread_table``): per tid, the last row of each source that names it
  (statedump, fork child/parent, exec, exit, ``sched_switch`` next/prev);
* current task per CPU: the last ``sched_switch`` of each CPU;
* a thread's running/sleeping state: its last switch-in/out (cputop's open interval, the
  validity of sched's wakeups);
* sched: per thread the pending wakeup (the first valid one since its last switch-in), the
  switch just before it and the switch current on the waking CPU (its waker);
* syscalls: per thread its last entry/exit (a call in flight, or the exit that prevents an
  older entry from pairing) and the ``sched_switch`` that made the thread current then;
* irq: the last hard IRQ event of each CPU, the last entry of each IRQ number (its name), the
  last softirq event of each (CPU, vector), the first raise after its last entry and, when
  a softirq is in flight, the raise of its entry.

Every row kept is a real row (same ``seq``), so the analyses read the cut columns unchanged;
rows that are kept for one reason and are older than what the analysis pairs them with only
form intervals that end before the next window, which the analyses clip away (``stop < lo``).
The results of later windows are therefore the same as with every row (the offline
``--period`` results), which the tests check. Imports NumPy, :mod:`.syscalls` and
:func:`tracewatch.kernel.state.last_per_key`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..kernel.state import last_per_key
from .syscalls import current_rows

__all__ = ["Columns", "retain", "rows", "nbytes"]

#: logical event -> field name -> column, as a kernel analysis reads them
Columns = dict[str, dict[str, np.ndarray]]

_THREAD_KEYS: dict[str, tuple[str, ...]] = {
    "lttng_statedump_process_state": ("tid",),
    "sched_process_fork": ("child_tid", "parent_tid"),
    "sched_process_exec": ("tid",),
    "sched_process_exit": ("tid",),
}


def rows(columns: Columns) -> int:
    """Rows held (events of every kind)."""
    return sum(int(c["seq"].size) for c in columns.values())


def nbytes(columns: Columns) -> int:
    """Bytes of the column arrays (object arrays: their pointers)."""
    return sum(int(v.nbytes) for c in columns.values() for v in c.values())


def _first_per(key: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Index of the row with the smallest ``seq`` for each distinct ``key``."""
    if key.size == 0:
        return np.zeros(0, np.int64)
    o = np.lexsort((seq, key))
    ks = key[o]
    first = np.ones(ks.size, bool)
    first[1:] = ks[1:] != ks[:-1]
    return o[first]


def _mask(n: int, *idx: np.ndarray) -> np.ndarray:
    m = np.zeros(n, bool)
    for i in idx:
        m[i[i >= 0]] = True
    return m


def _take(cols: dict[str, np.ndarray], m: np.ndarray) -> dict[str, np.ndarray]:
    return {f: v[m] for f, v in cols.items()}


def _i64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.int64, copy=False)


def _thread_rows(columns: Columns, out: Columns) -> None:
    """Thread table sources: the last row per tid of each role."""
    for ev, keys in _THREAD_KEYS.items():
        cols = columns.get(ev)
        if cols is None:
            continue
        n = cols["seq"].size
        m = _mask(n, *(last_per_key(_i64(cols[k]), cols["seq"]) for k in keys if k in cols))
        out[ev] = _take(cols, m)


def _switch_keep(sw: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Last sched_switch per CPU, per next_tid and per prev_tid (when read)."""
    seq = sw["seq"]
    keep = [last_per_key(_i64(sw["cpu"]), seq), last_per_key(_i64(sw["next_tid"]), seq)]
    if "prev_tid" in sw:
        keep.append(last_per_key(_i64(sw["prev_tid"]), seq))
    return keep


def _cputop(columns: Columns) -> Columns:
    out: Columns = {}
    sw = columns["sched_switch"]
    out["sched_switch"] = _take(sw, _mask(sw["seq"].size, *_switch_keep(sw)))
    _thread_rows(columns, out)
    for ev, cols in columns.items():  # sched_migrate_task: counted in its window only
        out.setdefault(ev, _take(cols, np.zeros(cols["seq"].size, bool)))
    return out


def _syscalls(columns: Columns) -> Columns:
    out: Columns = {}
    sw, en, ex = columns["sched_switch"], columns["syscall_entry"], columns["syscall_exit"]
    ne = en["seq"].size
    seq = np.concatenate([en["seq"], ex["seq"]])
    cpu = _i64(np.concatenate([en["cpu"], ex["cpu"]]))
    row = current_rows(sw, cpu, seq)
    known = np.flatnonzero(row >= 0)
    tid = _i64(sw["next_tid"])[row[known]] if known.size else np.zeros(0, np.int64)
    last = known[last_per_key(tid, seq[known])]  # last entry/exit of each thread
    out["sched_switch"] = _take(sw, _mask(sw["seq"].size, *_switch_keep(sw), row[last]))
    out["syscall_entry"] = _take(en, _mask(ne, last[last < ne]))
    out["syscall_exit"] = _take(ex, _mask(ex["seq"].size, last[last >= ne] - ne))
    _thread_rows(columns, out)
    return out


def _sched(columns: Columns) -> Columns:
    sw = columns["sched_switch"]
    wake = [ev for ev in columns if ev != "sched_switch"]
    n = sw["seq"].size
    w_src = np.concatenate([np.full(columns[w]["seq"].size, i, np.int64) for i, w in enumerate(wake)]
                           or [np.zeros(0, np.int64)])
    w_ref = np.concatenate([np.arange(columns[w]["seq"].size) for w in wake] or [np.zeros(0, np.int64)])
    w_seq = np.concatenate([columns[w]["seq"] for w in wake] or [np.zeros(0, np.int64)])
    w_tid = np.concatenate([_i64(columns[w]["tid"]) for w in wake] or [np.zeros(0, np.int64)])
    w_cpu = np.concatenate([_i64(columns[w]["cpu"]) for w in wake] or [np.zeros(0, np.int64)])
    nw = w_seq.size
    # per thread, in trace order: switch-outs (0), switch-ins (1), wakeups (2), as sched does
    k_tid = np.concatenate([_i64(sw["prev_tid"]), _i64(sw["next_tid"]), w_tid])
    k_seq = np.concatenate([sw["seq"], sw["seq"], w_seq])
    k_kind = np.concatenate([np.zeros(n, np.int8), np.ones(n, np.int8), np.full(nw, 2, np.int8)])
    k_ref = np.concatenate([np.arange(n), np.arange(n), np.arange(nw)])
    o = np.lexsort((k_kind, k_seq, k_tid))
    k_tid, k_kind, k_ref = k_tid[o], k_kind[o], k_ref[o]
    m = k_tid.size
    pos = np.arange(m)
    newg = np.ones(m, bool)
    newg[1:] = k_tid[1:] != k_tid[:-1]
    gstart = np.maximum.accumulate(np.where(newg, pos, 0)) if m else pos
    last_io = np.maximum.accumulate(np.where(k_kind < 2, pos, -1)) if m else pos
    has_io = last_io >= gstart
    running = has_io & (k_kind[np.maximum(last_io, 0)] == 1) if m else np.zeros(0, bool)
    valid = (k_kind == 2) & ~running
    # no switch-in of the thread after it: the wakeup still waits for its switch-in
    cum_in = np.cumsum(k_kind == 1)
    gend = np.zeros(m, np.int64)
    if m:
        ends = np.r_[np.flatnonzero(newg)[1:] - 1, m - 1]
        gend = ends[np.cumsum(newg) - 1]
    waiting = valid & (cum_in[gend] == cum_in)
    cand = pos[waiting]
    pend = cand[_first_per(k_tid[cand], cand)]  # first one per thread
    before = pend[has_io[pend]]  # the switch just before it (decides it is valid)
    keep_w = k_ref[pend]
    waker = current_rows(sw, w_cpu[keep_w], w_seq[keep_w])
    out: Columns = {"sched_switch": _take(sw, _mask(n, *_switch_keep(sw), k_ref[last_io[before]], waker))}
    for i, w in enumerate(wake):
        out[w] = _take(columns[w], _mask(columns[w]["seq"].size, w_ref[keep_w[w_src[keep_w] == i]]))
    return out


def _irq(columns: Columns) -> Columns:
    out: Columns = {}
    he, hx = columns.get("irq_handler_entry"), columns.get("irq_handler_exit")
    if he is not None and hx is not None:
        ne = he["seq"].size
        seq = np.concatenate([he["seq"], hx["seq"]])
        last = last_per_key(_i64(np.concatenate([he["cpu"], hx["cpu"]])), seq)
        names = last_per_key(_i64(he["irq"]), he["seq"])
        out["irq_handler_entry"] = _take(he, _mask(ne, last[last < ne], names))
        out["irq_handler_exit"] = _take(hx, _mask(hx["seq"].size, last[last >= ne] - ne))
    elif he is not None:
        out["irq_handler_entry"] = _take(he, _mask(he["seq"].size, last_per_key(_i64(he["irq"]), he["seq"])))
    elif hx is not None:
        out["irq_handler_exit"] = _take(hx, np.zeros(hx["seq"].size, bool))
    se, sx, sr = (columns.get(e) for e in ("irq_softirq_entry", "irq_softirq_exit", "irq_softirq_raise"))

    def key(c: dict[str, np.ndarray]) -> np.ndarray:
        return (_i64(c["cpu"]) << 32) | _i64(c["vec"])

    z = np.zeros(0, np.int64)
    e_key, e_seq = (key(se), se["seq"]) if se is not None else (z, z)
    x_key, x_seq = (key(sx), sx["seq"]) if sx is not None else (z, z)
    ne = e_key.size
    last = last_per_key(np.concatenate([e_key, x_key]), np.concatenate([e_seq, x_seq]))
    in_flight = last[last < ne]  # the last softirq event of its key is an entry
    keep_r = z
    if sr is not None and sr["seq"].size:
        r_key = key(sr)
        # segment of a raise: entries of its key before it; entry j takes the first raise of
        # segment j (irq's rule). Keep segment n_entries (pending) and, for a softirq in
        # flight, segment n_entries - 1 (its entry's raise)
        allk = np.concatenate([e_key, r_key])
        alls = np.concatenate([e_seq, sr["seq"]])
        is_e = np.arange(allk.size) < ne
        o = np.lexsort((alls, allk))
        k, ent = allk[o], is_e[o]
        new = np.ones(k.size, bool)
        new[1:] = k[1:] != k[:-1]
        cum = np.cumsum(ent)
        base: np.ndarray = (cum - ent)[new][np.cumsum(new) - 1]
        seg: np.ndarray = cum - ent - base
        ukeys, inv = np.unique(k, return_inverse=True)
        n_ent = np.bincount(inv, weights=ent, minlength=ukeys.size).astype(np.int64)
        flight = np.zeros(ukeys.size, bool)
        if in_flight.size:
            fk = e_key[in_flight]
            flight[np.searchsorted(ukeys, fk)] = True
        rp = np.flatnonzero(~ent)
        want = (seg[rp] == n_ent[inv[rp]]) | (flight[inv[rp]] & (seg[rp] == n_ent[inv[rp]] - 1))
        cand = rp[want]
        gk = inv[cand] * 2 + (seg[cand] == n_ent[inv[cand]])
        first = cand[_first_per(gk, alls[o][cand])]
        keep_r = o[first] - ne
    if se is not None:
        out["irq_softirq_entry"] = _take(se, _mask(ne, in_flight))
    if sx is not None:
        out["irq_softirq_exit"] = _take(sx, _mask(sx["seq"].size, last[last >= ne] - ne))
    if sr is not None:
        out["irq_softirq_raise"] = _take(sr, _mask(sr["seq"].size, keep_r))
    return out


_RETAIN: dict[str, Callable[[Columns], Columns]] = {
    "cputop": _cputop, "sched": _sched, "syscalls": _syscalls, "irq": _irq}


def retain(analysis: str, columns: Columns) -> Columns:
    """The rows of ``columns`` (those of kernel ``analysis``, every event up to now, in trace
    order) that a later window can still need (see the module doc)."""
    return _RETAIN[analysis](columns)
