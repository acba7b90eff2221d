"""Linux kernel model over CTF traces: tracer layouts and kernel state.

Owns the knowledge of kernel tracers' event and field names (:mod:`.layouts`) and the state
derived from kernel events (thread table, current task per CPU: :mod:`.state`), with compiled
helpers (interned task names, dense thread ids: :mod:`.fast`). It imports
:mod:`tracewatch.ctf` and :mod:`tracewatch.errors`, never :mod:`tracewatch.analyses`,
:mod:`tracewatch.output` or :mod:`tracewatch.cli`.
"""

from .layouts import KernelLayout, MissingEventsError, detect_layout
from .state import (
    ColumnsRestart,
    ColumnStream,
    KernelColumns,
    Thread,
    ThreadTable,
    current_tasks,
    iter_columns,
    read_columns,
    thread_table,
)

__all__ = ["KernelLayout", "MissingEventsError", "detect_layout", "KernelColumns", "Thread",
           "ThreadTable", "current_tasks", "read_columns", "iter_columns", "ColumnStream",
           "ColumnsRestart", "thread_table"]
