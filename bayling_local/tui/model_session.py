"""The model's life in the terminal UI: loading, one generation at a time, requests queued.

No widgets here: the app owns one :class:`ModelSession`, runs its blocking calls in thread
workers and turns its state into what the screen shows. Views read it (through
:class:`~bayling_local.tui.context.AppContext`) and never change it; they post messages.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BaylingError, ModelError

if TYPE_CHECKING:
    from ..engine import Engine, GenerationStats, SamplingConfig
    from ..interactive import Reply
    from ..resolve import ResolvedModel
    from ..runtime import Runtime
    from ..settings import Settings
    from .messages import Generate, TranslateDocument


@dataclass(frozen=True)
class LoadFailure:
    """Why a load failed, in one line; ``no_model``: nothing is installed at all."""

    error: str
    no_model: bool = False


class ModelSession:
    """The loaded engine, the load in progress, the reply being generated and those waiting."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.resolved: ResolvedModel | None = None
        self.error: str | None = None  # why the last load failed
        self.loading: str | None = None  # the name being loaded
        self.load_started = 0.0
        self.generating = False
        self.last_stats: GenerationStats | None = None
        self.running: object | None = None  # the view the running generation streams to
        self._token = 0
        self._cancel: threading.Event | None = None
        self._queue: deque[Generate | TranslateDocument] = deque()

    # -- state the views read ------------------------------------------------------------

    @property
    def label(self) -> str | None:
        """The loaded model's name, or None."""
        return self.resolved.name if self.resolved is not None and self.engine is not None else None

    def unavailable_reason(self) -> str | None:
        """Why nothing can be generated now and nothing will be once a load ends, or None."""
        if self.engine is not None or self.loading:
            return None
        reason = f" ({self.error})" if self.error else ""
        return f"No model is loaded{reason}; choose one in Models (F5)"

    # -- loading -------------------------------------------------------------------------

    def begin_load(self, spec: str | None, settings: Settings) -> int:
        """Note that a load starts; returns its token (a later load makes it stale)."""
        self._token += 1
        self.loading = spec or settings.model or "the default model"
        self.load_started = time.monotonic()
        return self._token

    @staticmethod
    def load(spec: str | None, settings: Settings) -> Runtime:
        """Resolve and load the model (blocking: call it in a thread). Raises BaylingError.

        The one settings -> engine path the CLI, ``serve`` and training use too.
        """
        from ..runtime import load_runtime

        return load_runtime(settings, model=spec)

    @staticmethod
    def failure(spec: str | None, settings: Settings, exc: BaylingError) -> LoadFailure:
        """The load failure to show; tells "no model installed at all" apart (blocking)."""
        from ..resolve import demo_model_path
        from ..store import Store

        no_model = False
        if isinstance(exc, ModelError) and not (spec or settings.model):
            try:
                no_model = not Store().entries() and demo_model_path() is None
            except BaylingError:
                no_model = False
        return LoadFailure(exc.message, no_model=no_model)

    def accept(self, token: int, engine: Engine, resolved: ResolvedModel) -> bool:
        """Take a loaded engine unless a newer load was asked for meanwhile (then close it)."""
        if token != self._token or self.generating:
            engine.close()
            return False
        old, self.engine = self.engine, engine
        if old is not None:
            old.close()
        self.resolved = resolved
        self.error = None
        self.loading = None
        return True

    def reject(self, token: int, error: str) -> bool:
        """Record a failed load; False if it was stale."""
        if token != self._token:
            return False
        self.loading = None
        self.error = error
        return True

    @property
    def load_seconds(self) -> float:
        return time.monotonic() - self.load_started

    # -- generating ----------------------------------------------------------------------

    def queue(self, request: Generate | TranslateDocument) -> int:
        """Hold a request until the model is loaded; returns how many are waiting."""
        self._queue.append(request)
        return len(self._queue)

    def next_queued(self) -> Generate | TranslateDocument | None:
        return self._queue.popleft() if self._queue else None

    def drop_queued(self) -> list[Generate | TranslateDocument]:
        """Every waiting request (the load failed: each gets told)."""
        dropped = list(self._queue)
        self._queue.clear()
        return dropped

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def start(self, target: object) -> threading.Event:
        """Mark a generation for ``target`` as running; returns the event that stops it."""
        self.running = target
        self._cancel = threading.Event()
        self.generating = True
        return self._cancel

    def finish(self, reply: Reply | None) -> None:
        self.generating = False
        self.running = None
        self._cancel = None
        if reply is not None:
            self.last_stats = reply.stats

    def stop(self) -> bool:
        """Ask the running generation to stop at its next token; False if none runs."""
        if self._cancel is not None and self.generating:
            self._cancel.set()
            return True
        return False

    def close(self) -> None:
        """The app is quitting: let a streaming reply stop at its next token."""
        if self._cancel is not None:
            self._cancel.set()


# --- settings -> sampling (runtime.py is the one place that maps them) -------------------------


def chat_sampling(settings: Settings) -> SamplingConfig:
    """Chat replies sample with the user's temperature, top-p, top-k and repeat penalty."""
    from ..runtime import sampling_configs

    return sampling_configs(settings).chat


def translation_sampling(settings: Settings) -> SamplingConfig:
    """Translations are greedy; only the reply length comes from the settings."""
    from ..runtime import sampling_configs

    return sampling_configs(settings).translation
