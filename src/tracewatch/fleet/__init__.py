"""Many machines' traces at once: per-host analyses in parallel (on a Dask cluster, or
locally) and a fleet view with one row per host.

>>> from tracewatch.fleet import analyze_fleet, discover
>>> from distributed import Client                                   # doctest: +SKIP
>>> fleet = analyze_fleet("/srv/traces/2024-06-01", client=Client("tcp://sched:8786"))  # doctest: +SKIP
>>> fleet.summary            # pandas: host, events, cpu_usage, top_task, sched_p99_ns, ..., error   # doctest: +SKIP
>>> fleet.tables["cputop.per_tid"]          # every host's rows, a host column first   # doctest: +SKIP

:mod:`.discover` finds the hosts under a root (trace directories grouped by machine, as
:mod:`tracewatch.sync` identifies them); :mod:`.host` is one host's task (its traces read
once for every analysis, errors kept as one line); :mod:`.run` submits the tasks and builds
the pandas view.

May import :mod:`tracewatch.ctf`, :mod:`tracewatch.kernel`, :mod:`tracewatch.analyses`,
:mod:`tracewatch.sync`, :mod:`tracewatch.vm`, :mod:`tracewatch.export` and
:mod:`tracewatch.errors`; never the CLI. Dask (``dask[distributed,dataframe]``) is imported
only when a client is used or a dask DataFrame asked for; pandas when the view is built.
"""

from __future__ import annotations

from .discover import HostTraces, discover
from .host import ANALYSES, DETAIL_TABLES, SUMMARY_COLUMNS, TABLES, HostResult, analyze_host
from .run import FleetResult, analyze_fleet, local_cluster, summary_columns

__all__ = ["ANALYSES", "DETAIL_TABLES", "SUMMARY_COLUMNS", "TABLES", "FleetResult", "HostResult",
           "HostTraces", "analyze_fleet", "analyze_host", "discover", "local_cluster", "summary_columns"]
