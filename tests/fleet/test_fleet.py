"""tracewatch.fleet: per-host analyses of a fleet root, locally and on a real
dask.distributed cluster (two worker processes).

Oracle: every host's rows of every fleet table equal the tables of the analysis' own function
(:mod:`tracewatch.analyses`, checked against lttng-analyses and babeltrace2 elsewhere) run
directly on that host's traces (``partial=True``, as the analysis commands run them); the
truncated host's error is the line ``tracewatch dump`` prints for it and its event count the
number of events dump printed before it; a host without system call events has the error
``tracewatch syscalls`` prints for it; the summary numbers are recomputed by hand from the
per-host tables; the event count of an intact host is babeltrace2's.
"""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tracewatch.analyses.cputop import cputop
from tracewatch.ctf.trace import Trace, TraceSet, find_traces
from tracewatch.fleet import (
    ANALYSES,
    FleetResult,
    HostTraces,
    analyze_fleet,
    analyze_host,
    discover,
)
from tracewatch.sync import host_id

from ..conftest import ROOT, babeltrace2
from ..kernel.truncated_trace import run
from .conftest import Fleet
from .oracle import assert_same, direct, rows_of, summary_by_hand

HOSTS = {"wilbrod@node-a", "wilbrod@node-b", "wilbrod@broken", "VM1", "VM3", "sim-host", "vm001"}


@pytest.fixture(scope="module")
def local(fleet: Fleet) -> FleetResult:
    """The fleet analysed in this process (no client), with the per-event tables."""
    return analyze_fleet(str(fleet.root), detail=True)


def expected_error(h: HostTraces, begin: int | None = None, end: int | None = None,
                   period: int | None = None) -> str | None:
    """The faults of the analyses' own runs first, then the errors of those that could not
    run (missing events), each once."""
    faults, missing = [], []
    for a in ANALYSES:
        tables, err = direct(h, a, begin, end, period)
        if err is not None:
            (faults if tables else missing).append(err)
    return "; ".join(dict.fromkeys(faults + missing)) or None


def check_against_direct(res: FleetResult, begin: int | None = None, end: int | None = None,
                         period: int | None = None) -> None:
    for r in res.hosts:
        h = r.host
        for a in res.analyses:
            tables, _ = direct(h, a, begin, end, period)
            for name, t in tables.items():
                if name in res.tables:
                    assert_same(rows_of(res.tables[name], h.host), t)
        assert r.error == expected_error(h, begin, end, period), h.host


def test_discovery(fleet: Fleet) -> None:
    root = str(fleet.root)
    hosts = discover(root)
    assert {h.host for h in hosts} == HOSTS
    by = {h.host: h for h in hosts}
    # every trace directory once, each with the machine id tracewatch.sync gives it
    assert sorted(p for h in hosts for p in h.paths) == sorted(find_traces(root))
    for h in hosts:
        for p in h.paths:
            assert host_id(Trace.open(p)) == h.host_id
    # one directory, two machines: two hosts named by their hostnames
    assert by["VM1"].paths == (os.path.join(root, "pair", "scp_src"),)
    assert by["VM3"].paths == (os.path.join(root, "pair", "scp_dest"),)
    assert by["sim-host"].paths == (os.path.join(root, "sim", "host"),)
    # one machine under three directories: three hosts, told apart by their directory
    assert by["wilbrod@node-a"].host_id == by["wilbrod@node-b"].host_id == by["wilbrod@broken"].host_id
    assert by["wilbrod@node-a"].hostname == "wilbrod"
    assert by["wilbrod@node-a"].nbytes == sum(f.stat().st_size for f in (fleet.root / "node-a").iterdir()
                                              if f.is_file() and f.name != "metadata")


def test_each_host_as_its_analyses_alone(local: FleetResult, fleet: Fleet) -> None:
    assert [r.host.host for r in local.hosts] == [h.host for h in discover(str(fleet.root))]
    check_against_direct(local)
    # the truncated host: dump's error line, and the events dump printed before it
    err = local.errors["wilbrod@broken"]
    assert f"tracewatch: error: {err}" == fleet.broken.error
    row = local.summary.set_index("host").loc["wilbrod@broken"]
    assert row["events"] == fleet.broken.n_events
    # no system call events: the line `tracewatch syscalls` prints, the other analyses ran
    for host, d in (("VM1", "scp_src"), ("VM3", "scp_dest")):
        rc, _, serr = run("syscalls", str(fleet.root / "pair" / d))
        assert rc == 1 and serr.splitlines()[-1] == f"tracewatch: error: {local.errors[host]}"
        assert len(rows_of(local.tables["cputop.per_tid"], host)) > 0
    assert set(local.errors) == {"wilbrod@broken", "VM1", "VM3", "sim-host"}  # sim-host: no syscalls, no IRQs


