"""Live trace sets: the events of LTTng live sessions, as the file reader gives them.

:class:`LiveTraceSet` follows one or several relay sessions (``net://`` URLs) with
:class:`~tracewatch.live.client.LiveSession` and turns what arrives into the same
:class:`~tracewatch.ctf.batch.EventBatch` objects (and so :class:`~tracewatch.ctf.batch.Event`
objects) as :class:`~tracewatch.ctf.trace.TraceSet` reads from files:

* per relay trace it accumulates the packetized metadata, parses the longest prefix of its
  text that ends after a complete top-level declaration (metadata can stop mid-declaration),
  and parses and compiles again when that prefix grows (an app registering a new
  tracepoint adds event classes); event class ids of the trace set stay stable;
* per stream one :class:`~tracewatch.ctf.stream.StreamReader` decodes packet after packet
  with the same clock state (:meth:`~tracewatch.ctf.stream.StreamReader.decode_packet`);
* streams are merged in time order as :mod:`tracewatch.ctf.merge` does (same sort key, same
  tie-breaking by stream rank), but an event is only delivered once every other stream has
  promised that nothing older will come: by a packet (its ``timestamp_end``) or an inactivity
  beacon (the ``timestamp_end`` of an empty index, in the stream's clock cycles, converted to
  ns with the trace clock). A stream that has promised nothing yet holds the merge back;
  ended streams stop holding it.

Progress: :meth:`LiveTraceSet.low_watermark` is the time (ns) before which every event of
the streams known so far has been delivered: the merge point, moved by events, inactivity
beacons and ended streams (when every stream has ended, by the last promise of any of them).
:meth:`LiveTraceSet.timed_batches` interleaves the merged batches with that time (an ``int``)
each time it moves, so that a consumer can close time windows on quiet sessions.

Events discarded by the tracer (``events_discarded`` of the packet context, cumulative per
stream) are reported through ``on_warning`` with the stream's name, and counted in
:attr:`LiveTraceSet.discarded`. This module is the only one of :mod:`tracewatch.live` that
uses the CTF reader; the transport modules import only the standard library.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ctf.batch import EventBatch
from ..ctf.compile import CompiledTrace, compile_trace
from ..ctf.merge import _batch, _Head, _prepare
from ..ctf.metadata import metadata_text
from ..ctf.stream import BytesSource, Chunk, StreamReader
from ..ctf.trace import GlobalClass, StreamFile, Trace, TraceSet
from ..ctf.tsdl import parse_tsdl
from ..ctf.types import TraceClass
from ..ctf.values import clock_to_ns
from ..errors import DecodeError, MetadataError, TracewatchError
from .client import (
    Inactivity,
    LiveError,
    LiveItem,
    LiveSession,
    LiveSessionGroup,
    MetadataUpdate,
    NewStream,
    Packet,
    SessionBusyError,
    SessionEnd,
    SessionNotFoundError,
    StreamEnd,
)
from .protocol import StreamInfo
from .url import parse_live_url

__all__ = ["LiveTraceSet", "LiveTraceError", "is_live_url", "complete_tsdl_prefix"]

_NEG_INF = -(1 << 63)
_POS_INF = (1 << 63) - 1
_BATCH_S = 0.02  # shortest sleep between rounds over several sessions


class LiveTraceError(TracewatchError):
    """A live session cannot be followed (unknown, already followed, relayd unreachable)."""


def is_live_url(path: str) -> bool:
    """True for ``net://``, ``net4://`` and ``net6://`` URLs."""
    return path.split("://", 1)[0].lower() in ("net", "net4", "net6") and "://" in path


