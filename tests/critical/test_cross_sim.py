"""Critical paths across a host and its VMs against the simulator's ground truth.

Oracle: ``truth.json`` of :mod:`tracewatch.sim`. The ``paths`` scenario logs, inside the
simulator (no trace is read), every state change of the tasks on a path, their vCPUs' modes
and who woke whom (timer, irq, futex wake by a task, TCP packet with its sending task), and
writes the true critical path of every cycle of those tasks (from one blocking switch-out to
the next). Its guest clocks equal the host's, so with the identity mapping (``sync=False``)
the paths must be equal to the ns. It covers: (i) a guest task's vCPU preempted by a host hog
(burnP6 on CPU 0) and by the other VM's vCPU, (ii) a wakeup chain in one guest (ticker -> relay
-> sink), (iii) a request/response over TCP between two guests (curl in "front" blocks on
NETWORK until httpd in "back" replies), (iv) timer waits. gebai2014 (guest clocks offset and
drifting, synchronized) checks the critical_task executions: the time attributed to each host
thread that held the CPU equals the truth's preemption breakdown to the ns (host events); the
rest carries the clock mapping error (< 2 us).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import tracewatch
from tracewatch.cli.critical import critical_path as critical_path_cmd
from tracewatch.critical import (
    CriticalPathError,
    SystemGraph,
    SystemPath,
    build_system_graph,
    system_critical_path,
)
from tracewatch.output.html_timeline import vm_timeline_html
from tracewatch.sim import build_scenario, gebai2014, simulate
from tracewatch.sim.model import paths as paths_scenario
from tracewatch.vm import vm_report

CHROMIUM = Path("/usr/bin/chromium")
Run = tuple[Path, dict[str, Any], SystemGraph]


def _rows(p: SystemPath) -> list[list[Any]]:
    return [[r["start"], r["end"], r["vm"] or "host", r["tid"], r["comm"], r["state"],
             r["host_tid"]] for r in p.intervals.rows()]


def _want(c: dict[str, Any]) -> list[list[Any]]:
    """Truth intervals with machine keys as our ``vm`` column ("host" / VM name)."""
    return [[a, b, "host" if m == "host" else m[len("guest-"):], *rest]
            for a, b, m, *rest in c["intervals"]]


def _check_shape(p: SystemPath) -> None:
    iv = p.intervals
    assert iv["start"][0] == p.begin and iv["end"][-1] == p.end
    assert (iv["start"][1:] == iv["end"][:-1]).all()
    assert (iv["duration"] > 0).all()
    assert int(iv["duration"].sum()) == p.elapsed == int(p.summary["duration"].sum())


@pytest.fixture(scope="module", params=[0, 4])
def paths_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("paths")
    res = simulate(paths_scenario(duration=1_000_000_000, seed=request.param), out)
    truth = json.loads(res.truth_path.read_text())
    with tracewatch.open(str(out)) as ts:
        sg = build_system_graph(ts, sync=False)
    return out, truth, sg


def _cycles(truth: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(m["hostname"], c) for m in truth["machines"].values()
            for c in m.get("critical_paths", [])]


def test_every_cycle_equals_the_true_path(paths_run: Run) -> None:
    _, truth, sg = paths_run
    cycles = _cycles(truth)
    assert len(cycles) > 150
    for vm, c in cycles:
        p = system_critical_path(sg, c["tid"], vm, c["start"], c["end"])
        assert _rows(p) == _want(c), (vm, c["comm"], c["start"])
        _check_shape(p)


def test_the_scenarios_are_covered(paths_run: Run) -> None:
    """Each kind of wait the issue names appears in the compared paths."""
    _, truth, _ = paths_run
    seen: Counter[str] = Counter()
    for vm, c in _cycles(truth):
        tasks = {(iv[2], iv[4], iv[5]) for iv in c["intervals"]}
        if c["comm"] == "curl" and ("guest-back", "httpd", "RUNNING") in tasks:
            seen["tcp request/response"] += 1
            assert ("guest-front", "curl", "NETWORK") in tasks
        if c["comm"] == "sink" and {("guest-front", "relay", "RUNNING"),
                                    ("guest-front", "ticker", "TIMER")} <= tasks:
            seen["wakeup chain"] += 1
        if ("host", "burnP6", "RUNNING") in tasks:
            seen["host hog"] += 1
        if any(iv[2] != f"guest-{vm}" and iv[2] != "host" for iv in c["intervals"]
               if iv[6] >= 0 and iv[6] != c["intervals"][0][6]):
            seen["other VM"] += 1
        if any(iv[5] == "TIMER" for iv in c["intervals"]):
            seen["timer"] += 1
    print(dict(seen))
    assert min(seen[k] for k in ("tcp request/response", "wakeup chain", "host hog",
                                 "other VM", "timer")) >= 3, seen


def test_longer_ranges_concatenate_cycles(paths_run: Run) -> None:
    """The path over several cycles is the cycles' paths end to end (bounded walks)."""
    _, truth, sg = paths_run
    cyc = [c for vm, c in _cycles(truth) if c["comm"] == "curl"]
    run = [cyc[0]]
    for c in cyc[1:]:
        if c["start"] != run[-1]["end"] or len(run) == 4:
            break
        run.append(c)
    assert len(run) >= 2
    p = system_critical_path(sg, 500, "front", run[0]["start"], run[-1]["end"])
    want: list[list[Any]] = []
    for c in run:
        for iv in _want(c):
            if want and want[-1][1] == iv[0] and want[-1][2:] == iv[2:]:
                want[-1][1] = iv[1]
            else:
                want.append(iv)
    assert _rows(p) == want


