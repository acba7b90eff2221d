"""The analysis commands on a truncated trace: the results over the events read before the
fault are printed as usual (tables, ``--mi`` LAMI, ``--csv``, ``--period``), then the
one-line error of ``tracewatch dump`` on stderr, exit status 1, no traceback.

Oracle: the events read before the fault are those ``tracewatch dump`` prints for the
truncated trace; babeltrace2 (which refuses to open the truncated stream at all: it fails to
index it) reads the *intact* trace cut with ``--end`` at the last of them and must print as
many events. Every analysis output on the truncated trace must then be identical to the same
command on the intact trace with that ``--end`` (a run that meets no fault).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tracewatch.ctf.writer import TraceWriter

from ..analyses.kernel_trace import SCHEMAS, switch
from ..conftest import MANY_THREADS
from ..kernel.truncated_trace import Cut, check_babeltrace2, run, truncate_copy


def error_line(err: str, cut: Cut) -> str:
    """stderr: exactly one line, the fault (file, packet offset, reason), no traceback."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("tracewatch: error: ")
    assert cut.stream in line and f"(packet at byte {cut.packet})" in line
    assert re.search(r": byte \d+ ", line) and "truncated" in line
    return line


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Cut:
    """many-threads with channel0_3 cut 137979 bytes into its second packet."""
    cut = truncate_copy(MANY_THREADS, tmp_path_factory.mktemp("trunc") / "trace", "channel0_3", 1, 137_979)
    check_babeltrace2(cut)
    return cut


MODES = {"text": (), "mi": ("--mi",), "csv": ("--csv",), "period": ("--period", "50ms"),
         "period-mi": ("--period", "50ms", "--mi"), "period-csv": ("--period", "50ms", "--csv")}


@pytest.mark.parametrize("command,mode", [(c, m) for c in ("cputop", "sched", "syscalls", "irq", "io")
                                          for m in MODES if not (c == "io" and m.startswith("period"))])
def test_results_before_the_fault_then_one_line_error(many: Cut, command: str, mode: str) -> None:
    """io has no --period."""
    args = MODES[mode]
    rc, out, err = run(command, *args, str(many.path))
    assert rc == 1
    line = error_line(err, many)
    # the same error as dump's
    assert line == many.error
    # the results: those of the intact trace cut at the last event read
    rc_ref, ref, err_ref = run(command, *args, "--end", many.last, str(many.intact))
    assert rc_ref == 0 and err_ref == ""
    assert out == ref and out.strip()
    if "--mi" in args:
        doc = json.loads(out)
        assert doc["results"]
    elif "--csv" not in args:
        assert out.startswith("Timerange: [")


def test_period_windows_cover_the_events_read(many: Cut) -> None:
    """--period --mi: every window of the results lies within the events read."""
    rc, out, _ = run("cputop", "--period", "50ms", "--mi", str(many.path))
    assert rc == 1
    doc = json.loads(out)
    ends = [r["time-range"]["end"]["value"] for r in doc["results"]]
    s, ns = many.last.split(".")
    assert max(ends) == int(s) * 1_000_000_000 + int(ns)


@pytest.mark.parametrize("packet_index,extra", [(2, 5000), (3, 100)])
def test_other_cuts(tmp_path: Path, packet_index: int, extra: int) -> None:
    cut = truncate_copy(MANY_THREADS, tmp_path / "t", "channel0_3", packet_index, extra)
    check_babeltrace2(cut)
    rc, out, err = run("cputop", "--mi", str(cut.path))
    assert rc == 1
    error_line(err, cut)
    assert out == run("cputop", "--mi", "--end", cut.last, str(cut.intact))[1]


def test_fault_before_any_event(tmp_path: Path) -> None:
    """Cut in the first packet header: the merge delivers nothing (dump prints nothing); the
    commands print empty results (--mi: a LAMI document without results for --period)."""
    cut = truncate_copy(MANY_THREADS, tmp_path / "t", "channel0_3", 0, 20)
    assert cut.n_events == 0
    for args in [("cputop",), ("sched", "--mi"), ("irq", "--csv"), ("syscalls", "--period", "10ms", "--mi"),
                 ("cputop", "--period", "10ms")]:
        rc, out, err = run(*args, str(cut.path))
        assert rc == 1, args
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
        assert "channel0_3" in err and "packet at byte 0" in err
        if "--mi" in args:
            doc = json.loads(out)
            if "--period" in args:
                assert doc["results"] == []


# ---------------------------------------------------------------- mem (synthetic trace)

def _mem_trace(path: Path) -> Path:
    """Two CPUs, small packets: sched_switch between three threads and page allocations and
    frees, ~2500 events per CPU."""
    t0 = 1_000_000_000_000
    alloc = {"page": 1, "pfn": 2, "order": 0, "gfp_flags": 0, "migratetype": 0}
    free = {"page": 1, "pfn": 2, "order": 0}
    with TraceWriter(str(path), hostname="synthetic", packet_size=4096) as w:
        sc = w.add_stream_class(header="compact")
        cls = {n: sc.add_event_class(n, SCHEMAS[n])
               for n in ("sched_switch", "kmem_mm_page_alloc", "kmem_mm_page_free")}
        for cpu in range(2):
            s = w.add_stream(sc, cpu=cpu)
            prev = 0
            for k in range(2500):
                t = t0 + k * 1000 + cpu * 7
                if k % 5 == 0:
                    nxt = 100 + cpu * 10 + (k // 5) % 3
                    s.write(cls["sched_switch"], t, switch(prev, nxt, f"p{prev}", f"p{nxt}"))
                    prev = nxt
                elif k % 5 in (1, 2, 4):
                    s.write(cls["kmem_mm_page_alloc"], t, {**alloc, "order": k % 3})
                else:
                    s.write(cls["kmem_mm_page_free"], t, free)
    return path


@pytest.mark.parametrize("args", [(), ("--mi",), ("--csv",)])
def test_mem(tmp_path: Path, args: tuple[str, ...]) -> None:
    intact = _mem_trace(tmp_path / "intact")
    stream = next(f.name for f in sorted(intact.iterdir()) if f.name != "metadata" and f.name.endswith("_1"))
    cut = truncate_copy(intact, tmp_path / "cut", stream, 7, 1000)
    check_babeltrace2(cut)
    rc, out, err = run("mem", *args, str(cut.path))
    assert rc == 1
    error_line(err, cut)
    rc_ref, ref, err_ref = run("mem", *args, "--end", cut.last, str(intact))
    assert rc_ref == 0 and err_ref == ""
    assert out == ref and out.strip()
    if args == ("--mi",):
        assert json.loads(out)["results"]

