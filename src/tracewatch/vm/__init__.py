"""Virtual machine analysis: hosts, guests, vCPU states, steal and hypervisor time.

:mod:`.machines` finds hosts (traces with kvm events), VMs and their vCPU threads, pairs
guest traces with VMs (vmsync ``vm_uid`` or a user pairing) and puts guest clocks on host
time; :mod:`.vcpu` builds the vCPU state intervals (IDLE/RUNNING, IN_HYPERVISOR, PREEMPTED)
in host time; :mod:`.report` turns them into per VM / vCPU / exit reason / preemption /
guest thread tables.

>>> import tracewatch
>>> from tracewatch.vm import analyze
>>> rep = analyze(tracewatch.open("host", "guest"))             # doctest: +SKIP
>>> rep.vcpus.to_pandas()                                       # doctest: +SKIP

:func:`analyze` reads the traces once (the sync events are matched from the same batches);
given ``sync_result=`` (a :func:`tracewatch.sync.synchronize` of the same traces) it reuses
its matched pairs and fits instead.

Imports :mod:`tracewatch.ctf`, :mod:`tracewatch.sync`, :mod:`tracewatch.analyses` (``Table``)
and :mod:`tracewatch.errors`; never :mod:`tracewatch.output` or :mod:`tracewatch.cli`.
"""

from .machines import (
    ClockReconcileError,
    Machine,
    NoKvmEventsError,
    PairingError,
    UnpairedGuestError,
    VirtualMachine,
    VmError,
    VmSetup,
    discover,
    parse_pair,
    read_vm_events,
)
from .report import EXIT_REASONS, VmReport, analyze, culprit_text, exit_reason_name, vm_report
from .vcpu import (
    HALTED,
    IDLE,
    IN_HYPERVISOR,
    PREEMPTED,
    RUNNING,
    UNKNOWN,
    GuestTimeline,
    VcpuStates,
    VmStates,
    state_name,
    vcpu_states,
)

__all__ = ["ClockReconcileError", "Machine", "NoKvmEventsError", "PairingError",
           "UnpairedGuestError", "VirtualMachine", "VmError", "VmSetup", "discover",
           "parse_pair", "read_vm_events", "EXIT_REASONS", "VmReport", "analyze",
           "culprit_text", "exit_reason_name", "vm_report", "HALTED", "IDLE", "IN_HYPERVISOR",
           "PREEMPTED", "RUNNING", "UNKNOWN", "GuestTimeline", "VcpuStates", "VmStates",
           "state_name", "vcpu_states"]
