"""The io and mem commands (LAMI output in lttng-analyses' table classes, CSV, human output,
missing-events error) and --period on cputop/sched/syscalls/irq."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

import tracewatch
from tracewatch.analyses.io import io_stats
from tracewatch.analyses.irq import irq_periods
from tracewatch.analyses.mem import mem_stats
from tracewatch.analyses.syscalls import syscalls_periods

from ..analyses.kernel_trace import switch, write_kernel_trace
from ..analyses.test_io_mem import _io_events, _mem_events
from ..conftest import MANY_THREADS
from .test_analyses_cli import VALUE_CLASSES, run

T = str(MANY_THREADS)
CLASSES = VALUE_CLASSES | {"size", "disk", "fd", "bool", "path"}


def _mi(*args: str) -> dict[str, Any]:
    rc, out, err = run(*args, "--mi")
    assert rc == 0, err
    doc: dict[str, Any] = json.loads(out)
    md = json.loads(run(args[0], "--mi", "--metadata")[1])["table-classes"]
    for t in doc["results"]:
        cls = t["class"] if isinstance(t["class"], str) else t["class"]["inherit"]
        cols = md[cls]["column-descriptions"]
        for row in t["data"]:
            assert len(row) == len(cols)
            for v, c in zip(row, cols, strict=True):
                assert v["class"] in (c["class"], "unknown") and v["class"] in CLASSES
    return doc


@pytest.fixture(scope="module")
def many() -> tracewatch.TraceSet:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    return tracewatch.open(T)


def test_io_mi_tables(tmp_path: Path) -> None:
    """syscall-latency-stats, disk-latency-stats, per-process-top [read]/[write] and the
    per-disk tables, with the API's values."""
    path = write_kernel_trace(tmp_path / "io", _io_events())
    doc = _mi("io", path)
    r = io_stats(tracewatch.open(path))
    classes = [t["class"] if isinstance(t["class"], str) else t["class"]["title"] for t in doc["results"]]
    assert classes == ["syscall-latency-stats", "disk-latency-stats", "Per-process top I/O operations [read]",
                       "Per-process top I/O operations [write]", "Per-file top I/O operations [read]",
                       "Per-file top I/O operations [write]", "per-disk-top-sector", "per-disk-top-request"]
    for k, kind in ((4, "read"), (5, "write")):  # per-file tables: the API's per_file rows
        want = sorted(((x["path"], x[f"{kind}_bytes"], x[f"{kind}_count"], x["fds"])
                       for x in r.per_file.rows() if x[f"{kind}_bytes"] > 0), key=lambda w: -w[1])
        got = [(x[0]["path"], x[1]["value"], x[2]["value"], x[3]["value"]) for x in doc["results"][k]["data"]]
        assert got == want
    lat = doc["results"][0]["data"]
    assert [(x[0]["value"], x[1]["value"], x[2]["value"], x[4]["value"]) for x in lat] == \
        [(x["kind"], x["count"], x["min_ns"], x["max_ns"]) for x in r.latency.rows()]
    assert doc["results"][1]["data"][0][0] == {"class": "disk", "name": "sda"}
    reads = doc["results"][2]["data"]
    assert [(x[0]["pid"], x[1]["value"]) for x in reads] == [(12, 1000), (10, 64)]
    assert [(x[0]["pid"], x[1]["value"]) for x in doc["results"][3]["data"]] == [(10, 10), (11, 5)]
    assert doc["results"][6]["data"] == [[{"class": "disk", "name": "sda"}, {"class": "number", "value": 24}]]


