"""The analysis commands: LAMI (--mi) output equal to the Python API and in lttng-analyses'
shape, --mi --metadata, --csv, human tables, option parsing and the missing-events error."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

import tracewatch
from tracewatch.analyses.cputop import cputop
from tracewatch.analyses.irq import irq_stats
from tracewatch.analyses.sched import sched_latencies
from tracewatch.analyses.syscalls import syscall_stats
from tracewatch.cli.main import main

from ..analyses.kernel_trace import switch, write_kernel_trace
from ..conftest import MANY_THREADS, SHARED

REF = SHARED / "reference" / "lttng-analyses" / "many-threads"
T = str(MANY_THREADS)
VALUE_CLASSES = {"unknown", "number", "duration", "ratio", "timestamp", "string", "time-range",
                 "process", "cpu", "irq", "syscall"}


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def ts() -> tracewatch.TraceSet:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    return tracewatch.open(T)


def _mi(*args: str) -> dict[str, Any]:
    rc, out, err = run(*args, "--mi")
    assert rc == 0, err
    doc: dict[str, Any] = json.loads(out)
    _check_lami(doc)
    return doc


def _check_lami(doc: dict[str, Any]) -> None:
    """LAMI 1.0 result document: results of tables with class, time-range and typed rows."""
    assert set(doc) == {"results"}
    for t in doc["results"]:
        assert set(t) == {"class", "time-range", "data"}
        cls = t["class"]
        assert isinstance(cls, str) or set(cls) == {"inherit", "title"}
        tr = t["time-range"]
        assert tr["class"] == "time-range"
        assert tr["begin"]["class"] == tr["end"]["class"] == "timestamp"
        assert tr["begin"]["value"] <= tr["end"]["value"]
        widths = {len(r) for r in t["data"]}
        assert len(widths) <= 1
        for row in t["data"]:
            for v in row:
                assert v["class"] in VALUE_CLASSES
                if v["class"] in ("number", "duration", "ratio"):
                    assert isinstance(v["value"], (int, float)) and not math.isnan(v["value"])


def _stat(v: dict[str, Any]) -> float:
    return math.nan if v["class"] == "unknown" else float(v["value"])


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_irq_mi_equals_api_and_reference(ts: tracewatch.TraceSet) -> None:
    """hard-stats equals lttng-irqstats' table (to float rounding) and the API's values
    exactly; soft-stats (which lttng-analyses misses, see tests/analyses/test_irq.py) the API's."""
    doc = _mi("irq", T)
    r = irq_stats(ts)
    hard, soft = doc["results"]
    assert (hard["class"], soft["class"]) == ("hard-stats", "soft-stats")
    ref = json.loads((REF / "irqstats.json").read_text())["results"][0]
    assert hard["time-range"] == ref["time-range"]
    for ours, theirs in zip(hard["data"], ref["data"], strict=True):
        assert ours[0] == theirs[0]
        for a, b in zip(ours[1:], theirs[1:], strict=True):
            assert a["class"] == b["class"]
            assert a["value"] == pytest.approx(b["value"], rel=1e-12)
    for row, x in zip(hard["data"], r.hard.rows(), strict=True):
        assert [_stat(v) for v in row[1:]] == [x["count"], x["min_ns"], x["avg_ns"], x["max_ns"], x["stdev_ns"]]
    for row, x in zip(soft["data"], r.soft.rows(), strict=True):
        assert row[0] == {"class": "irq", "hard": False, "nr": x["vec"], "name": x["name"]}
        keys = ["count", "min_ns", "avg_ns", "max_ns", "stdev_ns", "raise_count", "min_latency_ns",
                "avg_latency_ns", "max_latency_ns", "stdev_latency_ns"]
        assert all(_same(_stat(v), float(x[k])) for v, k in zip(row[1:], keys, strict=True))


