"""CLI command ``chat``: open the terminal UI (also what ``bayling-local`` alone does)."""

from __future__ import annotations

import sys

import click

from ..errors import UsageError


def register(group: click.Group) -> None:
    """Add this module's commands to the main group."""
    group.add_command(chat_command)


@click.command("chat")
@click.option(
    "-m",
    "--model",
    help="Model to load: a store name, name:QUANT, or a GGUF path (default: settings).",
)
def chat_command(model: str | None = None) -> None:
    """Open the terminal UI: translate and refine, chat, history, models, settings.

    \b
    Keys: F1 shows every key; Ctrl+P opens the command palette; Ctrl+Q quits.
    """
    if model is not None:  # a wrong name fails here, as `translate -m` does, not in the UI
        from ..resolve import resolve_model

        resolve_model(model)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the terminal UI needs an interactive terminal; for scripts and pipes use "
            "'bayling-local translate'"
        )
    from ..tui import run_app

    run_app(model)
