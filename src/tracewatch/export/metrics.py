"""The exported metric set: one window's analysis results of one host as flat samples.

Owns the metric names (Prometheus and Graphite), their definitions and the cardinality
bound. Imports :mod:`tracewatch.analyses` only (the result types are duck-typed: a
:class:`~tracewatch.analyses.periodic.PeriodResult` or the offline ``*_periods`` results).

A :class:`Sample` has a Prometheus name (``tracewatch_`` prefix, snake_case, base units:
seconds, ratio; ``_total`` for counters), labels (always ``host``), a value, the window's
end as timestamp (ns) and a Graphite path ``(analysis, entity, leaf)`` that
:func:`graphite_path` makes ``tracewatch.<host>.<analysis>.<entity>.<leaf>``.

Kinds: a *gauge* is the window's value; a *counter*'s value is the window's increase (what
happened during it): Graphite stores it per window, the Prometheus endpoint adds the
increases up into a monotonic total. Counters are kept for entities whose number the
kernel bounds (the host, system call names, IRQ lines and vectors, event names); per
thread or process values are gauges of the window, and only the ``top`` first (by CPU
time, total scheduling latency, system calls) are given, plus one ``other`` aggregate of the
rest, so that a host with thousands of threads makes at most ``top + 1`` series per metric.

Metrics (Graphite leaf in parentheses; per window):

=================================================  ========  ===========================================
Prometheus name {labels}                           kind      Graphite path after ``tracewatch.<host>.``
=================================================  ========  ===========================================
tracewatch_window_start_seconds                    gauge     trace.window.start_seconds
tracewatch_window_end_seconds                      gauge     trace.window.end_seconds
tracewatch_events_total                            counter   trace.events.count
tracewatch_discarded_events_total                  counter   trace.events.discarded
tracewatch_late_events_total                       counter   trace.events.late
tracewatch_live_lag_seconds                        gauge     trace.live.lag_seconds (live only)
tracewatch_events_by_name_total {event}            counter   count.<event>.count
tracewatch_host_cpu_usage_ratio                    gauge     cputop.all.usage_ratio
tracewatch_cpu_usage_ratio {cpu}                   gauge     cputop.cpu<N>.usage_ratio
tracewatch_task_cpu_usage_ratio {tid, comm}        gauge     cputop.<comm>-<tid>.task_usage_ratio
tracewatch_sched_wakeups_total                     counter   sched.all.wakeups
tracewatch_sched_latency_avg_seconds               gauge     sched.all.latency_avg_seconds
tracewatch_sched_latency_max_seconds               gauge     sched.all.latency_max_seconds
tracewatch_sched_latency_p99_seconds               gauge     sched.all.latency_p99_seconds
tracewatch_task_sched_wakeups {tid, comm}          gauge     sched.<comm>-<tid>.task_wakeups
tracewatch_task_sched_latency_avg_seconds {..}     gauge     sched.<comm>-<tid>.task_latency_avg_seconds
tracewatch_task_sched_latency_max_seconds {..}     gauge     sched.<comm>-<tid>.task_latency_max_seconds
tracewatch_syscalls_total                          counter   syscalls.all.calls
tracewatch_syscall_calls_total {syscall}           counter   syscalls.<syscall>.calls
tracewatch_syscall_errors_total {syscall}          counter   syscalls.<syscall>.errors
tracewatch_syscall_latency_avg_seconds {syscall}   gauge     syscalls.<syscall>.latency_avg_seconds
tracewatch_syscall_latency_max_seconds {syscall}   gauge     syscalls.<syscall>.latency_max_seconds
tracewatch_process_syscalls {pid, comm}            gauge     syscalls.<comm>-<pid>.process_calls
tracewatch_irq_handled_total {kind, irq, name}     counter   irq.<entity>.count
tracewatch_irq_duration_seconds_total {..}         counter   irq.<entity>.duration_seconds
tracewatch_irq_duration_avg_seconds {..}           gauge     irq.<entity>.duration_avg_seconds
tracewatch_irq_duration_max_seconds {..}           gauge     irq.<entity>.duration_max_seconds
=================================================  ========  ===========================================

Definitions: ratios are those of cputop (CPU time over the window's first-to-last event
duration); ``other`` tasks' ratio is their summed CPU time over that duration. Scheduling
latencies are sched's (wakeup to switch-in); tasks are ranked by total latency (sum), the
p99 is the nearest-rank 99th percentile (the smallest latency at least 99 % of them do not
exceed); ``other``'s average is over all its latencies, its maximum theirs. System call
statistics per name are over every thread (exact integer sums); processes (threads grouped
by pid, a thread of unknown pid being its own process; name: the main thread's, else its
first thread's) are ranked by calls. IRQ entities: ``irq<N>-<name>`` (hard, kind="hard",
irq=N, name=the device) and ``softirq<V>-<NAME>`` (kind="soft", irq=vector); there are few,
every one is given. Statistics without a value (no latency in the window) are left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DEFAULT_TOP", "METRICS", "MetricInfo", "Sample", "window_samples", "result_samples",
           "sanitize_component", "graphite_path", "graphite_timestamp", "OTHER"]

#: tasks / processes given per window (plus the ``other`` aggregate)
DEFAULT_TOP = 10
#: label value and Graphite entity of the aggregate of the tasks beyond the top N
OTHER = "other"
_NS = 1e-9


@dataclass(frozen=True)
class MetricInfo:
    """A metric's kind (``gauge`` or ``counter``), label names and help text."""

    kind: str
    labels: tuple[str, ...]
    help: str


