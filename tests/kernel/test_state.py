"""Kernel columns and the thread table on many-threads, against babeltrace2's text output
(an independent reader) walked with a plain loop."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import tracewatch
from tracewatch.kernel import detect_layout, read_columns, thread_table
from tracewatch.kernel.fast import dense_index, intern_strings, last_writer, texts
from tracewatch.kernel.state import THREAD_EVENTS

from ..conftest import MANY_THREADS, babeltrace2

LINE = re.compile(r"^\[[^\]]+\] \([^)]+\) \S+ (\w+): \{ cpu_id = \d+ \}, \{ (.*) \}$")
FIELD = re.compile(r'(\w+) = ("(?:[^"\\]|\\.)*"|[^,]+)')

WANTED = {"sched_switch": ("prev_tid", "prev_comm", "next_tid", "next_comm"), **THREAD_EVENTS}


@pytest.fixture(scope="module")
def lines() -> list[tuple[str, dict[str, str]]]:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    out = []
    for line in babeltrace2(str(MANY_THREADS)).stdout.splitlines():
        m = LINE.match(line)
        if m is not None and (m.group(1) in WANTED):
            out.append((m.group(1), dict(FIELD.findall(m.group(2)))))
    return out


def _text(v: str) -> str:
    return v[1:-1] if v.startswith('"') else v


def test_interned_texts_equal_babeltrace2(lines: list[tuple[str, dict[str, str]]]) -> None:
    """Every task name and exec file name read as codes decodes to babeltrace2's text, in
    trace order (the object-array reading gives the same strings)."""
    checked = 0
    ts = tracewatch.open(str(MANY_THREADS))
    layout = detect_layout(ts)
    kc = read_columns(ts, layout, WANTED, text="codes")
    ko = read_columns(ts, layout, WANTED)
    for ev, fields in WANTED.items():
        want = [f for e, f in lines if e == ev]
        if ev not in kc.events:  # not in this trace (sched_process_exec)
            assert not want
            continue
        for f in fields:
            col = kc.events[ev][f]
            if col.dtype == np.int32 and f.endswith(("comm", "name", "filename")):
                got = texts(col).tolist()
                assert got == [_text(w[f]) for w in want], (ev, f)
                assert got == ko.events[ev][f].tolist(), (ev, f)
                checked += len(got)
    assert checked > 60000  # 28,325 sched_switch x 2 names, 8,003 forks x 2, statedump


def test_thread_table_equals_last_name_loop(lines: list[tuple[str, dict[str, str]]]) -> None:
    """comm of every tid = the last name a plain loop over babeltrace2's lines gives it
    (statedump name; fork child then parent; exec file's base name; sched_switch next then
    prev), and so do pid/ppid (statedump; fork: child then parent)."""
    comm: dict[int, str] = {}
    pid: dict[int, int] = {}
    for ev, f in lines:
        if ev == "lttng_statedump_process_state":
            comm[int(f["tid"])] = _text(f["name"])
            pid[int(f["tid"])] = int(f["pid"])
        elif ev == "sched_process_fork":
            comm[int(f["child_tid"])] = _text(f["child_comm"])
            comm[int(f["parent_tid"])] = _text(f["parent_comm"])
            pid[int(f["child_tid"])] = int(f["child_pid"])
            pid[int(f["parent_tid"])] = int(f["parent_pid"])
        elif ev == "sched_process_exec":
            comm[int(f["tid"])] = os.path.basename(_text(f["filename"]))
        elif ev == "sched_switch":
            comm[int(f["next_tid"])] = _text(f["next_comm"])
            comm[int(f["prev_tid"])] = _text(f["prev_comm"])
    ts = tracewatch.open(str(MANY_THREADS))
    tt = thread_table(read_columns(ts, detect_layout(ts), WANTED, text="codes"))
    assert set(tt) == set(comm) | set(pid)
    assert {t: tt.comm_of(t) for t in comm if t != 0} == {t: c for t, c in comm.items() if t != 0}
    assert {t: tt.pid_of(t) for t in pid if t != 0} == {t: p for t, p in pid.items() if t != 0}


def test_fast_helpers_small_cases() -> None:
    """Hand-checked: codes are stable and shared by equal strings (long ones too);
    dense_index numbers values in order of first appearance, also when they are negative or
    huge (sorting fallback); last_writer takes the greatest seq, ties to the later source."""
    a = intern_strings(["bash", "a" * 40, "bash", "", "a" * 40])
    assert a[0] == a[2] and a[1] == a[4] and len(set(a.tolist())) == 3
    assert texts(a).tolist() == ["bash", "a" * 40, "bash", "", "a" * 40]
    (i, j), keys = dense_index([np.array([7, 3, 7]), np.array([3, 9])])
    assert i.tolist() == [0, 1, 0] and j.tolist() == [1, 2] and keys.tolist() == [7, 3, 9]
    (k,), keys = dense_index([np.array([1 << 40, -5, 1 << 40])])
    assert k.tolist() == [0, 1, 0] and keys.tolist() == [1 << 40, -5]
    src, row = last_writer([np.array([0, 1]), np.array([1, 0])], [np.array([5, 6]), np.array([6, 2])], 3)
    assert src.tolist() == [0, 1, -1] and row.tolist() == [0, 0, -1]
