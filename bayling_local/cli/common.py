"""Pieces the CLI commands share: engine flags, model loading, input and output checks."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import InputError, ModelError, OutputError, UsageError
from ..settings import Settings

if TYPE_CHECKING:  # the engine (jinja2, llama.cpp) loads with the first model, not with the CLI
    from ..engine import Engine


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags of every command that loads a model."""
    options = [
        click.option(
            "-m",
            "--model",
            help="Model: a store name, name:QUANT, or a GGUF path (default: settings).",
        ),
        click.option(
            "--threads", type=click.IntRange(min=1), help="CPU threads (default: physical cores)."
        ),
        click.option(
            "--gpu-layers", type=int, help="Layers to offload to the GPU: -1 all, 0 none."
        ),
        click.option(
            "--context", type=click.IntRange(min=64), help="Cap on the context length in tokens."
        ),
        click.option(
            "--max-tokens", type=click.IntRange(min=1), help="Most tokens to generate per reply."
        ),
        click.option(
            "--prompt-format",
            type=click.Choice(["bayling", "bayling-3"]),
            help="Override the model's prompt format.",
        ),
        click.option("-q", "--quiet", is_flag=True, help="No notices on stderr."),
    ]
    return functools.reduce(lambda cmd, opt: opt(cmd), reversed(options), command)


def notice(message: str, *, quiet: bool = False) -> None:
    if not quiet:
        click.echo(message, err=True)


def load_engine_for(
    settings: Settings,
    flags: dict[str, Any],
    *,
    announce: bool = True,
    min_context: int | None = None,
) -> Engine:
    """Resolve the model (flag, settings, store, demo) and load it."""
    from ..engine import Engine, EngineConfig
    from ..store import resolve_model

    quiet = bool(flags.get("quiet")) or not announce
    resolved = resolve_model(flags.get("model") or settings.model)
    if resolved.is_demo:
        notice(resolved.demo_notice, quiet=bool(flags.get("quiet")))
    context = settings.context
    if min_context is not None and context is not None:
        context = max(context, min_context)
    config = EngineConfig(
        model_path=resolved.path,
        context=context,
        threads=settings.threads,
        gpu_layers=settings.gpu_layers,
        prompt_format=flags.get("prompt_format"),
    )
    if sys.stderr.isatty() and not quiet:
        click.echo(f"loading {resolved.name} …", err=True, nl=False)
        try:
            engine = Engine(config)
        finally:
            click.echo("\r\033[K", err=True, nl=False)
    else:
        engine = Engine(config)
    if min_context is not None and engine.n_ctx < min_context:
        raise ModelError(
            f"the model's context ({engine.n_ctx} tokens) is smaller than the {min_context} this needs"
        )
    return engine


def read_input(path: Path | None, *, data: bytes | None = None) -> str:
    """Text from ``data``, a file, or stdin, validated (not empty, not binary, UTF-8)."""
    from ..translate import validate_text

    if data is None:
        if path is not None:
            try:
                data = Path(path).expanduser().read_bytes()
            except FileNotFoundError:
                raise InputError(f"input file not found: {path}") from None
            except IsADirectoryError:
                raise InputError(f"{path} is a directory, not a text file") from None
            except PermissionError:
                raise InputError(f"cannot read {path}: permission denied") from None
        else:
            if sys.stdin is None or sys.stdin.isatty():
                raise UsageError("no input: give the text as arguments, with -i FILE, or on stdin")
            data = sys.stdin.buffer.read()
    return validate_text(data)


def open_output_check(path: Path) -> None:
    """Fail before any work if ``path`` cannot be written (the file itself is not touched)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: its directory does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"cannot write {path}: permission denied")


def stdout_writer() -> Callable[[str], None]:
    """Write streamed text to stdout as it comes (plain text: no colour, no control codes)."""

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    return write
