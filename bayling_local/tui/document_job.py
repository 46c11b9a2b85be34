"""A whole document translated from the terminal UI: the job, its progress, its end.

No widgets here. The translate view asks for a job (a :class:`DocumentJob`), the app runs
:func:`run_document` in a thread worker on the loaded engine, and this module turns the
documents library's progress and summary into what the UI shows and keeps. The library writes
the output atomically only after the whole document is translated, so a cancelled job leaves
no output file; the finished segments stay in the translation memory for the next run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..documents import DocumentProgress, DocumentSummary
    from ..engine import Engine
    from ..languages import Language
    from ..settings import Settings


@dataclass(frozen=True)
class DocumentJob:
    """One document to translate: where from, where to, and the language pair."""

    path_in: Path
    path_out: Path
    target: Language
    source: Language | None = None  # None: detected from the document


@dataclass(frozen=True)
class JobProgress:
    """A copy of the library's progress, safe to hand from the worker to the UI thread."""

    done: int
    total: int
    cached: int
    translated: int
    tokens_per_second: float

    def line(self, name: str) -> str:
        cached = f" ({self.cached} from memory)" if self.cached else ""
        speed = f" · {self.tokens_per_second:.1f} tok/s" if self.translated else ""
        return f"{name}: {self.done}/{self.total} segments{cached}{speed} · Esc cancels"


def default_output(path_in: Path, target: str) -> Path:
    """``NAME.<target>.EXT`` beside the input (what ``translate -i`` users expect to find)."""
    path_in = Path(path_in)
    if not path_in.name:  # "/" or "" while the path is being typed
        return path_in
    return path_in.with_name(f"{path_in.stem}.{target}{path_in.suffix}")


def check_job(job: DocumentJob) -> None:
    """Refuse a job before it is queued: missing input, unsupported format, bad output.

    Raises BaylingError with one line for the user.
    """
    from ..documents import format_for
    from ..documents.pipeline import check_output
    from ..errors import InputError

    path_in = Path(job.path_in)
    if not path_in.exists():
        raise InputError(f"input file not found: {path_in}")
    if path_in.is_dir():
        raise InputError(f"{path_in} is a folder: give one file (folders: bayling-local translate)")
    format_for(path_in, None)
    check_output(path_in, Path(job.path_out))


def run_document(
    job: DocumentJob,
    engine: Engine,
    settings: Settings,
    *,
    progress: Callable[[JobProgress], None],
    cancel: threading.Event,
) -> DocumentSummary:
    """Translate the document on ``engine`` (blocking: call it in a thread).

    Built as ``bayling-local translate -i FILE -o FILE`` builds it: the same greedy sampling,
    instruction language, system prompt and translation memory. Raises BaylingError
    (``Cancelled`` when ``cancel`` was set).
    """
    from ..documents import DocumentOptions, TranslationMemory, translate_document
    from ..runtime import translator_for

    def report(state: DocumentProgress) -> None:
        progress(
            JobProgress(
                state.done,
                state.total,
                state.cached,
                state.translated,
                state.tokens_per_second,
            )
        )

    translator = translator_for(engine, settings)
    memory = TranslationMemory()
    options = DocumentOptions(target=job.target, source=job.source, memory=memory)
    try:
        summary, _data = translate_document(
            job.path_in, job.path_out, translator, options, progress=report, cancel=cancel
        )
    finally:
        translator.close()
        memory.close()
    return summary


def cancelled_line(last: JobProgress | None) -> str:
    kept = last.done if last is not None else 0
    noun = "segment" if kept == 1 else "segments"
    return f"cancelled; {kept} {noun} kept in the translation memory (no output file written)"


def history_text(job: DocumentJob, summary: DocumentSummary) -> str:
    """What the history keeps of a finished document: the summary and where the output is."""
    return f"{summary.line()}\n\nOutput: {job.path_out}\nInput: {job.path_in}"
