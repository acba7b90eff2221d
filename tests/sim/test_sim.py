"""The VM simulator: determinism, readable traces, and a ground truth that independent
recomputations from the written events agree with (to the nanosecond where exact)."""

from __future__ import annotations

import bisect
import filecmp
import json
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import tracewatch
from tests.conftest import babeltrace2
from tracewatch.cli.sim import sim
from tracewatch.sim import build_scenario, gebai2014, simulate
from tracewatch.sim.emit import EXIT_REASONS

REASON_NAMES = {v: k for k, v in EXIT_REASONS.items()}
HOG = "burnP6:cpu=1:prio=0:on=60ms:off=120ms:phase=20ms"


def _generic(seed: int = 7, duration: int = 400_000_000) -> Any:
    return build_scenario(guests=3, vcpus=2, cpus=2, duration=duration, seed=seed, hogs=[HOG],
                          sync_period=20_000_000)


@pytest.fixture(scope="module")
def generic_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("generic")
    res = simulate(_generic(), out)
    return out, json.loads(res.truth_path.read_text())


@pytest.fixture(scope="module")
def crowded_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Every vCPU (two of the same VM too) and an equal-priority hog on one CPU."""
    out = tmp_path_factory.mktemp("crowded")
    sc = build_scenario(guests=2, vcpus=3, cpus=1, duration=300_000_000, seed=9,
                        hogs=["hog:cpu=0:prio=20:on=40ms:off=30ms"], sync_period=10_000_000)
    res = simulate(sc, out, window=13_000_000)
    return out, json.loads(res.truth_path.read_text())


@pytest.fixture(scope="module")
def gebai_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("gebai")
    res = simulate(gebai2014(duration=1_400_000_000, seed=1), out)
    return out, json.loads(res.truth_path.read_text())


def _events(path: Path, names: list[str] | None = None) -> list[Any]:
    with tracewatch.open(str(path)) as ts:
        return [(ev.name, ev.timestamp, ev.cpu, ev.fields) for ev in ts.events(names=names)]


# -- determinism ------------------------------------------------------------------------

def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate(_generic(duration=150_000_000), a)
    simulate(_generic(duration=150_000_000), b, window=7_000_000)  # chunking is invisible
    simulate(_generic(seed=8, duration=150_000_000), c)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) > 5
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(a, b, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors
    assert (a / "truth.json").read_bytes() != (c / "truth.json").read_bytes()


# -- readers ----------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["generic_run", "gebai_run", "crowded_run"])
def test_babeltrace2_and_tracewatch_read_every_trace(which: str,
                                                     request: pytest.FixtureRequest) -> None:
    out, truth = request.getfixturevalue(which)
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    assert [d.name for d in dirs] == sorted(truth["events"])
    for d in dirs:
        expected = truth["events"][d.name]
        assert expected > 100
        res = babeltrace2(str(d))
        assert res.returncode == 0
        assert len(res.stdout.splitlines()) == expected, d.name
        with tracewatch.open(str(d)) as ts:
            assert sum(len(b) for b in ts.batches()) == expected, d.name
            assert {t.hostname for t in ts.traces} == {truth["machines"][d.name]["hostname"]}


# -- vCPU preemptions, hypervisor time: recomputed from host events ---------------------

def _vcpus(truth: dict[str, Any]) -> dict[int, tuple[str, dict[str, Any]]]:
    return {v["tid"]: (name, v) for name, m in truth["machines"].items()
            for v in m.get("vcpus", [])}


@pytest.mark.parametrize("which", ["generic_run", "gebai_run", "crowded_run"])
def test_preemption_intervals_match_sched_switch(which: str,
                                                 request: pytest.FixtureRequest) -> None:
    out, truth = request.getfixturevalue(which)
    vcpus = _vcpus(truth)
    opened: dict[int, tuple[int, int]] = {}
    got: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for _, ts, _, f in _events(out / "host", ["sched_switch"]):
        if f["next_tid"] in opened:
            start, culprit = opened.pop(f["next_tid"])
            got[f["next_tid"]].append((start, ts, culprit))
        if f["prev_tid"] in vcpus and f["prev_state"] == 0:
            opened[f["prev_tid"]] = (ts, f["next_tid"])
    total = 0
    for tid, (_, v) in vcpus.items():
        want = [(p["start"], p["end"], p["culprit"]["tid"]) for p in v["preemptions"]]
        assert got[tid] == want, tid
        for p in v["preemptions"]:
            assert p["duration"] == p["end"] - p["start"] > 0
            assert sum(ns for _, ns in p["by"]) == p["duration"]
            first = truth["culprits"][p["by"][0][0]]
            assert first["machine"] == "host" and "comm" in first
        total += len(want)
    assert total > 10


@pytest.mark.parametrize("which", ["generic_run", "gebai_run", "crowded_run"])
def test_hypervisor_time_matches_kvm_events(which: str, request: pytest.FixtureRequest) -> None:
    out, truth = request.getfixturevalue(which)
    vcpus = _vcpus(truth)
    current: dict[int, int] = {}  # cpu -> tid
    pending: dict[int, list[Any]] = {}  # vcpu tid -> [reason, exit ts, on-cpu, since]
    stats: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    by_uid = {m["vm_uid"]: m for m in truth["machines"].values() if "vm_uid" in m}
    names = ["sched_switch", "kvm_entry", "kvm_exit", "vmsync_gh_host"]
    for name, ts, cpu, f in _events(out / "host", names):
        if name == "vmsync_gh_host":
            # the hypercall is seen in a vCPU thread of the qemu process of that VM
            assert current[cpu] in by_uid[f["vm_uid"]]["vcpu_tids"]
            assert pending[current[cpu]][0] == "VMCALL"
        elif name == "sched_switch":
            prev, nxt = f["prev_tid"], f["next_tid"]
            if prev in pending:
                pending[prev][2] += ts - pending[prev][3]
            if nxt in pending:
                pending[nxt][3] = ts
            current[cpu] = nxt
        elif name == "kvm_exit":
            pending[current[cpu]] = [REASON_NAMES[f["exit_reason"]], ts, 0, ts]
        else:
            tid = current[cpu]
            assert vcpus[tid][1]["vcpu"] == f["vcpu_id"]
            p = pending.pop(tid, None)
            if p is not None:
                st = stats[tid][p[0]]
                st[0] += 1
                st[1] += p[2] + ts - p[3]
                st[2] += ts - p[1]
    for tid, (_, v) in vcpus.items():
        want = {r: [s["count"], s["total_ns"], s["wall_ns"]] for r, s in v["hypervisor"].items()}
        assert {r: list(s) for r, s in stats[tid].items()} == want, tid
    reasons = {r for _, v in vcpus.values() for r in v["hypervisor"]}
    assert {"HLT", "EXTERNAL_INTERRUPT", "MSR_WRITE", "VMCALL"} <= reasons


# -- guest clocks -----------------------------------------------------------------------

def _from_host(clock: dict[str, Any]) -> tuple[Fraction, Fraction]:
    return Fraction(clock["from_host"]["slope"]), Fraction(clock["from_host"]["offset"])


@pytest.mark.parametrize("which", ["generic_run", "gebai_run", "crowded_run"])
def test_guest_clock_transform_from_sync_events(which: str,
                                                request: pytest.FixtureRequest) -> None:
    out, truth = request.getfixturevalue(which)
    host = _events(out / "host", ["vmsync_gh_host", "vmsync_hg_host"])
    for name, m in truth["machines"].items():
        if name == "host":
            continue
        a, b = _from_host(m["clock"])
        ex = [x for v in m["vcpus"] for x in v["sync_exchanges"]]
        assert len(ex) >= 3
        guest = {(n, f["cnt"]): ts for n, ts, _, f in
                 _events(out / name, ["vmsync_gh_guest", "vmsync_hg_guest"])}
        hosted = {(n, f["cnt"]): ts for n, ts, _, f in host if f["vm_uid"] == m["vm_uid"]}
        pts = []
        for x in ex:
            gA, gD = guest[("vmsync_gh_guest", x["cnt"])], guest[("vmsync_hg_guest", x["cnt"] + 1)]
            hB, hC = hosted[("vmsync_gh_host", x["cnt"])], hosted[("vmsync_hg_host", x["cnt"] + 1)]
            assert (hB, hC) == (x["host_recv"], x["host_send"])
            # the guest events carry exactly floor(a * t_host + b) of their true host time
            assert gA == int(a * x["guest_send"] + b) and gD == int(a * x["guest_recv"] + b)
            # causality: A before B, C before D (1..100 us hypercall latency)
            assert 1_000 <= hB - x["guest_send"] <= 100_000
            assert x["host_send"] < x["guest_recv"]
            pts.append((x["guest_send"], gA))
        # recompute the transform from the first and last exchange (two known events)
        (h1, g1), (h2, g2) = pts[0], pts[-1]
        slope = Fraction(g2 - g1, h2 - h1)
        assert abs(slope - a) <= Fraction(2, h2 - h1)
        assert abs((g1 - slope * h1) - b) <= 2 + abs(slope - a) * h1


@pytest.mark.parametrize("which", ["generic_run", "gebai_run", "crowded_run"])
def test_guest_events_happen_in_guest_mode(which: str, request: pytest.FixtureRequest) -> None:
    """Every guest event, mapped to host time with the truth transform, falls between a
    kvm_entry and the next kvm_exit of its vCPU's host thread."""
    out, truth = request.getfixturevalue(which)
    vcpus = _vcpus(truth)
    current: dict[int, int] = {}
    windows: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    entered: dict[int, int] = {}
    for name, ts, cpu, f in _events(out / "host", ["sched_switch", "kvm_entry", "kvm_exit"]):
        if name == "sched_switch":
            current[cpu] = f["next_tid"]
        elif name == "kvm_entry":
            entered[current[cpu]] = ts
        else:
            tid = current[cpu]
            vm, v = vcpus[tid]
            windows[(vm, v["vcpu"])].append((entered.pop(tid), ts))
    for tid, ts in entered.items():  # in guest mode when the simulation ended
        vm, v = vcpus[tid]
        windows[(vm, v["vcpu"])].append((ts, 1 << 62))
    for name, m in truth["machines"].items():
        if name == "host":
            continue
        a, b = _from_host(m["clock"])
        n = 0
        for _, g, cpu, _ in _events(out / name):
            h = (g - b) / a  # within 1 ns of the true host time
            w = windows[(name, cpu)]
            i = bisect.bisect_right(w, (int(h) + 1, 1 << 62)) - 1
            assert i >= 0 and w[i][0] - 1 <= h <= w[i][1] + 1, (name, cpu, g)
            n += 1
        assert n > 50


