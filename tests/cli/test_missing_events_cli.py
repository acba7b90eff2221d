"""Every analysis command, on a trace without the events it needs: one error line naming
the missing events and the ``lttng enable-event`` command that records them (plain, --mi,
--csv and --period runs alike), exit status 1, nothing on stdout."""

from __future__ import annotations

import re

import pytest

from ..analyses.kernel_trace import switch, write_kernel_trace
from .test_analyses_cli import run

COMMANDS = ["cputop", "sched", "syscalls", "irq", "io", "mem"]

#: what each command lacks in a trace holding only sched_switch events: the event names the
#: message must give (the trace has sched_switch, so cputop is not in this table)
NEEDS_BESIDES_SWITCH = {
    "sched": ["sched_waking"],
    "syscalls": ["syscall_entry_*"],
    "irq": ["irq_handler_entry", "irq_softirq_entry"],
    "io": ["block_rq_issue"],
    "mem": ["kmem_mm_page_alloc"],
}


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("missing")
    return {"raise-only": write_kernel_trace(d / "r", [(10**9, 0, "irq_softirq_raise", {"vec": 1})]),
            "switch-only": write_kernel_trace(d / "s", [(10**9 + i, 0, "sched_switch", switch(0, 1 + i % 2))
                                                        for i in range(4)])}


def _check(err: str, cmd: str) -> None:
    assert err.count("\n") == 1, err
    assert err.startswith(f"tracewatch: error: {cmd}: the trace has no "), err
    assert re.search(r"lttng enable-event -k \S+", err), err
    assert "Traceback" not in err


CASES = [(cmd, opts) for cmd in COMMANDS for opts in ([], ["--mi"], ["--csv"], ["--period", "1ms"])
         if not (opts[:1] == ["--period"] and cmd in ("io", "mem"))]  # io and mem have no --period


@pytest.mark.parametrize(("cmd", "options"), CASES)
def test_trace_without_the_events(cmd: str, options: list[str], traces: dict[str, str]) -> None:
    # the raise-only trace lacks every analysis' events (irq: the entries and exits)
    rc, out, err = run(cmd, traces["raise-only"], *options)
    assert (rc, out) == (1, ""), err
    _check(err, cmd)
    if cmd in NEEDS_BESIDES_SWITCH:
        rc, out, err = run(cmd, traces["switch-only"], *options)
        assert (rc, out) == (1, ""), err
        _check(err, cmd)
        for name in NEEDS_BESIDES_SWITCH[cmd]:
            assert name in err, err


def test_messages_name_sched_switch_when_it_lacks(traces: dict[str, str]) -> None:
    for cmd in ("cputop", "sched", "syscalls"):
        _, _, err = run(cmd, traces["raise-only"])
        assert "sched_switch" in err, err
