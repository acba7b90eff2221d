"""LTTng live viewer: the blocking relayd client and the session follower.

This module owns the socket side of live tracing:

* ``LiveClient`` is one viewer connection: it sends one request (header and payload
  in a single ``sendall``) and reads exactly the bytes of its reply, using the pure
  packers of ``protocol.py``.  Any socket error, timeout or short read raises
  ``ConnectionLostError`` and closes the client: after a partial reply the byte
  stream cannot be trusted any more.
* ``LiveSession`` follows one traced session (``net://HOST[:PORT]/host/H/S``): it
  attaches to every matching relay session, fetches metadata and packets, turns
  relayd's statuses into ``LiveItem`` values, and survives dropped connections and
  relayd restarts without delivering a packet twice.

It transports bytes only: CTF metadata and packets are decoded by the reader.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from . import protocol as p
from .protocol import (
    AttachStatus,
    DetachStatus,
    Index,
    IndexStatus,
    MetadataStatus,
    NewStreamsStatus,
    PacketStatus,
    ProtocolError,
    SeekType,
    SessionInfo,
    StreamInfo,
    ViewerFlag,
)
from .url import LiveUrl, parse_live_url

SeekName = Literal["beginning", "last"]


class LiveError(Exception):
    """Base class of the live viewer errors."""


class ConnectionLostError(LiveError, ConnectionError):
    """The connection to relayd broke (refused, reset, closed or timed out)."""


class NotConnectedError(LiveError):
    """A command was issued before ``connect()`` or after ``close()``."""


class AttachError(LiveError):
    """ATTACH_SESSION failed; ``status`` tells why."""

    def __init__(self, session_id: int, status: AttachStatus) -> None:
        super().__init__(f"cannot attach to relay session {session_id}: {status.name}")
        self.session_id = session_id
        self.status = status


class SessionBusyError(AttachError):
    """Another viewer is attached to the session (relayd allows one at a time)."""


class SessionNotFoundError(LiveError):
    """No relay session matches the requested hostname/name (or id)."""


class CommandError(LiveError):
    """A command got an error status from relayd."""


_RECV_CHUNK = 256 * 1024
#: Most requests written on one connection before reading their replies.
_MAX_PIPELINED = 256


class LiveClient:
    """One viewer connection to a relay daemon.

    >>> c = LiveClient("127.0.0.1", 5344); c.connect()   # doctest: +SKIP
    >>> [s.name for s in c.list_sessions()]               # doctest: +SKIP
    """

    def __init__(self, host: str, port: int = 5344, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.viewer_session_id: int | None = None
        self.relayd_minor: int | None = None
        self._sock: socket.socket | None = None
        self._rbuf = bytearray()  # bytes received, not consumed yet

    # -- connection -------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Open the TCP connection and do the version handshake (CONNECT)."""
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise ConnectionLostError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout)
        self._sock = sock
        reply = p.unpack_connect(self._request(p.pack_connect(), p.CONNECT.size))
        if reply.minor < p.MIN_PROTOCOL_MINOR:
            self.close()
            raise ProtocolError(f"relayd protocol 2.{reply.minor} is older than 2.4")
        self.viewer_session_id = reply.viewer_session_id
        self.relayd_minor = reply.minor

    def close(self) -> None:
        """Close the socket (relayd then detaches this viewer from its sessions)."""
        sock, self._sock = self._sock, None
        self._rbuf.clear()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def __enter__(self) -> LiveClient:
        if not self.connected:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw I/O ----------------------------------------------------------

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise NotConnectedError("live client is not connected")
        return self._sock

    def _send(self, data: bytes) -> None:
        sock = self._socket()
        try:
            sock.sendall(data)
        except OSError as exc:
            self.close()
            raise ConnectionLostError(f"send to relayd failed: {exc}") from exc

    def _recv(self, size: int) -> bytes:
        """Read exactly ``size`` bytes (buffered: one ``recv`` may bring several replies of
        pipelined requests; only replies to requests already sent can be in the buffer)."""
        buf = self._rbuf
        if len(buf) < size:
            sock = self._socket()
            try:
                while len(buf) < size:
                    chunk = sock.recv(max(_RECV_CHUNK, size - len(buf)))
                    if not chunk:
                        raise ConnectionLostError("relayd closed the connection")
                    buf += chunk
            except OSError as exc:
                self.close()
                raise ConnectionLostError(f"receive from relayd failed: {exc}") from exc
            except ConnectionLostError:
                self.close()
                raise
        if len(buf) == size:
            out = bytes(buf)
            buf.clear()
            return out
        out = bytes(buf[:size])
        del buf[:size]
        return out

    def _request(self, request: bytes, reply_size: int) -> bytes:
        self._send(request)
        return self._recv(reply_size)

    def _recv_streams(self, count: int) -> list[StreamInfo]:
        return [p.unpack_stream(self._recv(p.STREAM.size)) for _ in range(count)]

    # -- commands ---------------------------------------------------------

    def list_sessions(self) -> list[SessionInfo]:
        count = p.unpack_session_count(self._request(p.pack_list_sessions(), p.COUNT.size))
        return [p.unpack_session(self._recv(p.SESSION.size)) for _ in range(count)]

    def create_viewer_session(self) -> None:
        status = p.unpack_create_session(
            self._request(p.pack_create_session(), p.STATUS_REPLY.size)
        )
        if status is not p.CreateSessionStatus.OK:
            raise CommandError(f"CREATE_SESSION failed: {status.name}")

    def attach(self, session_id: int, seek: SeekName = "beginning") -> list[StreamInfo]:
        """Attach to a relay session; returns its streams (metadata ones included)."""
        seek_type = {"beginning": SeekType.BEGINNING, "last": SeekType.LAST}.get(seek)
        if seek_type is None:
            raise ValueError(f"seek must be 'beginning' or 'last', not {seek!r}")
        reply = self._request(p.pack_attach(session_id, seek_type), p.STREAMS_REPLY.size)
        status, count = p.unpack_attach_reply(reply)
        streams = self._recv_streams(count)  # relayd sends none unless OK
        if status is AttachStatus.ALREADY:
            raise SessionBusyError(session_id, status)
        if status is not AttachStatus.OK:
            raise AttachError(session_id, status)
        return streams

    def get_new_streams(self, session_id: int) -> tuple[NewStreamsStatus, list[StreamInfo]]:
        """Streams added since the last call; HUP means the session is over."""
        reply = self._request(p.pack_get_new_streams(session_id), p.STREAMS_REPLY.size)
        status, count = p.unpack_new_streams_reply(reply)
        return status, self._recv_streams(count)  # count is 0 unless OK

    def get_metadata_reply(self, stream_id: int) -> tuple[MetadataStatus, bytes]:
        reply = p.unpack_metadata_reply(
            self._request(p.pack_get_metadata(stream_id), p.METADATA_REPLY.size)
        )
        if reply.length and reply.status is not MetadataStatus.OK:
            self.close()
            raise ProtocolError(f"metadata reply {reply.status.name} with {reply.length} bytes")
        return reply.status, (self._recv(reply.length) if reply.length else b"")

    def get_metadata(self, stream_id: int) -> bytes | None:
        """New metadata bytes of a metadata stream, or None when there is none.

        Raises ``CommandError`` on ERROR (e.g. the stream of a per-PID app is gone).
        """
        status, data = self.get_metadata_reply(stream_id)
        if status is MetadataStatus.OK:
            return data
        if status is MetadataStatus.NO_NEW:
            return None
        raise CommandError(f"GET_METADATA on stream {stream_id}: {status.name}")

    def get_next_index(self, stream_id: int) -> Index:
        return p.unpack_index(self._request(p.pack_get_next_index(stream_id), p.INDEX_REPLY.size))

    def get_packet_reply(
        self, stream_id: int, offset: int, length: int
    ) -> tuple[PacketStatus, ViewerFlag, bytes]:
        reply = p.unpack_packet_reply(
            self._request(p.pack_get_packet(stream_id, offset, length), p.PACKET_REPLY.size)
        )
        if reply.status is not PacketStatus.OK:
            return reply.status, reply.flags, b""
        if reply.length != length:
            self.close()
            raise ProtocolError(f"asked {length} packet bytes, relayd announces {reply.length}")
        return reply.status, reply.flags, self._recv(reply.length)

    def get_packet(self, stream_id: int, offset: int, length: int) -> bytes | PacketStatus:
        """The packet bytes, or the status when it is not OK."""
        status, _flags, data = self.get_packet_reply(stream_id, offset, length)
        return data if status is PacketStatus.OK else status

    # -- pipelined commands -------------------------------------------------
    #
    # relayd serves one viewer connection's requests in order and answers each once: the
    # requests of a batch go in one write and the replies are read later in the same order
    # (the caller may write batches on other connections in between: their replies arrive
    # meanwhile). The requests are small (at most _MAX_PIPELINED of 24-28 B), so writing
    # them never blocks on a relayd busy writing replies. A lost connection mid-batch raises
    # ConnectionLostError like a single request, and the connection is closed (replies
    # read before are lost with it: the caller resumes from what it delivered).

    def send_next_index_requests(self, stream_ids: list[int]) -> None:
        """Write GET_NEXT_INDEX of several streams (read with :meth:`recv_indexes`)."""
        if len(stream_ids) > _MAX_PIPELINED:
            raise ValueError(f"at most {_MAX_PIPELINED} pipelined requests")
        self._send(b"".join([p.pack_get_next_index(i) for i in stream_ids]))

    def recv_indexes(self, count: int) -> list[Index]:
        """The replies of ``count`` pipelined GET_NEXT_INDEX, in order."""
        if not count:
            return []
        size = p.INDEX_REPLY.size
        data = self._recv(size * count)
        try:
            return [p.unpack_index(data[k : k + size]) for k in range(0, len(data), size)]
        except ProtocolError:
            self.close()
            raise

    def send_packet_requests(self, requests: list[tuple[int, int, int]]) -> None:
        """Write GET_PACKET of several (stream id, offset, length)."""
        if len(requests) > _MAX_PIPELINED:
            raise ValueError(f"at most {_MAX_PIPELINED} pipelined requests")
        self._send(b"".join([p.pack_get_packet(*r) for r in requests]))

    def recv_packet_replies(
        self, requests: list[tuple[int, int, int]]
    ) -> list[tuple[PacketStatus, ViewerFlag, bytes]]:
        """The replies of the pipelined GET_PACKET ``requests``, in order."""
        out: list[tuple[PacketStatus, ViewerFlag, bytes]] = []
        try:
            for _sid, _off, length in requests:
                reply = p.unpack_packet_reply(self._recv(p.PACKET_REPLY.size))
                if reply.status is not PacketStatus.OK:
                    out.append((reply.status, reply.flags, b""))
                    continue
                if reply.length != length:
                    raise ProtocolError(
                        f"asked {length} packet bytes, relayd announces {reply.length}"
                    )
                out.append((reply.status, reply.flags, self._recv(length)))
        except ProtocolError:
            self.close()
            raise
        return out

    def detach(self, session_id: int) -> DetachStatus:
        return p.unpack_detach(self._request(p.pack_detach(session_id), p.STATUS_REPLY.size))


