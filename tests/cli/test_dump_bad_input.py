"""Bad input: a one-line error naming file and offset, every event before it, no traceback."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest

from tracewatch.cli.main import main

from ..conftest import MANY_THREADS


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture()
def one_stream(tmp_path: Path) -> Path:
    """A copy of one stream of the many-threads trace (tests modify it)."""
    d = tmp_path / "trace"
    d.mkdir()
    shutil.copy(MANY_THREADS / "metadata", d / "metadata")
    shutil.copy(MANY_THREADS / "channel0_3", d / "channel0_3")
    return d


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("tracewatch: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _full(one_stream: Path) -> list[str]:
    rc, out, _ = run("dump", "--no-delta", str(one_stream))
    assert rc == 0
    return out.splitlines()


@pytest.mark.parametrize("cut", [100_000, 100_003, 4096 * 3 + 17])
def test_truncated_stream(one_stream: Path, cut: int) -> None:
    full = _full(one_stream)
    f = one_stream / "channel0_3"
    data = f.read_bytes()
    f.write_bytes(data[:cut])
    rc, out, err = run("dump", "--no-delta", str(one_stream))
    assert rc == 1
    line = _error_line(err)
    assert "channel0_3" in line and re.search(r"byte \d+", line)
    got = out.splitlines()
    # every event of the packets before the truncated one is delivered, identical
    assert got == full[: len(got)]
    assert len(got) > 0 or cut < 4096


def test_garbage_in_middle(one_stream: Path) -> None:
    full = _full(one_stream)
    f = one_stream / "channel0_3"
    data = bytearray(f.read_bytes())
    # find the second packet (magic 0xC1FC1FC1 little-endian) and corrupt its header
    second = data.find(b"\xc1\x1f\xfc\xc1", 1)
    assert second > 0
    data[second: second + 4] = b"\xde\xad\xbe\xef"
    f.write_bytes(bytes(data))
    rc, out, err = run("dump", "--no-delta", str(one_stream))
    assert rc == 1
    line = _error_line(err)
    assert f"byte {second}" in line and "magic" in line
    got = out.splitlines()
    assert 0 < len(got) < len(full) and got == full[: len(got)]


def test_huge_packet_size_is_refused_without_allocating(one_stream: Path) -> None:
    f = one_stream / "channel0_3"
    data = bytearray(f.read_bytes())
    # packet context: after header (4 magic + 16 uuid + 4 stream_id + 8 instance) comes
    # timestamp_begin, timestamp_end, content_size, packet_size (u64 each)
    off = 32 + 8 + 8 + 8
    data[off: off + 8] = (1 << 62).to_bytes(8, "little")
    f.write_bytes(bytes(data))
    rc, _, err = run("dump", str(one_stream))
    assert rc == 1
    assert "extends past the end of the file" in _error_line(err)


def test_huge_sequence_length_in_metadata(tmp_path: Path) -> None:
    d = tmp_path / "t"
    d.mkdir()
    (d / "metadata").write_text("""/* CTF 1.8 */
typealias integer { size = 32; align = 8; signed = false; } := uint32_t;
trace { major = 1; minor = 8; byte_order = le; };
event { name = e; fields := struct { uint32_t n; uint32_t v[n]; }; };
""")
    (d / "stream").write_bytes((0xFFFFFFF0).to_bytes(4, "little") + b"\0" * 8)
    rc, out, err = run("dump", str(d))
    assert rc == 1 and out == ""
    line = _error_line(err)
    assert "sequence length 4294967280" in line and "byte 4" in line


def test_missing_metadata(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    (d / "channel0_0").write_bytes(b"\0" * 64)
    rc, _, err = run("dump", str(d))
    assert rc == 1
    assert "no CTF trace found" in _error_line(err)


def test_nonexistent_path() -> None:
    rc, _, err = run("dump", "/nonexistent/trace")
    assert rc == 1
    assert "no such file" in _error_line(err)


def test_count_and_filters() -> None:
    rc, out, _ = run("dump", "--count", str(MANY_THREADS))
    assert rc == 0 and out.strip() == "240644"
    rc, out, _ = run("dump", "--count", "--names", "sched_switch", str(MANY_THREADS))
    rc2, out2, _ = run("dump", "--names", "sched_switch", str(MANY_THREADS))
    lines = out2.splitlines()
    assert int(out) == len(lines) > 0 and all(" sched_switch: " in ln for ln in lines)
    rc, out, _ = run("dump", "--clock-seconds", "--no-delta", "--begin", "1457113582.8", "--end",
                     "1457113582.9", str(MANY_THREADS))
    stamps = [float(ln[1: ln.index("]")]) for ln in out.splitlines()]
    assert stamps and min(stamps) >= 1457113582.8 and max(stamps) <= 1457113582.9
