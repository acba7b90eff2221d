"""The oracle of the export tests: each window's metrics computed from the offline
``*_periods`` results (the analyses are checked elsewhere against lttng-analyses and
babeltrace2), and per-event-name counts counted here from the decoded timestamps.

:func:`expected_windows` gives, per window end (ns), the samples
:func:`tracewatch.export.metrics.result_samples` makes of the offline results of that window
(matched by their first event: window index = (first - t0) // period), plus the window's own
samples (bounds, events, nothing discarded or late).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tracewatch.analyses.cputop import cputop_periods
from tracewatch.analyses.irq import irq_periods
from tracewatch.analyses.periodic import count_events
from tracewatch.analyses.sched import sched_periods
from tracewatch.analyses.syscalls import syscalls_periods
from tracewatch.ctf.trace import TraceSet
from tracewatch.export.metrics import Sample, result_samples

OFFLINE = {"cputop": cputop_periods, "sched": sched_periods, "syscalls": syscalls_periods,
           "irq": irq_periods}


def _events(ts: TraceSet) -> tuple[np.ndarray, np.ndarray]:
    stamps, gids = [], []
    for b in ts.batches():
        stamps.append(b.ts.astype(np.int64))
        gids.append(b.gid.astype(np.int64))
    return np.concatenate(stamps), np.concatenate(gids)


def offline_results(paths: list[str], period: int, analyses: Iterable[str]
                    ) -> tuple[int, dict[int, dict[str, object]], dict[int, tuple[int, int, int]]]:
    """(t0, window index -> analysis -> offline result, window index -> (first, last, n events))."""
    ts = TraceSet(paths)
    stamps, gids = _events(ts)
    t0 = int(stamps.min())
    k_all = (stamps - t0) // period
    windows: dict[int, tuple[int, int, int]] = {}
    by_k: dict[int, dict[str, object]] = {}
    for k in np.unique(k_all).tolist():
        m = k_all == k
        windows[k] = (int(stamps[m].min()), int(stamps[m].max()), int(m.sum()))
    for a in analyses:
        if a == "count":
            for k, (first, last, _) in windows.items():
                by_k.setdefault(k, {})["count"] = count_events(ts.classes, gids[k_all == k], first, last)
            continue
        for r in OFFLINE[a](TraceSet(paths), period):
            k = (r.begin - t0) // period
            assert k not in by_k.get(k, {}) or a not in by_k[k]
            by_k.setdefault(k, {})[a] = r
    return t0, by_k, windows


def expected_windows(paths: list[str], period: int, analyses: Iterable[str], host: str,
                     top: int) -> dict[int, list[Sample]]:
    """Window end (ns) -> the samples the export of that window must give."""
    analyses = list(analyses)
    t0, by_k, windows = offline_results(paths, period, analyses)
    out: dict[int, list[Sample]] = {}
    for k, (_first, _last, n) in windows.items():
        begin, end = t0 + k * period, t0 + (k + 1) * period
        w = [Sample("tracewatch_window_start_seconds", {"host": host}, begin * 1e-9, end,
                    ("trace", "window", "start_seconds")),
             Sample("tracewatch_window_end_seconds", {"host": host}, end * 1e-9, end,
                    ("trace", "window", "end_seconds")),
             Sample("tracewatch_events_total", {"host": host}, float(n), end, ("trace", "events", "count")),
             Sample("tracewatch_discarded_events_total", {"host": host}, 0.0, end,
                    ("trace", "events", "discarded")),
             Sample("tracewatch_late_events_total", {"host": host}, 0.0, end, ("trace", "events", "late"))]
        for a in analyses:
            r = by_k.get(k, {}).get(a)
            if r is not None:
                w += result_samples(a, r, host, end, top)
        out[end] = w
    return out
