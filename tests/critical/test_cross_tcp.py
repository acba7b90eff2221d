"""Critical paths across two physical machines linked by TCP only (no VM), on the real
LTTng 2.1 traces ../shared/traces/lttng-kernel-tcp-sync/{scp_src,scp_dest} (an scp from VM1
to VM3). Clocks are put on the reference machine by tracewatch.sync (checked against Trace
Compass's reference in tests/sync). Oracle for the packets: babeltrace2's listing of the
``inet_sock_local_out`` events (read without the muxer: timestamps go backwards in places)."""

from __future__ import annotations

import re

import pytest

import tracewatch
from tests.conftest import TCP_SYNC, babeltrace2
from tracewatch.critical import SystemGraph, build_system_graph, system_critical_path

pytestmark = pytest.mark.skipif(not TCP_SYNC.exists(), reason="tcp-sync traces missing")


@pytest.fixture(scope="module")
def sg() -> SystemGraph:
    with tracewatch.open(str(TCP_SYNC / "scp_src"), str(TCP_SYNC / "scp_dest")) as ts:
        return build_system_graph(ts)


def _sends(trace: str) -> list[int]:
    out = babeltrace2("run", "--component", "src:source.ctf.fs", "--params",
                      f'inputs=["{TCP_SYNC / trace}"]', "--component", "p:sink.text.pretty",
                      "--params", "clock-seconds=true", "--connect", "src:p").stdout
    return [int(s) * 1_000_000_000 + int(ns) for s, ns in
            re.findall(r"^\[(\d+)\.(\d{9})\] .* inet_sock_local_out:", out, re.M)]


def test_ssh_path_crosses_to_the_server_at_packet_sends(sg: SystemGraph) -> None:
    assert {m.name for m in sg.machines} == {"VM1", "VM3"} and sg.states is None
    sends = {m.name: sorted(m.transform(t) for t in _sends(
        "scp_src" if m.name == "VM1" else "scp_dest")) for m in sg.machines}
    p = system_critical_path(sg, 7422, "VM1")  # ssh, the scp client's transport
    iv = p.intervals
    assert iv["start"][0] == p.begin and iv["end"][-1] == p.end
    assert (iv["start"][1:] == iv["end"][:-1]).all()
    assert int(iv["duration"].sum()) == p.elapsed
    hops = 0
    rows = list(iv.rows())
    for before, after in zip(rows, rows[1:], strict=False):
        if after["state"] == "NETWORK" and before["machine"] != after["machine"]:
            # a wait resolved through a packet: the sender's chain up to the send, then
            # NETWORK (or, when the packet left before the wait began, NETWORK from the
            # wait's start: the sender's own chain before it blocked precedes it)
            t = after["start"]
            gap = min(abs(t - s) for s in sends[before["machine"]])
            assert gap <= 1 or any(s < t for s in sends[before["machine"]])
            hops += gap <= 1
    assert hops >= 5
    # most of the client's time is spent waiting for sshd on the other machine
    per_machine = {m: int(iv["duration"][iv["machine"] == m].sum()) for m in ("VM1", "VM3")}
    assert per_machine["VM3"] > per_machine["VM1"] > 0
    assert "sshd" in set(iv["comm"][iv["machine"] == "VM3"].tolist())
