"""Machines of a trace set and their roles: hosts, guests, VMs and their vCPU threads.

One pass over the trace set (:func:`read_vm_events`) gathers, per machine (traces grouped by
host id: clock uuid, else hostname), the columns of the events the VM analysis needs (and,
when asked, the sync events, so that clock synchronization needs no pass of its own).
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
from typing import Any

import numpy as np

from ..ctf import EventBatch, TraceSet
from ..errors import TracewatchError
from ..sync import (
    SYNC_EVENTS,
    ClockTransform,
    EdgeSync,
    MatchResult,
    NoSyncEventsError,
    SyncColumns,
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
    "sched_switch": ("sched_switch", ("prev_tid", "prev_state", "next_tid", "next_comm")),
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
_TEXT = {"next_comm", "name", "child_comm"}


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
    ``first_switch[cpu]``: ``(prev_tid, prev_comm)`` of the first ``sched_switch`` of that
    CPU (``prev_comm`` is read for that event only).
    """

    host_id: str
    hostname: str
    paths: list[str]
    events: dict[str, Columns] = field(default_factory=dict)
    role: str = "unknown"  # "host" or "guest"
    first_switch: dict[int, tuple[int, str]] = field(default_factory=dict)

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


def _batch_columns(b: EventBatch, name: str, fields: tuple[str, ...]) -> Columns | None:
    """seq (index in the batch), timestamp, cpu and ``fields`` of the events ``name`` of
    ``b`` (a field no event class of the batch has: -1 or "")."""
    try:
        cols = b.columns(name, list(fields))
    except KeyError:
        cols = b.columns(name, [])
        if cols["index"].size == 0:
            return None
        for f in fields:
            try:
                cols[f] = b.columns(name, [f])[f]
            except KeyError:
                cols[f] = np.full(cols["index"].size, "" if f in _TEXT else -1,
                                  object if f in _TEXT else np.int64)
    idx = cols["index"]
    if idx.size == 0:
        return None
    out: Columns = {"seq": idx.astype(np.int64), "timestamp": cols["timestamp"].astype(np.int64),
                    "cpu": cols["cpu"].astype(np.int64)}
    for f in fields:
        out[f] = cols[f] if f in _TEXT else np.asarray(cols[f]).astype(np.int64)
    return out


class _FirstSwitches:
    """(seq, prev_tid, prev_comm) of the first sched_switch of each (trace, cpu, stream)."""

    def __init__(self) -> None:
        self.found: dict[tuple[int, int, int], tuple[int, int, str]] = {}

    def add(self, b: EventBatch, cols: Columns, trace: np.ndarray, seq0: int) -> None:
        idx = cols["seq"]
        stream = b.stream[idx].astype(np.int64)
        keys = (trace * (1 << 20) + stream) * (1 << 24) + (cols["cpu"] + 1)
        _, first = np.unique(keys, return_index=True)
        new = [r for r in first.tolist()
               if (int(trace[r]), int(cols["cpu"][r]), int(stream[r])) not in self.found]
        if not new:
            return
        rows = np.sort(np.array(new, np.int64))
        try:
            comm = b.take(idx[rows]).columns("sched_switch", ["prev_comm"])["prev_comm"]
        except KeyError:
            comm = np.full(rows.size, "", object)
        for r, pc in zip(rows.tolist(), comm.tolist(), strict=True):
            key = (int(trace[r]), int(cols["cpu"][r]), int(stream[r]))
            self.found[key] = (int(idx[r]) + seq0, int(cols["prev_tid"][r]), str(pc))


