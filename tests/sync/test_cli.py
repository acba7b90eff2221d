"""``tracewatch sync``: text output, the --mi JSON document, one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
from decimal import Decimal, localcontext
from pathlib import Path

from tracewatch.cli.main import main
from tracewatch.ctf.writer import Int, Struct, TraceWriter

from ..conftest import TCP_SYNC

BASE = 1_361_203_569_000_000_000
INET = Struct([("sk", Int(64)), ("seq", Int(32)), ("ack_seq", Int(32)), ("check", Int(16)),
               ("window", Int(16)), ("flags", Int(16))])  # the LTTng 2.1 addons layout


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def _write(path: Path, host: str, events: list[tuple[int, str, int, int, int]]) -> None:
    with TraceWriter(str(path), hostname=host) as w:
        sc = w.add_stream_class()
        ecs = {n: sc.add_event_class(n, INET)
               for n in ("inet_sock_local_out", "inet_sock_local_in", "sched_switch")}
        s = w.add_stream(sc, cpu=0)
        for t, name, seq, ack, flags in sorted(events):
            s.write(ecs[name], t, {"sk": 1, "seq": seq, "ack_seq": ack, "check": 0,
                                   "window": 1, "flags": flags})


def _two_hosts(tmp: Path, offset: int = 5_000_000_000) -> tuple[Path, Path]:
    a_ev, b_ev = [], []
    t = BASE
    for i in range(20):
        a_ev.append((t, "inet_sock_local_out", i, 500 + i, 0x18))
        b_ev.append((t + offset + 40_000, "inet_sock_local_in", i, 500 + i, 0x18))
        b_ev.append((t + offset + 60_000, "inet_sock_local_out", 500 + i, i + 1, 0x10))
        a_ev.append((t + 95_000, "inet_sock_local_in", 500 + i, i + 1, 0x10))
        t += 50_000_000 + 1_234 * i
    _write(tmp / "a", "alpha", a_ev)
    _write(tmp / "b", "beta", b_ev)
    return tmp / "a", tmp / "b"


def test_text_output(tmp_path: Path) -> None:
    a, b = _two_hosts(tmp_path)
    rc, out, err = run("sync", str(a), str(b))
    assert rc == 0, err
    assert out.startswith("Reference: ")
    assert "t_ref = slope * t_trace + offset" in out
    for word in ("host       alpha", "host       beta", "reference  yes (identity)",
                 "pairs      40", "quality    ACCURATE", "accuracy   slope width"):
        assert word in out, out
    slope = next(ln.split()[1] for ln in out.splitlines() if ln.strip().startswith("slope"))
    assert len(slope.replace(".", "").lstrip("0")) >= 17 or Decimal(slope) == 1


def test_mi_document(tmp_path: Path) -> None:
    a, b = _two_hosts(tmp_path)
    rc, out, _ = run("sync", "--mi", str(a), str(b))
    assert rc == 0
    doc = json.loads(out)
    res = doc["results"]
    assert [r["host"] for r in res] == ["alpha", "beta"]
    assert sum(r["reference"] for r in res) == 1
    other = next(r for r in res if not r["reference"])
    assert other["pairs"] == 40 and other["quality"] == "ACCURATE"
    assert isinstance(other["slope"], str) and isinstance(other["offset"], str)
    # beta's clock is alpha's + 5 s (slope 1 by construction): check it on the traced interval
    with localcontext() as ctx:
        ctx.prec = 40
        slope, off = Decimal(other["slope"]), Decimal(other["offset"])
        t = Decimal(BASE + 500_000_000 + (5_000_000_000 if other["host"] == "beta" else 0))
        shift = slope * t + off - t
    assert abs(shift - (-5_000_000_000 if other["host"] == "beta" else 5_000_000_000)) < 100_000
    acc = other["accuracy"]
    assert Decimal(acc["slope_min"]) <= slope <= Decimal(acc["slope_max"])
    assert Decimal(acc["offset_min"]) <= off <= Decimal(acc["offset_max"])
    assert set(other["from_reference"]) == {"formula", "slope", "offset"}


def test_real_trace_mi() -> None:
    rc, out, _ = run("sync", "--mi", str(TCP_SYNC))
    assert rc == 0
    res = {Path(r["trace"]).name: r for r in json.loads(out)["results"]}
    assert res["scp_dest"]["reference"] and res["scp_src"]["pairs"] == 46
    assert res["scp_src"]["slope"].startswith("0.99994137837031390")
    assert res["scp_src"]["offset"].startswith("79796507913179.33")


def test_no_sync_events_is_one_line_error(tmp_path: Path) -> None:
    _write(tmp_path / "a", "alpha", [(BASE, "sched_switch", 0, 0, 0)])
    _write(tmp_path / "b", "beta", [(BASE + 10, "sched_switch", 0, 0, 0)])
    rc, out, err = run("sync", str(tmp_path / "a"), str(tmp_path / "b"))
    assert rc == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("tracewatch: error: cannot synchronize ")
    assert "no matched sync event with another machine" in lines[0]
    assert "lttng enable-event -k inet_sock_local_in,inet_sock_local_out" in lines[0]
