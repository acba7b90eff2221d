"""The trace set :func:`tracewatch.open` gives for paths: a :class:`~tracewatch.ctf.TraceSet`
with the kernel analyses as methods.

>>> import tracewatch
>>> ts = tracewatch.open("path/to/trace")          # doctest: +SKIP
>>> ts.cputop(begin=None, end=None).per_tid        # doctest: +SKIP

Each method calls the function of :mod:`tracewatch.analyses` of the same meaning on this
trace set and returns its result unchanged. The reader (:mod:`tracewatch.ctf`) never imports
the analyses: this module, above both, ties them together.
"""

from __future__ import annotations

from collections.abc import Collection

from .analyses.cputop import CputopResult, cputop
from .analyses.io import IoResult, io_stats
from .analyses.irq import IrqResult, irq_stats
from .analyses.mem import MemResult, mem_stats
from .analyses.sched import SchedResult, sched_latencies
from .analyses.syscalls import SyscallsResult, syscall_stats
from .ctf.trace import TraceSet

__all__ = ["AnalysisTraceSet"]


class AnalysisTraceSet(TraceSet):
    """A :class:`TraceSet` with ``cputop``, ``sched``, ``syscalls``, ``irq``, ``io`` and
    ``mem`` methods (times in ns since the epoch; None: the whole trace)."""

    def __enter__(self) -> AnalysisTraceSet:
        return self

    def cputop(self, begin: int | None = None, end: int | None = None, tids: Collection[int] | None = None,
               cpus: Collection[int] | None = None) -> CputopResult:
        """CPU usage (see :func:`tracewatch.analyses.cputop.cputop`)."""
        return cputop(self, begin, end, tids, cpus)

    def sched(self, begin: int | None = None, end: int | None = None, tids: Collection[int] | None = None,
              cpus: Collection[int] | None = None) -> SchedResult:
        """Scheduling latencies (see :func:`tracewatch.analyses.sched.sched_latencies`)."""
        return sched_latencies(self, begin, end, tids, cpus)

    def syscalls(self, begin: int | None = None, end: int | None = None, tids: Collection[int] | None = None,
                 cpus: Collection[int] | None = None,
                 procnames: Collection[str] | None = None) -> SyscallsResult:
        """System call statistics (see :func:`tracewatch.analyses.syscalls.syscall_stats`)."""
        return syscall_stats(self, begin, end, tids, cpus, procnames)

    def irq(self, begin: int | None = None, end: int | None = None, cpus: Collection[int] | None = None,
            irqs: Collection[int] | None = None, softirqs: Collection[int] | None = None) -> IrqResult:
        """Interrupt statistics (see :func:`tracewatch.analyses.irq.irq_stats`)."""
        return irq_stats(self, begin, end, cpus, irqs, softirqs)

    def io(self, begin: int | None = None, end: int | None = None, tids: Collection[int] | None = None,
           cpus: Collection[int] | None = None, procnames: Collection[str] | None = None) -> IoResult:
        """I/O statistics (see :func:`tracewatch.analyses.io.io_stats`)."""
        return io_stats(self, begin, end, tids, cpus, procnames)

    def mem(self, begin: int | None = None, end: int | None = None, tids: Collection[int] | None = None,
            cpus: Collection[int] | None = None, procnames: Collection[str] | None = None) -> MemResult:
        """Pages allocated/freed per thread (see :func:`tracewatch.analyses.mem.mem_stats`)."""
        return mem_stats(self, begin, end, tids, cpus, procnames)