def _m(kind: str, labels: str, help_: str) -> MetricInfo:
    return MetricInfo(kind, ("host", *labels.split()), help_)


_TASK = "tid comm"
_IRQ = "kind irq name"

#: every metric this module makes, by Prometheus name
METRICS: dict[str, MetricInfo] = {
    "tracewatch_window_start_seconds": _m("gauge", "", "Start of the latest analysed window (trace clock, seconds since the epoch)."),
    "tracewatch_window_end_seconds": _m("gauge", "", "End of the latest analysed window (trace clock, seconds since the epoch)."),
    "tracewatch_events_total": _m("counter", "", "Events read from the trace."),
    "tracewatch_discarded_events_total": _m("counter", "", "Events discarded by the tracer (lost in full ring buffers)."),
    "tracewatch_late_events_total": _m("counter", "", "Events older than the window being filled (a stream found late), left out."),
    "tracewatch_live_lag_seconds": _m("gauge", "", "Wall clock when the window's results were exported minus the window's end."),
    "tracewatch_events_by_name_total": _m("counter", "event", "Events read, per event name (count analysis)."),
    "tracewatch_host_cpu_usage_ratio": _m("gauge", "", "Mean CPU usage of the host's CPUs over the window (0..1)."),
    "tracewatch_cpu_usage_ratio": _m("gauge", "cpu", "CPU usage (non-idle time ratio) of a CPU over the window."),
    "tracewatch_task_cpu_usage_ratio": _m("gauge", _TASK, "CPU usage of a thread over the window (top N threads, tid=\"other\": the rest)."),
    "tracewatch_sched_wakeups_total": _m("counter", "", "Scheduling latencies (wakeup to switch-in) measured."),
    "tracewatch_sched_latency_avg_seconds": _m("gauge", "", "Mean scheduling latency over the window."),
    "tracewatch_sched_latency_max_seconds": _m("gauge", "", "Longest scheduling latency over the window."),
    "tracewatch_sched_latency_p99_seconds": _m("gauge", "", "99th percentile (nearest rank) of the scheduling latencies over the window."),
    "tracewatch_task_sched_wakeups": _m("gauge", _TASK, "Scheduling latencies of a thread in the window (top N by total latency)."),
    "tracewatch_task_sched_latency_avg_seconds": _m("gauge", _TASK, "Mean scheduling latency of a thread over the window."),
    "tracewatch_task_sched_latency_max_seconds": _m("gauge", _TASK, "Longest scheduling latency of a thread over the window."),
    "tracewatch_syscalls_total": _m("counter", "", "System calls completed."),
    "tracewatch_syscall_calls_total": _m("counter", "syscall", "Calls of a system call (every thread)."),
    "tracewatch_syscall_errors_total": _m("counter", "syscall", "Calls of a system call that returned an error (< 0)."),
    "tracewatch_syscall_latency_avg_seconds": _m("gauge", "syscall", "Mean duration of a system call over the window."),
    "tracewatch_syscall_latency_max_seconds": _m("gauge", "syscall", "Longest call of a system call over the window."),
    "tracewatch_process_syscalls": _m("gauge", "pid comm", "System calls of a process in the window (top N processes, pid=\"other\": the rest)."),
    "tracewatch_irq_handled_total": _m("counter", _IRQ, "Interrupts handled (kind hard: IRQ line, soft: softirq vector)."),
    "tracewatch_irq_duration_seconds_total": _m("counter", _IRQ, "Time spent in the interrupt's handler."),
    "tracewatch_irq_duration_avg_seconds": _m("gauge", _IRQ, "Mean handler duration of the interrupt over the window."),
    "tracewatch_irq_duration_max_seconds": _m("gauge", _IRQ, "Longest handler duration of the interrupt over the window."),
}


