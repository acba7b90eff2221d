"""Event matching: TCP in the LTTng 2.1 (flat) and newer (nested variant) layouts, the vmsync
hypercall exchange, and the matching rules (other machine only, first unmatched kept)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

import tracewatch
from tracewatch.ctf.values import VariantValue
from tracewatch.ctf.writer import Enum, Int, Struct, TraceWriter, Variant
from tracewatch.sync import Quality, host_id, match_events, synchronize
from tracewatch.sync.matching import EventMatcher, match_arrays, tcp_key

BASE = 1_361_203_569_000_000_000
TCP = Struct([("source_port", Int(16)), ("dest_port", Int(16)), ("seq", Int(32)),
              ("ack_seq", Int(32)), ("data_offset", Int(4)), ("reserved", Int(3)),
              ("flags", Int(9)), ("window_size", Int(16)), ("checksum", Int(16)),
              ("urg_ptr", Int(16))])
IPV4 = Struct([("version", Int(4)), ("ihl", Int(4)), ("protocol", Int(8)),
               ("transport_header_type", Enum(Int(8), {"unknown": 0, "tcp": 6})),
               ("transport_header", Variant("transport_header_type",
                                            {"unknown": Struct(), "tcp": TCP}))])
NESTED = Struct([("skbaddr", Int(64)), ("len", Int(32)),
                 ("network_header_type", Enum(Int(8), {"unknown": 0, "ipv4": 1})),
                 ("network_header", Variant("network_header_type",
                                            {"unknown": Struct(), "ipv4": IPV4}))])
VMSYNC = Struct([("cnt", Int(32)), ("vm_uid", Int(64))])


def _tcp_value(seq: int, ack: int, flags: int) -> dict[str, object]:
    tcp = {"source_port": 22, "dest_port": 40000, "seq": seq, "ack_seq": ack, "data_offset": 5,
           "reserved": 0, "flags": flags, "window_size": 100, "checksum": 0, "urg_ptr": 0}
    ip = {"version": 4, "ihl": 5, "protocol": 6, "transport_header": ("tcp", tcp)}
    return {"skbaddr": 1, "len": 60, "network_header": ("ipv4", ip)}


def test_tcp_key_layouts() -> None:
    flat = {"sk": 1, "seq": 10, "ack_seq": 20, "check": 0, "window": 1, "flags": 0x18}
    assert tcp_key(flat) == (10, 20, 0x18)
    addons = {"sk": 1, "transport_fields": {"thtype_tcp": {"seq": 1, "ack_seq": 2, "flags": 3}}}
    assert tcp_key(addons) == (1, 2, 3)
    nested = {"network_header": VariantValue("ipv4", {"transport_header": VariantValue(
        "tcp", {"source_port": 1, "seq": 4, "ack_seq": 5, "flags": 6})})}
    assert tcp_key(nested) == (4, 5, 6)
    udp = {"network_header": VariantValue("ipv4", {"transport_header": VariantValue(
        "udp", {"source_port": 1, "len": 3})})}
    assert tcp_key(udp) is None


def test_matcher_rules() -> None:
    m = EventMatcher()
    m.add("A", 100, True, "k1")   # A sends k1
    m.add("A", 105, False, "k1")  # A receives k1 itself: not a pair
    m.add("A", 110, True, "k1")   # a second send with that key: the first one is kept
    m.add("B", 150, False, "k1")  # B receives k1: pairs with A's first send
    m.add("B", 160, False, "k2")  # receive before the send (unsynchronized clocks)
    m.add("A", 120, True, "k2")
    r = m.result()
    ab = r.between("A", "B")
    assert ab.send.tolist() == [100, 120] and ab.recv.tolist() == [150, 160]
    assert len(r.between("B", "A")) == 0
    assert r.events == {"A": 4, "B": 2}


def _write_pair(root: Path, a: Fraction, b: Fraction, n: int) -> tuple[Path, Path]:
    """Host (nested net_dev_queue/netif_receive_skb + vmsync host events) and guest (same +
    vmsync guest events) where t_guest = a * t_host + b."""
    host, guest = root / "host", root / "guest"
    with TraceWriter(str(host), hostname="host") as wh, \
            TraceWriter(str(guest), hostname="guest") as wg:
        ev: dict[tuple[str, str], Any] = {}
        for w, tag in ((wh, "h"), (wg, "g")):
            sc = w.add_stream_class()
            ev[tag, "out"] = sc.add_event_class("net_dev_queue", NESTED)
            ev[tag, "in"] = sc.add_event_class("netif_receive_skb", NESTED)
            names = ("vmsync_gh_host", "vmsync_hg_host") if tag == "h" else \
                ("vmsync_gh_guest", "vmsync_hg_guest")
            for name in names:
                ev[tag, name] = sc.add_event_class(name, VMSYNC)
            ev[tag, "stream"] = w.add_stream(sc, cpu=0)
        sh, sg = ev["h", "stream"], ev["g", "stream"]
        g = lambda t: round(a * t + b)  # noqa: E731
        t = BASE
        for i in range(n):
            # host -> guest TCP packet (latency 30 us), guest -> host reply (40 us)
            sh.write(ev["h", "out"], t, _tcp_value(i, 1000 + i, 0x18))
            sg.write(ev["g", "in"], g(t + 30_000), _tcp_value(i, 1000 + i, 0x18))
            sg.write(ev["g", "out"], g(t + 50_000), _tcp_value(1000 + i, i + 1, 0x10))
            sh.write(ev["h", "in"], t + 90_000, _tcp_value(1000 + i, i + 1, 0x10))
            # hypercall exchange: guest A -> host B, host C -> guest D
            uid = 77
            sg.write(ev["g", "vmsync_gh_guest"], g(t + 200_000), {"cnt": 2 * i, "vm_uid": uid})
            sh.write(ev["h", "vmsync_gh_host"], t + 201_000, {"cnt": 2 * i, "vm_uid": uid})
            sh.write(ev["h", "vmsync_hg_host"], t + 202_000, {"cnt": 2 * i + 1, "vm_uid": uid})
            sg.write(ev["g", "vmsync_hg_guest"], g(t + 203_000),
                     {"cnt": 2 * i + 1, "vm_uid": uid})
            t += 10_000_000 + 7_919 * i
    return host, guest


def test_written_traces_nested_tcp_and_vmsync(tmp_path: Path) -> None:
    a, b = 1 + Fraction(25, 10**6), Fraction(-3 * 10**12)
    host, guest = _write_pair(tmp_path, a, b, 60)
    ts = tracewatch.open(str(host), str(guest))
    hid = {t.hostname: host_id(t) for t in ts.traces}
    r = match_events(ts)
    assert len(r.between(hid["host"], hid["guest"])) == 2 * 60  # TCP + hypercall C -> D
    assert len(r.between(hid["guest"], hid["host"])) == 2 * 60  # TCP + hypercall A -> B
    res = synchronize(ts)
    ref = next(s for s in res.traces if s.reference)
    other = next(s for s in res.traces if not s.reference)
    assert other.pairs == 240 and other.quality is Quality.ACCURATE
    # the truth, in the direction of the other trace's transform (other -> reference)
    true = (lambda x: (x - b) / a) if ref.hostname == "host" else (lambda x: a * x + b)
    acc = other.accuracy
    assert acc is not None
    t_other = BASE + 10**9 if other.hostname == "host" else round(a * (BASE + 10**9) + b)
    assert abs(other.transform.exact(t_other) - true(t_other)) <= acc.time_error_ns + 1
    assert acc.time_error_ns < 30_000


def test_match_arrays_equals_the_event_matcher() -> None:
    """Matching columns per key gives what the event-by-event matcher gives (pairs in
    matching order, events and unmatched counts in the same key order) on random streams
    with few keys and machines: duplicates, same-machine pairs, several machines waiting
    with one key, receives before sends."""
    rng = np.random.default_rng(3)
    for trial in range(400):
        nh = int(rng.integers(1, 5))
        hosts = [f"h{i}" for i in rng.permutation(nh).tolist()]
        n = int(rng.integers(0, 60))
        host = rng.integers(0, nh, n)
        send = rng.random(n) < 0.5
        key = np.zeros((n, 4), np.int64)
        key[:, 0] = rng.integers(0, 3, n)
        key[:, 1] = rng.integers(0, 4 if trial % 2 else 40, n)
        t = np.cumsum(rng.integers(0, 3, n))
        m = EventMatcher()
        for h, tt, sd, k in zip(host.tolist(), t.tolist(), send.tolist(), key.tolist(),
                                strict=True):
            m.add(hosts[h], tt, sd, tuple(k))
        want, got = m.result(), match_arrays(hosts, host, t, send, key)
        assert list(got.pairs) == list(want.pairs)
        for k, p in want.pairs.items():
            assert got.pairs[k].send.tolist() == p.send.tolist()
            assert got.pairs[k].recv.tolist() == p.recv.tolist()
        assert list(got.events.items()) == list(want.events.items())
        assert list(got.unmatched.items()) == list(want.unmatched.items())
