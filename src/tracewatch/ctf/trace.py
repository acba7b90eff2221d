"""Traces and trace sets: discovery of CTF traces under paths, and their streams' chunks.

A *trace* is a directory with a ``metadata`` file and its data stream files. A *trace set*
is every trace found under the paths given (an LTTng session output holds several:
kernel/, ust/uid/UID/64-bit/, ...), possibly of several machines. This module owns the
global table of event classes of a trace set (an integer id per (trace, stream class,
event class)) and the per-stream chunk iterators; merging is :mod:`tracewatch.ctf.merge`'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import MetadataError, TraceNotFoundError
from .compile import CompiledTrace, compile_trace
from .metadata import cached, parse_metadata_uncached, read_metadata_bytes
from .stream import Chunk, FileSource, StreamReader
from .types import ClockClass, EventClass, TraceClass

__all__ = ["Trace", "StreamFile", "TraceSet", "find_traces", "GlobalClass"]

_SKIP_FILES = {"metadata"}


def find_traces(path: str) -> list[str]:
    """Every trace directory (holding a ``metadata`` file) at or under ``path``, sorted."""
    if not os.path.exists(path):
        raise TraceNotFoundError(f"{path}: no such file or directory")
    if os.path.isfile(path):
        if os.path.basename(path) == "metadata":
            return [os.path.dirname(path) or "."]
        raise TraceNotFoundError(f"{path}: not a trace directory (a CTF trace is a directory with a 'metadata' file)")
    found = []
    for root, dirs, files in os.walk(path, followlinks=True):
        dirs.sort()
        if "metadata" in files:
            found.append(root)
            dirs[:] = [d for d in dirs if d != "index"]
    if not found:
        raise TraceNotFoundError(f"{path}: no CTF trace found (no 'metadata' file under it)")
    return found


@dataclass
class StreamFile:
    trace: Trace
    path: str
    index: int  # global stream index in the trace set

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass(eq=False)
class Trace:
    """One CTF trace: its metadata, compiled decoder and stream files."""

    path: str
    trace_class: TraceClass
    compiled: CompiledTrace
    index: int = 0
    streams: list[StreamFile] = field(default_factory=list)
    class_base: int = 0  # global id of this trace's first event class
    # ns on this trace's clock -> ns on the trace set's time base (None: identity), e.g. the
    # clock transform found by synchronization; applied to every timestamp read
    time_map: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def hostname(self) -> str:
        return self.trace_class.hostname or ""

    @property
    def clock(self) -> ClockClass:
        return self.compiled.clock

    @property
    def name(self) -> str:
        return self.path

    @classmethod
    def open(cls, path: str) -> Trace:
        data, mpath = read_metadata_bytes(path)

        def build() -> tuple[TraceClass, CompiledTrace]:
            tc = parse_metadata_uncached(data, mpath)
            try:
                return tc, compile_trace(tc)
            except MetadataError as e:
                raise MetadataError(e.reason, mpath, e.line) from None

        tc, ct = cached(data, "compiled", build, tuple)
        return cls(path, tc, ct)

    def stream_paths(self) -> list[str]:
        out = []
        for name in sorted(os.listdir(self.path)):
            p = os.path.join(self.path, name)
            if name in _SKIP_FILES or name.startswith(".") or not os.path.isfile(p):
                continue
            out.append(p)
        return out


@dataclass(frozen=True)
class GlobalClass:
    """An event class of a trace set, with its global id."""

    gid: int
    trace: Trace
    stream_class_id: int
    index: int  # index within its compiled stream class
    event: EventClass

    @property
    def name(self) -> str:
        return self.event.name


class TraceSet:
    """Every trace under some paths, read together."""

    def __init__(self, paths: list[str], on_warning: Callable[[str], None] | None = None) -> None:
        self.paths = list(paths)
        self.on_warning = on_warning
        self.traces: list[Trace] = []
        self.streams: list[StreamFile] = []
        self.classes: list[GlobalClass] = []
        # global id of the first event class of each (trace index, stream class id)
        self.stream_class_base: dict[tuple[int, int], int] = {}
        dirs: list[str] = []
        for p in paths:
            for d in find_traces(p):
                if d not in dirs:
                    dirs.append(d)
        for i, d in enumerate(dirs):
            t = Trace.open(d)
            t.index = i
            self._add_trace(t)

    def _add_trace(self, t: Trace) -> None:
        t.class_base = len(self.classes)
        for sid, cs in sorted(t.compiled.streams.items()):
            self.stream_class_base[(t.index, sid)] = len(self.classes)
            for k, ev in enumerate(cs.events):
                self.classes.append(GlobalClass(len(self.classes), t, sid, k, ev))
        for p in t.stream_paths():
            sf = StreamFile(t, p, len(self.streams))
            t.streams.append(sf)
            self.streams.append(sf)
        self.traces.append(t)

    def set_time_maps(self, maps: Mapping[str, Callable[[np.ndarray], np.ndarray] | None]) -> None:
        """Put traces on a common time base: ``maps[trace.path]`` maps that trace's ns
        timestamps (an int64 array, non-decreasing maps only) to the set's; every timestamp
        read afterwards (events, batches, ``begin``/``end`` filters) is on the new base."""
        by_path = {t.path: t for t in self.traces}
        for path in maps:
            if path not in by_path:
                raise KeyError(path)
        for path, m in maps.items():
            by_path[path].time_map = m

    def class_ids(self, names: list[str] | set[str] | None) -> np.ndarray:
        """Global ids of the event classes with these names (all when None)."""
        if names is None:
            return np.arange(len(self.classes), dtype=np.int32)
        wanted = set(names)
        return np.array([c.gid for c in self.classes if c.name in wanted], np.int32)

    def stream_chunks(self, sf: StreamFile, wanted: np.ndarray | None = None) -> Iterator[Chunk]:
        """A stream's chunks; with ``wanted`` (global class ids), only those events."""
        src = FileSource(sf.path)
        try:
            reader = StreamReader(sf.trace.compiled, src, self.on_warning)
            if wanted is not None:
                reader.want_only(self.wanted_masks(sf.trace, wanted))
            yield from reader.chunks()
        finally:
            src.close()

    def wanted_masks(self, t: Trace, gids: np.ndarray) -> dict[int, np.ndarray]:
        """Per stream class of ``t``: a uint8 mask of its event classes whose global id is in
        ``gids``."""
        out = {}
        for sid, cs in t.compiled.streams.items():
            base = self.stream_class_base[(t.index, sid)]
            ids = np.arange(base, base + cs.ev_ids.shape[0])
            out[sid] = np.isin(ids, gids).astype(np.uint8)
        return out

    def gids_of(self, sf: StreamFile, chunk: Chunk) -> np.ndarray:
        """Global class ids of a chunk's events."""
        t = sf.trace
        if len(t.compiled.streams) == 1:
            base = self.stream_class_base[(t.index, next(iter(t.compiled.streams)))]
            return chunk.cls.astype(np.int32) + base
        bases = np.array([self.stream_class_base[(t.index, int(s))] for s in chunk.stream_class_id], np.int32)
        return chunk.cls.astype(np.int32) + bases

    def events(self, names: list[str] | None = None, begin: int | None = None,
                end: int | None = None, merged: bool = True) -> Iterator[Any]:
        """Events in time order (or stream by stream with ``merged=False``) as Event objects."""
        for b in self.batches(names, begin, end, merged):
            yield from b.iter_events()


    def batches(self, names: list[str] | None = None, begin: int | None = None,
                end: int | None = None, merged: bool = True,
                on_times: Callable[[np.ndarray, int], None] | None = None) -> Iterator[Any]:
        """Columnar batches (:class:`~tracewatch.ctf.batch.EventBatch`), packet by packet.

        ``names`` keeps only those events; ``begin``/``end`` (ns since the epoch, inclusive)
        keep a time range. Merged batches are in time order across every stream.

        ``on_times(ts, backwards)`` is called for each chunk read (ahead of its batches) with
        the timestamps of *all* its events, those of other ``names`` and out of the range
        included, though the events of other classes are stepped over without decoding (see
        :data:`tracewatch.ctf.merge.OnTimes`); only for trace sets whose
        :attr:`reports_times` is true. With ``end``, chunks past it may be left unread.
        """
        if on_times is not None and not self.reports_times:
            raise ValueError("this trace set does not report the times of the events it skips")
        gids = self.class_ids(names) if names is not None else None
        src = self._batch_source(merged, gids) if on_times is None else self._file_batches(merged, gids, on_times)
        for b in src:
            m = None
            if gids is not None:
                m = np.isin(b.gid, gids)
            if begin is not None:
                mb = b.ts >= begin
                m = mb if m is None else m & mb
            if end is not None:
                if merged and b.ts.shape[0] and int(b.ts[0]) > end:
                    return
                me = b.ts <= end
                m = me if m is None else m & me
            if m is not None:
                b = b.take(m)
            if len(b):
                yield b

    @property
    def reports_times(self) -> bool:
        """Whether :meth:`batches` takes ``on_times``: the batches come from the trace files
        (not from a subclass' own source, e.g. a live session)."""
        return type(self)._batch_source is TraceSet._batch_source

    def _batch_source(self, merged: bool, wanted: np.ndarray | None = None) -> Iterator[Any]:
        """The batches, holding at least the ``wanted`` classes (all when None); a live trace
        set overrides this."""
        return self._file_batches(merged, wanted)

    def _file_batches(self, merged: bool, wanted: np.ndarray | None,
                      on_times: Callable[[np.ndarray, int], None] | None = None) -> Iterator[Any]:
        from .merge import merged_batches, stream_batches

        if merged:
            return merged_batches(self, self.on_warning, wanted, on_times)
        return stream_batches(self, wanted=wanted, on_times=on_times)

    def close(self) -> None:
        pass

    def __enter__(self) -> TraceSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

