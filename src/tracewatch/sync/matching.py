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

Events are read in time order (:class:`SyncColumns` gathers them as columns and
:func:`match_arrays` matches them per key, with the same result).  A send looks for an unmatched receive with its key on another
machine (and a receive for an unmatched send): if found, the two make a pair and leave the
tables; if not, the event waits in its machine's table, unless an event with the same key
already waits there (the first one is kept).  A send and a receive on the same machine never
make a pair.

A machine is identified by its host id: the clock uuid of its traces (LTTng traces of one
boot share it), else the env hostname, else the trace path.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..ctf import Trace, TraceSet
from ..ctf.values import VariantValue

__all__ = ["TCP_SEND", "TCP_RECV", "VMSYNC_SEND", "VMSYNC_RECV", "SYNC_EVENTS", "host_id",
           "MatchedPairs", "MatchResult", "EventMatcher", "SyncColumns", "match_arrays",
           "match_events", "tcp_key"]

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
    """The matching state machine; feed it events in time order with :meth:`add`.

    Unmatched events wait by key: ``key -> {host: timestamp}``, one table per direction. When
    several other machines hold the key, the one that first had an unmatched event wins."""

    _out: dict[Hashable, dict[str, int]] = field(default_factory=dict)  # key -> host -> ts
    _in: dict[Hashable, dict[str, int]] = field(default_factory=dict)
    _rank: dict[str, int] = field(default_factory=dict)  # host -> order of its first wait
    _pairs: dict[tuple[str, str], tuple[list[int], list[int]]] = field(default_factory=dict)
    _events: dict[str, int] = field(default_factory=dict)

    def add(self, host: str, ts: int, send: bool, key: Hashable) -> None:
        """One send (``send``) or receive event of machine ``host`` at ``ts`` with ``key``."""
        self._events[host] = self._events.get(host, 0) + 1
        own, other = (self._out, self._in) if send else (self._in, self._out)
        waiting = other.get(key)
        if waiting:
            hosts = [h for h in waiting if h != host]
            if hosts:
                h = min(hosts, key=self._rank.__getitem__) if len(hosts) > 1 else hosts[0]
                t = waiting.pop(h)
                if not waiting:
                    del other[key]
                if send:
                    self._add_pair(host, h, ts, t)
                else:
                    self._add_pair(h, host, t, ts)
                return
        own.setdefault(key, {}).setdefault(host, ts)
        self._rank.setdefault(host, len(self._rank))

    def _add_pair(self, sender: str, receiver: str, t_send: int, t_recv: int) -> None:
        s, r = self._pairs.setdefault((sender, receiver), ([], []))
        s.append(t_send)
        r.append(t_recv)

    def result(self) -> MatchResult:
        pairs = {k: MatchedPairs(k[0], k[1], np.array(s, np.int64), np.array(r, np.int64))
                 for k, (s, r) in sorted(self._pairs.items())}
        unmatched = dict.fromkeys(self._rank, 0)
        for table in (self._out, self._in):
            for hosts in table.values():
                for h in hosts:
                    unmatched[h] += 1
        return MatchResult(pairs, dict(self._events), unmatched)


_KIND = {"tcp": 0, "gh": 1, "hg": 2}


def _i64(v: int) -> int:
    """A Python int as the int64 with the same low 64 bits (unsigned 64-bit fields)."""
    return ((int(v) + (1 << 63)) % (1 << 64)) - (1 << 63)


def _int_key(key: Hashable) -> tuple[int, int, int, int]:
    """("tcp", seq, ack_seq, flags) / (way, vm_uid, cnt) as four int64 values."""
    assert isinstance(key, tuple)
    vals = [_i64(v) for v in key[1:]] + [0] * (4 - len(key))
    return (_KIND[key[0]], vals[0], vals[1], vals[2])


