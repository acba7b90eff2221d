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

Everything is computed on NumPy columns: per vCPU thread its events are sorted once and each
state component is carried forward from the last event of its family
(``np.maximum.accumulate`` over positions), preemptions and hypervisor exits are read off at
the events that close them, culprits are found with ``np.searchsorted`` in the guest
timelines.

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
    between the first window's start and the last window's end; the earlier edge on ties)."""
    if t.size == 0 or starts.size == 0:
        return t
    out = t.copy()
    i = np.searchsorted(starts, t, side="right") - 1
    j = np.flatnonzero(i >= 0)
    k = i[j]
    x = t[j]
    gap = (x > ends[k]) & (x <= ends[-1])
    j, k, x = j[gap], k[gap], x[gap]
    prev_end = ends[k]
    nxt = starts[np.minimum(k + 1, starts.size - 1)]
    last = k + 1 >= starts.size
    out[j] = np.where(last | (x - prev_end <= nxt - x), prev_end, nxt)
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
    first = g.first_switch.get(vcpu) if on.any() else None
    return GuestTimeline(t.astype(np.int64), sw["next_tid"][on].astype(np.int64),
                         sw["next_comm"][on], moved, shift, first)


# event kinds, in their order at equal timestamps
_IN, _ENTRY, _GUEST, _EXIT, _OUT = range(5)


def _ranges(m: np.ndarray, starts: np.ndarray, ends: np.ndarray, bound: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """For each time of ``m`` and each window [starts, ends] near it: the range [lo, hi] of
    offsets (|offset| <= bound) that put it inside that window (in no particular order)."""
    k0 = np.searchsorted(ends, m - bound, side="left")
    k1 = np.searchsorted(starts, m + bound, side="right")
    cnt = k1 - k0
    one = cnt == 1  # most times: one window near them
    k, mo = k0[one], m[one]
    los, his = [np.maximum(starts[k] - mo, -bound)], [np.minimum(ends[k] - mo, bound)]
    many = np.flatnonzero(cnt > 1)
    if many.size:
        c = cnt[many]
        total = int(c.sum())
        ev = np.repeat(many, c)
        first = np.repeat(np.cumsum(c) - c, c)
        ks = k0[ev] + (np.arange(total) - first)
        los.append(np.maximum(starts[ks] - m[ev], -bound))
        his.append(np.minimum(ends[ks] - m[ev], bound))
    lo, hi = np.concatenate(los), np.concatenate(his)
    ok = lo <= hi
    return lo[ok], hi[ok]


def _best_range(lo: np.ndarray, hi: np.ndarray) -> tuple[int, int, int]:
    """(count, a, b): the offsets in [a, b] lie in the most ranges [lo, hi] (``count``); the
    range nearest 0 on ties.

    The coverage is highest just after some range opens: at each distinct ``lo`` value ``v``
    it is #(lo <= v) - #(hi < v); a best range runs from such a ``v`` to the nearest
    ``hi >= v``.  The ranges equal to [min lo, max hi] (most: a guest event deep inside a
    guest-mode window) cover every candidate: they are counted, not sorted."""
    if lo.size == 0:
        return 0, 0, 0
    lmin, hmax = int(lo.min()), int(hi.max())
    full = (lo == lmin) & (hi == hmax)
    n_full = int(np.count_nonzero(full))
    if n_full == lo.size:
        return n_full, lmin, hmax
    if n_full:
        lo, hi = lo[~full], hi[~full]
    los, his = np.sort(lo), np.sort(hi)
    v = los[np.concatenate(([True], los[1:] != los[:-1]))]
    cov = np.searchsorted(los, v, side="right") - np.searchsorted(his, v, side="left")
    best = int(cov.max())
    a = v[cov == best]
    best += n_full
    b = his[np.searchsorted(his, a, side="left")]
    dist = np.where((a <= 0) & (b >= 0), 0, np.minimum(np.abs(a), np.abs(b)))
    k = int(np.argmin(dist))
    return best, int(a[k]), int(b[k])


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

    dms = [(m - mid).astype(np.float64) for m, _, _ in parts]

    def score(e: float) -> tuple[int, int, int]:
        los, his = [], []
        for (m, st, en), dm in zip(parts, dms, strict=True):
            lo, hi = _ranges(m + np.rint(e * dm).astype(np.int64), st, en, bound)
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
    threads = _thread_map(setup)
    out: list[VcpuStates] = []
    for vm in setup.vms:
        for v, tid in vm.vcpus.items():
            out.append(_one_vcpu(vm, v, tid, hidx[vm.host.host_id],
                                 timelines.get((vm.name, v)), threads, timelines, end))
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


_ThreadMap = dict[tuple[str, int], tuple[str, int]]


def _thread_map(setup: VmSetup) -> _ThreadMap:
    """(host id, host tid) -> (VM name, vCPU id) of every vCPU thread (first VM first, as
    :meth:`VmSetup.vm_of_thread`)."""
    out: _ThreadMap = {}
    for vm in setup.vms:
        for v, tid in vm.vcpus.items():
            out.setdefault((vm.host.host_id, tid), (vm.name, v))
    return out


def _culprits(host: Machine, threads: _ThreadMap, timelines: dict[tuple[str, int], GuestTimeline],
              next_tid: np.ndarray, t: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per preemption (culprit host tid ``next_tid`` switched in at ``t``): the VM, vCPU,
    guest tid and guest comm when the culprit is a vCPU thread, else ("", -1, -1, "")."""
    n = next_tid.size
    cvm, cv = np.full(n, "", object), np.full(n, -1, np.int64)
    cgt, cgc = np.full(n, -1, np.int64), np.full(n, "", object)
    for nt in np.unique(next_tid).tolist():
        got = threads.get((host.host_id, nt))
        if got is None:
            continue
        sel = np.flatnonzero(next_tid == nt)
        cvm[sel], cv[sel] = got
        tl = timelines.get(got)
        if tl is None:
            continue
        k = np.searchsorted(tl.t, t[sel], side="right") - 1
        inside = k >= 0
        cgt[sel[inside]] = tl.tid[k[inside]]
        cgc[sel[inside]] = tl.comm[k[inside]]
        if tl.first is not None:
            cgt[sel[~inside]], cgc[sel[~inside]] = tl.first
    return cvm, cv, cgt, cgc


