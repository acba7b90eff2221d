"""Trace sets: every trace of an LTTng session layout, several machines, merged in time order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tracewatch
from tracewatch.ctf.trace import find_traces
from tracewatch.ctf.writer import Int, String, Struct, TraceWriter
from tracewatch.errors import TraceNotFoundError


def _write(path: Path, host: str, header: str, stamps: list[int], name: str) -> None:
    with TraceWriter(str(path), hostname=host) as w:
        sc = w.add_stream_class(header=header)
        ec = sc.add_event_class(name, Struct([("seq", Int(32)), ("who", String())]))
        for cpu in range(2):
            s = w.add_stream(sc, cpu=cpu)
            for i, t in enumerate(stamps):
                s.write(ec, t + cpu, {"seq": i, "who": f"{host}/{cpu}"})


def test_lttng_session_layout(tmp_path: Path) -> None:
    session = tmp_path / "my-session-20261125"
    _write(session / "kernel", "hostA", "compact", [10, 30, 50], "sched_switch")
    _write(session / "ust" / "uid" / "0" / "64-bit", "hostA", "large", [20, 40, 60], "app:tick")
    found = find_traces(str(session))
    assert [Path(p).relative_to(session).as_posix() for p in found] == ["kernel", "ust/uid/0/64-bit"]
    ts = tracewatch.open(str(session))
    events = list(ts.events())
    assert len(events) == 12
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps)
    assert [e.name for e in events[:4]] == ["sched_switch", "sched_switch", "app:tick", "app:tick"]
    assert {e.host for e in events} == {"hostA"}


def test_two_machines_one_trace_set(tmp_path: Path) -> None:
    _write(tmp_path / "a", "host-a", "compact", [5, 15], "e")
    _write(tmp_path / "b", "host-b", "compact", [10, 20], "e")
    ts = tracewatch.open(str(tmp_path / "a"), str(tmp_path / "b"))
    got = [(e.timestamp, e.host, e.cpu, e.fields["who"]) for e in ts.events()]
    assert [g[0] for g in got] == [5, 6, 10, 11, 15, 16, 20, 21]
    assert [g[1] for g in got][:4] == ["host-a", "host-a", "host-b", "host-b"]
    assert all(g[3] == f"{g[1]}/{g[2]}" for g in got)
    seq, who = [], []
    for b in ts.batches():
        cols = b.columns("e", ["seq", "who"], strings="category")
        seq.append(cols["seq"])
        who.extend(cols["who.categories"][cols["who"]].tolist())
    assert np.array_equal(np.concatenate(seq), [0, 0, 0, 0, 1, 1, 1, 1])
    assert who == [g[3] for g in got]


def test_no_trace_under_path(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(TraceNotFoundError, match="no CTF trace found"):
        tracewatch.open(str(tmp_path / "x"))
