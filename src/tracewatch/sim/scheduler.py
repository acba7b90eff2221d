"""Discrete-event simulation of a host running guests: host scheduler, vCPUs, guest kernels.

Every host thread (vCPU threads, hogs, kworkers, irq threads) is pinned to one physical CPU
and every guest task to one vCPU, so each physical CPU is simulated on its own
(:class:`PCpu`) with a heap of timed actions and a per-CPU clock ``now`` that only moves
forward: an action due while the CPU is inside an atomic sequence (a guest irq handler, a
hypercall) runs when the sequence ends.  Cost is O(log n) per action.

Host scheduler: strict priority between ``prio`` levels (lower runs first), round-robin with
a time slice within a level, wakeup preemption by a better level (or by an equal one after
1 ms of the current task's run).  A vCPU thread alternates guest mode (between ``kvm_entry``
and ``kvm_exit``) and hypervisor work; a preemption of a vCPU thread in guest mode goes
through ``kvm_exit`` (EXTERNAL_INTERRUPT) and a few microseconds in the hypervisor.  A guest
makes progress only in guest mode; its clock keeps running meanwhile, so a guest task's
apparent run time includes its vCPU's hypervisor and preempted time.

Guest kernel: per-vCPU run queue, time slice on guest-mode time, timers (host hrtimers that
wake a halted vCPU thread or force an exit), idle = MSR_WRITE then HLT exits, sync exchange
(``vmsync_*``) through a VMCALL exit, TCP segments to a peer guest (``inet_sock_local_out``;
:func:`run_until` hands them over between 1 ms steps, the receiver logs
``inet_sock_local_in`` in a NET_RX softirq once its vCPU runs).  Ground truth is accumulated
while simulating.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from math import log as _log
from typing import Any

from .emit import EXIT_REASONS, Record, comm16
from .model import MS, US, GuestSpec, GuestTaskSpec, HostTaskSpec, Scenario

__all__ = ["PCpu", "HThread", "VCpu", "GTask", "GuestRt", "Exec", "Packet", "build_host",
           "run_until", "simulate_host"]

# host event class indices (order of emit.HOST_EVENTS)
H_SWITCH, H_WAKING, H_WAKEUP, H_ENTRY, H_EXIT, H_GH_HOST, H_HG_HOST, H_STATEDUMP = range(8)
# guest event class indices (order of emit.GUEST_EVENTS)
(G_SWITCH, G_WAKING, G_WAKEUP, G_IRQ_IN, G_IRQ_OUT, G_SOFT_IN, G_SOFT_OUT, G_RD_IN, G_RD_OUT,
 G_WR_IN, G_WR_OUT, G_NS_IN, G_NS_OUT, G_FX_IN, G_FX_OUT, G_GH_GUEST, G_HG_GUEST,
 G_STATEDUMP, G_TCP_OUT, G_TCP_IN) = range(20)

# heap action kinds
K_WAKE, K_RUNEND, K_SLICE, K_HOGOFF, K_GACT, K_HVEND, K_VWAKE = range(7)
# thread states
BLOCKED, RUNNABLE, RUNNING = range(3)
# vCPU modes
OFF, GUEST, HV = range(3)
# guest timer kinds
T_TASK, T_IO, T_SYNC, T_NET_SEND, T_NET_RECV = range(5)

NEVER = 1 << 62
MIN_GRAN = 1 * MS
_HV_RANGE = {"EXTERNAL_INTERRUPT": (800, 3000), "HLT": (800, 2500), "MSR_WRITE": (400, 1500),
             "IO_INSTRUCTION": (2000, 12000), "EPT_VIOLATION": (1500, 8000),
             "VMCALL": (300, 2000)}
_RANDOM_EXITS = ("IO_INSTRUCTION", "EPT_VIOLATION", "MSR_WRITE")

CulpritKey = tuple[Any, ...]

# constant payloads (shared: the writer only reads them)
_IRQ11_IN = {"irq": 11, "name": "virtio0-requests"}
_IRQ11_OUT = {"irq": 11, "ret": 1}
_IRQ0_IN = {"irq": 0, "name": "timer"}
_IRQ0_OUT = {"irq": 0, "ret": 1}
_SOFT_TIMER = {"vec": 1}
_SOFT_NET_RX = {"vec": 3}
_IRQ41_IN = {"irq": 41, "name": "virtio1-input.0"}
_IRQ41_OUT = {"irq": 41, "ret": 1}
_RD_OUT_BLOCK = {"ret": 4096, "buf": 0x7FFD0000}
_RD_IN_BLOCK = {"fd": 3, "buf": 0x7FFD0000, "count": 4096}
_NS_OUT = {"ret": 0, "rmtp": 0}
_NS_IN = {"rqtp": 0x7FFD1000, "rmtp": 0}
_WR_IN_END = {"fd": 1, "buf": 0x7FFD2000, "count": 512}
_WR_OUT_END = {"ret": 512}
_RD_IN = {"fd": 4, "buf": 0x7FFD3000, "count": 4096}
_RD_OUT = {"ret": 4096, "buf": 0x7FFD3000}
_WR_IN = {"fd": 5, "buf": 0x7FFD4000, "count": 1024}
_WR_OUT = {"ret": 1024}


class Exec:
    """One execution of a critical guest task (from its switch-in after a wakeup to the
    switch-out where it blocks), with where its elapsed time went."""

    __slots__ = ("start", "end", "running", "pre", "hv", "gwait")

    def __init__(self, start: int) -> None:
        self.start = start
        self.end = 0
        self.running = 0
        self.pre: dict[CulpritKey, int] = {}
        self.hv: dict[str, int] = {}
        self.gwait: dict[CulpritKey, int] = {}


class GTask:
    """Run-time state of a guest task."""

    __slots__ = ("spec", "tid", "comm", "key", "rem", "slice_left", "t_in", "pend_real",
                 "pend_pre", "pend_hv", "real", "apparent", "steal", "hv", "runs", "woken",
                 "exec", "execs", "next_period", "sys_left", "fx_in", "fx_out",
                 "wake_vals", "waiting", "phase2", "reply_to", "log", "vm")

    def __init__(self, spec: GuestTaskSpec, vm: str) -> None:
        self.spec = spec
        self.tid = spec.tid
        self.comm = comm16(spec.comm)
        self.key: CulpritKey = ("guest", vm, spec.tid, self.comm)
        self.rem = 0
        self.slice_left = 0
        self.t_in = 0
        self.pend_real = self.pend_pre = self.pend_hv = 0
        self.real = self.apparent = self.steal = self.hv = self.runs = 0
        self.woken = False
        self.exec: Exec | None = None
        self.execs: list[Exec] = []
        self.next_period = spec.phase
        self.sys_left = NEVER
        uaddr = 0x601000 + spec.tid
        self.fx_in = {"uaddr": uaddr, "op": 1, "val": 1, "utime": 0, "uaddr2": 0, "val3": 0}
        self.fx_out = {"ret": 0, "uaddr": uaddr, "uaddr2": 0}
        self.wake_vals = {"comm": self.comm, "tid": spec.tid, "prio": 20,
                          "target_cpu": spec.vcpu}
        self.vm = vm
        #: blocked and waiting for a wakeup of the new kinds ("futex", "net"), else ""
        self.waiting = "futex" if spec.kind in ("waiter", "server") else ""
        if spec.kind == "server":
            self.waiting = "net"
        self.phase2 = False  # client: waiting for / handling the reply
        self.reply_to: GTask | None = None  # server: task of the request being served
        #: ground-truth transitions (time, "in" / "out" / "wake", info) of a ``log`` task
        self.log: list[tuple[int, str, Any]] | None = [] if spec.log else None


class Packet:
    """A TCP segment between two guests (ground truth: host send/receive times)."""

    __slots__ = ("src", "dst", "vals", "send", "recv", "due", "sender", "wake")

    def __init__(self, src: GuestRt, dst: GuestRt, vals: dict[str, int], send: int,
                 due: int, sender: GTask | None = None, wake: GTask | None = None) -> None:
        self.src = src
        self.dst = dst
        self.vals = vals
        self.send = send
        self.recv = -1
        self.due = due
        self.sender = sender  # the guest task that sent it (task context), None: softirq
        self.wake = wake  # the task of dst woken by its arrival (if waiting for it)


class GuestRt:
    """Run-time state shared by the vCPUs of one guest."""

    def __init__(self, spec: GuestSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.cnt = 0
        self.dumped = False
        self.peer: GuestRt | None = None
        self.ip = 0
        self.seq = 1_000_000
        self.ack = 0
        self.sent: list[Packet] = []
        #: packets sent and not yet handed to the receiver's vCPU (the simulation loop
        #: delivers them between time steps)
        self.outbox: list[Packet] = []
        self.tasks = [GTask(t, spec.name) for t in spec.tasks]
        self.by_tid = {t.tid: t for t in self.tasks}
        self.vcpus: list[VCpu] = []


class HThread:
    """A host thread (vCPU thread or host task)."""

    __slots__ = ("tid", "pid", "comm", "prio", "kind", "cpu", "spec", "state", "rem", "gen",
                 "vcpu", "stop", "run_since", "key", "planned", "wake_vals")

    def __init__(self, tid: int, pid: int, comm: str, prio: int, kind: str, cpu: int,
                 spec: HostTaskSpec | None = None) -> None:
        self.tid = tid
        self.pid = pid
        self.comm = comm16(comm)
        self.prio = prio
        self.kind = kind  # "vcpu", "hog", "periodic", "irq"
        self.cpu = cpu
        self.spec = spec
        self.state = BLOCKED
        self.rem = 0
        self.gen = 0
        self.vcpu: VCpu | None = None
        self.stop = False
        self.run_since = 0
        self.key: CulpritKey = ("host", tid, self.comm)
        self.planned = 0
        self.wake_vals = {"comm": self.comm, "tid": tid, "prio": prio, "target_cpu": cpu}


class VCpu:
    """A vCPU: its host thread's hypervisor state and its guest kernel's scheduler state."""

    def __init__(self, guest: GuestRt, idx: int, th: HThread) -> None:
        self.guest = guest
        self.idx = idx
        self.th = th
        self.mode = OFF
        self.hv_reason: str | None = None
        self.hv_start = self.hv_seg = self.hv_oncpu = 0
        self.need_resched = False
        self.halted = True
        self.cur: GTask | None = None
        self.rq: deque[GTask] = deque()
        self.timers: list[tuple[int, int, int, Any]] = []
        self.tseq = 0
        self.acc_t = 0
        self.ggen = 0
        self.wgen = 0
        self.rand_left = 0
        self.idle_msr = False
        self.pending_c: int | None = None
        self.pending_d: int | None = None
        self.preempt_iv: list[Any] | None = None
        self.preemptions: list[tuple[int, int, CulpritKey, dict[CulpritKey, int]]] = []
        #: reason -> [count, on-CPU ns, wall ns, min on-CPU, max on-CPU]
        self.hvstats: dict[str, list[int]] = {}
        self.out: list[Record] = []
        self.idle_comm = f"swapper/{idx}"
        self.idle_key: CulpritKey = ("guest", guest.name, 0, self.idle_comm)
        self.sync: list[tuple[int, int, int, int, int]] = []  # cnt, A, B, C, D host times
        self.sync_open: list[int] = []
        self.entry_vals = {"vcpu_id": idx}
        self.keys: dict[CulpritKey, CulpritKey] = {}  # interned culprit keys
        #: ground truth of the vCPU's modes when one of its tasks is ``log``-ged: (start, end,
        #: "G" guest mode / "H" hypervisor / "P" preempted / "O" off, culprit key)
        self.vlog: list[list[Any]] | None = None
        if any(t.spec.log and t.spec.vcpu == idx for t in guest.tasks):
            self.vlog = []


class PCpu:
    """One physical CPU: run queues, current thread, action heap, and its event logs."""

    def __init__(self, sc: Scenario, idx: int, threads: list[HThread]) -> None:
        self.sc = sc
        self.idx = idx
        self.now = 0
        self.heap: list[tuple[int, int, int, Any, int]] = []
        self.seq = 0
        self.cur: HThread | None = None
        self.rq: dict[int, deque[HThread]] = {}
        self.nrq = 0
        self.preempted: dict[int, VCpu] = {}
        self.out: list[Record] = []
        self.rng = random.Random(f"{sc.seed}:pcpu:{idx}")
        self.rand = self.rng.random
        self.slice_gen = 0
        self.slice_armed = False
        self.threads = threads
        self.idle_comm = f"swapper/{idx}"
        self.idle_key: CulpritKey = ("host", 0, self.idle_comm)
        #: a few kvm_exit payloads per reason (guest_rip: the exiting instructions)
        self.exit_vals = {r: [{"exit_reason": code, "guest_rip": 0xFFFFFFFF81000000
                               + (self.r(0, 1 << 20) << 4), "isa": 1, "info1": 0,
                               "info2": 0} for _ in range(8)]
                          for r, code in EXIT_REASONS.items()}

    # -- helpers
    def r(self, lo: int, hi: int) -> int:
        return lo + int((hi - lo) * self.rand())

    def push(self, t: int, kind: int, obj: Any, gen: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, obj, gen))

    def emit(self, k: int, vals: dict[str, Any]) -> None:
        self.out.append((self.now, k, vals))

    def gemit(self, v: VCpu, k: int, vals: dict[str, Any]) -> None:
        v.out.append((self.now, k, vals))

    def step(self, lo: int = 150, hi: int = 700) -> None:
        self.now += lo + int((hi - lo) * self.rand())

    def cur_key(self) -> CulpritKey:
        """Culprit key of the thread running on this CPU (with its guest task if a vCPU)."""
        c = self.cur
        if c is None:
            return self.idle_key
        return c.key if c.vcpu is None else self.vcpu_key(c.vcpu)

    def vcpu_key(self, v: VCpu) -> CulpritKey:
        g = v.cur
        gk = g.key if g is not None else v.idle_key
        key = v.keys.get(gk)
        if key is None:
            key = v.keys[gk] = ("vm", v.th.tid, v.guest.name, gk[2], gk[3])
        return key

    # -- run queues
    def enqueue(self, th: HThread) -> None:
        q = self.rq.get(th.prio)
        if q is None:
            q = self.rq[th.prio] = deque()
        q.append(th)
        self.nrq += 1
        th.state = RUNNABLE

    def best_prio(self) -> int:
        return min(self.rq) if self.nrq else NEVER

    def pick(self) -> HThread | None:
        if not self.nrq:
            return None
        p = min(self.rq)
        self.nrq -= 1
        q = self.rq[p]
        th = q.popleft()
        if not q:
            del self.rq[p]
        return th

    def arm_slice(self) -> None:
        cur = self.cur
        if cur is not None and not self.slice_armed and self.nrq \
                and self.best_prio() <= cur.prio:
            self.slice_armed = True
            self.push(max(self.now, cur.run_since + self.sc.host_slice), K_SLICE, None,
                      self.slice_gen)

    # -- accounting
    def account(self, v: VCpu, t: int) -> None:
        dt = t - v.acc_t
        if dt <= 0:
            return
        cur = v.cur
        m = v.mode
        if v.vlog is not None:
            self.vlog_add(v, t)
        v.acc_t = t
        if m == GUEST:
            if cur is not None:
                cur.pend_real += dt
                cur.rem -= dt
                cur.slice_left -= dt
                cur.sys_left -= dt
                if cur.exec is not None:
                    cur.exec.running += dt
            v.rand_left -= dt
        elif m == HV:
            if cur is not None:
                cur.pend_hv += dt
                ex = cur.exec
                if ex is not None:
                    r = v.hv_reason or "RESUME"
                    ex.hv[r] = ex.hv.get(r, 0) + dt
        elif v.preempt_iv is not None:
            key = self.cur_key()
            by = v.preempt_iv[3]
            by[key] = by.get(key, 0) + dt
            if cur is not None:
                cur.pend_pre += dt
                ex = cur.exec
                if ex is not None:
                    ex.pre[key] = ex.pre.get(key, 0) + dt
        if v.rq:
            gk = cur.key if cur is not None else v.idle_key
            for task in v.rq:
                ex = task.exec
                if ex is not None:
                    ex.gwait[gk] = ex.gwait.get(gk, 0) + dt

    def vlog_add(self, v: VCpu, t: int) -> None:
        m = v.mode
        if m == GUEST:
            code, key = "G", None
        elif m == HV:
            code, key = "H", None
        elif v.preempt_iv is not None:
            code, key = "P", self.cur_key()
        else:
            code, key = "O", None
        lg = v.vlog
        assert lg is not None
        if lg and lg[-1][1] == v.acc_t and lg[-1][2] == code and lg[-1][3] == key:
            lg[-1][1] = t
        else:
            lg.append([v.acc_t, t, code, key])

    # -- host scheduling
    def switch(self, nxt: HThread | None, prev_state: int) -> None:
        """Switch the CPU from its current thread to ``nxt`` (None: idle) at ``now``."""
        t = self.now
        for v in self.preempted.values():
            self.account(v, t)
        prev = self.cur
        if prev is None:
            pc, pt, pp = self.idle_comm, 0, 20
        else:
            pc, pt, pp = prev.comm, prev.tid, prev.prio
        if nxt is None:
            nc, nt, np_ = self.idle_comm, 0, 20
        else:
            nc, nt, np_ = nxt.comm, nxt.tid, nxt.prio
        self.out.append((t, H_SWITCH, {"prev_comm": pc, "prev_tid": pt, "prev_prio": pp,
                                       "prev_state": prev_state, "next_comm": nc,
                                       "next_tid": nt, "next_prio": np_}))
        if prev is not None:
            prev.gen += 1
            pv = prev.vcpu
            if pv is not None:
                v = pv
                self.account(v, t)
                if v.mode == HV:
                    v.hv_oncpu += t - v.hv_seg
                v.mode = OFF
                if prev_state == 0:
                    key = self.idle_key if nxt is None else nxt.key
                    if nxt is not None and nxt.vcpu is not None:
                        key = self.vcpu_key(nxt.vcpu)
                    v.preempt_iv = [t, 0, key, {}]
                    self.preempted[prev.tid] = v
            elif prev.rem < NEVER:
                prev.rem -= t - prev.run_since
            if prev_state != 0:
                prev.state = BLOCKED
        self.cur = nxt
        self.slice_gen += 1
        self.slice_armed = False
        if nxt is None:
            return
        nxt.state = RUNNING
        nxt.run_since = t
        nxt.gen += 1
        nxv = nxt.vcpu
        if nxv is not None:
            v = nxv
            iv = self.preempted.pop(nxt.tid, None)
            if iv is not None:
                p = v.preempt_iv
                assert p is not None
                v.preemptions.append((p[0], t, p[2], p[3]))
                v.preempt_iv = None
            self.account(v, t)
            v.mode = HV
            v.hv_seg = t
            v.halted = False
            self.push(t + self.r(800, 2500), K_HVEND, nxt, nxt.gen)
        else:
            if nxt.stop:
                nxt.stop = False
                nxt.rem = self.r(1000, 3000)
            if nxt.rem < NEVER:
                self.push(t + max(nxt.rem, 1), K_RUNEND, nxt, nxt.gen)
        self.arm_slice()

    def switch_out(self, prev_state: int) -> bool:
        """Switch the current thread out (re-queued if ``prev_state`` is 0); False when it
        is picked again (nothing else to run)."""
        prev = self.cur
        if prev_state == 0 and prev is not None:
            self.enqueue(prev)
        nxt = self.pick()
        if nxt is prev and prev is not None:
            prev.state = RUNNING
            self.slice_armed = False
            self.arm_slice()
            return False
        self.switch(nxt, prev_state)
        return True

    def wake(self, th: HThread) -> None:
        """Wake a blocked host thread on this CPU (sched_waking/wakeup, then maybe run)."""
        vals = th.wake_vals
        self.emit(H_WAKING, vals)
        self.step(100, 300)
        self.emit(H_WAKEUP, vals)
        cur = self.cur
        if cur is None:
            self.step(300, 1200)
            th.state = RUNNABLE
            self.switch(th, 0)
            return
        self.enqueue(th)
        if th.prio < cur.prio or (th.prio == cur.prio and cur.vcpu is None
                                  and self.now - cur.run_since >= MIN_GRAN):
            self.resched()
        else:
            self.arm_slice()

    def resched(self) -> None:
        cur = self.cur
        if cur is None:
            self.switch(self.pick(), 0)
            return
        v = cur.vcpu
        if v is None:
            self.step(200, 600)
            self.switch_out(0)
        elif v.mode == GUEST:
            v.need_resched = True
            self.vexit(v, "EXTERNAL_INTERRUPT")
        else:
            v.need_resched = True

    # -- vCPU: hypervisor side
    def vexit(self, v: VCpu, reason: str) -> None:
        self.account(v, self.now)
        exits = self.exit_vals[reason]
        self.emit(H_EXIT, exits[int(self.rand() * len(exits))])
        v.mode = HV
        v.hv_reason = reason
        v.hv_start = v.hv_seg = self.now
        v.hv_oncpu = 0
        v.ggen += 1
        lo, hi = _HV_RANGE[reason]
        if reason == "VMCALL":
            g = v.guest
            n = g.cnt
            lat = g.spec.gh_latency
            self.now = max(self.now + 100, v.sync_open[0] + self.r(lat[0], lat[1]))
            self.emit(H_GH_HOST, {"cnt": n, "vm_uid": g.spec.vm_uid})
            v.sync_open.append(self.now)
            v.pending_c = v.pending_d = n + 1
            g.cnt += 2
        self.push(self.now + self.r(lo, hi), K_HVEND, v.th, v.th.gen)

    def hv_end(self, v: VCpu) -> None:
        self.account(v, self.now)
        th = v.th
        if v.hv_reason == "HLT" and v.cur is None and not v.rq \
                and not (v.timers and v.timers[0][0] <= self.now):
            v.need_resched = False
            v.halted = True
            self.switch_out(1)
            if v.timers:
                v.wgen += 1
                self.push(max(v.timers[0][0], self.now + 1), K_VWAKE, v, v.wgen)
            return
        if v.need_resched or (self.nrq and self.best_prio() < th.prio):
            v.need_resched = False
            if self.switch_out(0):
                return
        self.enter(v)

    def enter(self, v: VCpu) -> None:
        g = v.guest
        if v.pending_c is not None:
            self.emit(H_HG_HOST, {"cnt": v.pending_c, "vm_uid": g.spec.vm_uid})
            v.sync_open.append(self.now)
            v.pending_c = None
            self.step(100, 400)
            lat = g.spec.hg_latency
            if lat[1] > 0:
                self.now += self.r(lat[0], lat[1])
        self.emit(H_ENTRY, v.entry_vals)
        self.account(v, self.now)
        if v.hv_reason is not None:
            oncpu = v.hv_oncpu + self.now - v.hv_seg
            st = v.hvstats.get(v.hv_reason)
            if st is None:
                v.hvstats[v.hv_reason] = [1, oncpu, self.now - v.hv_start, oncpu, oncpu]
            else:
                st[0] += 1
                st[1] += oncpu
                st[2] += self.now - v.hv_start
                if oncpu < st[3]:
                    st[3] = oncpu
                if oncpu > st[4]:
                    st[4] = oncpu
            v.hv_reason = None
        v.mode = GUEST
        v.rand_left = int(self.rng.expovariate(1.0 / self.sc.exit_mean)) + 1000
        self.entry_work(v)

    # -- vCPU: guest side
    def gtimer(self, v: VCpu, due: int, kind: int, task: Any) -> None:
        v.tseq += 1
        heapq.heappush(v.timers, (due, v.tseq, kind, task))

    def gwake(self, v: VCpu, task: GTask, cause: tuple[Any, ...] = ("timer",)) -> None:
        vals = task.wake_vals
        if task.log is not None:
            task.log.append((self.now, "wake", cause))
        self.gemit(v, G_WAKING, vals)
        self.step(100, 300)
        self.gemit(v, G_WAKEUP, vals)
        sp = task.spec
        work = sp.io if sp.kind == "client" and task.phase2 else sp.work
        task.rem = max(10 * US, int(work * (1 + sp.jitter * (2 * self.rand() - 1))))
        task.woken = True
        task.waiting = ""
        v.rq.append(task)

    def tcp_send(self, v: VCpu, task: GTask, wake: GTask | None) -> None:
        """Send one TCP segment to the peer guest from task context (write syscall)."""
        g = v.guest
        peer = g.peer
        assert peer is not None, f"guest {g.name} has no peer for {task.comm}"
        vals = {"seq": g.seq & 0xFFFFFFFF, "ack_seq": g.ack & 0xFFFFFFFF, "flags": 0x18,
                "saddr": g.ip, "daddr": peer.ip}
        g.seq += 1448
        self.gemit(v, G_WR_IN, _WR_IN)
        self.step()
        self.gemit(v, G_TCP_OUT, vals)
        pkt = Packet(g, peer, vals, self.now, self.now + self.r(20 * US, 150 * US), task, wake)
        g.sent.append(pkt)
        g.outbox.append(pkt)
        self.step()
        self.gemit(v, G_WR_OUT, _WR_OUT)
        self.step()

    def block(self, v: VCpu, task: GTask, waiting: str) -> None:
        """The current task blocks (read / futex) waiting for ``waiting``."""
        self.gemit(v, G_RD_IN if waiting == "net" else G_FX_IN,
                   _RD_IN_BLOCK if waiting == "net" else task.fx_in)
        task.waiting = waiting
        self.step()
        self.gswitch(v, self.gpick(v), 1)

    def wake_task(self, v: VCpu, waker: GTask) -> None:
        """Task-context futex wake of the task ``waker.spec.wakes`` (if it waits)."""
        target = v.guest.by_tid.get(waker.spec.wakes)
        self.gemit(v, G_FX_IN, waker.fx_in)
        self.step()
        if target is not None and target.waiting == "futex":
            self.gwake(v, target, ("task", waker))
            self.step()
        self.gemit(v, G_FX_OUT, waker.fx_out)
        self.step()

    def entry_work(self, v: VCpu) -> None:
        self.step(200, 600)
        g = v.guest
        if v.pending_d is not None:
            self.gemit(v, G_HG_GUEST, {"cnt": v.pending_d, "vm_uid": g.spec.vm_uid})
            so = v.sync_open
            v.sync.append((v.pending_d - 1, so[0], so[1], so[2], self.now))
            v.sync_open = []
            v.pending_d = None
            self.step()
        if v.idx == 0 and not g.dumped:
            g.dumped = True
            for t in g.tasks:
                self.gemit(v, G_STATEDUMP, {
                    "tid": t.tid, "vtid": t.tid, "pid": t.tid, "vpid": t.tid,
                    "ppid": 1, "vppid": 1, "name": t.comm, "type": 0, "mode": 0,
                    "submode": 0, "status": 5, "cpu": t.spec.vcpu})
                self.step(100, 300)
        timers = v.timers
        while timers and timers[0][0] <= self.now:
            _, _, kind, task = heapq.heappop(timers)
            if kind == T_NET_RECV:
                self.gemit(v, G_IRQ_IN, _IRQ41_IN)
                self.step()
                self.gemit(v, G_IRQ_OUT, _IRQ41_OUT)
                self.step()
                self.gemit(v, G_SOFT_IN, _SOFT_NET_RX)
                self.step()
                self.gemit(v, G_TCP_IN, task.vals)
                task.recv = self.now
                g.ack = task.vals["seq"] + 1448
                self.step()
                w = task.wake
                if w is not None and w.waiting == "net":
                    if w.spec.kind == "server":
                        w.reply_to = task.sender
                    self.gwake(v, w, ("net", task))
                    self.step()
                self.gemit(v, G_SOFT_OUT, _SOFT_NET_RX)
            elif kind == T_IO:
                assert task is not None
                self.gemit(v, G_IRQ_IN, _IRQ11_IN)
                self.step()
                self.gwake(v, task, ("irq",))
                self.step()
                self.gemit(v, G_IRQ_OUT, _IRQ11_OUT)
            else:
                self.gemit(v, G_IRQ_IN, _IRQ0_IN)
                self.step()
                self.gemit(v, G_IRQ_OUT, _IRQ0_OUT)
                self.step()
                if kind == T_SYNC:
                    self.gemit(v, G_GH_GUEST, {"cnt": g.cnt, "vm_uid": g.spec.vm_uid})
                    v.sync_open = [self.now]
                    self.gtimer(v, self.now + g.spec.sync_period, T_SYNC, None)
                    self.step(200, 1000)
                    self.vexit(v, "VMCALL")
                    return
                if kind == T_NET_SEND:
                    self.net_send(v)
                    self.step()
                    continue
                assert task is not None
                self.gemit(v, G_SOFT_IN, _SOFT_TIMER)
                self.step()
                self.gwake(v, task)
                self.step()
                self.gemit(v, G_SOFT_OUT, _SOFT_TIMER)
            self.step()
        if v.cur is None and v.rq:
            self.gswitch(v, self.gpick(v), 0)
        self.gnext(v)

    def net_send(self, v: VCpu) -> None:
        """Send one TCP segment from this guest to its peer (inet_sock_local_out)."""
        g = v.guest
        peer = g.peer
        assert peer is not None
        vals = {"seq": g.seq & 0xFFFFFFFF, "ack_seq": g.ack & 0xFFFFFFFF, "flags": 0x18,
                "saddr": g.ip, "daddr": peer.ip}
        g.seq += 1448
        self.gemit(v, G_SOFT_IN, _SOFT_TIMER)
        self.step()
        self.gemit(v, G_TCP_OUT, vals)
        pkt = Packet(g, peer, vals, self.now, self.now + self.r(20 * US, 150 * US))
        g.sent.append(pkt)
        g.outbox.append(pkt)
        self.step()
        self.gemit(v, G_SOFT_OUT, _SOFT_TIMER)
        period = g.spec.tcp_period
        self.gtimer(v, self.now + self.r(period // 2, period * 3 // 2), T_NET_SEND, None)

    def net_deliver(self, v: VCpu, pkt: Packet, not_before: int) -> None:
        """Hand a packet to vCPU ``v`` (on this CPU): it is received (softirq NET_RX) the
        first time the vCPU is in guest mode at or after its due time, and never before
        ``not_before`` (this CPU may have been simulated past the due time already)."""
        due = max(pkt.due, not_before, self.now)
        self.gtimer(v, due, T_NET_RECV, pkt)
        if v.halted and v.th.state == BLOCKED:
            v.wgen += 1
            self.push(v.timers[0][0], K_VWAKE, v, v.wgen)
        elif v.mode == GUEST and self.cur is v.th:
            v.ggen += 1
            self.push(due, K_GACT, v, v.ggen)

    def gpick(self, v: VCpu) -> GTask | None:
        """Dequeue the next guest task (accounting its wait up to now first)."""
        self.account(v, self.now)
        return v.rq.popleft() if v.rq else None

    def gswitch(self, v: VCpu, nxt: GTask | None, prev_state: int) -> None:
        t = self.now
        self.account(v, t)
        prev = v.cur
        if prev is None:
            pc, pt = v.idle_comm, 0
        else:
            pc, pt = prev.comm, prev.tid
        if nxt is None:
            nc, nt = v.idle_comm, 0
        else:
            nc, nt = nxt.comm, nxt.tid
        v.out.append((t, G_SWITCH, {"prev_comm": pc, "prev_tid": pt, "prev_prio": 20,
                                    "prev_state": prev_state, "next_comm": nc,
                                    "next_tid": nt, "next_prio": 20}))
        if prev is not None and prev.log is not None:
            prev.log.append((t, "out", prev_state))
        if nxt is not None and nxt.log is not None:
            nxt.log.append((t, "in", None))
        if prev is not None:
            prev.apparent += t - prev.t_in
            prev.real += prev.pend_real
            prev.steal += prev.pend_pre
            prev.hv += prev.pend_hv
            prev.runs += 1
            prev.pend_real = prev.pend_pre = prev.pend_hv = 0
            if prev_state == 0:
                v.rq.append(prev)
            elif prev.exec is not None:
                prev.exec.end = t
                prev.execs.append(prev.exec)
                prev.exec = None
        v.cur = nxt
        if nxt is None:
            return
        v.idle_msr = False
        nxt.t_in = t
        nxt.slice_left = self.sc.guest_slice
        if nxt.woken:
            nxt.woken = False
            self.sys_reset(nxt)
            if nxt.spec.critical and nxt.exec is None:
                nxt.exec = Exec(t)
            self.step()
            kind = nxt.spec.kind
            if kind == "bursty" or kind == "server" or (kind == "client" and nxt.phase2):
                self.gemit(v, G_RD_OUT, _RD_OUT_BLOCK)
            elif kind == "waiter":
                self.gemit(v, G_FX_OUT, nxt.fx_out)
            else:
                self.gemit(v, G_NS_OUT, _NS_OUT)
            if kind == "periodic":
                self.step()
                self.gemit(v, G_FX_IN, nxt.fx_in)
                self.step()
                self.gemit(v, G_FX_OUT, nxt.fx_out)

    def syscall(self, v: VCpu, task: GTask) -> None:
        """Non-blocking syscalls of the running guest task (entry, exit pairs), as many as
        fit before anything else can happen on this CPU (one accounting for all)."""
        start = self.now
        bound = min(self.heap[0][0] if self.heap else NEVER, start + task.rem,
                    start + v.rand_left, v.timers[0][0] if v.timers else NEVER,
                    start + task.slice_left if v.rq else NEVER)
        rand = self.rand
        out = v.out
        periodic = task.spec.kind == "periodic"
        mean = task.spec.sys_every
        fx_in, fx_out = task.fx_in, task.fx_out
        now = start
        while True:
            x = rand()
            if periodic or x < 0.2:
                out.append((now, G_FX_IN, fx_in))
                now += 300 + int(1200 * rand())
                out.append((now, G_FX_OUT, fx_out))
            elif x < 0.6:
                out.append((now, G_RD_IN, _RD_IN))
                now += 500 + int(3500 * rand())
                out.append((now, G_RD_OUT, _RD_OUT))
            else:
                out.append((now, G_WR_IN, _WR_IN))
                now += 500 + int(3500 * rand())
                out.append((now, G_WR_OUT, _WR_OUT))
            gap = int(-mean * _log(1.0 - rand())) + 1000
            if now + gap >= bound:
                break
            now += gap
        self.now = now
        self.account(v, now)
        task.sys_left = gap

    def sys_reset(self, task: GTask) -> None:
        every = task.spec.sys_every
        task.sys_left = int(self.rng.expovariate(1.0 / every)) + 1000 if every else NEVER

    def task_done(self, v: VCpu) -> None:
        task = v.cur
        assert task is not None
        sp = task.spec
        if sp.wakes:
            self.wake_task(v, task)
        now = self.now
        kind = sp.kind
        if kind == "waiter":
            self.block(v, task, "futex")
            return
        if kind == "server":
            self.tcp_send(v, task, task.reply_to)
            task.reply_to = None
            self.block(v, task, "net")
            return
        if kind == "client" and not task.phase2:
            task.phase2 = True
            self.tcp_send(v, task, v.guest.peer.by_tid.get(sp.peer_tid)
                          if v.guest.peer is not None else None)
            self.block(v, task, "net")
            return
        if kind == "client":
            task.phase2 = False
        if sp.kind in ("periodic", "client"):
            nxt = task.next_period
            while nxt <= now + 10 * US:
                nxt += sp.period
            task.next_period = nxt + sp.period
            self.gemit(v, G_NS_IN, _NS_IN)
            self.gtimer(v, nxt, T_TASK, task)
        else:
            self.gemit(v, G_WR_IN, _WR_IN_END)
            self.step()
            self.gemit(v, G_WR_OUT, _WR_OUT_END)
            self.step()
            if sp.kind == "bursty":
                self.gemit(v, G_RD_IN, _RD_IN_BLOCK)
                io = max(50 * US, int(sp.io * (0.5 + self.rand())))
                self.gtimer(v, self.now + io, T_IO, task)
            else:
                self.gemit(v, G_NS_IN, _NS_IN)
                self.gtimer(v, self.now + sp.period, T_TASK, task)
        self.step()
        self.gswitch(v, self.gpick(v), 1)

    def gnext(self, v: VCpu) -> None:
        now = self.now
        tn = max(v.timers[0][0], now) if v.timers else NEVER
        cur = v.cur
        if cur is None:
            tn = min(tn, now + self.r(300, 1000))
        else:
            tn = min(tn, now + max(cur.rem, 0), now + max(v.rand_left, 0),
                     now + max(cur.sys_left, 0))
            if v.rq:
                tn = min(tn, now + max(cur.slice_left, 0))
        v.ggen += 1
        self.push(tn, K_GACT, v, v.ggen)

    def gaction(self, v: VCpu) -> None:
        self.account(v, self.now)
        cur = v.cur
        if v.timers and v.timers[0][0] <= self.now:
            self.vexit(v, "EXTERNAL_INTERRUPT")
            return
        if cur is None:
            if v.rq:
                self.gswitch(v, self.gpick(v), 0)
            elif not v.idle_msr:
                v.idle_msr = True
                self.vexit(v, "MSR_WRITE")
                return
            else:
                self.vexit(v, "HLT")
                return
        elif cur.rem <= 0:
            self.task_done(v)
        elif v.rq and cur.slice_left <= 0:
            self.gswitch(v, self.gpick(v), 0)
        elif cur.sys_left <= 0:
            self.syscall(v, cur)
        elif v.rand_left <= 0:
            self.vexit(v, _RANDOM_EXITS[int(self.rand() * 3)])
            return
        self.gnext(v)

    # -- host tasks
    def host_wake(self, th: HThread) -> None:
        sp = th.spec
        assert sp is not None
        if sp.kind == "hog":
            th.stop = False
            th.rem = NEVER
            self.push(self.now + sp.on, K_HOGOFF, th, 0)
            if th.state == BLOCKED:
                self.wake(th)
            return
        if sp.kind == "periodic":
            th.planned += sp.period
            nxt = th.planned
        else:
            nxt = self.now + int(self.rng.expovariate(1.0 / sp.period)) + 10 * US
        self.push(nxt, K_WAKE, th, 0)
        if th.state == BLOCKED:
            th.rem = max(1000, int(sp.work * (0.5 + self.rand())))
            self.wake(th)

    def hog_off(self, th: HThread) -> None:
        sp = th.spec
        assert sp is not None
        self.push(self.now + sp.off, K_WAKE, th, 0)
        if self.cur is th:
            self.step(200, 800)
            self.switch_out(1)
        elif th.state == RUNNABLE:
            th.stop = True

    # -- main loop
    def start(self, statedump: list[HThread]) -> None:
        for th in statedump:
            self.emit(H_STATEDUMP, {
                "tid": th.tid, "vtid": th.tid, "pid": th.pid, "vpid": th.pid, "ppid": 1,
                "vppid": 1, "name": th.comm, "type": 1 if th.kind in ("periodic", "irq") else 0,
                "mode": 0, "submode": 0, "status": 5, "cpu": th.cpu})
            self.step(200, 900)
        for th in self.threads:
            if th.vcpu is not None:
                v = th.vcpu
                for task in v.guest.tasks:
                    if task.spec.vcpu == v.idx and task.spec.kind not in ("waiter", "server"):
                        kind = T_IO if task.spec.kind == "bursty" else T_TASK
                        due = task.spec.phase
                        if task.spec.kind in ("periodic", "client"):
                            task.next_period = due + task.spec.period
                        self.gtimer(v, due, kind, task)
                if v.idx == 0:
                    self.gtimer(v, self.r(1 * MS, v.guest.spec.sync_period), T_SYNC, None)
                    if v.guest.peer is not None and v.guest.spec.tcp_period:
                        self.gtimer(v, self.r(1 * MS, v.guest.spec.tcp_period), T_NET_SEND,
                                    None)
                if v.timers:
                    v.wgen += 1
                    self.push(v.timers[0][0], K_VWAKE, v, v.wgen)
            else:
                sp = th.spec
                assert sp is not None
                th.planned = sp.phase
                self.push(sp.phase, K_WAKE, th, 0)

    def run(self, end: int) -> None:
        """Process every action due at or before ``end`` (callable again with a later
        ``end`` to go on)."""
        heap = self.heap
        pop = heapq.heappop
        while heap and heap[0][0] <= end:
            t, _, kind, obj, gen = pop(heap)
            if t > self.now:
                self.now = t
            if kind == K_GACT:
                if gen == obj.ggen and obj.mode == GUEST:
                    self.gaction(obj)
            elif kind == K_HVEND:
                hv_v = obj.vcpu
                if gen == obj.gen and hv_v is not None and self.cur is obj:
                    self.hv_end(hv_v)
            elif kind == K_RUNEND:
                if gen == obj.gen and self.cur is obj:
                    self.switch_out(1)
            elif kind == K_VWAKE:
                if gen == obj.wgen and obj.halted and obj.th.state == BLOCKED:
                    self.wake(obj.th)
            elif kind == K_SLICE:
                if gen == self.slice_gen:
                    self.slice_armed = False
                    cur = self.cur
                    if cur is not None and self.nrq and self.best_prio() <= cur.prio:
                        self.resched()
            elif kind == K_WAKE:
                self.host_wake(obj)
            elif kind == K_HOGOFF:
                self.hog_off(obj)


def build_host(sc: Scenario) -> tuple[list[PCpu], list[GuestRt], list[HThread]]:
    """Build the run-time objects of a scenario, ready to :meth:`PCpu.run`."""
    guests = [GuestRt(g) for g in sc.guests]
    for i, g in enumerate(guests):
        g.ip = (10 << 24) | (i + 2)
        j = i ^ 1  # pairs: 0 <-> 1, 2 <-> 3, ...
        if j < len(guests):
            g.peer = guests[j]
    per_cpu: list[list[HThread]] = [[] for _ in range(sc.cpus)]
    all_threads: list[HThread] = []
    for g in guests:
        qemu = HThread(g.spec.qemu_pid, g.spec.qemu_pid, "qemu-system-x86", 20, "qemu", 0)
        all_threads.append(qemu)
        for i, (tid, cpu) in enumerate(zip(g.spec.vcpu_tids, g.spec.vcpu_cpus, strict=True)):
            th = HThread(tid, g.spec.qemu_pid, "qemu-system-x86", 20, "vcpu", cpu)
            v = VCpu(g, i, th)
            th.vcpu = v
            g.vcpus.append(v)
            per_cpu[cpu].append(th)
            all_threads.append(th)
    for h in sc.host_tasks:
        th = HThread(h.tid, h.tid, h.comm, h.prio, h.kind, h.cpu, h)
        per_cpu[h.cpu].append(th)
        all_threads.append(th)
    cpus = [PCpu(sc, c, per_cpu[c]) for c in range(sc.cpus)]
    for c, pc in enumerate(cpus):
        pc.start(all_threads if c == 0 else [])
    return cpus, guests, all_threads


NET_STEP = 1 * MS


def run_until(cpus: list[PCpu], guests: list[GuestRt], begin: int, end: int) -> None:
    """Simulate every CPU from ``begin`` to ``end`` in steps of :data:`NET_STEP`, handing
    the TCP packets sent during a step to their receivers after it (so a receive is never
    before the end of the step of its send: on-host network latency <= 1 ms)."""
    t = begin
    while t < end:
        t = min((t // NET_STEP + 1) * NET_STEP, end)
        for pc in cpus:
            pc.run(t)
        if t % NET_STEP:
            continue  # deliveries only on the NET_STEP grid: output independent of windows
        for g in guests:
            if g.outbox:
                for pkt in g.outbox:
                    w = pkt.wake
                    v = pkt.dst.vcpus[w.spec.vcpu if w is not None else 0]
                    cpus[v.th.cpu].net_deliver(v, pkt, t + 1)
                g.outbox.clear()


def simulate_host(sc: Scenario) -> tuple[list[PCpu], list[GuestRt], list[HThread]]:
    """Simulate every physical CPU to the end, keeping every event in memory."""
    cpus, guests, threads = build_host(sc)
    run_until(cpus, guests, 0, sc.duration)
    return cpus, guests, threads
