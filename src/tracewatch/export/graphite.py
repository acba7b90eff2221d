"""Graphite's plaintext protocol over TCP: ``path value timestamp\\n`` lines, one batch per window.

Owns the connection to carbon (its line receiver, port :data:`DEFAULT_PORT`), the bounded
buffer of lines not yet sent and the reconnection. Imports :mod:`.metrics` only.

:meth:`GraphiteSender.send` appends a window's lines to the buffer and tries to send the
buffer; it never blocks longer than about ``timeout`` seconds (one connection attempt or one
stalled send), and after a failed connection it does not try again before
``retry_interval`` seconds: while carbon is away the analysis goes on and the lines wait.
The buffer holds at most ``max_lines`` lines: past that the oldest are dropped, counted
(:attr:`GraphiteSender.dropped`) and reported by one warning per window that dropped some.
Carbon sends nothing back on this protocol: before each send the socket is checked for an end
of stream (carbon closed it: reconnect first, so a restarted carbon loses nothing that was
still buffered); lines written to a connection that breaks right after cannot be known
delivered, so a window that failed part-way is sent again whole (a Graphite point is
overwritten by the same value: resending is harmless).
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable

from .metrics import Sample, graphite_path, graphite_timestamp

__all__ = ["DEFAULT_PORT", "GraphiteSender", "format_lines", "parse_address"]

#: carbon's plaintext line receiver
DEFAULT_PORT = 2003


def parse_address(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6]:PORT`` for an IPv6 address) -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address {text!r}: [IPV6]:PORT expected")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"bad address {text!r}: HOST[:PORT] expected")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_text)


def _value(v: float) -> str:
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))  # shortest text that reads back to the same double


def format_lines(samples: Iterable[Sample], prefix: str = "tracewatch") -> list[bytes]:
    """One plaintext line per sample (NaN left out): path, value (exact), whole seconds."""
    return [f"{graphite_path(s, prefix)} {_value(s.value)} {graphite_timestamp(s.timestamp_ns)}\n".encode()
            for s in samples if not math.isnan(s.value)]


class GraphiteSender:
    """Sends samples to carbon at ``host:port`` (see the module doc).

    ``max_lines``: bound of the buffer; ``timeout``: of a connection attempt and of a send
    (s); ``retry_interval``: least time between two connection attempts (s);
    ``on_warning``: called with a one-line message (drops, connection lost/restored).
    Use as a context manager, or call :meth:`close` (which tries to send what is left).
    """

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, prefix: str = "tracewatch",
                 max_lines: int = 1_000_000, timeout: float = 2.0, retry_interval: float = 1.0,
                 on_warning: Callable[[str], None] | None = None) -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self.host, self.port, self.prefix = host, int(port), prefix
        self.max_lines, self.timeout, self.retry_interval = max_lines, timeout, retry_interval
        self.on_warning = on_warning or (lambda m: None)
        self._buf: deque[bytes] = deque()
        self._sock: socket.socket | None = None
        self._next_attempt = 0.0
        self._down_reported = False
        self.dropped = 0  #: lines dropped because the buffer was full
        self.sent = 0  #: lines written to a connection
        self.connects = 0  #: connections opened
        self.last_error = ""  #: why the last connection attempt failed

    # -- public

    @property
    def pending(self) -> int:
        """Lines waiting in the buffer."""
        return len(self._buf)

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> bool:
        """Connect now if not connected (no warning on failure); True when connected."""
        return self._sock is not None or self._connect(force=True, report=False)

    def send(self, samples: Iterable[Sample]) -> bool:
        """Buffer one window's samples and try to send the buffer; True when it is empty."""
        lines = format_lines(samples, self.prefix)
        self._buf.extend(lines)
        over = len(self._buf) - self.max_lines
        if over > 0:
            for _ in range(over):
                self._buf.popleft()
            self.dropped += over
            self.on_warning(f"graphite {self.host}:{self.port}: buffer full ({self.max_lines} lines), "
                            f"dropped the {over} oldest ({self.dropped} in all)")
        return self.flush()

    def flush(self, force: bool = False) -> bool:
        """Try to send the buffer now (``force``: even within ``retry_interval`` of a failed
        attempt); True when it is empty."""
        if not self._buf:
            return True
        if self._sock is not None and self._peer_closed():
            self._drop_connection("closed by carbon")
        if self._sock is None and not self._connect(force):
            return False
        assert self._sock is not None
        data = b"".join(self._buf)
        try:
            self._sock.sendall(data)
        except OSError as e:
            self._drop_connection(str(e) or type(e).__name__)
            return False
        self.sent += len(self._buf)
        self._buf.clear()
        return True

    def close(self, timeout: float = 0.0) -> bool:
        """Send what is left, trying again for up to ``timeout`` seconds; then close.
        Returns True when nothing was left unsent (otherwise a warning tells how much)."""
        deadline = time.monotonic() + timeout
        ok = self.flush(force=True)
        while not ok and time.monotonic() < deadline:
            time.sleep(min(self.retry_interval, max(0.0, deadline - time.monotonic()), 0.2))
            ok = self.flush(force=True)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_WR)
                # wait for carbon to close its side: it has read every line
                self._sock.settimeout(self.timeout)
                while self._sock.recv(4096):
                    pass
            self._sock.close()
            self._sock = None
        if not ok:
            self.on_warning(f"graphite {self.host}:{self.port}: {len(self._buf)} lines not sent")
        return ok

    def __enter__(self) -> GraphiteSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection

    def _connect(self, force: bool, report: bool = True) -> bool:
        now = time.monotonic()
        if not force and now < self._next_attempt:
            return False
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as e:
            self._next_attempt = time.monotonic() + self.retry_interval
            self.last_error = e.strerror or str(e) or type(e).__name__
            if report and not self._down_reported:
                self._down_reported = True
                self.on_warning(f"graphite {self.host}:{self.port}: cannot connect ({e}); "
                                f"buffering (at most {self.max_lines} lines)")
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self.connects += 1
        if self._down_reported:
            self._down_reported = False
            self.on_warning(f"graphite {self.host}:{self.port}: connected again, sending "
                            f"{len(self._buf)} buffered lines")
        return True

    def _peer_closed(self) -> bool:
        """Carbon never writes on this protocol: readable means end of stream or reset."""
        assert self._sock is not None
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
            if not readable:
                return False
            return self._sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _drop_connection(self, why: str) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        if not self._down_reported:
            self._down_reported = True
            self.on_warning(f"graphite {self.host}:{self.port}: connection lost ({why}); "
                            f"buffering (at most {self.max_lines} lines)")
