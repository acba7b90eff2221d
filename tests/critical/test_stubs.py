"""Critical paths of the Trace Compass graph stubs and of small synthetic traces, derived by hand.

Conventions (see :mod:`tracewatch.critical.graph`): a task's chain starts at its first event
(as next/prev of a sched_switch, as a wakee, or at its fork), edges are RUNNING / PREEMPTED
(switched out with ``prev_state & 3 == 0`` or woken) / a wait; a wait ended by a wakeup in
interrupt context is labelled (NET_RX softirq, vec 3 -> NETWORK), one ended by a task-context
wakeup is resolved through the waker's chain, one no wakeup ended is UNKNOWN. Chains of live
tasks end at the last event of the trace.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tracewatch
from tests.vm.stubs import stub_to_ctf, switch, write_ctf
from tracewatch.critical import CriticalPath, EdgeType, build_graph, critical_path

GRAPH_STUBS = Path("/work/shared/traces/tracecompass-graph-stubs")

Row = tuple[int, int, int, str]  # start, end, tid, state


def _rows(p: CriticalPath) -> list[Row]:
    return [(r["start"], r["end"], r["tid"], r["state"]) for r in p.intervals.rows()]


def _summary(p: CriticalPath) -> dict[int, int]:
    return {r["tid"]: r["duration"] for r in p.summary.rows()}


def _graph(tmp_path: Path, stub: str):  # type: ignore[no-untyped-def]
    if not (GRAPH_STUBS / stub).exists():
        pytest.skip(f"{stub} is not available")
    out = stub_to_ctf(GRAPH_STUBS / stub, tmp_path / "trace", "stubhost")
    with tracewatch.open(str(out)) as ts:
        return build_graph(ts)


def _check(p: CriticalPath) -> None:
    iv = p.intervals
    assert iv["start"][0] == p.begin and iv["end"][-1] == p.end
    assert (iv["start"][1:] == iv["end"][:-1]).all()
    assert int(iv["duration"].sum()) == p.elapsed == sum(_summary(p).values())


def test_sched_only(tmp_path: Path) -> None:
    # sched_only.xml, one CPU:
    #   10 switch proc1(1) -> proc2(2), prev_state 0 : proc1 preempted, proc2 runs
    #   20 switch proc2 -> proc1, prev_state 3       : proc2 blocks, proc1 runs
    #   30 switch proc1 -> proc2, prev_state 0       : proc1 preempted, proc2 runs again
    #                                                  (no wakeup ended its wait: UNKNOWN)
    #   40 switch proc2 -> proc1, prev_state 0       : proc2 preempted, proc1 runs
    # Trace ends at 40, so both chains are [10, 40]:
    #   proc1: PREEMPTED 10-20, RUNNING 20-30, PREEMPTED 30-40
    #   proc2: RUNNING 10-20, (wait) UNKNOWN 20-30, RUNNING 30-40
    g = _graph(tmp_path, "sched_only.xml")
    p1 = critical_path(g, 1)
    assert (p1.begin, p1.end, p1.comm) == (10, 40, "proc1")
    assert _rows(p1) == [(10, 20, 1, "PREEMPTED"), (20, 30, 1, "RUNNING"),
                         (30, 40, 1, "PREEMPTED")]
    assert _summary(p1) == {1: 30}
    p2 = critical_path(g, 2)
    assert _rows(p2) == [(10, 20, 2, "RUNNING"), (20, 30, 2, "UNKNOWN"), (30, 40, 2, "RUNNING")]
    _check(p1)
    _check(p2)
    # a sub-range is cut out of the same path
    assert _rows(critical_path(g, 1, 15, 25)) == [(15, 20, 1, "PREEMPTED"), (20, 25, 1, "RUNNING")]


def test_simple_network_client(tmp_path: Path) -> None:
    # simple_network_client.xml, CPU 0:
    #    7 switch depClient(202) -> other(201), prev_state 1 : depClient blocks
    #   10 switch other -> client(200), prev_state 0         : client's chain starts, RUNNING
    #   15 switch client -> other, prev_state 1              : client blocks
    #   50-53 irq 5 (wifi); 60-72 softirq vec 3 (NET_RX)
    #   70 sched_wakeup client inside the NET_RX softirq     : client's wait 15-70 is NETWORK
    #   75 switch other -> client, prev_state 0              : client PREEMPTED 70-75, RUNNING
    #   90 sched_wakeup depClient from client (task context) : depClient's wait 7-90 BLOCKED,
    #                                                          waker client
    #   95 switch client -> depClient, prev_state 0          ; trace ends at 95
    # client: RUNNING 10-15, NETWORK 15-70, PREEMPTED 70-75, RUNNING 75-95.
    # depClient over [7, 95]: its wait 7-90 is replaced by client's chain walked back from 90:
    #   client RUNNING 75-90, PREEMPTED 70-75, NETWORK 15-70, RUNNING 10-15, then client's
    #   chain starts at 10 (no fork seen): 7-10 UNKNOWN (attributed to client);
    #   then depClient PREEMPTED 90-95.
    g = _graph(tmp_path, "simple_network_client.xml")
    p = critical_path(g, 200)
    assert _rows(p) == [(10, 15, 200, "RUNNING"), (15, 70, 200, "NETWORK"),
                        (70, 75, 200, "PREEMPTED"), (75, 95, 200, "RUNNING")]
    _check(p)
    d = critical_path(g, 202)
    assert _rows(d) == [(7, 10, 200, "UNKNOWN"), (10, 15, 200, "RUNNING"),
                        (15, 70, 200, "NETWORK"), (70, 75, 200, "PREEMPTED"),
                        (75, 90, 200, "RUNNING"), (90, 95, 202, "PREEMPTED")]
    assert _summary(d) == {200: 83, 202: 5}
    _check(d)


def test_network_exchange_wifi(tmp_path: Path) -> None:
    # network_exchange_wifi.xml, CPU 0:
    #   10 switch other(201) -> client(200); 15 client blocks (prev_state 1)
    #   50-53 hard irq 5; 55 sched_wakeup of the irq thread (50) *after* irq_handler_exit, so
    #   in the context of the running task "other": 50's chain starts at 55, PREEMPTED
    #   60 switch other -> irq thread: RUNNING 60-75
    #   70 sched_wakeup client from the irq thread (task context): client's wait 15-70 is
    #      BLOCKED with waker 50
    #   75 switch irq thread -> client (irq thread blocks; never woken: UNKNOWN 75-80)
    #   trace ends at 80
    # client over [10, 80]: RUNNING 10-15; the wait 15-70 resolved by walking the irq thread
    # back from 70: RUNNING 60-70, PREEMPTED 55-60, before its chain start (no fork) UNKNOWN
    # 15-55; then client PREEMPTED 70-75, RUNNING 75-80.
    g = _graph(tmp_path, "network_exchange_wifi.xml")
    p = critical_path(g, 200)
    assert _rows(p) == [(10, 15, 200, "RUNNING"), (15, 55, 50, "UNKNOWN"),
                        (55, 60, 50, "PREEMPTED"), (60, 70, 50, "RUNNING"),
                        (70, 75, 200, "PREEMPTED"), (75, 80, 200, "RUNNING")]
    assert _summary(p) == {50: 55, 200: 15}
    _check(p)


@pytest.mark.parametrize("stub", ["simple_network_server.xml", "network_exchange_eth.xml"])
def test_network_server(tmp_path: Path, stub: str) -> None:
    # CPU 1: 5 server(100) blocks; 20-25 irq 15 (eth0); 30-38 softirq vec 3 (NET_RX) with
    # 35 sched_wakeup server inside it -> NETWORK 5-35; 40 other -> server: PREEMPTED 35-40;
    # 55 server blocks again (trace ends at 55). (The eth stub adds do_IRQ / netif events,
    # which the graph ignores: same path.)
    g = _graph(tmp_path, stub)
    p = critical_path(g, 100)
    assert _rows(p) == [(5, 35, 100, "NETWORK"), (35, 40, 100, "PREEMPTED"),
                        (40, 55, 100, "RUNNING")]
    _check(p)


def _waking(t: int, cpu: int, tid: int, comm: str):  # type: ignore[no-untyped-def]
    return (t, "sched_waking", cpu, {"comm": ("string", comm), "tid": ("long", tid),
                                     "prio": ("long", 20), "target_cpu": ("long", 0)})


def _fork(t: int, cpu: int, parent: tuple[int, str], child: tuple[int, str]):  # type: ignore[no-untyped-def]
    return (t, "sched_process_fork", cpu, {
        "parent_comm": ("string", parent[1]), "parent_tid": ("long", parent[0]),
        "parent_pid": ("long", parent[0]), "child_comm": ("string", child[1]),
        "child_tid": ("long", child[0]), "child_pid": ("long", child[0])})


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    # A(1) waits for B(2), which itself waited for C(3); D(4) is forked by C.
    #   cpu0: 10 idle -> B; 20 B -> A (B blocks); 30 A -> idle (A blocks)
    #   cpu1: 10 idle -> C; 40 C forks D; 50 C wakes B; 60 C -> B (C preempted);
    #         70 B wakes A; 80 B -> A (B blocks); 90 A -> D (A blocks)
    # Chains: A RUNNING 20-30, BLOCKED 30-70 (waker B), PREEMPTED 70-80, RUNNING 80-90
    #         B RUNNING 10-20, BLOCKED 20-50 (waker C), PREEMPTED 50-60, RUNNING 60-80,
    #           UNKNOWN 80-90 (never woken again)
    #         C RUNNING 10-60, PREEMPTED 60-90;  D PREEMPTED 40-90 (creator C)
    idle = (0, "swapper")
    a, b, c, d = (1, "A"), (2, "B"), (3, "C"), (4, "D")
    events = [switch(10, 0, idle, b), switch(20, 0, b, a, 1), switch(30, 0, a, idle, 1),
              switch(10, 1, idle, c), _fork(40, 1, c, d), _waking(50, 1, 2, "B"),
              switch(60, 1, c, b), _waking(70, 1, 1, "A"), switch(80, 1, b, a, 1),
              switch(90, 1, a, d, 1)]
    out = write_ctf(tmp_path_factory.mktemp("nested") / "trace", "nested", events)
    with tracewatch.open(str(out)) as ts:
        return build_graph(ts)


def test_nested_wakeups(nested) -> None:  # type: ignore[no-untyped-def]
    g = nested
    assert g.n_tasks == 4
    k = g.keys_of(1)[0]
    lo, hi = g.chain(k)
    assert g.edge_type[lo:hi].tolist() == [EdgeType.RUNNING, EdgeType.BLOCKED,
                                           EdgeType.PREEMPTED, EdgeType.RUNNING]
    assert g.task_tid[g.edge_waker[lo + 1]] == 2
    # A over its lifetime [20, 90]: A's wait 30-70 -> B walked back from 70: RUNNING 60-70,
    # PREEMPTED 50-60, B's own wait 20-50 (waker C) bounded at 30 -> C RUNNING 30-50.
    p = critical_path(g, 1)
    assert _rows(p) == [(20, 30, 1, "RUNNING"), (30, 50, 3, "RUNNING"), (50, 60, 2, "PREEMPTED"),
                        (60, 70, 2, "RUNNING"), (70, 80, 1, "PREEMPTED"), (80, 90, 1, "RUNNING")]
    assert _summary(p) == {1: 30, 2: 20, 3: 20}
    _check(p)
    # [40, 85]: starts inside A's wait: C RUNNING 40-50, B 50-70, then A.
    assert _rows(critical_path(g, 1, 40, 85)) == [
        (40, 50, 3, "RUNNING"), (50, 60, 2, "PREEMPTED"), (60, 70, 2, "RUNNING"),
        (70, 80, 1, "PREEMPTED"), (80, 85, 1, "RUNNING")]
    # [25, 45]: ends inside A's wait: it is resolved from its wakeup at 70, then cut at 45
    # (B's wait 20-50 bounded at 30 -> C RUNNING 30-45).
    assert _rows(critical_path(g, 1, 25, 45)) == [(25, 30, 1, "RUNNING"), (30, 45, 3, "RUNNING")]


def test_fork_creator(nested) -> None:  # type: ignore[no-untyped-def]
    # D's chain starts at its fork (40, by C): PREEMPTED 40-90, creator C.
    g = nested
    k = g.keys_of(4)[0]
    assert g.task_tid[g.task_creator[k]] == 3
    assert _rows(critical_path(g, 4)) == [(40, 90, 4, "PREEMPTED")]


def test_waker_created_inside_wait(tmp_path: Path) -> None:
    # cpu0: 10 idle -> P(1); 20 P -> idle (P blocks)
    # cpu1: 10 idle -> Q(2); 30 Q forks R(3); 40 Q -> R (Q preempted); 50 R wakes P;
    #       60 R -> P (R preempted); trace ends at 60.
    # P's wait 20-50 -> R walked back from 50: RUNNING 40-50, PREEMPTED 30-40; R's chain starts
    # at its fork (30), so the walk goes on in its creator Q back to 20: Q RUNNING 20-30.
    idle = (0, "swapper")
    pp, q, r = (1, "P"), (2, "Q"), (3, "R")
    events = [switch(10, 0, idle, pp), switch(20, 0, pp, idle, 1), switch(10, 1, idle, q),
              _fork(30, 1, q, r), switch(40, 1, q, r), _waking(50, 1, 1, "P"),
              switch(60, 1, r, pp)]
    out = write_ctf(tmp_path / "trace", "forks", events)
    with tracewatch.open(str(out)) as ts:
        g = build_graph(ts)
    p = critical_path(g, 1)
    assert _rows(p) == [(10, 20, 1, "RUNNING"), (20, 30, 2, "RUNNING"), (30, 40, 3, "PREEMPTED"),
                        (40, 50, 3, "RUNNING"), (50, 60, 1, "PREEMPTED")]
    _check(p)
