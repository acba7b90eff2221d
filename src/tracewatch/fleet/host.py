"""The work done for one host of a fleet (a Dask task, or a step of the local loop).

:func:`analyze_host` opens the host's traces, reads them *once* (one
:func:`~tracewatch.kernel.state.read_columns` pass over the union of the columns the chosen
analyses need) and runs each analysis' ``*_from_columns`` function on a view holding only the
logical events that analysis reads itself, so that each result equals the one of the
analysis' own function (:func:`~tracewatch.analyses.cputop.cputop`, ``sched_latencies``,
``syscall_stats``, ``irq_stats``, or their ``*_periods`` variants with a period) on that
host's traces. It returns a :class:`HostResult`: result tables (NumPy columns, no trace
set, no thread table: small and picklable) and the host's summary rows.

Errors never escape: a corrupt or truncated trace gives the results over the events read
before the fault (what ``tracewatch dump`` prints, as the analysis commands do) and the
fault's one-line message in :attr:`HostResult.error`; so do unreadable metadata, missing
events (that analysis left out) and bugs (``internal error: Type: message``).

The columns are those each analysis module says it reads (``needed_columns``).

Owns :class:`HostResult`, :data:`ANALYSES`, :data:`DETAIL_TABLES` and the summary row's
definition. Imports :mod:`tracewatch.ctf`, :mod:`tracewatch.kernel`,
:mod:`tracewatch.analyses`, :mod:`tracewatch.export` (the nearest-rank percentile of the
exported metrics) and :mod:`tracewatch.errors`; no Dask, no pandas.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analyses import Table
from ..analyses.cputop import CputopResult, cputop_from_columns
from ..analyses.cputop import needed_columns as cputop_columns
from ..analyses.irq import IrqResult, irq_from_columns, irq_layout
from ..analyses.irq import needed_columns as irq_columns
from ..analyses.sched import SchedResult, sched_from_columns
from ..analyses.sched import needed_columns as sched_columns
from ..analyses.syscalls import SyscallsResult, syscalls_from_columns
from ..analyses.syscalls import needed_columns as syscalls_columns
from ..ctf.trace import TraceSet
from ..errors import TracewatchError
from ..export.metrics import nearest_rank
from ..kernel.layouts import KernelLayout, MissingEventsError
from ..kernel.state import ColumnSpec, KernelColumns, period_windows, read_columns
from .discover import HostTraces

__all__ = ["ANALYSES", "DETAIL_TABLES", "TABLES", "HostResult", "analyze_host", "error_line"]

#: the analyses a fleet runs (all by default)
ANALYSES = ("cputop", "sched", "syscalls", "irq")

#: per analysis, the tables it gives (``ANALYSIS.TABLE``)
TABLES: dict[str, tuple[str, ...]] = {
    "cputop": ("cputop.per_tid", "cputop.per_process", "cputop.per_cpu"),
    "sched": ("sched.per_tid", "sched.latencies"),
    "syscalls": ("syscalls.per_tid", "syscalls.per_syscall", "syscalls.calls"),
    "irq": ("irq.hard", "irq.soft", "irq.log"),
}

#: tables of one row per event (latency, call, interrupt): only with ``detail=True``
DETAIL_TABLES = frozenset({"sched.latencies", "syscalls.calls", "irq.log"})


@dataclass
class HostResult:
    """What a fleet task returns for one host.

    ``rows``: its summary rows (one for the whole range, or one per window with a period;
    none when nothing could be read); ``tables``: name -> the rows of every window (with
    ``period_begin``/``period_end`` columns first with a period), without a host column;
    ``error``: one line (the fault, missing events...; several joined by ``"; "``), None
    when the host was analysed entirely; ``warnings``: the trace reader's;
    ``seconds``: wall time of the task; ``worker``: ``MACHINE:PID`` of the process that ran it."""

    host: HostTraces
    rows: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    worker: str = ""


def error_line(e: BaseException) -> str:
    """The one line the CLI prints for ``e`` after ``tracewatch: error: `` (a
    :class:`~tracewatch.errors.TracewatchError`), or ``internal error: Type: message`` (a bug)."""
    text = str(e) if isinstance(e, TracewatchError) else f"internal error: {type(e).__name__}: {e}"
    return " ".join(text.split("\n"))


def _spec(name: str, ts: TraceSet, layout: KernelLayout, periodic: bool) -> ColumnSpec:
    """The columns of ``name``, as the analysis reads them itself (raises
    :class:`MissingEventsError` as the analysis does)."""
    if name == "cputop":
        return cputop_columns(layout)
    if name == "sched":  # sched_latencies reads names, sched_periods does not
        return sched_columns(layout, names=not periodic)
    if name == "syscalls":
        return syscalls_columns(ts, layout)
    if name == "irq":
        return irq_columns(layout)
    raise ValueError(f"unknown analysis {name!r}; choose among {', '.join(ANALYSES)}")


def _view(kc: KernelColumns, spec: ColumnSpec) -> KernelColumns:
    """``kc`` with only the logical events ``spec`` reads (their columns may hold more
    fields): what the analysis' own read would have given it."""
    keep = spec.events
    return dataclasses.replace(kc, events={k: v for k, v in kc.events.items() if k in keep})


