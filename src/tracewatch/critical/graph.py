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

The trace is read batch by batch (:func:`tracewatch.kernel.iter_columns`, one pass, only
the classes used decoded); each batch's columns are reduced to integer columns (task ids,
interrupt labels, interned comms) with NumPy, put in trace order and run through a
JIT-compiled state machine that keeps its state between batches (:mod:`._loop`): the events
are not kept, only the edges, which end up in NumPy arrays sorted by (task, start). Each graph also keeps every ``sched_switch`` (:meth:`ExecutionGraph.on_cpu`).
``time_map`` puts the events on another clock (a guest's on its host's, :mod:`.cross`).
Imports :mod:`tracewatch.ctf` and :mod:`tracewatch.kernel`; never the CLI or outputs.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..ctf.trace import TraceSet
from ..errors import DecodeError, TracewatchError
from ..kernel.fast import intern_strings, texts
from ..kernel.layouts import KernelLayout, detect_layout
from ..kernel.state import ColumnsRestart, iter_columns
from . import _loop as _lp

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



@dataclass
class ExecutionGraph:
    """Chains of the tasks of one machine.

    Edges (arrays of equal length, sorted by task key then start; a task's edges are
    contiguous: ``edge_end[i] == edge_start[i + 1]`` within a chain): ``edge_task`` (key),
    ``edge_start``, ``edge_end`` (ns), ``edge_type`` (:class:`EdgeType` values) and
    ``edge_waker`` (key of the waking task for BLOCKED edges, else -1) and ``edge_cpu`` (the
    CPU of a RUNNING edge, the CPU of the wakeup that ended a wait, else -1). Task ``k``'s
    edges are ``offsets[k]:offsets[k + 1]``. Tasks: ``task_tid``, ``task_comm``,
    ``task_creator`` (key of the forking parent or -1), ``task_pid`` is not tracked.
    ``switch_t``, ``switch_cpu``, ``switch_tid``: every ``sched_switch`` (time order) with its
    ``next_tid``, to tell which task held a CPU at a given time (:meth:`on_cpu`). ``fault``:
    the decoding error that cut the trace short (built with ``partial=True``), else None.
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
    edge_cpu: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    switch_t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    switch_cpu: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    switch_tid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    fault: DecodeError | None = None
    _per_cpu: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.edge_cpu.size != self.edge_start.size:
            self.edge_cpu = np.full(self.edge_start.size, -1, np.int64)

    @functools.cached_property
    def _starts(self) -> list[int]:
        """``edge_start`` as a list (bisect on it is faster than NumPy calls per lookup)."""
        return self.edge_start.tolist()

    def cpu_timeline(self, cpu: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, next_tid) of the ``sched_switch`` events of ``cpu``, in time order."""
        got = self._per_cpu.get(cpu)
        if got is None:
            on = self.switch_cpu == cpu
            got = self._per_cpu[cpu] = (self.switch_t[on], self.switch_tid[on])
        return got

    def on_cpu(self, cpu: int, t: int) -> int:
        """TID running on ``cpu`` at time ``t`` (after the switches at ``t``; -1: unknown)."""
        ts, tids = self.cpu_timeline(cpu)
        k = int(np.searchsorted(ts, t, side="right")) - 1
        return int(tids[k]) if k >= 0 else -1

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


TimeMap = Callable[[str, np.ndarray, np.ndarray, np.ndarray], np.ndarray]

# logical events of the loop, in the order their columns are stacked, with their loop kind
_KINDS: tuple[tuple[str, int], ...] = (
    ("sched_switch", _lp.SWITCH), ("sched_waking", _lp.WAKE), ("sched_wakeup", _lp.WAKE),
    ("sched_wakeup_new", _lp.WAKE), ("sched_process_fork", _lp.FORK),
    ("sched_process_exit", _lp.EXIT), ("irq_entry", _lp.CTX_IN), ("irq_exit", _lp.CTX_OUT),
    ("softirq_entry", _lp.CTX_IN), ("softirq_exit", _lp.CTX_OUT),
    ("hrtimer_entry", _lp.CTX_IN), ("hrtimer_exit", _lp.CTX_OUT),
    ("vec_entry", _lp.CTX_IN), ("vec_exit", _lp.CTX_OUT))


def build_graph(ts: TraceSet, begin: int | None = None, end: int | None = None,
                time_map: TimeMap | None = None, partial: bool = False) -> ExecutionGraph:
    """The execution graph of the trace set ``ts`` (one machine), from its first event (state
    before ``begin`` matters) up to ``end`` (None: the end of the trace).

    ``time_map(event, timestamps, cpus, nth)`` returns the times to use for some events of
    one logical event (``sched_switch``, ``sched_waking``, ``irq_entry``...; ``nth``: the
    ordinal of each among the events of that logical event on its CPU, from 0), e.g. a
    guest's events put on its host's clock; ``end`` is on the trace's own clock. It is called
    chunk by chunk in trace order (and for the first and last times with event ``""``).

    The trace is read chunk by chunk (:func:`tracewatch.kernel.iter_columns`): only the
    edges are kept, not the events. A corrupt or truncated trace raises
    :class:`~tracewatch.errors.DecodeError`; with ``partial``, the graph of the events before
    the fault (those ``tracewatch dump`` prints) is returned, the error in its ``fault``. Raises :class:`~tracewatch.kernel.MissingEventsError`
    without ``sched_switch`` (without wakeup events every wait is ``UNKNOWN``)."""
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
    kinds = [(ev, kd) for ev, kd in _KINDS if ev in wanted]
    try:
        return _build(ts, layout, wanted, groups, kinds, begin, end, time_map, True, partial)
    except ColumnsRestart:  # a stream goes backwards, or a fault: read every event instead
        return _build(ts, layout, wanted, groups, kinds, begin, end, time_map, False, partial)


