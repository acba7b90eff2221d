"""``tracewatch fleet ROOT``: the summary table, --csv/--parquet (the fleet's tables), --mi,
--workers (a local Dask cluster), and its errors (one line, exit status 1).

Oracle: :func:`tracewatch.fleet.analyze_fleet` run in this process (itself checked against
each host's analyses in test_fleet.py); the hosts that fail are those whose error lines it
gives, the first of which the command's last line repeats.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from tracewatch.fleet import FleetResult, analyze_fleet

from ..kernel.truncated_trace import run
from .conftest import Fleet


@pytest.fixture(scope="module")
def local(fleet: Fleet) -> FleetResult:
    return analyze_fleet(str(fleet.root), detail=True)


def check_error(err: str, local: FleetResult) -> None:
    """stderr: the readers' warnings, then one error line naming the first failed host."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert all(x.startswith("tracewatch: warning: ") for x in lines[:-1])
    host, line = next(iter(local.errors.items()))
    n = len(local.errors)
    assert lines[-1] == (f"tracewatch: error: {n} of {len(local.hosts)} hosts failed: {host}: {line} "
                         f"(and {n - 1} more, see the error column)")


def test_text(fleet: Fleet, local: FleetResult) -> None:
    rc, out, err = run("fleet", str(fleet.root))
    assert rc == 1
    check_error(err, local)
    assert f"Fleet: {len(local.hosts)} hosts" in out
    for row in local.summary.to_dict("records"):
        line = next(x for x in out.splitlines() if x.startswith(f"│ {row['host']} "))
        assert f"{row['events']:,}" in line
        assert f"{row['cpu_usage'] * 100:.2f}" in line
        assert f"{row['top_task']} ({row['top_tid']})" in line
        if not math.isnan(row["sched_p99_ns"]):
            assert f"{row['sched_p99_ns'] / 1000:.3f}" in line


def test_csv_and_parquet(fleet: Fleet, local: FleetResult, tmp_path: Path) -> None:
    rc, _, err = run("fleet", str(fleet.root), "--csv", str(tmp_path / "c"), "--detail")
    assert rc == 1
    check_error(err, local)
    rc, _, _ = run("fleet", str(fleet.root), "--parquet", str(tmp_path / "p"), "--detail")
    assert rc == 1
    names = ["summary", *local.tables]
    assert sorted(f.stem for f in (tmp_path / "c").iterdir()) == sorted(names)
    assert sorted(f.stem for f in (tmp_path / "p").iterdir()) == sorted(names)
    for name in names:
        want = local.summary if name == "summary" else local.tables[name]
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p" / f"{name}.parquet"), want,
                                      check_dtype=False)
        got = pd.read_csv(tmp_path / "c" / f"{name}.csv", keep_default_na=False, na_values=[""])
        assert list(got.columns) == list(want.columns) and len(got) == len(want)
        assert got["host"].tolist() == want["host"].tolist()
        for col in want.columns:
            if pd.api.types.is_numeric_dtype(want[col]) and not pd.api.types.is_bool_dtype(want[col]):
                pd.testing.assert_series_equal(got[col].astype(float), want[col].astype(float),
                                               check_exact=False, rtol=1e-12, check_names=False)


def test_mi(fleet: Fleet, local: FleetResult) -> None:
    rc, out, _ = run("fleet", str(fleet.root), "--mi")
    assert rc == 1
    doc = json.loads(out)
    (table,) = doc["results"]
    titles = [c["title"] for c in table["class"]["column-descriptions"]]
    assert titles[0] == "Host" and titles[-1] == "Error"
    rows = table["data"]
    assert [r[0]["value"] for r in rows] == local.summary["host"].tolist()
    p99 = titles.index("Scheduling latency p99")
    for r, (_, want) in zip(rows, local.summary.iterrows(), strict=True):
        assert r[p99]["value"] == want["sched_p99_ns"]
        assert (r[-1]["class"] == "unknown") == (not isinstance(want["error"], str))
    s = local.summary.dropna(subset=["begin"])
    assert table["time-range"]["begin"]["value"] == int(s["begin"].min())


def test_workers_give_the_same_output(fleet: Fleet) -> None:
    pytest.importorskip("distributed")
    args = ("fleet", str(fleet.root / "pair"), "--analysis", "cputop,sched,irq")
    rc, out, err = run(*args)
    assert rc == 0 and out.count("│ VM") == 2
    rc2, out2, _ = run(*args, "--workers", "2")
    assert rc2 == 0 and out2 == out


def test_errors(fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracewatch.cli import fleet as cli_fleet

    rc, out, err = run("fleet", str(tmp_path))
    assert rc == 1 and out == "" and err == f"tracewatch: error: {tmp_path}: no CTF trace found (no 'metadata' file under it)\n"
    monkeypatch.setattr(cli_fleet, "CONNECT_TIMEOUT", "1s")
    rc, out, err = run("fleet", str(fleet.root), "--scheduler", "tcp://127.0.0.1:1")
    assert rc == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("tracewatch: error: cannot reach the Dask scheduler tcp://127.0.0.1:1: ")
    rc, _, err = run("fleet", str(fleet.root), "--analysis", "cputop,nope")
    assert rc == 2 and "unknown analysis nope" in err
    rc, _, err = run("fleet", str(fleet.root), "--workers", "2", "--scheduler", "tcp://x:1")
    assert rc == 2 and "exclusive" in err
