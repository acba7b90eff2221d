"""Prometheus export: the exposition text (parsed with prometheus_client's parser), then a real
Prometheus server (Debian's ``prometheus``, run here with its own config and TSDB) scraping

* the endpoint fed with the windows of a recorded trace (lttng-kernel-tcp-sync, host VM1,
  24 windows): once it has scraped the last window, every series it holds (``/api/v1/query``)
  equals the exposed text and the offline results: gauges those of the last window, counters
  the sums over the windows;
* ``tracewatch live URL --analysis count --period 1s --mi --prometheus 127.0.0.1:PORT``
  following a real live session (lttng-sessiond/relayd, a UST app emitting 300 events over
  ~3 s, as tests/live do): Prometheus ends with ``tracewatch_events_total`` = 300 = the sum of
  the printed windows' counts, while the session is still alive (windows closed by relayd's
  beacons).
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tracewatch.analyses.periodic import stream_periods
from tracewatch.ctf.trace import TraceSet
from tracewatch.export.metrics import METRICS, Sample, window_samples
from tracewatch.export.prometheus import PrometheusExporter, WindowCollector, parse_listen

from ..conftest import TCP_SYNC
from ..live.test_periodic import LIVE_TIMER_FLUSH, LineReader, wait_listed, wait_viewers
from .oracle import expected_windows

if TYPE_CHECKING:
    from ..live.conftest import LttngSessions, Relayd, UstApp

pytestmark = pytest.mark.timeout(180)

TRACEWATCH = [sys.executable, "-m", "tracewatch.cli.main"]
PERIOD = 1_000_000_000
ANALYSES = ["count", "cputop", "sched", "irq"]


def _key(name: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def parse_exposition(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, with prometheus_client's parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[_key(s.name, s.labels)] = s.value
    return out


def expected_exposition(windows: list[list[Sample]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Gauges of the last window; counters summed over every window (in window order)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for s in windows[-1]:
        if METRICS[s.name].kind == "gauge":
            out[_key(s.name, s.labels)] = s.value
    for w in windows:
        for s in w:
            if METRICS[s.name].kind == "counter":
                k = _key(s.name, s.labels)
                out[k] = out.get(k, 0.0) + s.value
    return out


def _s(name: str, value: float, end: int, **labels: str) -> Sample:
    return Sample(name, {"host": "h", **labels}, value, end, ("a", "b", "c"))


def test_exposition_text() -> None:
    """Two windows: gauges are the second's (a task gone from it is no longer exposed),
    counters the sums, label sets of counters stay; the text parses, TYPE/HELP included."""
    c = WindowCollector()
    c.update([_s("tracewatch_window_end_seconds", 1.0, 1),
              _s("tracewatch_task_cpu_usage_ratio", 0.5, 1, tid="7", comm='we"ird\\name'),
              _s("tracewatch_task_cpu_usage_ratio", 0.25, 1, tid="8", comm="b"),
              _s("tracewatch_events_total", 100, 1),
              _s("tracewatch_syscall_calls_total", 3, 1, syscall="open")])
    c.update([_s("tracewatch_window_end_seconds", 2.0, 2),
              _s("tracewatch_task_cpu_usage_ratio", 0.125, 2, tid="8", comm="b"),
              _s("tracewatch_events_total", 50, 2),
              _s("tracewatch_syscall_calls_total", 4, 2, syscall="read")])
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest

    reg = CollectorRegistry(auto_describe=False)
    reg.register(c)
    text = generate_latest(reg).decode()
    assert "# TYPE tracewatch_events_total counter" in text
    assert "# TYPE tracewatch_task_cpu_usage_ratio gauge" in text
    assert "# HELP tracewatch_window_end_seconds End of the latest analysed window" in text
    got = parse_exposition(text)
    assert got == {
        ("tracewatch_window_end_seconds", (("host", "h"),)): 2.0,
        ("tracewatch_task_cpu_usage_ratio", (("comm", "b"), ("host", "h"), ("tid", "8"))): 0.125,
        ("tracewatch_events_total", (("host", "h"),)): 150.0,
        ("tracewatch_syscall_calls_total", (("host", "h"), ("syscall", "open"))): 3.0,
        ("tracewatch_syscall_calls_total", (("host", "h"), ("syscall", "read"))): 4.0,
    }
    c.update([_s("tracewatch_task_cpu_usage_ratio", 0.5, 3, tid="7", comm='we"ird\\name')])
    got = parse_exposition(generate_latest(reg).decode())
    assert got[("tracewatch_task_cpu_usage_ratio", (("comm", 'we"ird\\name'), ("host", "h"), ("tid", "7")))] == 0.5


def test_parse_listen() -> None:
    assert parse_listen("9464") == ("0.0.0.0", 9464)
    assert parse_listen("127.0.0.1:9500") == ("127.0.0.1", 9500)
    assert parse_listen("[::1]:9500") == ("::1", 9500)
    for bad in ("", "host:", "x", ":99999"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def _wait(cond: Any, timeout: float, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def _scraped(prom: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for r in prom.query('{__name__=~"tracewatch_.+"}'):
        labels = {k: v for k, v in r["metric"].items() if k not in ("__name__", "job", "instance")}
        out[_key(r["metric"]["__name__"], labels)] = float(r["value"][1])
    return out


def test_prometheus_scrapes_a_recorded_trace_windows(prometheus_server: Any) -> None:
    path = str(TCP_SYNC / "scp_src")
    periods = list(stream_periods(TraceSet([path]), PERIOD, ANALYSES))
    assert len(periods) == 24
    with PrometheusExporter("127.0.0.1", 0) as exp:
        prom = prometheus_server([f"127.0.0.1:{exp.port}"])
        t = time.monotonic()
        windows = []
        for p in periods:
            windows.append(window_samples(p, "VM1"))
            exp.update(windows[-1])
        last_end = periods[-1].end * 1e-9

        def last_window_scraped() -> bool:
            r = prom.query('tracewatch_window_end_seconds{host="VM1"}')
            return bool(r) and float(r[0]["value"][1]) == last_end

        assert _wait(last_window_scraped, 30), "Prometheus never scraped the last window"
        first_scrape = time.monotonic() - t
        exposed = parse_exposition(exp.exposition())
        scraped = _scraped(prom)
    want = expected_exposition(list(expected_windows([path], PERIOD, ANALYSES, "VM1", 10).values()))
    assert set(exposed) == set(want)
    assert set(scraped) == set(want)
    for k, v in want.items():
        assert math.isclose(exposed[k], v, rel_tol=1e-12, abs_tol=0), (k, exposed[k], v)
        assert scraped[k] == exposed[k], (k, scraped[k], exposed[k])
    print(f"{len(want)} series: exposed = scraped = offline; last window in Prometheus "
          f"{first_scrape:.2f} s after it was exposed (scrape interval 1 s)")


def test_live_session_exported_to_prometheus(relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp,
                                             prometheus_server: Any) -> None:
    n = 300
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    prom = prometheus_server([f"127.0.0.1:{port}"])
    name = lttng_session.create()
    wait_listed(relayd, name)
    proc = subprocess.Popen([*TRACEWATCH, "live", relayd.url(name), "--analysis", "count", "--period", "1s",
                             "--mi", "--prometheus", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    host = socket.gethostname()
    try:
        reader = LineReader(proc)
        wait_viewers(relayd, name, 1)
        # the endpoint answers before any window (no tracewatch series yet)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert b"tracewatch_" not in r.read()
        app = ust_app.start(n, 10_000)

        def events_total() -> float:
            r = prom.query(f'tracewatch_events_total{{host="{host}"}}')
            return float(r[0]["value"][1]) if r else 0.0

        first = _wait(lambda: events_total() > 0, 20)
        first_seen = time.monotonic()
        assert first, "Prometheus never got a window"
        assert app.wait(60) == 0
        assert _wait(lambda: events_total() == n, 15), f"events_total stayed {events_total()}"
        done = time.monotonic()
        by_name = prom.query(f'tracewatch_events_by_name_total{{host="{host}"}}')
        lag = prom.query(f'tracewatch_live_lag_seconds{{host="{host}"}}')
        end = prom.query(f'tracewatch_window_end_seconds{{host="{host}"}}')
        time.sleep(LIVE_TIMER_FLUSH)
        lttng_session.destroy(name)
        proc.wait(30)
        reader.join(10)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    docs = [json.loads(ln) for _, ln in reader.lines]
    totals = [next(t for t in d["results"] if t["class"] == "total")["data"][0][0]["value"] for d in docs]
    assert sum(totals) == n
    assert [(r["metric"]["event"], float(r["value"][1])) for r in by_name] == [("tracewatch_test:seq", n)]
    assert lag and 0 <= float(lag[0]["value"][1]) < 5
    last_doc_end = docs[-1]["results"][0]["time-range"]["end"]["value"]
    assert float(end[0]["value"][1]) * 1e9 >= last_doc_end - 1e3
    print(f"live: {len(docs)} windows; first in Prometheus {first_seen - prom.started:.2f} s after it "
          f"started, all {n} events {done - first_seen:.2f} s after that; last lag "
          f"{float(lag[0]['value'][1]):.3f} s")
