"""CTF 1.8 reading and writing.

Owns everything about the Common Trace Format: metadata (TSDL) parsing, the compiled packet
decoder, streams and packets, trace discovery, time-ordered merging, and the columnar and
per-event views of decoded events. It imports nothing from the rest of tracewatch except
:mod:`tracewatch.errors`.
"""

from .batch import Event, EventBatch
from .trace import Trace, TraceSet, find_traces

__all__ = ["Event", "EventBatch", "Trace", "TraceSet", "find_traces"]
