"""vCPU state intervals, per VM and per vCPU, in host time.

State bits (:data:`UNKNOWN`, :data:`IDLE`, :data:`RUNNING` in the low two bits, then the
flags :data:`IN_HYPERVISOR` and :data:`PREEMPTED`):

* guest ``sched_switch`` on cpu ``c`` (= vCPU ``c``): base RUNNING when ``next_tid > 0``, else
  IDLE (flags kept); the guest's current task is kept in the ``guest_tid`` column;
* host ``kvm_exit`` in the vCPU thread: set IN_HYPERVISOR; the next ``kvm_entry``: clear it;
* host ``sched_switch`` with ``prev_tid`` = vCPU thread and ``prev_state & 3 == 0`` (still
  runnable): set PREEMPTED; ``next_tid`` = vCPU thread: clear it.  A vCPU thread switched out
  while blocked (``prev_state & 3 != 0``: the vCPU halted, its guest idle) is not preempted:
  it gets the extra flag :data:`HALTED` instead (so that hypervisor time counts only the time
  the vCPU thread is on a CPU).

Guest timestamps are mapped to host time with the VM's clock transform
(:mod:`tracewatch.vm.machines`).  The vmsync exchange bounds the offset only to some us, so,
as a guest runs code only in guest mode (between ``kvm_entry`` and ``kvm_exit`` of its vCPU
thread), a synchronized transform is refined (``snap``): the offset correction (within
``refine_bound`` ns) that puts the most guest ``sched_switch`` events inside their vCPU's
guest-mode windows is found by a sweep over the feasible intervals, and the middle of the best
range is added to the transform's offset; a mapped guest event still outside every window is
then moved to the nearest window edge.

Who preempted: the host task switched in on that physical CPU (tid, comm); when it is another
VM's vCPU thread, that VM, vCPU and the guest task it was running at that time.

Results are :class:`tracewatch.analyses.Table` objects (dicts of NumPy arrays).
Imports :mod:`tracewatch.sync`, :mod:`tracewatch.analyses` and this package only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..analyses import Table
from ..sync import ClockTransform
from .machines import Machine, VirtualMachine, VmSetup, current_tid

__all__ = ["UNKNOWN", "IDLE", "RUNNING", "BASE_MASK", "IN_HYPERVISOR", "PREEMPTED", "HALTED",
           "state_name", "GuestTimeline", "VcpuStates", "VmStates", "vcpu_states"]

UNKNOWN, IDLE, RUNNING = 0, 1, 2
BASE_MASK = 3
IN_HYPERVISOR = 4
PREEMPTED = 8
HALTED = 16  # the vCPU thread is blocked on the host (switched out while not runnable)

_BASE_NAMES = {UNKNOWN: "UNKNOWN", IDLE: "IDLE", RUNNING: "RUNNING"}


def state_name(bits: int) -> str:
    """``RUNNING``, ``IDLE+IN_HYPERVISOR``, ``RUNNING+IN_HYPERVISOR+PREEMPTED``..."""
    out = [_BASE_NAMES.get(bits & BASE_MASK, "UNKNOWN")]
    if bits & IN_HYPERVISOR:
        out.append("IN_HYPERVISOR")
    if bits & PREEMPTED:
        out.append("PREEMPTED")
    if bits & HALTED:
        out.append("HALTED")
    return "+".join(out)


@dataclass
class GuestTimeline:
    """A vCPU's guest task switches in host time: at ``t[i]`` the guest runs ``tid[i]``."""

    t: np.ndarray
    tid: np.ndarray
    comm: np.ndarray  # object array
    moved: int = 0  # switches snapped into a guest-mode window
    max_shift: int = 0  # ns
    first: tuple[int, str] | None = None  # prev_tid/prev_comm of the first switch

    def at(self, t: int) -> tuple[int, str] | None:
        """(tid, comm) current at host time ``t`` (after switches at ``t``; before the first
        switch: the task it switched from), None if unknown."""
        k = int(np.searchsorted(self.t, t, side="right")) - 1
        if k < 0:
            return self.first
        return int(self.tid[k]), str(self.comm[k])


