"""The command-line side of document translation: options, progress bar, summary.

``bayling-local translate`` hands a document (or a folder) here when the input is not plain
text or a document option is given; plain ``.txt`` without them keeps the line-streaming path.
The progress bar is drawn on stderr only when stderr is a terminal; stdout carries the
translated document (no ``-o``) or the ``--json`` summary, nothing else.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError

#: Keyword names the options below add to the translate command's parameters.
DOCUMENT_FLAGS = ("doc_format", "glossary", "context_segments", "bilingual", "no_cache")


def document_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The translate command's document options."""
    options = [
        click.option(
            "--format",
            "doc_format",
            help="Document format (default: from the extension): txt, md, srt, vtt, html, "
            "docx, epub, po, xliff.",
        ),
        click.option(
            "--glossary",
            type=click.Path(path_type=Path),
            help="Terms the translation must use: TSV/CSV (source, target) or TBX.",
        ),
        click.option(
            "--context-segments",
            type=click.IntRange(min=0, max=16),
            default=0,
            help="Give the K previous segments and their translations as context (default 0).",
        ),
        click.option(
            "--bilingual", is_flag=True, help="Write source and translation side by side."
        ),
        click.option(
            "--no-cache", is_flag=True, help="Neither read nor write the translation memory."
        ),
    ]
    return functools.reduce(lambda cmd, opt: opt(cmd), reversed(options), command)


def wants_documents(input_file: Path | None, flags: dict[str, Any]) -> bool:
    """Whether the document path handles this call (else plain text, line by line)."""
    if input_file is None:
        return any(flags.get(name) for name in DOCUMENT_FLAGS)
    if Path(input_file).is_dir():
        return True
    if any(flags.get(name) for name in DOCUMENT_FLAGS):
        return True
    return Path(input_file).suffix.lower() not in (".txt", "")


def pop_document_flags(flags: dict[str, Any]) -> dict[str, Any]:
    return {name: flags.pop(name, None) for name in DOCUMENT_FLAGS}


class _Bar:
    """A rich progress bar on stderr: segments to translate, cached ones counted apart."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[cached]} cached"),
            TextColumn("{task.fields[speed]} tok/s"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def update(self, state: Any) -> None:
        task = self.tasks.get(state.path)
        todo = max(0, state.total - state.cached)
        if task is None:
            task = self.progress.add_task(
                Path(state.path).name, total=todo or 1, cached=0, speed="0.0"
            )
            self.tasks[state.path] = task
        self.progress.update(
            task,
            total=todo or 1,
            completed=state.translated if todo else 1,
            cached=state.cached,
            speed=f"{state.tokens_per_second:.1f}",
        )


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[Any], None] | None]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bar = _Bar()
    with bar.progress:
        yield bar.update


def run_documents(
    *,
    input_file: Path | None,
    output_file: Path | None,
    source: str | None,
    target: str | None,
    instruction_lang: str | None,
    as_json: bool,
    document_flags: dict[str, Any],
    engine_flags: dict[str, Any],
    setting_flags: dict[str, Any],
) -> None:
    """``translate -i DOC [-o OUT]`` and ``translate -i DIR -o DIR``."""
    from ..cli.common import load_engine_for, notice
    from ..languages import resolve
    from ..runtime import translator_for
    from ..settings import load_settings
    from .formats import format_for
    from .glossary import load_glossary
    from .memory import TranslationMemory
    from .pipeline import DocumentOptions, check_output, translate_document, translate_folder

    if input_file is None:
        raise UsageError("document options need a document: give it with -i FILE (or -i DIR)")
    quiet = bool(engine_flags.get("quiet"))
    settings = load_settings().with_overrides(**setting_flags, instruction_lang=instruction_lang)
    target_lang = resolve(target or settings.target)
    source_lang = resolve(source) if source else None
    if source_lang is not None and source_lang == target_lang:
        raise UsageError(f"-s and -t are both {target_lang.name}; choose a different target")
    folder = Path(input_file).is_dir()
    if not Path(input_file).exists():
        from ..errors import InputError

        raise InputError(f"input file not found: {input_file}")
    if folder and output_file is None:
        raise UsageError("a folder needs an output folder: -i DIR -o DIR")
    if as_json and output_file is None:
        raise UsageError("--json prints the summary; give the document's output with -o")
    if folder:
        if output_file is not None and output_file.exists() and not output_file.is_dir():
            from ..errors import OutputError

            raise OutputError(f"{output_file} is a file; the output of a folder is a folder")
    else:
        format_for(input_file, document_flags.get("doc_format"))  # unsupported: fail now
        if output_file is not None:
            check_output(Path(input_file), Path(output_file))
    glossary = (
        load_glossary(document_flags["glossary"], source=source_lang, target=target_lang)
        if document_flags.get("glossary")
        else None
    )
    memory = None if document_flags.get("no_cache") else TranslationMemory()
    engine = load_engine_for(settings, engine_flags, announce=not as_json)
    translator = translator_for(engine, settings)
    options = DocumentOptions(
        target=target_lang,
        source=source_lang,
        format=document_flags.get("doc_format"),
        glossary=glossary,
        context=int(document_flags.get("context_segments") or 0),
        bilingual=bool(document_flags.get("bilingual")),
        memory=memory,
    )
    try:
        with progress_bar(not quiet and not as_json) as bar:
            if folder:
                assert output_file is not None
                result = translate_folder(
                    input_file,
                    output_file,
                    translator,
                    options,
                    progress=bar,
                    on_document=None if as_json else (lambda d: notice(d.line(), quiet=quiet)),
                )
                line, payload = result.line(), result.as_dict()
            else:
                summary, data = translate_document(
                    input_file, output_file, translator, options, progress=bar
                )
                line, payload = summary.line(), summary.as_dict()
                if output_file is None:
                    sys.stdout.buffer.write(data)
                    sys.stdout.flush()
    finally:
        translator.close()
        if memory is not None:
            memory.close()
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        notice(line, quiet=quiet)
