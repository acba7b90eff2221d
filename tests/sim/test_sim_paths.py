"""The ``paths`` scenario of the simulator (critical path ground truth): deterministic, its
traces read by babeltrace2, and a truth whose paths are consistent with the events written
(independent checks: packets, wakeups and switches in the guest traces)."""

from __future__ import annotations

import filecmp
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import tracewatch
from tests.conftest import babeltrace2
from tracewatch.sim import gebai2014, paths, simulate

H0 = 1_700_000_000 * 1_000_000_000


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("paths")
    res = simulate(paths(duration=600_000_000, seed=1), out)
    return out, json.loads(res.truth_path.read_text())


def test_deterministic_and_window_independent(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    simulate(paths(duration=200_000_000, seed=3), a)
    simulate(paths(duration=200_000_000, seed=3), b, window=9_000_000)
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert len(files) > 5 and not mismatch and not errors


def test_existing_scenarios_have_no_path_truth(tmp_path: Path) -> None:
    res = simulate(gebai2014(duration=100_000_000, seed=1), tmp_path / "g")
    truth = json.loads(res.truth_path.read_text())
    assert not any("critical_paths" in m for m in truth["machines"].values())


def test_babeltrace2_reads_every_event(run: tuple[Path, dict[str, Any]]) -> None:
    out, truth = run
    for name, n in truth["events"].items():
        lines = babeltrace2(str(out / name)).stdout.splitlines()
        assert len(lines) == n, name


def test_paths_are_contiguous_and_sum_to_the_cycle(run: tuple[Path, dict[str, Any]]) -> None:
    _, truth = run
    n = 0
    for m in truth["machines"].values():
        for c in m.get("critical_paths", []):
            iv = c["intervals"]
            assert iv[0][0] == c["start"] and iv[-1][1] == c["end"]
            assert all(x[1] == y[0] for x, y in zip(iv, iv[1:], strict=False))
            assert sum(b - a for a, b, *_ in iv) == c["duration"] == c["end"] - c["start"]
            n += 1
    assert n > 60


def _guest_events(out: Path, vm: str) -> list[tuple[str, int, int, dict[str, Any]]]:
    with tracewatch.open(str(out / f"guest-{vm}")) as ts:
        return [(e.name, e.timestamp, e.cpu, dict(e.fields)) for e in ts.events()]


def test_truth_agrees_with_the_written_events(run: tuple[Path, dict[str, Any]]) -> None:
    """Guest clocks equal the host's here: truth times are trace times. Every NETWORK wait
    of curl ends at a sched_waking of curl (tid 500) that follows an inet_sock_local_in on
    the same vCPU, and the path before it is httpd's, whose reply packet (sent by httpd in
    task context) is in back's trace at the NETWORK interval's start."""
    out, truth = run
    front, back = _guest_events(out, "front"), _guest_events(out, "back")
    wakes = {t for name, t, _, f in front if name == "sched_waking" and f["tid"] == 500}
    recv = sorted(t for name, t, _, _ in front if name == "inet_sock_local_in")
    sends = {t for name, t, _, _ in back if name == "inet_sock_local_out"}
    checked = Counter[str]()
    for c in truth["machines"]["guest-front"]["critical_paths"]:
        if c["comm"] != "curl":
            continue
        for i, (a, b, m, _tid, _comm, state, _) in enumerate(c["intervals"]):
            if state == "NETWORK" and m == "guest-front":
                assert b in wakes
                assert any(a <= r <= b for r in recv)
                prev = c["intervals"][i - 1]
                if prev[4] == "httpd":
                    assert a in sends
                    checked["reply"] += 1
            if state == "TIMER":
                assert b in wakes
                checked["timer"] += 1
    assert checked["reply"] >= 5 and checked["timer"] >= 5
    assert H0 < min(wakes)
