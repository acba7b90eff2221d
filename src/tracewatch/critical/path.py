"""The bounded critical path of a task over a time range, on one machine's execution graph.

Walk the chain of task T backwards from the end of the range: RUNNING, PREEMPTED and labelled
waits (TIMER, NETWORK, ...) are copied; a BLOCKED edge (a wait a task-context wakeup ended)
is replaced by the chain of its waker walked backwards from the wakeup, never before the
start of the blocked interval ("bounded"), recursively (the waker's own blocked edges are
resolved the same way). When a waker's chain starts inside the interval (a task created
there) the walk goes on in the chain of the task that forked it; when nothing explains a
part of a wait (a cycle in inconsistent data, a chain that stops) it stays ``UNKNOWN``.
A wait of T that is still open at the end of the range is resolved from its wakeup (after
the range) and cut at the end of the range.

The result: :class:`CriticalPath` with ``intervals`` (a :class:`~tracewatch.analyses.Table`
of start, end, duration, tid, comm, state: contiguous, non-overlapping, covering the range
clipped to T's lifetime; adjacent intervals of the same task and state merged) and
``summary`` (tid, comm, duration per task, longest first). The walk is iterative (an
explicit stack), so long wakeup chains do not hit Python's recursion limit.

Imports :mod:`tracewatch.analyses` (``Table``), :mod:`tracewatch.ctf` and the errors; never
the CLI or the outputs.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..analyses import Table
from ..ctf.trace import TraceSet
from ..errors import DecodeError, TracewatchError
from .graph import EdgeType, ExecutionGraph, build_graph

__all__ = ["CriticalPath", "CriticalPathError", "critical_path", "last_edge_before", "task_span",
           "trace_critical_path"]

_BLOCKED = int(EdgeType.BLOCKED)
_UNKNOWN = int(EdgeType.UNKNOWN)
_NAMES = [e.name for e in EdgeType]


class CriticalPathError(TracewatchError):
    """No critical path for this task and range (unknown TID, range outside its lifetime)."""


@dataclass
class CriticalPath:
    """The critical path of task ``tid`` (``comm``) over [``begin``, ``end``] (ns).

    ``intervals``: start, end, duration (ns, int64), tid, comm, state (an
    :class:`~tracewatch.critical.graph.EdgeType` name). ``summary``: tid, comm, duration (total
    per task, longest first). ``elapsed`` = end - begin = the sum of the durations.
    """

    tid: int
    comm: str
    hostname: str
    begin: int
    end: int
    intervals: Table
    summary: Table
    fault: DecodeError | None = None  #: the fault that cut the trace short (partial reads)

    @property
    def elapsed(self) -> int:
        return self.end - self.begin


def last_edge_before(g: ExecutionGraph, key: int, t: int) -> int:
    """Index of the last edge of ``key`` starting before ``t`` (chain start - 1 when none)."""
    lo, hi = g.chain(key)
    return bisect.bisect_left(g._starts, t, lo, hi) - 1


def _walk(g: ExecutionGraph, key: int, lo: int, hi: int) -> list[tuple[int, int, int, int]]:
    """Intervals (start, end, key, type) covering [lo, hi], in *reverse* time order."""
    out: list[tuple[int, int, int, int]] = []
    starts, ends = g._starts, g.edge_end
    types, wakers, creators = g.edge_type, g.edge_waker, g.task_creator
    stack: list[list[int]] = [[key, lo, hi, last_edge_before(g, key, hi)]]
    on_stack: Counter[int] = Counter({key: 1})
    while stack:
        fr = stack[-1]
        k, flo, nh, i = fr
        if nh <= flo:
            stack.pop()
            on_stack[k] -= 1
            continue
        c0 = int(g.offsets[k])
        if i < c0:  # before the chain's start: who created the task, else unknown
            stack.pop()
            on_stack[k] -= 1
            cr = int(creators[k])
            if cr >= 0 and on_stack[cr] == 0:
                stack.append([cr, flo, nh, last_edge_before(g, cr, nh)])
                on_stack[cr] += 1
            else:
                out.append((flo, nh, k, _UNKNOWN))
            continue
        es, ee = starts[i], int(ends[i])
        if ee < nh:  # after the chain's end
            s = max(ee, flo)
            out.append((s, nh, k, _UNKNOWN))
            fr[2] = s
            continue
        s = max(es, flo)
        fr[2], fr[3] = s, i - 1
        typ = int(types[i])
        if typ == _BLOCKED:
            w = int(wakers[i])
            if w >= 0 and on_stack[w] == 0:
                stack.append([w, s, nh, last_edge_before(g, w, nh)])
                on_stack[w] += 1
                continue
            typ = _UNKNOWN
        out.append((s, nh, k, typ))
    return out


def task_span(g: ExecutionGraph, tid: int, keys: list[int], begin: int | None, end: int | None,
              where: str = "", clock: str = "") -> tuple[int, int, int]:
    """Among the tasks ``keys`` that had TID ``tid`` (a TID is reused after an exit), the one
    that overlaps [begin, end] the most: (key, t0, t1), its lifetime clipped to the range.
    Raises :class:`CriticalPathError` when none exists in the range (``where``: " on M",
    ``clock``: which clock the times are on, for the message)."""
    best: tuple[int, int, int, int] | None = None  # (overlap, key, t0, t1)
    spans = []
    for k in keys:
        ext = g.extent(k)
        if ext is None:
            continue
        spans.append(ext)
        t0 = ext[0] if begin is None else max(begin, ext[0])
        t1 = ext[1] if end is None else min(end, ext[1])
        if t1 > t0 and (best is None or t1 - t0 > best[0]):
            best = (t1 - t0, k, t0, t1)
    if best is None:
        life = ", ".join(f"[{a}, {b}]" for a, b in spans) or "nothing"
        raise CriticalPathError(
            f"TID {tid} ({g.task_comm[keys[0]]}){where} never ran in [{begin}, {end}] "
            f"(it exists over {life}{', ' + clock if clock else ''})")
    return best[1], best[2], best[3]


def critical_path(g: ExecutionGraph, tid: int, begin: int | None = None,
                  end: int | None = None) -> CriticalPath:
    """The critical path of the task ``tid`` over [begin, end] (None: its whole lifetime in
    the trace), clipped to the lifetime of the task.

    Raises :class:`CriticalPathError` for a TID the trace does not have, an empty range, or
    a range where the task does not exist."""
    keys = g.keys_of(tid)
    if not keys:
        raise CriticalPathError(f"no task with TID {tid} in the trace")
    if begin is not None and end is not None and end <= begin:
        raise CriticalPathError(f"empty time range [{begin}, {end}]")
    key, t0, t1 = task_span(g, tid, keys, begin, end)
    # a wait still open at t1 is resolved from its wakeup, then cut at t1
    hi = t1
    i = last_edge_before(g, key, t1)
    if i >= int(g.offsets[key]) and int(g.edge_type[i]) == _BLOCKED:
        hi = int(g.edge_end[i])
    rev = _walk(g, key, t0, hi)
    merged: list[list[int]] = []
    for s, e, k, typ in reversed(rev):
        e = min(e, t1)
        if e <= s:
            continue
        if merged and merged[-1][2] == k and merged[-1][3] == typ and merged[-1][1] == s:
            merged[-1][1] = e
        else:
            merged.append([s, e, k, typ])
    arr = np.array(merged, np.int64).reshape(-1, 4)
    start, stop, kk, tt = arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]
    comms = np.array([g.task_comm[k] for k in kk.tolist()], object)
    intervals = Table({
        "start": start, "end": stop, "duration": stop - start, "tid": g.task_tid[kk],
        "comm": comms, "state": np.array([_NAMES[t] for t in tt.tolist()], object)})
    # per task totals
    uk, inv = np.unique(kk, return_inverse=True)
    tot_i = np.zeros(uk.size, np.int64)
    np.add.at(tot_i, inv.reshape(-1), stop - start)
    order = np.lexsort((g.task_tid[uk], -tot_i))
    summary = Table({"tid": g.task_tid[uk][order],
                     "comm": np.array([g.task_comm[k] for k in uk[order].tolist()], object),
                     "duration": tot_i[order]})
    return CriticalPath(tid, g.task_comm[key], g.hostname, t0, t1, intervals, summary)


def trace_critical_path(ts: TraceSet, tid: int, begin: int | None = None,
                        end: int | None = None, partial: bool = False) -> CriticalPath:
    """Build the execution graph of ``ts`` (one machine) and return :func:`critical_path`.

    ``partial``: on a corrupt or truncated trace, the path over the events before the fault,
    the error in ``fault`` (raised instead when the task has no path there)."""
    if begin is not None and end is not None and end <= begin:
        raise CriticalPathError(f"empty time range [{begin}, {end}]")
    g = build_graph(ts, partial=partial)
    try:
        p = critical_path(g, tid, begin, end)
    except CriticalPathError:
        if g.fault is not None:
            raise g.fault from None
        raise
    p.fault = g.fault
    return p
