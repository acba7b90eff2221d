"""Live viewer against real daemons: lttng-sessiond, a private lttng-relayd, a traced C app.

The oracle is what relayd wrote to disk: its index files list every packet of every
stream (offset and timestamps), its stream files hold the bytes, and babeltrace2
decodes both the on-disk trace and the trace rebuilt from what the viewer received.
"""

from __future__ import annotations

import socket
import statistics
import struct
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from tracewatch.live import (
    AttachStatus,
    DetachStatus,
    Inactivity,
    IndexStatus,
    LiveClient,
    LiveItem,
    LiveSession,
    MetadataUpdate,
    NewStream,
    NewStreamsStatus,
    Packet,
    SessionBusyError,
    SessionEnd,
    SessionNotFoundError,
    StreamEnd,
)

if TYPE_CHECKING:  # fixtures' types, defined in conftest.py
    from conftest import LttngSessions, Relayd, TcpProxy, UstApp

pytestmark = [pytest.mark.live, pytest.mark.timeout(90)]

HOSTNAME = socket.gethostname()
INDEX_MAGIC = 0xC1F1DCC1
# Packetized metadata magic 0x75D11D57, in the trace's byte order.
METADATA_MAGICS = (bytes.fromhex("75d11d57"), bytes.fromhex("571dd175"))
LIVE_TIMER_US = 1_000_000  # what conftest's sessions use (lttng create --live)
TIMINGS: dict[str, str] = {}
T = TypeVar("T")


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


class Collector:
    """Runs ``LiveSession.poll`` in a thread and records (monotonic time, item)."""

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.items: list[tuple[float, LiveItem]] = []
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and not self.session.ended:
                for item in self.session.poll(0.2):
                    with self._lock:
                        self.items.append((time.monotonic(), item))
        except BaseException as exc:  # reported by the test thread
            self.error = exc

    def snapshot(self) -> list[LiveItem]:
        with self._lock:
            return [item for _, item in self.items]

    def of(self, kind: type[T]) -> list[T]:
        return [i for i in self.snapshot() if isinstance(i, kind)]

    def wait_for(self, pred: Callable[[Collector], bool], timeout: float, what: str) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.error is not None:
                raise self.error
            if pred(self):
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.error is not None:
            raise self.error


def ended(c: Collector) -> bool:
    return bool(c.of(SessionEnd))


def packets_at_least(n: int) -> Callable[[Collector], bool]:
    return lambda c: len(c.of(Packet)) >= n


def reconnected(n: int = 1) -> Callable[[Collector], bool]:
    return lambda c: c.session.connected and c.session.reconnects >= n


def replayed(skipped_before: int) -> Callable[[Collector], bool]:
    return lambda c: c.session.duplicates_skipped > skipped_before


def read_index(path: Path) -> list[tuple[int, int, int, int]]:
    """(offset, packet_size bits, timestamp_begin, timestamp_end) of a CTF index file."""
    raw = path.read_bytes()
    magic, _major, _minor, entry = struct.unpack(">IIII", raw[:16])
    assert magic == INDEX_MAGIC
    out = []
    for pos in range(16, len(raw) - entry + 1, entry):
        offset, psize, _csize, tsb, tse = struct.unpack(">QQQQQ", raw[pos : pos + 40])
        out.append((offset, psize, tsb, tse))
    return out


def disk_streams(session_dir: Path) -> dict[tuple[str, str], list[tuple[int, int, int, int]]]:
    """(trace path, channel file) -> index entries, for one relayd session directory."""
    out = {}
    for idx in sorted(session_dir.glob("**/index/*.idx")):
        trace_dir = idx.parent.parent
        out[(str(trace_dir.relative_to(session_dir)), idx.stem)] = read_index(idx)
    return out


def received_streams(items: list[LiveItem]) -> dict[int, tuple[str, str]]:
    """Our stream id -> (trace path, channel file)."""
    return {
        i.stream_id: (i.stream_info.path_name, i.stream_info.channel_name)
        for i in items
        if isinstance(i, NewStream)
    }


