"""The execution graph of one machine: a chain of state intervals per task, and wakeups.

Each task (a thread, identified by an internal *key*: a TID reused after an exit gets a new
key) has a horizontal chain of contiguous edges from its first to its last state change:

* ``RUNNING`` (on a CPU), ``PREEMPTED`` (runnable, waiting for a CPU);
* ``BLOCKED`` (waiting) when a task-context wakeup ended the wait: the edge's ``waker`` is the
  key of the task that ran ``sched_waking``/``sched_wakeup`` (the vertical edge waker -> wakee,
  at the end of the blocked edge);
* a *labelled* wait when the wakeup came from interrupt context on the waking CPU (innermost
  context wins): ``TIMER`` (timer/hrtimer softirq, ``hrtimer_expire``, local timer vector),
  ``NETWORK`` (NET_RX/NET_TX softirq), ``BLOCK_DEVICE`` (BLOCK/BLOCK_IOPOLL softirq),
  ``INTERRUPTED`` (hard irq, SCHED softirq), ``IPI`` (x86 reschedule/call-function vectors),
  ``UNKNOWN`` (other softirqs, a wakeup from the idle task, a wait no wakeup ended).

Task status comes from ``sched_switch`` (``prev_state & 3 == 0``: preempted, else blocked),
the wakeup events (``sched_waking`` when the trace has it, it runs in the waker's context;
else ``sched_wakeup``; and ``sched_wakeup_new``), ``sched_process_fork`` (the child's chain
starts PREEMPTED at the fork, its *creator* is the parent) and ``sched_process_exit`` (the
chain ends at the task's last switch-out). Interrupt context per CPU comes from
``irq_handler_entry/exit``, ``softirq_entry/exit`` (LTTng 2.8+: ``irq_softirq_*``),
``hrtimer_expire_entry/exit`` (``timer_hrtimer_*``) and ``x86_irq_vectors_*_entry/exit``.
The idle task (TID 0) has no chain. Chains of tasks still alive are closed at the last event
of the trace (a wait still open there is ``UNKNOWN``).

The columns are read with :func:`tracewatch.kernel.read_columns` (one pass); a Python loop
runs only over these events, and the edges end up in NumPy arrays sorted by (task, start).
Imports :mod:`tracewatch.ctf` and :mod:`tracewatch.kernel`; never the CLI or outputs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ctf.trace import TraceSet
from ..errors import TracewatchError
from ..kernel.layouts import detect_layout
from ..kernel.state import read_columns

__all__ = ["EdgeType", "ExecutionGraph", "build_graph", "GraphError", "SOFTIRQ_LABELS"]


class GraphError(TracewatchError):
    """The execution graph cannot be built from a trace set."""


class EdgeType(enum.IntEnum):
    """What a task does during an edge of its chain."""

    RUNNING = 0
    PREEMPTED = 1
    BLOCKED = 2
    TIMER = 3
    NETWORK = 4
    BLOCK_DEVICE = 5
    INTERRUPTED = 6
    IPI = 7
    UNKNOWN = 8


#: softirq vector -> label of the waits it ends (others: UNKNOWN)
SOFTIRQ_LABELS: dict[int, EdgeType] = {
    1: EdgeType.TIMER, 8: EdgeType.TIMER,              # TIMER, HRTIMER
    2: EdgeType.NETWORK, 3: EdgeType.NETWORK,          # NET_TX, NET_RX
    4: EdgeType.BLOCK_DEVICE, 5: EdgeType.BLOCK_DEVICE,  # BLOCK, BLOCK_IOPOLL / IRQ_POLL
    7: EdgeType.INTERRUPTED,                           # SCHED
}

_IPI_VECTORS = ("reschedule", "call_function", "call_function_single", "irq_work")

# logical group -> actual event names (LTTng 2.6-2.7 / Trace Compass stubs, LTTng 2.8+, perf)
_GROUPS: dict[str, tuple[str, ...]] = {
    "irq_entry": ("irq_handler_entry", "irq:irq_handler_entry"),
    "irq_exit": ("irq_handler_exit", "irq:irq_handler_exit"),
    "softirq_entry": ("softirq_entry", "irq_softirq_entry", "irq:softirq_entry"),
    "softirq_exit": ("softirq_exit", "irq_softirq_exit", "irq:softirq_exit"),
    "hrtimer_entry": ("hrtimer_expire_entry", "timer_hrtimer_expire_entry",
                      "timer:hrtimer_expire_entry"),
    "hrtimer_exit": ("hrtimer_expire_exit", "timer_hrtimer_expire_exit",
                     "timer:hrtimer_expire_exit"),
}

# event kinds of the merged loop
_SWITCH, _WAKE, _FORK, _EXIT, _IN_IRQ, _OUT_IRQ, _IN_SOFT, _OUT_SOFT, _IN_CTX, _OUT_CTX = range(10)

_R, _P, _B = int(EdgeType.RUNNING), int(EdgeType.PREEMPTED), int(EdgeType.BLOCKED)
_DEAD = -1


@dataclass
class ExecutionGraph:
    """Chains of the tasks of one machine.

    Edges (arrays of equal length, sorted by task key then start; a task's edges are
    contiguous: ``edge_end[i] == edge_start[i + 1]`` within a chain): ``edge_task`` (key),
    ``edge_start``, ``edge_end`` (ns), ``edge_type`` (:class:`EdgeType` values) and
    ``edge_waker`` (key of the waking task for BLOCKED edges, else -1). Task ``k``'s edges
    are ``offsets[k]:offsets[k + 1]``. Tasks: ``task_tid``, ``task_comm``, ``task_creator``
    (key of the forking parent or -1), ``task_pid`` is not tracked.
    """

    hostname: str
    task_tid: np.ndarray
    task_comm: list[str]
    task_creator: np.ndarray
    edge_task: np.ndarray
    edge_start: np.ndarray
    edge_end: np.ndarray
    edge_type: np.ndarray
    edge_waker: np.ndarray
    offsets: np.ndarray
    first_ts: int
    last_ts: int
    _starts: list[int] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._starts = self.edge_start.tolist()

    @property
    def n_tasks(self) -> int:
        return int(self.task_tid.size)

    @property
    def n_edges(self) -> int:
        return int(self.edge_start.size)

    def keys_of(self, tid: int) -> list[int]:
        """Keys of the tasks with this TID (several when the TID was reused), in time order."""
        return [int(k) for k in np.flatnonzero(self.task_tid == tid)]

    def chain(self, key: int) -> tuple[int, int]:
        """Index range [lo, hi) of the edges of task ``key``."""
        return int(self.offsets[key]), int(self.offsets[key + 1])

    def extent(self, key: int) -> tuple[int, int] | None:
        """First and last time of the chain of task ``key`` (None: no edge)."""
        lo, hi = self.chain(key)
        if lo == hi:
            return None
        return int(self.edge_start[lo]), int(self.edge_end[hi - 1])


class _Builder:
    """State of the construction loop (Python lists, turned into arrays at the end)."""

    def __init__(self) -> None:
        self.key_of: dict[int, int] = {}
        self.tids: list[int] = []
        self.comms: list[str] = []
        self.creator: list[int] = []
        self.state: list[int] = []     # current state (_R/_P/_B or _DEAD), per key
        self.since: list[int] = []     # start of the current state, per key
        self.e_task: list[int] = []
        self.e_start: list[int] = []
        self.e_end: list[int] = []
        self.e_type: list[int] = []
        self.e_waker: list[int] = []
        self.current: dict[int, int] = {}          # cpu -> tid running
        self.ctx: dict[int, list[EdgeType]] = {}   # cpu -> interrupt context stack (labels)
        self.exiting: set[int] = set()             # keys after their sched_process_exit

    def new_task(self, tid: int, comm: str, t: int, state: int, creator: int = -1) -> int:
        k = len(self.tids)
        self.key_of[tid] = k
        self.tids.append(tid)
        self.comms.append(comm)
        self.creator.append(creator)
        self.state.append(state)
        self.since.append(t)
        return k

    def edge(self, k: int, end: int, typ: int, waker: int = -1) -> None:
        start = self.since[k]
        if end > start:
            self.e_task.append(k)
            self.e_start.append(start)
            self.e_end.append(end)
            self.e_type.append(typ)
            self.e_waker.append(waker)
        self.since[k] = end

    def close(self, k: int, t: int) -> None:
        """End the current state of ``k`` at ``t`` (a wait no wakeup ended is UNKNOWN)."""
        st = self.state[k]
        if st == _DEAD:
            return
        self.edge(k, t, int(EdgeType.UNKNOWN) if st == _B else st)

    def switch(self, t: int, cpu: int, prev: int, pcomm: str, pstate: int, nxt: int,
               ncomm: str) -> None:
        self.ctx.pop(cpu, None)  # no interrupt context spans a context switch
        if prev != 0:
            k = self.key_of.get(prev)
            if k is None:
                k = self.new_task(prev, pcomm, t, _R)
            if self.state[k] != _DEAD:
                self.comms[k] = pcomm or self.comms[k]
                self.close(k, t)
                if k in self.exiting:
                    self.state[k] = _DEAD  # its last switch-out: the chain ends here
                else:
                    self.state[k] = _P if pstate & 3 == 0 else _B
        if nxt != 0:
            k = self.key_of.get(nxt)
            if k is None or self.state[k] == _DEAD:
                k = self.new_task(nxt, ncomm, t, _R)
            else:
                self.comms[k] = ncomm or self.comms[k]
                self.close(k, t)
                self.state[k] = _R
        self.current[cpu] = nxt

    def wake(self, t: int, cpu: int, tid: int, comm: str) -> None:
        if tid == 0:
            return
        k = self.key_of.get(tid)
        if k is None or self.state[k] == _DEAD:
            self.new_task(tid, comm, t, _P)
            return
        if self.state[k] != _B:
            return  # already runnable or running: nothing to end
        stack = self.ctx.get(cpu)
        if stack:
            self.edge(k, t, int(stack[-1]))
        else:
            waker = self.current.get(cpu, 0)
            wk = self.key_of.get(waker) if waker != 0 else None
            if wk is None or wk == k:
                self.edge(k, t, int(EdgeType.UNKNOWN))
            else:
                self.edge(k, t, _B, wk)
        self.state[k] = _P

    def fork(self, t: int, parent: int, child: int, ccomm: str) -> None:
        if child == 0:
            return
        pk = self.key_of.get(parent, -1) if parent != 0 else -1
        k = self.key_of.get(child)
        if k is not None and self.state[k] != _DEAD:
            return  # already known (e.g. a wakeup came first): keep its chain
        self.new_task(child, ccomm, t, _P, pk)

    def exit(self, t: int, tid: int) -> None:
        k = self.key_of.get(tid)
        if k is not None:
            self.exiting.add(k)


def build_graph(ts: TraceSet, begin: int | None = None, end: int | None = None) -> ExecutionGraph:
    """The execution graph of the trace set ``ts`` (one machine), from its first event (state
    before ``begin`` matters) up to ``end`` (None: the end of the trace).

    Raises :class:`~tracewatch.kernel.MissingEventsError` without ``sched_switch`` (without
    wakeup events every wait is ``UNKNOWN``)."""
    layout = detect_layout(ts)
    layout.require("critical path", ["sched_switch"])
    wake_events = [e for e in ("sched_waking", "sched_wakeup_new") if layout.has(e)]
    if not layout.has("sched_waking") and layout.has("sched_wakeup"):
        wake_events.insert(0, "sched_wakeup")
    wanted: dict[str, tuple[str, ...]] = {
        "sched_switch": ("prev_comm", "prev_tid", "prev_state", "next_comm", "next_tid"),
        "sched_process_fork": ("parent_tid", "child_tid", "child_comm"),
        "sched_process_exit": ("tid",),
    }
    for e in wake_events:
        wanted[e] = ("comm", "tid")
    names = {c.name for c in ts.classes}
    groups = {g: [n for n in ns if n in names] for g, ns in _GROUPS.items()}
    vec_in = [n for n in names if n.startswith("x86_irq_vectors_") and n.endswith("_entry")]
    vec_out = [n for n in names if n.startswith("x86_irq_vectors_") and n.endswith("_exit")]
    groups["vec_entry"], groups["vec_exit"] = vec_in, vec_out
    groups = {g: ns for g, ns in groups.items() if ns}
    gwanted = {"irq_entry": ("irq",), "softirq_entry": ("vec",)}
    for g in groups:
        wanted[g] = gwanted.get(g, ())
    kc = read_columns(ts, layout, wanted, end=end, groups=groups)
    if kc.first_ts is None or kc.last_ts is None:
        raise GraphError("the trace has no event")
    first_ts, last_ts = kc.first_ts, kc.last_ts
    if begin is not None:
        first_ts = min(first_ts, begin)
    cols = kc.events

    # merge every event of interest in trace order: (seq, kind, row)
    seqs: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    srcs: list[str] = []

    def add(ev: str, kind: int) -> None:
        c = cols.get(ev)
        if c is None or c["seq"].size == 0:
            return
        n = c["seq"].size
        seqs.append(c["seq"])
        kinds.append(np.full(n, kind, np.int8))
        rows.append(np.arange(n, dtype=np.int64))
        srcs.append(ev)

    add("sched_switch", _SWITCH)
    for e in wake_events:
        add(e, _WAKE)
    add("sched_process_fork", _FORK)
    add("sched_process_exit", _EXIT)
    add("irq_entry", _IN_IRQ)
    add("irq_exit", _OUT_IRQ)
    add("softirq_entry", _IN_SOFT)
    add("softirq_exit", _OUT_SOFT)
    add("hrtimer_entry", _IN_CTX)
    add("hrtimer_exit", _OUT_CTX)
    add("vec_entry", _IN_CTX)
    add("vec_exit", _OUT_CTX)
    b = _Builder()
    if seqs:
        seq = np.concatenate(seqs)
        src = np.concatenate([np.full(s.size, i, np.int16) for i, s in enumerate(seqs)])
        row = np.concatenate(rows)
        order = np.argsort(seq, kind="stable")
        src_l, row_l = src[order].tolist(), row[order].tolist()
        kind_of = [int(k[0]) for k in kinds]
        # per source, plain Python lists of the fields the loop needs
        lists: list[dict[str, list[Any]]] = []
        for ev in srcs:
            c = cols[ev]
            lists.append({f: v.tolist() for f, v in c.items() if f != "seq"})
        vec_label = _vector_labels(ts, cols.get("vec_entry"))
        for si, ri in zip(src_l, row_l, strict=True):
            d = lists[si]
            kind = kind_of[si]
            t = int(d["timestamp"][ri])
            cpu = int(d["cpu"][ri])
            if kind == _SWITCH:
                b.switch(t, cpu, int(d["prev_tid"][ri]), str(d["prev_comm"][ri] or ""),
                         int(d["prev_state"][ri]), int(d["next_tid"][ri]),
                         str(d["next_comm"][ri] or ""))
            elif kind == _WAKE:
                b.wake(t, cpu, int(d["tid"][ri]), str(d["comm"][ri] or ""))
            elif kind == _FORK:
                b.fork(t, int(d["parent_tid"][ri]), int(d["child_tid"][ri]),
                       str(d["child_comm"][ri] or ""))
            elif kind == _EXIT:
                b.exit(t, int(d["tid"][ri]))
            elif kind == _IN_IRQ:
                irq = int(d["irq"][ri])
                b.ctx.setdefault(cpu, []).append(EdgeType.INTERRUPTED if irq != 0 else EdgeType.TIMER)
            elif kind == _IN_SOFT:
                vec = int(d["vec"][ri])
                b.ctx.setdefault(cpu, []).append(SOFTIRQ_LABELS.get(vec, EdgeType.UNKNOWN))
            elif kind == _IN_CTX:
                if srcs[si] == "hrtimer_entry":
                    b.ctx.setdefault(cpu, []).append(EdgeType.TIMER)
                else:
                    b.ctx.setdefault(cpu, []).append(vec_label.get(int(d["gid"][ri]),
                                                                   EdgeType.INTERRUPTED))
            else:  # an exit of an interrupt context
                stack = b.ctx.get(cpu)
                if stack:
                    stack.pop()
    # close the chains of live tasks at the end of the trace
    for k in range(len(b.tids)):
        b.close(k, last_ts)
    return _finish(b, ts, first_ts, last_ts)


def _vector_labels(ts: TraceSet, cols: dict[str, np.ndarray] | None) -> dict[int, EdgeType]:
    out: dict[int, EdgeType] = {}
    if cols is None:
        return out
    for gid in np.unique(cols["gid"]).tolist():
        name = ts.classes[gid].name[len("x86_irq_vectors_"):-len("_entry")]
        if name in _IPI_VECTORS:
            out[gid] = EdgeType.IPI
        elif name == "local_timer":
            out[gid] = EdgeType.TIMER
        else:
            out[gid] = EdgeType.INTERRUPTED
    return out


def _finish(b: _Builder, ts: TraceSet, first_ts: int, last_ts: int) -> ExecutionGraph:
    task = np.array(b.e_task, np.int64)
    start = np.array(b.e_start, np.int64)
    order = np.lexsort((start, task))
    task = task[order]
    n_tasks = len(b.tids)
    offsets = np.searchsorted(task, np.arange(n_tasks + 1), side="left").astype(np.int64)
    hosts = sorted({tr.hostname for tr in ts.traces if tr.hostname})
    return ExecutionGraph(
        hostname=",".join(hosts),
        task_tid=np.array(b.tids, np.int64),
        task_comm=list(b.comms),
        task_creator=np.array(b.creator, np.int64),
        edge_task=task,
        edge_start=start[order],
        edge_end=np.array(b.e_end, np.int64)[order],
        edge_type=np.array(b.e_type, np.int8)[order],
        edge_waker=np.array(b.e_waker, np.int64)[order],
        offsets=offsets,
        first_ts=first_ts,
        last_ts=last_ts,
    )
