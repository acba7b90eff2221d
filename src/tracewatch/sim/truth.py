"""Ground truth of a simulation run (``truth.json``) and the guest clock transforms.

Every time in the truth is an integer number of nanoseconds on the *host* clock, absolute
(CTF ns since the epoch, as readers report host events).  Guest clocks are exact:

    t_guest = floor(slope * t_host + offset)        slope = 1 + drift_ppb / 1e9

with ``offset`` an integer, both written as decimal strings (``from_host``); ``to_host``
gives the inverse line (``t_host = slope * t_guest + offset``) to 40 significant digits.
Culprits are objects: ``{"machine": "host", "tid", "comm"}`` for a host task (tid 0:
idle), ``{"machine": "host", "tid", "comm", "vm", "guest_tid", "guest_comm"}`` for another
VM's vCPU thread (with the guest task current on that vCPU when the time was accounted, at
the host context switch ending that slice) and ``{"machine": "guest-VM", "tid", "comm"}``
for a guest task (guest-level waits); ``machine`` is a key of ``machines``.

Schema (``machines`` maps ``host`` and ``guest-NAME`` to):

- host: ``hostname``, ``dir``, ``cpus``, ``clock`` (identity), ``threads`` (tid, pid, comm,
  cpu, prio, kind: vcpu, qemu, hog, periodic, irq).
- guest: ``hostname``, ``dir``, ``vm_uid``, ``qemu_pid``, ``vcpu_tids``, ``vcpu_cpus``,
  ``clock``; ``vcpus``: per vCPU ``vcpu``, ``tid``, ``cpu``, ``preempted_ns``,
  ``preemptions`` (every interval where the vCPU thread was switched out while runnable,
  ``prev_state`` 0, until switched back in: ``start``, ``end``, ``duration``, ``culprit``
  = the thread switched in, ``by`` = ``[culprit id, ns]`` for every thread that ran
  meanwhile, largest first; ids index the top-level ``culprits`` list),
  ``hypervisor`` (per exit reason: ``count``, ``total_ns`` = on-CPU time from kvm_exit
  to the next kvm_entry, ``wall_ns`` = the same including time switched out or halted,
  ``min_ns``/``max_ns`` of the on-CPU time), ``sync_exchanges`` (``cnt``, host times of
  ``guest_send`` = vmsync_gh_guest, ``host_recv`` = vmsync_gh_host, ``host_send`` =
  vmsync_hg_host, ``guest_recv`` = vmsync_hg_guest; A/B carry ``cnt``, C/D ``cnt + 1``);
  ``threads``: per guest task ``runs`` (completed run intervals), ``apparent_ns`` (guest
  sched_switch in -> out, host ns) = ``real_ns`` (guest mode) + ``preempted_ns`` +
  ``hypervisor_ns``; ``critical_executions``: per execution of a critical task (switch-in
  after its wakeup -> switch-out where it blocks) ``start``, ``end``, ``duration`` =
  ``running`` + ``preempted`` (vCPU thread preempted; ``preempted_by``) + ``hypervisor``
  (``hypervisor_by_reason``) + ``guest_wait`` (runnable in the guest behind another guest
  task; ``guest_wait_by``); ``tcp_sent``: every TCP segment this guest sent
  (inet_sock_local_out; ``dst`` machine, ``seq``, ``ack_seq``, ``flags``, ``saddr``,
  ``daddr``, host times ``send`` and ``recv`` of the peer's inet_sock_local_in, null if
  still in flight at the end).

Guests with ``log`` tasks also get ``critical_paths``: for each such task, every *cycle*
(from one of its blocking switch-outs to the next) with its true critical path
``intervals`` (``[start, end, machine, tid, comm, state, host_tid]``, contiguous, summing to
the cycle): RUNNING slices of a guest task (``host_tid`` = its vCPU thread), the vCPU's
hypervisor time (``host`` vCPU thread, IN_HYPERVISOR) and preempted time (the host thread
that held the CPU, RUNNING, or for another VM's vCPU thread the guest task current on it at
the end of the slice: ``host_tid`` = the thread holding the CPU), PREEMPTED while runnable in
the guest, TIMER / INTERRUPTED waits; a wait a task ended (futex wake) is replaced by the
waker's path since the wait began, a wait for a packet by the sender's path up to the send
then NETWORK until the wakeup (the simulator knows who woke whom: no trace is read).
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from .model import HOST_EPOCH_S, GuestSpec, Scenario
from .scheduler import CulpritKey, GTask, GuestRt, HThread, PCpu, VCpu

__all__ = ["GuestClock", "culprit", "build_truth", "TRUTH_FORMAT"]

TRUTH_FORMAT = "tracewatch-sim-truth/1"
HOST_EPOCH_NS = HOST_EPOCH_S * 1_000_000_000


class GuestClock:
    """Exact guest clock of a guest: ``g_abs = floor((1 + k/1e9) * h_abs + b)``.

    Written as cycles ``t + (k * t) // 10**9`` relative to the guest trace's clock offset
    ``HOST_EPOCH_NS + offset_ns`` where ``t`` is the host cycle count (ns since
    ``HOST_EPOCH_NS``)."""

    def __init__(self, spec: GuestSpec) -> None:
        self.k = spec.drift_ppb
        self.origin = HOST_EPOCH_NS + spec.offset_ns  # guest trace clock offset (abs ns)
        if self.origin < 0:
            raise ValueError("guest clock origin before the epoch")
        self.b = spec.offset_ns - self.k * HOST_EPOCH_S

    def cycles(self, t: int) -> int:
        """Guest clock cycles of host cycle ``t``."""
        return t + (self.k * t) // 1_000_000_000

    def guest_abs(self, host_abs: int) -> int:
        """Exact integer guest time (abs ns) of a host time (abs ns)."""
        return host_abs + self.b + (self.k * host_abs) // 1_000_000_000

    @property
    def slope(self) -> Decimal:
        return Decimal(1_000_000_000 + self.k) / Decimal(1_000_000_000)

    def as_json(self) -> dict[str, Any]:
        with localcontext() as ctx:
            ctx.prec = 60
            a = Decimal(1_000_000_000 + self.k) / Decimal(1_000_000_000)
            b = Decimal(self.b)
            ctx.prec = 40
            inv_a = Decimal(1) / a
            inv_b = -b / a
        return {"formula": "guest_ns = floor(slope * host_ns + offset)",
                "from_host": {"slope": str(a), "offset": str(b)},
                "to_host": {"slope": str(inv_a), "offset": str(inv_b)},
                "drift_ppb": self.k, "offset_at_epoch_ns": int(b)}


def culprit(key: CulpritKey) -> dict[str, Any]:
    """JSON object of a culprit key."""
    if key[0] == "host":
        return {"machine": "host", "tid": key[1], "comm": key[2]}
    if key[0] == "vm":
        return {"machine": "host", "tid": key[1], "comm": "qemu-system-x86", "vm": key[2],
                "guest_tid": key[3], "guest_comm": key[4]}
    return {"machine": f"guest-{key[1]}", "tid": key[2], "comm": key[3]}


_Cache = dict[CulpritKey, tuple[dict[str, Any], str]]


def _by(d: dict[CulpritKey, int], cache: _Cache) -> list[dict[str, Any]]:
    """Culprits of a time breakdown, largest first (ties in a stable order)."""
    rows = []
    for k, ns in d.items():
        if ns:
            c = cache.get(k)
            if c is None:
                c = cache[k] = (culprit(k), repr(k))
            rows.append((-ns, c[1], c[0]))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [{**c, "ns": -ns} for ns, _, c in rows]


def build_truth(sc: Scenario, cpus: list[PCpu], guests: list[GuestRt],
                threads: list[HThread], counts: dict[str, int]) -> dict[str, Any]:
    """The truth.json document of a finished simulation."""
    H = HOST_EPOCH_NS
    cache: _Cache = {}
    ids: dict[CulpritKey, int] = {}
    table: list[dict[str, Any]] = []

    def compact(d: dict[CulpritKey, int]) -> list[list[int]]:
        rows = []
        for k, ns in d.items():
            if ns:
                i = ids.get(k)
                if i is None:
                    i = ids[k] = len(table)
                    table.append(culprit(k))
                rows.append([i, ns])
        rows.sort(key=lambda r: (-r[1], r[0]))
        return rows

    machines: dict[str, Any] = {
        "host": {
            "hostname": sc.hostname, "dir": "host", "cpus": sc.cpus,
            "clock": {"formula": "host_ns (reference)",
                      "from_host": {"slope": "1", "offset": "0"},
                      "to_host": {"slope": "1", "offset": "0"}},
            "threads": [{"tid": t.tid, "pid": t.pid, "comm": t.comm, "cpu": t.cpu,
                         "prio": t.prio, "kind": t.kind} for t in threads],
        }}
    for g in guests:
        sp = g.spec
        clock = GuestClock(sp)
        vcpus = []
        for v in g.vcpus:
            pre: list[dict[str, Any]] = [
                {"start": H + s, "end": H + e, "duration": e - s, "culprit": culprit(c),
                 "by": compact(by)} for s, e, c, by in v.preemptions]
            hv = {r: {"count": st[0], "total_ns": st[1], "wall_ns": st[2], "min_ns": st[3],
                      "max_ns": st[4]} for r, st in sorted(v.hvstats.items())}
            vcpus.append({"vcpu": v.idx, "tid": v.th.tid, "cpu": v.th.cpu,
                          "preempted_ns": sum(p["duration"] for p in pre),
                          "preemptions": pre, "hypervisor": hv,
                          "sync_exchanges": [
                              {"cnt": c, "guest_send": H + a, "host_recv": H + b,
                               "host_send": H + cc, "guest_recv": H + d}
                              for c, a, b, cc, d in v.sync]})
        tasks = []
        execs = []
        for t in g.tasks:
            tasks.append({"tid": t.tid, "comm": t.comm, "vcpu": t.spec.vcpu,
                          "kind": t.spec.kind, "runs": t.runs, "real_ns": t.real,
                          "apparent_ns": t.apparent, "preempted_ns": t.steal,
                          "hypervisor_ns": t.hv})
            for ex in t.execs:
                execs.append({
                    "tid": t.tid, "comm": t.comm, "vcpu": t.spec.vcpu, "start": H + ex.start,
                    "end": H + ex.end, "duration": ex.end - ex.start, "running": ex.running,
                    "preempted": sum(ex.pre.values()), "preempted_by": _by(ex.pre, cache),
                    "hypervisor": sum(ex.hv.values()),
                    "hypervisor_by_reason": dict(sorted(ex.hv.items())),
                    "guest_wait": sum(ex.gwait.values()), "guest_wait_by": _by(ex.gwait, cache)})
        execs.sort(key=lambda e: (e["start"], e["tid"]))
        machines[f"guest-{sp.name}"] = {
            "hostname": sp.name, "dir": f"guest-{sp.name}", "vm_uid": sp.vm_uid,
            "qemu_pid": sp.qemu_pid, "vcpu_tids": list(sp.vcpu_tids),
            "vcpu_cpus": list(sp.vcpu_cpus), "clock": clock.as_json(),
            "vcpus": vcpus, "threads": tasks, "critical_executions": execs,
            "tcp_sent": [{"dst": f"guest-{p.dst.name}", **p.vals, "send": H + p.send,
                          "recv": H + p.recv if p.recv >= 0 else None} for p in g.sent]}
        if any(t.log is not None for t in g.tasks):
            machines[f"guest-{sp.name}"]["critical_paths"] = _paths(g, H, {v.th.tid: v for gg in guests for v in gg.vcpus})
    return {"format": TRUTH_FORMAT, "scenario": sc.name, "seed": sc.seed,
            "duration_ns": sc.duration, "host_origin_ns": H,
            "notes": "times: absolute host-clock ns; durations: ns; only intervals that "
                     "completed before the end of the simulation are listed",
            "events": counts, "total_events": sum(counts.values()), "machines": machines,
            "culprits": table}


# -- true critical paths ------------------------------------------------------------------

Iv = list[Any]  # [start, end, machine, tid, comm, state, host_tid]


class _Unknown(Exception):
    """The path reaches a time the logs do not cover."""


def _states(task: GTask) -> list[tuple[int, int, str, Any]]:
    """(start, end, RUN / PRE / BLK, cause) of a logged task, from its transitions."""
    assert task.log is not None
    out: list[tuple[int, int, str, Any]] = []
    cur: tuple[int, str] | None = None
    for t, what, info in task.log:
        if cur is not None and t > cur[0]:
            st = cur[1]
            out.append((cur[0], t, st, info if st == "BLK" else None))
        if what == "in":
            cur = (t, "RUN")
        elif what == "wake":
            cur = (t, "PRE")
        else:
            cur = (t, "PRE" if info == 0 else "BLK")
    return out


def _culprit_ivs(s: int, e: int, key: CulpritKey, vcpus: dict[int, VCpu]) -> list[Iv]:
    """What the thread that held the CPU over [s, e] ran.  For another VM's vCPU whose tasks
    are all logged: its modes and guest tasks over time; else the guest task current at the
    end of the slice (the accounting key)."""
    if key[0] != "vm":
        return [[s, e, "host", key[1], key[2], "RUNNING", key[1]]]
    vt = key[1]
    ov = vcpus.get(vt)
    if ov is not None and ov.vlog is not None and all(
            t.log is not None for t in ov.guest.tasks if t.spec.vcpu == ov.idx):
        runs = sorted((a, b, t) for t in ov.guest.tasks if t.spec.vcpu == ov.idx
                      for a, b, st, _ in _states(t) if st == "RUN")
        out: list[Iv] = []
        for a, b, code, _ in ov.vlog:
            a, b = max(a, s), min(b, e)
            if b <= a:
                continue
            if code == "H":
                out.append([a, b, "host", vt, ov.th.comm, "IN_HYPERVISOR", vt])
                continue
            t = a
            for ra, rb, task in runs:
                if rb <= t or ra >= b:
                    continue
                if ra > t:
                    out.append([t, ra, "host", vt, ov.th.comm, "RUNNING", vt])
                x = min(rb, b)
                out.append([max(ra, t), x, f"guest-{task.vm}", task.tid, task.comm,
                            "RUNNING", vt])
                t = x
            if t < b:
                out.append([t, b, "host", vt, ov.th.comm, "RUNNING", vt])
        return out
    if key[3] > 0:
        return [[s, e, f"guest-{key[2]}", key[3], key[4], "RUNNING", vt]]
    return [[s, e, "host", vt, "qemu-system-x86", "RUNNING", vt]]


def _overlay(task: GTask, v: VCpu, s: int, e: int, out: list[Iv],
             vcpus: dict[int, VCpu]) -> None:
    lg = v.vlog
    assert lg is not None
    m = f"guest-{task.vm}"
    vt = v.th.tid
    for a, b, code, key in lg:
        if b <= s or a >= e:
            continue
        a, b = max(a, s), min(b, e)
        if code == "G":
            out.append([a, b, m, task.tid, task.comm, "RUNNING", vt])
        elif code == "H":
            out.append([a, b, "host", vt, v.th.comm, "IN_HYPERVISOR", vt])
        elif code == "P":
            out.extend(_culprit_ivs(a, b, key, vcpus))
        else:
            out.append([a, b, m, task.tid, task.comm, "UNKNOWN", vt])


def _walk(g: GuestRt, task: GTask, lo: int, hi: int, vcpus: dict[int, VCpu],
          depth: int = 0) -> list[Iv]:
    """The true path of ``task`` over [lo, hi] (forward order)."""
    if task.log is None or depth > 50:
        raise _Unknown
    states = _states(task)
    if not states or states[0][0] > lo or states[-1][1] < hi:
        raise _Unknown
    m = f"guest-{task.vm}"
    v = g.vcpus[task.spec.vcpu]
    out: list[Iv] = []
    for s, e, st, cause in states:
        if e <= lo or s >= hi:
            continue
        a, b = max(s, lo), min(e, hi)
        if st == "RUN":
            _overlay(task, v, a, b, out, vcpus)
        elif st == "PRE":
            out.append([a, b, m, task.tid, task.comm, "PREEMPTED", -1])
        elif cause[0] == "timer":
            out.append([a, b, m, task.tid, task.comm, "TIMER", -1])
        elif cause[0] == "task":
            out.extend(_clip(_walk(g, cause[1], a, e, vcpus, depth + 1), b))
        elif cause[0] == "net":
            pkt = cause[1]
            send = pkt.send
            if send > a and pkt.sender is not None:
                peer = pkt.src
                out.extend(_clip(_walk(peer, pkt.sender, a, send, vcpus, depth + 1), b))
            if max(a, send) < b:
                out.append([max(a, send), b, m, task.tid, task.comm, "NETWORK", -1])
        else:
            out.append([a, b, m, task.tid, task.comm, "INTERRUPTED", -1])
    return out


def _clip(ivs: list[Iv], hi: int) -> list[Iv]:
    return [[iv[0], min(iv[1], hi), *iv[2:]] for iv in ivs if iv[0] < hi]


def _merge(ivs: list[Iv]) -> list[Iv]:
    out: list[Iv] = []
    for iv in ivs:
        if iv[1] <= iv[0]:
            continue
        if out and out[-1][1] == iv[0] and out[-1][2:] == iv[2:]:
            out[-1][1] = iv[1]
        else:
            out.append(list(iv))
    return out


def _paths(g: GuestRt, H: int, vcpus: dict[int, VCpu]) -> list[dict[str, Any]]:
    """Every complete cycle of every logged task of ``g`` with its true path."""
    out = []
    for task in g.tasks:
        if task.log is None:
            continue
        blocks = [t for t, what, info in task.log if what == "out" and info != 0]
        for lo, hi in zip(blocks, blocks[1:], strict=False):
            try:
                ivs = _merge(_walk(g, task, lo, hi, vcpus))
            except _Unknown:
                continue
            out.append({"tid": task.tid, "comm": task.comm, "start": H + lo, "end": H + hi,
                        "duration": hi - lo,
                        "intervals": [[H + a, H + b, *rest] for a, b, *rest in ivs]})
    return out
