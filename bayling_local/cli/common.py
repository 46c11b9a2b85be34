"""Pieces the CLI commands share: engine flags, model loading, input and output checks."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import InputError, UsageError
from ..settings import Settings

if TYPE_CHECKING:  # the engine (jinja2, llama.cpp) loads with the first model, not with the CLI
    from ..engine import Engine
    from ..runtime import Runtime


def engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags of every command that loads a model."""
    options = [
        click.option(
            "-m",
            "--model",
            help="Model: a store name, name:QUANT, or a GGUF path (default: settings).",
            shell_complete=complete_model,
        ),
        click.option(
            "--threads",
            type=int,
            help="CPU threads (default: physical cores; at most the logical cores).",
        ),
        click.option(
            "--gpu-layers", type=int, help="Layers to offload to the GPU: -1 all, 0 none."
        ),
        click.option("--context", type=int, help="Cap on the context length in tokens (>= 64)."),
        click.option("--max-tokens", type=int, help="Most tokens to generate per reply."),
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
    return load_runtime_for(settings, flags, announce=announce, min_context=min_context).engine


def load_runtime_for(
    settings: Settings,
    flags: dict[str, Any],
    *,
    announce: bool = True,
    min_context: int | None = None,
) -> Runtime:
    """:func:`bayling_local.runtime.load_runtime` with the CLI's notices and loading line."""
    from ..runtime import load_runtime

    quiet = bool(flags.get("quiet"))

    @contextlib.contextmanager
    def loading(name: str) -> Iterator[None]:
        if not (sys.stderr.isatty() and announce and not quiet):
            yield
            return
        click.echo(f"loading {name} …", err=True, nl=False)
        try:
            yield
        finally:
            click.echo("\r\033[K", err=True, nl=False)

    return load_runtime(
        settings,
        model=flags.get("model"),
        prompt_format=flags.get("prompt_format"),
        min_context=min_context,
        notify=lambda message: notice(message, quiet=quiet),
        loading=loading,
    )


def read_input(path: Path | None, *, data: bytes | None = None) -> str:
    """Text from ``data``, a file, or stdin, validated (not empty, not binary; UTF-8, or
    UTF-16/32 recognised and decoded). A file read here is protected: no output replaces it."""
    from ..inputs import decode_input
    from ..output import protect_input

    name = "the input"
    if data is None:
        if path is not None:
            path = Path(path).expanduser()
            name = str(path)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise InputError(f"input file not found: {path}") from None
            except IsADirectoryError:
                raise InputError(f"{path} is a directory, not a text file") from None
            except PermissionError:
                raise InputError(f"cannot read {path}: permission denied") from None
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
            protect_input(path)
        else:
            if sys.stdin is None or sys.stdin.isatty():
                raise UsageError("no input: give the text as arguments, with -i FILE, or on stdin")
            data = sys.stdin.buffer.read()
    return decode_input(data, name=name)


def open_output_check(path: Path, *, inputs: tuple[Path, ...] = ()) -> None:
    """Fail before any work if ``path`` cannot be written, or is one of the inputs (same
    file, by inode). The file itself is not touched."""
    from ..output import check_output

    check_output(path, inputs=inputs)


def stdout_writer() -> Callable[[str], None]:
    """Write streamed text to stdout as it comes (plain text: no colour, no control codes)."""

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    return write


# --- shell completion ------------------------------------------------------------------------
# Enabled with: eval "$(_BAYLING_LOCAL_COMPLETE=bash_source bayling-local)" (zsh_source,
# fish_source for other shells). A completion callback must never fail: it offers what it can.


def complete_language(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Language codes (and English names) starting with what was typed, with the name as help."""
    from click.shell_completion import CompletionItem

    from ..languages import all_languages

    typed = incomplete.lower()
    items: list[CompletionItem] = []
    seen: set[str] = set()
    for lang in all_languages():
        for value in (lang.code, lang.name):
            if value.lower().startswith(typed) and value not in seen and " " not in value:
                seen.add(value)
                items.append(CompletionItem(value, help=f"{lang.name} ({lang.native})"))
    return items


def complete_model(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[click.shell_completion.CompletionItem]:
    """Installed model names, then the known BayLing models; paths while typing a path."""
    from click.shell_completion import CompletionItem

    from .. import registry
    from ..errors import BaylingError
    from ..store import Store

    if incomplete.startswith(("/", ".", "~")) or "/" in incomplete and ":" not in incomplete:
        return [CompletionItem(incomplete, type="file")]
    items: list[CompletionItem] = []
    seen: set[str] = set()
    try:
        entries = Store().entries()
    except BaylingError:
        entries = []  # a damaged manifest is reported by the command itself, not here
    for entry in entries:
        if entry.name.lower().startswith(incomplete.lower()):
            seen.add(entry.name.lower())
            items.append(CompletionItem(entry.name, help=f"installed, {entry.quantization}"))
    for known in registry.MODELS:
        if known.name.lower().startswith(incomplete.lower()) and known.name.lower() not in seen:
            items.append(CompletionItem(known.name, help=f"{known.base} (not installed)"))
    return items
