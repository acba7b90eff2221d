"""Merging the streams of a trace set into one time-ordered sequence of batches.

Works on whole chunks with NumPy: each round takes, from every stream, the events up to a
horizon that no stream can still undercut, and sorts them (stable) by time, then by a fixed
stream rank. Timestamps that go backwards inside a stream keep their stream order: the sort
key is each stream's running maximum, which gives exactly the order of a heap merge of the
streams' heads (what babeltrace2's muxer does); such events are counted in a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .batch import EventBatch
from .stream import Chunk
from .trace import StreamFile, TraceSet
from .values import clock_to_ns

__all__ = ["stream_batches", "merged_batches", "OnTimes"]

#: called once per chunk read with the timestamps (ns, in no particular order) of *every*
#: event of the chunk, decoded or stepped over (classes not wanted), and the number of its
#: events whose timestamp went below an earlier one of the same stream
OnTimes = Callable[[np.ndarray, int], None]


@dataclass
class _Head:
    sf: StreamFile
    it: Iterator[Chunk]
    rank: tuple
    chunk: Chunk | None = None
    ts: np.ndarray | None = None
    key: np.ndarray | None = None
    gid: np.ndarray | None = None
    start: int = 0
    last_max: int = -(1 << 63)
    backwards: int = 0
    on_times: OnTimes | None = None


def _to_ns(h: _Head, cycles: np.ndarray) -> np.ndarray:
    clock = h.sf.trace.clock
    ts = clock_to_ns(cycles, clock.freq, clock.offset_s, clock.offset)
    if h.sf.trace.time_map is not None:
        ts = h.sf.trace.time_map(ts)
    return ts


def _prepare(ts_set: TraceSet, h: _Head) -> bool:
    """Load the next non-empty chunk of a stream; False when it has no more."""
    for chunk in h.it:
        ts = _to_ns(h, chunk.cycles) if len(chunk) else chunk.cycles
        if h.on_times is not None:
            sk = chunk.skipped
            h.on_times(np.concatenate((ts, _to_ns(h, sk))) if sk.size else ts, chunk.backwards)
        if len(chunk) == 0:
            continue
        key = np.maximum.accumulate(np.concatenate(([h.last_max], ts)))[1:]
        back = int(np.count_nonzero(ts < key))
        h.backwards += back
        h.last_max = int(key[-1])
        h.chunk, h.ts, h.key, h.start = chunk, ts, key, 0
        h.gid = ts_set.gids_of(h.sf, chunk)
        return True
    h.chunk = None
    return False


def _batch(ts_set: TraceSet, parts: list[tuple[_Head, int, int]], chunks: list[Chunk], order: bool) -> EventBatch:
    ts_l, key_l, gid_l, cpu_l, st_l, src_l, row_l = [], [], [], [], [], [], []
    # parts in rank order: a stable sort on the key then breaks ties by rank, and timsort
    # merges the already sorted runs in O(n log k)
    for h, a, b in sorted(parts, key=lambda p: p[0].rank):
        assert h.chunk is not None and h.ts is not None and h.key is not None and h.gid is not None
        ci = len(chunks)
        chunks.append(h.chunk)
        n = b - a
        ts_l.append(h.ts[a:b])
        key_l.append(h.key[a:b])
        gid_l.append(h.gid[a:b])
        cpu_l.append(h.chunk.cpu[a:b])
        st_l.append(np.full(n, h.sf.index, np.int32))
        src_l.append(np.full(n, ci, np.int32))
        row_l.append(np.arange(a, b, dtype=np.int64))
    ts = np.concatenate(ts_l)
    gid = np.concatenate(gid_l)
    cpu = np.concatenate(cpu_l)
    st = np.concatenate(st_l)
    src = np.concatenate(src_l)
    row = np.concatenate(row_l)
    if order and len(parts) > 1:
        perm = np.argsort(np.concatenate(key_l), kind="stable")
        ts, gid, cpu, st, src, row = ts[perm], gid[perm], cpu[perm], st[perm], src[perm], row[perm]
    return EventBatch(ts_set, ts, gid, cpu, st, src, row, chunks)


def stream_batches(ts_set: TraceSet, streams: list[StreamFile] | None = None,
                   wanted: np.ndarray | None = None, on_times: OnTimes | None = None) -> Iterator[EventBatch]:
    """Each stream's events in stream order, one batch per chunk, stream after stream
    (``on_times``: see :data:`OnTimes`)."""
    for sf in streams if streams is not None else ts_set.streams:
        h = _Head(sf, ts_set.stream_chunks(sf, wanted), (0, sf.index), on_times=on_times)
        while _prepare(ts_set, h):
            assert h.chunk is not None
            yield _batch(ts_set, [(h, 0, len(h.chunk))], [], False)


def _ranks(heads: list[_Head]) -> None:
    """Tie-break rank among streams for equal timestamps: trace, stream class, stream
    instance id (LTTng: the CPU), then file name."""
    def k(h: _Head) -> tuple:
        c = h.chunk
        sid = c.packets[0].stream_class_id if c is not None else 0
        inst = c.packets[0].stream_instance_id if c is not None else None
        return (h.sf.trace.index, sid, inst if inst is not None else -1, h.sf.path)
    for r, h in enumerate(sorted(heads, key=k)):
        h.rank = (r,)


def merged_batches(ts_set: TraceSet, on_backwards: Callable[[str], None] | None = None,
                   wanted: np.ndarray | None = None, on_times: OnTimes | None = None) -> Iterator[EventBatch]:
    """All events of the trace set in time order (only the ``wanted`` global classes, plus
    any that cannot be skipped, when given), as batches (``on_times``: see :data:`OnTimes`)."""
    heads = [_Head(sf, ts_set.stream_chunks(sf, wanted), (0,), on_times=on_times) for sf in ts_set.streams]
    live = [h for h in heads if _prepare(ts_set, h)]
    _ranks(live)
    try:
        while live:
            # horizon: the smallest last key of the streams' current chunks
            hz_head = min(live, key=lambda h: (int(h.key[-1]), h.rank))  # type: ignore[index]
            horizon = int(hz_head.key[-1])  # type: ignore[index]
            parts: list[tuple[_Head, int, int]] = []
            for h in live:
                assert h.key is not None
                if h is hz_head:
                    end = h.key.shape[0]
                elif h.rank < hz_head.rank:
                    end = int(np.searchsorted(h.key, horizon, side="right"))
                else:
                    end = int(np.searchsorted(h.key, horizon, side="left"))
                if end > h.start:
                    parts.append((h, h.start, end))
                h.start = max(h.start, end)
            if parts:
                yield _batch(ts_set, parts, [], True)
            still = []
            for h in live:
                assert h.key is not None
                if h.start >= h.key.shape[0]:
                    if _prepare(ts_set, h):
                        still.append(h)
                else:
                    still.append(h)
            live = still
    finally:
        for h in heads:
            if h.backwards and on_backwards is not None:
                on_backwards(f"{h.sf.path}: {h.backwards} events have timestamps earlier than a previous "
                             "event of the same stream; delivered in stream order")
