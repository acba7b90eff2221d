"""``tracewatch live URL --analysis count --period 1s --mi`` against real daemons: one result
per period, printed while the session runs, equal to what babeltrace2 reads from relayd's
on-disk output of the same session, cut into the same windows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tracewatch.live import LiveClient

if TYPE_CHECKING:  # fixtures' types, defined in conftest.py
    from conftest import LttngSessions, Relayd, UstApp

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

TRACEWATCH = [sys.executable, "-m", "tracewatch.cli.main"]
PERIOD = 1_000_000_000
LIVE_TIMER_FLUSH = 1.5  # conftest's sessions flush every 1 s (lttng create --live 1000000)
_BT_TS = re.compile(r"^\[(\d+)\.(\d{9})\] ")


def wait_viewers(relayd: Relayd, name: str, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with LiveClient("127.0.0.1", relayd.live_port, 5) as client:
            if any(s.name == name and s.clients >= count for s in client.list_sessions()):
                return
        time.sleep(0.05)
    raise AssertionError(f"relay session {name} never had {count} viewer(s)")


def wait_listed(relayd: Relayd, name: str, timeout: float = 10.0) -> None:
    wait_viewers(relayd, name, 0, timeout)


def bt_timestamps(trace_dir: Path) -> list[int]:
    """Timestamps (ns) of the events babeltrace2 reads from a trace directory."""
    proc = subprocess.run(["babeltrace2", "--clock-seconds", "--no-delta", str(trace_dir)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = []
    for line in proc.stdout.splitlines():
        m = _BT_TS.match(line)
        assert m, line
        out.append(int(m.group(1)) * 1_000_000_000 + int(m.group(2)))
    return out


class LineReader:
    """Reads a process's stdout lines in a thread, with their arrival time (monotonic)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append((time.monotonic(), line))

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _table(doc: dict[str, Any], cls: str) -> dict[str, Any]:
    (t,) = [t for t in doc["results"] if t["class"] == cls]
    return t


