"""iter_columns gives read_columns' columns batch by batch: concatenated, the batches equal
read_columns' columns (itself checked against babeltrace2 in test_read_columns_range), with
the same range and count once iterated; a stream going backwards asks for a restart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tracewatch
from tracewatch.ctf.trace import TraceSet
from tracewatch.kernel import ColumnsRestart, detect_layout, iter_columns, read_columns

from ..conftest import MANY_THREADS
from .test_read_columns_range import _backwards_trace, _DecodeAll

WANTED = {"sched_switch": ("prev_comm", "prev_tid", "prev_state", "next_tid"),
          "sched_waking": ("comm", "tid")}
GROUPS = {"irq_entry": ["irq_handler_entry"], "irq_exit": ["irq_handler_exit"]}


def _joined(parts: list[dict[str, dict[str, np.ndarray]]], ev: str) -> dict[str, np.ndarray]:
    got = [p[ev] for p in parts if ev in p]
    return {k: np.concatenate([g[k] for g in got]) for k in got[0]}


@pytest.mark.skipif(not MANY_THREADS.exists(), reason="many-threads trace missing")
@pytest.mark.parametrize("end", [None, 1_457_113_583_100_000_000])
@pytest.mark.parametrize("skip", [True, False])
def test_batches_joined_equal_read_columns(end: int | None, skip: bool) -> None:
    ts = tracewatch.open(str(MANY_THREADS))
    layout = detect_layout(ts)
    wanted = {**WANTED, "irq_entry": ("irq",), "irq_exit": ()}
    # without skipping, seq counts every event: as read_columns reading everything does
    rts = ts if skip else _DecodeAll([str(MANY_THREADS)])
    ref = read_columns(rts, layout, wanted, end=end, groups=GROUPS, text="codes")
    stream = iter_columns(ts, layout, wanted, end=end, groups=GROUPS, text="codes", skip=skip)
    parts = [kc.events for kc in stream]
    assert len(parts) > (5 if end is None else 0)  # really batch by batch
    assert (stream.first_ts, stream.last_ts, stream.n_events) == \
        (ref.first_ts, ref.last_ts, ref.n_events)
    for ev, cols in ref.events.items():
        got = _joined(parts, ev)
        assert got.keys() == cols.keys()
        for k in cols:
            assert np.array_equal(got[k], cols[k]), (ev, k)
        # seq puts each batch's events after the previous batch's
        seqs = [p[ev]["seq"] for p in parts if ev in p]
        assert all(a[-1] < b[0] for a, b in zip(seqs, seqs[1:], strict=False))


def test_backwards_stream_asks_for_a_restart(tmp_path: Path) -> None:
    path = _backwards_trace(tmp_path / "t")
    warned: list[str] = []
    ts = TraceSet([path], on_warning=warned.append)
    layout = detect_layout(ts)
    with pytest.raises(ColumnsRestart):
        list(iter_columns(ts, layout, {"sched_switch": ("next_tid",)}))
    assert warned == []  # held back, given by the pass that completes
    stream = iter_columns(ts, layout, {"sched_switch": ("next_tid",)}, skip=False)
    parts = [kc.events for kc in stream]
    ref = read_columns(ts, layout, {"sched_switch": ("next_tid",)})
    assert np.array_equal(_joined(parts, "sched_switch")["next_tid"],
                          ref.events["sched_switch"]["next_tid"])
    assert (stream.first_ts, stream.last_ts, stream.n_events) == \
        (ref.first_ts, ref.last_ts, ref.n_events) == (ref.first_ts, ref.last_ts, 6)
    assert len(warned) == 2 and all("earlier than a previous event" in w for w in warned)
