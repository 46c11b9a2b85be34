"""Widgets of the terminal UI: the prompt box, the view tabs, the status bar, diffs."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import RenderResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.renderables.bar import Bar
from textual.widget import Widget
from textual.widgets import TextArea

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


class ViewTabs(Widget, can_focus=True):
    """The row of view names over a bar that marks the shown one: one widget for all tabs.

    Textual's ``TabbedContent`` builds about twenty widgets (a tab, a pane and a placeholder
    per view, scroll containers, an underline); styling them was a large part of the start-up
    (benchmarks/tui_startup.py). This draws the same two lines itself. A click on a name, or
    Left/Right while it has focus, posts :class:`ViewTabs.Chosen`; the app shows that view and
    sets :attr:`active`.
    """

    DEFAULT_CSS = """
    ViewTabs { height: 2; width: 1fr; padding: 0 1; pointer: pointer; }
    ViewTabs > .view-tabs--tab { color: $foreground 50%; }
    ViewTabs > .view-tabs--active { color: $foreground; }
    ViewTabs:focus > .view-tabs--active {
        color: $block-cursor-foreground;
        background: $block-cursor-background;
        text-style: $block-cursor-text-style;
    }
    ViewTabs > .view-tabs--bar { color: $block-cursor-background; background: $foreground 10%; }
    ViewTabs:focus > .view-tabs--bar { background: $foreground 30%; }
    """
    COMPONENT_CLASSES = {
        "view-tabs--tab",
        "view-tabs--active",
        "view-tabs--bar",
    }
    BINDINGS = [
        Binding("left", "step(-1)", "Previous view", show=False),
        Binding("right", "step(1)", "Next view", show=False),
    ]
    ALLOW_SELECT = False

    active: reactive[str] = reactive("")

    class Chosen(Message):
        """The user picked the view ``name``: a click, or Left/Right on the focused bar
        (``by_key``: the bar keeps the focus, so the next Left/Right goes on from there)."""

        def __init__(self, name: str, *, by_key: bool = False) -> None:
            super().__init__()
            self.name = name
            self.by_key = by_key

    def __init__(self, tabs: Sequence[tuple[str, str]], *, active: str, id: str | None = None):
        super().__init__(id=id)
        self.tabs = list(tabs)  # (view name, label)
        self.set_reactive(ViewTabs.active, active)

    def _spans(self) -> list[tuple[str, int, int]]:
        """(name, first cell, end cell) of each label, padded by one cell on both sides."""
        spans, x = [], 0
        for name, label in self.tabs:
            width = cell_len(label) + 2
            spans.append((name, x, x + width))
            x += width
        return spans

    def render(self) -> RenderResult:
        tab = self.get_component_rich_style("view-tabs--tab")
        active = self.get_component_rich_style("view-tabs--active")
        bar = self.get_component_rich_style("view-tabs--bar")
        labels = Text(no_wrap=True, overflow="crop")
        highlight = (0, 0)
        for (name, label), (_, start, end) in zip(self.tabs, self._spans(), strict=True):
            labels.append(f" {label} ", style=active if name == self.active else tab)
            if name == self.active:
                highlight = (start, end)
        return Group(
            labels,
            Bar(
                highlight_range=highlight,
                highlight_style=Style.from_color(bar.color),
                background_style=Style.from_color(bar.bgcolor),
            ),
        )

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        for name, start, end in self._spans():
            if start <= offset.x < end:
                self.post_message(self.Chosen(name))
                return

    def action_step(self, step: int) -> None:
        names = [name for name, _ in self.tabs]
        index = names.index(self.active) if self.active in names else 0
        self.post_message(self.Chosen(names[(index + step) % len(names)], by_key=True))


class StatusBar(Widget):
    """Model, speed of the last reply, context used, and what the app is doing (at the right).

    One widget drawing one line (not a label per field): fewer widgets to build at start-up.
    """

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    StatusBar > .status-bar--model { color: $text; text-style: bold; }
    """
    COMPONENT_CLASSES = {"status-bar--model"}

    model: reactive[str] = reactive("no model")
    speed: reactive[str] = reactive("")
    context: reactive[str] = reactive("")
    state: reactive[str] = reactive("")

    def render(self) -> RenderResult:
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(printable(self.model), style=self.get_component_rich_style("status-bar--model"))
        for field in (self.speed, self.context):
            if field:
                text.append("  " + printable(field))
        state = printable(self.state)
        if state:
            gap = self.content_size.width - text.cell_len - cell_len(state)
            text.append(" " * max(gap, 2) + state)
        return text

    def set_model(self, text: str) -> None:
        self.model = text

    def set_speed(self, text: str) -> None:
        self.speed = text

    def set_context(self, text: str) -> None:
        self.context = text

    def set_state(self, text: str) -> None:
        self.state = text


def focus_now(widget: Widget) -> None:
    """Focus ``widget`` before the next key is handled.

    ``Widget.focus()`` takes effect only after the messages already queued, keys included: a
    key typed right after the one that moved the focus (``/`` then a search word, F4 then
    ``/``, on a busy machine) would go to the old widget.
    """
    widget.screen.set_focus(widget)


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
