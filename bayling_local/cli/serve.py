"""CLI command ``serve``: the OpenAI- and LibreTranslate-compatible server (see docs/SERVING.md).

The address and the key are checked before the model loads, so a refused bind costs nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..settings import BEAM_MAX, PARALLEL_MAX, Settings, load_settings
from .common import engine_options, notice

if TYPE_CHECKING:
    from ..engine import Engine, SamplingConfig


def register(group: click.Group) -> None:
    group.add_command(serve_command)


def _model_id(name: str) -> str:
    """The id clients name the model by: the store name, or a GGUF file's stem."""
    stem = Path(name).name.removesuffix(".gguf") if name.endswith(".gguf") else name
    return re.sub(r"\s+", "-", stem.strip()) or "bayling"


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port (0: any free).")
@click.option(
    "--parallel",
    type=click.IntRange(min=1, max=PARALLEL_MAX),
    help="Requests decoded together (default: the settings', else 4).",
)
@click.option(
    "--queue",
    "queue_size",
    type=click.IntRange(min=0),
    default=64,
    show_default=True,
    help="Requests that may wait for a slot; beyond that the server answers 503 at once.",
)
@click.option(
    "--beam",
    type=click.IntRange(min=1, max=BEAM_MAX),
    help="Beams per translation (default: the settings' beam); /translate's 'alternatives' "
    "go up to BEAM - 1.",
)
@click.option(
    "--api-key",
    envvar="BAYLING_LOCAL_API_KEY",
    help="Require this key (Authorization: Bearer KEY). Needed to listen beyond 127.0.0.1.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="A browser origin allowed to call the server (repeatable), e.g. https://example.com.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds in-flight requests get to finish on SIGTERM / Ctrl-C.",
)
@click.option(
    "--glossary",
    "glossaries",
    multiple=True,
    metavar="[NAME=]FILE",
    help="A glossary (CSV/TSV/TBX) /translate can use: requests name it with 'glossary': NAME; "
    "one given without NAME applies to every request (repeatable).",
)
@click.option("--no-memory", is_flag=True, help="Do not use or fill the translation memory.")
@click.option("--verbose", is_flag=True, help="Log every request on stderr.")
@engine_options
def serve_command(
    host: str,
    port: int,
    parallel: int | None,
    queue_size: int,
    beam: int | None,
    api_key: str | None,
    cors_origins: tuple[str, ...],
    grace: float,
    glossaries: tuple[str, ...],
    no_memory: bool,
    verbose: bool,
    **engine_flags,
) -> None:
    """Serve BayLing over HTTP: the OpenAI API (/v1) and LibreTranslate's API (/translate).

    \b
    Examples:
      bayling-local serve                                  # http://127.0.0.1:8765
      bayling-local serve --cors-origin https://example.com
      bayling-local serve --host 0.0.0.0 --api-key "$KEY"  # reachable from the network
    """
    from ..server.config import ServerConfig

    quiet = bool(engine_flags.get("quiet"))
    settings = load_settings().with_overrides(
        threads=engine_flags.get("threads"),
        gpu_layers=engine_flags.get("gpu_layers"),
        context=engine_flags.get("context"),
        model=engine_flags.get("model"),
    )
    if parallel is None:
        parallel = settings.parallel or 4
    # Checked before the model loads: a refused address or key costs nothing.
    config = ServerConfig(
        host=host,
        port=port,
        parallel=parallel,
        queue=queue_size,
        beam=beam or settings.beam,
        api_key=api_key,
        cors_origins=tuple(cors_origins),
        max_tokens=engine_flags.get("max_tokens"),
        grace=grace,
        memory=not no_memory,
    )
    if engine_flags.get("max_tokens") is not None and engine_flags["max_tokens"] < 1:
        from ..errors import UsageError

        raise UsageError("--max-tokens must be at least 1")
    loaded_glossaries = _glossaries(glossaries)
    engine, name, chat_sampling = _load(settings, engine_flags)
    from dataclasses import replace

    from ..batch import check_parallel
    from ..server.backend import Backend
    from ..server.run import serve

    try:  # --parallel x --beam must fit llama.cpp's sequences and the memory for the KV cache
        check_parallel(engine, config.parallel, config.beam)
    except BaseException:
        engine.close()
        raise
    config = replace(config, model_id=_model_id(name), model_aliases=_aliases(name, engine))
    backend = Backend(engine, config, chat_sampling=chat_sampling, glossaries=loaded_glossaries)

    def ready(url: str) -> None:
        notice(
            f"serving {config.model_id} on {url}  (OpenAI: {url}/v1  LibreTranslate: {url}/translate"
            f"  docs: {url}/docs; {config.parallel} at once, {config.queue} queued; Ctrl-C stops)",
            quiet=quiet,
        )

    try:
        serve(
            backend, on_ready=ready, log_level="info" if verbose else "warning", access_log=verbose
        )
    finally:
        engine.close()
    notice("server stopped", quiet=quiet)


def _glossaries(specs: tuple[str, ...]) -> dict:
    """``NAME=FILE`` (or ``FILE``: the default glossary) loaded once, before the model."""
    from ..errors import UsageError

    loaded: dict = {}
    if not specs:
        return loaded
    from ..documents import load_glossary

    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or "/" in name or "\\" in name:
            name, path = "default", spec
        name = name.strip()
        if name in loaded:
            raise UsageError(f"--glossary: two glossaries named {name!r}")
        loaded[name] = load_glossary(path)
    return loaded


def _aliases(name: str, engine) -> tuple[str, ...]:
    aliases = {name, engine.model_name, os.path.basename(name)}
    return tuple(sorted(a for a in aliases if a and a != _model_id(name)))


def _load(settings: Settings, flags: dict[str, Any]) -> tuple[Engine, str, SamplingConfig]:
    """The engine, the name it was resolved by, and the chat sampling defaults."""
    from .common import load_runtime_for  # the one settings -> engine path (runtime.py)

    runtime = load_runtime_for(settings, flags)
    return runtime.engine, runtime.resolved.name, runtime.sampling.chat
