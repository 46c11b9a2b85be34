"""The ``bayling-local`` command line: a thin layer over the library.

Each sub-module registers its commands on the main group; :mod:`.runner` turns errors into
exit codes.
"""

from __future__ import annotations

import sys

import click

from . import chat, convert, models, translate
from .runner import invoke

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


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and return its exit code."""
    return invoke(cli, PROG, argv)


def run() -> None:
    sys.exit(main())