def _build(ts: TraceSet, layout: KernelLayout, wanted: dict[str, tuple[str, ...]],
           groups: dict[str, list[str]], kinds: list[tuple[str, int]], begin: int | None,
           end: int | None, time_map: TimeMap | None, skip: bool,
           partial: bool) -> ExecutionGraph:
    stream = iter_columns(ts, layout, wanted, end=end, groups=groups, text="codes", skip=skip,
                          partial=partial)
    ids = _TaskIds()
    loop = _lp.GraphLoop(ids.zero, int(intern_strings([""])[0]))
    nth: dict[str, np.ndarray] = {}
    switches: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    vec_label: dict[int, EdgeType] = {}
    for part in stream:
        cols: list[tuple[int, dict[str, np.ndarray]]] = []
        for ev, kd in kinds:
            c = part.events.get(ev)
            if c is None or c["seq"].size == 0:
                continue
            if time_map is not None:
                k, nth[ev] = _ordinals(nth.get(ev, np.zeros(0, np.int64)), c["cpu"])
                c = {**c, "timestamp": np.asarray(time_map(ev, c["timestamp"], c["cpu"], k),
                                                  np.int64)}
            if ev == "sched_switch":
                switches.append((c["timestamp"], c["cpu"], c["next_tid"]))
            if ev == "vec_entry":
                vec_label.update(_vector_labels(ts, c))
            cols.append((kd, _reduce(ev, kd, c, ids, vec_label)))
        if cols:
            _feed(loop, cols)
    if stream.first_ts is None or stream.last_ts is None:
        if stream.fault is not None:
            raise stream.fault
        raise GraphError("the trace has no event")
    first_ts, last_ts = stream.first_ts, stream.last_ts
    if time_map is not None:
        one = np.array([first_ts, last_ts], np.int64)
        first_ts, last_ts = (int(x) for x in time_map("", one, np.full(2, -1, np.int64),
                                                       np.arange(2, dtype=np.int64)))
    if begin is not None:
        first_ts = min(first_ts, begin)
    res = loop.finish(last_ts)
    codes = res.key_comm
    known = codes >= 0
    comms = np.full(codes.size, "", object)
    comms[known] = texts(codes[known].astype(np.int32))
    hosts = sorted({tr.hostname for tr in ts.traces if tr.hostname})
    task, start, end_, typ, waker, cpu = res.edges
    graph = ExecutionGraph(
        hostname=",".join(hosts), task_tid=ids.tids(res.key_tid),
        task_comm=[str(x) for x in comms.tolist()], task_creator=res.key_creator,
        edge_task=task, edge_start=start, edge_end=end_, edge_type=typ, edge_waker=waker,
        edge_cpu=cpu, offsets=res.offsets, first_ts=first_ts, last_ts=last_ts,
        fault=stream.fault)
    if switches:
        graph.switch_t, graph.switch_cpu, graph.switch_tid = (
            np.concatenate([s[i] for s in switches]).astype(np.int64) for i in range(3))
    return graph


class _TaskIds:
    """TIDs -> the loop's task ids (small, non-negative: they index its tables): ``tid + 1``
    for -1 <= tid < 2**23 (kernel TIDs; -1: a field the tracer did not record), others
    numbered from 2**23 + 1 in order of appearance."""

    LIMIT = 1 << 23
    zero = 1

    def __init__(self) -> None:
        self.extra: dict[int, int] = {}

    def ids(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.int64)
        if x.size == 0 or (int(x.min()) >= -1 and int(x.max()) < self.LIMIT):
            return (x + 1).astype(np.int32)
        out = x + 1
        odd = (x < -1) | (x >= self.LIMIT)
        u, inv = np.unique(x[odd], return_inverse=True)
        for v in u.tolist():
            self.extra.setdefault(v, self.LIMIT + 1 + len(self.extra))
        out[odd] = np.array([self.extra[v] for v in u.tolist()], np.int64)[inv]
        return out.astype(np.int32)

    def tids(self, ids: np.ndarray) -> np.ndarray:
        out = np.asarray(ids, np.int64) - 1
        big = ids > self.LIMIT
        if big.any():
            back = {i: t for t, i in self.extra.items()}
            out[big] = [back[int(i)] for i in ids[big].tolist()]
        return out


