"""Detection of kernel tracer layouts."""

from __future__ import annotations

from tracewatch.kernel import detect_layout


def test_lttng_26_layout() -> None:
    lay = detect_layout(["sched_switch", "sched_waking", "syscall_entry_read"])
    assert lay.name == "lttng-2.6+"
    assert lay.wakeup_events() == ["sched_waking"]
    assert lay.field("sched_switch", "next_tid") == "next_tid"


def test_perf_layout_maps_names() -> None:
    lay = detect_layout(["sched:sched_switch", "sched:sched_wakeup"])
    assert lay.name == "perf"
    assert lay.event("sched_switch") == "sched:sched_switch"
