"""What the app hands down to every view: the settings, the history, the model's state.

Views read these; they change nothing here. To change something they post a message
(:mod:`bayling_local.tui.messages`) and the app, which owns all of it, does the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .model_session import ModelSession

if TYPE_CHECKING:
    from ..history import History
    from ..settings import Settings


@dataclass
class AppContext:
    """Shared, read-mostly state of one app; the app replaces ``settings`` when they change."""

    settings: Settings
    model: ModelSession = field(default_factory=ModelSession)
    ime_window: float = 0.05
    _history: History | None = None

    @property
    def history(self) -> History:
        """The history database, opened on first use (after the first frame)."""
        if self._history is None:
            from ..history import History

            self._history = History()
        return self._history
