"""Scenario model of the cloud simulator: what runs where, with which parameters.

A :class:`Scenario` describes one host (physical CPUs, host tasks such as CPU hogs,
kworkers and irq threads) and its guests (one qemu process each, one host thread per vCPU,
guest tasks pinned to vCPUs, a guest clock with an offset and a drift).  Scenarios are plain
data: :func:`build_scenario` makes a generic seeded one, :func:`gebai2014` the preset of
Gebai & Dagenais (2014) (a periodic ``critical_task`` in VM "Ubuntu" delayed by ``burnP6``
on the host).  All times are integer nanoseconds of host time, relative to the trace start.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Literal

from ..errors import TracewatchError

__all__ = ["GuestSpec", "GuestTaskSpec", "HostTaskSpec", "Scenario", "build_scenario",
           "gebai2014", "paths", "parse_duration", "parse_hog", "SCENARIOS"]

MS = 1_000_000
US = 1_000
S = 1_000_000_000

#: CTF clock origin of the host trace (seconds since the epoch)
HOST_EPOCH_S = 1_700_000_000

GuestTaskKind = Literal["periodic", "bursty", "sleeper", "waiter", "client", "server"]
HostTaskKind = Literal["hog", "periodic", "irq"]


@dataclass
class GuestTaskSpec:
    """A guest task pinned to one vCPU.

    ``periodic``: wakes every ``period`` ns, runs ``work`` ns of CPU (guest-mode time), then
    sleeps in nanosleep until the next period (the critical task of the use case).
    ``bursty`` (cc-like): runs ``work`` ns, writes, blocks in read for ``io`` ns, repeats.
    ``sleeper``: runs ``work`` ns, then nanosleep for ``period`` ns.
    ``waiter``: blocked in futex until another task of its guest (same vCPU) wakes it, runs
    ``work`` ns, blocks again.  ``client``: like periodic, but after ``work`` ns it sends a
    request (``inet_sock_local_out`` in task context) to task ``peer_tid`` of the peer guest,
    blocks in read until the reply arrives (NET_RX softirq), runs ``io`` ns, then sleeps until
    its next period.  ``server``: blocked in read until a request arrives, runs ``work`` ns,
    sends the reply to the requesting task, blocks again.  ``wakes`` > 0: at the end of each
    run the task wakes (futex, task context) the task of that tid on the same vCPU if it is
    waiting.  ``jitter`` is the relative spread of ``work`` (uniform +-).  ``critical`` tasks
    get per-execution records in the ground truth; ``log`` tasks get their true critical paths
    (see :mod:`tracewatch.sim.truth`); a wakeup chain or request needs every task on it logged."""

    tid: int
    comm: str
    vcpu: int
    kind: GuestTaskKind
    work: int
    period: int = 0
    io: int = 0
    jitter: float = 0.1
    phase: int = 0
    critical: bool = False
    sys_every: int = 0
    wakes: int = 0
    peer_tid: int = 0
    log: bool = False


@dataclass
class GuestSpec:
    """One VM: name (also its trace hostname), vCPU count, tasks, clock, identifiers.

    The guest clock is ``t_guest = floor((1 + drift_ppb * 1e-9) * t_host + offset)`` in
    absolute CTF nanoseconds (see :mod:`tracewatch.sim.truth` for the exact form).
    ``tcp_period`` > 0: vCPU 0 sends a TCP segment to the peer guest (guests are paired
    0-1, 2-3, ...) every ``tcp_period`` ns on average.

    Sync exchanges (every ``sync_period`` ns): the host logs ``vmsync_gh_host`` a uniform
    ``gh_latency`` (min, max) ns after the guest's ``vmsync_gh_guest`` (at least 100 ns into
    the VMCALL exit); ``hg_latency`` (min, max) adds a uniform delay between the host's
    ``vmsync_hg_host`` and the ``kvm_entry`` that leads to the guest's ``vmsync_hg_guest``
    (on top of the usual ~0.3-1 us; (0, 0): none, no random draw)."""

    name: str
    vcpus: int
    tasks: list[GuestTaskSpec]
    vm_uid: int
    qemu_pid: int
    vcpu_tids: list[int]
    vcpu_cpus: list[int]
    drift_ppb: int = 0
    offset_ns: int = 0
    sync_period: int = 100 * MS
    tcp_period: int = 0
    gh_latency: tuple[int, int] = (1 * US, 100 * US)
    hg_latency: tuple[int, int] = (0, 0)


@dataclass
class HostTaskSpec:
    """A host thread pinned to one physical CPU.

    ``hog`` (burnP6-like): runnable during on-phases of ``on`` ns, blocked ``off`` ns between
    them (first on-phase at ``phase``).  ``periodic`` (kworker): runs ``work`` ns every
    ``period`` ns.  ``irq`` (irq thread): like periodic with random (exponential) gaps of
    mean ``period``.  ``prio`` is the LTTng ``prio`` field (kernel prio - 100: 20 = nice 0,
    0 = nice -20, negative = real-time)."""

    tid: int
    comm: str
    cpu: int
    kind: HostTaskKind
    prio: int = 20
    on: int = 0
    off: int = 0
    work: int = 0
    period: int = 0
    phase: int = 0


@dataclass
class Scenario:
    """Everything the simulator needs; ``seed`` drives every random choice."""

    cpus: int
    duration: int
    guests: list[GuestSpec]
    host_tasks: list[HostTaskSpec]
    seed: int = 0
    hostname: str = "sim-host"
    host_slice: int = 4 * MS
    guest_slice: int = 4 * MS
    exit_mean: int = 2 * MS
    name: str = "generic"

    def validate(self) -> None:
        """Raise TracewatchError on an inconsistent scenario."""
        if self.cpus < 1:
            raise TracewatchError("the host needs at least one CPU")
        if self.duration <= 0:
            raise TracewatchError("the duration must be positive")
        names = set()
        for g in self.guests:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", g.name) or g.name in names:
                raise TracewatchError(f"bad or duplicate guest name {g.name!r}")
            names.add(g.name)
            if g.vcpus < 1 or len(g.vcpu_tids) != g.vcpus or len(g.vcpu_cpus) != g.vcpus:
                raise TracewatchError(f"guest {g.name}: inconsistent vCPUs")
            for lat in (g.gh_latency, g.hg_latency):
                if not 0 <= lat[0] <= lat[1]:
                    raise TracewatchError(f"guest {g.name}: bad sync latency range {lat}")
            if abs(g.drift_ppb) > 100_000:
                raise TracewatchError(f"guest {g.name}: drift above 100 ppm")
            for c in g.vcpu_cpus:
                if not 0 <= c < self.cpus:
                    raise TracewatchError(f"guest {g.name}: vCPU on missing CPU {c}")
            for t in g.tasks:
                if not 0 <= t.vcpu < g.vcpus:
                    raise TracewatchError(f"guest {g.name}: task {t.comm} on missing vCPU")
                if t.wakes and not any(o.tid == t.wakes and o.vcpu == t.vcpu
                                       for o in g.tasks):
                    raise TracewatchError(f"guest {g.name}: task {t.comm} wakes {t.wakes}, "
                                          "not a task of its vCPU")
                if t.kind == "client" and not t.peer_tid:
                    raise TracewatchError(f"guest {g.name}: client {t.comm} needs peer_tid")
        for h in self.host_tasks:
            if not 0 <= h.cpu < self.cpus:
                raise TracewatchError(f"host task {h.comm}: missing CPU {h.cpu}")


_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h)?\s*$")
_UNIT = {"ns": 1, "us": US, "ms": MS, "s": S, "m": 60 * S, "h": 3600 * S, None: S}


def parse_duration(text: str, default_unit: str = "s") -> int:
    """``"2s"``, ``"250ms"``, ``"1.5"`` (``default_unit``) -> nanoseconds."""
    m = _DUR.match(text)
    if not m:
        raise TracewatchError(f"bad duration {text!r} (e.g. 2s, 250ms, 10us)")
    unit = m.group(2) or default_unit
    return int(round(float(m.group(1)) * _UNIT[unit]))


def parse_hog(text: str, tid: int, cpus: int) -> HostTaskSpec:
    """``NAME[:cpu=C][:on=DUR][:off=DUR][:prio=P][:phase=DUR]`` -> a hog host task.

    Defaults: cpu 0, on 200ms, off 800ms, prio 20, phase 100ms."""
    parts = text.split(":")
    name = parts[0] or "burnP6"
    opts = {"cpu": "0", "on": "200ms", "off": "800ms", "prio": "20", "phase": "100ms"}
    for p in parts[1:]:
        if "=" not in p:
            raise TracewatchError(f"bad hog option {p!r} in {text!r} (key=value)")
        k, v = p.split("=", 1)
        if k not in opts:
            raise TracewatchError(f"unknown hog option {k!r} (cpu, on, off, prio, phase)")
        opts[k] = v
    try:
        cpu, prio = int(opts["cpu"]), int(opts["prio"])
    except ValueError:
        raise TracewatchError(f"bad hog cpu/prio in {text!r}") from None
    if not 0 <= cpu < cpus:
        raise TracewatchError(f"hog {name}: the host has no CPU {cpu}")
    return HostTaskSpec(tid=tid, comm=name[:15], cpu=cpu, kind="hog", prio=prio,
                        on=parse_duration(opts["on"]), off=parse_duration(opts["off"]),
                        phase=parse_duration(opts["phase"]))


def _kworkers(cpus: int, rng: random.Random, first_tid: int) -> list[HostTaskSpec]:
    return [HostTaskSpec(tid=first_tid + c, comm=f"kworker/{c}:1", cpu=c, kind="periodic",
                         work=rng.randint(5 * US, 30 * US), period=rng.randint(3 * MS, 6 * MS),
                         phase=rng.randint(0, 3 * MS)) for c in range(cpus)]


def build_scenario(guests: int = 2, vcpus: int = 2, cpus: int = 4, duration: int = 2 * S,
                   seed: int = 0, hogs: list[str] | None = None,
                   sync_period: int = 100 * MS, tcp_period: int = 20 * MS) -> Scenario:
    """A generic seeded scenario: ``guests`` VMs of ``vcpus`` vCPUs on ``cpus`` CPUs.

    Each guest has a periodic ``critical_task`` on vCPU 0, a ``cc``-like bursty task on
    some vCPUs and a ``sleep`` task; the host has a kworker per CPU, an irq thread on CPU 0
    and the ``hogs`` (see :func:`parse_hog`); clocks get random offsets (up to 3 hours) and drifts
    (up to 100 ppm); paired guests exchange TCP segments every ``tcp_period`` ns (0: no
    traffic).  vCPU threads are spread round-robin over the physical CPUs."""
    rng = random.Random(f"scenario:{seed}")
    gl: list[GuestSpec] = []
    slot = 0
    for i in range(guests):
        name = f"vm{i + 1:03d}"
        pid = 10_000 + 100 * i
        tasks: list[GuestTaskSpec] = []
        tid = 1000
        tasks.append(GuestTaskSpec(tid=tid, comm="critical_task", vcpu=0, kind="periodic",
                                   work=rng.randint(1 * MS, 8 * MS),
                                   period=rng.choice([50 * MS, 100 * MS]),
                                   phase=rng.randint(0, 20 * MS), critical=True,
                                   sys_every=1 * MS))
        for v in range(vcpus):
            if rng.random() < 0.6:
                tid += 7
                tasks.append(GuestTaskSpec(tid=tid, comm="cc", vcpu=v, kind="bursty",
                                           work=rng.randint(2 * MS, 15 * MS),
                                           io=rng.randint(1 * MS, 20 * MS), jitter=0.5,
                                           phase=rng.randint(0, 10 * MS),
                                           sys_every=rng.randint(100 * US, 400 * US)))
        tasks.append(GuestTaskSpec(tid=tid + 11, comm="sleep", vcpu=vcpus - 1, kind="sleeper",
                                   work=rng.randint(50 * US, 300 * US),
                                   period=rng.choice([200 * MS, 500 * MS, 1 * S]),
                                   phase=rng.randint(0, 50 * MS)))
        cpu_list = []
        for _ in range(vcpus):
            cpu_list.append(slot % cpus)
            slot += 1
        gl.append(GuestSpec(name=name, vcpus=vcpus, tasks=tasks, vm_uid=100_000 + i,
                            qemu_pid=pid, vcpu_tids=[pid + 10 + v for v in range(vcpus)],
                            vcpu_cpus=cpu_list, drift_ppb=rng.randint(-100_000, 100_000),
                            offset_ns=rng.randint(-3 * 3600 * S, 3 * 3600 * S),
                            sync_period=sync_period, tcp_period=tcp_period))
    host = _kworkers(cpus, rng, 40)
    host.append(HostTaskSpec(tid=700, comm="irq/30-eth0", cpu=0, kind="irq", prio=-51,
                             work=10 * US, period=5 * MS))
    for j, h in enumerate(hogs or []):
        host.append(parse_hog(h, 30_000 + j, cpus))
    sc = Scenario(cpus=cpus, duration=duration, guests=gl, host_tasks=host, seed=seed)
    sc.validate()
    return sc


def gebai2014(duration: int = 2 * S, seed: int = 0, hogs: list[str] | None = None
              ) -> Scenario:
    """The use case of Gebai & Dagenais (2014): VM "Ubuntu" runs a periodic
    ``critical_task`` (pid 3525, ~10 ms every 100 ms) and ``cc`` (2806) on vCPU 0, VM
    "Debian" runs ``sleep`` (3526); both VMs' vCPU 0 threads share host CPU 0 with
    ``burnP6`` (30672, nice -20) whose 260 ms on-phases preempt Ubuntu's vCPU, and with
    ``irq/46-iwlwifi`` (772, real-time).  Some critical_task executions then take ~270 ms."""
    ubuntu = GuestSpec(
        name="Ubuntu", vcpus=2, vm_uid=1001, qemu_pid=8612, vcpu_tids=[8620, 8621],
        vcpu_cpus=[0, 1], drift_ppb=23_456, offset_ns=2 * 3600 * S + 123_456_789,
        tasks=[GuestTaskSpec(tid=3525, comm="critical_task", vcpu=0, kind="periodic",
                             work=10 * MS, period=100 * MS, jitter=0.02, phase=5 * MS,
                             critical=True, sys_every=1 * MS),
               GuestTaskSpec(tid=2806, comm="cc", vcpu=0, kind="bursty", work=2 * MS,
                             io=25 * MS, jitter=0.5, phase=7 * MS, sys_every=200 * US),
               GuestTaskSpec(tid=2810, comm="cc1", vcpu=1, kind="bursty", work=5 * MS,
                             io=10 * MS, jitter=0.5, phase=1 * MS, sys_every=200 * US)])
    debian = GuestSpec(
        name="Debian", vcpus=1, vm_uid=1002, qemu_pid=8680, vcpu_tids=[8689], vcpu_cpus=[0],
        drift_ppb=-61_000, offset_ns=-(3600 * S) - 987_654_321,
        tasks=[GuestTaskSpec(tid=3526, comm="sleep", vcpu=0, kind="sleeper", work=400 * US,
                             period=50 * MS, jitter=0.2, phase=3 * MS)])
    host = [HostTaskSpec(tid=30672, comm="burnP6", cpu=0, kind="hog", prio=0, on=260 * MS,
                         off=640 * MS, phase=108 * MS),
            HostTaskSpec(tid=772, comm="irq/46-iwlwifi", cpu=0, kind="irq", prio=-51,
                         work=15 * US, period=8 * MS),
            HostTaskSpec(tid=40, comm="kworker/0:1", cpu=0, kind="periodic", work=12 * US,
                         period=4 * MS, phase=1 * MS),
            HostTaskSpec(tid=41, comm="kworker/1:1", cpu=1, kind="periodic", work=9 * US,
                         period=4 * MS, phase=2 * MS)]
    for j, h in enumerate(hogs or []):
        host.append(parse_hog(h, 31_000 + j, 2))
    sc = Scenario(cpus=2, duration=duration, guests=[ubuntu, debian], host_tasks=host,
                  seed=seed, hostname="host", name="gebai2014")
    sc.validate()
    return sc


def paths(duration: int = 1 * S, seed: int = 0, hogs: list[str] | None = None) -> Scenario:
    """Critical path ground truth (every task on a path is ``log``-ged): guest "front" runs
    a ``client`` ``curl`` (500, every 40 ms) on vCPU 0 that asks ``httpd`` (600) in guest
    "back" over TCP, and on vCPU 1 a wakeup chain: ``ticker`` (510, timer every 30 ms) wakes
    ``relay`` (511) which wakes ``sink`` (512); "back" also runs a bursty ``cc``.  ``burnP6``
    (nice -20) on host CPU 0 preempts the client's vCPU; front's vCPU 1 and back's vCPU share
    CPU 1.  Guest clocks equal the host's (offset 0, no drift): guest times are exact host
    times (analyse with the identity clock mapping)."""
    front = GuestSpec(
        name="front", vcpus=2, vm_uid=2001, qemu_pid=9100, vcpu_tids=[9110, 9111],
        vcpu_cpus=[0, 1], sync_period=50 * MS,
        tasks=[GuestTaskSpec(tid=500, comm="curl", vcpu=0, kind="client", work=2 * MS,
                             io=1 * MS, period=40 * MS, phase=4 * MS, peer_tid=600,
                             jitter=0.3, sys_every=300 * US, log=True),
               GuestTaskSpec(tid=505, comm="cc", vcpu=0, kind="bursty", work=3 * MS,
                             io=12 * MS, jitter=0.5, phase=2 * MS, sys_every=200 * US, log=True),
               GuestTaskSpec(tid=510, comm="ticker", vcpu=1, kind="periodic", work=1 * MS,
                             period=30 * MS, phase=3 * MS, wakes=511, jitter=0.2,
                             sys_every=400 * US, log=True),
               GuestTaskSpec(tid=511, comm="relay", vcpu=1, kind="waiter", work=2 * MS,
                             wakes=512, jitter=0.2, sys_every=400 * US, log=True),
               GuestTaskSpec(tid=512, comm="sink", vcpu=1, kind="waiter", work=1500 * US,
                             jitter=0.2, sys_every=400 * US, log=True)])
    back = GuestSpec(
        name="back", vcpus=1, vm_uid=2002, qemu_pid=9200, vcpu_tids=[9210], vcpu_cpus=[1],
        sync_period=50 * MS,
        tasks=[GuestTaskSpec(tid=600, comm="httpd", vcpu=0, kind="server", work=3 * MS,
                             jitter=0.3, sys_every=300 * US, log=True),
               GuestTaskSpec(tid=605, comm="cc", vcpu=0, kind="bursty", work=2 * MS,
                             io=15 * MS, jitter=0.5, phase=6 * MS, sys_every=200 * US, log=True)])
    host = [HostTaskSpec(tid=30672, comm="burnP6", cpu=0, kind="hog", prio=0, on=4 * MS,
                         off=9 * MS, phase=20 * MS),
            HostTaskSpec(tid=772, comm="irq/46-eth0", cpu=1, kind="irq", prio=-51,
                         work=15 * US, period=6 * MS),
            HostTaskSpec(tid=40, comm="kworker/0:1", cpu=0, kind="periodic", work=12 * US,
                         period=4 * MS, phase=1 * MS),
            HostTaskSpec(tid=41, comm="kworker/1:1", cpu=1, kind="periodic", work=9 * US,
                         period=4 * MS, phase=2 * MS)]
    for j, h in enumerate(hogs or []):
        host.append(parse_hog(h, 31_000 + j, 2))
    sc = Scenario(cpus=2, duration=duration, guests=[front, back], host_tasks=host,
                  seed=seed, hostname="host", name="paths")
    sc.validate()
    return sc


SCENARIOS = {"generic": build_scenario, "gebai2014": gebai2014, "paths": paths}
