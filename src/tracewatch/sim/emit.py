"""Event layouts of the simulated traces and their writing through the CTF writer.

Field layouts follow LTTng 2.8+ kernel tracepoints (``comm`` fields are ``char[16]`` text
arrays, as LTTng's ``ctf_array_text``), plus the lttng-modules addon events of the VM
synchronization exchange (``vmsync_*``: ``cnt``, ``vm_uid``) and a flat layout for the TCP
events (``seq``, ``ack_seq``, ``flags``, ``saddr``, ``daddr``).  The simulator records events
per stream as ``(timestamp, class index, values)`` tuples; a :class:`TraceOut` writes one
machine's trace (one stream per CPU, one channel, like an LTTng kernel session) chunk by
chunk, grouping runs of one event class into :meth:`~tracewatch.ctf.writer.Stream.write_many`
calls when they are long enough and :meth:`~tracewatch.ctf.writer.Stream.write` otherwise.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np

from ..ctf.writer import Array, Int, String, Struct, TraceWriter

__all__ = ["HOST_EVENTS", "GUEST_EVENTS", "EXIT_REASONS", "Record", "TraceOut", "comm16"]

Record = tuple[int, int, dict[str, Any]]

_COMM = Array(Int(8, encoding="UTF8"), 16)
_I32 = Int(32, signed=True)
_U32 = Int(32)
_I64 = Int(64, signed=True)
_U64 = Int(64, base=16)

_SWITCH = Struct([("prev_comm", _COMM), ("prev_tid", _I32), ("prev_prio", _I32),
                  ("prev_state", _I64), ("next_comm", _COMM), ("next_tid", _I32),
                  ("next_prio", _I32)])
_WAKE = Struct([("comm", _COMM), ("tid", _I32), ("prio", _I32), ("target_cpu", _I32)])
_SYNC = Struct([("cnt", _U32), ("vm_uid", _I32)])
_STATEDUMP = Struct([("tid", _I32), ("vtid", _I32), ("pid", _I32), ("vpid", _I32),
                     ("ppid", _I32), ("vppid", _I32), ("name", _COMM), ("type", _I32),
                     ("mode", _I32), ("submode", _I32), ("status", _I32), ("cpu", _I32)])

#: VMX exit reason numbers (as kvm_exit's exit_reason field carries them)
EXIT_REASONS = {"EXTERNAL_INTERRUPT": 1, "HLT": 12, "VMCALL": 18, "IO_INSTRUCTION": 30,
                "MSR_WRITE": 32, "EPT_VIOLATION": 48}

HOST_EVENTS: list[tuple[str, Struct]] = [
    ("sched_switch", _SWITCH),
    ("sched_waking", _WAKE),
    ("sched_wakeup", _WAKE),
    ("kvm_entry", Struct([("vcpu_id", _U32)])),
    ("kvm_exit", Struct([("exit_reason", _U32), ("guest_rip", _U64), ("isa", _U32),
                         ("info1", _U64), ("info2", _U64)])),
    ("vmsync_gh_host", _SYNC),
    ("vmsync_hg_host", _SYNC),
    ("lttng_statedump_process_state", _STATEDUMP),
]
GUEST_EVENTS: list[tuple[str, Struct]] = [
    ("sched_switch", _SWITCH),
    ("sched_waking", _WAKE),
    ("sched_wakeup", _WAKE),
    ("irq_handler_entry", Struct([("irq", _I32), ("name", String())])),
    ("irq_handler_exit", Struct([("irq", _I32), ("ret", _I32)])),
    ("softirq_entry", Struct([("vec", _U32)])),
    ("softirq_exit", Struct([("vec", _U32)])),
    ("syscall_entry_read", Struct([("fd", _U32), ("buf", _U64), ("count", _U64)])),
    ("syscall_exit_read", Struct([("ret", _I64), ("buf", _U64)])),
    ("syscall_entry_write", Struct([("fd", _U32), ("buf", _U64), ("count", _U64)])),
    ("syscall_exit_write", Struct([("ret", _I64)])),
    ("syscall_entry_nanosleep", Struct([("rqtp", _U64), ("rmtp", _U64)])),
    ("syscall_exit_nanosleep", Struct([("ret", _I64), ("rmtp", _U64)])),
    ("syscall_entry_futex", Struct([("uaddr", _U64), ("op", _I32), ("val", _U32),
                                    ("utime", _U64), ("uaddr2", _U64), ("val3", _U32)])),
    ("syscall_exit_futex", Struct([("ret", _I64), ("uaddr", _U64), ("uaddr2", _U64)])),
    ("vmsync_gh_guest", _SYNC),
    ("vmsync_hg_guest", _SYNC),
    ("lttng_statedump_process_state", _STATEDUMP),
    ("inet_sock_local_out", Struct([("seq", _U32), ("ack_seq", _U32), ("flags", Int(16)),
                                    ("saddr", _U32), ("daddr", _U32)])),
    ("inet_sock_local_in", Struct([("seq", _U32), ("ack_seq", _U32), ("flags", Int(16)),
                                   ("saddr", _U32), ("daddr", _U32)])),
]

_RUN_MIN = 64  # runs of one class at least this long go through write_many
_SMALL = 512  # chunks shorter than this are written event by event


def comm16(name: str) -> str:
    """A task name as the kernel keeps it (at most 15 bytes)."""
    return name.encode()[:15].decode(errors="ignore")


class TraceOut:
    """One machine's trace being written: an open writer with one stream per CPU.

    :meth:`write` appends a chunk of records to a CPU's stream (host clock cycles,
    non-decreasing across chunks); with ``drift_ppb`` timestamps become ``t + drift_ppb *
    t // 1e9`` (a guest clock).  Chunks do not close packets, so the bytes written do not
    depend on how records are chunked."""

    def __init__(self, path: str | os.PathLike[str], hostname: str,
                 layouts: list[tuple[str, Struct]], cpus: list[int], clock_offset_s: int,
                 clock_offset: int, env: dict[str, str | int],
                 trace_uuid: uuid.UUID | None = None, drift_ppb: int = 0) -> None:
        self.writer = TraceWriter(path, hostname=hostname, clock_offset_s=clock_offset_s,
                                  clock_offset=clock_offset, env=env, overwrite=True,
                                  uuid=trace_uuid)
        sc = self.writer.add_stream_class(header="compact")
        self.ecs = [sc.add_event_class(name, fields) for name, fields in layouts]
        self.streams = {cpu: self.writer.add_stream(sc, cpu=cpu) for cpu in cpus}
        self.drift_ppb = drift_ppb
        self.count = 0

    def write(self, cpu: int, recs: list[Record]) -> None:
        n = len(recs)
        if not n:
            return
        self.count += n
        s = self.streams[cpu]
        ecs = self.ecs
        k = self.drift_ppb
        if n < _SMALL:  # write_many gives the same bytes as write: skip numpy on small chunks
            write = s.write
            if k:
                for t, c, v in recs:
                    write(ecs[c], t + (k * t) // 1_000_000_000, v)
            else:
                for t, c, v in recs:
                    write(ecs[c], t, v)
            return
        ts_l, ks_l, vs = zip(*recs, strict=True)
        ts = np.array(ts_l, dtype=np.int64)
        if self.drift_ppb:
            ts = ts + (self.drift_ppb * ts) // 1_000_000_000
        ks = np.array(ks_l, dtype=np.int32)
        brk = np.flatnonzero(ks[1:] != ks[:-1]) + 1
        starts = np.concatenate([[0], brk])
        ends = np.concatenate([brk, [n]])
        long = np.flatnonzero(ends - starts >= _RUN_MIN)
        tsl = ts.tolist()
        pos = 0
        for r in [*long.tolist(), -1]:
            i, j = (int(starts[r]), int(ends[r])) if r >= 0 else (n, n)
            _write_each(s, ecs, tsl[pos:i], ks_l[pos:i], vs[pos:i])
            if i < j:
                ec = ecs[ks_l[i]]
                cols = {f: [v[f] for v in vs[i:j]] for f in ec.fields.names}
                s.write_many(ec, ts[i:j].astype(np.uint64), cols)
            pos = j

    def close(self) -> None:
        self.writer.close()


def _write_each(s: Any, ecs: list[Any], tsl: list[int], ks: tuple[int, ...],
                vs: tuple[dict[str, Any], ...]) -> None:
    write = s.write
    for t, k, v in zip(tsl, ks, vs, strict=True):
        write(ecs[k], t, v)
