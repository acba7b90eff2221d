"""vCPU states of the Trace Compass OneQemuKvm stub (1 host, 1 guest, 1 vCPU), derived by hand.

Host events (all on physical CPU 0; no statedump, so the VM's pid is the vCPU thread's tid):

    t=1   sched_switch 30 -> 31 (qemucpu1)    thread 31 now current on CPU 0
    t=5   kvm_entry vcpu_id=0                 31 is vCPU 0 of VM "pid 31"; IN_HYPERVISOR clear
    t=45  kvm_exit MSR_WRITE(32)              set IN_HYPERVISOR
    t=50  vmsync_gh_host cnt=1 uid=123456     seen in thread 31: vm_uid 123456 = VM 31
    t=55  vmsync_hg_host cnt=2
    t=60  kvm_entry                           clear IN_HYPERVISOR  (exit 45..60: 15 ns)
    t=95  kvm_exit MSR_WRITE                  set IN_HYPERVISOR
    t=100 sched_switch 31 -> 30 (state 0)     set PREEMPTED, culprit tid 30 "any"
    t=150 sched_switch 30 -> 31               clear PREEMPTED (preemption 100..150)
    t=155 kvm_entry                           clear IN_HYPERVISOR  (exit 95..155: wall 60,
                                              on-CPU 60 - 50 preempted = 10)
    t=195 kvm_exit / t=210 kvm_entry          IN_HYPERVISOR 195..210 (15)
    t=245 kvm_exit / t=260 kvm_entry          IN_HYPERVISOR 245..260 (15)
    t=295 kvm_exit                            set IN_HYPERVISOR
    t=300 sched_switch 31 -> 30 (state 0)     set PREEMPTED, culprit 30 "any"
    t=350 sched_switch 30 -> 31               clear PREEMPTED (preemption 300..350)
    t=355 kvm_entry                           clear IN_HYPERVISOR  (wall 60, on-CPU 10)

Guest events (cpu 0 = vCPU 0; vmsync_gh_guest/vmsync_hg_guest carry vm_uid 123456, so the
guest pairs with VM 31):

    t=10 -> 131 RUNNING, t=35 -> 130, t=75 -> 131, t=175 -> 130, t=225 -> 131, t=275 -> 130,
    t=375 -> 131 (every next_tid > 0: base always RUNNING once known)

The analysis starts at the first event (t=1) and ends at the last (t=375).  Without clock
synchronization (the stub's two traces share one time base, as in Trace Compass' test) the
intervals are EXPECTED below.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tracewatch
from tracewatch.vm import (
    IN_HYPERVISOR,
    PREEMPTED,
    RUNNING,
    UNKNOWN,
    analyze,
    state_name,
)

from .stubs import STUBS, stub_to_ctf

R, H, P = RUNNING, IN_HYPERVISOR, PREEMPTED

# (start, end, state bits, guest tid)
EXPECTED: list[tuple[int, int, int, int]] = [
    (1, 10, UNKNOWN, -1),         # vCPU thread switched in at 1, guest state not known yet
    (10, 35, R, 131),             # guest switch -> 131 at 10
    (35, 45, R, 130),             # guest switch -> 130 at 35
    (45, 60, R | H, 130),         # kvm_exit 45 .. kvm_entry 60
    (60, 75, R, 130),
    (75, 95, R, 131),             # guest switch -> 131 at 75
    (95, 100, R | H, 131),        # kvm_exit at 95
    (100, 150, R | H | P, 131),   # host switch 31 -> 30 at 100, back at 150
    (150, 155, R | H, 131),       # kvm_entry at 155
    (155, 175, R, 131),
    (175, 195, R, 130),           # guest switch -> 130 at 175
    (195, 210, R | H, 130),       # kvm_exit 195 .. kvm_entry 210
    (210, 225, R, 130),
    (225, 245, R, 131),           # guest switch -> 131 at 225
    (245, 260, R | H, 131),       # kvm_exit 245 .. kvm_entry 260
    (260, 275, R, 131),
    (275, 295, R, 130),           # guest switch -> 130 at 275
    (295, 300, R | H, 130),       # kvm_exit at 295
    (300, 350, R | H | P, 130),   # host switch 31 -> 30 at 300, back at 350
    (350, 355, R | H, 130),       # kvm_entry at 355
    (355, 375, R, 130),           # until the last event (guest switch -> 131 at 375)
]


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("oneqemukvm")
    return (stub_to_ctf(STUBS / "OneQemuKvm" / "host.xml", d / "host", "host"),
            stub_to_ctf(STUBS / "OneQemuKvm" / "guest.xml", d / "guest", "guest"))


def _rows(rep: tracewatch.vm.VmReport) -> list[tuple[int, int, int, int]]:
    iv = rep.states.of("guest", 0).intervals
    return list(zip(iv["start"].tolist(), iv["end"].tolist(), iv["state"].tolist(),
                    iv["guest_tid"].tolist(), strict=True))


def test_machines_and_pairing(stub: tuple[Path, Path]) -> None:
    rep = analyze(tracewatch.open(*map(str, stub)), sync=False)
    setup = rep.states.setup
    assert [h.hostname for h in setup.hosts] == ["host"]
    assert [g.hostname for g in setup.guests] == ["guest"]
    (vm,) = setup.vms
    assert (vm.name, vm.pid, vm.vcpus, vm.paired_by, vm.vm_uid) == \
        ("guest", 31, {0: 31}, "vmsync", 123456)


def test_intervals_equal_hand_derivation(stub: tuple[Path, Path]) -> None:
    rep = analyze(tracewatch.open(*map(str, stub)), sync=False)
    got = _rows(rep)
    assert got == EXPECTED, "\n".join(f"{s} {e} {state_name(b)} {g}" for s, e, b, g in got)


def test_preemptions_exits_and_figures(stub: tuple[Path, Path]) -> None:
    rep = analyze(tracewatch.open(*map(str, stub)), sync=False)
    p = rep.preemptions
    assert p["start"].tolist() == [100, 300] and p["end"].tolist() == [150, 350]
    assert p["culprit_tid"].tolist() == [30, 30] and p["culprit_comm"].tolist() == ["any", "any"]
    assert p["culprit"].tolist() == ["any (30)", "any (30)"] and p["complete"].all()
    ex = rep.states.of("guest", 0).exits
    assert list(zip(ex["start"].tolist(), ex["end"].tolist(), ex["hypervisor_ns"].tolist(),
                    strict=True)) == [(45, 60, 15), (95, 155, 10), (195, 210, 15),
                                      (245, 260, 15), (295, 355, 10)]
    (row,) = list(rep.exits.rows())  # perf kvm stat style
    assert row == {"vm": "guest", "reason": 32, "reason_name": "MSR_WRITE", "count": 5,
                   "total_ns": 65, "wall_ns": 165, "min_ns": 10, "avg_ns": 13.0, "max_ns": 15}
    (vc,) = list(rep.vcpus.rows())
    # running 10..375 = 365; steal = the two preemptions while RUNNING = 100; hypervisor on CPU
    # = 15 + 5 + 5 + 15 + 15 + 5 + 5 = 65; real = 365 - 100 - 65 = 200
    assert (vc["running_ns"], vc["steal_ns"], vc["preempted_ns"], vc["hypervisor_ns"],
            vc["real_ns"], vc["idle_ns"]) == (365, 100, 100, 65, 200, 0)
    th = {r["tid"]: r for r in rep.threads.rows()}
    # 131: apparent 25 + 100 + 50 = 175, steal 100..150 = 50, hypervisor 5 + 5 + 15 = 25
    assert (th[131]["apparent_ns"], th[131]["steal_ns"], th[131]["hypervisor_ns"],
            th[131]["real_ns"], th[131]["comm"]) == (175, 50, 25, 100, "any2")
    # 130: apparent 40 + 50 + 100 = 190, steal 300..350 = 50, hypervisor 15 + 15 + 5 + 5 = 40
    assert (th[130]["apparent_ns"], th[130]["steal_ns"], th[130]["hypervisor_ns"],
            th[130]["real_ns"]) == (190, 50, 40, 100)


def test_with_clock_sync(stub: tuple[Path, Path]) -> None:
    """With the vmsync exchange the guest gets a fitted transform; host-side facts do not
    move and the guest switch boundaries are the transformed guest timestamps."""
    rep = analyze(tracewatch.open(*map(str, stub)))
    (vm,) = rep.states.setup.vms
    assert "6 pairs, ACCURATE" in vm.clock_note
    guest_ts = {10, 35, 75, 175, 225, 275, 375}
    mapped = {t: vm.transform(t) for t in guest_ts}
    want = [(mapped.get(s, s), mapped.get(e, e), b, g) for s, e, b, g in EXPECTED]
    want[-1] = (want[-1][0], max(mapped[375], 375), *want[-1][2:])
    assert _rows(rep) == want
    assert rep.preemptions["start"].tolist() == [100, 300]