@pytest.mark.parametrize("which", ["generic_run", "crowded_run"])
def test_tcp_segments_match_truth(which: str, request: pytest.FixtureRequest) -> None:
    out, truth = request.getfixturevalue(which)
    key = ("seq", "ack_seq", "flags")
    n = 0
    for name, m in truth["machines"].items():
        if name == "host":
            continue
        a, b = _from_host(m["clock"])
        sent = {tuple(f[k] for k in key): ts
                for _, ts, _, f in _events(out / name, ["inet_sock_local_out"])}
        assert len(sent) == len(m["tcp_sent"])
        for p in m["tcp_sent"]:
            k = tuple(p[x] for x in key)
            assert sent[k] == int(a * p["send"] + b)
            if p["recv"] is None:
                continue
            dst = truth["machines"][p["dst"]]
            a2, b2 = _from_host(dst["clock"])
            recv = {tuple(f[x] for x in key): ts
                    for _, ts, _, f in _events(out / p["dst"], ["inet_sock_local_in"])}
            assert recv[k] == int(a2 * p["recv"] + b2)
            assert p["recv"] > p["send"] + 20_000
            assert (p["saddr"], p["daddr"]) != (0, 0)
            n += 1
    assert n > 10


# -- truth self-consistency -------------------------------------------------------------

