"""Messages that worker threads post back to the UI (the harlequin pattern).

llama.cpp calls block, so they run in thread workers; a worker never touches a widget, it
posts one of these and the widget's handler updates the screen on the UI thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from ..engine import Engine
    from ..interactive import Reply
    from ..languages import Language
    from ..store import ResolvedModel


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
    def __init__(self, token: int, engine: Engine, resolved: ResolvedModel) -> None:
        super().__init__()
        self.token = token
        self.engine = engine
        self.resolved = resolved


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