def test_syscalls_mi_equals_api_and_reference_shape(ts: tracewatch.TraceSet) -> None:
    """One per-tid table per thread (class inherit per-tid, title with name, pid, TID) then
    the total table, in lttng-syscallstats' order; values equal the API's. --top 2 and
    --tid restrict the threads."""
    doc = _mi("syscalls", T, "--top", "2")
    r = syscall_stats(ts)
    tables = doc["results"]
    assert len(tables) == 3 and tables[-1]["class"] == "total"
    ref = json.loads((REF / "syscallstats.json").read_text())["results"]
    assert [t["class"] for t in tables[:2]] == [t["class"] for t in ref[:2]]
    assert tables[-1]["data"] == next(t for t in ref if t["class"] == "total")["data"][:2]
    rows = [x for x in r.per_syscall.rows() if x["tid"] in (2673, 10704)]
    got = [row for t in tables[:2] for row in t["data"]]
    assert len(got) == len(rows)
    for row, x in zip(got, rows, strict=True):
        assert row[0] == {"class": "syscall", "name": x["syscall"]}
        vals = [_stat(v) for v in row[1:6]]
        assert all(_same(a, float(x[k])) for a, k in
                   zip(vals, ["count", "min_ns", "avg_ns", "max_ns", "stdev_ns"], strict=True))
        assert row[6] == {"class": "string", "value": x["returns"]}
    one = _mi("syscalls", T, "--tid", "691,1555", "--tid", "776")
    assert sorted(row[0]["tid"] for row in one["results"][-1]["data"]) == [691, 776, 1555]


def test_cputop_and_sched_mi_match_reference_shape(ts: tracewatch.TraceSet) -> None:
    """cputop: per-process (10 rows), per-cpu, total tables like lttng-cputop's, ratios equal
    the API's; sched: per_tid_stats like lttng-schedstats', counts equal the API's."""
    doc = _mi("cputop", T)
    ref = json.loads((REF / "cputop.json").read_text())["results"]
    assert [t["class"] for t in doc["results"]] == [t["class"] for t in ref]
    per, per_cpu, total = doc["results"]
    r = cputop(ts)
    assert len(per["data"]) == 10
    assert [row[0]["tid"] for row in per["data"]] == [x[0]["tid"] for x in ref[0]["data"]]
    assert [row[3]["value"] for row in per["data"]] == r.per_tid["ratio"][:10].tolist()
    assert [row[1]["value"] for row in per_cpu["data"]] == r.per_cpu["ratio"].tolist()
    assert total["data"] == [[{"class": "ratio", "value": r.total}]]
    s = _mi("sched", T)
    sref = json.loads((REF / "schedstats.json").read_text())["results"]
    assert [t["class"] for t in s["results"]] == [t["class"] for t in sref] == ["per_tid_stats"]
    sr = sched_latencies(ts)
    assert [row[1]["value"] for row in s["results"][0]["data"]] == sr.per_tid["count"].tolist()
    # same TIDs; the order differs where sched.py names a TID differently from lttng-analyses
    # (renamed threads, see tests/analyses/test_reference.py), as rows are sorted by name
    assert sorted(row[0]["tid"] for row in s["results"][0]["data"]) == sorted(x[0]["tid"] for x in sref[0]["data"])


@pytest.mark.parametrize("cmd", ["cputop", "sched", "syscalls", "irq"])
def test_mi_metadata_describes_the_result_tables(cmd: str) -> None:
    """--mi --metadata needs no trace: LAMI 1.0 version, title, authors, and for each table
    class a title and column descriptions (title, class[, unit]); every column class is a
    LAMI value class."""
    rc, out, err = run(cmd, "--mi", "--metadata")
    assert rc == 0, err
    md = json.loads(out)
    assert md["mi-version"] == {"major": 1, "minor": 0}
    assert set(md["version"]) == {"major", "minor", "patch", "extra"}
    assert md["title"] and md["description"] and md["authors"] and md["tags"]
    assert md["table-classes"]
    for tc in md["table-classes"].values():
        assert tc["title"]
        for c in tc["column-descriptions"]:
            assert set(c) <= {"title", "class", "unit"}
            assert c["class"] in VALUE_CLASSES