@dataclass(frozen=True)
class Sample:
    """One value of one metric for one window of one host.

    ``name``: Prometheus name (a key of :data:`METRICS`); ``labels``: label name -> value
    (text), in the metric's label order; ``value``; ``timestamp_ns``: the window's end;
    ``path``: (analysis, entity, leaf) of the Graphite path (not sanitized).
    """

    name: str
    labels: dict[str, str]
    value: float
    timestamp_ns: int
    path: tuple[str, str, str] = field(default=("", "", ""))

    @property
    def kind(self) -> str:
        return METRICS[self.name].kind

    @property
    def host(self) -> str:
        return self.labels["host"]


_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def sanitize_component(text: str) -> str:
    """A Graphite path component: every character but letters, digits, ``_`` and ``-`` (dots,
    spaces, slashes, colons...) becomes ``_``; empty text becomes ``_``."""
    return _UNSAFE.sub("_", text) or "_"


def graphite_path(s: Sample, prefix: str = "tracewatch") -> str:
    """``<prefix>.<host>.<analysis>.<entity>.<leaf>``, each component sanitized."""
    return ".".join([prefix, *(sanitize_component(c) for c in (s.host, *s.path))])


def graphite_timestamp(timestamp_ns: int) -> int:
    """Graphite's timestamp of a sample: whole seconds (floor)."""
    return int(timestamp_ns) // 1_000_000_000


class _Out:
    """Collects the samples of one window (host and timestamp fixed)."""

    def __init__(self, host: str, ts: int) -> None:
        self.host, self.ts = host, int(ts)
        self.samples: list[Sample] = []

    def add(self, metric: str, value: float, path: tuple[str, str, str], /, **labels: Any) -> None:
        v = float(value)
        if math.isnan(v):
            return
        info = METRICS[metric]
        lab = {"host": self.host, **{k: str(labels[k]) for k in info.labels[1:]}}
        self.samples.append(Sample(metric, lab, v, self.ts, path))


def window_samples(p: Any, host: str, top: int = DEFAULT_TOP, lag_s: float | None = None) -> list[Sample]:
    """The samples of one :class:`~tracewatch.analyses.periodic.PeriodResult` of ``host``:
    the window's bounds and event counts, then each analysis' metrics
    (:func:`result_samples`), all stamped with the window's end. ``lag_s``: the live lag
    (see ``tracewatch_live_lag_seconds``), when following a live session."""
    out = _Out(host, p.end)
    out.add("tracewatch_window_start_seconds", p.begin * _NS, ("trace", "window", "start_seconds"))
    out.add("tracewatch_window_end_seconds", p.end * _NS, ("trace", "window", "end_seconds"))
    out.add("tracewatch_events_total", p.n_events, ("trace", "events", "count"))
    out.add("tracewatch_discarded_events_total", sum(p.discarded.values()), ("trace", "events", "discarded"))
    out.add("tracewatch_late_events_total", p.late, ("trace", "events", "late"))
    if lag_s is not None:
        out.add("tracewatch_live_lag_seconds", lag_s, ("trace", "live", "lag_seconds"))
    for name, r in p.results.items():
        out.samples += result_samples(name, r, host, p.end, top)
    return out.samples


def result_samples(analysis: str, r: Any, host: str, end_ns: int, top: int = DEFAULT_TOP) -> list[Sample]:
    """The samples of one analysis result (``count``: a CountResult; ``cputop``,
    ``sched``, ``syscalls``, ``irq``: their result types) of ``host`` for the window ending
    at ``end_ns``. An unknown analysis gives no sample."""
    if top < 0:
        raise ValueError("top must be >= 0")
    out = _Out(host, end_ns)
    fn = _BY_ANALYSIS.get(analysis)
    if fn is not None:
        fn(out, r, top)
    return out.samples