# ---------------------------------------------------------------------------
# LiveSession: follow one traced session
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MetadataUpdate:
    """New bytes of a trace's packetized CTF metadata, to append to the earlier ones.

    The bytes are metadata packets (magic 0x75D11D57); the last declaration may be
    cut and completed by a later update.  ``LiveSession.metadata(trace_id)`` gives
    everything received so far.
    """

    trace_id: int
    new_bytes: bytes
    path: str


@dataclass(frozen=True)
class NewStream:
    """A data stream appeared (``stream_info`` is relayd's current description)."""

    trace_id: int
    stream_id: int
    stream_info: StreamInfo


@dataclass(frozen=True)
class Packet:
    """One CTF packet of a data stream, in stream order, never delivered twice."""

    trace_id: int
    stream_id: int
    packet_bytes: bytes
    index: Index
    received_ns: int  # time.monotonic_ns() at receipt (lttng-ust's clock is CLOCK_MONOTONIC)


@dataclass(frozen=True)
class Inactivity:
    """Beacon: stream ``stream_id`` has no event before ``timestamp_end`` (clock cycles)."""

    trace_id: int
    stream_id: int
    timestamp_end: int


@dataclass(frozen=True)
class StreamEnd:
    """The stream hung up: no more packets will come from it."""

    trace_id: int
    stream_id: int