def _ordinals(counter: np.ndarray, cpu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ordinal of each event among those of its CPU so far, updated per-CPU counter)."""
    cpu = np.asarray(cpu, np.int64)
    ncpu = max(int(cpu.max()) + 1, counter.size)
    counter = np.concatenate([counter, np.zeros(ncpu - counter.size, np.int64)])
    order = np.argsort(cpu, kind="stable")
    sc = cpu[order]
    first = np.flatnonzero(np.concatenate([[True], sc[1:] != sc[:-1]]))
    lengths = np.diff(np.append(first, sc.size))
    rank = np.arange(sc.size) - np.repeat(first, lengths)
    out = np.empty(cpu.size, np.int64)
    out[order] = counter[sc] + rank
    return out, counter + np.bincount(cpu, minlength=ncpu)


def _reduce(ev: str, kd: int, c: dict[str, np.ndarray], ids: _TaskIds,
            vec_label: dict[int, EdgeType]) -> dict[str, np.ndarray]:
    """The loop's integer columns (a, b, c, ca, cc: see :mod:`._loop`) of one logical
    event's columns."""
    n = c["seq"].size
    out: dict[str, np.ndarray] = {}
    if ev == "sched_switch":
        out = {"a": ids.ids(c["prev_tid"]), "c": ids.ids(c["next_tid"]),
               "b": (np.asarray(c["prev_state"], np.int64) & 3).astype(np.int8),
               "ca": c["prev_comm"], "cc": c["next_comm"]}
    elif kd == _lp.WAKE:
        out = {"a": ids.ids(c["tid"]), "ca": c["comm"]}
    elif ev == "sched_process_exit":
        out = {"a": ids.ids(c["tid"])}
    elif ev == "sched_process_fork":
        out = {"a": ids.ids(c["parent_tid"]), "c": ids.ids(c["child_tid"]),
               "ca": c["child_comm"]}
    elif ev == "irq_entry":
        out = {"a": np.where(c["irq"] != 0, int(EdgeType.INTERRUPTED), int(EdgeType.TIMER))}
    elif ev == "softirq_entry":
        lut = np.full(max(int(c["vec"].max()) + 1, 16), int(EdgeType.UNKNOWN), np.int32)
        for v, lab in SOFTIRQ_LABELS.items():
            lut[v] = int(lab)
        out = {"a": lut[np.clip(c["vec"].astype(np.int64), 0, lut.size - 1)]}
    elif ev == "hrtimer_entry":
        out = {"a": np.full(n, int(EdgeType.TIMER), np.int32)}
    elif ev == "vec_entry":
        lut = np.full(int(c["gid"].max()) + 1, int(EdgeType.INTERRUPTED), np.int32)
        for g, lab in vec_label.items():
            if g < lut.size:
                lut[g] = int(lab)
        out = {"a": lut[c["gid"]]}
    out["seq"], out["t"], out["cpu"] = c["seq"], c["timestamp"], c["cpu"]
    return out


_LOOP_DTYPES = {"seq": np.int64, "t": np.int64, "cpu": np.int32, "a": np.int32, "b": np.int8,
                "c": np.int32, "ca": np.int32, "cc": np.int32}


def _feed(loop: _lp.GraphLoop, cols: list[tuple[int, dict[str, np.ndarray]]]) -> None:
    """Stack the reduced columns of one chunk's logical events in trace order; run them."""
    stacked: dict[str, np.ndarray] = {}
    for name, dt in _LOOP_DTYPES.items():
        stacked[name] = np.concatenate(
            [c[name] if name in c else np.zeros(c["seq"].size, dt) for _, c in cols],
            dtype=dt, casting="unsafe")
    kind = np.concatenate([np.full(c["seq"].size, kd, np.int8) for kd, c in cols])
    seq = stacked.pop("seq")
    if len(cols) > 1:
        order = _merge_order(seq)
        kind = kind[order]
        stacked = {k: v[order] for k, v in stacked.items()}
    loop.feed(kind, stacked["t"], stacked["cpu"], stacked["a"], stacked["b"], stacked["c"],
              stacked["ca"], stacked["cc"])


def _merge_order(seq: np.ndarray) -> np.ndarray:
    """The order of distinct positions ``seq`` (a scatter when they are dense)."""
    if seq.size == 0:
        return np.zeros(0, np.int64)
    if int(seq.max()) - int(seq.min()) < 4 * seq.size + 1024:
        return _lp.merge_order(seq)
    return np.argsort(seq, kind="stable")


def _vector_labels(ts: TraceSet, cols: dict[str, np.ndarray]) -> dict[int, EdgeType]:
    """The label of each x86_irq_vectors_*_entry class present in ``cols`` (by ``gid``)."""
    out: dict[int, EdgeType] = {}
    for gid in np.unique(cols["gid"]).tolist():
        name = ts.classes[gid].name[len("x86_irq_vectors_"):-len("_entry")]
        if name in _IPI_VECTORS:
            out[gid] = EdgeType.IPI
        elif name == "local_timer":
            out[gid] = EdgeType.TIMER
        else:
            out[gid] = EdgeType.INTERRUPTED
    return out
