"""The exceptions tracewatch raises for bad input.

Every error a user can cause (a corrupt trace, bad metadata, a wrong option) is a
:class:`TracewatchError`; the CLI prints its message on one line and exits non-zero.
Nothing here imports other tracewatch modules.
"""

from __future__ import annotations

__all__ = ["TracewatchError", "MetadataError", "DecodeError", "TraceNotFoundError"]


class TracewatchError(Exception):
    """Base class of every error caused by user input (traces, options, URLs)."""


class MetadataError(TracewatchError, ValueError):
    """The TSDL metadata of a trace is missing, malformed or unsupported."""

    def __init__(self, reason: str, path: str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        where = path or "metadata"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {reason}")


class DecodeError(TracewatchError, ValueError):
    """A data stream could not be decoded at a given byte offset."""

    def __init__(self, path: str, offset: int, reason: str, packet_offset: int | None = None) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        self.packet_offset = packet_offset
        packet = f" (packet at byte {packet_offset})" if packet_offset is not None else ""
        super().__init__(f"{path}: byte {offset}{packet}: {reason}")


class TraceNotFoundError(TracewatchError, FileNotFoundError):
    """No CTF trace (a directory holding a ``metadata`` file) was found under a path."""