class _StreamOrder:
    """The trace set's time order of events read stream by stream: the key of the merge
    (:mod:`tracewatch.ctf.merge`): running maximum of the stream's timestamps, then the
    stream's rank (trace, stream class, stream instance id, file), then stream order."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}  # stream -> running maximum timestamp
        self.rank_key: dict[int, tuple[Any, ...]] = {}
        self.key: list[np.ndarray] = []
        self.stream: list[np.ndarray] = []

    def add(self, ts: TraceSet, b: EventBatch) -> None:
        sid = int(b.stream[0])
        if sid not in self.rank_key:
            sf, pk = ts.streams[sid], b.chunks[0].packets[0]
            inst = pk.stream_instance_id
            self.rank_key[sid] = (sf.trace.index, pk.stream_class_id,
                                  inst if inst is not None else -1, sf.path)
        key = np.maximum.accumulate(np.concatenate(([self.last.get(sid, -(1 << 63))], b.ts)))[1:]
        self.last[sid] = int(key[-1])
        self.key.append(key)
        self.stream.append(np.full(len(b), sid, np.int64))

    def seq(self) -> np.ndarray:
        """Position in the time order of each event, events numbered in reading order."""
        if not self.key:
            return np.zeros(0, np.int64)
        ranks = {sid: r for r, sid in enumerate(sorted(self.rank_key,
                                                         key=self.rank_key.__getitem__))}
        rank = np.array([ranks.get(i, -1) for i in range(max(ranks) + 1)], np.int64)
        key, stream = np.concatenate(self.key), np.concatenate(self.stream)
        order = np.lexsort((np.arange(key.size), rank[stream], key))
        out = np.empty(key.size, np.int64)
        out[order] = np.arange(key.size)
        return out


def read_vm_events(ts: TraceSet, sync: SyncColumns | None = None,
                   merged: bool = False) -> list[Machine]:
    """One pass over ``ts``: the machines (traces grouped by host id, in trace order) with
    the columns of the events of :data:`EVENT_FIELDS` they have.

    With ``sync``, the sync events of the same batches are gathered in it too (to match
    them without a second pass: ``sync.result()``).  The streams are read one after the
    other (cheaper columns) and the events put in the trace set's time order afterwards;
    ``merged`` reads the merged, time-ordered batches instead (same result)."""
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
    names = list(present)
    if sync is not None:
        names = sorted(set(names) | {c.name for c in ts.classes if c.name in SYNC_EVENTS})
    gid_trace = np.array([c.trace.index for c in ts.classes], np.int64)
    parts: dict[str, list[Columns]] = {}
    firsts = _FirstSwitches()
    order = None if merged else _StreamOrder()
    seq0 = 0
    for b in ts.batches(names=names, merged=merged) if names else ():
        if order is not None:
            order.add(ts, b)
        if sync is not None:
            sync.add(b, None if merged else seq0)
        for name in present:
            cols = _batch_columns(b, name, EVENT_FIELDS[name][1])
            if cols is None:
                continue
            trace = gid_trace[b.gid[cols["seq"]]]
            if name == "sched_switch":
                firsts.add(b, cols, trace, seq0)
            cols["seq"] += seq0
            cols["trace"] = trace
            parts.setdefault(name, []).append(cols)
        seq0 += len(b)
    if order is not None:  # reading order -> time order
        seq_of = order.seq()
        for ps in parts.values():
            for cols in ps:
                cols["seq"] = seq_of[cols["seq"]]
        firsts.found = {k: (int(seq_of[q]), tid, c) for k, (q, tid, c) in firsts.found.items()}
        if sync is not None:
            sync.reorder(seq_of)
    mi_of_trace = np.array([list(by_hid).index(m.host_id) for m in machine_of_trace], np.int64)
    machines = list(by_hid.values())
    grouped: dict[tuple[int, str], list[Columns]] = {}
    for name in list(parts):
        ps = parts.pop(name)  # free each batch's columns as soon as they are gathered
        cat = {k: np.concatenate([p[k] for p in ps]) for k in ps[0]}
        del ps
        mi = mi_of_trace[cat.pop("trace")]
        ks = np.unique(mi).tolist()
        for k in ks:
            sel = mi == k
            grouped.setdefault((k, EVENT_FIELDS[name][0]), []).append(
                cat if len(ks) == 1 else {c: a[sel] for c, a in cat.items()})
    for (k, logical), ps in grouped.items():
        cat = {c: np.concatenate([p[c] for p in ps]) for c in ps[0]} if len(ps) > 1 else ps[0]
        if len(ps) > 1 or order is not None:
            by_seq = np.argsort(cat["seq"], kind="stable")
            cat = {c: a[by_seq] for c, a in cat.items()}
        machines[k].events[logical] = cat
    for (ti, cpu, _), (_, tid, comm) in sorted(firsts.found.items(), key=lambda x: x[1][0]):
        machine_of_trace[ti].first_switch.setdefault(cpu, (tid, comm))
    return machines


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
    """tid -> pid and tid -> comm (last known: statedump, fork, else the first
    ``sched_switch`` name)."""
    sw = m.get("sched_switch")
    tids, first = np.unique(sw["next_tid"], return_index=True)
    comm: dict[int, str] = dict(zip(tids.tolist(), [str(x) for x in sw["next_comm"][first]],
                                    strict=True))
    pid: dict[int, int] = {}
    rows: list[tuple[int, int, int, str]] = []  # seq, tid, pid, comm
    sd = m.get("statedump")
    rows += zip(sd["seq"].tolist(), sd["tid"].tolist(), sd["pid"].tolist(),
                [str(x) for x in sd["name"].tolist()], strict=True)
    fk = m.get("fork")
    rows += zip(fk["seq"].tolist(), fk["child_tid"].tolist(), fk["child_pid"].tolist(),
                [str(x) for x in fk["child_comm"].tolist()], strict=True)
    for _, t, p, c in sorted(rows):
        if p >= 0:
            pid[t] = p
        if c:
            comm[t] = c
    return pid, comm


def _pair_codes(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct a values, distinct b values, one int64 code per pair (a[i], b[i]))."""
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    return ua, ub, ia.astype(np.int64) * max(ub.size, 1) + ib


