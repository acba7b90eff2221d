"""Matching the events that one machine sends and another receives, for clock synchronization.

Two kinds of exchanges are matched:

- TCP packets: a send (``inet_sock_local_out`` from the LTTng addons, or ``net_dev_queue``)
  and a receive (``inet_sock_local_in``, ``netif_receive_skb`` or ``net_if_receive_skb``) with
  the same key (seq, ack_seq, flags).  The TCP fields are found wherever the layout puts them:
  at the top of the payload (LTTng 2.1 addons: ``seq``, ``ack_seq``, ``flags``), under
  ``transport_fields.thtype_tcp`` or under ``network_header.<ipv4|ipv6>.transport_header.tcp``
  (struct or variant), i.e. in the first nested struct holding the three of them.
- The hypercall exchange of the LTTng vmsync addons: guest ``vmsync_gh_guest`` (cnt n, vm_uid)
  -> host ``vmsync_gh_host`` (or ``kvm_x86_hypercall`` / ``kvm_hypercall`` with a0 = n,
  a1 = vm_uid), and host ``vmsync_hg_host`` (n + 1) -> guest ``vmsync_hg_guest`` (n + 1).

Events are read in time order.  A send looks for an unmatched receive with its key on another
machine (and a receive for an unmatched send): if found, the two make a pair and leave the
tables; if not, the event waits in its machine's table, unless an event with the same key
already waits there (the first one is kept).  A send and a receive on the same machine never
make a pair.

A machine is identified by its host id: the clock uuid of its traces (LTTng traces of one
boot share it), else the env hostname, else the trace path.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ctf import Trace, TraceSet
from ..ctf.values import VariantValue

__all__ = ["TCP_SEND", "TCP_RECV", "VMSYNC_SEND", "VMSYNC_RECV", "SYNC_EVENTS", "host_id",
           "MatchedPairs", "MatchResult", "EventMatcher", "match_events", "tcp_key"]

TCP_SEND = ("inet_sock_local_out", "net_dev_queue")
TCP_RECV = ("inet_sock_local_in", "netif_receive_skb", "net_if_receive_skb")
VMSYNC_SEND = ("vmsync_gh_guest", "vmsync_hg_host")
VMSYNC_RECV = ("vmsync_gh_host", "vmsync_hg_guest", "kvm_x86_hypercall", "kvm_hypercall")
SYNC_EVENTS = TCP_SEND + TCP_RECV + VMSYNC_SEND + VMSYNC_RECV

_TCP_FIELDS = ("seq", "ack_seq", "flags")


def host_id(trace: Trace) -> str:
    """The id of the machine that recorded ``trace`` (clock uuid, else hostname, else path)."""
    uuid = getattr(trace.clock, "uuid", None)
    if uuid:
        return str(uuid)
    return trace.hostname or trace.path


@dataclass
class MatchedPairs:
    """The messages from one machine to another: send time (sender's clock, ns) and receive
    time (receiver's clock, ns), in the order they were matched."""

    sender: str
    receiver: str
    send: np.ndarray  # int64
    recv: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.send.shape[0])


@dataclass
class MatchResult:
    """Every pair found in a trace set, by ordered (sender, receiver) host ids."""

    pairs: dict[tuple[str, str], MatchedPairs]
    events: dict[str, int]  # sync events seen per host id
    unmatched: dict[str, int]  # events left unmatched per host id

    def between(self, sender: str, receiver: str) -> MatchedPairs:
        """The pairs from ``sender`` to ``receiver`` (empty when none)."""
        got = self.pairs.get((sender, receiver))
        if got is None:
            e = np.zeros(0, np.int64)
            return MatchedPairs(sender, receiver, e, e.copy())
        return got

    @property
    def total(self) -> int:
        return sum(len(p) for p in self.pairs.values())


def _as_int(v: Any) -> int | None:
    if isinstance(v, VariantValue):
        v = v.value
    if isinstance(v, bool) or not isinstance(v, int):
        return None
    return int(v)


def _find_tcp(d: Mapping[str, Any], depth: int = 0) -> tuple[int, int, int] | None:
    if all(k in d for k in _TCP_FIELDS):
        vals = [_as_int(d[k]) for k in _TCP_FIELDS]
        if all(v is not None for v in vals):
            return (vals[0], vals[1], vals[2])  # type: ignore[return-value]
    if depth > 6:
        return None
    for v in d.values():
        while isinstance(v, VariantValue):
            v = v.value
        if isinstance(v, Mapping):
            got = _find_tcp(v, depth + 1)
            if got is not None:
                return got
    return None


def tcp_key(fields: Mapping[str, Any]) -> tuple[int, int, int] | None:
    """(seq, ack_seq, flags) of a packet event's payload, wherever the layout puts them;
    None for a non-TCP packet."""
    return _find_tcp(fields)


def _vmsync_key(name: str, f: Mapping[str, Any]) -> tuple[bool, Hashable] | None:
    """(is_send, key) of a vmsync / hypercall event, None when it has no usable fields."""
    if name in ("kvm_x86_hypercall", "kvm_hypercall"):
        cnt, uid = _as_int(f.get("a0")), _as_int(f.get("a1"))
        if cnt is None or uid is None:
            return None
        return False, ("gh", uid, cnt)
    cnt, uid = _as_int(f.get("cnt")), _as_int(f.get("vm_uid"))
    if cnt is None or uid is None:
        return None
    way = "gh" if "_gh_" in name else "hg"
    return name in VMSYNC_SEND, (way, uid, cnt)


@dataclass
class EventMatcher:
    """The matching state machine; feed it events in time order with :meth:`add`."""

    _out: dict[str, dict[Hashable, int]] = field(default_factory=dict)  # host -> key -> ts
    _in: dict[str, dict[Hashable, int]] = field(default_factory=dict)
    _pairs: dict[tuple[str, str], tuple[list[int], list[int]]] = field(default_factory=dict)
    _events: dict[str, int] = field(default_factory=dict)

    def add(self, host: str, ts: int, send: bool, key: Hashable) -> None:
        """One send (``send``) or receive event of machine ``host`` at ``ts`` with ``key``."""
        self._events[host] = self._events.get(host, 0) + 1
        own, other = (self._out, self._in) if send else (self._in, self._out)
        for h, table in other.items():
            if h == host:
                continue
            t = table.pop(key, None)
            if t is not None:
                if send:
                    self._add_pair(host, h, ts, t)
                else:
                    self._add_pair(h, host, t, ts)
                return
        mine = own.setdefault(host, {})
        if key not in mine:
            mine[key] = ts
        other.setdefault(host, {})

    def _add_pair(self, sender: str, receiver: str, t_send: int, t_recv: int) -> None:
        s, r = self._pairs.setdefault((sender, receiver), ([], []))
        s.append(t_send)
        r.append(t_recv)

    def result(self) -> MatchResult:
        pairs = {k: MatchedPairs(k[0], k[1], np.array(s, np.int64), np.array(r, np.int64))
                 for k, (s, r) in sorted(self._pairs.items())}
        unmatched: dict[str, int] = {}
        for tables in (self._out, self._in):
            for h, t in tables.items():
                unmatched[h] = unmatched.get(h, 0) + len(t)
        return MatchResult(pairs, dict(self._events), unmatched)


def sync_events(ts: TraceSet) -> Iterator[tuple[str, int, bool, Hashable]]:
    """(host id, timestamp, is_send, key) of every usable sync event, in time order.

    Flat fields (vmsync cnt/vm_uid, hypercall a0/a1, LTTng 2.1 TCP seq/ack_seq/flags) are
    read as columns; nested TCP layouts go through Event objects."""
    host_of_gid = [host_id(c.trace) for c in ts.classes]
    send_tcp, recv_tcp = set(TCP_SEND), set(TCP_RECV)
    for b in ts.batches(names=list(SYNC_EVENTS)):
        rows: list[tuple[int, str, int, bool, Hashable]] = []
        for gid in np.unique(b.gid).tolist():
            name = ts.classes[gid].name
            idx = np.flatnonzero(b.gid == gid)
            host = host_of_gid[gid]
            keys = _column_keys(b, idx, name, send_tcp, recv_tcp)
            stamps = b.ts[idx].tolist()
            if keys is None:  # nested layout: one Event at a time
                for i, t in zip(idx.tolist(), stamps, strict=True):
                    got = _event_key(name, b.event(i).fields, send_tcp, recv_tcp)
                    if got is not None:
                        rows.append((i, host, t, got[0], got[1]))
                continue
            for i, t, got in zip(idx.tolist(), stamps, keys, strict=True):
                if got is not None:
                    rows.append((i, host, t, got[0], got[1]))
        rows.sort(key=lambda r: r[0])
        for _, host, t, send, key in rows:
            yield host, t, send, key


def _event_key(name: str, f: Mapping[str, Any], send_tcp: set[str],
               recv_tcp: set[str]) -> tuple[bool, Hashable] | None:
    if name in send_tcp or name in recv_tcp:
        k = tcp_key(f)
        return None if k is None else (name in send_tcp, ("tcp", *k))
    return _vmsync_key(name, f)


def _column_keys(b: Any, idx: np.ndarray, name: str, send_tcp: set[str],
                 recv_tcp: set[str]) -> list[tuple[bool, Hashable] | None] | None:
    """(is_send, key) per event of ``name`` in batch ``b`` read from flat integer columns, or
    None when the fields are not flat integers (the caller then reads events)."""
    if name in send_tcp or name in recv_tcp:
        fields: tuple[str, ...] = _TCP_FIELDS
    elif name in ("kvm_x86_hypercall", "kvm_hypercall"):
        fields = ("a0", "a1")
    else:
        fields = ("cnt", "vm_uid")
    try:
        cols = b.columns(name, list(fields))
    except KeyError:
        return None
    if any(cols[f].dtype == object for f in fields):
        return None
    pos = np.searchsorted(cols["index"], idx)
    vals = [cols[f][pos].tolist() for f in fields]
    if name in send_tcp or name in recv_tcp:
        send = name in send_tcp
        return [(send, ("tcp", a, k, fl)) for a, k, fl in zip(*vals, strict=True)]
    if fields == ("a0", "a1"):
        return [(False, ("gh", uid, cnt)) for cnt, uid in zip(*vals, strict=True)]
    send, way = name in VMSYNC_SEND, "gh" if "_gh_" in name else "hg"
    return [(send, (way, uid, cnt)) for cnt, uid in zip(*vals, strict=True)]


def match_events(ts: TraceSet) -> MatchResult:
    """Match the TCP and vmsync events of every trace of ``ts``: pairs per (sender, receiver)."""
    m = EventMatcher()
    for host, t, send, key in sync_events(ts):
        m.add(host, t, send, key)
    return m.result()