class SyncColumns:
    """The usable sync events of a trace set, gathered as columns from its batches (fed in
    time order with :meth:`add`; a batch may hold other events too), and matched by
    :meth:`result` exactly as an :class:`EventMatcher` fed one event at a time would.

    A key is four int64 values: kind (0 TCP, 1 guest -> host hypercall, 2 host -> guest),
    then seq, ack_seq, flags (TCP) or vm_uid, cnt, 0 (vmsync).  Flat fields are read as
    columns; nested TCP layouts go through Event objects."""

    def __init__(self, ts: TraceSet) -> None:
        self.ts = ts
        self.hosts: list[str] = []
        code: dict[str, int] = {}
        for c in ts.classes:
            code.setdefault(host_id(c.trace), len(code))
        self.hosts = list(code)
        self.host_of_gid = np.array([code[host_id(c.trace)] for c in ts.classes], np.int64)
        self.gids = ts.class_ids(list(SYNC_EVENTS))
        self.send_tcp, self.recv_tcp = set(TCP_SEND), set(TCP_RECV)
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._at: list[np.ndarray] = []
        self._order: np.ndarray | None = None

    def add(self, b: Any, at: int | None = None) -> None:
        """The sync events of batch ``b``.  Batches come in time order, or else each with
        ``at``, the number of events of the batches given before it, and :meth:`reorder`
        is called once they are all given."""
        mine = np.isin(b.gid, self.gids)
        if not mine.any():
            return
        idx_l, send_l, key_l = [], [], []
        for gid in np.unique(b.gid[mine]).tolist():
            name = self.ts.classes[gid].name
            idx = np.flatnonzero(b.gid == gid)
            got = _column_keys(b, idx, name, self.send_tcp, self.recv_tcp)
            if got is None:  # nested layout: one Event at a time
                rows = [(i, _event_key(name, b.event(i).fields, self.send_tcp, self.recv_tcp))
                        for i in idx.tolist()]
                ok = [(i, k) for i, k in rows if k is not None]
                idx = np.array([i for i, _ in ok], np.int64)
                send = np.array([k[0] for _, k in ok], bool)
                keys = np.array([_int_key(k[1]) for _, k in ok], np.int64).reshape(-1, 4)
            else:
                send, keys = got
            idx_l.append(idx)
            send_l.append(send)
            key_l.append(keys)
        idx = np.concatenate(idx_l)
        order = np.argsort(idx, kind="stable")
        idx = idx[order]
        self._parts.append((self.host_of_gid[b.gid[idx]], b.ts[idx].astype(np.int64),
                            np.concatenate(send_l)[order], np.concatenate(key_l)[order]))
        if at is not None:
            self._at.append(idx + at)

    def reorder(self, seq_of: np.ndarray) -> None:
        """Put the events in time order: ``seq_of[i]`` is the position in time of the
        ``i``-th event given (counting every event of the batches, in the order given)."""
        if self._at:
            self._order = np.argsort(seq_of[np.concatenate(self._at)], kind="stable")

    def result(self) -> MatchResult:
        if not self._parts:
            z = np.zeros(0, np.int64)
            return match_arrays(self.hosts, z, z, z.astype(bool), z.reshape(0, 4))
        host, t, send, key = (np.concatenate([p[i] for p in self._parts]) for i in range(4))
        if self._order is not None:
            o = self._order
            host, t, send, key = host[o], t[o], send[o], key[o]
        return match_arrays(self.hosts, host, t, send, key)


