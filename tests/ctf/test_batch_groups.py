"""``EventBatch.columns`` over batches of several traces: grouping rows by (chunk, class) with
one sort gives exactly the columns of the one-mask-per-combination path."""

from __future__ import annotations

import numpy as np
import pytest

import tracewatch
from tracewatch.ctf import batch as batch_mod

from ..conftest import MANY_THREADS, TCP_SYNC

FIELDS = {"sched_switch": ["prev_comm", "prev_tid", "prev_state", "next_comm", "next_tid"],
          "inet_sock_local_in": ["seq", "ack_seq", "flags"]}


def _columns(threshold: int, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, np.ndarray]]:
    monkeypatch.setattr(batch_mod, "GROUP_BY_SORT_ABOVE", threshold)
    ts = tracewatch.open(str(MANY_THREADS), str(TCP_SYNC))  # 3 traces: 3 classes of each name
    out = []
    for b in ts.batches(names=list(FIELDS)):
        for name, fields in FIELDS.items():
            out.append(b.columns(name, fields))
    return out


def test_grouped_columns_equal_masked_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    masked = _columns(10**9, monkeypatch)   # always one mask per (chunk, class)
    grouped = _columns(0, monkeypatch)      # always grouped by one sort
    assert len(masked) == len(grouped) > 10
    rows = 0
    for m, g in zip(masked, grouped, strict=True):
        assert m.keys() == g.keys()
        for k in m:
            assert m[k].dtype == g[k].dtype and np.array_equal(m[k], g[k]), k
        rows += m["index"].size
    assert rows > 10_000
