"""Event batches: the columnar view of decoded events, and Event objects for iteration.

An :class:`EventBatch` is a run of events (one stream's, or several streams' merged in time
order) as parallel NumPy arrays: timestamp (ns), global event class id, cpu, stream. Field
values are gathered per event class on request with :meth:`EventBatch.columns`: integers and
floats as arrays, strings dictionary-encoded or as object arrays. :class:`Event` is the
convenient per-event object of the iteration API, built lazily from the same columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .compile import is_char_array, is_fixed_layout, value_count
from .stream import Chunk
from .types import EnumType, EventClass, FieldType, FloatType, IntType, StringType, StructType
from .values import field_name, make_reader

if TYPE_CHECKING:
    from .trace import GlobalClass, TraceSet

__all__ = ["EventBatch", "Event", "field_slots"]


def field_slots(st: StructType | None) -> dict[str, tuple[int, FieldType]]:
    """Static value offsets of a struct's leading fixed-layout fields (name -> (slot, type))."""
    out: dict[str, tuple[int, FieldType]] = {}
    if st is None:
        return out
    slot = 0
    for name, t in st.fields:
        out[field_name(name)] = (slot, t)
        if not is_fixed_layout(t):
            break
        slot += value_count(t)
    return out


class _ChunkCache:
    """Per-chunk Python copies, made once, for the iteration API."""

    __slots__ = ("vals", "buf")

    def __init__(self, chunk: Chunk) -> None:
        self.vals: list[int] = chunk.vals.tolist()
        self.buf: bytes = chunk.buf.tobytes()


@dataclass
class EventBatch:
    trace_set: TraceSet
    ts: np.ndarray  # int64 ns since the epoch
    gid: np.ndarray  # int32 global event class id
    cpu: np.ndarray  # int32, -1 if unknown
    stream: np.ndarray  # int32 global stream index
    src: np.ndarray  # int32 index into chunks
    row: np.ndarray  # int64 row in that chunk
    chunks: list[Chunk]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def names(self) -> list[str]:
        """Name of each event (a Python list; prefer ``gid`` for speed)."""
        table = [c.name for c in self.trace_set.classes]
        return [table[g] for g in self.gid.tolist()]

    def mask(self, names: Sequence[str] | str) -> np.ndarray:
        """Boolean mask of the events with one of these names."""
        if isinstance(names, str):
            names = [names]
        return np.isin(self.gid, self.trace_set.class_ids(list(names)))

    def take(self, mask: np.ndarray) -> EventBatch:
        return EventBatch(self.trace_set, self.ts[mask], self.gid[mask], self.cpu[mask], self.stream[mask],
                          self.src[mask], self.row[mask], self.chunks)

    def columns(self, name: str | Sequence[str], fields: Sequence[str] | None = None,
                strings: str = "object") -> dict[str, np.ndarray]:
        """Columns of the events named ``name``: timestamp, cpu, stream, index (row in this
        batch) and each payload field (all when ``fields`` is None), in batch order.

        ``strings``: "object" (arrays of str) or "category" (codes array plus a
        ``<field>.categories`` array of the distinct strings).
        """
        names = [name] if isinstance(name, str) else list(name)
        gids = self.trace_set.class_ids(names)
        idx = np.flatnonzero(np.isin(self.gid, gids))
        out: dict[str, np.ndarray] = {
            "index": idx, "timestamp": self.ts[idx], "cpu": self.cpu[idx], "stream": self.stream[idx],
        }
        if idx.size == 0:
            return out
        classes = [self.trace_set.classes[g] for g in np.unique(self.gid[idx]).tolist()]
        wanted = list(fields) if fields is not None else _all_field_names(classes)
        for f in wanted:
            out.update(self._field_column(idx, classes, f, strings))
        return out

    def _field_column(self, idx: np.ndarray, classes: list[GlobalClass], fname: str,
                      strings: str) -> dict[str, np.ndarray]:
        kinds = {}
        for gc in classes:
            slots = field_slots(gc.event.fields)
            if fname in slots:
                kinds[gc.gid] = slots[fname]
        if not kinds:
            raise KeyError(f"no field '{fname}' in {sorted({c.name for c in classes})}")
        any_t = next(iter(kinds.values()))[1]
        is_text = isinstance(any_t, StringType) or is_char_array(any_t)
        is_float = isinstance(any_t, FloatType)
        n = idx.size
        if is_text:
            offs = np.zeros(n, np.int64)
            lens = np.zeros(n, np.int64)
        else:
            vals = np.zeros(n, np.int64)
        src = self.src[idx]
        row = self.row[idx]
        gid = self.gid[idx]
        simple_fixed = all(
            isinstance(t, (IntType, EnumType, FloatType, StringType)) or is_char_array(t) for _, t in kinds.values())
        if not simple_fixed:
            return {fname: self._slow_column(idx, fname)}
        for c, g, m in _groups(src, gid, kinds):
            chunk = self.chunks[c]
            slot = kinds[g][0]
            r = row[m]
            pos = chunk.off[r, 3] + slot
            if is_text:
                offs[m] = chunk.vals[pos] + chunk.buf_base[r]
                lens[m] = chunk.vals[pos + 1]
            else:
                vals[m] = chunk.vals[pos]
        if is_text:
            return _text_column(fname, self.chunks, src, offs, lens, strings)
        if is_float:
            size = any_t.size if isinstance(any_t, FloatType) else 64
            if size == 32:
                return {fname: vals.astype(np.uint32).view(np.float32).astype(np.float64)}
            return {fname: vals.view(np.float64)}
        it = any_t.container if isinstance(any_t, EnumType) else any_t
        if isinstance(it, IntType) and not it.signed and it.size == 64:
            return {fname: vals.view(np.uint64)}
        return {fname: vals}

    def _slow_column(self, idx: np.ndarray, fname: str) -> np.ndarray:
        out = np.empty(idx.size, object)
        for k, i in enumerate(idx.tolist()):
            out[k] = self.event(i).fields.get(fname)
        return out

    def event(self, i: int) -> Event:
        return Event(self, i)

    def __iter__(self) -> Iterator[Event]:
        for i in range(len(self)):
            yield Event(self, i)

    def iter_events(self) -> Iterator[Event]:
        """Events of this batch as :class:`Event` objects (fast path for iteration)."""
        classes = self.trace_set.classes
        caches: list[_ChunkCache | None] = [None] * len(self.chunks)
        ts = self.ts.tolist()
        gid = self.gid.tolist()
        cpu = self.cpu.tolist()
        src = self.src.tolist()
        row = self.row.tolist()
        for i in range(len(ts)):
            c = src[i]
            cc = caches[c]
            if cc is None:
                cc = caches[c] = _ChunkCache(self.chunks[c])
            yield Event.__new__(Event)._init(classes[gid[i]], ts[i], cpu[i], self.chunks[c], cc, row[i])