# ---------------------------------------------------------------------------------------------


def _count(out: _Out, r: Any, top: int) -> None:
    for name, n in zip(r.per_name["name"].tolist(), r.per_name["count"].tolist(), strict=True):
        out.add("tracewatch_events_by_name_total", n, ("count", str(name), "count"), event=name)


def _task_entity(comm: Any, tid: Any) -> str:
    return f"{comm}-{tid}"


def _cputop(out: _Out, r: Any, top: int) -> None:
    out.add("tracewatch_host_cpu_usage_ratio", r.total, ("cputop", "all", "usage_ratio"))
    for cpu, ratio in zip(r.per_cpu["cpu"].tolist(), r.per_cpu["ratio"].tolist(), strict=True):
        out.add("tracewatch_cpu_usage_ratio", ratio, ("cputop", f"cpu{cpu}", "usage_ratio"), cpu=cpu)
    t = r.per_tid  # most CPU time first
    n = min(top, t.nrows)
    for tid, comm, ratio in zip(t["tid"][:n].tolist(), t["comm"][:n].tolist(), t["ratio"][:n].tolist(),
                                strict=True):
        out.add("tracewatch_task_cpu_usage_ratio", ratio,
                ("cputop", _task_entity(comm, tid), "task_usage_ratio"), tid=tid, comm=comm)
    duration = r.end - r.begin
    rest = int(t["usage_ns"][n:].sum())
    out.add("tracewatch_task_cpu_usage_ratio", rest / duration if duration > 0 else 0.0,
            ("cputop", OTHER, "task_usage_ratio"), tid=OTHER, comm=OTHER)


