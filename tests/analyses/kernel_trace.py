"""Small synthetic LTTng-like kernel traces written with :mod:`tracewatch.ctf.writer`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tracewatch.ctf.writer import Int, String, Struct, TraceWriter

_S32 = Int(32, signed=True)
_S64 = Int(64, signed=True)
_U32 = Int(32)

SCHEMAS: dict[str, Struct] = {
    "sched_switch": Struct([("prev_comm", String()), ("prev_tid", _S32), ("prev_prio", _S32),
                            ("prev_state", _S64), ("next_comm", String()), ("next_tid", _S32),
                            ("next_prio", _S32)]),
    "sched_waking": Struct([("comm", String()), ("tid", _S32), ("prio", _S32), ("target_cpu", _S32)]),
    "syscall_entry_read": Struct([("fd", _U32), ("count", Int(64))]),
    "syscall_exit_read": Struct([("ret", _S64), ("buf", Int(64))]),
    "syscall_entry_write": Struct([("fd", _U32), ("buf", Int(64)), ("count", Int(64))]),
    "syscall_exit_write": Struct([("ret", _S64)]),
    "syscall_entry_close": Struct([("fd", _U32)]),
    "syscall_entry_open": Struct([("filename", String()), ("flags", _S32), ("mode", _U32)]),
    "syscall_exit_open": Struct([("ret", _S64)]),
    "syscall_entry_dup2": Struct([("oldfd", _U32), ("newfd", _U32)]),
    "syscall_exit_dup2": Struct([("ret", _S64)]),
    "syscall_exit_close": Struct([("ret", _S64)]),
    "block_rq_issue": Struct([("dev", _U32), ("sector", Int(64)), ("nr_sector", _U32), ("bytes", _U32),
                              ("tid", _S32)]),
    "block_rq_complete": Struct([("dev", _U32), ("sector", Int(64)), ("nr_sector", _U32), ("error", _S32)]),
    "lttng_statedump_block_device": Struct([("dev", _U32), ("diskname", String())]),
    "kmem_mm_page_alloc": Struct([("page", Int(64)), ("pfn", Int(64)), ("order", _U32), ("gfp_flags", _U32),
                                  ("migratetype", _S32)]),
    "kmem_mm_page_free": Struct([("page", Int(64)), ("pfn", Int(64)), ("order", _U32)]),
    "irq_handler_entry": Struct([("irq", _S32), ("name", String())]),
    "irq_handler_exit": Struct([("irq", _S32), ("ret", _S32)]),
    "irq_softirq_raise": Struct([("vec", _U32)]),
    "irq_softirq_entry": Struct([("vec", _U32)]),
    "irq_softirq_exit": Struct([("vec", _U32)]),
}


def switch(prev: int, nxt: int, prev_comm: str = "a", next_comm: str = "b") -> dict[str, Any]:
    return {"prev_comm": prev_comm, "prev_tid": prev, "prev_prio": 20, "prev_state": 1,
            "next_comm": next_comm, "next_tid": nxt, "next_prio": 20}


def write_kernel_trace(path: Path, events: list[tuple[int, int, str, dict[str, Any]]],
                       ncpus: int = 2) -> str:
    """Write ``(timestamp ns, cpu, event name, payload)`` events (sorted by time per CPU);
    every event class of :data:`SCHEMAS` whose name is used is declared."""
    names = sorted({e[2] for e in events})
    with TraceWriter(str(path), hostname="synthetic") as w:
        sc = w.add_stream_class(header="compact")
        classes = {n: sc.add_event_class(n, SCHEMAS[n]) for n in names}
        streams = [w.add_stream(sc, cpu=c) for c in range(ncpus)]
        for ts, cpu, name, values in sorted(events, key=lambda e: (e[1], e[0])):
            streams[cpu].write(classes[name], ts, values)
    return str(path)
