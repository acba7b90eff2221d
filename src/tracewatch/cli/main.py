"""Entry point of the ``tracewatch`` command: subcommand registry and error handling.

A :class:`~tracewatch.errors.TracewatchError` (bad trace, bad option) becomes one line on
stderr and exit status 1, never a traceback.  Any other exception is a bug of tracewatch: one
line too (exit status 2), with the traceback only when ``TRACEWATCH_DEBUG`` is set.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import TracewatchError
from .analyses import cputop_cmd, io_cmd, irq_cmd, mem_cmd, sched_cmd, syscalls_cmd
from .critical import critical_path
from .dump import dump
from .live import live
from .sim import sim
from .sync import sync
from .vm import vm


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tracewatch")
def cli() -> None:
    """Monitor the performance of hosts and virtual machines from LTTng kernel traces."""


cli.add_command(dump)
cli.add_command(live)
cli.add_command(cputop_cmd)
cli.add_command(sched_cmd)
cli.add_command(syscalls_cmd)
cli.add_command(irq_cmd)
cli.add_command(io_cmd)
cli.add_command(mem_cmd)
cli.add_command(sync)
cli.add_command(sim)
cli.add_command(vm)
cli.add_command(critical_path)


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
