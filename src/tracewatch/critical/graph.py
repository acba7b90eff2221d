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

The columns are read with :func:`tracewatch.kernel.read_columns` (one pass), reduced to
integer columns (TIDs, interrupt labels) with NumPy, merged in trace order and run through a
JIT-compiled state machine (:mod:`._loop`); the edges end up in NumPy arrays sorted by
(task, start). Each graph also keeps every ``sched_switch`` (:meth:`ExecutionGraph.on_cpu`).
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
from ..errors import TracewatchError
from ..kernel.fast import intern_strings, texts
from ..kernel.layouts import detect_layout
from ..kernel.state import read_columns
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
    ``next_tid``, to tell which task held a CPU at a given time (:meth:`on_cpu`).
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


TimeMap = Callable[[str, np.ndarray, np.ndarray], np.ndarray]


def build_graph(ts: TraceSet, begin: int | None = None, end: int | None = None,
                time_map: TimeMap | None = None) -> ExecutionGraph:
    """The execution graph of the trace set ``ts`` (one machine), from its first event (state
    before ``begin`` matters) up to ``end`` (None: the end of the trace).

    ``time_map(event, timestamps, cpus)`` returns the times to use for the events of one
    logical event (``sched_switch``, ``sched_waking``, ``irq_entry``...), e.g. a guest's
    events put on its host's clock; ``end`` is on the trace's own clock.

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
    kc = read_columns(ts, layout, wanted, end=end, groups=groups, text="codes")
    if kc.first_ts is None or kc.last_ts is None:
        raise GraphError("the trace has no event")
    first_ts, last_ts = kc.first_ts, kc.last_ts
    cols = kc.events
    if time_map is not None:
        for ev, c in cols.items():
            c["timestamp"] = np.asarray(time_map(ev, c["timestamp"], c["cpu"]), np.int64)
        one = np.array([first_ts, last_ts], np.int64)
        first_ts, last_ts = (int(x) for x in time_map("", one, np.full(2, -1, np.int64)))
    if begin is not None:
        first_ts = min(first_ts, begin)

    # every event of interest as integer columns, merged in trace order
    parts: list[tuple[str, int, dict[str, np.ndarray]]] = []
    for ev, kd in (("sched_switch", _lp.SWITCH), *((e, _lp.WAKE) for e in wake_events),
                     ("sched_process_fork", _lp.FORK), ("sched_process_exit", _lp.EXIT),
                     ("irq_entry", _lp.CTX_IN), ("irq_exit", _lp.CTX_OUT),
                     ("softirq_entry", _lp.CTX_IN), ("softirq_exit", _lp.CTX_OUT),
                     ("hrtimer_entry", _lp.CTX_IN), ("hrtimer_exit", _lp.CTX_OUT),
                     ("vec_entry", _lp.CTX_IN), ("vec_exit", _lp.CTX_OUT)):
        got = cols.get(ev)
        if got is not None and got["seq"].size:
            parts.append((ev, kd, got))
    graph = _run_loop(ts, parts, first_ts, last_ts)
    sw = cols.get("sched_switch")
    if sw is not None and sw["seq"].size:
        order = np.argsort(sw["seq"], kind="stable")
        graph.switch_t = sw["timestamp"][order].astype(np.int64)
        graph.switch_cpu = sw["cpu"][order].astype(np.int64)
        graph.switch_tid = sw["next_tid"][order].astype(np.int64)
    return graph


_TID_FIELDS = {"sched_switch": ("prev_tid", "next_tid"), "sched_process_fork":
               ("parent_tid", "child_tid"), "sched_process_exit": ("tid",)}


def _i64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.int64)


def _merge_order(seq: np.ndarray) -> np.ndarray:
    """The order of distinct positions ``seq`` (a scatter when they are dense)."""
    if seq.size == 0:
        return np.zeros(0, np.int64)
    if int(seq.min()) >= 0 and int(seq.max()) < 4 * seq.size + 1024:
        return _lp.merge_order(seq)
    return np.argsort(seq, kind="stable")


def _run_loop(ts: TraceSet, parts: list[tuple[str, int, dict[str, np.ndarray]]],
              first_ts: int, last_ts: int) -> ExecutionGraph:
    """Reduce ``parts`` (logical event, loop kind, columns; text as interned codes) to
    integer columns, run the JIT-compiled loop, and turn its result into an
    :class:`ExecutionGraph`."""
    if not parts:
        return _graph(ts, first_ts, last_ts, [], np.zeros(0, np.int64), np.zeros(0, np.int64),
                      np.zeros(1, np.int64), [np.zeros(0, np.int64)] * 6)
    # TIDs index the loop's tables: as they are when small and non-negative, else compacted
    tid_cols = []
    for ev, k0, c in parts:
        fields = _TID_FIELDS.get(ev, ("tid",) if k0 == _lp.WAKE else ())
        tid_cols += [c[f] for f in fields]
    lo = min((int(x.min()) for x in tid_cols if x.size), default=0)
    hi = max((int(x.max()) for x in tid_cols if x.size), default=0)
    uniq: np.ndarray | None = None
    if lo >= 0 and hi < 1 << 23:
        n_tids, zero = hi + 1, 0
        n_distinct = n_tids
    else:
        uniq = np.unique(np.concatenate([_i64(x) for x in tid_cols]))
        n_tids = max(int(uniq.size), 1)
        zero = int(np.searchsorted(uniq, 0)) if 0 in uniq else -1
        n_distinct = int(uniq.size)

    def cid(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.int32) if uniq is None else \
            np.searchsorted(uniq, _i64(x)).astype(np.int32)

    # narrow dtypes: these columns are concatenated over millions of events
    cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                         ("seq", "kind", "t", "cpu", "a", "b", "c", "ca", "cc")}
    vec_label = _vector_labels(ts, next((c for ev, _, c in parts if ev == "vec_entry"), None))
    n_of = dict.fromkeys((_lp.SWITCH, _lp.WAKE, _lp.FORK, _lp.EXIT), 0)
    for ev, kd, c in parts:
        n = c["seq"].size
        zeros = np.zeros(n, np.int32)
        aa, cc, comm_a, comm_c = zeros, zeros, zeros, zeros
        bb = np.zeros(n, np.int8)
        if ev == "sched_switch":
            aa, cc = cid(c["prev_tid"]), cid(c["next_tid"])
            bb = (_i64(c["prev_state"]) & 3).astype(np.int8)
            comm_a, comm_c = c["prev_comm"], c["next_comm"]
        elif kd == _lp.WAKE:
            aa, comm_a = cid(c["tid"]), c["comm"]
        elif ev == "sched_process_exit":
            aa = cid(c["tid"])
        elif ev == "sched_process_fork":
            aa, cc, comm_a = cid(c["parent_tid"]), cid(c["child_tid"]), c["child_comm"]
        elif ev == "irq_entry":
            aa = np.where(c["irq"] != 0, int(EdgeType.INTERRUPTED), int(EdgeType.TIMER))
        elif ev == "softirq_entry":
            lut = np.full(max(int(c["vec"].max()) + 1, 16), int(EdgeType.UNKNOWN), np.int32)
            for v, lab in SOFTIRQ_LABELS.items():
                lut[v] = int(lab)
            aa = lut[np.clip(c["vec"].astype(np.int64), 0, lut.size - 1)]
        elif ev == "hrtimer_entry":
            aa = np.full(n, int(EdgeType.TIMER), np.int32)
        elif ev == "vec_entry":
            aa = np.array([int(vec_label.get(g, EdgeType.INTERRUPTED))
                           for g in c["gid"].tolist()], np.int32)
        if kd in n_of:
            n_of[kd] += n
        for name, arr in (("seq", c["seq"]), ("kind", np.full(n, kd, np.int8)),
                          ("t", c["timestamp"]), ("cpu", c["cpu"]), ("a", aa), ("b", bb),
                          ("c", cc), ("ca", comm_a), ("cc", comm_c)):
            cols[name].append(arr)
    dtypes = {"seq": np.int64, "kind": np.int8, "t": np.int64, "cpu": np.int32, "a": np.int32,
              "b": np.int8, "c": np.int32, "ca": np.int32, "cc": np.int32}
    col = {k: np.concatenate(v, dtype=dtypes[k], casting="unsafe") for k, v in cols.items()}
    n_new = 2 * n_of[_lp.SWITCH] + n_of[_lp.WAKE] + n_of[_lp.FORK]
    max_keys = min(n_new, n_distinct + n_of[_lp.EXIT] + 1) + 1
    max_edges = 2 * n_of[_lp.SWITCH] + n_of[_lp.WAKE] + max_keys + 1
    n_cpus = int(col["cpu"].max()) + 1 if col["cpu"].size else 1
    empty = int(intern_strings([""])[0])
    out = _lp.build_loop(_merge_order(col["seq"]), col["kind"], col["t"], col["cpu"], col["a"],
                         col["b"], col["c"], col["ca"], col["cc"], empty, n_tids, zero, n_cpus,
                         max_keys, max_edges, last_ts)
    k_tid = out[1] if uniq is None else uniq[out[1]]
    codes = out[3]
    known = codes >= 0
    comms = np.full(codes.size, "", object)
    comms[known] = texts(codes[known].astype(np.int32))
    return _graph(ts, first_ts, last_ts, [str(x) for x in comms.tolist()], k_tid, out[2],
                  out[4], list(out[5:]))


def _graph(ts: TraceSet, first_ts: int, last_ts: int, comms: list[str], k_tid: np.ndarray,
           creator: np.ndarray, offsets: np.ndarray, edges: list[np.ndarray]) -> ExecutionGraph:
    task, start, end, typ, waker, cpu = edges
    hosts = sorted({tr.hostname for tr in ts.traces if tr.hostname})
    return ExecutionGraph(
        hostname=",".join(hosts), task_tid=k_tid.astype(np.int64, copy=False), task_comm=comms,
        task_creator=creator.astype(np.int64, copy=False), edge_task=task, edge_start=start,
        edge_end=end, edge_type=typ.astype(np.int8, copy=False), edge_waker=waker,
        edge_cpu=cpu, offsets=offsets, first_ts=first_ts, last_ts=last_ts)


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