@dataclass
class VcpuStates:
    """State intervals and events of one vCPU (host time, ns).

    ``intervals``: start, end, state (bits), guest_tid (-1 unknown).
    ``preemptions``: start, end, duration, cpu, culprit_tid, culprit_comm, culprit_vm ("" for
    a host task), culprit_vcpu, culprit_guest_tid, culprit_guest_comm, complete (False: still
    preempted at the end of the trace).
    ``exits``: start (kvm_exit), end (next kvm_entry), reason, wall_ns, hypervisor_ns (wall
    minus the time the vCPU thread was off its CPU: preempted or halted), completed exits
    only.
    """

    vm: str
    vcpu: int
    tid: int
    intervals: Table
    preemptions: Table
    exits: Table
    guest_comms: dict[int, str] = field(default_factory=dict)

    def time_in(self, mask: int, value: int | None = None, begin: int | None = None,
                end: int | None = None) -> int:
        """ns spent with ``state & mask == value`` (``value`` defaults to ``mask``) within
        [begin, end]."""
        iv = self.intervals
        s, e = iv["start"], iv["end"]
        if begin is not None:
            s = np.maximum(s, begin)
        if end is not None:
            e = np.minimum(e, end)
        d = np.clip(e - s, 0, None)
        want = mask if value is None else value
        return int(d[(iv["state"] & mask) == want].sum())


@dataclass
class VmStates:
    """Every vCPU of every VM, with the time range analysed."""

    setup: VmSetup
    vcpus: list[VcpuStates]
    timelines: dict[tuple[str, int], GuestTimeline]
    start: int
    end: int
    notes: list[str] = field(default_factory=list)

    def of(self, vm: str, vcpu: int) -> VcpuStates:
        for v in self.vcpus:
            if v.vm == vm and v.vcpu == vcpu:
                return v
        raise KeyError((vm, vcpu))


@dataclass
class _HostIdx:
    """Per host: tid current at each kvm_entry / kvm_exit."""

    entry_tid: np.ndarray
    exit_tid: np.ndarray


def _host_index(h: Machine) -> _HostIdx:
    sw = h.get("sched_switch")
    en, ex = h.get("kvm_entry"), h.get("kvm_exit")
    return _HostIdx(current_tid(sw, en["seq"], en["cpu"]), current_tid(sw, ex["seq"], ex["cpu"]))


def _windows(h: Machine, hx: _HostIdx, tid: int) -> tuple[np.ndarray, np.ndarray]:
    """Guest-mode windows [kvm_entry, next kvm_exit] of vCPU thread ``tid``."""
    en_t = h.get("kvm_entry")["timestamp"][hx.entry_tid == tid]
    ex_t = h.get("kvm_exit")["timestamp"][hx.exit_tid == tid]
    k = np.searchsorted(ex_t, en_t, side="left")
    big = np.iinfo(np.int64).max
    ends = np.full(en_t.size, big, np.int64)
    ok = k < ex_t.size
    ends[ok] = ex_t[k[ok]]
    return en_t, ends