def test_result_rows_fit_their_table_class_metadata() -> None:
    """Each result table's rows have as many values as its class has columns, of those
    classes (unknown allowed)."""
    for cmd in ("irq", "cputop"):
        md = json.loads(run(cmd, "--mi", "--metadata")[1])["table-classes"]
        for t in _mi(cmd, T)["results"]:
            cls = t["class"] if isinstance(t["class"], str) else t["class"]["inherit"]
            cols = md[cls]["column-descriptions"]
            for row in t["data"]:
                assert len(row) == len(cols)
                assert all(v["class"] in (c["class"], "unknown") for v, c in zip(row, cols, strict=True))


def test_csv_equals_api(ts: tracewatch.TraceSet) -> None:
    rc, out, err = run("syscalls", T, "--csv", "--tid", "10704")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    r = syscall_stats(ts, tids=[10704])
    assert list(rows[0]) == r.per_syscall.columns
    assert len(rows) == r.per_syscall.nrows == 60
    for row, x in zip(rows, r.per_syscall.rows(), strict=True):
        assert (int(row["count"]), int(row["min_ns"]), float(row["avg_ns"]), row["returns"]) == \
            (x["count"], x["min_ns"], x["avg_ns"], x["returns"])
        assert (row["stdev_ns"] == "") == math.isnan(x["stdev_ns"])
    rc, out, _ = run("irq", T, "--csv")
    kinds = [r["kind"] for r in csv.DictReader(io.StringIO(out))]
    assert kinds == ["hard"] * 3 + ["soft"] * 5


def test_human_output() -> None:
    rc, out, err = run("irq", T)
    assert rc == 0, err
    assert out.startswith("Timerange: [2016-03-04 17:46:22.794565804, 2016-03-04 17:46:23.227228162]")
    assert "0000:00:1f.2" in out and "RCU_SOFTIRQ" in out and "2.193" in out
    rc, out, err = run("cputop", T, "--top", "3", "--procname", "genKernelTraces")
    assert rc == 0, err
    assert "29.70 %" in out and "vlc" not in out and "Total CPU usage: 54.15%" in out


def test_missing_events_one_line_error_with_lttng_hint(tmp_path: Path) -> None:
    trace = write_kernel_trace(tmp_path / "k", [(10**9, 0, "sched_switch", switch(0, 1))])
    rc, out, err = run("syscalls", trace)
    assert (rc, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("tracewatch: error: syscalls:")
    assert "lttng enable-event -k --syscall -a" in err
    rc, out, err = run("irq", trace, "--mi")
    assert (rc, out) == (1, "")
    assert err.count("\n") == 1 and "lttng enable-event -k irq_handler_entry" in err
    trace2 = write_kernel_trace(tmp_path / "k2", [(10**9, 0, "irq_softirq_entry", {"vec": 1})])
    rc, _, err = run("cputop", trace2)
    assert rc == 1 and err.count("\n") == 1 and "lttng enable-event -k sched_switch" in err


def test_option_errors() -> None:
    assert run("cputop", "--metadata")[0] == 2  # --metadata without --mi
    assert run("cputop")[0] == 2  # no trace
    rc, _, err = run("sched", T, "--tid", "x")
    assert rc == 2 and "not an integer" in err


def test_progress_bar_counts_the_events_read_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal stderr, reading goes through a rich progress bar counting events; not
    on a pipe."""
    from rich.console import Console

    from tracewatch.cli.analyses import _with_progress

    trace = write_kernel_trace(tmp_path / "k", [(10**9 + i, i % 2, "sched_switch", switch(0, 1)) for i in range(50)])
    ts = tracewatch.open(trace)
    assert _with_progress(ts, Console(file=io.StringIO())) is None
    progress = _with_progress(ts, Console(file=io.StringIO(), force_terminal=True))
    assert progress is not None
    n = sum(len(b) for b in ts.batches())
    progress.stop()
    assert n == 50 and progress.tasks[0].completed == 50
