"""Shared fixtures: where the shared traces are, and babeltrace2 (the oracle)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared").resolve()
TRACES = SHARED / "traces"
SUITE = SHARED / "ctf-testsuite"
MANY_THREADS = TRACES / "lttng-kernel-many-threads"
TCP_SYNC = TRACES / "lttng-kernel-tcp-sync"


def babeltrace2(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if shutil.which("babeltrace2") is None:
        pytest.skip("babeltrace2 is not installed (make test installs it)")
    return subprocess.run(["babeltrace2", *args], capture_output=True, text=True, check=check,
                          env={"TZ": "UTC", "PATH": "/usr/bin:/bin"})


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