class _TsdlScanner:
    """Finds, incrementally, the end of the last complete top-level TSDL declaration.

    A declaration is complete after a ``;`` outside every ``{}``/``()``/``[]`` block, string
    and comment (``trace { ... };``, ``typealias integer { ... } := uint8_t;``).
    """

    def __init__(self) -> None:
        self.pos = 0  # scanned up to here (never inside a string or a comment)
        self.depth = 0
        self.complete = 0

    def feed(self, text: str) -> int:
        """Scan ``text`` (the whole text so far, growing); return the complete prefix length."""
        i, n, depth = self.pos, len(text), self.depth
        while i < n:
            c = text[i]
            if c == '"' or c == "'":
                j = i + 1
                while j < n and text[j] != c:
                    j += 2 if text[j] == "\\" else 1
                if j >= n:
                    break  # string not finished yet
                i = j + 1
                continue
            if c == "/" and i + 1 < n and text[i + 1] in "*/":
                j = text.find("*/", i + 2) if text[i + 1] == "*" else text.find("\n", i + 2)
                if j < 0:
                    break  # comment not finished yet
                i = j + (2 if text[i + 1] == "*" else 1)
                continue
            if c == "/" and i + 1 >= n:
                break  # maybe the start of a comment
            if c in "{([":
                depth += 1
            elif c in "})]":
                depth -= 1
            elif c == ";" and depth == 0:
                self.complete = i + 1
            i += 1
        self.pos, self.depth = i, depth
        return self.complete


def complete_tsdl_prefix(text: str) -> str:
    """The longest prefix of a TSDL text that ends after a complete top-level declaration."""
    return text[: _TsdlScanner().feed(text)]


@dataclass(eq=False)
class _LiveTrace:
    """One relay trace (metadata stream and its data streams) of one session."""

    path: str
    data: bytearray = field(default_factory=bytearray)
    scanner: _TsdlScanner = field(default_factory=_TsdlScanner)
    parsed: int = 0  # length of the text prefix parsed
    trace: Trace | None = None
    error: MetadataError | None = None
    streams: list[_LiveStream] = field(default_factory=list)

    def feed(self, new_bytes: bytes) -> tuple[TraceClass, CompiledTrace] | None:
        """Add metadata bytes; parse and compile the complete part again if it grew
        (None if it did not, or if it does not parse yet: the error is kept in ``error``)."""
        self.data += new_bytes
        text, _ = metadata_text(bytes(self.data), self.path, partial=True)
        n = self.scanner.feed(text)
        if n <= self.parsed:
            return None
        try:
            tc = parse_tsdl(text[:n])
            ct = compile_trace(tc)
        except MetadataError as e:  # maybe only incomplete: kept until a packet needs it
            self.error = MetadataError(e.reason, f"{self.path}/metadata", e.line)
            return None
        self.parsed, self.error = n, None
        return tc, ct


@dataclass(eq=False)
class _LiveStream:
    """One data stream: its reader, decoded events not delivered yet, its time promise."""

    ltrace: _LiveTrace
    info: StreamInfo
    session: int  # index of its URL
    sf: StreamFile | None = None
    reader: StreamReader | None = None
    heads: deque[_Head] = field(default_factory=deque)  # decoded chunks, oldest first
    promise: int | None = None  # clock cycles: no event of this stream will come before it
    ended: bool = False
    last_max: int = _NEG_INF
    backwards: int = 0
    late: int = 0  # events older than events of other streams already delivered
    rank: tuple[Any, ...] = ()
    pos: int = 0  # its index in the trace set's stream order
    _ns_of: tuple[int, int] | None = None  # (promise, promise in ns): converted once

    @property
    def name(self) -> str:
        return f"{self.info.path_name}/{self.info.channel_name}"

    def safe_ns(self) -> int:
        """Time (ns) before which this stream will deliver nothing more."""
        if self.ended:
            return _POS_INF
        return self.promise_ns()

    def promise_ns(self) -> int:
        """Its promise (last packet end or beacon) in ns; -inf when none yet."""
        t = self.ltrace.trace
        if self.promise is None or t is None:
            return _NEG_INF
        if self._ns_of is not None and self._ns_of[0] == self.promise:
            return self._ns_of[1]
        ns = self._to_ns(t)
        self._ns_of = (self.promise, ns)
        return ns

    def _to_ns(self, t: Trace) -> int:
        assert self.promise is not None
        clock = t.clock
        cycles = np.array([min(self.promise, _POS_INF)], np.int64)
        return int(clock_to_ns(cycles, clock.freq, clock.offset_s, clock.offset)[0])


