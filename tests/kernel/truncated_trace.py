"""A copy of a real trace with one stream truncated, and what ``tracewatch dump`` reads of it
before the fault (the events every reader of tracewatch must keep), checked against
babeltrace2 reading the intact trace up to the last of them."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..conftest import babeltrace2


def run(*args: str) -> tuple[int, str, str]:
    """``tracewatch ARGS``: exit status, stdout, stderr."""
    from tracewatch.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


MAGIC = b"\xc1\x1f\xfc\xc1"
STAMP = re.compile(r"^\[(\d+)\.(\d{9})\]")


def packet_offsets(data: bytes) -> list[int]:
    out, i = [], data.find(MAGIC)
    while i >= 0:
        out.append(i)
        i = data.find(MAGIC, i + 1)
    return out


@dataclass
class Cut:
    """A copy of a trace with one stream truncated, and what was read of it before the fault."""

    path: Path  # the truncated copy
    intact: Path  # the original
    stream: str  # name of the truncated stream file
    packet: int  # byte offset of the packet holding the cut
    n_events: int  # events dump prints before the fault
    last: str  # their last timestamp, SECONDS.NS (an --end for the intact trace)
    error: str  # dump's error line

    @property
    def last_ns(self) -> int:
        s, ns = self.last.split(".")
        return int(s) * 1_000_000_000 + int(ns)


def truncate_copy(src: Path, dst: Path, stream: str, packet_index: int, extra: int) -> Cut:
    """Copy the trace ``src`` to ``dst`` (files only: the originals are read-only) and cut
    ``stream`` ``extra`` bytes into its packet ``packet_index``."""
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            shutil.copyfile(f, dst / f.name)
    data = (dst / stream).read_bytes()
    packet = packet_offsets(data)[packet_index]
    assert packet + extra < len(data)
    (dst / stream).write_bytes(data[: packet + extra])
    rc, out, err = run("dump", "--clock-seconds", "--no-delta", str(dst))
    assert rc == 1 and err.count("\n") == 1, err
    lines = out.splitlines()
    m = STAMP.match(lines[-1]) if lines else None
    last = f"{m.group(1)}.{m.group(2)}" if m else ""
    return Cut(dst, src, stream, packet, len(lines), last, err.strip())


def check_babeltrace2(cut: Cut) -> None:
    """babeltrace2 (which cannot open the truncated stream: it fails to index it) reads the
    intact trace up to the last event read before the fault: as many events as dump printed
    before it (no event at that same time left over in another stream)."""
    out = babeltrace2("--clock-seconds", f"--end={cut.last}", str(cut.intact)).stdout.splitlines()
    assert len(out) == cut.n_events > 0
    assert STAMP.match(out[-1]).group(0) == f"[{cut.last}]"  # type: ignore[union-attr]