def test_io_csv_and_human(tmp_path: Path) -> None:
    path = write_kernel_trace(tmp_path / "io", _io_events())
    rc, out, err = run("io", path, "--csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(int(x["pid"]), int(x["read_bytes"]), int(x["write_bytes"])) for x in rows] == \
        [(12, 1000, 0), (10, 64, 10), (11, 0, 5)]
    rc, out, err = run("io", path)
    assert rc == 0, err
    assert "Per-process I/O" in out and "Disk request latency" in out and "sda" in out


def test_mem_mi_csv_human(tmp_path: Path) -> None:
    """allocd, freed and total tables in lttng-memtop's classes."""
    path = write_kernel_trace(tmp_path / "m", _mem_events())
    doc = _mi("mem", path)
    assert [t["class"] for t in doc["results"]] == ["allocd", "freed", "total"]
    assert [(x[0]["tid"], x[1]["value"]) for x in doc["results"][0]["data"]] == [(10, 2), (11, 1)]
    assert [(x[0]["tid"], x[1]["value"]) for x in doc["results"][1]["data"]] == [(11, 2), (10, 1)]
    assert doc["results"][2]["data"] == [[{"class": "number", "value": 3}, {"class": "number", "value": 3}]]
    rc, out, _ = run("mem", path, "--csv")
    r = mem_stats(tracewatch.open(path))
    assert [int(x["allocated"]) for x in csv.DictReader(io.StringIO(out))] == r.per_tid["allocated"].tolist()
    rc, out, _ = run("mem", path)
    assert rc == 0 and "3 pages allocated, 3 pages freed" in out


@pytest.mark.parametrize("cmd", ["io", "mem"])
def test_missing_events_error(cmd: str, tmp_path: Path) -> None:
    path = write_kernel_trace(tmp_path / "t", [(1, 0, "sched_switch", switch(0, 1))])
    rc, out, err = run(cmd, path)
    assert rc == 1 and out == ""
    assert err.startswith(f"tracewatch: error: {cmd}: the trace has no ") and "lttng enable-event -k" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("cmd", ["io", "mem"])
def test_io_mem_metadata(cmd: str) -> None:
    rc, out, _ = run(cmd, "--mi", "--metadata")
    md = json.loads(out)
    assert rc == 0 and md["table-classes"]
    for tc in md["table-classes"].values():
        assert all(c["class"] in CLASSES for c in tc["column-descriptions"])


def test_period_mi_one_result_per_window(many: tracewatch.TraceSet) -> None:
    """--period 100ms --mi: syscalls gives each window's per-tid tables then its total table,
    each with the window's time range, and the API's counts; irq one hard-stats/soft-stats
    table per window that has hard IRQs."""
    doc = _mi("syscalls", T, "--period", "100ms")
    parts = syscalls_periods(many, 100_000_000)
    totals = [t for t in doc["results"] if t["class"] == "total"]
    assert len(totals) == len(parts) == 5
    for t, r in zip(totals, parts, strict=True):
        assert (t["time-range"]["begin"]["value"], t["time-range"]["end"]["value"]) == (r.begin, r.end)
        assert sum(x[1]["value"] for x in t["data"]) == r.total
    doc = _mi("irq", T, "--period", "0.1s")
    ip = irq_periods(many, 100_000_000)
    hard = [t for t in doc["results"] if t["class"] == "hard-stats"]
    # a window without hard IRQs has no hard-stats table (as lttng-irqstats leaves it out)
    assert [sum(x[1]["value"] for x in t["data"]) for t in hard] == \
        [int(r.hard["count"].sum()) for r in ip if r.hard.nrows]


@pytest.mark.parametrize("cmd", ["cputop", "sched"])
def test_period_csv_and_human(cmd: str) -> None:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    rc, out, err = run(cmd, T, "--period", "200ms", "--csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0])[:2] == ["period_begin", "period_end"]
    assert len({x["period_begin"] for x in rows}) == 3
    rc, out, err = run(cmd, T, "--period", "200ms", "--top", "3")
    assert rc == 0, err
    assert out.count("Timerange:") == 3


def test_period_errors() -> None:
    rc, _, err = run("cputop", T, "--period", "fast")
    assert rc == 2 and "duration" in err
    rc, _, err = run("cputop", T, "--period", "0ms")
    assert rc == 2 and "positive" in err