@dataclass(frozen=True)
class SessionEnd:
    """The followed session is over; ``reason`` is ``destroyed`` or ``lost``."""

    reason: str = "destroyed"


LiveItem = MetadataUpdate | NewStream | Packet | Inactivity | StreamEnd | SessionEnd

#: Shared LIST_SESSIONS replies: (host, port) -> (time of the reply, sessions). Sessions
#: following several relay sessions of one relayd share one listing per refresh interval
#: (relayd answers LIST_SESSIONS slowly when it serves many sessions).
ListCache = dict[tuple[str, int], tuple[float, list[SessionInfo]]]

_log = logging.getLogger(__name__)
_MAX_METADATA_REPLIES = 1024
_NEW_METADATA = int(ViewerFlag.NEW_METADATA)  # int tests: IntFlag's & is pure Python
_NEW_STREAM = int(ViewerFlag.NEW_STREAM)


@dataclass(eq=False)
class _Trace:
    """One CTF trace as the caller knows it (stable across reconnections)."""

    trace_id: int
    path: str
    metadata: bytearray = field(default_factory=bytearray)
    relay: _RelayTrace | None = None  # its binding on the current connection
    ended: bool = False
    streams: dict[str, _Stream] = field(default_factory=dict)  # by channel name


@dataclass(eq=False)
class _Stream:
    """One data stream as the caller knows it, with its de-duplication watermark."""

    stream_id: int
    trace: _Trace
    info: StreamInfo
    relay_id: int | None = None  # relayd's id on the current connection
    ended: bool = False
    last_begin: int | None = None  # timestamps of the last packet delivered
    last_end: int | None = None
    last_offset: int | None = None
    horizon: int = 0  # latest timestamp promised (packet end or beacon)
    next_poll: float = 0.0
    pending: Index | None = None  # index whose GET_PACKET said RETRY


@dataclass(eq=False)
class _RelayTrace:
    """A (relay session, ctf_trace_id) of the current connection."""

    session_id: int
    ctf_trace_id: int
    path: str
    meta_stream_id: int | None = None
    waiting: list[StreamInfo] = field(default_factory=list)  # data streams before resolution
    trace: _Trace | None = None
    buf: bytearray = field(default_factory=bytearray)  # metadata before resolution
    fetched: int = 0  # metadata bytes received on this connection
    meta_gone: bool = False


