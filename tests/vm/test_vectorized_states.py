"""The vectorized vCPU state construction equals the per-event sequential state machine it
replaced (``sequential_reference.one_vcpu``, the previous code kept verbatim), table by table
and to the ns, on every vCPU of: the Trace Compass OneQemuKvm stub, a hand-made trace full of corner
cases (second switch-out while off, exit while off, two exits in a row, halted vCPU,
preemptions still open at the end, ties at one timestamp, a culprit vCPU before its guest's
first switch) and simulated sets (randomized scenarios, the Gebai 2014 use case)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tracewatch
from tracewatch.analyses import Table
from tracewatch.sim import simulate
from tracewatch.sim.model import gebai2014
from tracewatch.vm import VcpuStates, VmReport, analyze
from tracewatch.vm.vcpu import _best_range, _host_index, _ranges, _snap

from .sequential_reference import best_range, one_vcpu, preemption_table, ranges, snap
from .stubs import STUBS, kvm, statedump, stub_to_ctf, switch, write_ctf
from .test_randomized_scenarios import scenario


def _same_table(a: Table, b: Table, what: str) -> list[str]:
    if a.columns != b.columns:
        return [f"{what}: columns {a.columns} != {b.columns}"]
    errors = []
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
            errors.append(f"{what}.{c}: {x.dtype}{x.shape} {x[:8]} != {y.dtype}{y.shape} {y[:8]}")
    return errors


def compare(rep: VmReport) -> tuple[list[str], int]:
    """Differences between the states of ``rep`` and the sequential reference, and the
    number of intervals compared."""
    st = rep.states
    hidx = {h.host_id: _host_index(h) for h in st.setup.hosts}
    errors: list[str] = []
    n = 0
    for vm in st.setup.vms:
        for v, tid in vm.vcpus.items():
            got: VcpuStates = st.of(vm.name, v)
            want = one_vcpu(st.setup, vm, v, tid, hidx[vm.host.host_id],
                            st.timelines.get((vm.name, v)), st.timelines, st.end)
            for name in ("intervals", "preemptions", "exits"):
                errors += _same_table(getattr(got, name), getattr(want, name),
                                      f"{vm.name} vCPU {v} {name}")
            if got.guest_comms != want.guest_comms:
                errors.append(f"{vm.name} vCPU {v}: guest comms differ")
            n += got.intervals.nrows
    errors += _same_table(rep.preemptions, preemption_table(st), "report preemptions")
    return errors, n


def test_one_qemu_kvm_stub(tmp_path: Path) -> None:
    d = STUBS / "OneQemuKvm"
    host = stub_to_ctf(d / "host.xml", tmp_path / "host", "host")
    guest = stub_to_ctf(d / "guest.xml", tmp_path / "guest", "guest")
    errors, n = compare(analyze(tracewatch.open(str(host), str(guest)), sync=False))
    assert n > 0 and not errors, "\n".join(errors)


def test_corner_cases(tmp_path: Path) -> None:
    q1, q2, hog = (101, "qemu-a"), (201, "qemu-b"), (300, "hog")
    idle = (0, "swapper/0")
    host = [
        statedump(1, 101, 100, "qemu-a"), statedump(1, 201, 200, "qemu-b"),
        switch(10, 0, idle, q1), kvm(12, 0, "kvm_entry", 0),
        switch(10, 1, idle, q2), kvm(11, 1, "kvm_entry", 0),
        kvm(20, 0, "kvm_exit", 30),
        switch(25, 0, q1, hog, prev_state=0),          # preempted in the hypervisor
        switch(26, 0, hog, hog, prev_state=0),         # noise: hog to hog
        kvm(27, 1, "kvm_exit", 1),
        switch(30, 1, q2, q1, prev_state=0),           # q1 in on cpu 1, q2 preempted by q1
        kvm(30, 1, "kvm_entry", 0),                    # same timestamp as the switch-in
        kvm(35, 1, "kvm_exit", 12),
        switch(40, 1, q1, hog, prev_state=1),          # q1 halts (blocked)
        switch(42, 1, q1, hog, prev_state=0),          # second switch-out while off
        kvm(45, 0, "kvm_exit", 48),                    # an exit seen while q1 is off
        switch(50, 0, hog, q1),
        switch(52, 1, q1, hog, prev_state=0),          # (inconsistent) q1 out on cpu 1...
        kvm(55, 0, "kvm_exit", 44),                    # ... so this exit comes while off
        switch(57, 2, idle, q1),                       # back in on cpu 2
        kvm(60, 0, "kvm_entry", 0),                    # exit 55..60, 2 ns of it off-CPU
        switch(61, 1, hog, q2), kvm(62, 1, "kvm_entry", 0), kvm(63, 1, "kvm_exit", 10),
        switch(70, 0, q1, q2, prev_state=0),           # q1 preempted by VM b's vCPU
        switch(80, 1, q2, hog, prev_state=0),          # q2 preempted until the end
        switch(90, 0, q2, idle, prev_state=1),       # q2 out again while off
    ]
    vmsync = [(t, "vmsync_gh_host", 0, {"cnt": ("long", t), "vm_uid": ("long", 7)})
              for t in (13,)]
    host += vmsync
    ga = [(t, "vmsync_gh_guest", 0, {"cnt": ("long", t), "vm_uid": ("long", 7)})
          for t in (13,)]
    ga += [switch(15, 0, (0, "swapper/0"), (11, "a1")), switch(30, 0, (11, "a1"), (12, "a2")),
           switch(30, 0, (12, "a2"), (11, "a1")), switch(66, 0, (11, "a1"), (0, "swapper/0"))]
    # VM b's guest: its first switch (75) comes after b's vCPU preempted q1 (70)
    gb = [switch(75, 0, (21, "b1"), (22, "b2"))]
    h = write_ctf(tmp_path / "host", "host", host)
    g = write_ctf(tmp_path / "ga", "ga", ga)
    g2 = write_ctf(tmp_path / "gb", "gb", gb)
    rep = analyze(tracewatch.open(str(h), str(g), str(g2)), pairs={"ga": 100, "gb": 200},
                  sync=False)
    assert {vm.name for vm in rep.states.setup.vms} == {"ga", "gb"}
    errors, n = compare(rep)
    assert n > 5 and not errors, "\n".join(errors)
    # q1 (from 70) and q2 (from 80) are still preempted at the end; VM gb's vCPU preempted
    # q1 at 70, running b1 (the task its guest's first switch, at 75, switched from)
    p = rep.preemptions
    assert p["complete"].tolist().count(False) == 2
    (k,) = np.flatnonzero(p["culprit_vm"] == "gb")
    assert (p["start"][k], p["culprit_guest_tid"][k], p["culprit_guest_comm"][k]) == \
        (70, 21, "b1")
    assert rep.states.of("ga", 0).exits["hypervisor_ns"].tolist() == [5, 3]


@pytest.mark.parametrize("seed", [0, 3, 7, 11, 42])
def test_simulated(seed: int, tmp_path: Path) -> None:
    simulate(scenario(seed), tmp_path / "run")
    errors, n = compare(analyze(tracewatch.open(str(tmp_path / "run"))))
    assert n > 100 and not errors, "\n".join(errors[:20])


def test_gebai2014(tmp_path: Path) -> None:
    simulate(gebai2014(duration=600_000_000, seed=3), tmp_path / "g")
    errors, n = compare(analyze(tracewatch.open(str(tmp_path / "g"))))
    assert n > 100 and not errors, "\n".join(errors[:20])


def test_best_range_equals_the_sweep() -> None:
    """The clock refinement's best offset range, on random closed ranges (many ties: small
    integers), equals the event sweep it replaced."""
    rng = np.random.default_rng(7)
    for n in [0, 1, 2, 3, 5, 10, 50, 300] * 40:
        span = int(rng.integers(1, 40))
        lo = rng.integers(-span, span, n)
        hi = lo + rng.integers(0, span, n)
        if rng.random() < 0.5:  # clipped to a bound, as the refinement does: many equal
            b = int(rng.integers(1, span + 1))
            lo, hi = np.maximum(lo, -b), np.minimum(hi, b)
            lo, hi = lo[lo <= hi], hi[lo <= hi]
        assert _best_range(lo, hi) == best_range(lo, hi), (lo.tolist(), hi.tolist())


def test_snap_equals_the_loop() -> None:
    """Snapping mapped guest times into guest-mode windows, on random windows (the last one
    sometimes still open) and times around them, equals the loop it replaced."""
    rng = np.random.default_rng(11)
    for _ in range(300):
        n = int(rng.integers(1, 12))
        edges = np.cumsum(rng.integers(0, 6, 2 * n))
        starts, ends = edges[0::2].copy(), edges[1::2].copy()
        if rng.random() < 0.3:
            ends[-1] = np.iinfo(np.int64).max
        t = np.sort(rng.integers(-3, int(edges[-1]) + 4, int(rng.integers(0, 30))))
        assert np.array_equal(_snap(t, starts, ends), snap(t, starts, ends)), \
            (t.tolist(), starts.tolist(), ends.tolist())


def test_ranges_equal_the_previous_ones() -> None:
    """The offset ranges of the refinement (one window near a time, or several), as a
    multiset, equal the previous computation's."""
    rng = np.random.default_rng(13)
    for _ in range(300):
        n = int(rng.integers(1, 15))
        edges = np.cumsum(rng.integers(1, 30, 2 * n))
        starts, ends = edges[0::2].copy(), edges[1::2].copy()
        m = np.sort(rng.integers(-20, int(edges[-1]) + 20, int(rng.integers(0, 40))))
        bound = int(rng.integers(1, 25))
        got, want = _ranges(m, starts, ends, bound), ranges(m, starts, ends, bound)
        assert sorted(zip(*map(np.ndarray.tolist, got), strict=True)) == \
            sorted(zip(*map(np.ndarray.tolist, want), strict=True))
