"""Export of per-window analysis results to monitoring systems: Graphite and Prometheus.

:mod:`.metrics` turns one window's results of one host into flat :class:`~.metrics.Sample`
objects (the metric set and its naming, bounded cardinality); :mod:`.graphite` pushes them
with Graphite's plaintext protocol (buffered, reconnecting); :mod:`.prometheus` serves the
latest window over HTTP in Prometheus' text exposition format.

Imports :mod:`tracewatch.analyses` (and, through it, ctf/kernel); never the CLI or the live
package (a live lag is given as a number by the caller).
"""

from __future__ import annotations

from .metrics import DEFAULT_TOP, METRICS, MetricInfo, Sample, result_samples, window_samples

__all__ = ["DEFAULT_TOP", "METRICS", "MetricInfo", "Sample", "result_samples", "window_samples"]