def test_errors(paths_run: Run, tmp_path: Path) -> None:
    _, truth, sg = paths_run
    with pytest.raises(CriticalPathError, match="no task with TID 4242 on any machine"):
        system_critical_path(sg, 4242)
    with pytest.raises(CriticalPathError, match="no machine named 'nowhere'"):
        system_critical_path(sg, 500, "nowhere")
    with pytest.raises(CriticalPathError, match="never ran"):
        system_critical_path(sg, 500, None, 10, 20)
    with pytest.raises(CriticalPathError, match="empty time range"):
        system_critical_path(sg, 500, None, 20, 20)
    # the generic scenario has a critical_task 1000 in every VM
    out = tmp_path / "generic"
    simulate(build_scenario(guests=2, vcpus=1, cpus=2, duration=200_000_000, seed=2), out)
    with tracewatch.open(str(out)) as ts:
        g2 = build_system_graph(ts)
    with pytest.raises(CriticalPathError, match="several machines .*--machine"):
        system_critical_path(g2, 1000)
    p = system_critical_path(g2, 1000, "vm002")
    assert (p.vm, p.comm) == ("vm002", "critical_task")
    _check_shape(p)
    r = CliRunner().invoke(critical_path_cmd, [str(out), "--tid", "1000"])
    assert r.exit_code == 1 and "choose one with --machine" in str(r.exception)


