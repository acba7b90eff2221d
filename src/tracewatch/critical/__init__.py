"""Critical path analysis ("execution flow recovery") of a task, on one machine or across a
host and its virtual machines.

:mod:`.graph` builds the execution graph of one machine (a chain of RUNNING / PREEMPTED /
BLOCKED / labelled wait edges per task, wakeups as vertical edges) from a kernel trace;
:mod:`.path` walks it backwards to get the bounded critical path of a task over a time range,
as a :class:`~tracewatch.analyses.Table` of intervals attributed to tasks; :mod:`.cross` does
the same over the graphs of a host and its guests (guest clocks put on host time through
:mod:`tracewatch.vm`), with matched TCP packets as edges between machines and the vCPU
preemption / hypervisor time of guest tasks attributed to whoever held the physical CPU.

>>> import tracewatch
>>> from tracewatch.critical import task_critical_path
>>> path, _ = task_critical_path(tracewatch.open("traces"), 3525)   # doctest: +SKIP
>>> path.intervals.to_pandas()                                     # doctest: +SKIP

Imports :mod:`tracewatch.ctf`, :mod:`tracewatch.kernel`, :mod:`tracewatch.sync`,
:mod:`tracewatch.vm`, :mod:`tracewatch.analyses` (``Table``) and :mod:`tracewatch.errors`;
never :mod:`tracewatch.cli` or :mod:`tracewatch.output`.
"""

from .cross import (
    SystemGraph,
    SystemPath,
    build_system_graph,
    from_single,
    system_critical_path,
    task_critical_path,
)
from .graph import EdgeType, ExecutionGraph, GraphError, build_graph
from .path import CriticalPath, CriticalPathError, critical_path, trace_critical_path

__all__ = ["EdgeType", "ExecutionGraph", "GraphError", "build_graph", "CriticalPath",
           "CriticalPathError", "critical_path", "trace_critical_path", "SystemGraph",
           "SystemPath", "build_system_graph", "from_single", "system_critical_path",
           "task_critical_path"]
