"""The metric set (fast): Graphite path sanitizing, the cardinality bound (top N + other) on
lttng-kernel-many-threads (8000 threads), label consistency with METRICS, naming conventions."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tracewatch.analyses.periodic import stream_periods
from tracewatch.ctf.trace import TraceSet
from tracewatch.export.metrics import (
    METRICS,
    OTHER,
    Sample,
    graphite_path,
    graphite_timestamp,
    nearest_rank,
    sanitize_component,
    window_samples,
)

from ..conftest import MANY_THREADS

PERIOD = 1_000_000_000


@pytest.fixture(scope="module")
def window() -> object:
    (p,) = list(stream_periods(TraceSet([str(MANY_THREADS)]), PERIOD,
                               ["count", "cputop", "sched", "syscalls", "irq"]))
    return p


def test_sanitize_component() -> None:
    assert sanitize_component("kworker/5:1H") == "kworker_5_1H"
    assert sanitize_component("0000:00:1f.2") == "0000_00_1f_2"
    assert sanitize_component("my host.example.com") == "my_host_example_com"
    assert sanitize_component("a\\b*c{d}[e] f\n") == "a_b_c_d__e__f_"
    assert sanitize_component("") == "_"
    assert sanitize_component("gen-Kernel_Traces9") == "gen-Kernel_Traces9"
    s = Sample("tracewatch_task_cpu_usage_ratio", {"host": "web.1", "tid": "7", "comm": "a.b/c d"}, 0.5,
               2_500_000_000, ("cputop", "a.b/c d-7", "task_usage_ratio"))
    assert graphite_path(s) == "tracewatch.web_1.cputop.a_b_c_d-7.task_usage_ratio"
    assert graphite_timestamp(s.timestamp_ns) == 2


def test_top_n_and_other_bound_the_cardinality(window: object) -> None:
    r = window.results  # type: ignore[attr-defined]
    cp = r["cputop"]
    assert cp.per_tid.nrows > 8000
    for top in (0, 1, 10, 50):
        ss = window_samples(window, "h", top=top)
        tasks = [s for s in ss if s.name == "tracewatch_task_cpu_usage_ratio"]
        assert len(tasks) == top + 1
        assert [s.labels["tid"] for s in tasks[:top]] == [str(t) for t in cp.per_tid["tid"][:top].tolist()]
        other = tasks[-1]
        assert other.labels == {"host": "h", "tid": OTHER, "comm": OTHER}
        assert other.value == pytest.approx(float(cp.per_tid["ratio"][top:].sum()), rel=1e-9)
        # the ratios add up to the sum over every thread
        assert sum(s.value for s in tasks) == pytest.approx(float(cp.per_tid["ratio"].sum()), rel=1e-9)
        procs = [s for s in ss if s.name == "tracewatch_process_syscalls"]
        assert len(procs) == min(top, 19) + 1  # 19 processes make system calls
        assert sum(s.value for s in procs) == r["syscalls"].total
        sched = [s for s in ss if s.name == "tracewatch_task_sched_wakeups"]
        assert len(sched) == top + 1 and sum(s.value for s in sched) == r["sched"].latencies.nrows
    ss = window_samples(window, "h", top=10)
    assert len(ss) < 700
    print(f"{len(ss)} samples for one window of {cp.per_tid.nrows} threads")


def test_labels_names_and_paths_are_consistent(window: object) -> None:
    ss = window_samples(window, "host-1", lag_s=0.25)
    names = {s.name for s in ss}
    assert names == set(METRICS)  # every metric is made by some analysis
    for s in ss:
        info = METRICS[s.name]
        assert tuple(s.labels) == info.labels
        assert re.fullmatch(r"tracewatch_[a-z0-9_]+", s.name)
        assert s.name.endswith("_total") == (info.kind == "counter")
        assert s.timestamp_ns == window.end  # type: ignore[attr-defined]
        assert not np.isnan(s.value)
    paths = [graphite_path(s) for s in ss]
    assert len(set(paths)) == len(paths)
    keys = [(s.name, tuple(s.labels.items())) for s in ss]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"tracewatch(\.[A-Za-z0-9_-]+){4}", p) for p in paths)
    (lag,) = [s for s in ss if s.name == "tracewatch_live_lag_seconds"]
    assert lag.value == 0.25


def test_nearest_rank() -> None:
    v = np.arange(1, 101)
    assert nearest_rank(v, 0.99) == 99
    assert nearest_rank(v[::-1].copy(), 0.99) == 99
    assert nearest_rank(np.array([5]), 0.99) == 5
    assert nearest_rank(np.arange(1, 1001), 0.99) == 990
    assert np.isnan(nearest_rank(np.zeros(0), 0.99))
    for n in (1, 7, 150, 1001):
        x = np.random.default_rng(n).integers(0, 10**6, n)
        assert nearest_rank(x, 0.99) == np.percentile(x, 99, method="inverted_cdf")