MAX_VECTOR_TEXT = 64  # longest strings dictionary-encoded with NumPy; longer ones in a loop


def _text_column(fname: str, chunks: list[Chunk], src: np.ndarray, offs: np.ndarray, lens: np.ndarray,
                 strings: str) -> dict[str, np.ndarray]:
    """Dictionary-encode text values (up to the first NUL): codes and categories."""
    width = int(lens.max()) if lens.size else 0
    if width <= MAX_VECTOR_TEXT:
        codes, categories = _encode_vectorized(chunks, src, offs, lens, max(width, 1))
    else:
        codes, categories = _encode_loop(chunks, src, offs, lens)
    if strings == "category":
        return {fname: codes, f"{fname}.categories": categories}
    return {fname: categories[codes] if categories.size else np.empty(0, object)}


def _encode_vectorized(chunks: list[Chunk], src: np.ndarray, offs: np.ndarray, lens: np.ndarray,
                       width: int) -> tuple[np.ndarray, np.ndarray]:
    mat = np.zeros((offs.size, width), np.uint8)
    cols = np.arange(width)
    inside = cols[None, :] < lens[:, None]
    for c in np.unique(src).tolist():
        m = src == c
        buf = chunks[c].buf
        idx = offs[m][:, None] + cols[None, :]
        ok = inside[m]
        mat[m] = np.where(ok, buf[np.minimum(idx, buf.shape[0] - 1)], 0)
    mat[np.cumsum(mat == 0, axis=1) > 0] = 0  # text ends at the first NUL
    keys = mat.view(f"S{width}").ravel()
    uniq, codes = np.unique(keys, return_inverse=True)
    categories = np.array([u.decode("utf-8", errors="replace") for u in uniq.tolist()], dtype=object)
    return codes.astype(np.int32).ravel(), categories


