"""Per VM, per vCPU and per guest thread figures from the vCPU state intervals.

* ``vms`` / ``vcpus``: running (apparent) time, real time (the guest runs a task in guest
  mode), steal time (PREEMPTED while the guest runs a task), preempted time (any), hypervisor
  time (IN_HYPERVISOR on the CPU: neither PREEMPTED nor HALTED), idle time, number of
  preemptions;
* ``exits``: hypervisor time by kvm_exit reason, as ``perf kvm stat`` reports it: count,
  total, min/avg/max (on-CPU time between the exit and the next entry) and the wall time;
* ``preemptions``: every preemption (start, duration, vCPU, culprit);
* ``threads``: per guest thread, apparent running time (guest view) vs real running time,
  and the steal and hypervisor time in between.

Every table is a :class:`tracewatch.analyses.Table` (``to_pandas()`` available).
:func:`analyze` runs the whole VM analysis on a trace set (one pass over it, sync included).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analyses import Table
from ..ctf import TraceSet
from ..sync import SyncColumns, SyncResult
from .machines import discover, read_vm_events
from .vcpu import (
    BASE_MASK,
    HALTED,
    IDLE,
    IN_HYPERVISOR,
    PREEMPTED,
    RUNNING,
    VcpuStates,
    VmStates,
    vcpu_states,
)

__all__ = ["EXIT_REASONS", "exit_reason_name", "VmReport", "vm_report", "analyze",
           "culprit_text"]

#: VMX basic exit reasons (Intel SDM vol. 3, appendix C), as kvm_exit's exit_reason.
EXIT_REASONS: dict[int, str] = {
    0: "EXCEPTION_NMI", 1: "EXTERNAL_INTERRUPT", 2: "TRIPLE_FAULT", 3: "INIT_SIGNAL",
    4: "SIPI_SIGNAL", 5: "IO_SMI", 6: "OTHER_SMI", 7: "INTERRUPT_WINDOW", 8: "NMI_WINDOW",
    9: "TASK_SWITCH", 10: "CPUID", 11: "GETSEC", 12: "HLT", 13: "INVD", 14: "INVLPG",
    15: "RDPMC", 16: "RDTSC", 17: "RSM", 18: "VMCALL", 19: "VMCLEAR", 20: "VMLAUNCH",
    21: "VMPTRLD", 22: "VMPTRST", 23: "VMREAD", 24: "VMRESUME", 25: "VMWRITE", 26: "VMOFF",
    27: "VMON", 28: "CR_ACCESS", 29: "DR_ACCESS", 30: "IO_INSTRUCTION", 31: "MSR_READ",
    32: "MSR_WRITE", 33: "INVALID_STATE", 34: "MSR_LOAD_FAIL", 36: "MWAIT_INSTRUCTION",
    37: "MONITOR_TRAP_FLAG", 39: "MONITOR_INSTRUCTION", 40: "PAUSE_INSTRUCTION",
    41: "MCE_DURING_VMENTRY", 43: "TPR_BELOW_THRESHOLD", 44: "APIC_ACCESS",
    45: "EOI_INDUCED", 46: "GDTR_IDTR", 47: "LDTR_TR", 48: "EPT_VIOLATION",
    49: "EPT_MISCONFIG", 50: "INVEPT", 51: "RDTSCP", 52: "PREEMPTION_TIMER", 53: "INVVPID",
    54: "WBINVD", 55: "XSETBV", 56: "APIC_WRITE", 57: "RDRAND", 58: "INVPCID", 59: "VMFUNC",
    60: "ENCLS", 61: "RDSEED", 62: "PML_FULL", 63: "XSAVES", 64: "XRSTORS", 67: "UMWAIT",
    68: "TPAUSE", 74: "BUS_LOCK", 75: "NOTIFY",
}


def exit_reason_name(code: int) -> str:
    return EXIT_REASONS.get(int(code), f"UNKNOWN_{int(code)}")


def culprit_text(row: Mapping[str, object]) -> str:
    """``burnP6 (30672)`` or ``VM vm2 vCPU 0 (host tid 8689): sleep (3526)``."""
    host = f"{row['culprit_comm']} ({row['culprit_tid']})"
    if not row.get("culprit_vm"):
        return host
    g = row.get("culprit_guest_tid", -1)
    task = f"{row['culprit_guest_comm']} ({g})" if isinstance(g, int) and g >= 0 else "?"
    return (f"VM {row['culprit_vm']} vCPU {row['culprit_vcpu']} (host tid "
            f"{row['culprit_tid']}): {task}")


@dataclass
class VmReport:
    """The tables of the VM analysis (see the module docstring) and its notes."""

    states: VmStates
    vms: Table
    vcpus: Table
    exits: Table
    preemptions: Table
    threads: Table
    notes: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, Table]:
        return {"vms": self.vms, "vcpus": self.vcpus, "exits": self.exits,
                "preemptions": self.preemptions, "threads": self.threads}


_FIGURES = ("running_ns", "real_ns", "steal_ns", "preempted_ns", "hypervisor_ns", "idle_ns")


def _figures(v: VcpuStates) -> dict[str, int]:
    return {
        "running_ns": v.time_in(BASE_MASK, RUNNING),
        "real_ns": v.time_in(BASE_MASK | IN_HYPERVISOR | PREEMPTED | HALTED, RUNNING),
        "steal_ns": v.time_in(BASE_MASK | PREEMPTED, RUNNING | PREEMPTED),
        "preempted_ns": v.time_in(PREEMPTED),
        "hypervisor_ns": v.time_in(IN_HYPERVISOR | PREEMPTED | HALTED, IN_HYPERVISOR),
        "idle_ns": v.time_in(BASE_MASK, IDLE),
    }


def _col(rows: list[dict[str, Any]], key: str, dtype: Any) -> np.ndarray:
    return np.array([r[key] for r in rows], dtype=dtype)


def _table(rows: list[dict[str, Any]], spec: Mapping[str, Any]) -> Table:
    return Table({k: _col(rows, k, dt) for k, dt in spec.items()})


def vm_report(states: VmStates) -> VmReport:
    """The tables of a finished state computation."""
    setup = states.setup
    vc_rows: list[dict[str, Any]] = []
    for v in states.vcpus:
        vc_rows.append({"vm": v.vm, "vcpu": v.vcpu, "tid": v.tid, **_figures(v),
                        "preemptions": v.preemptions.nrows, "exits": v.exits.nrows})
    int_spec = {k: np.int64 for k in _FIGURES}
    vcpus = _table(vc_rows, {"vm": object, "vcpu": np.int64, "tid": np.int64, **int_spec,
                             "preemptions": np.int64, "exits": np.int64})
    vm_rows: list[dict[str, Any]] = []
    for vm in setup.vms:
        mine = [r for r in vc_rows if r["vm"] == vm.name]
        vm_rows.append({
            "vm": vm.name, "host": vm.host.hostname, "pid": vm.pid,
            "guest": vm.guest.paths[0] if vm.guest is not None else "",
            "paired_by": vm.paired_by, "vcpus": len(vm.vcpus),
            **{k: sum(int(r[k]) for r in mine) for k in _FIGURES},
            "preemptions": sum(int(r["preemptions"]) for r in mine),
            "clock": vm.clock_note})
    vms = _table(vm_rows, {"vm": object, "host": object, "pid": np.int64, "guest": object,
                           "paired_by": object, "vcpus": np.int64, **int_spec,
                           "preemptions": np.int64, "clock": object})
    ex_rows: list[dict[str, Any]] = []
    for vm in setup.vms:
        mine_v = [v for v in states.vcpus if v.vm == vm.name]
        if not mine_v:
            continue
        reason = np.concatenate([v.exits["reason"] for v in mine_v])
        hv = np.concatenate([v.exits["hypervisor_ns"] for v in mine_v])
        wall = np.concatenate([v.exits["wall_ns"] for v in mine_v])
        for r in np.unique(reason).tolist():
            sel = reason == r
            d = hv[sel]
            ex_rows.append({"vm": vm.name, "reason": r, "reason_name": exit_reason_name(r),
                            "count": int(sel.sum()), "total_ns": int(d.sum()),
                            "wall_ns": int(wall[sel].sum()), "min_ns": int(d.min()),
                            "avg_ns": float(d.mean()), "max_ns": int(d.max())})
    ex_rows.sort(key=lambda r: (str(r["vm"]), -int(r["total_ns"])))
    exits = _table(ex_rows, {"vm": object, "reason": np.int64, "reason_name": object,
                             "count": np.int64, "total_ns": np.int64, "wall_ns": np.int64,
                             "min_ns": np.int64, "avg_ns": np.float64, "max_ns": np.int64})
    preemptions = _preemptions(states)
    th_rows = _thread_rows(states)
    threads = _table(th_rows, {"vm": object, "tid": np.int64, "comm": object,
                               "apparent_ns": np.int64, "real_ns": np.int64,
                               "steal_ns": np.int64, "hypervisor_ns": np.int64})
    notes = list(setup.notes) + list(states.notes)
    return VmReport(states, vms, vcpus, exits, preemptions, threads, notes)


_PRE_SPEC: dict[str, Any] = {
    "vm": object, "vcpu": np.int64, "tid": np.int64, "start": np.int64, "end": np.int64,
    "duration": np.int64, "cpu": np.int64, "culprit": object, "culprit_tid": np.int64,
    "culprit_comm": object, "culprit_vm": object, "culprit_vcpu": np.int64,
    "culprit_guest_tid": np.int64, "culprit_guest_comm": object, "complete": bool}


def _culprit_texts(p: Mapping[str, np.ndarray]) -> np.ndarray:
    """:func:`culprit_text` of every row of the preemption columns ``p``."""
    out = [f"{c} ({t})" if not vm else
           f"VM {vm} vCPU {v} (host tid {t}): " + (f"{gc} ({g})" if g >= 0 else "?")
           for c, t, vm, v, g, gc in zip(
               p["culprit_comm"].tolist(), p["culprit_tid"].tolist(), p["culprit_vm"].tolist(),
               p["culprit_vcpu"].tolist(), p["culprit_guest_tid"].tolist(),
               p["culprit_guest_comm"].tolist(), strict=True)]
    return np.array(out, dtype=object) if out else np.zeros(0, object)


def _preemptions(states: VmStates) -> Table:
    """Every preemption of every vCPU, by start time (then VM, vCPU)."""
    vs = states.vcpus
    cols: dict[str, np.ndarray] = {}
    for k, dt in _PRE_SPEC.items():
        if k in ("vm", "vcpu", "tid"):
            parts = [np.full(v.preemptions.nrows, getattr(v, k), dt) for v in vs]
        elif k == "culprit":
            continue
        else:
            parts = [v.preemptions[k] for v in vs]
        cols[k] = np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)
    cols["culprit"] = _culprit_texts(cols)
    _, vm_rank = np.unique(cols["vm"].astype(str), return_inverse=True) if cols["vm"].size \
        else (None, np.zeros(0, np.int64))
    order = np.lexsort((cols["vcpu"], vm_rank.ravel(), cols["start"]))
    return Table({k: cols[k][order] for k in _PRE_SPEC})


def _thread_rows(states: VmStates) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for vm in states.setup.vms:
        mine = [v for v in states.vcpus if v.vm == vm.name]
        if not mine:
            continue
        tid = np.concatenate([v.intervals["guest_tid"] for v in mine])
        st = np.concatenate([v.intervals["state"] for v in mine])
        d = np.concatenate([v.intervals["end"] - v.intervals["start"] for v in mine])
        comms: dict[int, str] = {}
        for v in mine:
            comms.update(v.guest_comms)
        run = tid > 0
        if not run.any():
            continue
        ids, inv = np.unique(tid[run], return_inverse=True)
        dd, ss = d[run], st[run]
        flags = ss & (IN_HYPERVISOR | PREEMPTED | HALTED)
        apparent = np.bincount(inv, dd, ids.size)
        real = np.bincount(inv, np.where(flags == 0, dd, 0), ids.size)
        steal = np.bincount(inv, np.where(ss & PREEMPTED, dd, 0), ids.size)
        hv = np.bincount(inv, np.where(flags == IN_HYPERVISOR, dd, 0), ids.size)
        for i, t in enumerate(ids.tolist()):
            rows.append({"vm": vm.name, "tid": t, "comm": comms.get(t, ""),
                         "apparent_ns": int(apparent[i]), "real_ns": int(real[i]),
                         "steal_ns": int(steal[i]), "hypervisor_ns": int(hv[i])})
    rows.sort(key=lambda r: (str(r["vm"]), -int(r["apparent_ns"])))
    return rows


def analyze(ts: TraceSet, pairs: Mapping[str, int] | None = None, sync: bool = True,
            snap: bool = True, sync_result: SyncResult | None = None) -> VmReport:
    """Machines, pairing and clocks (:func:`~tracewatch.vm.machines.discover`), vCPU states
    (:func:`~tracewatch.vm.vcpu.vcpu_states`) and the report tables, in one pass over ``ts``.

    The sync events are matched in that same pass, unless ``sync_result`` (a
    :func:`tracewatch.sync.synchronize` of the same traces) already holds them and the fits;
    each guest's clock is put on its host's from the pairs they exchanged."""
    matches = sync_result.matches if sync and sync_result is not None else None
    fitted = sync_result.edges if matches is not None and sync_result is not None else None
    gather = SyncColumns(ts) if sync and matches is None else None
    machines = read_vm_events(ts, gather)
    if gather is not None:
        matches = gather.result()
    return vm_report(vcpu_states(discover(ts, pairs, sync, machines, matches, fitted), snap))
