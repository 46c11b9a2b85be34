"""Widgets of the terminal UI: the prompt box, the lazy view holder, the status bar, diffs."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.message import Message
from textual.widgets import Label, TextArea

from .textutil import ComposeGuard, printable


class PromptArea(TextArea):
    """A multi-line input where Enter sends and Shift+Enter or Ctrl+J starts a new line.

    Enter does not send while an input method is committing text (see :class:`ComposeGuard`).
    """

    BINDINGS = [
        Binding("shift+enter,ctrl+j", "newline", "New line", show=False),
    ]

    class Submitted(Message):
        """The user pressed Enter to send the text."""

        def __init__(self, area: PromptArea, text: str) -> None:
            super().__init__()
            self.area = area
            self.text = text

        @property
        def control(self) -> PromptArea:
            return self.area

    def __init__(
        self, *, placeholder: str = "", id: str | None = None, ime_window: float = 0.05
    ) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            placeholder=placeholder,
        )
        self.guard = ComposeGuard(window=ime_window)

    def on_mount(self) -> None:
        if self.app.is_headless:  # tests and snapshots: no blink, so frames are reproducible
            self.cursor_blink = False

    def action_newline(self) -> None:
        self.insert("\n")

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter" and not self.read_only:
            event.stop()
            event.prevent_default()
            if self.guard.enter_sends(event.time):
                self.post_message(self.Submitted(self, self.text))
            return
        if event.is_printable and event.character:
            self.guard.note_text(event.character, event.time)
        await super()._on_key(event)


class LazyView(Container):
    """Stands in for a view until just after the first frame, then imports and mounts it.

    Start-up only pays for the view the user sees first; the others load while the user reads.
    """

    DEFAULT_CSS = "LazyView { height: 1fr; }"

    def __init__(self, module: str, class_name: str, ctx: object, *, view_id: str) -> None:
        super().__init__()
        self.module = module
        self.class_name = class_name
        self.ctx = ctx  # handed to the view (the app's AppContext)
        self.view_id = view_id
        self._loading: asyncio.Lock | None = None

    def on_mount(self) -> None:
        self.call_after_refresh(self.load)

    async def load(self) -> None:
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self.children:
                return
            view_class = getattr(importlib.import_module(self.module), self.class_name)
            await self.mount(view_class(self.ctx, id=self.view_id))


class StatusBar(Horizontal):
    """Model, speed of the last reply, context used, and what the app is doing."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    StatusBar Label { width: auto; margin-right: 2; }
    StatusBar #status-model { color: $text; text-style: bold; }
    StatusBar #status-state { width: 1fr; content-align: right middle; text-align: right; }
    """

    def compose(self) -> ComposeResult:
        yield Label("no model", id="status-model")
        yield Label("", id="status-speed")
        yield Label("", id="status-context")
        yield Label("", id="status-state")

    def set_model(self, text: str) -> None:
        self.query_one("#status-model", Label).update(text)

    def set_speed(self, text: str) -> None:
        self.query_one("#status-speed", Label).update(text)

    def set_context(self, text: str) -> None:
        self.query_one("#status-context", Label).update(text)

    def set_state(self, text: str) -> None:
        self.query_one("#status-state", Label).update(text)


def diff_text(spans: Sequence[tuple[str, str]]) -> Text:
    """Rich text of a word diff: deletions struck through in red, insertions in green."""
    text = Text()
    for op, chunk in spans:
        chunk = printable(chunk)
        if op == "insert":
            text.append(chunk, style="bold green underline")
        elif op == "delete":
            text.append(chunk, style="strike red")
        else:
            text.append(chunk)
    return text
