"""Fixtures of the live tests: real LTTng daemons, a traced C program, a TCP proxy.

* ``sessiond`` (session scope): uses the root lttng-sessiond that runs, or starts
  one (``lttng-sessiond -d --no-kernel``) and stops it, by pid, at the end.
* ``relayd``: a private lttng-relayd on three free loopback ports with its own
  output directory; it can be killed with SIGKILL and restarted on the same ports.
* ``lttng_session``: creates live sessions with unique names sent to that relayd,
  and destroys them at teardown.
* ``ust_app``: ``ust_app.c`` compiled against liblttng-ust; ``run_app`` runs it.
* ``tcp_proxy``: a loopback TCP forwarder whose ``cut()`` drops every connection,
  to test the viewer's reconnection while relayd stays up.

Only processes started here are ever killed, and only by their pid.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TOOLS = ("lttng", "lttng-sessiond", "lttng-relayd", "babeltrace2", "gcc")
LIVE_TIMER_US = 1_000_000


def _missing_tools() -> list[str]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not Path("/usr/include/lttng/tracepoint.h").exists() and not list(
        Path("/usr/include").glob("*/lttng/tracepoint.h")
    ):
        missing.append("liblttng-ust-dev")
    return missing


def _require_tools() -> None:
    missing = _missing_tools()
    if missing:
        pytest.skip(f"live tests need {', '.join(missing)}")
    if os.geteuid() != 0:
        pytest.skip("live tests run as root (they share the root lttng-sessiond)")


def _run(*args: str, check: bool = True, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _pids(name: str) -> set[int]:
    proc = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True)
    return {int(p) for p in proc.stdout.split()}


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------
# lttng-sessiond
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sessiond() -> Iterator[int | None]:
    """The root session daemon; yields the pid if this fixture started it, else None."""
    _require_tools()
    if _pids("lttng-sessiond"):
        yield None
        return
    _run("lttng-sessiond", "-d", "--no-kernel", timeout=30)
    started = _pids("lttng-sessiond")
    pid = min(started) if len(started) == 1 else None
    yield pid
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, 10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------------------
# lttng-relayd
# ---------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


@dataclass
class Relayd:
    """A private lttng-relayd (control, data, live ports on 127.0.0.1)."""

    output: Path
    log_dir: Path
    control_port: int = 0
    data_port: int = 0
    live_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        if not self.control_port:
            self.control_port, self.data_port, self.live_port = _free_ports(3)
        self.output.mkdir(parents=True, exist_ok=True)
        for _attempt in range(20):
            self.starts += 1
            log = open(self.log_dir / f"relayd-{self.starts}.log", "wb")  # noqa: SIM115
            self.proc = subprocess.Popen(
                [
                    "lttng-relayd",
                    "-C",
                    f"tcp://127.0.0.1:{self.control_port}",
                    "-D",
                    f"tcp://127.0.0.1:{self.data_port}",
                    "-L",
                    f"tcp://127.0.0.1:{self.live_port}",
                    "-o",
                    str(self.output),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                if all(_port_open(p) for p in (self.control_port, self.live_port)):
                    return
                time.sleep(0.05)
            self._stop(signal.SIGKILL)
            time.sleep(0.25)  # ports still held (TIME_WAIT): try again
        raise RuntimeError(f"lttng-relayd did not start on ports {self.ports}")

    @property
    def ports(self) -> tuple[int, int, int]:
        return (self.control_port, self.data_port, self.live_port)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _stop(self, sig: signal.Signals) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def kill9(self) -> None:
        """SIGKILL, as a crash would."""
        self._stop(signal.SIGKILL)

    def stop(self) -> None:
        self._stop(signal.SIGTERM)

    def url(self, session: str) -> str:
        return f"net://127.0.0.1:{self.live_port}/host/{socket.gethostname()}/{session}"

    def session_dirs(self, session: str) -> list[Path]:
        """Output directories of a session name, oldest first."""
        return sorted(self.output.glob(f"*/{session}-*"))


@pytest.fixture
def relayd(tmp_path: Path, sessiond: int | None) -> Iterator[Relayd]:
    daemon = Relayd(output=tmp_path / "relay-out", log_dir=tmp_path)
    daemon.start()
    yield daemon
    daemon.stop()


# ---------------------------------------------------------------------------
# Tracing sessions
# ---------------------------------------------------------------------------

_counter = itertools.count()


@dataclass
class LttngSessions:
    """Factory of live tracing sessions sent to one relayd."""

    relayd: Relayd
    procname: str  # the traced app's executable name (see ``ust_app``)
    names: list[str] = field(default_factory=list)

    def new_name(self) -> str:
        name = f"tw-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        return name

    def create(self, name: str | None = None, *, start: bool = True) -> str:
        """``lttng create NAME --live``, enable ``tracewatch_test:*`` with vpid, start."""
        name = name or self.new_name()
        if name not in self.names:
            self.names.append(name)
        ctl, data, _ = self.relayd.ports
        _run(
            "lttng",
            "create",
            name,
            "--live",
            str(LIVE_TIMER_US),
            "-U",
            f"net://127.0.0.1:{ctl}:{data}",
        )
        # apps of other test runs sharing the root sessiond write into per-UID buffers of
        # every session: keep this run's app only (its executable name is unique)
        _run("lttng", "enable-event", "-u", "-s", name, "tracewatch_test:*",
             "--filter", f'$ctx.procname == "{self.procname}"')
        _run("lttng", "add-context", "-u", "-s", name, "-t", "vpid")
        if start:
            _run("lttng", "start", name)
        return name

    def destroy(self, name: str) -> None:
        # After a relayd crash the sessiond reports an error but forgets the session.
        _run("lttng", "destroy", name, check=False, timeout=30)

    def destroy_all(self, names: list[str]) -> None:
        """Destroy several sessions of one relayd, the newest first: lttng-sessiond 2.13 (as
        run here) hangs destroying a live session while a *later* live session to the same
        relayd exists (seen: 3 sessions with no app, destroyed oldest first: the first two
        block until timeout, the last returns in 0.5 s; newest first: 0.5 s each)."""
        for name in reversed(names):
            self.destroy(name)

    def cleanup(self) -> None:
        listed = _run("lttng", "list", check=False).stdout
        self.destroy_all([name for name in self.names if name in listed])


@pytest.fixture
def lttng_session(relayd: Relayd, ust_app: UstApp) -> Iterator[LttngSessions]:
    sessions = LttngSessions(relayd, ust_app.path.name)
    yield sessions
    sessions.cleanup()


# ---------------------------------------------------------------------------
# The traced program
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UstApp:
    path: Path

    def start(
        self,
        count: int,
        interval_us: int,
        pause_at: int | None = None,
        pause_us: int = 0,
        capture: bool = False,
    ) -> subprocess.Popen[str]:
        """Start in the background (``wait()`` on it); emits seq 0..count-1."""
        args = [str(self.path), str(count), str(interval_us)]
        if pause_at is not None:
            args += [str(pause_at), str(pause_us)]
        out = subprocess.PIPE if capture else subprocess.DEVNULL
        return subprocess.Popen(args, stdout=out, text=True)

    def run(self, count: int, interval_us: int, **kw: int) -> int:
        """Run to completion; returns the pid (the ``vpid`` context of its events)."""
        proc = self.start(count, interval_us, capture=True, **kw)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.strip() == f"done {count}", out
        return proc.pid


@pytest.fixture(scope="session")
def ust_app(tmp_path_factory: pytest.TempPathFactory) -> UstApp:
    _require_tools()
    # a name unique to this test run (at most 15 characters: the kernel's comm)
    out = tmp_path_factory.mktemp("ust-app") / f"ua{os.getpid()}"[:15]
    _run(
        "gcc",
        "-O1",
        "-Wall",
        "-Wextra",
        "-Werror",
        f"-I{HERE}",
        "-o",
        str(out),
        str(HERE / "ust_app.c"),
        "-llttng-ust",
        "-ldl",
        timeout=120,
    )
    return UstApp(out)


# ---------------------------------------------------------------------------
# A TCP proxy whose connections can be cut
# ---------------------------------------------------------------------------


class TcpProxy:
    """Forward 127.0.0.1:port to 127.0.0.1:target; ``cut()`` drops every connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._closed = False
        self.accepted = 0
        self._budget: int | None = None  # relayd -> viewer bytes still forwarded, then cut
        self.cut_mid_reply_done = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.accepted += 1
                self._conns += [client, upstream]
            for src, dst, down in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, down), daemon=True).start()

    def cut_after(self, nbytes: int) -> None:
        """Forward ``nbytes`` more bytes from relayd to the viewer, then drop every
        connection: the cut falls inside a reply (or a batch of pipelined replies)."""
        self.cut_mid_reply_done.clear()
        with self._lock:
            self._budget = nbytes

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while data := src.recv(65536):
                if down and self._budget is not None:
                    with self._lock:
                        budget, self._budget = self._budget, None
                    if budget is not None:
                        if len(data) > budget:
                            dst.sendall(data[:budget])
                            self.cut()
                            self.cut_mid_reply_done.set()
                            return
                        with self._lock:
                            self._budget = budget - len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()


@pytest.fixture
def tcp_proxy(relayd: Relayd) -> Iterator[TcpProxy]:
    proxy = TcpProxy(relayd.live_port)
    yield proxy
    proxy.close()
