"""Critical path analysis ("execution flow recovery") of a task on one machine.

:mod:`.graph` builds the execution graph (a chain of RUNNING / PREEMPTED / BLOCKED / labelled
wait edges per task, wakeups as vertical edges) from a kernel trace; :mod:`.path` walks it
backwards to get the bounded critical path of a task over a time range, as a
:class:`~tracewatch.analyses.Table` of intervals attributed to tasks.

Imports :mod:`tracewatch.ctf`, :mod:`tracewatch.kernel`, :mod:`tracewatch.analyses` (``Table``)
and :mod:`tracewatch.errors`; never :mod:`tracewatch.cli` or :mod:`tracewatch.output`.
Cross-machine attribution (packets between machines, vCPU preemption) is not done here.
"""

from .graph import EdgeType, ExecutionGraph, GraphError, build_graph
from .path import CriticalPath, CriticalPathError, critical_path, trace_critical_path

__all__ = ["EdgeType", "ExecutionGraph", "GraphError", "build_graph", "CriticalPath",
           "CriticalPathError", "critical_path", "trace_critical_path"]