def packets_by_stream(
    items: list[LiveItem], trace_id: int | None = None
) -> dict[int, list[Packet]]:
    out: dict[int, list[Packet]] = defaultdict(list)
    for i in items:
        if isinstance(i, Packet) and (trace_id is None or i.trace_id == trace_id):
            out[i.stream_id].append(i)
    return out


def assert_no_duplicates(items: list[LiveItem]) -> None:
    for sid, packets in packets_by_stream(items).items():
        pairs = [(p.index.timestamp_begin, p.index.timestamp_end) for p in packets]
        assert pairs == sorted(set(pairs)), f"stream {sid}: packet delivered twice or out of order"


def assert_matches_disk(
    items: list[LiveItem], trace_id: int, session_dir: Path, *, prefix_ok: bool = False
) -> int:
    """The packets of ``trace_id`` are those relayd indexed on disk, byte for byte.

    With ``prefix_ok`` each stream may lack a tail of packets (relayd died before we
    fetched them); returns how many packets are missing in all.
    """
    names = received_streams(items)
    got = packets_by_stream(items, trace_id)
    disk = disk_streams(session_dir)
    missing = 0
    for key, entries in disk.items():
        sids = [sid for sid, k in names.items() if k == key and sid in got]
        packets = got[sids[0]] if sids else []
        recv = [
            (p.index.offset, p.index.packet_size, p.index.timestamp_begin, p.index.timestamp_end)
            for p in packets
        ]
        if prefix_ok:
            assert recv == entries[: len(recv)], f"{key}: received packets are not a prefix of disk"
            missing += len(entries) - len(recv)
        else:
            assert recv == entries, f"{key}: received {len(recv)} packets, disk has {len(entries)}"
        data = (session_dir / key[0] / key[1]).read_bytes()
        for p in packets:
            assert p.packet_bytes == data[p.index.offset : p.index.offset + p.index.packet_length]
    return missing


def write_received(items: list[LiveItem], session: LiveSession, trace_id: int, out: Path) -> Path:
    """Rebuild a CTF trace directory from the received metadata and packets."""
    out.mkdir(parents=True)
    (out / "metadata").write_bytes(session.metadata(trace_id))
    names = received_streams(items)
    for sid, packets in packets_by_stream(items, trace_id).items():
        (out / names[sid][1]).write_bytes(b"".join(p.packet_bytes for p in packets))
    return out