def test_live_count_per_period_equals_babeltrace2_windows(
    relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp
) -> None:
    """A UST app emits 300 numbered events, one per 10 ms (~3 s), into a live session
    followed by ``tracewatch live URL --analysis count --period 1s --mi``:

    * the first period's result is printed (flushed) before the app has finished;
    * the command exits 0 after ``lttng destroy``;
    * there is one result per 1 s window from the first event to the last (none empty);
    * each window's count (per-event table and total table) equals the number of events
      babeltrace2 reads from relayd's on-disk output whose timestamps fall in
      [t0 + k s, t0 + (k + 1) s), t0 the first one; the counts sum to all of them (300);
    * nothing was discarded by the tracer.
    """
    n = 300
    name = lttng_session.create()
    wait_listed(relayd, name)
    proc = subprocess.Popen([*TRACEWATCH, "live", relayd.url(name), "--analysis", "count",
                             "--period", "1s", "--mi"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        reader = LineReader(proc)
        wait_viewers(relayd, name, 1)
        app = ust_app.start(n, 10_000)
        assert app.wait(60) == 0
        app_done = time.monotonic()
        lines_before_app_done = [ln for t, ln in reader.lines if t <= app_done]
        time.sleep(LIVE_TIMER_FLUSH)  # let the last packets reach relayd before the destroy
        lttng_session.destroy(name)
        proc.wait(30)  # stdout is the reader's
        reader.join(10)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    docs = [json.loads(ln) for _, ln in reader.lines]
    assert lines_before_app_done, "the first period was printed while the app was running"

    (session_dir,) = relayd.session_dirs(name)
    stamps = bt_timestamps(session_dir)
    assert len(stamps) == n
    t0 = stamps[0]
    expected: dict[int, int] = {}
    for s in stamps:
        expected[(s - t0) // PERIOD] = expected.get((s - t0) // PERIOD, 0) + 1
    assert sorted(expected) == list(range(max(expected) + 1))  # no empty window

    got: dict[int, int] = {}
    for doc in docs:
        per_event, total = _table(doc, "per-event"), _table(doc, "total")
        first = per_event["time-range"]["begin"]["value"]
        last = per_event["time-range"]["end"]["value"]
        k = (first - t0) // PERIOD
        assert (last - t0) // PERIOD == k and k not in got
        counts = {row[0]["value"]: row[1]["value"] for row in per_event["data"]}
        assert counts == {"tracewatch_test:seq": total["data"][0][0]["value"]}
        got[k] = total["data"][0][0]["value"]
        assert total["data"][0][1]["value"] == 0  # discarded
    assert len(docs) == len(expected)
    assert got == expected
    assert sum(got.values()) == n


class WallLineReader(LineReader):
    """LineReader that also keeps each line's arrival on the wall clock (ns since the epoch),
    the clock LTTng timestamps are given in (monotonic clock + the trace's offset)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.wall: list[int] = []
        super().__init__(proc)

    def _run(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.wall.append(time.time_ns())
            self.lines.append((time.monotonic(), line))


LIVE_TIMER_S = 1.0  # conftest's lttng create --live 1000000
CLOSE_SLACK_S = 0.25  # viewer polling (retry interval 0.1 s) + relayd + decoding + printing


def test_quiet_session_closes_its_window_on_beacons(
    relayd: Relayd, lttng_session: LttngSessions, ust_app: UstApp
) -> None:
    """The app emits a burst of 40 events (2 ms apart), stays quiet 6 s, then emits one more.
    ``tracewatch live --analysis count --period 1s --mi`` prints the window holding the burst
    without waiting for that later event: within the live timer + 0.25 s after the window's
    end (relayd's inactivity beacons, at each live timer tick, tell that the streams passed it).

    Checked: the first window is printed before the late event is emitted, holds the 40 burst
    events (babeltrace2 reads them from relayd's on-disk output: timestamps and count), and
    its print time (wall clock) - its end (first event + 1 s, trace clock) is below 1.25 s.
    """
    burst, quiet_us = 40, 6_000_000
    name = lttng_session.create()
    wait_listed(relayd, name)
    proc = subprocess.Popen([*TRACEWATCH, "live", relayd.url(name), "--analysis", "count",
                             "--period", "1s", "--mi"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        reader = WallLineReader(proc)
        try:
            wait_viewers(relayd, name, 1)
        except AssertionError:
            proc.kill()
            raise AssertionError(f"viewer did not attach: {proc.communicate(timeout=10)[1]}") from None
        app = ust_app.start(burst + 1, 2_000, pause_at=burst, pause_us=quiet_us)
        assert app.wait(60) == 0
        time.sleep(LIVE_TIMER_FLUSH)
        lttng_session.destroy(name)
        proc.wait(30)
        reader.join(10)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    (session_dir,) = relayd.session_dirs(name)
    stamps = bt_timestamps(session_dir)
    assert len(stamps) == burst + 1
    t0, late = stamps[0], stamps[-1]
    assert late - stamps[burst - 1] >= quiet_us * 1000  # the quiet part is in the trace
    docs = [json.loads(ln) for _, ln in reader.lines]
    assert len(docs) == 2
    first = _table(docs[0], "per-event")["time-range"]
    assert (first["begin"]["value"], first["end"]["value"]) == (t0, stamps[burst - 1])
    assert _table(docs[0], "total")["data"][0][0]["value"] == burst
    assert _table(docs[1], "total")["data"][0][0]["value"] == 1
    window_end = t0 + PERIOD
    printed = reader.wall[0]
    lag = (printed - window_end) / 1e9
    print(f"window [t0, t0 + 1 s) printed {lag:.3f} s after its end; late event "
          f"{(late - printed) / 1e9:.3f} s after the print")
    assert printed < late
    assert lag <= LIVE_TIMER_S + CLOSE_SLACK_S
