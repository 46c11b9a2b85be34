"""The ``bayling-local`` command line: a thin layer over the library.

Each sub-module registers its commands on the main group; :mod:`.runner` turns errors into
exit codes. A sub-module is imported only when one of its commands runs (or help lists them),
so ``translate`` does not pay for the model store's commands and the UI starts sooner.
"""

from __future__ import annotations

import importlib
import sys

import click

from .runner import invoke

PROG = "bayling-local"

# Command name -> the sub-module that registers it (tests check this against the modules).
COMMAND_MODULES: dict[str, str] = {
    "translate": "translate",
    "prompt": "translate",
    "languages": "translate",
    "bench": "translate",
    "convert": "convert",
    "quantize": "convert",
    "verify-gguf": "convert",
    "models": "models",
    "chat": "chat",
    "tm": "tm",
    "serve": "serve",
    "eval": "eval",
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is not None and cmd_name not in self.commands:
            load_commands(self, module_name)
        return super().get_command(ctx, cmd_name)


def load_commands(group: click.Group, module_name: str) -> None:
    """Import one command sub-module and let it register its commands on ``group``."""
    importlib.import_module(f"{__name__}.{module_name}").register(group)
    for command in group.commands.values():
        _whole_first_sentence(command)


def _whole_first_sentence(command: click.Command) -> None:
    """List a command in ``--help`` by its whole first sentence (wrapped), not by click's
    first 45 characters and an ellipsis; sub-groups' commands too."""
    if command.short_help is None and command.help:
        command.short_help = command.get_short_help_str(limit=10_000)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _whole_first_sentence(sub)


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="bayling-local", prog_name=PROG)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """BayLing on your own machine: offline translation and chat through llama.cpp.

    With no command, opens the terminal UI.
    """
    if ctx.invoked_subcommand is None:
        chat = cli.get_command(ctx, "chat")
        assert chat is not None
        ctx.invoke(chat)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and return its exit code."""
    return invoke(cli, PROG, argv)


def run() -> None:
    sys.exit(main())
