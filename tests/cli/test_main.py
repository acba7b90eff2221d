"""The command's start: ``tracewatch --help`` lists every command without importing any of
them (nor the JIT decoder), and the lists agree."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from tracewatch.cli.main import COMMANDS, SUMMARIES, cli


def test_every_command_has_a_summary() -> None:
    assert SUMMARIES.keys() == COMMANDS.keys()
    out = CliRunner().invoke(cli, ["--help"]).output
    for name, text in SUMMARIES.items():
        assert f"  {name} " in out and text in out


def test_help_imports_no_command_and_no_decoder() -> None:
    code = ("import sys\n"
            "from tracewatch.cli.main import main\n"
            "rc = main(['--help'])\n"
            "heavy = [m for m in sys.modules if m.startswith(('numba', 'tracewatch.ctf', "
            "'tracewatch.analyses', 'rich', 'prometheus_client'))]\n"
            "cmds = [m for m in sys.modules if m.startswith('tracewatch.cli.') "
            "and m != 'tracewatch.cli.main']\n"
            "print(rc, heavy, cmds)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.splitlines()[-1] == "0 [] []"


def test_each_command_still_has_its_own_help() -> None:
    for name in COMMANDS:
        r = CliRunner().invoke(cli, [name, "--help"])
        assert r.exit_code == 0 and "Usage: " in r.output, name


def test_reader_types_still_importable_from_the_package() -> None:
    import tracewatch
    from tracewatch import Event, EventBatch, TraceSet
    from tracewatch.ctf import trace

    assert TraceSet is trace.TraceSet and Event.__name__ == "Event"
    assert EventBatch.__name__ == "EventBatch" and callable(tracewatch.open)
