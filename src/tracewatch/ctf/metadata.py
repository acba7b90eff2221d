"""Reading a trace's metadata: plain or packetized TSDL text -> :class:`TraceClass`.

Owns the metadata file format (the 37-byte metadata packet headers, the version header) and
the bounds checks on it. Parsing the text itself is :mod:`tracewatch.ctf.tsdl`'s job.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
from collections.abc import Callable
from typing import TypeVar, cast

from ..errors import MetadataError
from .tsdl import check_version_header, parse_tsdl
from .types import TraceClass

__all__ = ["METADATA_MAGIC", "metadata_text", "read_metadata", "read_metadata_bytes", "parse_metadata_bytes",
           "cached"]

METADATA_MAGIC = 0x75D11D57
_HEADER = 37
MAX_METADATA_BYTES = 256 * 1024 * 1024


def metadata_text(data: bytes, path: str = "metadata", partial: bool = False) -> tuple[str, str | None]:
    """Return (TSDL text, byte order of the packets or None if plain) of a metadata file's bytes.

    With ``partial`` (live metadata), a truncated last packet is ignored instead of refused.
    """
    if len(data) >= 4:
        le = struct.unpack_from("<I", data)[0]
        be = struct.unpack_from(">I", data)[0]
        if METADATA_MAGIC in (le, be):
            order = "<" if le == METADATA_MAGIC else ">"
            return _depacketize(data, order, path, partial), ("le" if order == "<" else "be")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        raise MetadataError(f"metadata is neither packetized nor UTF-8 text (byte {e.start})", path) from None


def _depacketize(data: bytes, order: str, path: str, partial: bool) -> str:
    chunks: list[bytes] = []
    off = 0
    n = len(data)
    while off < n:
        if n - off < _HEADER:
            if partial:
                break
            raise MetadataError(f"truncated metadata packet header at byte {off}", path)
        magic, = struct.unpack_from(order + "I", data, off)
        if magic != METADATA_MAGIC:
            raise MetadataError(f"bad metadata packet magic 0x{magic:08x} at byte {off} "
                                "(mixed byte orders?)", path)
        (content_bits, packet_bits) = struct.unpack_from(order + "II", data, off + 24)
        compression, encryption, checksum = data[off + 32], data[off + 33], data[off + 34]
        if compression or encryption or checksum:
            raise MetadataError(f"compressed, encrypted or checksummed metadata packet at byte {off}", path)
        if content_bits % 8 or packet_bits % 8 or content_bits < _HEADER * 8 or packet_bits < content_bits:
            raise MetadataError(f"bad metadata packet sizes (content {content_bits} bits, "
                                f"packet {packet_bits} bits) at byte {off}", path)
        end = off + content_bits // 8
        if end > n:
            if partial:
                break
            raise MetadataError(f"metadata packet at byte {off} extends past the end of the file", path)
        chunks.append(data[off + _HEADER:end])
        off += packet_bits // 8
    text = b"".join(chunks)
    nul = text.find(b"\0")
    if nul >= 0:
        text = text[:nul]
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MetadataError(f"metadata text is not UTF-8 (text byte {e.start})", path) from None


def _code_version() -> bytes:
    """A digest of the modules whose output is cached, so that a changed parser or compiler
    never reads a stale cache entry."""
    h = hashlib.sha256(b"tracewatch-cache-2")
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("tsdl.py", "types.py", "compile.py", "vm.py", "metadata.py"):
        try:
            with open(os.path.join(here, name), "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(name.encode())
    return h.digest()


_CODE_VERSION = _code_version()
_T = TypeVar("_T")


def _cache_dir() -> str | None:
    if os.environ.get("TRACEWATCH_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tracewatch", "metadata")


def cached(data: bytes, kind: str, build: Callable[[], _T], check: type | tuple[type, ...]) -> _T:
    """``build()``, cached on disk by the content hash of ``data`` (large metadata only: an
    LTTng kernel trace's ~300 KB takes a noticeable time to parse and compile)."""
    cdir = _cache_dir() if len(data) > 16384 else None
    if cdir is None:
        return build()
    key = hashlib.sha256(_CODE_VERSION + kind.encode() + data).hexdigest()
    path = os.path.join(cdir, f"{kind}-{key}.pickle")
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f)
        if isinstance(obj, check):
            return cast(_T, obj)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        pass
    obj = build()
    try:
        os.makedirs(cdir, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError:
        pass
    return obj


def parse_metadata_bytes(data: bytes, path: str = "metadata") -> TraceClass:
    """Parse metadata bytes (cached by content, see :func:`cached`)."""
    return cached(data, "tc", lambda: parse_metadata_uncached(data, path), TraceClass)


def parse_metadata_uncached(data: bytes, path: str) -> TraceClass:
    text, packet_order = metadata_text(data, path)
    if packet_order is None:
        check_version_header_or_raise(text, path)
    try:
        tc = parse_tsdl(text)
    except MetadataError as e:
        raise MetadataError(e.reason, path, e.line) from None
    if packet_order is not None and tc.byte_order != packet_order:
        raise MetadataError(f"metadata packets are {packet_order} but the trace declares "
                            f"byte_order = {tc.byte_order}", path)
    return tc


def check_version_header_or_raise(text: str, path: str) -> None:
    try:
        check_version_header(text)
    except MetadataError as e:
        raise MetadataError(e.reason, path, e.line) from None


def read_metadata(path: str) -> TraceClass:
    """Parse the metadata file at ``path`` (a file, or a trace directory holding one)."""
    data, path = read_metadata_bytes(path)
    return parse_metadata_bytes(data, path)


def read_metadata_bytes(path: str) -> tuple[bytes, str]:
    """The bytes of the metadata file at ``path`` (or in the directory ``path``) and its path."""
    if os.path.isdir(path):
        path = os.path.join(path, "metadata")
    try:
        size = os.path.getsize(path)
        if size > MAX_METADATA_BYTES:
            raise MetadataError(f"metadata file is {size} bytes, more than the {MAX_METADATA_BYTES} accepted", path)
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise MetadataError("no metadata file", path) from None
    except OSError as e:
        raise MetadataError(f"cannot read metadata: {e.strerror}", path) from None
    return data, path
