"""Wire format, bounds and URL parsing of the live viewer (no daemon needed).

The byte layouts are checked against hand-written big-endian structs of
lttng-viewer-abi.h; the client's defences against a hostile or broken peer are
checked with a scripted loopback TCP server that answers fixed bytes.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from tracewatch.live import protocol as p
from tracewatch.live.client import ConnectionLostError, LiveClient, NotConnectedError
from tracewatch.live.protocol import (
    AttachStatus,
    Command,
    IndexStatus,
    MetadataStatus,
    NewStreamsStatus,
    PacketStatus,
    ProtocolError,
    SeekType,
    ViewerFlag,
)
from tracewatch.live.url import DEFAULT_LIVE_PORT, LiveUrl, parse_live_url

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------


def header(size: int, cmd: int) -> bytes:
    return struct.pack(">QII", size, cmd, 0)


def test_struct_sizes_match_the_abi() -> None:
    assert p.HEADER.size == 16
    assert p.CONNECT.size == 20
    assert p.SESSION.size == 8 + 4 + 4 + 4 + 64 + 255 == 339
    assert p.STREAM.size == 8 + 8 + 4 + 4096 + 255 == 4371
    assert p.INDEX_REPLY.size == 7 * 8 + 4 + 4 == 64
    assert p.PACKET_REPLY.size == 12 and p.METADATA_REPLY.size == 12


def test_connect_request_bytes() -> None:
    assert p.pack_connect() == header(20, 1) + struct.pack(">QIII", 0, 2, 13, 1)


@pytest.mark.parametrize(
    ("packed", "cmd", "payload"),
    [
        (p.pack_list_sessions(), Command.LIST_SESSIONS, b""),
        (p.pack_create_session(), Command.CREATE_SESSION, b""),
        (p.pack_attach(7, SeekType.LAST), Command.ATTACH_SESSION, struct.pack(">QQI", 7, 0, 2)),
        (p.pack_get_new_streams(7), Command.GET_NEW_STREAMS, struct.pack(">Q", 7)),
        (p.pack_get_metadata(9), Command.GET_METADATA, struct.pack(">Q", 9)),
        (p.pack_get_next_index(9), Command.GET_NEXT_INDEX, struct.pack(">Q", 9)),
        (p.pack_get_packet(9, 4096, 512), Command.GET_PACKET, struct.pack(">QQI", 9, 4096, 512)),
        (p.pack_detach(7), Command.DETACH_SESSION, struct.pack(">Q", 7)),
    ],
)
def test_request_bytes(packed: bytes, cmd: Command, payload: bytes) -> None:
    assert packed == header(len(payload), cmd) + payload


@pytest.mark.parametrize("length", [0, p.MAX_PACKET_LEN + 1])
def test_packet_request_length_is_bounded(length: int) -> None:
    with pytest.raises(ProtocolError):
        p.pack_get_packet(1, 0, length)


# ---------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------


def session_entry(sid: int, hostname: bytes, name: bytes) -> bytes:
    return struct.pack(">QIII64s255s", sid, 1_000_000, 1, 4, hostname, name)


def stream_entry(sid: int, trace: int, meta: int, path: bytes, chan: bytes) -> bytes:
    return struct.pack(">QQI4096s255s", sid, trace, meta, path, chan)


def index_reply(status: int, psize: int = 8 * 4096, csize: int = 8 * 100, flags: int = 0) -> bytes:
    return struct.pack(">QQQQQQQII", 4096, psize, csize, 10, 20, 0, 1, status, flags)


def test_connect_reply() -> None:
    reply = p.unpack_connect(struct.pack(">QIII", 42, 2, 13, 1))
    assert (reply.viewer_session_id, reply.major, reply.minor) == (42, 2, 13)
    with pytest.raises(ProtocolError, match="protocol 3"):
        p.unpack_connect(struct.pack(">QIII", 42, 3, 0, 1))


def test_session_entry_decoding() -> None:
    info = p.unpack_session(session_entry(3, b"myhost", b"my-session"))
    assert info == p.SessionInfo(3, 1_000_000, 1, 4, "myhost", "my-session")
    two = session_entry(1, b"a", b"x") + session_entry(2, b"b", b"y")
    assert [s.id for s in p.unpack_sessions(two, 2)] == [1, 2]


def test_session_count_is_bounded() -> None:
    assert p.unpack_session_count(struct.pack(">I", p.MAX_SESSIONS)) == p.MAX_SESSIONS
    with pytest.raises(ProtocolError, match="session count"):
        p.unpack_session_count(struct.pack(">I", p.MAX_SESSIONS + 1))


def test_stream_entry_decoding() -> None:
    info = p.unpack_stream(stream_entry(5, 2, 0, b"ust/uid/0/64-bit", b"channel0_1"))
    assert (info.id, info.ctf_trace_id, info.metadata_flag) == (5, 2, False)
    assert info.key == ("ust/uid/0/64-bit", "channel0_1")
    assert p.unpack_stream(stream_entry(6, 2, 1, b"p", b"metadata")).metadata_flag


def test_streams_replies_and_bounds() -> None:
    assert p.unpack_attach_reply(struct.pack(">II", 2, 0)) == (AttachStatus.ALREADY, 0)
    assert p.unpack_new_streams_reply(struct.pack(">II", 4, 0)) == (NewStreamsStatus.HUP, 0)
    with pytest.raises(ProtocolError, match="stream count"):
        p.unpack_attach_reply(struct.pack(">II", 1, p.MAX_STREAMS + 1))
    with pytest.raises(ProtocolError, match="unknown attach status 9"):
        p.unpack_attach_reply(struct.pack(">II", 9, 0))


def test_metadata_reply_and_bound() -> None:
    reply = p.unpack_metadata_reply(struct.pack(">QI", 100, 1))
    assert (reply.length, reply.status) == (100, MetadataStatus.OK)
    with pytest.raises(ProtocolError, match="metadata length"):
        p.unpack_metadata_reply(struct.pack(">QI", p.MAX_METADATA_LEN + 1, 1))


def test_index_reply() -> None:
    index = p.unpack_index(index_reply(1, flags=3 | 0x80))
    assert index.status is IndexStatus.OK and index.packet_length == 4096
    assert index.flags == ViewerFlag.NEW_METADATA | ViewerFlag.NEW_STREAM  # unknown bits dropped
    assert (index.timestamp_begin, index.timestamp_end, index.stream_class_id) == (10, 20, 1)
    beacon = p.unpack_index(index_reply(5, psize=0, csize=0))
    assert beacon.status is IndexStatus.INACTIVE and beacon.timestamp_end == 20


@pytest.mark.parametrize(
    ("psize", "csize"),
    [(0, 0), (8 * p.MAX_PACKET_LEN + 8, 0), (8 * 4096 + 3, 0), (8 * 4096, 8 * 4097)],
)
def test_index_reply_rejects_bad_sizes(psize: int, csize: int) -> None:
    with pytest.raises(ProtocolError):
        p.unpack_index(index_reply(1, psize=psize, csize=csize))


def test_packet_reply_and_bound() -> None:
    reply = p.unpack_packet_reply(struct.pack(">III", 2, 0, 1))
    assert (reply.status, reply.flags) == (PacketStatus.RETRY, ViewerFlag.NEW_METADATA)
    with pytest.raises(ProtocolError, match="packet length"):
        p.unpack_packet_reply(struct.pack(">III", 1, p.MAX_PACKET_LEN + 1, 0))


def test_short_replies_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        p.unpack_index(b"\0" * 63)
    with pytest.raises(ProtocolError):
        p.unpack_detach(b"")


def test_cstrings() -> None:
    assert p.decode_cstring(b"abc\0\0garbage") == "abc"
    assert p.decode_cstring(b"\xff\0") == "\ufffd"
    assert p.encode_cstring("ab", 4) == b"ab\0\0"
    with pytest.raises(ValueError):
        p.encode_cstring("abcd", 4)


# ---------------------------------------------------------------------------
# The client against a scripted peer
# ---------------------------------------------------------------------------


class ScriptedPeer:
    """Loopback server: reads each request, answers the next canned reply."""

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = replies
        self.requests: list[tuple[int, bytes]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            for reply in self.replies:
                head = conn.recv(16, socket.MSG_WAITALL)
                if len(head) < 16:
                    return
                size, cmd, _ = struct.unpack(">QII", head)
                payload = conn.recv(size, socket.MSG_WAITALL) if size else b""
                self.requests.append((cmd, payload))
                conn.sendall(reply)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> Iterator[ScriptedPeer]:
    server = ScriptedPeer(request.param)
    yield server
    server.close()


CONNECT_OK = struct.pack(">QIII", 1, 2, 13, 1)


@pytest.mark.parametrize("peer", [[CONNECT_OK, struct.pack(">I", 200_000)]], indirect=True)
def test_client_refuses_huge_session_count(peer: ScriptedPeer) -> None:
    with LiveClient("127.0.0.1", peer.port, 2) as client:
        assert client.relayd_minor == 13
        with pytest.raises(ProtocolError, match="session count"):
            client.list_sessions()
    assert peer.requests[0] == (Command.CONNECT, struct.pack(">QIII", 0, 2, 13, 1))


@pytest.mark.parametrize("peer", [[CONNECT_OK, struct.pack(">III", 1, 8192, 0)]], indirect=True)
def test_client_refuses_packet_longer_than_asked(peer: ScriptedPeer) -> None:
    with LiveClient("127.0.0.1", peer.port, 2) as client:
        with pytest.raises(ProtocolError, match="asked 4096"):
            client.get_packet(1, 0, 4096)
        assert not client.connected  # the byte stream cannot be trusted any more


@pytest.mark.parametrize(
    "peer", [[CONNECT_OK, struct.pack(">III", 2, 0, 0), struct.pack(">QI", 0, 2)]], indirect=True
)
def test_client_statuses(peer: ScriptedPeer) -> None:
    with LiveClient("127.0.0.1", peer.port, 2) as client:
        assert client.get_packet(3, 0, 64) is PacketStatus.RETRY
        assert client.get_metadata(4) is None


@pytest.mark.parametrize(
    "peer", [[CONNECT_OK, struct.pack(">QI", 10, 1) + b"short"]], indirect=True
)
def test_client_truncated_reply_is_a_lost_connection(peer: ScriptedPeer) -> None:
    with LiveClient("127.0.0.1", peer.port, 2) as client:
        with pytest.raises(ConnectionLostError):
            client.get_metadata(1)
        with pytest.raises(NotConnectedError):
            client.list_sessions()


def test_client_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        with pytest.raises(ConnectionLostError):
            LiveClient("127.0.0.1", port, 1).connect()


# ---------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("net://localhost", LiveUrl("localhost", DEFAULT_LIVE_PORT)),
        ("net://127.0.0.1:15344", LiveUrl("127.0.0.1", 15344)),
        ("net://relay.example.org/", LiveUrl("relay.example.org")),
        ("net://[::1]", LiveUrl("::1")),
        ("net://[::1]:6000/host/vm-1/my_sess", LiveUrl("::1", 6000, "vm-1", "my_sess")),
        (
            "net://10.0.0.2/host/h/auto-20240101-000000",
            LiveUrl("10.0.0.2", 5344, "h", "auto-20240101-000000"),
        ),
        ("NET4://h:1/host/a.b/s", LiveUrl("h", 1, "a.b", "s")),
    ],
)
def test_parse_valid_urls(url: str, expected: LiveUrl) -> None:
    parsed = parse_live_url(url)
    assert parsed == expected
    assert parse_live_url(str(parsed)) == parsed
    assert parsed.names_session == (expected.session_name is not None)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "localhost:5344",
        "tcp://localhost",
        "net://",
        "net://:5344",
        "net://host:",
        "net://host:0",
        "net://host:65536",
        "net://host:12ab",
        "net://::1",
        "net://[::1",
        "net://[nothex]:1",
        "net://[::1]x",
        "net://host/host/h",
        "net://host/host/h/s/extra",
        "net://host/session/h/s",
        "net://host/host//s",
        "net://host/host/h/",
        "net://ho st/host/h/s",
        "net://host?x=1",
        "net://user@host",
        "net://-bad-/host/h/s",
    ],
)
def test_parse_invalid_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_live_url(url)


def test_url_str_brackets_ipv6() -> None:
    assert str(LiveUrl("::1", 5344, "h", "s")) == "net://[::1]:5344/host/h/s"
