"""Scheduling latency log, top and frequency distribution (lttng-schedlog/top/freq)."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np

import tracewatch
from tracewatch.analyses.sched import (
    filter_latencies,
    latency_histogram,
    sched_latencies,
    top_latencies,
)
from tracewatch.cli.main import main

from ..conftest import MANY_THREADS


def _latencies() -> list[int]:
    return sched_latencies(tracewatch.open(str(MANY_THREADS))).latencies["latency_ns"].tolist()


def test_top_is_the_longest_in_order() -> None:
    r = sched_latencies(tracewatch.open(str(MANY_THREADS)))
    top = top_latencies(r.latencies, 7)
    assert top["latency_ns"].tolist() == sorted(r.latencies["latency_ns"].tolist(), reverse=True)[:7]


def test_histogram_counts_every_latency_in_its_bucket() -> None:
    r = sched_latencies(tracewatch.open(str(MANY_THREADS)))
    lat = r.latencies["latency_ns"].tolist()
    h = latency_histogram(r.latencies, 13)
    lo, hi, cnt = h["lo_ns"].tolist(), h["hi_ns"].tolist(), h["count"].tolist()
    assert len(cnt) == 13 and sum(cnt) == len(lat)
    assert lo[0] == min(lat) and hi[-1] >= max(lat)
    # an independent count: bucket i holds lo[i] <= x < hi[i] (the last also holds x == max)
    expected = [sum(1 for x in lat if lo[i] <= x < hi[i] or (i == 12 and x == hi[i])) for i in range(13)]
    assert cnt == expected


def test_filter_by_latency_bounds() -> None:
    r = sched_latencies(tracewatch.open(str(MANY_THREADS)))
    lat = r.latencies["latency_ns"]
    f = filter_latencies(r.latencies, 10_000, 50_000)
    assert f["latency_ns"].tolist() == [int(x) for x in lat if 10_000 <= x <= 50_000]
    h = latency_histogram(f, 4, 10_000, 50_000)
    assert h["lo_ns"].tolist() == [10_000, 20_000, 30_000, 40_000] and int(h["count"].sum()) == f.nrows


def _run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = main(list(args))
    return rc, out.getvalue()


def test_cli_mi_log_top_freq() -> None:
    lat = _latencies()
    rc, out = _run("sched", "--mi", "--log", "--top-latencies", "5", "--freq", "--freq-resolution", "8",
                   str(MANY_THREADS))
    assert rc == 0
    tables = {t["class"]: t for t in json.loads(out)["results"]}
    assert len(tables["log"]["data"]) == len(lat)
    top = [row[2]["value"] for row in tables["top"]["data"]]
    assert top == sorted(lat, reverse=True)[:5]
    freq = tables["freq"]["data"]
    assert len(freq) == 8 and sum(row[2]["value"] for row in freq) == len(lat)


def test_cli_human_views_and_bounds() -> None:
    rc, out = _run("sched", "--top-latencies", "3", "--freq", "--min", "10", "--max", "1000", str(MANY_THREADS))
    assert rc == 0
    assert "Top 3 scheduling latencies" in out and "frequency distribution" in out
    lat = np.array(_latencies())
    assert ((lat >= 10_000) & (lat <= 1_000_000)).any()


def test_irq_frequency_distributions() -> None:
    from tracewatch.analyses.irq import irq_histograms, irq_stats

    r = irq_stats(tracewatch.open(str(MANY_THREADS)))
    hists = irq_histograms(r, 5)
    assert len(hists) == r.hard.nrows + r.soft.nrows
    for hard, nr, _name, h in hists:
        d = [int(x) for x, hh, n in zip(r.log["duration_ns"], r.log["hard"], r.log["nr"], strict=True)
             if bool(hh) == hard and int(n) == nr]
        assert int(h["count"].sum()) == len(d)
        assert int(h["lo_ns"][0]) == min(d) and int(h["hi_ns"][-1]) >= max(d)
    rc, out = _run("irq", "--mi", "--freq", "--freq-resolution", "5", str(MANY_THREADS))
    freq = [t for t in json.loads(out)["results"] if isinstance(t["class"], dict) and t["class"]["inherit"] == "freq"]
    assert rc == 0 and len(freq) == len(hists)
    assert all(len(t["data"]) == 5 for t in freq)
    rc, out = _run("irq", "--freq", str(MANY_THREADS))
    assert rc == 0 and "duration frequency distribution" in out
