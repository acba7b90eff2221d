"""Running a fleet's analyses, on a Dask cluster or locally, and the fleet view.

:func:`analyze_fleet` submits one task per host (:func:`~.host.analyze_host`: the host's
traces read once for every analysis) to a ``dask.distributed`` client, largest hosts first,
and gathers each :class:`~.host.HostResult` as it completes (``on_host`` is called then: a
progress bar); without a client the hosts are analysed one after the other in this process
(no Dask needed). A task that fails on the cluster (a worker killed...) becomes that host's
error; the other hosts complete. The workers must see the traces at the same paths (a shared
file system) and have tracewatch installed.

:class:`FleetResult` holds the fleet view as pandas DataFrames: :attr:`FleetResult.summary`
(one row per host, or per host and window with a period: host, hostname, begin, end, events,
the columns of :data:`~.host.SUMMARY_COLUMNS`, error) and :attr:`FleetResult.tables` (each
result table of every host concatenated, a ``host`` column first); :meth:`FleetResult.to_dask`
gives a table as a dask DataFrame indexed and partitioned by host.

Owns the scheduling and the fleet view. Imports :mod:`.discover`, :mod:`.host` and
:mod:`tracewatch.errors`; pandas when the view is built, dask only when a client is given or
a dask DataFrame asked for.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import TracewatchError
from .discover import HostTraces, discover
from .host import (
    ANALYSES,
    DETAIL_TABLES,
    SUMMARY_COLUMNS,
    TABLES,
    HostResult,
    analyze_host,
    error_line,
)

__all__ = ["FleetResult", "analyze_fleet", "local_cluster", "summary_columns"]


def local_cluster(n_workers: int, **kwargs: Any) -> Any:
    """A ``distributed.LocalCluster`` of ``n_workers`` processes of one thread each, for
    :func:`analyze_fleet`. Its workers do not get Dask's default ``MALLOC_TRIM_THRESHOLD_``
    (64 KiB: memory given back to the system at every free, which makes the analyses'
    NumPy allocations ~30 % slower); a cluster started elsewhere gains the same by dropping
    it from ``distributed.nanny.pre-spawn-environ``. ``kwargs`` go to ``LocalCluster``."""
    import dask
    from distributed import LocalCluster

    env = {k: v for k, v in dict(dask.config.get("distributed.nanny.pre-spawn-environ", {})).items()
           if k != "MALLOC_TRIM_THRESHOLD_"}
    options: dict[str, Any] = {"threads_per_worker": 1, "processes": True, "dashboard_address": None,
                               **kwargs}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        return LocalCluster(n_workers=n_workers, **options)


def summary_columns(analyses: Sequence[str], periodic: bool = False) -> list[str]:
    """The columns of :attr:`FleetResult.summary` for these analyses."""
    cols = ["host", "hostname"]
    if periodic:
        cols += ["period_begin", "period_end"]
    cols += ["begin", "end", "events"]
    for a in analyses:
        cols += SUMMARY_COLUMNS[a]
    return [*cols, "error"]


@dataclass
class FleetResult:
    """The results of a fleet: per host (:attr:`hosts`, in discovery order) and as pandas
    DataFrames (see the module doc)."""

    hosts: list[HostResult]
    analyses: tuple[str, ...]
    summary: Any  # pandas.DataFrame
    tables: dict[str, Any] = field(default_factory=dict)  # name -> pandas.DataFrame

    @property
    def errors(self) -> dict[str, str]:
        """Host -> its error line, for the hosts that have one."""
        return {r.host.host: r.error for r in self.hosts if r.error is not None}

    def to_dask(self, name: str) -> Any:
        """Table ``name`` (or ``"summary"``) as a dask DataFrame indexed by host, one
        partition per host (``.loc[host]`` reads one partition)."""
        import dask.dataframe as dd

        df = self.summary if name == "summary" else self.tables[name]
        hosts = sorted(set(df["host"].tolist()))
        return dd.from_pandas(df.set_index("host").sort_index(), npartitions=max(1, len(hosts)), sort=True)


def _table_names(analyses: Sequence[str], detail: bool) -> list[str]:
    return [t for a in analyses for t in TABLES[a] if detail or t not in DETAIL_TABLES]


def _build(results: list[HostResult], analyses: tuple[str, ...], periodic: bool,
           detail: bool) -> FleetResult:
    import pandas as pd

    cols = summary_columns(analyses, periodic)
    rows: list[dict[str, Any]] = []
    for r in results:
        base = {"host": r.host.host, "hostname": r.host.hostname}
        for i, row in enumerate(r.rows or [{}]):
            rows.append({**base, **row, "error": r.error if i == 0 else None})
    summary = pd.DataFrame(rows, columns=cols)
    tables: dict[str, Any] = {}
    for name in _table_names(analyses, detail):
        parts = []
        for r in results:
            t = r.tables.get(name)
            if t is None:
                continue
            df = t.to_pandas()
            df.insert(0, "host", r.host.host)
            parts.append(df)
        nonempty = [p for p in parts if len(p)]
        if nonempty:
            tables[name] = pd.concat(nonempty, ignore_index=True)
        elif parts:
            tables[name] = parts[0].reset_index(drop=True)
        else:
            tables[name] = pd.DataFrame({"host": pd.Series([], dtype=object)})
    return FleetResult(results, analyses, summary, tables)


def analyze_fleet(root_or_hosts: str | os.PathLike[str] | Sequence[HostTraces],
                  analyses: Sequence[str] = ANALYSES, client: Any = None,
                  begin: int | None = None, end: int | None = None, period: int | None = None,
                  detail: bool = False,
                  on_host: Callable[[HostResult], None] | None = None) -> FleetResult:
    """Analyse every host under a fleet root (or the hosts given, see
    :func:`~.discover.discover`) with ``analyses`` (names of :data:`~.host.ANALYSES`) over
    [begin, end] (ns since the epoch), one result per window of ``period`` ns when given;
    ``detail``: also the per-event tables (sched.latencies, syscalls.calls, irq.log).

    ``client``: a ``dask.distributed.Client`` (one task per host); None: a loop in this
    process. ``on_host(result)`` is called on each host as it completes."""
    analyses_t = tuple(dict.fromkeys(analyses))
    unknown = [a for a in analyses_t if a not in ANALYSES]
    if unknown or not analyses_t:
        raise TracewatchError(f"unknown analysis {', '.join(unknown) or '(none)'}; "
                              f"choose among {', '.join(ANALYSES)}")
    if period is not None and period <= 0:
        raise TracewatchError("the period must be positive")
    if isinstance(root_or_hosts, (str, os.PathLike)):
        hosts = discover(root_or_hosts)
    else:
        hosts = list(root_or_hosts)
    args = (analyses_t, begin, end, period, detail)
    if client is None:
        results = []
        for h in hosts:
            r = analyze_host(h, *args)
            if on_host is not None:
                on_host(r)
            results.append(r)
    else:
        results = _on_cluster(client, hosts, args, on_host)
    return _build(results, analyses_t, period is not None, detail)


def _on_cluster(client: Any, hosts: list[HostTraces], args: tuple[Any, ...],
                on_host: Callable[[HostResult], None] | None) -> list[HostResult]:
    from distributed import as_completed

    run = uuid.uuid4().hex[:12]
    index = {}
    futures = []
    for i, h in enumerate(hosts):
        # one task per host; the largest first (they finish last otherwise); pure=False: a
        # trace may change between two runs
        f = client.submit(analyze_host, h, *args, key=f"tracewatch-fleet-{run}-{i}", pure=False,
                          priority=h.nbytes)
        index[f.key] = i
        futures.append(f)
    results: list[HostResult | None] = [None] * len(hosts)
    try:
        for f in as_completed(futures):
            i = index[f.key]
            try:
                r = f.result()
            except Exception as e:  # the task itself failed (worker lost...): that host's error
                r = HostResult(hosts[i], error=error_line(e))
            f.release()
            results[i] = r
            if on_host is not None:
                on_host(r)
    finally:
        for f in futures:
            if not f.done():
                f.cancel()
    return [r for r in results if r is not None]