def _run(name: str, kc: KernelColumns, class_names: list[str]) -> Any:
    if name == "cputop":
        return cputop_from_columns(kc)
    if name == "sched":
        return sched_from_columns(kc)
    if name == "syscalls":
        return syscalls_from_columns(kc, class_names)
    return irq_from_columns(kc)


def _tables(name: str, r: Any) -> dict[str, Table]:
    if name == "cputop":
        return {"cputop.per_tid": r.per_tid, "cputop.per_process": r.per_process, "cputop.per_cpu": r.per_cpu}
    if name == "sched":
        return {"sched.per_tid": r.per_tid, "sched.latencies": r.latencies}
    if name == "syscalls":
        return {"syscalls.per_tid": r.per_tid, "syscalls.per_syscall": r.per_syscall, "syscalls.calls": r.calls}
    return {"irq.hard": r.hard, "irq.soft": r.soft, "irq.log": r.log}


def _nan_if_empty(v: np.ndarray, f: Any) -> float:
    return float(f(v)) if v.size else math.nan


def summary_values(name: str, r: Any) -> dict[str, Any]:
    """The summary columns of one analysis result (see :data:`SUMMARY_COLUMNS`)."""
    if isinstance(r, CputopResult):
        t = r.per_tid
        top = t.nrows > 0
        return {"cpu_usage": r.total, "cpus": r.per_cpu.nrows,
                "top_task": str(t["comm"][0]) if top else None,
                "top_tid": int(t["tid"][0]) if top else None,
                "top_task_usage": float(t["ratio"][0]) if top else math.nan}
    if isinstance(r, SchedResult):
        lat = r.latencies["latency_ns"].astype(np.int64)
        return {"sched_wakeups": int(lat.size),
                "sched_avg_ns": int(lat.sum()) / lat.size if lat.size else math.nan,
                "sched_p99_ns": nearest_rank(lat, 0.99),
                "sched_max_ns": _nan_if_empty(lat, np.max)}
    if isinstance(r, SyscallsResult):
        d = r.end - r.begin
        return {"syscalls": int(r.total), "syscalls_per_s": r.total / (d * 1e-9) if d > 0 else math.nan}
    if isinstance(r, IrqResult):
        return {"irqs": int(r.hard["count"].sum()) + int(r.soft["count"].sum()),
                "irq_ns": int(r.log["duration_ns"].astype(np.int64).sum())}
    raise TypeError(f"no summary for {name}")