@dataclass(eq=False)
class _RelaySession:
    info: SessionInfo
    closed: bool = False  # GET_NEW_STREAMS said HUP (or ERROR while unlisted)
    listed: bool = True


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class LiveSession:
    """Follow one traced session of a relay daemon and yield ``LiveItem`` values.

    ``LiveSession("net://127.0.0.1:5344/host/HOST/SESSION")`` attaches to every relay
    session with that hostname and name (kernel, 32- and 64-bit user space are
    separate relay sessions) and ``poll()`` returns the next items, in an order a
    reader can consume directly: a trace's ``MetadataUpdate`` comes before any
    ``Packet`` that needs it, ``NewStream`` before the stream's packets, and
    ``SessionEnd`` last, after a ``StreamEnd`` for every stream.

    ``trace_id`` and ``stream_id`` in the items are this object's own numbers:
    relayd's ids change when relayd restarts, ours do not.  A trace is identified
    by its metadata (which starts with the trace UUID), a stream by its trace and
    channel file name (``channel0_1``).

    Polling: GET_NEXT_INDEX per stream (the requests of all due streams written before
    their replies are read); RETRY and INACTIVE are polled again after ``retry_interval``
    (a tenth of the live timer, 10..100 ms), except a stream that has just moved forward
    (packet or beacon) then said RETRY or INACTIVE: the next live timer tick comes one
    period later, so it is polled again a period minus two retry intervals later;
    GET_NEW_STREAMS and LIST_SESSIONS run every ``refresh_interval`` (the live timer,
    0.2..2 s) and at once when an index carries the new-stream flag, so apps started after the
    attach are seen; the session ends when every matching relay session is closed
    (GET_NEW_STREAMS says HUP and LIST_SESSIONS no longer lists it) and all its
    streams hung up.

    Resilience: a dropped connection, a timeout or a protocol error closes the
    socket; the next polls reconnect with exponential backoff (``backoff_initial``
    doubling up to ``backoff_max``), attach again *from the beginning* and resume.
    Relayd then makes new viewer streams, which replay the metadata and every
    packet it still has; nothing is lost that relayd still serves, and nothing is
    delivered twice:

    * Metadata: the first bytes a trace sends tell whether it is the trace we knew
      (they equal the start of its metadata, whose first packet header holds the
      trace UUID): then the part already delivered is skipped; otherwise it is
      another trace, and the old trace's streams end.
    * Packets: per stream we keep the ``(timestamp_begin, timestamp_end)`` of the
      last packet delivered, and skip (without fetching it) any packet whose pair is
      not greater.  The packets of a stream do not overlap in time (a packet begins
      at or after the end of the previous one, and both come from one monotonic
      clock), so these pairs strictly increase along a stream, whatever the relayd
      incarnation or tracefile; two packets could only tie if both were empty and
      flushed at the same nanosecond.  The packet ``offset`` is *not* used: it is
      a position in relayd's current tracefile, which restarts at 0 after a
      tracefile rotation (``--tracefile-size``) and in the directory of a
      re-created session; and the index does not carry the packet sequence number
      (that needs decoding the packet context, the reader's job).
    * Beacons: an ``Inactivity`` is only delivered when it moves the stream's
      horizon (last packet end or beacon) forward.

    ``list_cache``: a :data:`ListCache` shared by the sessions of one process; a listing
    younger than ``refresh_interval`` is reused (not while resuming after a loss).

    ``seek`` applies to the first attach only; re-attaching is always from the
    beginning, so with ``seek="last"`` a stream that had delivered nothing yet may
    get packets older than the first attach after a reconnection.

    Limits of relayd 2.13 (seen on this machine): it keeps its sessions in memory
    only, and a consumer daemon never reconnects to a relayd that died, so after a
    relayd restart the old relay session is gone; the follower then waits (up to
    ``resume_timeout`` seconds) for a relay session of the same hostname and name
    (e.g. the session re-created with ``lttng create``), follows it as a new trace,
    and ends with ``SessionEnd("lost")`` if none comes.  And a viewer that
    (re)attaches once ``lttng destroy`` has begun gets nothing more of the session
    (its streams have moved to a null trace chunk: metadata NO_NEW, indexes RETRY
    then HUP): what was not fetched before a disconnection at that moment is lost.
    """

    def __init__(
        self,
        url: str | LiveUrl,
        *,
        timeout: float = 10.0,
        seek: SeekName = "beginning",
        retry_interval: float | None = None,
        refresh_interval: float | None = None,
        backoff_initial: float = 0.1,
        backoff_max: float = 2.0,
        resume_timeout: float = 60.0,
        max_packets_per_round: int = 32,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        list_cache: ListCache | None = None,
    ) -> None:
        self.url = url if isinstance(url, LiveUrl) else parse_live_url(url)
        if not self.url.names_session:
            raise ValueError(f"{self.url} names no session (use net://HOST/host/HOSTNAME/SESSION)")
        if seek not in ("beginning", "last"):
            raise ValueError(f"seek must be 'beginning' or 'last', not {seek!r}")
        self.timeout = timeout
        self.seek: SeekName = seek
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.resume_timeout = resume_timeout
        self.max_packets_per_round = max_packets_per_round
        self._user_retry = retry_interval
        self._user_refresh = refresh_interval
        self._clock = clock
        self._sleep = sleep
        self._list_cache = list_cache
        #: Live timer of the matching relay sessions (microseconds), once known.
        self.live_timer_us: int | None = None
        #: Successful reconnections after the first connection.
        self.reconnects = 0
        #: Packets skipped because they had been delivered before a reconnection.
        self.duplicates_skipped = 0
        self._client: LiveClient | None = None
        self._opened = False
        self._closed = False
        self._ended = False
        self._out: list[LiveItem] = []
        self._traces: list[_Trace] = []
        self._streams: list[_Stream] = []
        self._relay_sessions: dict[int, _RelaySession] = {}
        self._relay_traces: dict[tuple[int, int], _RelayTrace] = {}
        self._backoff = backoff_initial
        self._reconnect_at = 0.0
        self._lost_at: float | None = None
        self._next_refresh = 0.0
        self._refresh_now = False
        # _next_wakeup, cached: what it depends on changes only in rounds (and open)
        self._wakeup: float | None = None

    # -- public API -------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    @property
    def retry_interval(self) -> float:
        if self._user_retry is not None:
            return self._user_retry
        timer = (self.live_timer_us or 1_000_000) / 1e6
        return _clamp(timer / 10, 0.01, 0.1)

    @property
    def refresh_interval(self) -> float:
        if self._user_refresh is not None:
            return self._user_refresh
        return _clamp((self.live_timer_us or 1_000_000) / 1e6, 0.2, 2.0)

    def metadata(self, trace_id: int) -> bytes:
        """All metadata bytes received so far for ``trace_id``."""
        return bytes(self._traces[trace_id].metadata)

    def trace_paths(self) -> dict[int, str]:
        """Trace id -> path of the trace relative to relayd's session directory."""
        return {t.trace_id: t.path for t in self._traces}

    def open(self) -> None:
        """Connect and attach to every matching relay session.

        Raises ``SessionNotFoundError`` if none is listed, ``SessionBusyError`` if
        another viewer holds one, ``ConnectionLostError`` if relayd is unreachable.
        """
        if self._opened:
            return
        client = self._new_client()
        try:
            sessions = self._matching(self._list_sessions(client))
            if not sessions:
                raise SessionNotFoundError(f"no relay session matches {self.url}")
            for info in sessions:
                self._attach(client, info, self.seek)
        except BaseException:
            client.close()
            self._relay_sessions.clear()
            self._relay_traces.clear()
            raise
        self._client = client
        self._opened = True
        self._next_refresh = self._clock() + self.refresh_interval
        self._wakeup = None

    def poll(self, timeout: float = 1.0) -> list[LiveItem]:
        """Items available within ``timeout`` seconds ([] if none came).

        Sleeps between rounds (at most until the next stream is due), so a caller
        may simply loop on it.  After ``SessionEnd`` it returns [] at once.
        """
        if self._closed and not self._ended:
            raise NotConnectedError("live session was closed")
        if not self._opened:
            self.open()
        deadline = self._clock() + max(timeout, 0.0)
        while True:
            if not self._ended:
                self._round()
            if self._out or self._ended:
                out, self._out = self._out, []
                return out
            now = self._clock()
            if now >= deadline:
                return []
            self._wakeup = self._next_wakeup(now)
            self._sleep(max(0.001, min(self._wakeup, deadline) - now))

    def due_in(self) -> float:
        """Seconds until :meth:`poll` has something to do (0: now; inf once ended), so that
        a caller following many sessions can ``poll(0)`` only those due, then sleep."""
        now = self._clock()
        return max(0.0, self._due_at(now) - now)

    def _due_at(self, now: float) -> float:
        """When :meth:`poll` has something to do (``now``: at once; inf once ended)."""
        if self._out:
            return now
        if self._ended:
            return float("inf")
        if not self._opened or self._refresh_now:
            return now
        wakeup = self._wakeup
        if wakeup is None:
            wakeup = self._wakeup = self._next_wakeup(now)
        return wakeup

    def __iter__(self) -> Iterator[LiveItem]:
        """Yield items until (and including) ``SessionEnd``."""
        while True:
            items = self.poll()
            yield from items
            if self._ended and not self._out:
                return

    def close(self) -> None:
        """Detach and close the connection (relayd frees the session for others)."""
        self._closed = True
        client, self._client = self._client, None
        if client is None:
            return
        try:
            for session_id in list(self._relay_sessions):
                client.detach(session_id)
        except (LiveError, ProtocolError):
            pass
        client.close()

    def __enter__(self) -> LiveSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection handling ----------------------------------------------

    def _new_client(self) -> LiveClient:
        client = LiveClient(self.url.host, self.url.port, self.timeout)
        client.connect()
        try:
            client.create_viewer_session()
        except BaseException:
            client.close()
            raise
        return client

    def _list_sessions(self, client: LiveClient) -> list[SessionInfo]:
        """LIST_SESSIONS, or a shared reply younger than the refresh interval."""
        if self._list_cache is None:
            return client.list_sessions()
        key, now = (self.url.host, self.url.port), self._clock()
        hit = self._list_cache.get(key)
        if hit is not None and self._lost_at is None and 0 <= now - hit[0] < self.refresh_interval:
            return hit[1]
        sessions = client.list_sessions()
        self._list_cache[key] = (self._clock(), sessions)
        return sessions

    def _matching(self, sessions: list[SessionInfo]) -> list[SessionInfo]:
        return [
            s
            for s in sessions
            if s.hostname == self.url.hostname and s.name == self.url.session_name
        ]

    def _attach(self, client: LiveClient, info: SessionInfo, seek: SeekName) -> None:
        streams = client.attach(info.id, seek)
        _log.debug("attached to relay session %d: %d streams", info.id, len(streams))
        self._relay_sessions[info.id] = _RelaySession(info)
        if info.live_timer_us:
            self.live_timer_us = info.live_timer_us
        self._backoff = self.backoff_initial
        self._lost_at = None
        self._add_relay_streams(info.id, streams)

    def _on_lost(self, exc: BaseException, now: float) -> None:
        _log.info("live connection to %s lost (%s); retry in %.2fs", self.url, exc, self._backoff)
        if self._client is not None:
            self._client.close()
            self._client = None
        for stream in self._streams:
            stream.relay_id = None
            stream.pending = None
        for trace in self._traces:
            trace.relay = None
        self._relay_sessions.clear()
        self._relay_traces.clear()
        if self._lost_at is None:
            self._lost_at = now
        self._reconnect_at = now + self._backoff
        self._backoff = min(self._backoff * 2, self.backoff_max)

    def _reconnect(self, now: float) -> None:
        self._client = self._new_client()
        self.reconnects += 1
        _log.debug("reconnected to %s", self.url)
        self._next_refresh = now  # list and attach at once

    # -- one polling round ------------------------------------------------

    def _round(self) -> None:
        now = self._clock()
        due = self._round_start(now)
        if due:
            _poll_streams([(self, stream) for stream in due], now)
        self._round_finish(now)

    def _round_start(self, now: float) -> list[_Stream] | None:
        """First part of a polling round: reconnect if it is time, refresh, resolve traces;
        the streams due (None when not connected)."""
        self._wakeup = None
        if self._client is None:
            if now < self._reconnect_at:
                return None
            try:
                self._reconnect(now)
            except (LiveError, ProtocolError, OSError) as exc:
                self._on_lost(exc, now)
                return None
        try:
            if self._refresh_now or now >= self._next_refresh:
                self._refresh(now)
            self._resolve_traces()
        except (ConnectionLostError, NotConnectedError, ProtocolError) as exc:
            self._on_lost(exc, now)
            return None
        return [s for s in self._streams if self._due(s, now)]

    def _round_finish(self, now: float) -> None:
        """Last part of a polling round: GET_NEW_STREAMS if an index asked for it, end."""
        if self._client is not None and self._refresh_now:
            try:
                self._refresh(now)
            except (ConnectionLostError, NotConnectedError, ProtocolError) as exc:
                self._on_lost(exc, now)
        self._check_end(now)
        self._wakeup = None

    def _client_or_raise(self) -> LiveClient:
        if self._client is None:
            raise NotConnectedError("live session is not connected")
        return self._client

    @staticmethod
    def _due(stream: _Stream, now: float) -> bool:
        return (
            not stream.ended
            and stream.relay_id is not None
            and stream.trace.relay is not None
            and stream.next_poll <= now
        )

    def _next_wakeup(self, now: float) -> float:
        if self._client is None:
            return self._reconnect_at
        due = [self._next_refresh]
        due += [s.next_poll for s in self._streams if self._due(s, float("inf"))]
        if any(rt.trace is None for rt in self._relay_traces.values()):
            due.append(now + self.retry_interval)
        return max(now, min(due))

    def _refresh(self, now: float) -> None:
        """GET_NEW_STREAMS on attached relay sessions, attach new matching ones."""
        client = self._client_or_raise()
        self._refresh_now = False
        self._next_refresh = now + self.refresh_interval
        for rs in list(self._relay_sessions.values()):
            if rs.closed and not rs.listed:
                continue
            status, infos = client.get_new_streams(rs.info.id)
            rs.closed = status in (NewStreamsStatus.HUP, NewStreamsStatus.ERROR)
            if status is NewStreamsStatus.OK:
                self._add_relay_streams(rs.info.id, infos)
        listed = self._matching(self._list_sessions(client))
        listed_ids = {s.id for s in listed}
        for rs in self._relay_sessions.values():
            rs.listed = rs.info.id in listed_ids
        for info in listed:
            if info.id in self._relay_sessions:
                continue
            try:
                self._attach(client, info, "beginning")
            except AttachError as exc:
                _log.info("cannot attach to relay session %d yet: %s", info.id, exc)
        if self._lost_at is not None:  # resuming: look again soon, backing off
            self._next_refresh = now + self._backoff
            self._backoff = min(self._backoff * 2, self.backoff_max)

    def _check_end(self, now: float) -> None:
        if self._ended:
            return
        if self._relay_sessions:
            sessions_over = all(rs.closed and not rs.listed for rs in self._relay_sessions.values())
            streams_over = all(s.ended or s.relay_id is None for s in self._streams)
            if sessions_over and streams_over:
                self._finish("destroyed")
        elif self._lost_at is not None and now - self._lost_at >= self.resume_timeout:
            self._finish("lost")

    def _finish(self, reason: str) -> None:
        for stream in self._streams:
            self._end_stream(stream)
        for trace in self._traces:
            trace.ended = True
        self._out.append(SessionEnd(reason))
        self._ended = True
        self.close()

    # -- streams and traces -----------------------------------------------

    def _add_relay_streams(self, session_id: int, infos: list[StreamInfo]) -> None:
        for info in infos:
            key = (session_id, info.ctf_trace_id)
            rt = self._relay_traces.get(key)
            if rt is None:
                rt = _RelayTrace(session_id, info.ctf_trace_id, info.path_name)
                self._relay_traces[key] = rt
            if info.metadata_flag:
                rt.meta_stream_id = info.id
            elif rt.trace is None:
                rt.waiting.append(info)
            else:
                self._bind_stream(rt.trace, info)

    def _bind_stream(self, trace: _Trace, info: StreamInfo) -> None:
        """Attach a relay stream to our stream of the same channel (or a new one)."""
        stream = trace.streams.get(info.channel_name)
        if stream is None or stream.ended:
            stream = _Stream(len(self._streams), trace, info)
            trace.streams[info.channel_name] = stream
            self._streams.append(stream)
            self._out.append(NewStream(trace.trace_id, stream.stream_id, info))
        stream.info = info
        stream.relay_id = info.id
        stream.pending = None
        stream.next_poll = 0.0

    def _resolve_traces(self) -> None:
        """Tell, from its first metadata bytes, which trace each relay trace is."""
        for rt in list(self._relay_traces.values()):
            if rt.trace is not None or rt.meta_gone or rt.meta_stream_id is None:
                continue
            rt.buf += self._fetch_metadata_bytes(rt)
            if not rt.buf:
                continue
            trace = self._match_trace(rt)
            if trace is None:
                for old in self._unbound_traces(rt.path):
                    self._end_trace(old)  # same place, other metadata: it is gone
                trace = _Trace(len(self._traces), rt.path)
                self._traces.append(trace)
            _log.debug(
                "relay trace %d/%d is trace %d", rt.session_id, rt.ctf_trace_id, trace.trace_id
            )
            trace.relay, rt.trace = rt, trace
            first, rt.buf = bytes(rt.buf), bytearray()
            self._absorb_metadata(rt, first)
            for info in rt.waiting:
                self._bind_stream(trace, info)
            rt.waiting.clear()

    def _unbound_traces(self, path: str) -> list[_Trace]:
        return [t for t in self._traces if not t.ended and t.relay is None and t.path == path]

    def _match_trace(self, rt: _RelayTrace) -> _Trace | None:
        """The trace whose metadata starts like the relay trace's (a replay), if any."""
        for trace in self._unbound_traces(rt.path):
            n = min(len(trace.metadata), len(rt.buf))
            if n and trace.metadata[:n] == rt.buf[:n]:
                return trace
        return None

    def _end_trace(self, trace: _Trace) -> None:
        for stream in trace.streams.values():
            self._end_stream(stream)
        trace.ended = True

    def _fetch_metadata_bytes(self, rt: _RelayTrace) -> bytes:
        """GET_METADATA until NO_NEW; ERROR means the metadata stream is gone."""
        if rt.meta_stream_id is None or rt.meta_gone:
            return b""
        client = self._client_or_raise()
        out = bytearray()
        for _ in range(_MAX_METADATA_REPLIES):
            status, data = client.get_metadata_reply(rt.meta_stream_id)
            if status is MetadataStatus.OK and data:
                out += data
                continue
            if status not in (MetadataStatus.OK, MetadataStatus.NO_NEW):
                rt.meta_gone = True
            break
        return bytes(out)

    def _fetch_metadata(self, rt: _RelayTrace) -> None:
        data = self._fetch_metadata_bytes(rt)
        if data:
            self._absorb_metadata(rt, data)

    def _absorb_metadata(self, rt: _RelayTrace, chunk: bytes) -> None:
        """Append what is new in ``chunk`` (bytes already delivered are skipped)."""
        trace = rt.trace
        assert trace is not None
        start, known = rt.fetched, len(trace.metadata)
        rt.fetched += len(chunk)
        if start < known:
            replayed = chunk[: known - start]
            if trace.metadata[start : start + len(replayed)] != replayed:
                _log.warning("metadata of trace %d changed after reconnection", trace.trace_id)
            chunk = chunk[known - start :]
        if chunk:
            trace.metadata += chunk
            self._out.append(MetadataUpdate(trace.trace_id, bytes(chunk), trace.path))

    def _idle_delay(self, moved: bool) -> float:
        """Delay before polling again a stream with nothing new (RETRY or INACTIVE)."""
        if not moved:
            return self.retry_interval
        # it moved (packet or beacon), then went idle: all read up to this live timer tick,
        # nothing new before the next one (a packet filled before it waits at most that long)
        timer = (self.live_timer_us or 1_000_000) / 1e6
        return max(self.retry_interval, timer - 2 * self.retry_interval)

    @staticmethod
    def _is_duplicate(stream: _Stream, index: Index) -> bool:
        if stream.last_begin is None or stream.last_end is None:
            return False
        return (index.timestamp_begin, index.timestamp_end) <= (stream.last_begin, stream.last_end)

    def _deliver(self, stream: _Stream, index: Index, data: bytes) -> None:
        stream.last_begin, stream.last_end = index.timestamp_begin, index.timestamp_end
        stream.last_offset = index.offset
        stream.horizon = max(stream.horizon, index.timestamp_end)
        self._out.append(
            Packet(stream.trace.trace_id, stream.stream_id, data, index, time.monotonic_ns())
        )

    def _beacon(self, stream: _Stream, timestamp_end: int) -> None:
        if timestamp_end > stream.horizon:
            stream.horizon = timestamp_end
            self._out.append(Inactivity(stream.trace.trace_id, stream.stream_id, timestamp_end))

    def _end_stream(self, stream: _Stream) -> None:
        if not stream.ended:
            stream.ended = True
            stream.relay_id = None
            stream.pending = None
            self._out.append(StreamEnd(stream.trace.trace_id, stream.stream_id))