def _last_pairs(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """The distinct pairs (a[i], b[i]), ordered by their last occurrence."""
    if a.size == 0:
        return []
    ua, ub, code = _pair_codes(a, b)
    u, rev = np.unique(code[::-1], return_index=True)
    u = u[np.argsort(-rev, kind="stable")]  # last occurrence = smallest reversed index
    return list(zip(ua[u // max(ub.size, 1)].tolist(), ub[u % max(ub.size, 1)].tolist(),
                    strict=True))


def _pair_counts(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int, int]]:
    """(a value, b value, count) of each distinct pair (a[i], b[i])."""
    if a.size == 0:
        return []
    ua, ub, code = _pair_codes(a, b)
    u, n = np.unique(code, return_counts=True)
    return list(zip(ua[u // max(ub.size, 1)].tolist(), ub[u % max(ub.size, 1)].tolist(),
                    n.tolist(), strict=True))


def parse_pair(text: str) -> tuple[str, int]:
    """``GUEST_HOST=QEMU_PID`` -> (guest, pid)."""
    guest, sep, pid = text.rpartition("=")
    if not sep or not guest or not pid.strip().isdigit():
        raise PairingError(f"--pair {text!r}: expected GUEST_HOST=QEMU_PID (e.g. vm1=4242)")
    return guest, int(pid)


def discover(ts: TraceSet, pairs: Mapping[str, int] | None = None, sync: bool = True,
             machines: list[Machine] | None = None, matches: MatchResult | None = None,
             fitted: Mapping[tuple[str, str], EdgeSync] | None = None) -> VmSetup:
    """Hosts, guests, VMs, their vCPU threads, pairings and guest clock transforms.

    ``pairs`` maps a guest (hostname, host id or trace path) to the pid of its VM process on
    a host; it overrides the vmsync pairing.  ``sync=False`` maps guest time to host time
    with the identity (traces recorded on one clock, e.g. test stubs).  ``matches``: the
    matched sync events of ``ts`` when already known (else they are read when needed);
    ``fitted``: hull fits of machine pairs already made from them (``SyncResult.edges``).
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
        for tid, vc in _last_pairs(tids, en["vcpu_id"]):
            if tid <= 0:
                continue
            found.setdefault(pid_of.get(tid, tid), {})[vc] = tid
        for pid, vcpus in sorted(found.items()):
            vms.append(VirtualMachine(f"qemu-{pid}", h, pid, comm_of.get(pid, ""),
                                      dict(sorted(vcpus.items()))))
        cnt: Counter[tuple[int, int]] = Counter()
        for logical, ufield in (("vmsync_host", "vm_uid"), ("hypercall", "a1")):
            c = h.get(logical)
            t = current_tid(sw, c["seq"], c["cpu"])
            ok = (t > 0) & (c[ufield] >= 0)
            for u, tid, k in _pair_counts(c[ufield][ok], t[ok]):
                cnt[(u, pid_of.get(tid, tid))] += k
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
                                     (g.host_id, g.hostname, g.paths)], matches,
                                    fitted=fitted)
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
