"""The terminal UI's messages: from worker threads to widgets, and from views up to the app.

llama.cpp calls block, so they run in thread workers; a worker never touches a widget, it
posts one of these and the widget's handler updates the screen on the UI thread. Views ask
the app for what only it can do (load a model, generate, open a session) with messages too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from textual.widget import Widget

    from ..documents import DocumentSummary
    from ..engine import Engine
    from ..interactive import Reply
    from ..languages import Language
    from ..resolve import ResolvedModel
    from ..settings import Settings
    from .document_job import DocumentJob, JobProgress


class StreamChunk(Message):
    """Text of the reply being generated (batched, see ``textutil.Batcher``)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class StreamDone(Message):
    """The reply finished: ran to the end, was stopped, or was cut off."""

    def __init__(self, reply: Reply) -> None:
        super().__init__()
        self.reply = reply


class StreamFailed(Message):
    """The reply could not be generated; ``error`` is one line for the user."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class SourceDetected(Message):
    """Language detection of the source text finished (``language`` None: not sure)."""

    def __init__(
        self, text: str, language: Language | None, confidence: float, note: str = ""
    ) -> None:
        super().__init__()
        self.text = text
        self.language = language
        self.confidence = confidence
        self.note = note


class ModelLoaded(Message):
    def __init__(
        self, token: int, engine: Engine, resolved: ResolvedModel, *, notices: Sequence[str] = ()
    ) -> None:
        super().__init__()
        self.token = token
        self.engine = engine
        self.resolved = resolved
        self.notices = list(notices)


class ModelLoadFailed(Message):
    def __init__(self, token: int, error: str, *, no_model: bool = False) -> None:
        super().__init__()
        self.token = token
        self.error = error
        self.no_model = no_model


class TaskNote(Message):
    """A line of progress from a background task (import, pull)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class TaskDone(Message):
    """A background task finished; ``error`` is set when it failed."""

    def __init__(self, what: str, result: Any = None, error: str | None = None) -> None:
        super().__init__()
        self.what = what
        self.result = result
        self.error = error


# --- requests the views post up to the app ("attributes down, messages up") -----------------
#
# A view never calls the app or a sibling view: it posts one of these and the app, which owns
# the model and the views, acts on it and sets what changed back down on the views.

Run = Callable[["Engine", Callable[[str], None], threading.Event], "Reply"]


class Generate(Message):
    """Run ``run(engine, on_text, cancel)``; ``target`` receives the stream messages.

    If the model is still loading, the app queues the request and starts it once it is ready.
    """

    def __init__(self, target: Widget, run: Run) -> None:
        super().__init__()
        self.target = target
        self.run = run


class GenerationFinished(Message):
    """``view`` has shown the end of its reply (``reply`` None: it failed or never started)."""

    def __init__(self, view: Widget, reply: Reply | None) -> None:
        super().__init__()
        self.view = view
        self.reply = reply


class LoadModel(Message):
    """Load this model (a store name or path; None: the default) in the background."""

    def __init__(self, spec: str | None) -> None:
        super().__init__()
        self.spec = spec


class DefaultModelChanged(Message):
    """The user made ``name`` the default model (already saved)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class SettingsSaved(Message):
    """The settings were saved; ``settings`` are the effective ones (file + environment)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings


class ThemePreview(Message):
    """Show the app in this theme now (the settings view's theme list moved)."""

    def __init__(self, theme: str) -> None:
        super().__init__()
        self.theme = theme


class OpenSession(Message):
    """Open a saved session of the history in its view (``kind``: "translate" or "chat")."""

    def __init__(self, session_id: int, kind: str) -> None:
        super().__init__()
        self.session_id = session_id
        self.kind = kind


class LanguagesChanged(Message):
    """The translate view's language pair changed (the app remembers it across restarts)."""

    def __init__(self, source: str | None, target: str) -> None:
        super().__init__()
        self.source = source
        self.target = target


class TranslateDocument(Message):
    """Translate a whole document file.

    Like :class:`Generate`, it waits for a model that is still loading; it runs on the same
    engine, one job or reply at a time, and Esc cancels it.
    """

    def __init__(self, job: DocumentJob) -> None:
        super().__init__()
        self.job = job


class CancelDocument(Message):
    """Cancel the document being translated (the finished segments stay in the memory)."""


class DocumentProgressed(Message):
    """From the document worker: segments done so far."""

    def __init__(self, job: DocumentJob, progress: JobProgress) -> None:
        super().__init__()
        self.job = job
        self.progress = progress


class DocumentFinished(Message):
    """From the document worker: the summary, or the error line (``cancelled``: by the user)."""

    def __init__(
        self,
        job: DocumentJob,
        summary: DocumentSummary | None = None,
        error: str | None = None,
        cancelled: bool = False,
    ) -> None:
        super().__init__()
        self.job = job
        self.summary = summary
        self.error = error
        self.cancelled = cancelled
