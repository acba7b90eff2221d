"""Wire format of the LTTng live viewer protocol (viewer <-> lttng-relayd live port).

This module owns the byte layout of every viewer command and reply: the 16-byte
command header, the request payloads, the reply structs, the status enums and the
bounds applied to counts and lengths read from the wire.  It is pure: no socket,
no clock, only ``bytes`` in and dataclasses out (``client.py`` does the I/O).

Everything is big-endian and packed, strings are NUL-padded fixed-size fields.
The layouts are those of lttng-relayd 2.13 (``lttng-viewer-abi.h``); we announce
protocol 2.13 in CONNECT, so a 2.15 relayd keeps sending the 2.13 session list.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import TypeVar

_E = TypeVar("_E", bound=IntEnum)

PROTOCOL_MAJOR = 2
#: Minor version we speak; relayd answers with its own and both use the minimum.
PROTOCOL_MINOR = 13
#: Oldest relayd minor we accept (CREATE_SESSION and GET_NEW_STREAMS appeared in 2.4).
MIN_PROTOCOL_MINOR = 4

#: Bounds applied to counts and lengths read from the wire, before allocating.
MAX_SESSIONS = 100_000
MAX_STREAMS = 100_000
MAX_PACKET_LEN = 256 * 1024 * 1024
MAX_METADATA_LEN = 256 * 1024 * 1024

HOST_NAME_MAX = 64
NAME_MAX = 255
PATH_MAX = 4096


class ProtocolError(Exception):
    """The peer sent something that does not follow the viewer protocol."""


class Command(IntEnum):
    CONNECT = 1
    LIST_SESSIONS = 2
    ATTACH_SESSION = 3
    GET_NEXT_INDEX = 4
    GET_PACKET = 5
    GET_METADATA = 6
    GET_NEW_STREAMS = 7
    CREATE_SESSION = 8
    DETACH_SESSION = 9


class ConnectionType(IntEnum):
    COMMAND = 1
    NOTIFICATION = 2


class SeekType(IntEnum):
    BEGINNING = 1
    LAST = 2


class AttachStatus(IntEnum):
    OK = 1
    ALREADY = 2
    UNKNOWN = 3
    NOT_LIVE = 4
    SEEK_ERROR = 5
    NO_SESSION = 6


class NewStreamsStatus(IntEnum):
    OK = 1
    NO_NEW = 2
    ERROR = 3
    HUP = 4


class CreateSessionStatus(IntEnum):
    OK = 1
    ERROR = 2


class MetadataStatus(IntEnum):
    OK = 1
    NO_NEW = 2
    ERROR = 3
    HUP = 4  # declared by old relayds, not sent by 2.13


class IndexStatus(IntEnum):
    OK = 1
    RETRY = 2
    HUP = 3
    ERROR = 4
    INACTIVE = 5
    EOF = 6


class PacketStatus(IntEnum):
    OK = 1
    RETRY = 2
    ERROR = 3
    EOF = 4


class DetachStatus(IntEnum):
    OK = 1
    UNKNOWN = 2
    ERROR = 3


class ViewerFlag(IntFlag):
    """Flags of GET_NEXT_INDEX and GET_PACKET replies."""

    NONE = 0
    NEW_METADATA = 1
    NEW_STREAM = 2


HEADER = struct.Struct(">QII")  # data_size, cmd, cmd_version
CONNECT = struct.Struct(">QIII")  # viewer_session_id, major, minor, type
COUNT = struct.Struct(">I")
SESSION = struct.Struct(f">QIII{HOST_NAME_MAX}s{NAME_MAX}s")
STREAM = struct.Struct(f">QQI{PATH_MAX}s{NAME_MAX}s")
ID_REQUEST = struct.Struct(">Q")  # session id or stream id
ATTACH_REQUEST = struct.Struct(">QQI")  # session_id, offset (unused), seek
STREAMS_REPLY = struct.Struct(">II")  # status, streams_count
STATUS_REPLY = struct.Struct(">I")
METADATA_REPLY = struct.Struct(">QI")  # len, status
INDEX_REPLY = struct.Struct(">QQQQQQQII")
PACKET_REQUEST = struct.Struct(">QQI")  # stream_id, offset, len
PACKET_REPLY = struct.Struct(">III")  # status, len, flags

assert SESSION.size == 339 and STREAM.size == 4371 and INDEX_REPLY.size == 64


@dataclass(frozen=True)
class ConnectReply:
    viewer_session_id: int
    major: int
    minor: int
    connection_type: int


@dataclass(frozen=True)
class SessionInfo:
    """One relay session, as LIST_SESSIONS describes it."""

    id: int
    live_timer_us: int
    clients: int
    streams: int
    hostname: str
    name: str


@dataclass(frozen=True)
class StreamInfo:
    """One relay stream, as ATTACH_SESSION and GET_NEW_STREAMS describe it.

    ``id`` is relayd's stream handle (valid for this relayd process only);
    ``ctf_trace_id`` groups the streams sharing one metadata stream; ``path_name``
    is the trace directory relative to relayd's output and ``channel_name`` the
    stream file name in it (``metadata`` or ``CHANNEL_CPU``).
    """

    id: int
    ctf_trace_id: int
    metadata_flag: bool
    path_name: str
    channel_name: str

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the stream that survives reconnections and relayd restarts."""
        return (self.path_name, self.channel_name)


