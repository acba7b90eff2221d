"""The per-event sequential vCPU state machine that :func:`tracewatch.vm.vcpu._one_vcpu`
replaced (vectorized), the sweep of the clock refinement, the snapping loop and the preemption table, kept verbatim as the oracles of
``test_vectorized_states``: both must give the same results to the ns."""

from __future__ import annotations

from typing import Any

import numpy as np

from tracewatch.analyses import Table
from tracewatch.vm.machines import Machine, VirtualMachine, VmSetup
from tracewatch.vm.report import culprit_text
from tracewatch.vm.vcpu import (
    HALTED,
    IDLE,
    IN_HYPERVISOR,
    PREEMPTED,
    RUNNING,
    UNKNOWN,
    GuestTimeline,
    VcpuStates,
    VmStates,
    _HostIdx,
)


def ranges(m: np.ndarray, starts: np.ndarray, ends: np.ndarray, bound: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """The ranges of :func:`tracewatch.vm.vcpu._ranges` as computed before (verbatim)."""
    k0 = np.searchsorted(ends, m - bound, side="left")
    k1 = np.searchsorted(starts, m + bound, side="right")
    cnt = np.clip(k1 - k0, 0, None)
    total = int(cnt.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ev = np.repeat(np.arange(m.size), cnt)
    first = np.repeat(np.cumsum(cnt) - cnt, cnt)
    ks = k0[ev] + (np.arange(total) - first)
    lo = np.maximum(starts[ks] - m[ev], -bound)
    hi = np.minimum(ends[ks] - m[ev], bound)
    ok = lo <= hi
    return lo[ok], hi[ok]


def best_range(lo: np.ndarray, hi: np.ndarray) -> tuple[int, int, int]:
    """The sweep that :func:`tracewatch.vm.vcpu._best_range` replaced (verbatim)."""
    if lo.size == 0:
        return 0, 0, 0
    vals = np.concatenate([lo, hi])
    steps = np.concatenate([np.ones(lo.size, np.int64), -np.ones(hi.size, np.int64)])
    order = np.lexsort((-steps, vals))  # closed ranges: an opening before a closing
    vals, steps = vals[order], steps[order]
    cov = np.cumsum(steps)
    best = int(cov.max())
    at = np.flatnonzero((cov == best) & (steps == 1))
    at = at[at + 1 < vals.size]
    rs = [(int(vals[i]), int(vals[i + 1])) for i in at.tolist()]
    if not rs:
        return 0, 0, 0
    a, b = min(rs, key=lambda r: 0 if r[0] <= 0 <= r[1] else min(abs(r[0]), abs(r[1])))
    return best, a, b


def snap(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The loop that :func:`tracewatch.vm.vcpu._snap` replaced (verbatim)."""
    if t.size == 0 or starts.size == 0:
        return t
    out = t.copy()
    i = np.searchsorted(starts, t, side="right") - 1
    last_end = int(ends[-1])
    for j in np.flatnonzero(i >= 0).tolist():
        k, x = int(i[j]), int(t[j])
        if x <= ends[k] or x > last_end:
            continue
        prev_end = int(ends[k])
        if k + 1 < starts.size:
            nxt = int(starts[k + 1])
            out[j] = prev_end if x - prev_end <= nxt - x else nxt
        else:
            out[j] = prev_end
    return out


def preemption_table(states: VmStates) -> Table:
    """The row-by-row preemption table that :func:`tracewatch.vm.report._preemptions`
    replaced (verbatim but for the imports)."""
    pre_rows: list[dict[str, Any]] = []
    for v in states.vcpus:
        for row in v.preemptions.rows():
            pre_rows.append({"vm": v.vm, "vcpu": v.vcpu, "tid": v.tid, **row,
                             "culprit": culprit_text(row)})
    pre_rows.sort(key=lambda r: (r["start"], str(r["vm"]), r["vcpu"]))
    spec = {
        "vm": object, "vcpu": np.int64, "tid": np.int64, "start": np.int64, "end": np.int64,
        "duration": np.int64, "cpu": np.int64, "culprit": object, "culprit_tid": np.int64,
        "culprit_comm": object, "culprit_vm": object, "culprit_vcpu": np.int64,
        "culprit_guest_tid": np.int64, "culprit_guest_comm": object, "complete": bool}
    return Table({k: np.array([r[k] for r in pre_rows], dtype=dt) for k, dt in spec.items()})


# event kinds, in their order at equal timestamps
_IN, _ENTRY, _GUEST, _EXIT, _OUT = range(5)


def _culprit(setup: VmSetup, host: Machine, next_tid: int, next_comm: str,
             timelines: dict[tuple[str, int], GuestTimeline], t: int
             ) -> tuple[str, int, int, str]:
    """(vm, vcpu, guest tid, guest comm) of a culprit that is a vCPU thread, else ("", -1,
    -1, "")."""
    got = setup.vm_of_thread(host, next_tid)
    if got is None:
        return "", -1, -1, ""
    ovm, ov = got
    tl = timelines.get((ovm.name, ov))
    cur = tl.at(t) if tl is not None else None
    if cur is None:
        return ovm.name, ov, -1, ""
    return ovm.name, ov, cur[0], cur[1]


def one_vcpu(setup: VmSetup, vm: VirtualMachine, vcpu: int, tid: int, hx: _HostIdx,
              tl: GuestTimeline | None, timelines: dict[tuple[str, int], GuestTimeline],
              end: int) -> VcpuStates:
    h = vm.host
    ev: list[tuple[int, int, int, int]] = []  # (t, kind, seq/index, payload index)
    en, ex, sw = h.get("kvm_entry"), h.get("kvm_exit"), h.get("sched_switch")
    for i in np.flatnonzero(hx.entry_tid == tid).tolist():
        ev.append((int(en["timestamp"][i]), _ENTRY, int(en["seq"][i]), i))
    for i in np.flatnonzero(hx.exit_tid == tid).tolist():
        ev.append((int(ex["timestamp"][i]), _EXIT, int(ex["seq"][i]), i))
    for i in np.flatnonzero(sw["prev_tid"] == tid).tolist():
        ev.append((int(sw["timestamp"][i]), _OUT, int(sw["seq"][i]), i))
    for i in np.flatnonzero(sw["next_tid"] == tid).tolist():
        ev.append((int(sw["timestamp"][i]), _IN, int(sw["seq"][i]), i))
    comms: dict[int, str] = {}
    if tl is not None:
        for i in range(tl.t.size):
            ev.append((int(tl.t[i]), _GUEST, i, i))
            comms[int(tl.tid[i])] = str(tl.comm[i])
    ev.sort()
    starts: list[int] = []
    ends: list[int] = []
    states: list[int] = []
    gtids: list[int] = []
    pre_rows: list[tuple[int, int, int, int, str, str, int, int, str, bool]] = []
    exit_rows: list[tuple[int, int, int, int, int]] = []
    base, gtid, hv, pre, halted = UNKNOWN, -1, False, False, False
    hv_start, hv_reason, hv_pre = -1, -1, 0
    pre_start = off_start = -1
    pre_info: tuple[int, int, str, str, int, int, str] = (-1, -1, "", "", -1, -1, "")
    last = ev[0][0] if ev else end

    def emit(t: int) -> None:
        if t <= last:
            return
        st = (base | (IN_HYPERVISOR if hv else 0) | (PREEMPTED if pre else 0)
              | (HALTED if halted else 0))
        if states and states[-1] == st and gtids[-1] == gtid and ends[-1] == last:
            ends[-1] = t
        else:
            starts.append(last)
            ends.append(t)
            states.append(st)
            gtids.append(gtid)

    for t, kind, _seq, i in ev:
        emit(t)
        last = max(last, t)
        if kind == _GUEST:
            assert tl is not None
            gtid = int(tl.tid[i])
            base = RUNNING if gtid > 0 else IDLE
        elif kind == _EXIT:
            hv, hv_start, hv_reason, hv_pre = True, t, int(ex["exit_reason"][i]), 0
        elif kind == _ENTRY:
            if hv and hv_start >= 0:
                wall = t - hv_start
                exit_rows.append((hv_start, t, hv_reason, wall, wall - hv_pre))
            hv, hv_start = False, -1
        elif kind == _OUT:
            if pre or halted:
                continue
            off_start = t
            if int(sw["prev_state"][i]) & 3 == 0:
                pre, pre_start = True, t
                nt, nc, c = int(sw["next_tid"][i]), str(sw["next_comm"][i]), int(sw["cpu"][i])
                pre_info = (c, nt, nc, *_culprit(setup, h, nt, nc, timelines, t))
            else:
                halted = True
        elif kind == _IN:
            if pre:
                pre_rows.append((pre_start, t, *pre_info, True))
            if (pre or halted) and hv and hv_start >= 0:
                hv_pre += t - max(off_start, hv_start)
            pre = halted = False
    emit(end)
    if pre:
        pre_rows.append((pre_start, max(end, pre_start), *pre_info, False))
    intervals = Table({"start": np.array(starts, np.int64), "end": np.array(ends, np.int64),
                       "state": np.array(states, np.int64), "guest_tid": np.array(gtids, np.int64)})
    pcols = list(zip(*pre_rows, strict=True)) if pre_rows else [()] * 10
    preemptions = Table({
        "start": np.array(pcols[0], np.int64), "end": np.array(pcols[1], np.int64),
        "duration": np.array(pcols[1], np.int64) - np.array(pcols[0], np.int64),
        "cpu": np.array(pcols[2], np.int64), "culprit_tid": np.array(pcols[3], np.int64),
        "culprit_comm": np.array(pcols[4], object), "culprit_vm": np.array(pcols[5], object),
        "culprit_vcpu": np.array(pcols[6], np.int64),
        "culprit_guest_tid": np.array(pcols[7], np.int64),
        "culprit_guest_comm": np.array(pcols[8], object),
        "complete": np.array(pcols[9], bool)})
    ecols = list(zip(*exit_rows, strict=True)) if exit_rows else [()] * 5
    exits = Table({"start": np.array(ecols[0], np.int64), "end": np.array(ecols[1], np.int64),
                   "reason": np.array(ecols[2], np.int64),
                   "wall_ns": np.array(ecols[3], np.int64),
                   "hypervisor_ns": np.array(ecols[4], np.int64)})
    return VcpuStates(vm.name, vcpu, tid, intervals, preemptions, exits, comms)