def _snap(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Move each time outside every window [starts, ends] to the nearest window edge (only
    between the first window's start and the last window's end)."""
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


def _guest_timeline(vm: VirtualMachine, vcpu: int, windows: tuple[np.ndarray, np.ndarray],
                    snap: bool) -> GuestTimeline:
    g = vm.guest
    assert g is not None
    sw = g.get("sched_switch")
    on = sw["cpu"] == vcpu
    t = vm.transform.apply_array(sw["timestamp"][on])
    moved, shift = 0, 0
    if snap:
        s = _snap(t, *windows)
        d = np.abs(s - t)
        moved, shift = int((d > 0).sum()), int(d.max()) if d.size else 0
        t = s
    prev_tid, prev_comm = sw["prev_tid"][on], sw["prev_comm"][on]
    first = (int(prev_tid[0]), str(prev_comm[0])) if prev_tid.size else None
    return GuestTimeline(t.astype(np.int64), sw["next_tid"][on].astype(np.int64),
                         sw["next_comm"][on], moved, shift, first)


# event kinds, in their order at equal timestamps
_IN, _ENTRY, _GUEST, _EXIT, _OUT = range(5)


def _ranges(m: np.ndarray, starts: np.ndarray, ends: np.ndarray, bound: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """For each time of ``m`` and each window [starts, ends] near it: the range [lo, hi] of
    offsets (|offset| <= bound) that put it inside that window."""
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


def _best_range(lo: np.ndarray, hi: np.ndarray) -> tuple[int, int, int]:
    """(count, a, b): the offsets in [a, b] lie in the most ranges [lo, hi] (``count``); the
    range nearest 0 on ties."""
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


def _refine(vm: VirtualMachine, windows: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]],
            bound: int, max_drift: float) -> tuple[Fraction, int, int, int] | None:
    """(relative slope correction ``e``, offset correction ``d`` ns, pivot ``mid``, events
    inside) that put the most guest sched_switch events of ``vm`` inside their vCPU's
    guest-mode windows, the corrected time of a mapped time ``m`` being
    ``m + d + e * (m - mid)``.  ``e`` is searched on two grids within ``max_drift`` (the
    middle of the best tied values), ``d`` by a sweep within ``bound`` (middle of the best
    range)."""
    g = vm.guest
    assert g is not None
    sw = g.get("sched_switch")
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for v in vm.vcpus:
        starts, ends = windows[(vm.name, v)]
        m = vm.transform.apply_array(sw["timestamp"][sw["cpu"] == v])
        if starts.size and m.size:
            parts.append((m, starts, ends))
    if not parts:
        return None
    mid = (min(int(p[0][0]) for p in parts) + max(int(p[0][-1]) for p in parts)) // 2

    def score(e: float) -> tuple[int, int, int]:
        los, his = [], []
        for m, st, en in parts:
            lo, hi = _ranges(m + np.rint(e * (m - mid)).astype(np.int64), st, en, bound)
            los.append(lo)
            his.append(hi)
        return _best_range(np.concatenate(los), np.concatenate(his))

    def best_of(grid: np.ndarray) -> float:
        scores = np.array([score(float(x))[0] for x in grid])
        tied = grid[scores == scores.max()]
        return float(tied[np.argmin(np.abs(tied - tied.mean()))])

    e = 0.0
    if max_drift > 0:
        e = best_of(np.linspace(-max_drift, max_drift, 21))
        step = max_drift / 10
        e = best_of(np.linspace(e - step, e + step, 21))
    n, a, b = score(e)
    return Fraction(e).limit_denominator(10**15), (a + b) // 2, mid, n


def vcpu_states(setup: VmSetup, snap: bool = True, refine_bound: int = 200_000,
                refine_drift: float = 1e-4) -> VmStates:
    """The state intervals of every vCPU of every VM of ``setup``.

    With ``snap``, the transform of a synchronized guest is refined (its ``transform`` and
    ``refined_ns`` change, see the module docstring) and guest events are snapped into
    guest mode."""
    hidx = {h.host_id: _host_index(h) for h in setup.hosts}
    windows: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    timelines: dict[tuple[str, int], GuestTimeline] = {}
    notes: list[str] = []
    for vm in setup.vms:
        for v, tid in vm.vcpus.items():
            windows[(vm.name, v)] = _windows(vm.host, hidx[vm.host.host_id], tid)
        if snap and vm.guest is not None and vm.synced and not vm.refined:
            got = _refine(vm, windows, refine_bound, refine_drift)
            if got is not None and (got[0] or got[1]):
                e, d, mid, n = got
                tr = vm.transform
                # t' = m + d + e * (m - mid) with m = slope * t + offset
                vm.transform = ClockTransform(tr.slope * (1 + e),
                                              tr.offset * (1 + e) - e * mid + d)
                vm.refined = (e, d)
                notes.append(f"{vm.name}: guest clock refined by {d} ns and a slope factor "
                             f"1 + {float(e):.3g} ({n} guest switches inside guest mode)")
        for v in vm.vcpus:
            if vm.guest is not None:
                tl = _guest_timeline(vm, v, windows[(vm.name, v)], snap)
                timelines[(vm.name, v)] = tl
                if tl.moved:
                    notes.append(f"{vm.name} vCPU {v}: {tl.moved} guest sched_switch mapped "
                                 f"outside guest mode moved into it (at most {tl.max_shift} ns)")
    start, end = _time_range(setup, timelines)
    out: list[VcpuStates] = []
    for vm in setup.vms:
        for v, tid in vm.vcpus.items():
            out.append(_one_vcpu(setup, vm, v, tid, hidx[vm.host.host_id],
                                 timelines.get((vm.name, v)), timelines, end))
    return VmStates(setup, out, timelines, start, end, notes)


def _time_range(setup: VmSetup, timelines: dict[tuple[str, int], GuestTimeline]
                ) -> tuple[int, int]:
    lo: list[int] = []
    hi: list[int] = []
    for h in setup.hosts:
        for cols in h.events.values():
            if cols["timestamp"].size:
                lo.append(int(cols["timestamp"][0]))
                hi.append(int(cols["timestamp"][-1]))
    for tl in timelines.values():
        if tl.t.size:
            lo.append(int(tl.t[0]))
            hi.append(int(tl.t[-1]))
    return (min(lo), max(hi)) if lo else (0, 0)


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


def _one_vcpu(setup: VmSetup, vm: VirtualMachine, vcpu: int, tid: int, hx: _HostIdx,
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

