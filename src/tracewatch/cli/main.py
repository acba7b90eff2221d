"""Entry point of the ``tracewatch`` command: subcommand registry and error handling.

A :class:`~tracewatch.errors.TracewatchError` (bad trace, bad option) becomes one line on
stderr and exit status 1, never a traceback.  Any other exception is a bug of tracewatch: one
line too (exit status 2), with the traceback only when ``TRACEWATCH_DEBUG`` is set.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from ..errors import TracewatchError

#: command name -> (module under tracewatch.cli, attribute): each command's module (and what it
#: imports: rich, the analyses, the simulator...) is loaded only when that command runs
COMMANDS: dict[str, tuple[str, str]] = {
    "dump": ("dump", "dump"),
    "live": ("live", "live"),
    "export": ("export", "export"),
    "cputop": ("analyses", "cputop_cmd"),
    "sched": ("analyses", "sched_cmd"),
    "syscalls": ("analyses", "syscalls_cmd"),
    "irq": ("analyses", "irq_cmd"),
    "io": ("analyses", "io_cmd"),
    "mem": ("analyses", "mem_cmd"),
    "sync": ("sync", "sync"),
    "sim": ("sim", "sim"),
    "vm": ("vm", "vm"),
    "critical-path": ("critical", "critical_path"),
    "fleet": ("fleet", "fleet"),
}


#: command name -> its one-line summary in ``tracewatch --help`` (so that listing the commands
#: imports none of them; a command missing here is imported for its docstring's first line)
SUMMARIES: dict[str, str] = {
    "dump": "Print events like babeltrace2 (files or net:// sessions).",
    "live": "List a relayd's live sessions; follow one, per period.",
    "export": "Replay a recorded trace's windows into Graphite.",
    "cputop": "CPU usage per thread, per CPU and in total (lttng-cputop).",
    "sched": "Scheduling latency, wakeup to switch-in (lttng-schedstats).",
    "syscalls": "System call counts, durations, errors (lttng-syscallstats).",
    "irq": "Interrupt counts, durations, softirq latency (lttng-irqstats).",
    "io": "I/O latency and bytes per process and per file.",
    "mem": "Pages allocated and freed per thread (lttng-memtop).",
    "sync": "Clock transforms between machines' traces (convex hull).",
    "sim": "Simulate a host running VMs: traces plus their ground truth.",
    "vm": "vCPU states, real steal time, preemptions of a host's VMs.",
    "critical-path": "What a task's time was made of, across host and VMs.",
    "fleet": "Many hosts' analyses in parallel (Dask), one row per host.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when used; ``tracewatch --help`` lists them
    from :data:`SUMMARIES` without importing them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            text = SUMMARIES.get(name)
            if text is None:
                cmd = self.get_command(ctx, name)
                text = cmd.get_short_help_str(80) if cmd is not None else ""
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        cmd = getattr(importlib.import_module(f"{__package__}.{spec[0]}"), spec[1])
        assert isinstance(cmd, click.Command)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tracewatch")
def cli() -> None:
    """Monitor the performance of hosts and virtual machines from LTTng kernel traces."""


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="tracewatch", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except TracewatchError as e:
        click.echo(f"tracewatch: error: {e}", err=True)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if os.environ.get("TRACEWATCH_DEBUG"):
            raise
        click.echo(f"tracewatch: internal error: {type(e).__name__}: {e} (a bug in tracewatch; "
                   "TRACEWATCH_DEBUG=1 shows the traceback)", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