#: per analysis, its summary columns: CPU usage (cputop's total: mean per-CPU ratio), CPUs
#: seen, the task with the most CPU time (name, tid, ratio); wakeup latencies (count, mean,
#: nearest-rank p99, max; ns); system calls (count, per second of the range); interrupts
#: handled (hard and soft) and the sum of their durations (ns)
SUMMARY_COLUMNS: dict[str, tuple[str, ...]] = {
    "cputop": ("cpu_usage", "cpus", "top_task", "top_tid", "top_task_usage"),
    "sched": ("sched_wakeups", "sched_avg_ns", "sched_p99_ns", "sched_max_ns"),
    "syscalls": ("syscalls", "syscalls_per_s"),
    "irq": ("irqs", "irq_ns"),
}


def _concat(parts: list[Table]) -> Table:
    if len(parts) == 1:
        return parts[0]
    cols = parts[0].columns
    return Table({k: np.concatenate([p[k] for p in parts]) for k in cols})


def analyze_host(host: HostTraces, analyses: Sequence[str] = ANALYSES, begin: int | None = None,
                 end: int | None = None, period: int | None = None,
                 detail: bool = False) -> HostResult:
    """Run ``analyses`` on the traces of ``host`` over [begin, end] (ns since the epoch;
    None: whole trace), one result per window of ``period`` ns when given (see the module
    doc). ``detail``: also the tables of one row per event (:data:`DETAIL_TABLES`).
    Never raises for a bad trace: see :attr:`HostResult.error`."""
    t0 = time.perf_counter()
    out = HostResult(host, worker=f"{socket.gethostname()}:{os.getpid()}")
    errors: list[str] = []
    try:
        _analyze(out, errors, list(dict.fromkeys(analyses)), begin, end, period, detail)
    except Exception as e:  # a host must not sink the fleet: bugs are reported too
        errors.append(error_line(e))
    out.error = "; ".join(dict.fromkeys(errors)) or None
    out.seconds = time.perf_counter() - t0
    return out


def _analyze(out: HostResult, errors: list[str], analyses: list[str], begin: int | None,
             end: int | None, period: int | None, detail: bool) -> None:
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown:
        raise ValueError(f"unknown analysis {', '.join(unknown)}; choose among {', '.join(ANALYSES)}")
    ts = TraceSet(list(out.host.paths), on_warning=out.warnings.append)
    layout = irq_layout(ts)
    specs: dict[str, ColumnSpec] = {}
    for a in analyses:
        try:
            specs[a] = _spec(a, ts, layout, period is not None)
        except MissingEventsError as e:
            errors.append(error_line(e))
    if not specs:
        return
    first, *rest = specs.values()
    u = first.union(*rest)
    kc = read_columns(ts, layout, u.wanted, begin, end, groups=u.groups or None, period=period,
                      text="codes", partial=True)
    if kc.fault is not None:
        errors.insert(0, error_line(kc.fault))
    names = [c.name for c in ts.classes]
    if period is None:
        windows: list[tuple[int | None, int | None, KernelColumns]] = [(None, None, kc)]
    elif kc.origin is None:
        windows = []  # no event in the range (a fault before any: already reported)
    else:
        windows = list(period_windows(kc))
    parts: dict[str, list[Table]] = {}
    for start, stop, w in windows:
        lo = w.first_ts if w.first_ts is not None else 0
        hi = w.last_ts if w.last_ts is not None else 0
        row: dict[str, Any] = {}
        if start is not None:
            row.update(period_begin=start, period_end=stop)
        row.update(begin=lo, end=hi, events=w.n_events)
        for a, spec in specs.items():
            r = _run(a, _view(w, spec), names)
            row.update(summary_values(a, r))
            for tname, t in _tables(a, r).items():
                if tname in DETAIL_TABLES and not detail:
                    continue
                if start is not None:
                    t = Table({"period_begin": np.full(t.nrows, start, np.int64),
                               "period_end": np.full(t.nrows, stop, np.int64), **t})
                parts.setdefault(tname, []).append(t)
        out.rows.append(row)
    out.tables = {k: _concat(v) for k, v in parts.items()}