@pytest.mark.parametrize("which", ["generic_run", "gebai_run", "crowded_run"])
def test_truth_is_self_consistent(which: str, request: pytest.FixtureRequest) -> None:
    out, truth = request.getfixturevalue(which)
    n_exec = 0
    for name, m in truth["machines"].items():
        if name == "host":
            continue
        a, _ = _from_host(m["clock"])
        for t in m["threads"]:
            assert t["apparent_ns"] == t["real_ns"] + t["preempted_ns"] + t["hypervisor_ns"]
        for e in m["critical_executions"]:
            assert e["duration"] == e["end"] - e["start"] > 0
            assert e["duration"] == e["running"] + e["preempted"] + e["hypervisor"] \
                + e["guest_wait"]
            assert e["preempted"] == sum(x["ns"] for x in e["preempted_by"])
            assert e["hypervisor"] == sum(e["hypervisor_by_reason"].values())
            assert e["guest_wait"] == sum(x["ns"] for x in e["guest_wait_by"])
            n_exec += 1
        # apparent run time recomputed from the guest's own sched_switch events
        since: dict[int, int] = {}
        apparent: dict[int, int] = defaultdict(int)
        runs: dict[int, int] = defaultdict(int)
        for _, g, _, f in _events(out / name, ["sched_switch"]):
            if f["prev_tid"] in since:
                apparent[f["prev_tid"]] += g - since.pop(f["prev_tid"])
                runs[f["prev_tid"]] += 1
            if f["next_tid"]:
                since[f["next_tid"]] = g
        for t in m["threads"]:
            assert runs[t["tid"]] == t["runs"]
            # guest clock ns -> host ns: / slope, +-1 ns per switch for the floor
            assert abs(Fraction(apparent[t["tid"]]) / a - t["apparent_ns"]) <= 2 * t["runs"] + 1
    assert n_exec > 5


