"""Executions of one guest task seen from the host: how long each took and who stole its time.

An *execution* here is a maximal stretch of time during which the task is the current task of
its vCPU (it may be preempted on the host or in the hypervisor meanwhile). For each: its
duration in host time, the part the vCPU really ran it, the part stolen by preemptions of the
vCPU thread (with the culprits, from the preemption table) and the part spent in the
hypervisor. Imports only :mod:`tracewatch.vm` and :mod:`tracewatch.analyses`.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..analyses import Table
from .report import culprit_text
from .vcpu import HALTED, IN_HYPERVISOR, PREEMPTED, VmStates

__all__ = ["task_executions"]


def task_executions(states: VmStates, vm: str, tid: int, gap_ns: int = 0) -> Table:
    """Executions of guest task ``tid`` of VM ``vm`` (host ns), in time order.

    Columns: start, end, duration_ns, real_ns, steal_ns, hypervisor_ns, vcpu, culprits
    (text: the preemption culprits with their share, largest first). Stretches separated by
    at most ``gap_ns`` are one execution.
    """
    rows: list[dict[str, object]] = []
    for v in states.vcpus:
        if v.vm != vm:
            continue
        iv = v.intervals
        mine = np.flatnonzero(iv["guest_tid"] == tid)
        if mine.size == 0:
            continue
        starts, ends, st = iv["start"][mine], iv["end"][mine], iv["state"][mine]
        # split where consecutive intervals of the task are not contiguous
        breaks = np.flatnonzero(starts[1:] - ends[:-1] > gap_ns) + 1
        pre = v.preemptions
        for seg in np.split(np.arange(mine.size), breaks):
            s, e = int(starts[seg[0]]), int(ends[seg[-1]])
            d = ends[seg] - starts[seg]
            flags = st[seg] & (IN_HYPERVISOR | PREEMPTED | HALTED)
            by: dict[str, int] = defaultdict(int)
            ov = (pre["start"] < e) & (pre["end"] > s)
            for k in np.flatnonzero(ov).tolist():
                row = {c: pre[c][k] for c in pre}
                overlap = min(int(pre["end"][k]), e) - max(int(pre["start"][k]), s)
                by[culprit_text(row)] += overlap
            rows.append({
                "start": s, "end": e, "duration_ns": e - s, "vcpu": v.vcpu,
                "real_ns": int(d[flags == 0].sum()),
                "steal_ns": int(d[(st[seg] & PREEMPTED) != 0].sum()),
                "hypervisor_ns": int(d[flags == IN_HYPERVISOR].sum()),
                "culprits": ", ".join(f"{c} {ns / 1e6:.3f} ms" for c, ns in
                                      sorted(by.items(), key=lambda x: -x[1])),
            })
    rows.sort(key=lambda r: int(r["start"]))  # type: ignore[call-overload]
    cols = ("start", "end", "duration_ns", "real_ns", "steal_ns", "hypervisor_ns", "vcpu")
    data = {c: np.array([r[c] for r in rows], np.int64) for c in cols}
    data["culprits"] = np.array([r["culprits"] for r in rows], dtype=object)
    return Table(data)
