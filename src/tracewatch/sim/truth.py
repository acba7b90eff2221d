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
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from .model import HOST_EPOCH_S, GuestSpec, Scenario
from .scheduler import CulpritKey, GuestRt, HThread, PCpu

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
    return {"format": TRUTH_FORMAT, "scenario": sc.name, "seed": sc.seed,
            "duration_ns": sc.duration, "host_origin_ns": H,
            "notes": "times: absolute host-clock ns; durations: ns; only intervals that "
                     "completed before the end of the simulation are listed",
            "events": counts, "total_events": sum(counts.values()), "machines": machines,
            "culprits": table}