def test_gebai2014_slow_critical_task_blamed_on_burnp6(
        gebai_run: tuple[Path, dict[str, Any]]) -> None:
    _, truth = gebai_run
    ubuntu = truth["machines"]["guest-Ubuntu"]
    assert truth["machines"]["guest-Debian"]["threads"][0]["comm"] == "sleep"
    execs = [e for e in ubuntu["critical_executions"] if e["tid"] == 3525]
    assert all(e["comm"] == "critical_task" for e in execs)
    slow = [e for e in execs if e["duration"] > 200_000_000]
    fast = [e for e in execs if e["duration"] < 20_000_000]
    assert len(slow) >= 2 and len(fast) >= 5
    for e in slow:
        top = e["preempted_by"][0]
        assert (top["comm"], top["tid"], top["machine"]) == ("burnP6", 30672, "host")
        assert top["ns"] > 0.9 * (e["duration"] - e["running"])
        assert 8_000_000 < e["running"] < 12_000_000
    culprits = {(b["comm"], b.get("vm")) for e in slow for b in e["preempted_by"]}
    assert ("qemu-system-x86", "Debian") in culprits


# -- CLI and scale ----------------------------------------------------------------------

def test_cli_sim(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(sim, ["--help"])
    assert res.exit_code == 0 and "--hog" in res.output and "--seed" in res.output
    res = runner.invoke(sim, [str(tmp_path / "o"), "--guests", "2", "--vcpus", "1", "--cpus",
                              "2", "--duration", "100ms", "--seed", "3", "--hog",
                              "burnP6:cpu=0:on=20ms:off=30ms"])
    assert res.exit_code == 0, res.output
    assert "events/s" in res.output
    truth = json.loads((tmp_path / "o" / "truth.json").read_text())
    assert sorted(truth["machines"]) == ["guest-vm001", "guest-vm002", "host"]
    assert any(t["comm"] == "burnP6" for t in truth["machines"]["host"]["threads"])
    res = runner.invoke(sim, [str(tmp_path / "o"), "--duration", "100ms"])
    assert res.exit_code != 0  # not empty, no --force
    res = runner.invoke(sim, [str(tmp_path / "g"), "--scenario", "gebai2014", "--duration",
                              "150ms"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "g" / "guest-Ubuntu").is_dir()


def test_hundred_guests(tmp_path: Path) -> None:
    sc = build_scenario(guests=100, vcpus=2, cpus=32, duration=250_000_000, seed=5)
    res = simulate(sc, tmp_path)
    assert len(res.per_machine) == 101 and res.events > 50_000
    assert all(n > 0 for n in res.per_machine.values())


@pytest.mark.slow
def test_generation_speed_1m_events(tmp_path: Path) -> None:
    sc = build_scenario(guests=100, vcpus=2, cpus=16, duration=6_000_000_000, seed=11,
                        hogs=["burnP6:cpu=0:prio=0:on=200ms:off=800ms"])
    t0 = time.perf_counter()
    res = simulate(sc, tmp_path)
    wall = time.perf_counter() - t0
    print(f"\nsim: {res.events} events in {wall:.2f}s ({res.events / wall:,.0f} events/s; "
          f"simulation {res.sim_seconds:.2f}s = {res.events / res.sim_seconds:,.0f}/s, "
          f"writing {res.write_seconds:.2f}s = {res.events / res.write_seconds:,.0f}/s)")
    assert res.events >= 1_000_000