def _encode_loop(chunks: list[Chunk], src: np.ndarray, offs: np.ndarray,
                 lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cache: dict[bytes, int] = {}
    cats: list[str] = []
    codes = np.empty(offs.size, np.int32)
    bufs = {c: chunks[c].buf.tobytes() for c in np.unique(src).tolist()}
    for k, (c, o, n) in enumerate(zip(src.tolist(), offs.tolist(), lens.tolist(), strict=True)):
        raw = bufs[c][o: o + n]
        nul = raw.find(b"\0")
        if nul >= 0:
            raw = raw[:nul]
        code = cache.get(raw)
        if code is None:
            cats.append(raw.decode("utf-8", errors="replace"))
            code = cache[raw] = len(cats) - 1
        codes[k] = code
    return codes, np.array(cats, dtype=object)


#: above this many (chunk, class) combinations, rows are grouped with one sort rather than
#: one mask per combination (a batch of many traces: one chunk and one class per trace)
GROUP_BY_SORT_ABOVE = 16


def _groups(src: np.ndarray, gid: np.ndarray, kinds: dict[int, Any]
            ) -> Iterator[tuple[int, int, np.ndarray]]:
    """(chunk, class, rows) for each chunk and wanted class present among the rows; rows as a
    boolean mask or an index array, either selects the same rows in batch order."""
    chunks = np.unique(src).tolist()
    if len(chunks) * len(kinds) <= GROUP_BY_SORT_ABOVE:
        for c in chunks:
            mc = src == c
            for g in kinds:
                m = mc & (gid == g)
                if m.any():
                    yield c, g, m
        return
    key = src.astype(np.int64) * (int(gid.max()) + 1) + gid
    order = np.argsort(key, kind="stable")
    ks = key[order]
    cuts = np.flatnonzero(ks[1:] != ks[:-1]) + 1
    for a, b in zip(np.concatenate(([0], cuts)).tolist(), np.concatenate((cuts, [ks.size])).tolist(),
                    strict=True):
        sel = order[a:b]
        g = int(gid[sel[0]])
        if g in kinds:
            yield int(src[sel[0]]), g, sel


def _all_field_names(classes: list[GlobalClass]) -> list[str]:
    seen: list[str] = []
    for gc in classes:
        st = gc.event.fields
        if st is None:
            continue
        for n, _ in st.fields:
            fn = field_name(n)
            if fn not in seen:
                seen.append(fn)
    return seen


class Event:
    """One event: name, timestamp (ns since the epoch), cpu, trace, host and fields."""

    __slots__ = ("gclass", "timestamp", "cpu", "_chunk", "_cache", "_row", "_fields")

    gclass: GlobalClass
    timestamp: int
    cpu: int
    _chunk: Chunk
    _cache: _ChunkCache
    _row: int
    _fields: dict[str, Any] | None

    def __init__(self, batch: EventBatch, i: int) -> None:
        c = int(batch.src[i])
        self._init(batch.trace_set.classes[int(batch.gid[i])], int(batch.ts[i]), int(batch.cpu[i]),
                   batch.chunks[c], _ChunkCache(batch.chunks[c]), int(batch.row[i]))

    def _init(self, gclass: GlobalClass, ts: int, cpu: int, chunk: Chunk, cache: _ChunkCache, row: int) -> Event:
        self.gclass = gclass
        self.timestamp = ts
        self.cpu = cpu
        self._chunk = chunk
        self._cache = cache
        self._row = row
        self._fields = None
        return self

    @property
    def name(self) -> str:
        return self.gclass.event.name

    @property
    def event_class(self) -> EventClass:
        return self.gclass.event

    @property
    def trace(self) -> str:
        return self.gclass.trace.path

    @property
    def host(self) -> str:
        return self.gclass.trace.hostname

    def _scope(self, st: StructType | None, col: int) -> dict[str, Any]:
        if st is None:
            return {}
        ch = self._chunk
        start = int(ch.off[self._row, col])
        d, _ = make_reader(st)(self._cache.vals, start, self._cache.buf, int(ch.buf_base[self._row]))
        return d

    @property
    def fields(self) -> dict[str, Any]:
        """The payload fields (event.fields) as a dict of Python values."""
        if self._fields is None:
            self._fields = self._scope(self.gclass.event.fields, 3)
        return self._fields

    @property
    def context(self) -> dict[str, Any]:
        """Event context and stream event context fields, merged."""
        sc = self.gclass.trace.trace_class.streams[self.gclass.stream_class_id]
        d = self._scope(sc.event_context, 1)
        d.update(self._scope(self.gclass.event.context, 2))
        return d

    @property
    def stream_event_context(self) -> dict[str, Any]:
        sc = self.gclass.trace.trace_class.streams[self.gclass.stream_class_id]
        return self._scope(sc.event_context, 1)

    @property
    def event_context(self) -> dict[str, Any]:
        return self._scope(self.gclass.event.context, 2)

    @property
    def packet_context(self) -> dict[str, Any]:
        sc = self.gclass.trace.trace_class.streams[self.gclass.stream_class_id]
        ch = self._chunk
        p = int(ch.packet_of[self._row])
        if sc.packet_context is None:
            return {}
        d, _ = make_reader(sc.packet_context)(ch.packet_vals.tolist(), int(ch.packet_val_off[p, 1]), b"", 0)
        return d

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, ts={self.timestamp}, cpu={self.cpu}, fields={self.fields!r})"