class LiveTraceSet(TraceSet):
    """The events of live sessions (``net://HOST[:PORT]/host/HOSTNAME/SESSION`` URLs).

    Attaches at once (raising :class:`LiveTraceError` if a session is unknown, followed by
    another viewer, or relayd unreachable); :meth:`batches` / :meth:`events` then yield
    events in time order as they arrive and return when every session has ended (``lttng
    destroy``). The set is read once: the generator detaches when it finishes or is closed.
    ``session_options`` go to each :class:`~tracewatch.live.client.LiveSession`.
    """

    def __init__(self, urls: str | Sequence[str], on_warning: Callable[[str], None] | None = None,
                 poll_interval: float = 0.2, **session_options: Any) -> None:
        super().__init__([], on_warning)
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise LiveTraceError("no live URL given")
        self.poll_interval = poll_interval
        self._gid_of_class: dict[tuple[int, int, int], int] = {}
        self._gid_tables: dict[tuple[int, int], np.ndarray] = {}
        self._ltraces: dict[tuple[int, int], _LiveTrace] = {}
        self._lstreams: dict[tuple[int, int], _LiveStream] = {}
        self._order: list[_LiveStream] = []
        self._safe: list[int] = []  # safe_ns() of the streams, by position (kept up to date)
        self._with_heads: dict[int, _LiveStream] = {}  # streams with undelivered events
        self._sessions: list[LiveSession] = []
        self._ended: list[bool] = []
        session_options.setdefault("list_cache", {})  # one LIST_SESSIONS per relayd and refresh
        self._consumed = False
        self._delivered_upto = _NEG_INF  # largest sort key delivered so far
        self._watermark = _NEG_INF  # every event before it was delivered (ns)
        try:
            for url in self.urls:
                self._sessions.append(self._open_session(url, session_options))
                self._ended.append(False)
        except BaseException:
            self.close()
            raise
        self._group = LiveSessionGroup(self._sessions)

    @staticmethod
    def _open_session(url: str, options: dict[str, Any]) -> LiveSession:
        try:
            session = LiveSession(parse_live_url(url), **options)
        except ValueError as e:
            raise LiveTraceError(str(e)) from None
        try:
            session.open()
        except SessionBusyError:
            raise LiveTraceError(f"{url}: the session is already followed by another viewer") from None
        except SessionNotFoundError:
            raise LiveTraceError(f"{url}: no such live session on the relay daemon") from None
        except (LiveError, OSError) as e:
            raise LiveTraceError(f"{url}: {e}") from None
        return session

    # -- reading ----------------------------------------------------------

    @property
    def stream_names(self) -> list[str]:
        """Every data stream seen so far (``TRACE_PATH/CHANNEL_CPU``), with events or not."""
        return [s.name for s in self._order]

    @property
    def late_events(self) -> dict[str, int]:
        """Events delivered out of time order per stream (a stream found after newer events
        of other streams were delivered: live sessions announce new streams with a delay)."""
        return {s.name: s.late for s in self._order if s.late}

    @property
    def discarded(self) -> dict[str, int]:
        """Events discarded by the tracer so far, per stream name (streams with some only)."""
        return {s.name: s.reader.discarded_total for s in self._order
                if s.reader is not None and s.reader.discarded_total}

    def low_watermark(self) -> int | None:
        """Time (ns since the epoch) before which every event of the streams known so far
        has been delivered by the merged batches; None before any stream promised anything.

        It moves with events, inactivity beacons and stream ends, never backwards (a stream
        found later with older events makes them *late*, see :attr:`late_events`)."""
        return None if self._watermark == _NEG_INF else self._watermark

    def timed_batches(self) -> Iterator[EventBatch | int]:
        """The merged batches of :meth:`batches` (all events), each group followed by the
        :meth:`low_watermark` (an ``int``, ns) when it moved: a quiet session still yields
        its progress at every live timer tick (beacons)."""
        if self._consumed:
            raise TracewatchError("a live trace set can be read only once")
        self._consumed = True
        return self._live_batches(True, marks=True)

    def _batch_source(self, merged: bool, wanted: np.ndarray | None = None) -> Iterator[Any]:
        if self._consumed:
            raise TracewatchError("a live trace set can be read only once")
        self._consumed = True
        return self._live_batches(merged)

    def _live_batches(self, merged: bool, marks: bool = False) -> Iterator[EventBatch | int]:
        mark = _NEG_INF
        try:
            many = len(self._sessions) > 1
            while not all(self._ended):
                # one session: poll() waits for it; several: one round of those due (their
                # streams polled together: requests written on every connection before the
                # replies are read), then sleep until the next one is due (at least _BATCH_S:
                # sessions due about together share a wakeup). (relayd 2.13 keeps one trace
                # chunk per viewer connection: sessions cannot share a connection.)
                changed = False
                if many:
                    try:
                        polled = self._group.poll_due(_BATCH_S / 2)
                    except LiveError as e:
                        raise LiveTraceError(str(e)) from None
                else:
                    try:
                        polled = [(0, self._sessions[0].poll(self.poll_interval))]
                    except LiveError as e:
                        raise LiveTraceError(f"{self.urls[0]}: {e}") from None
                for i, items in polled:
                    changed = changed or bool(items)
                    for item in items:
                        b = self._handle(i, item, merged)
                        if b is not None:
                            yield b
                if merged and changed:
                    yield from self._emit()
                    if marks and self._watermark > mark:
                        mark = self._watermark
                        yield mark
                if many:
                    wait = self._group.due_in()
                    if wait > 0:
                        time.sleep(min(max(wait, _BATCH_S), self.poll_interval))
            if merged:
                yield from self._emit()
                if marks and self._watermark > mark:
                    yield self._watermark
        finally:
            if self.on_warning is not None:
                for s in self._order:
                    if s.backwards:
                        self.on_warning(f"{s.name}: {s.backwards} events have timestamps earlier than a "
                                        "previous event of the same stream; delivered in stream order")
                    if s.late:
                        self.on_warning(f"{s.name}: {s.late} events delivered out of time order "
                                        "(stream found late)")
            self.close()

    def _handle(self, si: int, item: LiveItem, merged: bool) -> EventBatch | None:
        if isinstance(item, Packet):
            return self._on_packet(self._lstreams[(si, item.stream_id)], item, merged)
        if isinstance(item, Inactivity):
            s = self._lstreams[(si, item.stream_id)]
            s.promise = item.timestamp_end if s.promise is None else max(s.promise, item.timestamp_end)
            self._safe[s.pos] = s.safe_ns()
        elif isinstance(item, MetadataUpdate):
            lt = self._ltraces.get((si, item.trace_id))
            if lt is None:
                lt = self._ltraces[(si, item.trace_id)] = _LiveTrace(item.path)
            self._parse_metadata(lt, item.new_bytes)
        elif isinstance(item, NewStream):
            lt = self._ltraces.get((si, item.trace_id))
            if lt is None:  # the client sends metadata first; be tolerant anyway
                lt = self._ltraces[(si, item.trace_id)] = _LiveTrace(item.stream_info.path_name)
            s = _LiveStream(lt, item.stream_info, si, pos=len(self._order))
            lt.streams.append(s)
            self._lstreams[(si, item.stream_id)] = s
            self._order.append(s)
            self._safe.append(s.safe_ns())
        elif isinstance(item, StreamEnd):
            s = self._lstreams[(si, item.stream_id)]
            s.ended = True
            self._safe[s.pos] = _POS_INF
        elif isinstance(item, SessionEnd):
            self._ended[si] = True
            for (sj, _), s in self._lstreams.items():
                if sj == si:
                    s.ended = True
                    self._safe[s.pos] = _POS_INF
        return None

    # -- metadata -----------------------------------------------------------

    def _parse_metadata(self, lt: _LiveTrace, new_bytes: bytes) -> None:
        """Take new metadata bytes; update the trace's classes and decoders if it grew."""
        parsed = lt.feed(new_bytes)
        if parsed is None:
            return
        tc, ct = parsed
        if lt.trace is None:
            lt.trace = Trace(lt.path, tc, ct, index=len(self.traces))
            self.traces.append(lt.trace)
        else:
            lt.trace.trace_class, lt.trace.compiled = tc, ct
            for s in lt.streams:
                if s.reader is not None:
                    s.reader.ct = ct
        for s in lt.streams:  # their promises in ns need the trace's clock
            s._ns_of = None
            self._safe[s.pos] = s.safe_ns()
        self._register_classes(lt.trace)

    def _register_classes(self, t: Trace) -> None:
        """Global ids for new event classes; a class keeps its id when the metadata grows."""
        for sid, cs in sorted(t.compiled.streams.items()):
            table = []
            for k, ev in enumerate(cs.events):
                key = (t.index, sid, ev.id)
                gid = self._gid_of_class.get(key)
                if gid is None:
                    gid = self._gid_of_class[key] = len(self.classes)
                    self.classes.append(GlobalClass(gid, t, sid, k, ev))
                table.append(gid)
            self._gid_tables[(t.index, sid)] = np.array(table, np.int32)

    def gids_of(self, sf: StreamFile, chunk: Chunk) -> np.ndarray:
        t = sf.trace
        sids = np.unique(chunk.stream_class_id)
        if sids.shape[0] == 1:
            return self._gid_tables[(t.index, int(sids[0]))][chunk.cls]
        out = np.empty(chunk.cls.shape[0], np.int32)
        for sid in sids.tolist():
            m = chunk.stream_class_id == sid
            out[m] = self._gid_tables[(t.index, sid)][chunk.cls[m]]
        return out

    # -- packets --------------------------------------------------------------

    def _on_packet(self, s: _LiveStream, p: Packet, merged: bool) -> EventBatch | None:
        end = p.index.timestamp_end
        s.promise = end if s.promise is None else max(s.promise, end)
        self._safe[s.pos] = s.safe_ns()
        t = s.ltrace.trace
        if t is None:
            raise s.ltrace.error or MetadataError("no complete metadata before the first packet",
                                                  f"{s.ltrace.path}/metadata")
        if s.reader is None or s.sf is None:
            s.sf = StreamFile(t, s.name, len(self.streams))
            t.streams.append(s.sf)
            self.streams.append(s.sf)
            s.reader = StreamReader(t.compiled, BytesSource(b"", s.name), self.on_warning)
        try:
            chunk = s.reader.decode_packet(p.packet_bytes, p.index.offset)
        except DecodeError as e:
            if self.on_warning is not None:
                self.on_warning(f"{e}; packet skipped")
            return None
        if chunk is None or len(chunk) == 0:
            return None
        if not s.rank:
            pk = chunk.packets[0]
            inst = pk.stream_instance_id
            # as the file reader ranks streams (trace, stream class, instance, file name),
            # traces in the order of the URLs
            s.rank = (s.session, t.path, pk.stream_class_id, -1 if inst is None else inst,
                      s.info.channel_name)
        h = _Head(s.sf, iter([chunk]), s.rank, last_max=s.last_max)
        _prepare(self, h)
        s.last_max, s.backwards = h.last_max, s.backwards + h.backwards
        h.backwards = 0
        if not merged:
            assert h.chunk is not None
            return _batch(self, [(h, 0, len(h.chunk))], [], False)
        assert h.key is not None
        late = int(np.count_nonzero(h.key < self._delivered_upto))
        if late and not s.late and self.on_warning is not None:
            self.on_warning(f"{s.name}: events older than events already delivered arrived (the "
                            "stream was found late); they are delivered out of order")
        s.late += late
        s.heads.append(h)
        self._with_heads[s.pos] = s
        return None

    def _progress(self, safe: int) -> int:
        """The merge point: min promise of the open streams (``safe``, see
        :meth:`low_watermark`)."""
        if all(self._ended):
            return _POS_INF
        if any(not s.ended for s in self._order):
            return safe
        # every stream ended (or none yet): nothing comes before their last promise
        return max((s.promise_ns() for s in self._order), default=_NEG_INF)

    def _emit(self) -> Iterator[EventBatch]:
        """One batch of every pending event older than what every stream has promised."""
        safe = min(self._safe, default=_POS_INF)  # ended streams hold _POS_INF
        self._watermark = max(self._watermark, self._progress(safe))
        parts: list[tuple[_Head, int, int]] = []
        for pos in sorted(self._with_heads):
            s = self._with_heads[pos]
            while s.heads:
                h = s.heads[0]
                assert h.key is not None
                n = h.key.shape[0]
                end = n if safe == _POS_INF else int(np.searchsorted(h.key, safe, side="left"))
                if end > h.start:
                    parts.append((h, h.start, end))
                    h.start = end
                if h.start < n:
                    break
                s.heads.popleft()
            if not s.heads:
                del self._with_heads[pos]
        if parts:
            b = _batch(self, parts, [], True)
            self._delivered_upto = max(self._delivered_upto, max(int(h.key[e - 1]) for h, _, e in parts
                                                                 if h.key is not None))
            yield b

    def close(self) -> None:
        """Detach from every session (relayd frees them for other viewers)."""
        for session in self._sessions:
            session.close()

