"""The execution graph is built batch by batch (the events are not kept): it must not depend
on how the trace is cut into batches. Oracle: the same graph built from the whole trace fed
as one batch (read_columns, checked against babeltrace2 in tests/kernel)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracewatch
from tracewatch.critical import ExecutionGraph, build_graph
from tracewatch.critical import graph as graph_mod
from tracewatch.critical.graph import _TaskIds
from tracewatch.ctf.trace import TraceSet
from tracewatch.kernel import read_columns

from ..conftest import MANY_THREADS
from ..kernel.test_read_columns_range import _backwards_trace, _DecodeAll

FIELDS = ("task_tid", "task_creator", "edge_task", "edge_start", "edge_end", "edge_type",
          "edge_waker", "edge_cpu", "offsets", "switch_t", "switch_cpu", "switch_tid")


class _OneBatch:
    """iter_columns' interface, the whole trace as one batch."""

    def __init__(self, ts: TraceSet, layout: Any, wanted: Any, end: int | None = None,
                 groups: Any = None, text: str = "object", skip: bool = True,
                 partial: bool = False) -> None:
        self.kc = read_columns(ts, layout, wanted, end=end, groups=groups, text=text)
        self.first_ts, self.last_ts, self.fault = self.kc.first_ts, self.kc.last_ts, None

    def __iter__(self) -> Iterator[Any]:
        yield self.kc


def _same(a: ExecutionGraph, b: ExecutionGraph) -> None:
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and np.array_equal(x, y), f
    assert a.task_comm == b.task_comm
    assert (a.first_ts, a.last_ts, a.hostname) == (b.first_ts, b.last_ts, b.hostname)


@pytest.mark.skipif(not MANY_THREADS.exists(), reason="many-threads trace missing")
@pytest.mark.parametrize("end", [None, 1_457_113_583_000_000_000])
def test_graph_does_not_depend_on_batches(monkeypatch: pytest.MonkeyPatch,
                                          end: int | None) -> None:
    with tracewatch.open(str(MANY_THREADS)) as ts:
        streamed = build_graph(ts, end=end)
    monkeypatch.setattr(graph_mod, "iter_columns", _OneBatch)
    with tracewatch.open(str(MANY_THREADS)) as ts:
        whole = build_graph(ts, end=end)
    assert streamed.n_edges > (30_000 if end is None else 1000)
    _same(streamed, whole)


def test_small_edge_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Edges spread over many storage blocks are grouped as from one."""
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace missing")
    with tracewatch.open(str(MANY_THREADS)) as ts:
        ref = build_graph(ts)
    monkeypatch.setattr(graph_mod._lp, "BLOCK", 5000)
    with tracewatch.open(str(MANY_THREADS)) as ts:
        _same(build_graph(ts), ref)


def test_stream_going_backwards_restarts_decoding_everything(tmp_path: Path) -> None:
    path = _backwards_trace(tmp_path / "t")
    with TraceSet([path]) as ts:
        got = build_graph(ts)
    with _DecodeAll([path]) as ts:
        ref = build_graph(ts)
    _same(got, ref)
    assert sorted(set(got.task_tid.tolist())) == [5, 6, 7]


def test_task_ids_round_trip() -> None:
    ids = _TaskIds()
    tids = np.array([0, -1, 5, (1 << 23) - 1, 1 << 23, -7, 1 << 40, 1 << 23], np.int64)
    got = ids.ids(tids)
    assert got.dtype == np.int32 and (got >= 0).all()
    assert got[0] == ids.zero
    assert got[4] == got[7] and len(set(got.tolist())) == 7
    assert np.array_equal(ids.tids(got), tids)
    # a later batch gives the same ids to the same TIDs
    assert np.array_equal(ids.ids(tids[::-1]), got[::-1])
