"""A fleet root built in a temporary directory from the shared traces (symlinks, never
copies into the repository) and a simulated host + guest pair, plus one host whose trace has
a truncated stream (a copy, :func:`tests.kernel.truncated_trace.truncate_copy`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tracewatch.sim import build_scenario, simulate

from ..conftest import MANY_THREADS, TCP_SYNC
from ..kernel.truncated_trace import Cut, truncate_copy


@dataclass
class Fleet:
    root: Path
    broken: Cut  # the truncated host's trace and dump's error line for it


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """ROOT/node-a, ROOT/node-b: many-threads (the same machine twice); ROOT/pair: the
    tcp-sync traces (two machines, VM1 and VM3, no system call events); ROOT/sim: a
    simulated host and its guest (two machines); ROOT/broken: many-threads with channel0_3
    cut 137979 bytes into its second packet."""
    root = tmp_path_factory.mktemp("fleet")
    (root / "node-a").symlink_to(MANY_THREADS, target_is_directory=True)
    (root / "node-b").symlink_to(MANY_THREADS, target_is_directory=True)
    (root / "pair").symlink_to(TCP_SYNC, target_is_directory=True)
    simulate(build_scenario(guests=1, vcpus=1, cpus=2, duration=200_000_000, seed=3), root / "sim")
    broken = truncate_copy(MANY_THREADS, root / "broken", "channel0_3", 1, 137_979)
    return Fleet(root, broken)