def bt_events(trace_dir: Path) -> list[str]:
    """Event lines (clock cycles, no delta) that babeltrace2 reads from a trace."""
    proc = subprocess.run(
        ["babeltrace2", "--clock-cycles", "--no-delta", str(trace_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return sorted(line for line in proc.stdout.splitlines() if "tracewatch_test:seq" in line)


def seqs_of(lines: list[str], pid: int) -> list[int]:
    out = []
    for line in lines:
        if f"vpid = {pid} " in line:
            out.append(int(line.rsplit("seq = ", 1)[1].rstrip(" }")))
    return sorted(out)


def assert_item_order(items: list[LiveItem]) -> None:
    """Metadata before a trace's streams, NewStream before packets, SessionEnd last."""
    seen_meta: set[int] = set()
    seen_streams: set[int] = set()
    ended_streams: set[int] = set()
    for i, item in enumerate(items):
        if isinstance(item, MetadataUpdate):
            assert item.new_bytes
            if item.trace_id not in seen_meta:
                assert item.new_bytes[:4] in METADATA_MAGICS
            seen_meta.add(item.trace_id)
        elif isinstance(item, NewStream):
            assert item.trace_id in seen_meta
            seen_streams.add(item.stream_id)
        elif isinstance(item, Packet | Inactivity):
            assert item.stream_id in seen_streams and item.stream_id not in ended_streams
        elif isinstance(item, StreamEnd):
            ended_streams.add(item.stream_id)
        elif isinstance(item, SessionEnd):
            assert i == len(items) - 1
    assert ended_streams == seen_streams, "every stream ends before SessionEnd"


def wait_listed(relayd: Relayd, name: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with LiveClient("127.0.0.1", relayd.live_port, 5) as client:
            if any(s.name == name for s in client.list_sessions()):
                return
        time.sleep(0.1)
    raise AssertionError(f"relay session {name} never listed")


def open_session(relayd: Relayd, name: str, port: int | None = None, **kw: float) -> LiveSession:
    wait_listed(relayd, name)
    url = f"net://127.0.0.1:{port or relayd.live_port}/host/{HOSTNAME}/{name}"
    session = LiveSession(url, **kw)  # type: ignore[arg-type]
    session.open()
    return session


@pytest.fixture(scope="module", autouse=True)
def _print_timings() -> object:
    yield
    for key, value in TIMINGS.items():
        print(f"\n[live timing] {key}: {value}")


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_list_sessions_shows_session_and_live_timer(
    relayd: Relayd, lttng_session: LttngSessions
) -> None:
    """LIST_SESSIONS reports our session: hostname, name, live timer, no viewer yet."""
    name = lttng_session.create()
    wait_listed(relayd, name)
    with LiveClient("127.0.0.1", relayd.live_port, 5) as client:
        assert client.relayd_minor is not None and client.relayd_minor >= 4
        (info,) = [s for s in client.list_sessions() if s.name == name]
    assert info.hostname == HOSTNAME
    assert info.live_timer_us == LIVE_TIMER_US
    assert info.clients == 0
    missing = f"net://127.0.0.1:{relayd.live_port}/host/{HOSTNAME}/no-such-session"
    with pytest.raises(SessionNotFoundError):
        LiveSession(missing).open()


def test_packets_match_relayd_disk_output(
    relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp, tmp_path: Path
) -> None:
    """Attach before the app starts; every packet relayd stored arrives once, byte-exact.

    Proves: periodic GET_NEW_STREAMS finds streams created after the attach, metadata
    comes first, packets equal relayd's files at the indexed offsets, and babeltrace2
    decodes the received trace into exactly the N events of the app.
    """
    name = lttng_session.create()
    wait_listed(relayd, name)
    with LiveClient("127.0.0.1", relayd.live_port, 5) as client:
        (listed,) = [s for s in client.list_sessions() if s.name == name]
    session = open_session(relayd, name)
    collector = Collector(session)
    pid = ust_app.run(400, 5000)
    collector.wait_for(packets_at_least(2), 10, "packets")
    lttng_session.destroy(name)
    t_destroy = time.monotonic()
    collector.wait_for(ended, 15, "SessionEnd")
    t_end = next(t for t, i in collector.items if isinstance(i, SessionEnd))
    collector.stop()
    items = collector.snapshot()

    assert_item_order(items)
    assert_no_duplicates(items)
    assert items[-1] == SessionEnd("destroyed")
    # Per-UID buffers appear when an app registers: unless another root app ran,
    # the attach saw no stream and GET_NEW_STREAMS found them later.
    TIMINGS["streams when attaching (0: found later by GET_NEW_STREAMS)"] = str(listed.streams)
    (session_dir,) = relayd.session_dirs(name)
    assert_matches_disk(items, 0, session_dir)
    trace_dir = next(p.parent for p in session_dir.glob("**/metadata"))
    assert session.metadata(0) == (trace_dir / "metadata").read_bytes()
    rebuilt = write_received(items, session, 0, tmp_path / "received")
    events = bt_events(rebuilt)
    assert events == bt_events(session_dir)
    assert seqs_of(events, pid) == list(range(400))

    packets = [i for i in items if isinstance(i, Packet)]
    flush_lat = [(p.received_ns - p.index.timestamp_end) / 1e6 for p in packets]
    event_lat = [(p.received_ns - p.index.timestamp_begin) / 1e6 for p in packets]
    TIMINGS["packet end -> receipt (ms), live timer 1 s"] = (
        f"median {statistics.median(flush_lat):.0f}, max {max(flush_lat):.0f}"
    )
    TIMINGS["packet begin -> receipt (ms, bound on event latency)"] = (
        f"median {statistics.median(event_lat):.0f}, max {max(event_lat):.0f}"
    )
    TIMINGS["lttng destroy returned -> SessionEnd (s)"] = f"{t_end - t_destroy:.2f}"


def test_raw_client_commands(relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp) -> None:
    """LiveClient's commands one by one on a real relayd: attach, metadata until
    none is new, next index until a packet, the packet itself, detach."""
    name = lttng_session.create()
    ust_app.run(50, 1000)
    wait_listed(relayd, name)
    with LiveClient("127.0.0.1", relayd.live_port, 5) as client:
        client.create_viewer_session()
        (info,) = [s for s in client.list_sessions() if s.name == name]
        deadline = time.monotonic() + 10
        streams = client.attach(info.id, "beginning")
        while len(streams) < 2 and time.monotonic() < deadline:  # metadata + data
            time.sleep(0.2)
            status, new = client.get_new_streams(info.id)
            assert status is NewStreamsStatus.OK
            streams += new
        (meta,) = [s for s in streams if s.metadata_flag]
        data = [s for s in streams if not s.metadata_flag]
        assert data and all(s.ctf_trace_id == meta.ctf_trace_id for s in data)
        metadata = b""
        while time.monotonic() < deadline:
            chunk = client.get_metadata(meta.id)
            if chunk is None and metadata:
                break
            metadata += chunk or b""
            time.sleep(0.05 if chunk is None else 0)
        assert metadata[:4] in METADATA_MAGICS and b"tracewatch_test" in metadata
        got = None
        while got is None and time.monotonic() < deadline:
            for stream in data:
                index = client.get_next_index(stream.id)
                if index.status is IndexStatus.OK:
                    got = (stream, index)
                    break
            time.sleep(0.1)
        assert got is not None, "no packet within 10 s"
        stream, index = got
        packet = client.get_packet(stream.id, index.offset, index.packet_length)
        assert isinstance(packet, bytes) and len(packet) == index.packet_length
        assert packet[:4] in (bytes.fromhex("c1fc1fc1"), bytes.fromhex("c11ffcc1"))  # CTF magic
        assert client.detach(info.id) is DetachStatus.OK
        assert client.detach(info.id) is not DetachStatus.OK


def test_second_viewer_gets_session_busy(
    relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp
) -> None:
    """relayd allows one viewer per session: the second one gets SessionBusyError."""
    name = lttng_session.create()
    ust_app.run(5, 1000)
    first = open_session(relayd, name)
    try:
        with LiveClient("127.0.0.1", relayd.live_port, 5) as other:
            other.create_viewer_session()
            (info,) = [s for s in other.list_sessions() if s.name == name]
            assert info.clients == 1
            with pytest.raises(SessionBusyError) as busy:
                other.attach(info.id)
            assert busy.value.status is AttachStatus.ALREADY
        with pytest.raises(SessionBusyError):
            LiveSession(relayd.url(name)).open()
    finally:
        first.close()
    # Once the first viewer is gone, the session can be attached again.
    deadline = time.monotonic() + 5
    while True:
        try:
            with LiveClient("127.0.0.1", relayd.live_port, 5) as again:
                again.create_viewer_session()
                (info,) = [s for s in again.list_sessions() if s.name == name]
                assert again.attach(info.id, "last") is not None
                break
        except SessionBusyError:
            assert time.monotonic() < deadline, "session still busy after the first viewer left"
            time.sleep(0.1)


def test_inactivity_beacons_for_quiet_streams(
    relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp
) -> None:
    """While the app is quiet, every live-timer tick yields a beacon that moves the
    stream's horizon forward: after its last packet, strictly increasing."""
    name = lttng_session.create()
    session = open_session(relayd, name)
    collector = Collector(session)
    app = ust_app.start(40, 1000, pause_at=20, pause_us=4_000_000)

    def beacons_during_pause(c: Collector) -> bool:
        per_stream: dict[int, int] = defaultdict(int)
        for b in c.of(Inactivity):
            per_stream[b.stream_id] += 1
        return len(per_stream) >= 1 and max(per_stream.values()) >= 2

    collector.wait_for(beacons_during_pause, 12, "two beacons on a stream")
    assert app.wait(10) == 0
    lttng_session.destroy(name)
    collector.wait_for(ended, 15, "SessionEnd")
    collector.stop()
    items = collector.snapshot()
    assert_item_order(items)

    horizon: dict[int, int] = defaultdict(int)
    beacons: dict[int, list[int]] = defaultdict(list)
    for item in items:
        if isinstance(item, Packet):
            # (a packet may *begin* before a beacon: its events are after it)
            horizon[item.stream_id] = max(horizon[item.stream_id], item.index.timestamp_end)
        elif isinstance(item, Inactivity):
            assert item.timestamp_end > horizon[item.stream_id]
            horizon[item.stream_id] = item.timestamp_end
            beacons[item.stream_id].append(item.timestamp_end)
    longest = max(beacons.values(), key=len)
    gaps = [(b - a) / 1e9 for a, b in zip(longest, longest[1:], strict=False)]
    assert gaps and all(0.5 < g < 2.5 for g in gaps), gaps  # one per live-timer tick
    TIMINGS["beacon spacing on a quiet stream (s)"] = ", ".join(f"{g:.2f}" for g in gaps)


def test_session_end_detected_after_destroy(
    relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp
) -> None:
    """After ``lttng destroy`` every stream hangs up, then SessionEnd; the relay
    session is no longer listed and later polls return nothing."""
    name = lttng_session.create()
    ust_app.run(10, 1000)
    session = open_session(relayd, name)
    collector = Collector(session)
    collector.wait_for(lambda c: bool(c.of(Packet)), 10, "a packet")
    lttng_session.destroy(name)
    elapsed = collector.wait_for(ended, 15, "SessionEnd")
    collector.stop()
    items = collector.snapshot()
    assert_item_order(items)
    streams = {i.stream_id for i in items if isinstance(i, NewStream)}
    assert streams and {i.stream_id for i in items if isinstance(i, StreamEnd)} == streams
    assert session.ended and session.poll(0.1) == []
    with LiveClient("127.0.0.1", relayd.live_port, 5) as client:
        assert all(s.name != name for s in client.list_sessions())
    assert elapsed < 10
    TIMINGS["destroy -> SessionEnd, idle session (s)"] = f"{elapsed:.2f}"


def test_reconnect_after_dropped_connection(
    relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp, tcp_proxy: TcpProxy
) -> None:
    """The TCP connection is cut twice mid-stream (relayd stays up): the viewer
    reconnects, re-attaches from the beginning, recognises the trace by its
    metadata, skips the replayed packets it already delivered, and ends with
    exactly relayd's packets and metadata, none twice."""
    name = lttng_session.create()
    session = open_session(relayd, name, port=tcp_proxy.port, backoff_initial=0.05)
    collector = Collector(session)
    app = ust_app.start(600, 5000)
    resume_times = []
    for cut in (1, 2):
        collector.wait_for(packets_at_least(2 * cut), 10, "packets")
        skipped = session.duplicates_skipped
        tcp_proxy.cut()
        # Re-attached once the replay starts.  (Not before: a viewer that attaches
        # after `lttng destroy` began gets nothing more from relayd 2.13.)
        resume_times.append(collector.wait_for(replayed(skipped), 10, "replay"))
    assert app.wait(20) == 0
    lttng_session.destroy(name)
    collector.wait_for(ended, 20, "SessionEnd")
    collector.stop()
    items = collector.snapshot()

    assert session.reconnects >= 2 and tcp_proxy.accepted >= 3
    assert session.duplicates_skipped > 0, "re-attach replays from the beginning"
    assert_item_order(items)
    assert_no_duplicates(items)
    assert {i.trace_id for i in items if isinstance(i, MetadataUpdate)} == {0}
    # Same relayd: the trace is recognised and its streams resumed, not announced again.
    new_streams = [i for i in items if isinstance(i, NewStream)]
    assert len(new_streams) == len({i.stream_info.key for i in new_streams})
    (session_dir,) = relayd.session_dirs(name)
    assert_matches_disk(items, 0, session_dir)
    assert session.metadata(0) == next(session_dir.glob("**/metadata")).read_bytes()
    TIMINGS["dropped connection: duplicates skipped"] = str(session.duplicates_skipped)
    TIMINGS["dropped connection -> replay skipped (s)"] = ", ".join(
        f"{t:.2f}" for t in resume_times
    )


def test_relayd_killed_and_restarted_mid_stream(
    relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp, tmp_path: Path
) -> None:
    """relayd gets SIGKILL while the app traces, then restarts on the same ports and
    output directory.  The viewer reconnects with backoff; as relayd 2.13 forgets its
    sessions (and the consumer never reconnects), the session is re-created under the
    same name, and the viewer follows it as a new trace (new metadata, new streams),
    ending the old trace's streams.  No packet is delivered twice; what was received
    of the first trace is exactly relayd's on-disk data up to the crash (at most the
    last packets of each stream missing), and the second trace is complete."""
    name = lttng_session.create()
    session = open_session(relayd, name, resume_timeout=20.0, backoff_initial=0.05)
    collector = Collector(session)
    app1 = ust_app.start(500, 5000)
    collector.wait_for(packets_at_least(2), 10, "first packets")
    relay_ids_before = {i.stream_info.id for i in collector.of(NewStream)}
    relayd.kill9()
    t_kill = time.monotonic()
    time.sleep(1.0)
    relayd.start()
    collector.wait_for(reconnected(), 10, "reconnect")
    t_reconnected = time.monotonic()
    assert app1.wait(20) == 0
    lttng_session.destroy(name)  # sessiond reports an error but forgets the session
    lttng_session.create(name)
    pid2 = ust_app.run(200, 5000)
    collector.wait_for(lambda c: any(p.trace_id == 1 for p in c.of(Packet)), 10, "new trace")
    lttng_session.destroy(name)
    collector.wait_for(ended, 20, "SessionEnd")
    collector.stop()
    items = collector.snapshot()

    assert items[-1] == SessionEnd("destroyed")
    assert session.reconnects >= 1
    assert_item_order(items)
    assert_no_duplicates(items)
    assert set(session.trace_paths()) == {0, 1}
    old_streams = {i.stream_id for i in items if isinstance(i, NewStream) and i.trace_id == 0}
    new_infos = [i.stream_info for i in items if isinstance(i, NewStream) and i.trace_id == 1]
    assert new_infos and old_streams.isdisjoint(
        i.stream_id for i in items if isinstance(i, NewStream) and i.trace_id == 1
    )
    restart_ids_overlap = bool(relay_ids_before & {i.id for i in new_infos})

    first_dir, second_dir = relayd.session_dirs(name)
    missing = assert_matches_disk(items, 0, first_dir, prefix_ok=True)
    events0 = bt_events(write_received(items, session, 0, tmp_path / "received-1"))
    disk0 = bt_events(first_dir)
    assert set(events0) <= set(disk0) and (missing > 0 or events0 == disk0)
    assert assert_matches_disk(items, 1, second_dir) == 0
    rebuilt = write_received(items, session, 1, tmp_path / "received-2")
    events = bt_events(rebuilt)
    assert events == bt_events(second_dir)
    assert seqs_of(events, pid2) == list(range(200))
    TIMINGS["relayd kill -> viewer reconnected (s, relayd down 1 s)"] = (
        f"{t_reconnected - t_kill:.2f}"
    )
    TIMINGS["relayd restart: packets on disk never received"] = str(missing)
    TIMINGS["relayd restart: relay stream ids reused by the new relayd"] = str(restart_ids_overlap)
