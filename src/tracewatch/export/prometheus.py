"""An HTTP endpoint serving the latest window's samples in Prometheus' text exposition format.

Owns the Prometheus side: a ``prometheus_client`` custom collector (:class:`WindowCollector`)
in a registry of its own, served by ``prometheus_client``'s HTTP server
(:class:`PrometheusExporter`, ``/metrics``; default port :data:`DEFAULT_PORT`).
Imports :mod:`.metrics` and ``prometheus_client``.

Gauges are those of the most recent complete window (a task that left the top N is no
longer exposed); counters are the sums of every window's increase since the exporter
started (so ``rate()``/``increase()`` work), every label set once seen staying exposed (their
number is bounded, see :mod:`.metrics`). ``tracewatch_window_end_seconds`` tells which window
the values are of (``time() - tracewatch_window_end_seconds`` shows staleness, on a live
session whose trace clock is the wall clock). Samples carry no timestamp: Prometheus stamps
them at scrape time (it would refuse the trace's own time of an old recording).

The default port, 9464: Prometheus' list of exporter ports (9100-9999) is full; 9464 is the
one the OpenTelemetry Prometheus exporters use by default, free on a host that runs none.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from .metrics import METRICS, Sample

__all__ = ["DEFAULT_PORT", "WindowCollector", "PrometheusExporter", "parse_listen"]

DEFAULT_PORT = 9464


def parse_listen(text: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``[HOST:]PORT`` (``[v6]:PORT`` for IPv6) -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_text = rest[1:] if sep and rest.startswith(":") else ""
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    else:
        host, port_text = default_host, text
    if not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ValueError(f"bad listen address {text!r}: [HOST:]PORT expected")
    return host, int(port_text)


class WindowCollector(Collector):
    """Holds the latest window's gauges and the counters' totals (thread-safe:
    :meth:`update` from the analysis, :meth:`collect` from the HTTP server)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gauges: list[Sample] = []
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.windows = 0

    def update(self, samples: Iterable[Sample]) -> None:
        """Take one complete window's samples (of one host or several)."""
        gauges: list[Sample] = []
        increases: list[Sample] = []
        for s in samples:
            (gauges if METRICS[s.name].kind == "gauge" else increases).append(s)
        with self._lock:
            self._gauges = gauges
            for s in increases:
                key = (s.name, tuple(s.labels.items()))
                self._counters[key] = self._counters.get(key, 0.0) + s.value
            self.windows += 1

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: names are not known before the first window

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            gauges = list(self._gauges)
            counters = dict(self._counters)
        families: dict[str, Any] = {}

        def family(name: str) -> Any:
            fam = families.get(name)
            if fam is None:
                info = METRICS[name]
                cls = CounterMetricFamily if info.kind == "counter" else GaugeMetricFamily
                fam = families[name] = cls(name, info.help, labels=list(info.labels))
            return fam

        for s in gauges:
            family(s.name).add_metric(list(s.labels.values()), s.value)
        for (name, labels), total in sorted(counters.items()):
            family(name).add_metric([v for _, v in labels], total)
        yield from (families[n] for n in METRICS if n in families)


class PrometheusExporter:
    """Serves a :class:`WindowCollector` on ``http://host:port/metrics`` from a daemon thread.

    ``port`` 0 picks a free port (see :attr:`port`). Use as a context manager or call
    :meth:`close`."""

    def __init__(self, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:
        self.collector = WindowCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.host = host
        self.port: int = self._server.server_address[1]

    def update(self, samples: Iterable[Sample]) -> None:
        self.collector.update(samples)

    def exposition(self) -> str:
        """The text a scrape gets now."""
        return generate_latest(self.registry).decode()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> PrometheusExporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