def nearest_rank(values: np.ndarray, q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1): the smallest value that at least
    ``q`` of the values do not exceed; NaN without values."""
    if values.size == 0:
        return float("nan")
    k = max(1, math.ceil(q * values.size))
    return float(np.partition(values, k - 1)[k - 1])


def _sched(out: _Out, r: Any, top: int) -> None:
    lat = r.latencies["latency_ns"].astype(np.int64)
    out.add("tracewatch_sched_wakeups_total", lat.size, ("sched", "all", "wakeups"))
    if lat.size:
        out.add("tracewatch_sched_latency_avg_seconds", int(lat.sum()) / lat.size * _NS,
                ("sched", "all", "latency_avg_seconds"))
        out.add("tracewatch_sched_latency_max_seconds", int(lat.max()) * _NS, ("sched", "all", "latency_max_seconds"))
        out.add("tracewatch_sched_latency_p99_seconds", nearest_rank(lat, 0.99) * _NS,
                ("sched", "all", "latency_p99_seconds"))
    # per thread, from the latencies (exact sums): top N by total latency
    tids = r.latencies["tid"].astype(np.int64)
    utid, inv = np.unique(tids, return_inverse=True)
    count = np.bincount(inv, minlength=utid.size)
    total = np.zeros(utid.size, np.int64)
    np.add.at(total, inv, lat)
    mx = np.zeros(utid.size, np.int64)
    np.maximum.at(mx, inv, lat)
    comm_of = dict(zip(r.per_tid["tid"].tolist(), r.per_tid["comm"].tolist(), strict=True))
    order = np.lexsort((utid, -total))
    head, rest = order[:top], order[top:]
    for i in head.tolist():
        tid = int(utid[i])
        comm = comm_of.get(tid, "")
        ent = ("sched", _task_entity(comm, tid))
        out.add("tracewatch_task_sched_wakeups", count[i], (*ent, "task_wakeups"), tid=tid, comm=comm)
        out.add("tracewatch_task_sched_latency_avg_seconds", int(total[i]) / int(count[i]) * _NS,
                (*ent, "task_latency_avg_seconds"), tid=tid, comm=comm)
        out.add("tracewatch_task_sched_latency_max_seconds", int(mx[i]) * _NS,
                (*ent, "task_latency_max_seconds"), tid=tid, comm=comm)
    n_rest = int(count[rest].sum())
    ent = ("sched", OTHER)
    out.add("tracewatch_task_sched_wakeups", n_rest, (*ent, "task_wakeups"), tid=OTHER, comm=OTHER)
    if n_rest:
        out.add("tracewatch_task_sched_latency_avg_seconds", int(total[rest].sum()) / n_rest * _NS,
                (*ent, "task_latency_avg_seconds"), tid=OTHER, comm=OTHER)
        out.add("tracewatch_task_sched_latency_max_seconds", int(mx[rest].max()) * _NS,
                (*ent, "task_latency_max_seconds"), tid=OTHER, comm=OTHER)


def _syscalls(out: _Out, r: Any, top: int) -> None:
    calls = r.calls
    out.add("tracewatch_syscalls_total", calls.nrows, ("syscalls", "all", "calls"))
    if calls.nrows:
        names, inv = np.unique(calls["syscall"].astype(str), return_inverse=True)
        dur = calls["duration_ns"].astype(np.int64)
        count = np.bincount(inv, minlength=names.size)
        errors = np.bincount(inv, weights=(calls["ret"].astype(np.int64) < 0), minlength=names.size)
        total = np.zeros(names.size, np.int64)
        np.add.at(total, inv, dur)
        mx = np.zeros(names.size, np.int64)
        np.maximum.at(mx, inv, dur)
        for i, name in enumerate(names.tolist()):
            ent = ("syscalls", name)
            out.add("tracewatch_syscall_calls_total", count[i], (*ent, "calls"), syscall=name)
            out.add("tracewatch_syscall_errors_total", errors[i], (*ent, "errors"), syscall=name)
            out.add("tracewatch_syscall_latency_avg_seconds", int(total[i]) / int(count[i]) * _NS,
                    (*ent, "latency_avg_seconds"), syscall=name)
            out.add("tracewatch_syscall_latency_max_seconds", int(mx[i]) * _NS,
                    (*ent, "latency_max_seconds"), syscall=name)
    # per process (threads grouped by pid): top N by calls
    t = r.per_tid
    if t.nrows == 0:
        out.add("tracewatch_process_syscalls", 0, ("syscalls", OTHER, "process_calls"), pid=OTHER, comm=OTHER)
        return
    tid, pid = t["tid"].astype(np.int64), t["pid"].astype(np.int64)
    ppid = np.where(pid >= 0, pid, tid)
    upid, first, inv = np.unique(ppid, return_index=True, return_inverse=True)
    pcount = np.bincount(inv, weights=t["count"].astype(np.int64), minlength=upid.size).astype(np.int64)
    comms = t["comm"]
    main = {int(x): c for x, c in zip(tid.tolist(), comms.tolist(), strict=True)}
    pcomm = [main.get(int(u), comms[f]) for u, f in zip(upid.tolist(), first.tolist(), strict=True)]
    order = np.lexsort((upid, -pcount))
    head, rest = order[:top], order[top:]
    for i in head.tolist():
        p_, c_ = int(upid[i]), pcomm[i]
        out.add("tracewatch_process_syscalls", pcount[i], ("syscalls", _task_entity(c_, p_), "process_calls"),
                pid=p_, comm=c_)
    out.add("tracewatch_process_syscalls", int(pcount[rest].sum()), ("syscalls", OTHER, "process_calls"),
            pid=OTHER, comm=OTHER)


def _irq(out: _Out, r: Any, top: int) -> None:
    for table, kind, key, prefix in ((r.hard, "hard", "irq", "irq"), (r.soft, "soft", "vec", "softirq")):
        for x in table.rows():
            nr, name, count = int(x[key]), str(x["name"]), int(x["count"])
            ent = ("irq", f"{prefix}{nr}-{name}")
            lab = {"kind": kind, "irq": nr, "name": name}
            out.add("tracewatch_irq_handled_total", count, (*ent, "count"), **lab)
            m = (r.log["hard"] == (kind == "hard")) & (r.log["nr"] == nr)
            out.add("tracewatch_irq_duration_seconds_total", int(r.log["duration_ns"][m].astype(np.int64).sum()) * _NS,
                    (*ent, "duration_seconds"), **lab)
            if count:
                out.add("tracewatch_irq_duration_avg_seconds", x["avg_ns"] * _NS, (*ent, "duration_avg_seconds"), **lab)
                out.add("tracewatch_irq_duration_max_seconds", x["max_ns"] * _NS, (*ent, "duration_max_seconds"), **lab)


_BY_ANALYSIS: Mapping[str, Any] = {"count": _count, "cputop": _cputop, "sched": _sched,
                                   "syscalls": _syscalls, "irq": _irq}
