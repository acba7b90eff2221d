"""Parsing of babeltrace2-style LTTng live URLs.

This module owns the ``net://`` URL syntax understood by the live viewer:

* ``net://HOST[:PORT]`` names a relay daemon (used to list its sessions);
* ``net://HOST[:PORT]/host/HOSTNAME/SESSION`` names one traced session: every
  relay session whose hostname and name match (kernel, 32-bit and 64-bit
  user-space traces of one ``lttng create`` are separate relay sessions).

HOST is a DNS name, an IPv4 address or a bracketed IPv6 address (``[::1]``);
PORT defaults to 5344, relayd's live port.  ``net4://`` and ``net6://`` are
accepted as in LTTng's own URL syntax.  Malformed URLs raise ``ValueError``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

DEFAULT_LIVE_PORT = 5344

_SCHEMES = ("net", "net4", "net6")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_FORBIDDEN_IN_NAMES = re.compile(r"[\s\x00/]")


@dataclass(frozen=True)
class LiveUrl:
    """A parsed live URL; ``hostname``/``session_name`` are both set or both None."""

    host: str
    port: int = DEFAULT_LIVE_PORT
    hostname: str | None = None
    session_name: str | None = None

    @property
    def names_session(self) -> bool:
        """True for ``.../host/HOSTNAME/SESSION`` URLs."""
        return self.session_name is not None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        base = f"net://{host}:{self.port}"
        if self.session_name is None:
            return base
        return f"{base}/host/{self.hostname}/{self.session_name}"


def _parse_host(authority: str, url: str) -> tuple[str, str | None]:
    """Split ``HOST[:PORT]`` into the host and the port text (None if absent)."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError(f"unterminated IPv6 address in live URL {url!r}")
        host = authority[1:end]
        rest = authority[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"invalid IPv6 address {host!r} in live URL {url!r}") from None
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected {rest!r} after IPv6 address in live URL {url!r}")
        return host, (rest[1:] if rest else None)
    if authority.count(":") > 1:
        raise ValueError(f"IPv6 address must be bracketed (net://[::1]) in live URL {url!r}")
    host, sep, port = authority.partition(":")
    if not host:
        raise ValueError(f"missing host in live URL {url!r}")
    if not _HOSTNAME_RE.match(host):
        raise ValueError(f"invalid host {host!r} in live URL {url!r}")
    return host, (port if sep else None)


def _parse_port(text: str | None, url: str) -> int:
    if text is None:
        return DEFAULT_LIVE_PORT
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"invalid port {text!r} in live URL {url!r}")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range 1..65535 in live URL {url!r}")
    return port


def _parse_path(path: str, url: str) -> tuple[str | None, str | None]:
    if path in ("", "/"):
        return None, None
    parts = path[1:].split("/")
    if len(parts) != 3 or parts[0] != "host":
        raise ValueError(f"live URL path must be /host/HOSTNAME/SESSION, got {path!r} in {url!r}")
    _, hostname, session = parts
    for what, value in (("hostname", hostname), ("session name", session)):
        if not value:
            raise ValueError(f"empty {what} in live URL {url!r}")
        if _FORBIDDEN_IN_NAMES.search(value):
            raise ValueError(f"invalid {what} {value!r} in live URL {url!r}")
    return hostname, session


def parse_live_url(url: str) -> LiveUrl:
    """Parse ``net://HOST[:PORT][/host/HOSTNAME/SESSION]`` (see the module doc)."""
    if not isinstance(url, str):
        raise ValueError(f"live URL must be a string, got {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"live URL {url!r} lacks a scheme (expected net://HOST...)")
    if scheme.lower() not in _SCHEMES:
        raise ValueError(f"unsupported scheme {scheme!r} in live URL {url!r} (expected net://)")
    if any(c in rest for c in "?#@") or any(c.isspace() for c in rest):
        raise ValueError(f"unexpected character in live URL {url!r}")
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    host, port_text = _parse_host(authority, url)
    port = _parse_port(port_text, url)
    hostname, session = _parse_path(path, url)
    return LiveUrl(host=host, port=port, hostname=hostname, session_name=session)
