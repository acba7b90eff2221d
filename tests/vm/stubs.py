"""Trace Compass XML stub traces -> CTF traces (with :mod:`tracewatch.ctf.writer`), for tests.

A stub is ``<trace>`` with ``<event timestamp name>`` elements holding ``<field name value
type>`` children.  The ``cpu`` field selects the stream (one stream per cpu value); every
other field becomes a payload field of the event class (int/long -> signed 64-bit, string ->
string; an event class has the union of the fields of its events, missing values written as
0 / "").  Stub timestamps are small integers: the trace is written with a 1 GHz clock and
``clock_offset_s=0`` so that event timestamps equal the stub's.  :func:`write_ctf` and the
event helpers (:func:`switch`, :func:`kvm`, :func:`statedump`) build synthetic traces.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from tracewatch.ctf.writer import FieldType, Int, String, Struct, TraceWriter

STUBS = Path("/work/shared/traces/tracecompass-vm-stubs")


def _ftype(kind: str) -> FieldType:
    return String() if kind == "string" else Int(64, signed=True)


def _value(kind: str, text: str) -> Any:
    return text if kind == "string" else int(text)


def read_stub(xml_path: str | Path) -> list[tuple[int, str, int, dict[str, tuple[str, Any]]]]:
    """Events of a stub: (timestamp, name, cpu, {field: (type, value)}), in file order."""
    root = ET.parse(xml_path).getroot()
    out = []
    for e in root.iter("event"):
        fields: dict[str, tuple[str, Any]] = {}
        cpu = 0
        for f in e.iter("field"):
            kind, name = f.get("type", "long"), f.get("name", "")
            if name == "cpu":
                cpu = int(f.get("value", "0"))
                continue
            fields[name] = (kind, _value(kind, f.get("value", "")))
        out.append((int(e.get("timestamp", "0")), e.get("name", ""), cpu, fields))
    return out


Event = tuple[int, str, int, dict[str, tuple[str, Any]]]


def write_ctf(out_dir: str | Path, hostname: str, events: Sequence[Event]) -> Path:
    """Write ``events`` (timestamp, name, cpu, {field: (type, value)}) as a CTF trace; they
    are sorted by timestamp (stable) first."""
    events = sorted(events, key=lambda e: e[0])
    out = Path(out_dir)
    with TraceWriter(str(out), hostname=hostname, clock_offset_s=0) as w:
        sc = w.add_stream_class()
        kinds: dict[str, dict[str, str]] = {}  # name -> field -> type (union, first seen)
        for _, name, _, fields in events:
            kd = kinds.setdefault(name, {})
            for k, (kind, _) in fields.items():
                kd.setdefault(k, kind)
        classes = {name: sc.add_event_class(name, Struct([(k, _ftype(t)) for k, t in kd.items()]))
                   for name, kd in kinds.items()}
        streams = {cpu: w.add_stream(sc, cpu=cpu) for cpu in sorted({e[2] for e in events})}
        for t, name, cpu, fields in events:
            vals = {k: fields[k][1] if k in fields else ("" if kind == "string" else 0)
                    for k, kind in kinds[name].items()}
            streams[cpu].write(classes[name], t, vals)
    return out


def stub_to_ctf(xml_path: str | Path, out_dir: str | Path, hostname: str,
                drop: Collection[str] = (), shift: Mapping[str, int] | None = None) -> Path:
    """Write the stub ``xml_path`` as a CTF trace in ``out_dir``; returns ``out_dir``.

    ``drop``: event names left out; ``shift``: event name -> ns added to its timestamps
    (to build broken traces for the error tests)."""
    sh = dict(shift or {})
    events = [(t + sh.get(n, 0), n, c, f) for t, n, c, f in read_stub(xml_path) if n not in drop]
    return write_ctf(out_dir, hostname, events)


def switch(t: int, cpu: int, prev: tuple[int, str], nxt: tuple[int, str],
           prev_state: int = 0) -> Event:
    """A sched_switch event tuple."""
    return (t, "sched_switch", cpu, {
        "prev_comm": ("string", prev[1]), "prev_tid": ("long", prev[0]),
        "prev_prio": ("long", 20), "prev_state": ("long", prev_state),
        "next_comm": ("string", nxt[1]), "next_tid": ("long", nxt[0]),
        "next_prio": ("long", 20)})


def kvm(t: int, cpu: int, name: str, value: int) -> Event:
    """kvm_entry (value = vcpu_id) or kvm_exit (value = exit_reason)."""
    return (t, name, cpu, {("vcpu_id" if name.endswith("entry") else "exit_reason"):
                           ("long", value)})


def statedump(t: int, tid: int, pid: int, name: str) -> Event:
    return (t, "lttng_statedump_process_state", 0, {
        "tid": ("long", tid), "pid": ("long", pid), "ppid": ("long", 1),
        "name": ("string", name)})
