"""The critical path of a task across a host and its virtual machines.

The execution graph of every machine of the trace set (a worker is machine + TID) is built
with :func:`~tracewatch.critical.graph.build_graph`, guest events put on their host's clock
through the VM analysis (:func:`tracewatch.vm.discover` pairs guests with their VM and fits
the clock transforms, :func:`tracewatch.vm.vcpu_states` refines them; a guest
``sched_switch`` takes the host time the vCPU timeline gives it). Then the bounded walk of
:mod:`.path` runs over all the graphs, with two additions:

* network edges: TCP packets matched as :func:`tracewatch.sync.match_events` does
  (``inet_sock_local_out`` on A -> ``inet_sock_local_in`` on B). A ``NETWORK`` wait of a task
  of B (woken in a NET_RX softirq) whose CPU received a matched packet during the wait is
  resolved: NETWORK (the task, from the send to the wakeup) and, before the send, the path of
  the task that was running on A's CPU when it sent the packet (bounded by the wait's start);
* vCPU overlay: each RUNNING interval of a guest task is cut by its vCPU's states: time
  IN_HYPERVISOR goes to the vCPU thread on the host (state IN_HYPERVISOR), time PREEMPTED to
  whoever held the physical CPU (from the host's ``sched_switch``): a host task (RUNNING), or
  another VM's vCPU thread, then (through that VM's vCPU states) the guest task it ran, or the
  thread itself when in the hypervisor or idle.

:func:`system_critical_path` returns a :class:`SystemPath`: ``intervals`` (start, end,
duration, machine, vm, tid, comm, state, host_tid: the host thread that held the CPU, -1 for
waits) contiguous and summing to the elapsed time, ``summary`` (per machine / VM and task).
Times are host ns. Imports :mod:`tracewatch.ctf`, :mod:`tracewatch.sync`,
:mod:`tracewatch.vm`, :mod:`tracewatch.analyses` and :mod:`tracewatch.errors`.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np

from ..analyses import Table
from ..ctf.trace import TraceSet
from ..errors import DecodeError
from ..sync import ClockTransform, SyncError, host_id, match_events, synchronize
from ..sync.matching import TCP_RECV, TCP_SEND
from ..vm import (
    HALTED,
    IN_HYPERVISOR,
    PREEMPTED,
    NoKvmEventsError,
    VcpuStates,
    VirtualMachine,
    VmStates,
    discover,
    vcpu_states,
)
from ..vm.machines import Machine, read_vm_events
from ..vm.vcpu import BASE_MASK, RUNNING
from .graph import EdgeType, ExecutionGraph, TimeMap, build_graph
from .path import (
    CriticalPath,
    CriticalPathError,
    last_edge_before,
    task_span,
    trace_critical_path,
)

__all__ = ["MachineGraph", "SystemGraph", "SystemPath", "build_system_graph",
           "system_critical_path", "task_critical_path", "from_single", "machines_of",
           "find_task"]

_R, _B = int(EdgeType.RUNNING), int(EdgeType.BLOCKED)
_NET, _UNK = int(EdgeType.NETWORK), int(EdgeType.UNKNOWN)
_NAMES = [e.name for e in EdgeType]


@dataclass
class MachineGraph:
    """One machine's execution graph on the reference clock: ``name`` (host: its hostname;
    guest: its VM's name), ``vm`` (the VM, None for a host), ``host`` (index of its host in
    :attr:`SystemGraph.machines`, itself for a host), ``transform`` (own clock -> reference:
    the VM's for a guest, the sync result's without VMs)."""

    name: str
    machine: Machine
    graph: ExecutionGraph
    vm: VirtualMachine | None = None
    host: int = 0
    transform: ClockTransform = field(default_factory=ClockTransform.identity)

    @property
    def label(self) -> str:
        return f"VM {self.name}" if self.vm is not None else f"Host {self.name}"

    def matches(self, name: str) -> bool:
        return name == self.name or self.machine.matches(name)


@dataclass
class _Links:
    """Matched packets received by one machine, per CPU, in receive order (host ns)."""

    recv: dict[int, list[int]] = field(default_factory=dict)
    send: dict[int, list[int]] = field(default_factory=dict)
    src: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # (machine, key)


@dataclass
class SystemGraph:
    """The graphs of a host and its guests, their vCPU states and the network links (or of
    machines linked by the network only: ``states`` None)."""

    machines: list[MachineGraph]
    states: VmStates | None
    links: dict[int, _Links]
    notes: list[str] = field(default_factory=list)
    clock: str = "host time"

    def index_of(self, m: Machine) -> int:
        for i, mg in enumerate(self.machines):
            if mg.machine is m:
                return i
        raise KeyError(m.host_id)


def _guest_time_map(vm: VirtualMachine, states: VmStates) -> TimeMap:
    def tmap(ev: str, t: np.ndarray, cpu: np.ndarray, nth: np.ndarray) -> np.ndarray:
        out = vm.transform.apply_array(t)
        if ev == "sched_switch":
            for c in np.unique(cpu).tolist():
                tl = states.timelines.get((vm.name, int(c)))
                on = cpu == c
                k = nth[on]
                if tl is not None and int(k.max()) < tl.t.size:
                    out[on] = tl.t[k]  # the vCPU timeline's (snapped) host times
        return out
    return tmap


def build_system_graph(ts: TraceSet, pairs: Mapping[str, int] | None = None,
                       sync: bool = True) -> SystemGraph:
    """The execution graphs of every host and paired guest of ``ts`` on host time; without
    a host (no kvm events), the graphs of the machines put on the reference machine's clock
    by :func:`tracewatch.sync.synchronize` (TCP packets), linked by the network only."""
    try:
        setup = discover(ts, pairs, sync)
    except NoKvmEventsError:
        if pairs:
            raise
        return _network_only(ts, sync)
    states = vcpu_states(setup)
    out: list[MachineGraph] = []
    for h in setup.hosts:
        with TraceSet(list(h.paths)) as hts:
            out.append(MachineGraph(h.hostname or h.paths[0], h, build_graph(hts)))
    for vm in setup.vms:
        if vm.guest is None:
            continue
        with TraceSet(list(vm.guest.paths)) as gts:
            g = build_graph(gts, time_map=_guest_time_map(vm, states))
        out.append(MachineGraph(vm.name, vm.guest, g, vm, setup.hosts.index(vm.host),
                                vm.transform))
    sg = SystemGraph(out, states, {}, list(setup.notes) + list(states.notes))
    sg.links = _network_links(ts, sg)
    return sg


def _apply(tr: ClockTransform) -> TimeMap:
    def tmap(ev: str, t: np.ndarray, cpu: np.ndarray, nth: np.ndarray) -> np.ndarray:
        return tr.apply_array(t)
    return tmap


def _network_only(ts: TraceSet, sync: bool) -> SystemGraph:
    machines = read_vm_events(ts)
    notes: list[str] = []
    transforms: dict[str, ClockTransform] = {}
    if sync and len(machines) > 1:
        try:
            res = synchronize(ts)
        except SyncError as e:
            raise CriticalPathError(f"the traces are of {len(machines)} machines and their "
                                    f"clocks cannot be synchronized: {e}") from None
        for t in res.traces:
            transforms.setdefault(t.host_id, t.transform)
        ref = next((m.hostname for m in machines if m.host_id == res.reference), "?")
        notes.append(f"clocks synchronized on {ref} (TCP packets): no VM (no kvm events)")
    out: list[MachineGraph] = []
    for i, m in enumerate(machines):
        tr = transforms.get(m.host_id, ClockTransform.identity())
        with TraceSet(list(m.paths)) as mts:
            g = build_graph(mts, time_map=None if tr.is_identity else _apply(tr))
        out.append(MachineGraph(m.hostname or m.paths[0], m, g, None, i, tr))
    ref = next((mg.name for mg in out if mg.transform.is_identity), out[0].name if out else "?")
    sg = SystemGraph(out, None, {}, notes, f"{ref}'s clock")
    sg.links = _network_links(ts, sg)
    return sg


def _tcp_events(ts: TraceSet) -> dict[tuple[str, bool], tuple[np.ndarray, np.ndarray]]:
    """(host id, is_send) -> (timestamps, cpus) of the TCP send / receive events."""
    names = [c.name for c in ts.classes if c.name in TCP_SEND + TCP_RECV]
    parts: dict[tuple[str, bool], list[tuple[np.ndarray, np.ndarray]]] = {}
    if not names:
        return {}
    hid = [host_id(c.trace) for c in ts.classes]
    for b in ts.batches(names=sorted(set(names))):
        for gid in np.unique(b.gid).tolist():
            name = ts.classes[gid].name
            cols = b.columns(name, [])
            sel = b.gid[cols["index"]] == gid
            key = (hid[gid], name in TCP_SEND)
            parts.setdefault(key, []).append((cols["timestamp"][sel].astype(np.int64),
                                              cols["cpu"][sel].astype(np.int64)))
    out = {}
    for k, ps in parts.items():
        t = np.concatenate([p[0] for p in ps])
        c = np.concatenate([p[1] for p in ps])
        o = np.argsort(t, kind="stable")
        out[k] = (t[o], c[o])
    return out


def _map(mg: MachineGraph, t: np.ndarray) -> np.ndarray:
    return mg.transform.apply_array(t)


def _cpu_of(table: tuple[np.ndarray, np.ndarray] | None, t: np.ndarray) -> np.ndarray:
    if table is None or table[0].size == 0:
        return np.full(t.size, -1, np.int64)
    k = np.searchsorted(table[0], t)
    ok = (k < table[0].size) & (table[0][np.minimum(k, table[0].size - 1)] == t)
    return np.where(ok, table[1][np.minimum(k, table[0].size - 1)], -1)


def _key_at(g: ExecutionGraph, tid: int, t: int) -> int:
    for k in reversed(g.keys_of(tid)):
        ext = g.extent(k)
        if ext is not None and ext[0] <= t:
            return k
    return -1


def _network_links(ts: TraceSet, sg: SystemGraph) -> dict[int, _Links]:
    by_hid = {mg.machine.host_id: i for i, mg in enumerate(sg.machines)}
    ev = _tcp_events(ts)
    if not ev:
        return {}
    res = match_events(ts)
    links: dict[int, _Links] = {}
    for (a_hid, b_hid), mp in res.pairs.items():
        a, b = by_hid.get(a_hid), by_hid.get(b_hid)
        if a is None or b is None or len(mp) == 0:
            continue
        ma, mb = sg.machines[a], sg.machines[b]
        s_cpu = _cpu_of(ev.get((a_hid, True)), mp.send)
        r_cpu = _cpu_of(ev.get((b_hid, False)), mp.recv)
        s_t, r_t = _map(ma, mp.send), _map(mb, mp.recv)
        lk = links.setdefault(b, _Links())
        for st, sc, rt, rc in zip(s_t.tolist(), s_cpu.tolist(), r_t.tolist(), r_cpu.tolist(),
                                  strict=True):
            if sc < 0 or rc < 0:
                continue  # not a TCP pair (vmsync) or an unknown CPU
            tid = ma.graph.on_cpu(sc, st)
            key = _key_at(ma.graph, tid, st) if tid > 0 else -1
            if key < 0:
                continue
            lk.recv.setdefault(rc, []).append(rt)
            lk.send.setdefault(rc, []).append(st)
            lk.src.setdefault(rc, []).append((a, key))
    for lk in links.values():
        for c in list(lk.recv):
            o = sorted(range(len(lk.recv[c])), key=lk.recv[c].__getitem__)
            lk.recv[c] = [lk.recv[c][i] for i in o]
            lk.send[c] = [lk.send[c][i] for i in o]
            lk.src[c] = [lk.src[c][i] for i in o]
    return links


@dataclass
class SystemPath:
    """The critical path of task ``tid`` of machine ``machine`` over [begin, end] (host ns)."""

    tid: int
    comm: str
    machine: str
    vm: str
    begin: int
    end: int
    intervals: Table
    summary: Table
    notes: list[str] = field(default_factory=list)
    clock: str = "host time"  #: the time base of begin, end and the intervals
    fault: DecodeError | None = None  #: the fault that cut the trace short (partial reads)

    @property
    def elapsed(self) -> int:
        return self.end - self.begin


def _packet(sg: SystemGraph, m: int, cpu: int, s: int, e: int) -> tuple[int, int, int] | None:
    """(send time, machine, key) of the last matched packet received on ``cpu`` of machine
    ``m`` in [s, e]."""
    lk = sg.links.get(m)
    if lk is None or cpu not in lk.recv:
        return None
    r = lk.recv[cpu]
    j = bisect.bisect_right(r, e) - 1
    if j < 0 or r[j] < s:
        return None
    a, k = lk.src[cpu][j]
    return lk.send[cpu][j], a, k


Raw = tuple[int, int, int, int, int, int]  # start, end, machine, key, type, cpu


def _walk(sg: SystemGraph, m0: int, key: int, lo: int, hi: int) -> list[Raw]:
    """Intervals covering [lo, hi], in reverse time order (see :func:`.path._walk`)."""
    out: list[Raw] = []
    g0 = sg.machines[m0].graph
    stack: list[list[int]] = [[m0, key, lo, hi, last_edge_before(g0, key, hi)]]
    on_stack: Counter[tuple[int, int]] = Counter({(m0, key): 1})
    while stack:
        fr = stack[-1]
        m, k, flo, nh, i = fr
        g = sg.machines[m].graph
        if nh <= flo:
            stack.pop()
            on_stack[(m, k)] -= 1
            continue
        if i < int(g.offsets[k]):
            stack.pop()
            on_stack[(m, k)] -= 1
            cr = int(g.task_creator[k])
            if cr >= 0 and on_stack[(m, cr)] == 0:
                stack.append([m, cr, flo, nh, last_edge_before(g, cr, nh)])
                on_stack[(m, cr)] += 1
            else:
                out.append((flo, nh, m, k, _UNK, -1))
            continue
        es, ee = g._starts[i], int(g.edge_end[i])
        if ee < nh:
            s = max(ee, flo)
            out.append((s, nh, m, k, _UNK, -1))
            fr[3] = s
            continue
        s = max(es, flo)
        fr[3], fr[4] = s, i - 1
        typ = int(g.edge_type[i])
        cpu = int(g.edge_cpu[i])
        if typ == _B:
            w = int(g.edge_waker[i])
            if w >= 0 and on_stack[(m, w)] == 0:
                stack.append([m, w, s, nh, last_edge_before(g, w, nh)])
                on_stack[(m, w)] += 1
                continue
            typ = _UNK
        elif typ == _NET and cpu >= 0:
            got = _packet(sg, m, cpu, es, int(g.edge_end[i]))
            if got is not None and got[0] < nh:
                t_send, a, ka = got
                out.append((max(s, t_send), nh, m, k, _NET, -1))
                if t_send > s and on_stack[(a, ka)] == 0:
                    edge = last_edge_before(sg.machines[a].graph, ka, t_send)
                    stack.append([a, ka, s, t_send, edge])
                    on_stack[(a, ka)] += 1
                elif t_send > s:
                    out.append((s, t_send, m, k, _UNK, -1))
                continue
        out.append((s, nh, m, k, typ, cpu))
    return out


Row = tuple[int, int, int, int, str, int]  # start, end, machine index, tid, state, host tid


class _Overlay:
    """Cuts guest RUNNING intervals by vCPU states and preemption culprits."""

    def __init__(self, sg: SystemGraph) -> None:
        self.sg = sg
        self.by_machine = {id(mg.machine): i for i, mg in enumerate(sg.machines)}
        self.vm_index = {mg.vm.name: i for i, mg in enumerate(sg.machines) if mg.vm is not None}

    def guest(self, m: int, tid: int, cpu: int, s: int, e: int, out: list[Row]) -> None:
        mg = self.sg.machines[m]
        assert mg.vm is not None
        vt = mg.vm.vcpus.get(cpu, -1)
        try:
            assert self.sg.states is not None
            vs = self.sg.states.of(mg.vm.name, cpu)
        except (KeyError, AssertionError):
            out.append((s, e, m, tid, "RUNNING", vt))
            return
        iv = vs.intervals
        starts, ends, bits = iv["start"], iv["end"], iv["state"]
        j = int(np.searchsorted(ends, s, side="right"))
        t = s
        while t < e:
            if j >= starts.size or int(starts[j]) > t:
                nxt = e if j >= starts.size else min(e, int(starts[j]))
                out.append((t, nxt, m, tid, "RUNNING", vt))
                t = nxt
                continue
            b = min(e, int(ends[j]))
            st = int(bits[j])
            if st & PREEMPTED:
                self.preempted(vs, mg.host, t, b, out)
            elif st & IN_HYPERVISOR and not st & HALTED:
                out.append((t, b, mg.host, vt, "IN_HYPERVISOR", vt))
            else:
                out.append((t, b, m, tid, "RUNNING", vt))
            t = b
            j += 1

    def preempted(self, vs: VcpuStates, h: int, s: int, e: int, out: list[Row]) -> None:
        pre = vs.preemptions
        k = int(np.searchsorted(pre["start"], s, side="right")) - 1
        cpu = int(pre["cpu"][k]) if k >= 0 else -1
        hg = self.sg.machines[h].graph
        if cpu < 0:
            out.append((s, e, h, vs.tid, "PREEMPTED", -1))
            return
        times, tids = hg.cpu_timeline(cpu)
        a = int(np.searchsorted(times, s, side="right")) - 1
        t = s
        while t < e:
            nxt = e if a + 1 >= times.size else min(e, int(times[a + 1]))
            holder = int(tids[a]) if a >= 0 else -1
            self.holder(h, holder, t, nxt, out)
            t = nxt
            a += 1

    def holder(self, h: int, tid: int, s: int, e: int, out: list[Row]) -> None:
        """What the host thread ``tid`` holding a CPU over [s, e] ran."""
        host = self.sg.machines[h].machine
        st = self.sg.states
        got = st.setup.vm_of_thread(host, tid) if tid > 0 and st is not None else None
        if got is None:
            out.append((s, e, h, tid, "RUNNING", tid))
            return
        ovm, ov = got
        gi = self.vm_index.get(ovm.name)
        assert st is not None
        try:
            vs = st.of(ovm.name, ov)
        except KeyError:
            out.append((s, e, h, tid, "RUNNING", tid))
            return
        iv = vs.intervals
        starts, ends, bits, gt = iv["start"], iv["end"], iv["state"], iv["guest_tid"]
        j = int(np.searchsorted(ends, s, side="right"))
        t = s
        while t < e:
            if j >= starts.size or int(starts[j]) > t:
                nxt = e if j >= starts.size else min(e, int(starts[j]))
                out.append((t, nxt, h, tid, "RUNNING", tid))
                t = nxt
                continue
            b = min(e, int(ends[j]))
            bj, g = int(bits[j]), int(gt[j])
            if bj & IN_HYPERVISOR:
                out.append((t, b, h, tid, "IN_HYPERVISOR", tid))
            elif gi is not None and bj & BASE_MASK == RUNNING and g > 0:
                out.append((t, b, gi, g, "RUNNING", tid))
            else:
                out.append((t, b, h, tid, "RUNNING", tid))
            t = b
            j += 1


def _vm_name(mg: MachineGraph) -> str:
    return mg.vm.name if mg.vm is not None else ""


def _comm(sg: SystemGraph, m: int, tid: int, t: int, cache: dict[tuple[int, int], str]) -> str:
    got = cache.get((m, tid))
    if got is None:
        g = sg.machines[m].graph
        k = _key_at(g, tid, t)
        if k < 0:
            ks = g.keys_of(tid)
            k = ks[0] if ks else -1
        got = g.task_comm[k] if k >= 0 else ("swapper" if tid == 0 else "?")
        cache[(m, tid)] = got
    return got


def find_task(sg: SystemGraph, tid: int, machine: str | None = None) -> int:
    """Index of the machine whose task ``tid`` is meant (errors: unknown, ambiguous)."""
    cands = [i for i, mg in enumerate(sg.machines)
             if (machine is None or mg.matches(machine)) and mg.graph.keys_of(tid)]
    names = ", ".join(mg.name for mg in sg.machines)
    if machine is not None and not any(mg.matches(machine) for mg in sg.machines):
        raise CriticalPathError(f"no machine named {machine!r} (machines: {names})")
    if not cands:
        where = f"machine {machine}" if machine else f"any machine ({names})"
        raise CriticalPathError(f"no task with TID {tid} on {where}")
    if len(cands) > 1:
        raise CriticalPathError(
            f"TID {tid} exists on several machines "
            f"({', '.join(sg.machines[i].name for i in cands)}): choose one with --machine")
    return cands[0]


def system_critical_path(sg: SystemGraph, tid: int, machine: str | None = None,
                         begin: int | None = None, end: int | None = None) -> SystemPath:
    """The critical path of task ``tid`` (on ``machine``: a hostname, VM name or trace path;
    needed only when several machines have that TID) over [begin, end] (host ns; None: its
    lifetime)."""
    if begin is not None and end is not None and end <= begin:
        raise CriticalPathError(f"empty time range [{begin}, {end}]")
    m = find_task(sg, tid, machine)
    g = sg.machines[m].graph
    keys = g.keys_of(tid)
    key, t0, t1 = task_span(g, tid, keys, begin, end, f" on {sg.machines[m].name}", sg.clock)
    hi = t1
    i = last_edge_before(g, key, t1)
    if i >= int(g.offsets[key]) and int(g.edge_type[i]) in (_B, _NET):
        hi = int(g.edge_end[i])
    rows: list[Row] = []
    ov = _Overlay(sg)
    for s, e, mm, k, typ, cpu in reversed(_walk(sg, m, key, t0, hi)):
        e = min(e, t1)
        if e <= s:
            continue
        mg = sg.machines[mm]
        ktid = int(mg.graph.task_tid[k])
        if typ == _R and mg.vm is not None and cpu >= 0:
            ov.guest(mm, ktid, cpu, s, e, rows)
        elif typ == _R:
            rows.append((s, e, mm, ktid, "RUNNING", ktid))
        else:
            rows.append((s, e, mm, ktid, _NAMES[typ], -1))
    merged: list[Row] = []
    for row in rows:
        if row[1] <= row[0]:
            continue
        if merged and merged[-1][1] == row[0] and merged[-1][2:] == row[2:]:
            merged[-1] = (merged[-1][0], row[1], *row[2:])
        else:
            merged.append(row)
    cache: dict[tuple[int, int], str] = {}
    start = np.array([r[0] for r in merged], np.int64)
    stop = np.array([r[1] for r in merged], np.int64)
    mi = [r[2] for r in merged]
    tids = np.array([r[3] for r in merged], np.int64)
    comms = np.array([_comm(sg, a, int(t), int(s), cache)
                      for a, t, s in zip(mi, tids.tolist(), start.tolist(), strict=True)], object)
    mach = np.array([sg.machines[a].name for a in mi], object)
    vms = np.array([_vm_name(sg.machines[a]) for a in mi], object)
    intervals = Table({"start": start, "end": stop, "duration": stop - start, "machine": mach,
                       "vm": vms, "tid": tids, "comm": comms,
                       "state": np.array([r[4] for r in merged], object),
                       "host_tid": np.array([r[5] for r in merged], np.int64)})
    tot: dict[tuple[str, str, int, str], int] = {}
    for r in intervals.rows():
        kk = (r["machine"], r["vm"], r["tid"], r["comm"])
        tot[kk] = tot.get(kk, 0) + r["duration"]
    order = sorted(tot.items(), key=lambda kv: (-kv[1], kv[0]))
    summary = Table({"machine": np.array([k[0] for k, _ in order], object),
                     "vm": np.array([k[1] for k, _ in order], object),
                     "tid": np.array([k[2] for k, _ in order], np.int64),
                     "comm": np.array([k[3] for k, _ in order], object),
                     "duration": np.array([d for _, d in order], np.int64)})
    mg0 = sg.machines[m]
    return SystemPath(tid, g.task_comm[key], mg0.name,
                      mg0.vm.name if mg0.vm is not None else "", t0, t1, intervals, summary,
                      list(sg.notes), sg.clock)


def from_single(p: CriticalPath) -> SystemPath:
    """A one-machine :class:`~tracewatch.critical.path.CriticalPath` as a :class:`SystemPath`
    (``host_tid`` = the task for RUNNING intervals, else -1)."""
    iv = p.intervals
    n = iv.nrows
    name = p.hostname or "host"
    running = iv["state"] == "RUNNING"
    intervals = Table({"start": iv["start"], "end": iv["end"], "duration": iv["duration"],
                       "machine": np.full(n, name, object), "vm": np.full(n, "", object),
                       "tid": iv["tid"], "comm": iv["comm"], "state": iv["state"],
                       "host_tid": np.where(running, iv["tid"], -1).astype(np.int64)})
    sm = p.summary
    k = sm.nrows
    summary = Table({"machine": np.full(k, name, object), "vm": np.full(k, "", object),
                     "tid": sm["tid"], "comm": sm["comm"], "duration": sm["duration"]})
    return SystemPath(p.tid, p.comm, name, "", p.begin, p.end, intervals, summary,
                      clock="trace time", fault=p.fault)


def machines_of(ts: TraceSet) -> list[str]:
    """Host ids of the machines of ``ts`` (traces grouped as :mod:`tracewatch.sync` does)."""
    seen: list[str] = []
    for t in ts.traces:
        h = host_id(t)
        if h not in seen:
            seen.append(h)
    return seen


def task_critical_path(ts: TraceSet, tid: int, machine: str | None = None,
                       begin: int | None = None, end: int | None = None,
                       pairs: Mapping[str, int] | None = None, sync: bool = True,
                       partial: bool = False) -> tuple[SystemPath, SystemGraph | None]:
    """The critical path of ``tid``: on one machine when ``ts`` holds one machine's traces
    (``machine`` then must match it, if given), else across the host and its guests (guest
    clocks synchronized unless ``sync=False``). Returns the path and the system graph (None
    for one machine). ``partial`` (one machine only; several raise): on a corrupt or
    truncated trace, the path over the events before the fault, the error in ``fault``."""
    if len(machines_of(ts)) <= 1:
        if machine is not None:
            t = ts.traces[0]
            names = {t.hostname, host_id(t), t.path, PurePath(t.path).name,
                     PurePath(t.path).parent.name}
            if machine not in names:
                raise CriticalPathError(f"no machine named {machine!r} (the traces are of "
                                        f"{t.hostname or t.path})")
        return from_single(trace_critical_path(ts, tid, begin, end, partial)), None
    sg = build_system_graph(ts, pairs, sync)
    return system_critical_path(sg, tid, machine, begin, end), sg
