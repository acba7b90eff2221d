"""Machines of a trace set and their roles: hosts, guests, VMs and their vCPU threads.

One pass over the trace set (:func:`read_vm_events`) gathers, per machine (traces grouped by
host id: clock uuid, else hostname), the columns of the events the VM analysis needs.
:func:`discover` then finds:

* the hosts: machines whose traces have ``kvm_entry``/``kvm_exit`` events (LTTng >= 2.7:
  ``kvm_x86_entry``/``kvm_x86_exit``);
* the vCPU threads: on a host ``kvm_entry`` (field ``vcpu_id``), the host thread current on
  that CPU (from the host ``sched_switch``) is vCPU ``vcpu_id`` of the VM whose process is
  that thread's pid (pid from the statedump / ``sched_process_fork`` when known, else the tid);
* the pairing of each guest trace with its VM: the ``vm_uid`` of the guest's ``vmsync_*_guest``
  events is seen on the host (``vmsync_gh_host``/``vmsync_hg_host``/``kvm_x86_hypercall``) in a
  vCPU thread, or the user names it (``pairs={"GUEST_HOST": QEMU_PID}``);
* the clock transform of each guest to its host's time (:func:`tracewatch.sync.synchronize_pairs`
  over the matched sync events of that guest and host; identity, with a note, when they
  exchanged no sync event and the pairing was given by the user).

Errors (one line each, :class:`~tracewatch.errors.TracewatchError`): :class:`NoKvmEventsError`,
:class:`UnpairedGuestError`, :class:`ClockReconcileError`, :class:`PairingError`.
Imports :mod:`tracewatch.ctf`, :mod:`tracewatch.sync` and :mod:`tracewatch.errors` only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import PurePath

import numpy as np

from ..ctf import TraceSet
from ..errors import TracewatchError
from ..sync import (
    ClockTransform,
    NoSyncEventsError,
    SyncFailedError,
    host_id,
    match_events,
    synchronize_pairs,
)

__all__ = ["VmError", "NoKvmEventsError", "UnpairedGuestError", "ClockReconcileError",
           "PairingError", "Machine", "VirtualMachine", "VmSetup", "read_vm_events",
           "discover", "current_tid", "parse_pair", "EVENT_FIELDS"]

KVM_HINT = "record kvm_entry/kvm_exit: lttng enable-event -k kvm_x86_entry,kvm_x86_exit"

#: Actual event name -> (logical name, fields read).
EVENT_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sched_switch": ("sched_switch", ("prev_tid", "prev_state", "prev_comm", "next_tid",
                                      "next_comm")),
    "kvm_entry": ("kvm_entry", ("vcpu_id",)),
    "kvm_x86_entry": ("kvm_entry", ("vcpu_id",)),
    "kvm_exit": ("kvm_exit", ("exit_reason",)),
    "kvm_x86_exit": ("kvm_exit", ("exit_reason",)),
    "vmsync_gh_host": ("vmsync_host", ("cnt", "vm_uid")),
    "vmsync_hg_host": ("vmsync_host", ("cnt", "vm_uid")),
    "kvm_x86_hypercall": ("hypercall", ("a0", "a1")),
    "kvm_hypercall": ("hypercall", ("a0", "a1")),
    "vmsync_gh_guest": ("vmsync_guest", ("cnt", "vm_uid")),
    "vmsync_hg_guest": ("vmsync_guest", ("cnt", "vm_uid")),
    "lttng_statedump_process_state": ("statedump", ("tid", "pid", "name")),
    "sched_process_fork": ("fork", ("child_tid", "child_pid", "child_comm")),
}
_TEXT = {"prev_comm", "next_comm", "name", "child_comm"}


class VmError(TracewatchError):
    """The virtual machine analysis cannot run on this trace set."""


class NoKvmEventsError(VmError):
    """No trace of the set has kvm entry/exit events: there is no host."""


class UnpairedGuestError(VmError):
    """A guest trace cannot be paired with a VM process of a host."""


class PairingError(VmError):
    """A user-given pairing names an unknown guest or VM process."""


class ClockReconcileError(VmError):
    """The clocks of a guest and its host cannot be reconciled (synchronization FAILed)."""


Columns = dict[str, np.ndarray]


@dataclass
class Machine:
    """One machine: its traces (same host id) and the columns of its VM-related events.

    ``events[logical]`` holds ``seq`` (position in the trace set's time order), ``timestamp``
    (ns, the machine's own clock), ``cpu`` and the fields of :data:`EVENT_FIELDS`.
    """

    host_id: str
    hostname: str
    paths: list[str]
    events: dict[str, Columns] = field(default_factory=dict)
    role: str = "unknown"  # "host" or "guest"

    @property
    def label(self) -> str:
        return f"{self.paths[0]} (host {self.hostname or '?'})"

    def get(self, logical: str) -> Columns:
        got = self.events.get(logical)
        if got is None:
            return _empty(EVENT_FIELDS_BY_LOGICAL.get(logical, ()))
        return got

    def count(self, logical: str) -> int:
        return int(self.get(logical)["seq"].size)

    def matches(self, name: str) -> bool:
        """Whether ``name`` designates this machine (hostname, host id, trace path or its
        last component)."""
        if name in (self.hostname, self.host_id):
            return True
        return any(name in (p, PurePath(p).name, PurePath(p).parent.name) for p in self.paths)


EVENT_FIELDS_BY_LOGICAL: dict[str, tuple[str, ...]] = {}
for _lg, _fs in EVENT_FIELDS.values():
    EVENT_FIELDS_BY_LOGICAL.setdefault(_lg, _fs)


@dataclass
class VirtualMachine:
    """A VM: a process on a host whose threads run vCPUs, and maybe its guest trace."""

    name: str  # guest hostname when paired, else "qemu-PID"
    host: Machine
    pid: int
    comm: str
    vcpus: dict[int, int]  # vCPU id -> host tid
    guest: Machine | None = None
    vm_uid: int | None = None
    paired_by: str = ""  # "vmsync", "user" or "" (no guest trace)
    transform: ClockTransform = field(default_factory=ClockTransform.identity)  # guest -> host
    clock_note: str = ""
    synced: bool = False  # transform fitted from sync events (may be refined, see vcpu)
    #: (relative slope correction, offset ns) of the guest-mode refinement (vm.vcpu)
    refined: tuple[Fraction, int] | None = None

    def vcpu_of(self, tid: int) -> int | None:
        for v, t in self.vcpus.items():
            if t == tid:
                return v
        return None


@dataclass
class VmSetup:
    """What :func:`discover` found: machines, VMs and notes to show the user."""

    hosts: list[Machine]
    guests: list[Machine]
    vms: list[VirtualMachine]
    notes: list[str] = field(default_factory=list)

    def vm_of_thread(self, host: Machine, tid: int) -> tuple[VirtualMachine, int] | None:
        """(VM, vCPU id) of a host thread that runs a vCPU, else None."""
        for vm in self.vms:
            if vm.host is host:
                v = vm.vcpu_of(tid)
                if v is not None:
                    return vm, v
        return None

    def vm_named(self, name: str) -> VirtualMachine:
        for vm in self.vms:
            if vm.name == name:
                return vm
        raise KeyError(name)


def _empty(fields: tuple[str, ...]) -> Columns:
    out: Columns = {"seq": np.zeros(0, np.int64), "timestamp": np.zeros(0, np.int64),
                    "cpu": np.zeros(0, np.int64)}
    for f in fields:
        out[f] = np.empty(0, object) if f in _TEXT else np.zeros(0, np.int64)
    return out


def read_vm_events(ts: TraceSet) -> list[Machine]:
    """One pass over ``ts``: the machines (traces grouped by host id, in trace order) with
    the columns of the events of :data:`EVENT_FIELDS` they have."""
    by_hid: dict[str, Machine] = {}
    machine_of_trace: list[Machine] = []
    for t in ts.traces:
        hid = host_id(t)
        m = by_hid.get(hid)
        if m is None:
            m = by_hid[hid] = Machine(hid, t.hostname, [])
        m.paths.append(t.path)
        machine_of_trace.append(m)
    present = sorted({c.name for c in ts.classes if c.name in EVENT_FIELDS})
    gid_trace = np.array([c.trace.index for c in ts.classes], np.int64)
    parts: dict[tuple[int, str], list[Columns]] = {}
    seq0 = 0
    if present:
        for b in ts.batches(names=present):
            tr = gid_trace[b.gid]
            for name in present:
                logical, fields = EVENT_FIELDS[name]
                cols = b.columns(name, [])
                idx = cols["index"]
                if idx.size == 0:
                    continue
                out: Columns = {"seq": idx.astype(np.int64) + seq0,
                                "timestamp": cols["timestamp"].astype(np.int64),
                                "cpu": cols["cpu"].astype(np.int64)}
                for f in fields:
                    try:
                        v = b.columns(name, [f])[f]
                    except KeyError:
                        v = np.full(idx.size, "" if f in _TEXT else -1,
                                    object if f in _TEXT else np.int64)
                    out[f] = v if f in _TEXT else np.asarray(v).astype(np.int64)
                tix = tr[idx]
                for ti in np.unique(tix).tolist():
                    sel = tix == ti
                    parts.setdefault((int(ti), logical), []).append(
                        {k: a[sel] for k, a in out.items()})
            seq0 += len(b)
    grouped: dict[tuple[str, str], list[Columns]] = {}
    for (ti, logical), ps in parts.items():
        grouped.setdefault((machine_of_trace[ti].host_id, logical), []).extend(ps)
    for (hid, logical), ps in grouped.items():
        cat = {k: np.concatenate([p[k] for p in ps]) for k in ps[0]}
        order = np.argsort(cat["seq"], kind="stable")
        by_hid[hid].events[logical] = {k: a[order] for k, a in cat.items()}
    return list(by_hid.values())


def current_tid(switch: Columns, seq: np.ndarray, cpu: np.ndarray) -> np.ndarray:
    """The tid current on ``cpu[i]`` just before the event of position ``seq[i]`` (after
    the last ``sched_switch`` of that CPU before it; -1 when none)."""
    out = np.full(seq.size, -1, np.int64)
    if seq.size == 0 or switch["seq"].size == 0:
        return out
    for c in np.unique(cpu).tolist():
        on = switch["cpu"] == c
        s_seq, s_next = switch["seq"][on], switch["next_tid"][on]
        sel = np.flatnonzero(cpu == c)
        k = np.searchsorted(s_seq, seq[sel], side="left") - 1
        ok = k >= 0
        out[sel[ok]] = s_next[k[ok]]
    return out


def _pids(m: Machine) -> tuple[dict[int, int], dict[int, str]]:
    """tid -> pid and tid -> comm (last known: statedump, fork, sched_switch names)."""
    pid: dict[int, int] = {}
    comm: dict[int, str] = {}
    rows: list[tuple[int, int, int, str]] = []  # seq, tid, pid, comm
    sd = m.get("statedump")
    rows += zip(sd["seq"].tolist(), sd["tid"].tolist(), sd["pid"].tolist(),
                [str(x) for x in sd["name"].tolist()], strict=True)
    fk = m.get("fork")
    rows += zip(fk["seq"].tolist(), fk["child_tid"].tolist(), fk["child_pid"].tolist(),
                [str(x) for x in fk["child_comm"].tolist()], strict=True)
    sw = m.get("sched_switch")
    names = list(zip(sw["seq"].tolist(), sw["next_tid"].tolist(),
                     [str(x) for x in sw["next_comm"].tolist()], strict=True))
    for _, t, c in names:
        comm.setdefault(t, c)
    for _, t, p, c in sorted(rows):
        if p >= 0:
            pid[t] = p
        if c:
            comm[t] = c
    return pid, comm


def parse_pair(text: str) -> tuple[str, int]:
    """``GUEST_HOST=QEMU_PID`` -> (guest, pid)."""
    guest, sep, pid = text.rpartition("=")
    if not sep or not guest or not pid.strip().isdigit():
        raise PairingError(f"--pair {text!r}: expected GUEST_HOST=QEMU_PID (e.g. vm1=4242)")
    return guest, int(pid)


def discover(ts: TraceSet, pairs: Mapping[str, int] | None = None, sync: bool = True,
             machines: list[Machine] | None = None) -> VmSetup:
    """Hosts, guests, VMs, their vCPU threads, pairings and guest clock transforms.

    ``pairs`` maps a guest (hostname, host id or trace path) to the pid of its VM process on
    a host; it overrides the vmsync pairing.  ``sync=False`` maps guest time to host time
    with the identity (traces recorded on one clock, e.g. test stubs).
    """
    ms = machines if machines is not None else read_vm_events(ts)
    hosts = [m for m in ms if m.count("kvm_entry") + m.count("kvm_exit") > 0]
    if not hosts:
        names = ", ".join(m.label for m in ms) or "none"
        raise NoKvmEventsError(f"no host trace: no kvm_entry/kvm_exit event in {names}; "
                               f"{KVM_HINT}")
    notes: list[str] = []
    vms: list[VirtualMachine] = []
    uid_pid: dict[str, Counter[tuple[int, int]]] = {}  # host id -> (uid, pid) counts
    for h in hosts:
        h.role = "host"
        if h.count("sched_switch") == 0:
            raise NoKvmEventsError(f"host {h.label}: no sched_switch event, the vCPU threads "
                                   "cannot be found; record it: lttng enable-event -k "
                                   "sched_switch")
        pid_of, comm_of = _pids(h)
        sw = h.get("sched_switch")
        en = h.get("kvm_entry")
        tids = current_tid(sw, en["seq"], en["cpu"])
        found: dict[int, dict[int, int]] = {}
        for tid, vc in zip(tids.tolist(), en["vcpu_id"].tolist(), strict=True):
            if tid <= 0:
                continue
            found.setdefault(pid_of.get(tid, tid), {})[int(vc)] = tid
        for pid, vcpus in sorted(found.items()):
            vms.append(VirtualMachine(f"qemu-{pid}", h, pid, comm_of.get(pid, ""),
                                      dict(sorted(vcpus.items()))))
        cnt: Counter[tuple[int, int]] = Counter()
        for logical, ufield in (("vmsync_host", "vm_uid"), ("hypercall", "a1")):
            c = h.get(logical)
            t = current_tid(sw, c["seq"], c["cpu"])
            for tid, uid in zip(t.tolist(), c[ufield].tolist(), strict=True):
                if tid > 0 and uid >= 0:
                    cnt[(int(uid), pid_of.get(tid, tid))] += 1
        uid_pid[h.host_id] = cnt
    guests: list[Machine] = []
    for m in ms:
        if m.role == "host":
            continue
        if m.count("sched_switch") == 0 and m.count("vmsync_guest") == 0:
            notes.append(f"{m.label}: neither a host (no kvm events) nor a guest (no "
                         "sched_switch/vmsync events): ignored")
            continue
        m.role = "guest"
        guests.append(m)
    pairs = dict(pairs or {})
    used: set[str] = set()
    matches = None
    for g in guests:
        uids = Counter(u for u in g.get("vmsync_guest")["vm_uid"].tolist() if u >= 0)
        uid = uids.most_common(1)[0][0] if uids else None
        vm: VirtualMachine | None = None
        by = ""
        for name, pid in pairs.items():
            if g.matches(name):
                used.add(name)
                cands = [v for v in vms if v.pid == pid]
                if not cands:
                    known = ", ".join(f"{v.pid} ({v.host.hostname or '?'})" for v in vms)
                    raise PairingError(f"--pair {name}={pid}: no VM process {pid} runs vCPUs "
                                       f"on the host(s); VM processes: {known or 'none'}")
                vm, by = cands[0], "user"
        if vm is None and uid is not None:
            for v in vms:
                if uid_pid[v.host.host_id].get((uid, v.pid)):
                    vm, by = v, "vmsync"
                    break
        if vm is None:
            why = (f"its vm_uid {uid} is seen in no vCPU thread of a host" if uid is not None
                   else "it has no vmsync_gh_guest/vmsync_hg_guest event")
            raise UnpairedGuestError(
                f"cannot pair guest {g.label} with a VM: {why}; name its VM process with "
                f"--pair {g.hostname or PurePath(g.paths[0]).name}=QEMU_PID "
                f"(VM processes: {', '.join(str(v.pid) for v in vms) or 'none'})")
        if vm.guest is not None:
            raise PairingError(f"VM process {vm.pid} paired with two guests: "
                               f"{vm.guest.label} and {g.label}")
        vm.guest, vm.paired_by, vm.vm_uid = g, by, uid
        vm.name = g.hostname or PurePath(g.paths[0]).name
        if not sync:
            vm.clock_note = "clocks not synchronized (identity asked for)"
            continue
        if matches is None:
            matches = match_events(ts)
        h = vm.host
        try:
            res = synchronize_pairs([(h.host_id, h.hostname, h.paths),
                                     (g.host_id, g.hostname, g.paths)], matches)
        except NoSyncEventsError:
            vm.clock_note = (f"no sync event between {vm.name} and {h.hostname or '?'}: guest "
                             "timestamps used as host time (identity)")
            notes.append(vm.clock_note)
            continue
        except SyncFailedError as e:
            raise ClockReconcileError(f"cannot reconcile the clocks of guest {vm.name} and host "
                                      f"{h.hostname or '?'}: {e}") from None
        ht, gt = res.by_host(h.host_id), res.by_host(g.host_id)
        vm.transform = ht.from_reference.compose(gt.transform)
        vm.synced = True
        q = (gt.quality or ht.quality)
        vm.clock_note = (f"synchronized with {h.hostname or '?'}: {vm.transform} "
                         f"({max(gt.pairs, ht.pairs)} pairs, {q.value if q else '?'})")
    unused = [n for n in pairs if n not in used]
    if unused:
        raise PairingError(f"--pair {unused[0]}=...: no guest trace has that hostname or path "
                           f"(guests: {', '.join(g.hostname or g.paths[0] for g in guests) or 'none'})")
    return VmSetup(hosts, guests, vms, notes)
