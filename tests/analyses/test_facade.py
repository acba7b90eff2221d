"""The Python facade: ``tracewatch.open(path).cputop()`` etc. equal the analysis functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracewatch
from tracewatch.analyses import Table
from tracewatch.analyses.cputop import cputop
from tracewatch.analyses.io import io_stats
from tracewatch.analyses.irq import irq_stats
from tracewatch.analyses.mem import mem_stats
from tracewatch.analyses.sched import sched_latencies
from tracewatch.analyses.syscalls import syscall_stats
from tracewatch.analysis_set import AnalysisTraceSet
from tracewatch.ctf import TraceSet

from ..conftest import MANY_THREADS
from .kernel_trace import write_kernel_trace
from .test_io_mem import _mem_events


def _same(a: Any, b: Any) -> None:
    """Dataclass results equal field by field (tables column by column, NaN equal to NaN)."""
    for k, v in vars(a).items():
        w = getattr(b, k)
        if isinstance(v, Table):
            assert v.columns == w.columns, k
            for c in v.columns:
                x, y = v[c], w[c]
                if x.dtype.kind == "f":
                    assert np.array_equal(x, y, equal_nan=True), (k, c)
                else:
                    assert x.tolist() == y.tolist(), (k, c)
        elif k == "fds" and v is not None:  # the fd table: arrays and lists
            for f, x in vars(v).items():
                y = getattr(w, f)
                assert (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y), (k, f)
        elif k != "threads":
            assert v == w or (v != v and w != w), k


@pytest.fixture(scope="module")
def ts() -> AnalysisTraceSet:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    t = tracewatch.open(str(MANY_THREADS))
    assert isinstance(t, AnalysisTraceSet) and isinstance(t, TraceSet)
    return t


def test_facade_methods_equal_functions(ts: AnalysisTraceSet) -> None:
    b, e = 1457113582894565804, 1457113583094565804  # a 200 ms sub-range
    _same(ts.cputop(begin=b, end=e), cputop(ts, b, e))
    _same(ts.sched(begin=b, end=e, tids=[2673]), sched_latencies(ts, b, e, [2673]))
    _same(ts.syscalls(), syscall_stats(ts))
    _same(ts.irq(cpus=[0]), irq_stats(ts, cpus=[0]))
    _same(ts.io(begin=b), io_stats(ts, b))


def test_facade_mem(tmp_path: Path) -> None:
    with tracewatch.open(write_kernel_trace(tmp_path / "m", _mem_events())) as t:
        assert isinstance(t, AnalysisTraceSet)
        _same(t.mem(), mem_stats(t))