# ---------------------------------------------------------------------------
# Pipelined polling, groups of sessions
# ---------------------------------------------------------------------------


_Entry = tuple["LiveSession", _Stream, int]  # session, stream, its horizon before the round
_LOST = (ConnectionLostError, NotConnectedError, ProtocolError)


def _poll_streams(entries: list[tuple[LiveSession, _Stream]], now: float) -> None:
    """Poll due streams of connected sessions, pipelining the requests.

    Per stream it does what a sequential loop would (GET_NEXT_INDEX; new metadata first;
    OK -> GET_PACKET unless already delivered; INACTIVE -> beacon; RETRY -> later; HUP/EOF/
    ERROR -> stream over; up to ``max_packets_per_round`` packets), but in steps over all the
    streams: on every connection, its GET_NEXT_INDEX requests in one write; then their
    replies, read in order; then the metadata they ask for; then every GET_PACKET the same
    way; and again for the streams that got a packet. A connection that breaks makes its
    session resume (``_on_lost``) without disturbing the others; what a session delivered
    before stays delivered (and is skipped as a duplicate when relayd replays it). An index
    is never dropped: relayd moves past it when it sends it.
    """
    active: list[_Entry] = [(sess, st, st.horizon) for sess, st in entries]
    rounds = 0
    while active:
        rounds += 1
        # 1. GET_NEXT_INDEX, per connection: write all, then read all
        by_sess: dict[int, tuple[LiveSession, list[_Entry], list[int]]] = {}
        for e in active:
            g = by_sess.setdefault(id(e[0]), (e[0], [], []))
            g[1].append(e)
            if e[1].pending is None and len(g[2]) < _MAX_PIPELINED:
                g[2].append(cast(int, e[1].relay_id))
        groups = list(by_sess.values())
        for sess, _, ask in groups:
            if ask:
                _step(sess, now, LiveClient.send_next_index_requests, ask)
        fetch: list[tuple[LiveSession, list[tuple[_Entry, Index]]]] = []
        again: list[_Entry] = []
        for sess, es, ask in groups:
            ok, indexes = _step(sess, now, LiveClient.recv_indexes, len(ask))
            if not ok:
                continue
            it = iter(indexes)
            to_fetch: list[tuple[_Entry, Index]] = []
            for entry in es:
                st = entry[1]
                if st.pending is not None:
                    index, st.pending = st.pending, None
                else:
                    nxt = next(it, None)
                    if nxt is None:  # beyond _MAX_PIPELINED: not asked, still due
                        continue
                    index = nxt
                    flags = int(index.flags)
                    if flags & _NEW_METADATA:
                        rt = st.trace.relay
                        assert rt is not None
                        if not _step(sess, now, _fetch_metadata, sess, rt)[0]:
                            break
                    if flags & _NEW_STREAM:
                        sess._refresh_now = True
                status = index.status
                if status is IndexStatus.OK:
                    if sess._is_duplicate(st, index):
                        sess.duplicates_skipped += 1
                        again.append(entry)
                    else:
                        to_fetch.append((entry, index))
                    continue
                if status is IndexStatus.INACTIVE:
                    sess._beacon(st, index.timestamp_end)
                elif status is not IndexStatus.RETRY:  # HUP, EOF, ERROR (unknown stream)
                    _log.debug("stream %d: index %s", st.stream_id, status.name)
                    sess._end_stream(st)
                    continue
                st.next_poll = now + sess._idle_delay(st.horizon > entry[2])
            if to_fetch and sess._client is not None:
                for entry, index in to_fetch[_MAX_PIPELINED:]:  # fetched next round
                    entry[1].pending = index
                fetch.append((sess, to_fetch[:_MAX_PIPELINED]))
        # 2. GET_PACKET, per connection: write all, then read all
        reqs = [
            [(cast(int, e[1].relay_id), i.offset, i.packet_length) for e, i in fs]
            for _, fs in fetch
        ]
        for (sess, _), r in zip(fetch, reqs, strict=True):
            _step(sess, now, LiveClient.send_packet_requests, r)
        for (sess, fs), r in zip(fetch, reqs, strict=True):
            ok, replies = _step(sess, now, LiveClient.recv_packet_replies, r)
            if not ok:
                continue
            for (entry, index), reply in zip(fs, replies, strict=True):
                if not _take_packet(sess, entry, index, reply, now, again):
                    break
        # a stream that moved may have more: ask again (it stays due after its last round)
        active = [
            e
            for e in again
            if rounds < e[0].max_packets_per_round
            and not e[1].ended
            and e[1].relay_id is not None
            and e[0]._client is not None
        ]