def test_cli_tree_csv_mi(paths_run: Run, tmp_path: Path) -> None:
    out, truth, sg = paths_run
    vm, c = next((vm, c) for vm, c in _cycles(truth)
                 if c["comm"] == "curl" and any(iv[4] == "httpd" for iv in c["intervals"]))
    args = [str(out), "--tid", "500", "--begin", str(c["start"]), "--end", str(c["end"]),
            "--no-sync"]
    runner = CliRunner()
    r = runner.invoke(critical_path_cmd, args)
    assert r.exit_code == 0, r.output
    first = r.output.splitlines()[0]
    # curl 500 <elapsed> | VM front ... | VM back (httpd 600 ...) | ...
    assert first.startswith(f"curl 500 {c['duration'] / 1e9:.6f} | VM front ")
    assert re.search(r"\| VM back [\d.]+ \(httpd 600 ", first)
    want_back = sum(iv[1] - iv[0] for iv in c["intervals"] if iv[2] == "guest-back")
    assert f"VM back {want_back / 1e9:.6f}" in first
    r = runner.invoke(critical_path_cmd, [*args, "--csv"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0] == "start,end,duration,machine,vm,tid,comm,state,host_tid"
    assert len(lines) - 1 == len(c["intervals"])
    r = runner.invoke(critical_path_cmd, [*args, "--mi"])
    doc = json.loads(r.output)
    assert len(doc["results"]) == 2 and len(doc["results"][0]["data"]) == len(c["intervals"])


def test_html_path_row(paths_run: Run, tmp_path: Path) -> None:
    out, truth, sg = paths_run
    vm, c = next((vm, c) for vm, c in _cycles(truth)
                 if c["comm"] == "curl" and any(iv[4] == "httpd" for iv in c["intervals"]))
    p = system_critical_path(sg, 500, vm, c["start"], c["end"])
    page = tmp_path / "cp.html"
    page.write_text(vm_timeline_html(vm_report(sg.states), paths=[p]))
    text = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    data = json.loads(re.search(r'id="tl-data">(.*?)</script>', text, re.S)
                      .group(1).replace("<\\/", "</"))  # type: ignore[union-attr]
    row = data["rows"][-1]
    assert row["attrs"]["path"] == "500"
    # one segment per interval, contiguous, with the hover text naming the resource
    assert len(row["seg"]) == len(c["intervals"])
    assert [s[3].split(":")[0] for s in row["seg"]] == [
        "Host host" if iv[2] == "host" else f"VM {iv[2][6:]}" for iv in c["intervals"]]
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed")
    dom = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                          "--window-size=1200,500", f"--user-data-dir={tmp_path / 'prof'}",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert re.findall(r'<g class="tl-row"[^>]*data-path="(\d+)"', dom) == ["500"]
    assert re.search(r'class="tl-seg st-cp-\d+"', dom)


@pytest.fixture(scope="module")
def gebai(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("gebai")
    res = simulate(gebai2014(duration=1_500_000_000, seed=3), out)
    truth = json.loads(res.truth_path.read_text())
    with tracewatch.open(str(out)) as ts:
        sg = build_system_graph(ts)
    return out, truth, sg


def test_gebai_executions(gebai: Run) -> None:
    _, truth, sg = gebai
    ubuntu = truth["machines"]["guest-Ubuntu"]
    vcpu0 = ubuntu["vcpu_tids"][0]
    slow = 0
    for ex in ubuntu["critical_executions"]:
        p = system_critical_path(sg, 3525, "Ubuntu", ex["start"], ex["end"])
        _check_shape(p)
        held: dict[int, int] = defaultdict(int)  # host thread -> ns, vCPU 0 thread aside
        by: dict[tuple[str, str], int] = defaultdict(int)
        for r in p.intervals.rows():
            if r["host_tid"] >= 0 and r["host_tid"] != vcpu0:
                held[r["host_tid"]] += r["duration"]
            by[(r["vm"] or "host", r["state"])] += r["duration"]
        want: dict[int, int] = defaultdict(int)
        for cp in ex["preempted_by"]:
            want[cp["tid"]] += cp["ns"]
        # preemption intervals are host events: exact
        assert dict(held) == dict(want)
        # guest boundaries carry the clock mapping error
        assert abs(by[("Ubuntu", "RUNNING")] - ex["running"]) < 2_000
        own_hv = sum(r["duration"] for r in p.intervals.rows()
                     if r["tid"] == vcpu0 and r["state"] == "IN_HYPERVISOR")
        assert abs(own_hv - ex["hypervisor"]) < 2_000
        assert abs(by[("Ubuntu", "PREEMPTED")] - ex["guest_wait"]) < 2_000
        if ex["duration"] > 50_000_000:
            slow += 1
            top = next(iter(p.summary.rows()))
            assert (top["comm"], top["tid"], top["vm"]) == ("burnP6", 30672, "")
    assert slow >= 1


def test_cli_errors_are_one_line(paths_run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    from tracewatch.cli.main import main

    out = str(paths_run[0])
    for args, start in (
            (["--tid", "4242"], "tracewatch: error: no task with TID 4242 on any machine"),
            (["--tid", "500", "--machine", "back"],
             "tracewatch: error: no task with TID 500 on machine back"),
            (["--tid", "500", "--begin", "10", "--end", "20"],
             "tracewatch: error: TID 500 (curl) on front never ran in [10000000000, "
             "20000000000]")):
        assert main(["critical-path", out, "--no-sync", *args]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(start), err


def test_synchronized_clocks_give_the_same_paths_within_the_sync_error(paths_run: Run) -> None:
    """Through the real clock synchronization (vmsync exchanges, guest-mode refinement) the
    paths have the same resources, each within 2 us of the truth (guest events carry the
    clock mapping error; host events are exact)."""
    out, truth, _ = paths_run
    with tracewatch.open(str(out)) as ts:
        sg = build_system_graph(ts)
    for vm, c in _cycles(truth):
        p = system_critical_path(sg, c["tid"], vm, c["start"], c["end"])
        _check_shape(p)
        got: dict[tuple[str, int, str], int] = defaultdict(int)
        want: dict[tuple[str, int, str], int] = defaultdict(int)
        for r in p.intervals.rows():
            got[(r["vm"] or "host", r["tid"], r["state"])] += r["duration"]
        for a, b, m, tid, _, st, _ in _want(c):
            want[(m, tid, st)] += b - a
        assert {k for k, v in got.items() if v > 5_000} == \
            {k for k, v in want.items() if v > 5_000}
        assert max(abs(got[k] - want[k]) for k in set(got) | set(want)) < 2_000
