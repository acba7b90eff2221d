"""tracewatch io's per-file and top-latency tables, as people read them."""

from __future__ import annotations

import pytest

import tracewatch
from tracewatch.analyses.io import io_stats, top_io_calls

from ..conftest import MANY_THREADS
from .test_analyses_cli import run


def test_io_human_output_has_files_and_top_latencies() -> None:
    if not MANY_THREADS.exists():
        pytest.skip("many-threads trace not available")
    rc, out, err = run("io", str(MANY_THREADS), "--top", "3")
    assert rc == 0, err
    r = io_stats(tracewatch.open(str(MANY_THREADS)))
    assert "Per-file I/O" in out and "Top I/O system call latencies (us)" in out
    # the three files with the most bytes, then the three longest calls, in that order
    files = r.per_file["path"].tolist()[:3]
    pos = [out.index(f) for f in files]
    assert pos == sorted(pos)
    top = top_io_calls(r, 3)
    assert f"{top['duration_ns'][0] / 1000:.3f}" in out