def _step(sess: LiveSession, now: float, fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """``(True, fn(client, *args))`` on the session's connection; ``(False, None)`` when it
    is not connected or the connection is lost (then the session resumes later)."""
    client = sess._client
    if client is None:
        return False, None
    try:
        return True, fn(client, *args)
    except _LOST as exc:
        sess._on_lost(exc, now)
        return False, None


def _fetch_metadata(_client: LiveClient, sess: LiveSession, rt: _RelayTrace) -> None:
    sess._fetch_metadata(rt)


def _take_packet(
    sess: LiveSession,
    entry: _Entry,
    index: Index,
    reply: tuple[PacketStatus, ViewerFlag, bytes],
    now: float,
    again: list[_Entry],
) -> bool:
    """Handle one GET_PACKET reply; False when the session's connection was lost."""
    st = entry[1]
    status, pflags, data = reply
    client = sess._client
    if status is not PacketStatus.OK and int(pflags) & _NEW_METADATA and client is not None:
        rt = st.trace.relay  # relayds before 2.13 ask for metadata this way
        assert rt is not None and st.relay_id is not None
        try:
            sess._fetch_metadata(rt)
            status, pflags, data = client.get_packet_reply(
                st.relay_id, index.offset, index.packet_length
            )
        except _LOST as exc:
            sess._on_lost(exc, now)
            return False
    if int(pflags) & _NEW_STREAM:
        sess._refresh_now = True
    if status is PacketStatus.OK:
        sess._deliver(st, index, data)
        again.append(entry)
    elif status is PacketStatus.RETRY:
        st.pending = index
        st.next_poll = now + sess.retry_interval
    elif status is PacketStatus.EOF:
        sess._end_stream(st)
    else:
        _log.warning(
            "relayd could not read packet at offset %d of stream %s/%s; skipped",
            index.offset,
            st.info.path_name,
            st.info.channel_name,
        )
        again.append(entry)
    return True


class LiveSessionGroup:
    """Drive several opened :class:`LiveSession` objects from one thread.

    :meth:`poll_due` runs a round of every session due within ``slack`` seconds and polls
    their due streams together (see :func:`_poll_streams`): on each session's connection
    the requests go in one write, and the replies are read once every connection has its
    requests, so relayd answers them all meanwhile instead of one round trip at a time.

    The sessions keep one connection each: relayd 2.13 keeps a single trace chunk per
    viewer connection (that of the session attached last), so relay sessions of different
    ``lttng create`` attached on one connection get their packets read from another
    session's files.
    """

    def __init__(self, sessions: list[LiveSession], clock: Callable[[], float] = time.monotonic) -> None:
        self.sessions = sessions
        self._clock = clock
        self._live = list(sessions)  # not ended yet

    def due_in(self) -> float:
        """Seconds until some session has something to do (inf when all ended)."""
        now = self._clock()
        return max(0.0, min([s._due_at(now) for s in self._live], default=float("inf")) - now)

    def poll_due(self, slack: float = 0.0) -> list[tuple[int, list[LiveItem]]]:
        """One round of the sessions due (within ``slack`` s): (session index, items) pairs."""
        clock = self._clock
        started: list[LiveSession] = []
        entries: list[tuple[LiveSession, _Stream]] = []
        for sess in self._live:
            now = clock()  # the time goes by as the rounds start (refreshes)
            if sess._out or sess._due_at(now) > now + slack:
                continue
            if not sess._opened:
                sess.open()
            due = sess._round_start(now)
            started.append(sess)
            if due:
                entries += [(sess, st) for st in due]
        now = clock()
        if entries:
            _poll_streams(entries, now)
        for sess in started:
            sess._round_finish(now)
        out = []
        for i, sess in enumerate(self.sessions):
            if sess._out:
                items, sess._out = sess._out, []
                out.append((i, items))
        if any(sess._ended for sess in started):
            self._live = [sess for sess in self._live if not sess._ended]
        return out
