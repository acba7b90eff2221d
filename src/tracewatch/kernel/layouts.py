"""Kernel tracer layouts: which event and field names a kernel trace uses.

Kernel traces name the same things differently depending on the tracer that wrote them:

* LTTng 2.6+ (lttng-modules): ``sched_switch`` (``prev_tid``/``next_tid``), ``sched_waking``
  (4.3+ kernels) and/or ``sched_wakeup``, ``syscall_entry_X``/``syscall_exit_X``;
* LTTng 2.0-2.5: the same sched events, but ``sys_X`` syscall entries and ``exit_syscall``;
* perf data converted to CTF (``babeltrace``/``perf data convert``): ``sched:sched_switch``
  with ``prev_pid``/``next_pid`` (kernel TIDs named "pid"), ``raw_syscalls:sys_enter``...

:func:`detect_layout` looks at the event classes of a trace set and returns a
:class:`KernelLayout` that maps *logical* events and fields (the names of LTTng 2.6+, which
the analyses use) to the actual ones. :meth:`KernelLayout.require` raises a
:class:`MissingEventsError` naming what an analysis lacks and the ``lttng enable-event -k``
line that would have recorded it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..ctf.trace import TraceSet
from ..ctf.values import field_name
from ..errors import TracewatchError

__all__ = ["KernelLayout", "MissingEventsError", "detect_layout", "LOGICAL_FIELDS"]

#: Logical fields of each logical event (LTTng 2.6+ names, leading underscore removed).
LOGICAL_FIELDS: dict[str, tuple[str, ...]] = {
    "sched_switch": ("prev_comm", "prev_tid", "prev_prio", "prev_state", "next_comm", "next_tid",
                     "next_prio"),
    "sched_waking": ("comm", "tid", "prio", "target_cpu"),
    "sched_wakeup": ("comm", "tid", "prio", "target_cpu"),
    "sched_wakeup_new": ("comm", "tid", "prio", "target_cpu"),
    "sched_migrate_task": ("comm", "tid", "prio", "orig_cpu", "dest_cpu"),
    "sched_process_fork": ("parent_comm", "parent_tid", "parent_pid", "child_comm", "child_tid",
                           "child_pid"),
    "sched_process_exec": ("filename", "tid", "old_tid"),
    "sched_process_exit": ("comm", "tid", "prio"),
    "sched_process_free": ("comm", "tid", "prio"),
    "lttng_statedump_process_state": ("tid", "pid", "ppid", "name"),
}

#: The three wakeup events, in order of preference (sched_waking is the earliest point).
WAKEUP_EVENTS: tuple[str, ...] = ("sched_waking", "sched_wakeup", "sched_wakeup_new")


class MissingEventsError(TracewatchError):
    """A trace lacks the kernel events an analysis needs."""

    def __init__(self, analysis: str, missing: Sequence[str], enable: Sequence[str]) -> None:
        self.analysis = analysis
        self.missing = list(missing)
        self.enable = list(enable)
        cmd = f"lttng enable-event -k {','.join(self.enable)}"
        super().__init__(
            f"{analysis}: the trace has no {' / '.join(self.missing)} event"
            f"{'s' if len(self.missing) > 1 else ''}; record "
            f"{'them' if len(self.missing) > 1 else 'it'} with: {cmd}")


@dataclass(frozen=True)
class KernelLayout:
    """Logical-to-actual names of the kernel events of one trace set."""

    name: str
    #: logical event name -> actual event name (only events present in the trace)
    events: dict[str, str] = field(default_factory=dict)
    #: (logical event, logical field) -> actual field name (leading underscore removed)
    fields: dict[tuple[str, str], str] = field(default_factory=dict)
    syscall_entry_prefix: str = "syscall_entry_"
    syscall_exit_prefix: str = "syscall_exit_"

    def has(self, logical: str) -> bool:
        return logical in self.events

    def event(self, logical: str) -> str:
        """Actual name of a logical event (KeyError when the trace lacks it)."""
        return self.events[logical]

    def field(self, logical_event: str, logical_field: str) -> str:
        """Actual name of a field of a logical event (the logical name when not remapped)."""
        return self.fields.get((logical_event, logical_field), logical_field)

    def wakeup_events(self) -> list[str]:
        """Logical wakeup events the trace has (sched_waking, sched_wakeup, sched_wakeup_new)."""
        return [e for e in WAKEUP_EVENTS if e in self.events]

    def require(self, analysis: str, needed: Iterable[str | tuple[str, ...]]) -> None:
        """Raise :class:`MissingEventsError` unless every need is met.

        Each need is a logical event name, or a tuple of alternatives (any one will do).
        """
        missing: list[str] = []
        enable: list[str] = []
        for need in needed:
            alts = (need,) if isinstance(need, str) else tuple(need)
            if any(a in self.events for a in alts):
                continue
            missing.append(" or ".join(self._actual_name(a) for a in alts))
            enable.extend(self._actual_name(a) for a in alts if a not in enable)
        if missing:
            raise MissingEventsError(analysis, missing, enable)

    def _actual_name(self, logical: str) -> str:
        if self.name == "perf":
            return f"sched:{logical}" if logical.startswith("sched_") else logical
        return logical


_PERF_FIELDS: dict[tuple[str, str], str] = {
    ("sched_switch", "prev_tid"): "prev_pid",
    ("sched_switch", "next_tid"): "next_pid",
    ("sched_waking", "tid"): "pid",
    ("sched_wakeup", "tid"): "pid",
    ("sched_wakeup_new", "tid"): "pid",
    ("sched_migrate_task", "tid"): "pid",
    ("sched_process_fork", "parent_tid"): "parent_pid",
    ("sched_process_fork", "child_tid"): "child_pid",
    ("sched_process_exec", "tid"): "pid",
    ("sched_process_exec", "old_tid"): "old_pid",
    ("sched_process_exit", "tid"): "pid",
    ("sched_process_free", "tid"): "pid",
}


#: trace set -> (number of event classes, layout): a trace set's classes only grow (live)
_CACHE: weakref.WeakKeyDictionary[TraceSet, tuple[int, KernelLayout]] = weakref.WeakKeyDictionary()


def detect_layout(ts: TraceSet | Iterable[str]) -> KernelLayout:
    """The kernel layout of a trace set (or of a list of event names, fields then unknown).

    Cached per trace set (until it gets new event classes)."""
    if isinstance(ts, TraceSet):
        hit = _CACHE.get(ts)
        if hit is not None and hit[0] == len(ts.classes):
            return hit[1]
        layout = _detect(ts)
        _CACHE[ts] = (len(ts.classes), layout)
        return layout
    return _detect(ts)


def _detect(ts: TraceSet | Iterable[str]) -> KernelLayout:
    fields_of: dict[str, set[str]] = {}
    if isinstance(ts, TraceSet):
        # fields matter only for the events of LOGICAL_FIELDS (and their perf names)
        known = set(LOGICAL_FIELDS) | {f"sched:{e}" for e in LOGICAL_FIELDS}
        for gc in ts.classes:
            name = gc.name
            cur = fields_of.setdefault(name, set())
            if name in known:
                st = gc.event.fields
                if st is not None:
                    cur.update(field_name(n) for n, _ in st.fields)
    else:
        for n in ts:
            fields_of.setdefault(n, set())
    present = set(fields_of)
    perf = any(n.startswith("sched:") for n in present)
    events: dict[str, str] = {}
    fields: dict[tuple[str, str], str] = {}
    if perf:
        for logical in LOGICAL_FIELDS:
            actual = f"sched:{logical}"
            if actual in present:
                events[logical] = actual
        for (ev, lf), af in _PERF_FIELDS.items():
            if ev in events and lf not in fields_of[events[ev]]:
                fields[(ev, lf)] = af
        return KernelLayout("perf", events, fields, "raw_syscalls:sys_enter", "raw_syscalls:sys_exit")
    for logical in LOGICAL_FIELDS:
        if logical in present:
            events[logical] = logical
    # very old lttng-modules (2.0-2.2) used pid-named fields in some events
    for (ev, lf), af in _PERF_FIELDS.items():
        if ev in events and fields_of[ev] and lf not in fields_of[ev] and af in fields_of[ev]:
            fields[(ev, lf)] = af
    if any(n.startswith("syscall_entry_") for n in present):
        return KernelLayout("lttng-2.6+", events, fields, "syscall_entry_", "syscall_exit_")
    if any(n.startswith("sys_") for n in present) or "exit_syscall" in present:
        return KernelLayout("lttng-2.0-2.5", events, fields, "sys_", "exit_syscall")
    return KernelLayout("lttng", events, fields)