def test_summary_by_hand(local: FleetResult, fleet: Fleet) -> None:
    s = local.summary.set_index("host")
    assert set(s.index) == HOSTS and s.index.is_unique
    for host in HOSTS:
        row = s.loc[host]
        r = next(r for r in local.hosts if r.host.host == host)
        # the range: cputop's (first and last event)
        ref = cputop(TraceSet(list(r.host.paths)), partial=True)
        assert (row["begin"], row["end"]) == (ref.begin, ref.end)
        ran = {name.split(".")[0] for name in r.tables}
        want = summary_by_hand(local.tables, host, ref.begin, ref.end, ran)
        for k, v in want.items():
            got = row[k]
            if isinstance(v, float) and math.isnan(v):
                assert math.isnan(got), (host, k)
            elif isinstance(v, float):
                assert got == pytest.approx(v, rel=1e-12), (host, k)
            else:
                assert got == v, (host, k)
        if host in ("VM1", "VM3", "sim-host"):
            assert "syscalls" not in ran
    # the events of an intact host: babeltrace2's
    n = len(babeltrace2(str(fleet.root / "node-a")).stdout.splitlines())
    assert s.loc["wilbrod@node-a", "events"] == n


def test_on_a_dask_cluster(local: FleetResult, fleet: Fleet) -> None:
    """Two worker processes: the same view as the local loop, every host reported once as
    it completed, computed in the workers."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        seen: list[str] = []
        res = analyze_fleet(str(fleet.root), client=client, detail=True, on_host=lambda r: seen.append(r.host.host))
        pids = set(client.run(os.getpid).values())
    assert sorted(seen) == sorted(HOSTS)
    pd.testing.assert_frame_equal(res.summary, local.summary)
    assert res.tables.keys() == local.tables.keys()
    for name, df in local.tables.items():
        pd.testing.assert_frame_equal(res.tables[name], df)
    assert res.errors == local.errors
    ran = {int(r.worker.rsplit(":", 1)[1]) for r in res.hosts}
    assert ran <= pids and os.getpid() not in ran
    # a table as a dask DataFrame, one partition per host
    dd_ = res.to_dask("cputop.per_tid")
    assert dd_.npartitions == len(HOSTS)
    got = dd_.loc["VM1"].compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(got, rows_of(local.tables["cputop.per_tid"], "VM1"), check_dtype=False)  # dask: pyarrow strings


def test_period_and_range(fleet: Fleet) -> None:
    """--period windows and a [begin, end] range: the *_periods functions / the range."""
    hosts = [h for h in discover(str(fleet.root)) if h.host in ("wilbrod@node-a", "wilbrod@broken", "vm001")]
    res = analyze_fleet(hosts, period=50_000_000, detail=True)
    check_against_direct(res, period=50_000_000)
    for r in res.hosts:
        tables, _ = direct(r.host, "cputop", period=50_000_000)
        windows = tables["cputop.per_cpu"].to_pandas()["period_begin"].nunique()
        assert sum(res.summary["host"] == r.host.host) == windows == len(r.rows)
    b, e = 1457113582900000000, 1457113583100000000
    res = analyze_fleet(hosts[:1] if hosts[0].host == "wilbrod@node-a" else hosts, begin=b, end=e, detail=True)
    check_against_direct(res, begin=b, end=e)


def test_unreadable_host_and_small_results(fleet: Fleet, tmp_path: Path) -> None:
    """A host whose traces vanished: dump's error for them; results pickle small."""
    gone = HostTraces("gone", "", "gone", (str(tmp_path / "gone"),))
    res = analyze_fleet([gone, *[h for h in discover(str(fleet.root)) if h.host == "wilbrod@node-a"]])
    rc, _, err = run("dump", str(tmp_path / "gone"))
    assert rc == 1 and err.strip() == f"tracewatch: error: {res.errors['gone']}"
    assert list(res.summary["host"]) == ["gone", "wilbrod@node-a"]
    assert res.summary["events"].isna().tolist() == [True, False]
    r = analyze_host(res.hosts[1].host)
    size = len(pickle.dumps(r))
    assert size < r.host.nbytes / 4, size  # tables, not a trace


def test_import_tracewatch_without_dask() -> None:
    code = ("import sys, tracewatch, tracewatch.fleet, tracewatch.cli.main; "
            "print(sorted(m for m in ('dask', 'distributed', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
