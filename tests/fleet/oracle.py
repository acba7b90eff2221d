"""The oracle of the fleet tests: each host's analyses run directly on its traces with the
functions of :mod:`tracewatch.analyses` (themselves checked against lttng-analyses and
babeltrace2 elsewhere), and the summary numbers recomputed by hand from the tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tracewatch.analyses import Table
from tracewatch.analyses.cputop import cputop, cputop_periods
from tracewatch.analyses.irq import irq_periods, irq_stats
from tracewatch.analyses.sched import sched_latencies, sched_periods
from tracewatch.analyses.syscalls import syscall_stats, syscalls_periods
from tracewatch.ctf.trace import TraceSet
from tracewatch.errors import TracewatchError
from tracewatch.fleet import HostTraces

WHOLE = {"cputop": cputop, "sched": sched_latencies, "syscalls": syscall_stats, "irq": irq_stats}
PERIODS = {"cputop": cputop_periods, "sched": sched_periods, "syscalls": syscalls_periods, "irq": irq_periods}
TABLES = {"cputop": ("per_tid", "per_process", "per_cpu"), "sched": ("per_tid", "latencies"),
          "syscalls": ("per_tid", "per_syscall", "calls"), "irq": ("hard", "soft", "log")}


def direct(host: HostTraces, analysis: str, begin: int | None = None, end: int | None = None,
           period: int | None = None) -> tuple[dict[str, Table], str | None]:
    """The tables of ``analysis`` on the host's traces, by the analysis' own function
    (``partial=True``, as the CLI runs them), and its error (None when none)."""
    ts = TraceSet(list(host.paths))
    try:
        if period is None:
            rs = [WHOLE[analysis](ts, begin, end, partial=True)]
        else:
            rs = PERIODS[analysis](ts, period, begin, end, partial=True)
    except TracewatchError as e:
        return {}, str(e)
    out: dict[str, list[Table]] = {}
    for r in rs:
        for name in TABLES[analysis]:
            t = getattr(r, name)
            if period is not None:
                # windows [origin + k * period, ...), origin: the first event of the range
                start = rs[0].begin + (r.begin - rs[0].begin) // period * period
                t = Table({"period_begin": np.full(t.nrows, start, np.int64),
                           "period_end": np.full(t.nrows, start + period, np.int64), **t})
            out.setdefault(f"{analysis}.{name}", []).append(t)
    tables = {k: Table({c: np.concatenate([p[c] for p in v]) for c in v[0].columns}) for k, v in out.items()}
    fault = rs[0].fault if rs else None
    return tables, None if fault is None else str(fault)


def rows_of(df: pd.DataFrame, host: str) -> pd.DataFrame:
    """A fleet table's rows of ``host``, without the host column, as the host's own table."""
    return df[df["host"] == host].drop(columns="host").reset_index(drop=True)


def assert_same(got: pd.DataFrame, table: Table) -> None:
    want = table.to_pandas()
    if len(want) == 0:
        assert len(got) == 0 and list(got.columns) == list(want.columns)
        return
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=True)


def nearest_rank(values: np.ndarray, q: float) -> float:
    """By hand: sort, take the ceil(q * n)-th value."""
    if values.size == 0:
        return math.nan
    return float(np.sort(values)[math.ceil(q * values.size) - 1])


def summary_by_hand(tables: dict[str, pd.DataFrame], host: str, begin: int, end: int,
                    ran: set[str]) -> dict[str, Any]:
    """The summary numbers of ``host`` from its rows of the fleet's detail tables (``ran``:
    the analyses that ran on it; NaN for the others)."""
    out: dict[str, Any] = {}
    pc = rows_of(tables["cputop.per_cpu"], host)
    out["cpu_usage"] = float(pc["ratio"].mean()) if len(pc) else 0.0
    out["cpus"] = len(pc)
    pt = rows_of(tables["cputop.per_tid"], host)
    out["top_task"] = pt["comm"][0] if len(pt) else None
    out["top_tid"] = int(pt["tid"][0]) if len(pt) else None
    out["top_task_usage"] = float(pt["usage_ns"][0]) / (end - begin) if len(pt) else math.nan
    lat = rows_of(tables["sched.latencies"], host)["latency_ns"].to_numpy(np.int64)
    out["sched_wakeups"] = lat.size
    out["sched_avg_ns"] = lat.sum() / lat.size if lat.size else math.nan
    out["sched_p99_ns"] = nearest_rank(lat, 0.99)
    out["sched_max_ns"] = float(lat.max()) if lat.size else math.nan
    if "syscalls" in ran:
        n = int(rows_of(tables["syscalls.per_tid"], host)["count"].sum())
        assert n == len(rows_of(tables["syscalls.calls"], host))
        out["syscalls"] = n
        out["syscalls_per_s"] = n / ((end - begin) / 1e9)
    else:
        out["syscalls"] = out["syscalls_per_s"] = math.nan
    if "irq" in ran:
        hard, soft = rows_of(tables["irq.hard"], host), rows_of(tables["irq.soft"], host)
        out["irqs"] = int(hard["count"].sum() + soft["count"].sum())
        out["irq_ns"] = int(rows_of(tables["irq.log"], host)["duration_ns"].sum())
    else:
        out["irqs"] = out["irq_ns"] = math.nan
    return out