def _last_where(mask: np.ndarray) -> np.ndarray:
    """For each position, the last position at or before it where ``mask`` holds (-1)."""
    return np.maximum.accumulate(np.where(mask, np.arange(mask.size), -1))


def _guest_comms(tl: GuestTimeline | None) -> dict[int, str]:
    """Guest tid -> its last comm, in order of first appearance."""
    if tl is None or tl.tid.size == 0:
        return {}
    tids = tl.tid
    u, first = np.unique(tids, return_index=True)
    _, rev = np.unique(tids[::-1], return_index=True)
    last = tids.size - 1 - rev
    order = np.argsort(first, kind="stable")
    return {int(a): str(c) for a, c in zip(u[order].tolist(), tl.comm[last[order]].tolist(),
                                           strict=True)}


def _one_vcpu(vm: VirtualMachine, vcpu: int, tid: int, hx: _HostIdx, tl: GuestTimeline | None,
              threads: _ThreadMap, timelines: dict[tuple[str, int], GuestTimeline],
              end: int) -> VcpuStates:
    """The states of one vCPU thread, vectorized.

    The events of the thread (host switches in/out, kvm entries/exits, the guest's switches
    on that vCPU) are sorted by (time, kind, position) and every state component is the
    value set by the last event of its family at or before each position: the guest task by
    the last guest switch, IN_HYPERVISOR by the last kvm exit/entry, PREEMPTED/HALTED by the
    first switch-out after the last switch-in (a second switch-out while off changes
    nothing)."""
    h = vm.host
    en, ex, sw = h.get("kvm_entry"), h.get("kvm_exit"), h.get("sched_switch")
    i_en, i_ex = np.flatnonzero(hx.entry_tid == tid), np.flatnonzero(hx.exit_tid == tid)
    i_out, i_in = np.flatnonzero(sw["prev_tid"] == tid), np.flatnonzero(sw["next_tid"] == tid)
    gt = tl.t if tl is not None else np.zeros(0, np.int64)
    gi = np.arange(gt.size)
    srcs = ((_IN, sw, i_in), (_ENTRY, en, i_en), (_GUEST, None, gi), (_EXIT, ex, i_ex),
            (_OUT, sw, i_out))
    t = np.concatenate([gt if c is None else c["timestamp"][i] for _, c, i in srcs])
    kind = np.concatenate([np.full(i.size, k, np.int8) for k, _, i in srcs])
    seq = np.concatenate([gi if c is None else c["seq"][i] for _, c, i in srcs])
    pay = np.concatenate([i for _, _, i in srcs])
    order = np.lexsort((seq, kind, t))
    t, kind, pay = t[order].astype(np.int64), kind[order], pay[order]
    n = t.size
    # guest task and base state: the last guest switch
    lg = _last_where(kind == _GUEST)
    gtid = np.full(n, -1, np.int64)
    if tl is not None:
        known = lg >= 0
        gtid[known] = tl.tid[pay[lg[known]]]
    base = np.where(lg < 0, UNKNOWN, np.where(gtid > 0, RUNNING, IDLE))
    # IN_HYPERVISOR: the last kvm exit/entry is an exit
    lh = _last_where((kind == _ENTRY) | (kind == _EXIT))
    hv = (lh >= 0) & (kind[lh] == _EXIT)
    hv_start = np.where(hv, t[lh], -1)
    hv_ok = hv & (hv_start >= 0)
    # off its CPU: the last switch in/out is an out; the first out after an in decides
    io = np.flatnonzero((kind == _IN) | (kind == _OUT))
    prev_io = np.concatenate(([_IN], kind[io[:-1]])) if io.size else kind[io]
    eff = np.zeros(n, bool)
    eff[io[(kind[io] == _OUT) & (prev_io == _IN)]] = True
    closing = io[(kind[io] == _IN) & (prev_io == _OUT)]  # an in ending an off stretch
    li = _last_where((kind == _IN) | (kind == _OUT))
    off = (li >= 0) & (kind[li] == _OUT)
    le = _last_where(eff)  # the switch-out that started the current off stretch
    runnable = np.zeros(n, bool)
    started = le >= 0
    runnable[started] = (sw["prev_state"][pay[le[started]]] & 3) == 0
    pre, halted = off & runnable, off & ~runnable
    state = (base | np.where(hv, IN_HYPERVISOR, 0) | np.where(pre, PREEMPTED, 0)
             | np.where(halted, HALTED, 0))
    intervals = _intervals(t, state, gtid, end)
    # hypervisor time: exits closed by an entry, minus the off-CPU time in between
    contrib = np.zeros(n, np.int64)
    c = closing[hv_ok[closing - 1]]
    contrib[c] = t[c] - np.maximum(t[le[c - 1]], hv_start[c - 1])
    cum = np.cumsum(contrib)
    k = np.flatnonzero(kind == _ENTRY)
    k = k[k >= 1]
    k = k[hv_ok[k - 1]]
    x = lh[k - 1]
    wall = t[k] - t[x]
    exits = Table({"start": t[x], "end": t[k], "reason": ex["exit_reason"][pay[x]],
                   "wall_ns": wall, "hypervisor_ns": wall - (cum[k] - cum[x])})
    # preemptions: closed by a switch-in, and maybe one still open at the end
    c = closing[pre[closing - 1]]
    outs = le[c - 1]
    p_end = t[c]
    complete = np.ones(c.size, bool)
    if n and pre[-1]:
        outs = np.append(outs, le[-1])
        p_end = np.append(p_end, max(end, int(t[le[-1]])))
        complete = np.append(complete, False)
    o = pay[outs]
    p_start = t[outs]
    cvm, cv, cgt, cgc = _culprits(h, threads, timelines, sw["next_tid"][o], p_start)
    preemptions = Table({
        "start": p_start, "end": p_end, "duration": p_end - p_start, "cpu": sw["cpu"][o],
        "culprit_tid": sw["next_tid"][o], "culprit_comm": sw["next_comm"][o].astype(object),
        "culprit_vm": cvm, "culprit_vcpu": cv, "culprit_guest_tid": cgt,
        "culprit_guest_comm": cgc, "complete": complete})
    return VcpuStates(vm.name, vcpu, tid, intervals, preemptions, exits, _guest_comms(tl))


def _intervals(t: np.ndarray, state: np.ndarray, gtid: np.ndarray, end: int) -> Table:
    """Intervals between consecutive event times (the last one until ``end``) with the state
    after the first event, empty ones dropped and equal neighbours merged."""
    if t.size == 0:
        z = np.zeros(0, np.int64)
        return Table({"start": z, "end": z.copy(), "state": z.copy(), "guest_tid": z.copy()})
    s = t
    e = np.append(t[1:], max(end, int(t[-1])))
    keep = e > s
    s, e, st, g = s[keep], e[keep], state[keep], gtid[keep]
    new = np.ones(s.size, bool)
    new[1:] = (st[1:] != st[:-1]) | (g[1:] != g[:-1])
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, s.size - 1)
    return Table({"start": s[first], "end": e[last], "state": st[first].astype(np.int64),
                  "guest_tid": g[first]})