def match_arrays(hosts: list[str], host: np.ndarray, t: np.ndarray, send: np.ndarray,
                 key: np.ndarray) -> MatchResult:
    """Match events given in time order as columns (host: index into ``hosts``; timestamp;
    is_send; key: rows of int64): the result of an :class:`EventMatcher` fed them one by
    one, computed per key.

    Keys are independent but for one rule: when several machines wait with a key, the one
    that first waited (for any key) wins.  A key seen exactly twice, as a send and a receive
    of two machines, is a pair (its first event waits, the second matches it); a key seen
    once waits for ever; the other keys (rare) are matched event by event, the machines
    ranked by their first wait."""
    n = t.size
    pos = np.arange(n)
    if n:
        order = np.lexsort((pos, *key.T[::-1]))
        ks = key[order]
        new = np.ones(n, bool)
        new[1:] = (ks[1:] != ks[:-1]).any(axis=1)
        gstart = np.flatnonzero(new)
    else:
        order, gstart = pos, pos
    size = np.diff(np.append(gstart, n))
    first = order[gstart]
    second = order[np.minimum(gstart + 1, max(n - 1, 0))]
    pair = (size == 2) & (send[first] != send[second]) & (host[first] != host[second])
    e1, e2 = first[pair], second[pair]
    lone = first[size == 1]
    nh = len(hosts)
    first_wait = np.full(nh, n, np.int64)
    np.minimum.at(first_wait, host[e1], e1)
    np.minimum.at(first_wait, host[lone], lone)
    waiting = np.bincount(host[lone], minlength=nh)
    # the other keys, event by event
    rest = ~pair & (size > 1)
    hard = np.sort(np.concatenate([order[g:g + k] for g, k in
                                   zip(gstart[rest].tolist(), size[rest].tolist(), strict=True)]
                                  or [np.zeros(0, np.int64)])).tolist()
    tables: tuple[dict[Hashable, dict[int, int]], dict[Hashable, dict[int, int]]] = ({}, {})
    hp: list[tuple[int, int, int, int, int]] = []  # pos, sender, receiver, t_send, t_recv
    for p in hard:
        h, tp, sd, k = int(host[p]), int(t[p]), bool(send[p]), tuple(key[p].tolist())
        own, other = tables if sd else tables[::-1]
        cands = [x for x in other.get(k, {}) if x != h]
        if cands:
            x = min(cands, key=lambda c: int(first_wait[c]))
            tx = other[k].pop(x)
            if not other[k]:
                del other[k]
            hp.append((p, h, x, tp, tx) if sd else (p, x, h, tx, tp))
            continue
        if h not in own.setdefault(k, {}):
            own[k][h] = tp
        first_wait[h] = min(int(first_wait[h]), p)
    for table in tables:
        for hs in table.values():
            for h in hs:
                waiting[h] += 1
    # pairs in the order they were matched
    sender = np.where(send[e1], host[e1], host[e2])
    receiver = np.where(send[e1], host[e2], host[e1])
    ts_send = np.where(send[e1], t[e1], t[e2])
    ts_recv = np.where(send[e1], t[e2], t[e1])
    at = e2
    if hp:
        extra = np.array(hp, np.int64)
        at = np.concatenate([at, extra[:, 0]])
        sender = np.concatenate([sender, extra[:, 1]])
        receiver = np.concatenate([receiver, extra[:, 2]])
        ts_send = np.concatenate([ts_send, extra[:, 3]])
        ts_recv = np.concatenate([ts_recv, extra[:, 4]])
    o = np.argsort(at, kind="stable")
    sender, receiver, ts_send, ts_recv = sender[o], receiver[o], ts_send[o], ts_recv[o]
    pairs: dict[tuple[str, str], MatchedPairs] = {}
    for sr in sorted({(hosts[a], hosts[b]) for a, b in
                      set(zip(sender.tolist(), receiver.tolist(), strict=True))}):
        sel = (sender == hosts.index(sr[0])) & (receiver == hosts.index(sr[1]))
        pairs[sr] = MatchedPairs(sr[0], sr[1], ts_send[sel], ts_recv[sel])
    seen = np.bincount(host, minlength=nh)
    first_event = np.full(nh, n, np.int64)
    np.minimum.at(first_event, host, pos)
    events = {hosts[h]: int(seen[h]) for h in np.argsort(first_event, kind="stable").tolist()
              if seen[h]}
    unmatched = {hosts[h]: int(waiting[h]) for h in
                 np.argsort(first_wait, kind="stable").tolist() if first_wait[h] < n}
    return MatchResult(pairs, events, unmatched)


def _event_key(name: str, f: Mapping[str, Any], send_tcp: set[str],
               recv_tcp: set[str]) -> tuple[bool, Hashable] | None:
    if name in send_tcp or name in recv_tcp:
        k = tcp_key(f)
        return None if k is None else (name in send_tcp, ("tcp", *k))
    return _vmsync_key(name, f)


def _column_keys(b: Any, idx: np.ndarray, name: str, send_tcp: set[str],
                 recv_tcp: set[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """(is_send, key rows) of the events ``idx`` of ``name`` in batch ``b`` read from flat
    integer columns, or None when the fields are not flat integers (the caller then reads
    events)."""
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
    if any(cols[f].dtype == object or cols[f].dtype.kind == "f" for f in fields):
        return None
    pos = np.searchsorted(cols["index"], idx)
    v = {f: cols[f][pos].astype(np.int64) for f in fields}
    keys = np.zeros((idx.size, 4), np.int64)
    if name in send_tcp or name in recv_tcp:
        keys[:, 1], keys[:, 2], keys[:, 3] = v["seq"], v["ack_seq"], v["flags"]
        return np.full(idx.size, name in send_tcp), keys
    if fields == ("a0", "a1"):
        keys[:, 0], keys[:, 1], keys[:, 2] = _KIND["gh"], v["a1"], v["a0"]
        return np.zeros(idx.size, bool), keys
    keys[:, 0] = _KIND["gh" if "_gh_" in name else "hg"]
    keys[:, 1], keys[:, 2] = v["vm_uid"], v["cnt"]
    return np.full(idx.size, name in VMSYNC_SEND), keys


def match_events(ts: TraceSet) -> MatchResult:
    """Match the TCP and vmsync events of every trace of ``ts``: pairs per (sender, receiver)."""
    cols = SyncColumns(ts)
    for b in ts.batches(names=list(SYNC_EVENTS)):
        cols.add(b)
    return cols.result()
