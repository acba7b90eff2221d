"""Many sessions of one relayd followed by one thread, with pipelined requests.

Each session has its own viewer connection: relayd 2.13 keeps *one* trace chunk per viewer
connection (the chunk of the session attached last), so sessions of different ``lttng
create`` sharing a connection get their packets read from another session's files (seen
here: every session then delivered the last session's events). Pipelining is done across
the connections instead: requests written on every connection, then the replies read.

Oracles: relayd's on-disk output of every session, read by babeltrace2 (the events) and
from its index files (the packets, byte for byte, see ``test_client.assert_matches_disk``).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING

import pytest

from tracewatch.live import (
    LiveClient,
    LiveItem,
    LiveSession,
    LiveSessionGroup,
    Packet,
    SessionEnd,
)
from tracewatch.live.source import LiveTraceSet
from tracewatch.output.text import TextFormatter, TextOptions

from .test_client import (
    HOSTNAME,
    assert_item_order,
    assert_matches_disk,
    assert_no_duplicates,
    bt_events,
    wait_listed,
    write_received,
)
from .test_source import bt_lines

if TYPE_CHECKING:  # fixtures' types, defined in conftest.py
    from conftest import LttngSessions, Relayd, TcpProxy, UstApp

pytestmark = [pytest.mark.live, pytest.mark.timeout(150)]


def relay_clients(relayd: Relayd) -> dict[str, int]:
    with LiveClient("127.0.0.1", relayd.live_port, 5) as client:
        return {s.name: s.clients for s in client.list_sessions()}


def test_many_sessions_every_event_once_per_session(
    relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp
) -> None:
    """A live trace set over 6 sessions of one relayd (polled together, pipelined); the app
    traces into all of them, and each session's events arrive exactly once, from that
    session: the lines of each session equal babeltrace2's lines for that session's on-disk
    output (the sessions' clock offsets differ, so events of another session would not
    match)."""
    k, n = 6, 300
    names = [lttng_session.create() for _ in range(k)]
    for name in names:
        wait_listed(relayd, name)
    ts = LiveTraceSet([relayd.url(name) for name in names])
    clients = relay_clients(relayd)
    assert all(clients[name] == 1 for name in names), clients
    fmt = TextFormatter(TextOptions(clock_gmt=True, delta=False))
    lines: dict[int, list[str]] = defaultdict(list)  # by trace index
    count = [0]
    error: list[BaseException] = []

    def follow() -> None:
        try:
            for batch in ts.batches():
                for ev in batch.iter_events():
                    lines[ev.gclass.trace.index].append(fmt.format(ev))
                    count[0] += 1
        except BaseException as exc:  # reported below
            error.append(exc)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    ust_app.run(n, 2000, pause_at=1, pause_us=2_000_000)
    deadline = time.monotonic() + 20
    while count[0] < k * n and time.monotonic() < deadline and not error:
        time.sleep(0.1)
    lttng_session.destroy_all(names)
    thread.join(30)
    assert not thread.is_alive() and not error, error
    assert all(s.reconnects == 0 for s in ts._sessions)
    session_of = {lt.trace.index: si for (si, _), lt in ts._ltraces.items() if lt.trace is not None}
    assert sorted(session_of.values()) == list(range(k))
    by_session = {session_of[t]: got for t, got in lines.items()}
    for si, name in enumerate(names):
        (session_dir,) = relayd.session_dirs(name)
        want = bt_lines(session_dir)
        assert len(want) == n
        assert sorted(by_session.get(si, [])) == sorted(want), name


class GroupCollector:
    """Runs ``LiveSessionGroup.poll_due`` in a thread; items per session."""

    def __init__(self, group: LiveSessionGroup) -> None:
        self.group = group
        self.items: list[list[LiveItem]] = [[] for _ in group.sessions]
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not all(s.ended for s in self.group.sessions):
                for i, items in self.group.poll_due(0.01):
                    with self._lock:
                        self.items[i] += items
                time.sleep(min(max(self.group.due_in(), 0.005), 0.1))
        except BaseException as exc:  # reported by the test thread
            self.error = exc

    def packets(self) -> int:
        with self._lock:
            return sum(isinstance(i, Packet) for items in self.items for i in items)

    def wait_for(self, pred: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise self.error
            if pred():  # type: ignore[operator]
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}: {[[type(i).__name__ for i in it] for it in self.items]}")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "sessions did not end"
        if self.error is not None:
            raise self.error


def test_pipelined_polling_survives_connection_cut_mid_reply(
    relayd: Relayd,
    lttng_session: LttngSessions,
    ust_app: UstApp,
    tcp_proxy: TcpProxy,
    tmp_path: object,
) -> None:
    """4 sessions (their connections through a proxy) are polled together with pipelined
    requests; the connections are cut three times, the first bytes of a batch of replies
    forwarded, the rest not (a reply cut in the middle). Every session reconnects,
    re-attaches and skips what it had delivered: each session ends with exactly relayd's
    on-disk packets (offsets, timestamps, bytes), none twice, and its events rebuilt from
    them equal babeltrace2's reading of the on-disk trace."""
    k = 4
    names = [lttng_session.create() for _ in range(k)]
    for name in names:
        wait_listed(relayd, name)
    sessions = [
        LiveSession(f"net://127.0.0.1:{tcp_proxy.port}/host/{HOSTNAME}/{name}",
                    backoff_initial=0.05)
        for name in names
    ]
    for s in sessions:
        s.open()
    collector = GroupCollector(LiveSessionGroup(sessions))
    app = ust_app.start(2400, 4000)
    for cut in (1, 2, 3):
        collector.wait_for(lambda c=cut: collector.packets() >= 2 * k * c, 15, "packets")
        skipped = sum(s.duplicates_skipped for s in sessions)
        tcp_proxy.cut_after(100 + 333 * cut)  # inside a reply, or a batch of replies
        assert tcp_proxy.cut_mid_reply_done.wait(10)
        collector.wait_for(lambda s0=skipped: sum(s.duplicates_skipped for s in sessions) > s0,
                           15, "replay after reconnection")
        # every session back on a new connection before the next cut (under load one can
        # still be in its backoff: two cuts would then make one reconnection)
        collector.wait_for(lambda c=cut: all(s.reconnects >= c for s in sessions), 15,
                           "every session reconnected")
    assert app.wait(30) == 0
    lttng_session.destroy_all(names)
    collector.join(30)

    assert tcp_proxy.accepted >= 4 * k
    for s, name, items in zip(sessions, names, collector.items, strict=True):
        assert s.reconnects >= 3
        assert items[-1] == SessionEnd("destroyed")
        assert_item_order(items)
        assert_no_duplicates(items)
        (session_dir,) = relayd.session_dirs(name)
        assert assert_matches_disk(items, 0, session_dir) == 0
        assert s.metadata(0) == next(session_dir.glob("**/metadata")).read_bytes()
        rebuilt = write_received(items, s, 0, tmp_path / f"received-{name}")  # type: ignore[operator]
        assert bt_events(rebuilt) == bt_events(session_dir)
