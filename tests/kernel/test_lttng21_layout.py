"""An LTTng 2.1 kernel trace (lttng-kernel-tcp-sync/scp_src): its sched_process_fork has no
pid fields (parent_tid/child_tid only); analyses must run, PIDs unknown, and agree with the
same computation done on babeltrace2's text."""

from __future__ import annotations

import re
import subprocess

from tracewatch.analyses.cputop import cputop
from tracewatch.analyses.sched import sched_latencies
from tracewatch.ctf.trace import TraceSet

from ..analyses.test_perf_trace import _busy
from ..conftest import TCP_SYNC

SCP_SRC = TCP_SYNC / "scp_src"
LINE = re.compile(r"^\[(\d+)\.(\d{9})\] \([^)]*\) \S+ (\S+): \{ cpu_id = (\d+) \}, \{ ?(.*?) ?\}$")
SWITCH = re.compile(r"prev_tid = (\d+),.* next_tid = (\d+),")


def _bt2_switches() -> tuple[list[tuple[int, int, int, int]], int, int]:
    # timestamps go backwards in places in this trace: babeltrace2's muxer stops early, so
    # read its one stream without it (notes/vm-sync-critical-path.md)
    out = subprocess.run(
        ["babeltrace2", "run", "--component", "src:source.ctf.fs", "--params",
         f'inputs=["{SCP_SRC}"]', "--component", "p:sink.text.pretty", "--params",
         "clock-seconds=true", "--connect", "src:p"],
        capture_output=True, text=True, check=True).stdout
    switches, times = [], []
    for line in out.splitlines():
        m = LINE.match(line)
        assert m is not None, line
        t = int(m.group(1)) * 1_000_000_000 + int(m.group(2))
        times.append(t)
        if m.group(3) == "sched_switch":
            s = SWITCH.search(m.group(5))
            assert s is not None
            switches.append((t, int(m.group(4)), int(s.group(1)), int(s.group(2))))
    return switches, min(times), max(times)


def test_cputop_equals_the_same_computation_on_babeltrace2_text() -> None:
    r = cputop(TraceSet([str(SCP_SRC)]))
    per_tid, per_cpu, _ = _busy(*_bt2_switches())
    ours = dict(zip(r.per_tid["tid"].tolist(), r.per_tid["usage_ns"].tolist(), strict=True))
    assert {t: u for t, u in ours.items() if u} == {t: u for t, u in per_tid.items() if u}
    assert len(per_tid) > 20
    ours_cpu = dict(zip(r.per_cpu["cpu"].tolist(), r.per_cpu["usage_ns"].tolist(), strict=True))
    assert ours_cpu == {c: per_cpu.get(c, 0) for c in ours_cpu}


def test_sched_runs_without_fork_pids() -> None:
    r = sched_latencies(TraceSet([str(SCP_SRC)]))
    assert r.latencies.nrows > 0
    assert (r.latencies["latency_ns"] >= 0).all()