@dataclass(frozen=True)
class Index:
    """Reply of GET_NEXT_INDEX: where the next packet is, or why there is none."""

    offset: int
    packet_size: int  # bits
    content_size: int  # bits
    timestamp_begin: int
    timestamp_end: int
    events_discarded: int
    stream_class_id: int  # CTF stream class id (``stream_id`` in the packet header)
    status: IndexStatus
    flags: ViewerFlag

    @property
    def packet_length(self) -> int:
        """Bytes to request with GET_PACKET."""
        return self.packet_size // 8


@dataclass(frozen=True)
class StreamsReply:
    """Fixed part of ATTACH_SESSION / GET_NEW_STREAMS replies (streams follow)."""

    status: int
    count: int


@dataclass(frozen=True)
class MetadataReply:
    """Fixed part of a GET_METADATA reply (``length`` bytes follow when OK)."""

    length: int
    status: MetadataStatus


@dataclass(frozen=True)
class PacketReply:
    """Fixed part of a GET_PACKET reply (``length`` bytes follow when OK)."""

    status: PacketStatus
    length: int
    flags: ViewerFlag


def _enum(cls: type[_E], value: int, what: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        raise ProtocolError(f"unknown {what} status {value}") from None


# GET_NEXT_INDEX and GET_PACKET replies come several times per stream and second: plain
# dict lookups instead of the (slow, pure-Python) enum constructors and flag arithmetic
_INDEX_STATUS = {int(v): v for v in IndexStatus}
_PACKET_STATUS = {int(v): v for v in PacketStatus}
_FLAGS_MASK = int(ViewerFlag.NEW_METADATA | ViewerFlag.NEW_STREAM)
_FLAGS = {i: ViewerFlag(i) for i in range(_FLAGS_MASK + 1)}


def _need(data: bytes, size: int, what: str) -> None:
    if len(data) != size:
        raise ProtocolError(f"{what}: expected {size} bytes, got {len(data)}")


def decode_cstring(raw: bytes) -> str:
    """Decode a NUL-padded fixed-size string field."""
    return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def encode_cstring(text: str, size: int) -> bytes:
    """Encode ``text`` into a NUL-padded field of ``size`` bytes (NUL-terminated)."""
    raw = text.encode("utf-8")
    if len(raw) >= size:
        raise ValueError(f"string of {len(raw)} bytes does not fit a {size}-byte field")
    return raw.ljust(size, b"\0")


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------


def pack_command(cmd: Command, payload: bytes = b"") -> bytes:
    """Header and payload of one request, to be sent in a single write."""
    return HEADER.pack(len(payload), int(cmd), 0) + payload


def pack_connect(
    major: int = PROTOCOL_MAJOR,
    minor: int = PROTOCOL_MINOR,
    viewer_session_id: int = 0,
) -> bytes:
    payload = CONNECT.pack(viewer_session_id, major, minor, ConnectionType.COMMAND)
    return pack_command(Command.CONNECT, payload)


def pack_list_sessions() -> bytes:
    return pack_command(Command.LIST_SESSIONS)


def pack_create_session() -> bytes:
    return pack_command(Command.CREATE_SESSION)


def pack_attach(session_id: int, seek: SeekType) -> bytes:
    return pack_command(Command.ATTACH_SESSION, ATTACH_REQUEST.pack(session_id, 0, int(seek)))


def pack_get_new_streams(session_id: int) -> bytes:
    return pack_command(Command.GET_NEW_STREAMS, ID_REQUEST.pack(session_id))


def pack_get_metadata(stream_id: int) -> bytes:
    return pack_command(Command.GET_METADATA, ID_REQUEST.pack(stream_id))


def pack_get_next_index(stream_id: int) -> bytes:
    return pack_command(Command.GET_NEXT_INDEX, ID_REQUEST.pack(stream_id))


def pack_get_packet(stream_id: int, offset: int, length: int) -> bytes:
    if not 0 < length <= MAX_PACKET_LEN:
        raise ProtocolError(f"packet length {length} outside 1..{MAX_PACKET_LEN}")
    return pack_command(Command.GET_PACKET, PACKET_REQUEST.pack(stream_id, offset, length))


def pack_detach(session_id: int) -> bytes:
    return pack_command(Command.DETACH_SESSION, ID_REQUEST.pack(session_id))


# ---------------------------------------------------------------------------
# Replies (each function takes exactly the bytes of its struct)
# ---------------------------------------------------------------------------


def unpack_connect(data: bytes) -> ConnectReply:
    _need(data, CONNECT.size, "CONNECT reply")
    session_id, major, minor, ctype = CONNECT.unpack(data)
    if major != PROTOCOL_MAJOR:
        raise ProtocolError(f"relayd speaks protocol {major}.{minor}, need {PROTOCOL_MAJOR}.x")
    return ConnectReply(session_id, major, minor, ctype)


def unpack_session_count(data: bytes) -> int:
    _need(data, COUNT.size, "LIST_SESSIONS count")
    (count,) = COUNT.unpack(data)
    if count > MAX_SESSIONS:
        raise ProtocolError(f"session count {count} exceeds {MAX_SESSIONS}")
    return int(count)


def unpack_session(data: bytes) -> SessionInfo:
    _need(data, SESSION.size, "session entry")
    sid, live_timer, clients, streams, hostname, name = SESSION.unpack(data)
    return SessionInfo(
        id=sid,
        live_timer_us=live_timer,
        clients=clients,
        streams=streams,
        hostname=decode_cstring(hostname),
        name=decode_cstring(name),
    )


def unpack_sessions(data: bytes, count: int) -> list[SessionInfo]:
    _need(data, count * SESSION.size, "session list")
    size = SESSION.size
    return [unpack_session(data[i * size : (i + 1) * size]) for i in range(count)]


def unpack_create_session(data: bytes) -> CreateSessionStatus:
    _need(data, STATUS_REPLY.size, "CREATE_SESSION reply")
    return _enum(CreateSessionStatus, STATUS_REPLY.unpack(data)[0], "create session")


def _unpack_streams_reply(data: bytes, what: str) -> tuple[int, int]:
    _need(data, STREAMS_REPLY.size, what)
    status, count = STREAMS_REPLY.unpack(data)
    if count > MAX_STREAMS:
        raise ProtocolError(f"{what}: stream count {count} exceeds {MAX_STREAMS}")
    return int(status), int(count)


def unpack_attach_reply(data: bytes) -> tuple[AttachStatus, int]:
    """Status and number of stream entries that follow."""
    status, count = _unpack_streams_reply(data, "ATTACH_SESSION reply")
    return _enum(AttachStatus, status, "attach"), count


def unpack_new_streams_reply(data: bytes) -> tuple[NewStreamsStatus, int]:
    """Status and number of stream entries that follow."""
    status, count = _unpack_streams_reply(data, "GET_NEW_STREAMS reply")
    return _enum(NewStreamsStatus, status, "new streams"), count


def unpack_stream(data: bytes) -> StreamInfo:
    _need(data, STREAM.size, "stream entry")
    sid, trace_id, metadata_flag, path_name, channel_name = STREAM.unpack(data)
    return StreamInfo(
        id=sid,
        ctf_trace_id=trace_id,
        metadata_flag=bool(metadata_flag),
        path_name=decode_cstring(path_name),
        channel_name=decode_cstring(channel_name),
    )


def unpack_metadata_reply(data: bytes) -> MetadataReply:
    _need(data, METADATA_REPLY.size, "GET_METADATA reply")
    length, status = METADATA_REPLY.unpack(data)
    if length > MAX_METADATA_LEN:
        raise ProtocolError(f"metadata length {length} exceeds {MAX_METADATA_LEN}")
    return MetadataReply(int(length), _enum(MetadataStatus, status, "metadata"))


def unpack_index(data: bytes) -> Index:
    _need(data, INDEX_REPLY.size, "GET_NEXT_INDEX reply")
    offset, psize, csize, tsb, tse, discarded, scid, status, flags = INDEX_REPLY.unpack(data)
    index = Index(
        offset=offset,
        packet_size=psize,
        content_size=csize,
        timestamp_begin=tsb,
        timestamp_end=tse,
        events_discarded=discarded,
        stream_class_id=scid,
        status=_INDEX_STATUS.get(status) or _enum(IndexStatus, status, "index"),
        flags=_FLAGS[flags & _FLAGS_MASK],
    )
    if index.status is IndexStatus.OK:
        if psize % 8 or not 0 < psize // 8 <= MAX_PACKET_LEN:
            raise ProtocolError(f"index packet size {psize} bits is not a valid length")
        if csize > psize:
            raise ProtocolError(f"index content size {csize} > packet size {psize}")
    return index


def unpack_packet_reply(data: bytes) -> PacketReply:
    _need(data, PACKET_REPLY.size, "GET_PACKET reply")
    status, length, flags = PACKET_REPLY.unpack(data)
    if length > MAX_PACKET_LEN:
        raise ProtocolError(f"packet length {length} exceeds {MAX_PACKET_LEN}")
    return PacketReply(
        status=_PACKET_STATUS.get(status) or _enum(PacketStatus, status, "packet"),
        length=int(length),
        flags=_FLAGS[flags & _FLAGS_MASK],
    )


def unpack_detach(data: bytes) -> DetachStatus:
    _need(data, STATUS_REPLY.size, "DETACH_SESSION reply")
    return _enum(DetachStatus, STATUS_REPLY.unpack(data)[0], "detach")
