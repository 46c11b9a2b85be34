"""The ``bayling-local`` command line: a thin layer over the library.

Each sub-module registers its commands on the main group. :func:`main` is the only place
that turns errors into exit codes: a :class:`~bayling_local.errors.BaylingError` becomes one
line on stderr, Ctrl-C becomes exit code 130, and a closed pipe ends quietly.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import BaylingError, Cancelled
from . import chat, convert, models, translate

PROG = "bayling-local"


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bayling-local", prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """BayLing on your own machine: offline translation and chat through llama.cpp.

    With no command, opens the terminal UI.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(chat.chat_command)


for module in (translate, convert, models, chat):
    module.register(cli)


def fail(message: str, code: int) -> int:
    """Print one error line on stderr and return the exit code."""
    click.echo(f"{PROG}: error: {message}", err=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    try:
        cli.main(args=argv, prog_name=PROG, standalone_mode=False)
    except click.exceptions.Abort:
        return fail("interrupted", Cancelled.exit_code)
    except KeyboardInterrupt:
        return fail("interrupted", Cancelled.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        return fail(exc.format_message(), exc.exit_code)
    except BaylingError as exc:
        return fail(exc.message, exc.exit_code)
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return 0


def run() -> None:
    sys.exit(main())
