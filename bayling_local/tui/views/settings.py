"""The settings view: the same settings file the CLI reads, edited in a form."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, TextArea

from ...errors import BaylingError, UsageError
from ...languages import Language
from ...settings import Settings, load_settings, save_settings
from ..messages import SettingsSaved, ThemePreview
from ..screens import LanguagePicker

if TYPE_CHECKING:
    from ..context import AppContext


@dataclass(frozen=True)
class NumberField:
    """A numeric setting: its type, its bounds, and whether empty means "automatic"."""

    name: str
    label: str
    kind: type
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False
    help: str = ""

    def parse(self, raw: str) -> Any:
        raw = raw.strip()
        if not raw or raw.lower() == "auto":
            if self.optional:
                return None
            raise UsageError(f"{self.label}: a value is needed")
        try:
            value = int(raw) if self.kind is int else float(raw)
        except ValueError:
            kind = "a whole number" if self.kind is int else "a number"
            raise UsageError(f"{self.label}: {raw!r} is not {kind}") from None
        if self.minimum is not None and value < self.minimum:
            raise UsageError(f"{self.label}: must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise UsageError(f"{self.label}: must be at most {self.maximum:g}")
        return value


NUMBER_FIELDS = (
    NumberField(
        "threads", "Threads", int, 1, 1024, optional=True, help="empty: the physical cores"
    ),
    NumberField("gpu_layers", "GPU layers", int, -1, 100000, help="-1 all layers, 0 CPU only"),
    NumberField(
        "context", "Context length", int, 64, 1 << 20, optional=True, help="empty: the model's own"
    ),
    NumberField("temperature", "Temperature", float, 0.0, 5.0, help="chat; translation is greedy"),
    NumberField("top_p", "Top-p", float, 0.01, 1.0, help="nucleus sampling for chat"),
    NumberField("top_k", "Top-k", int, 0, 100000, help="chat: sample among the k likeliest"),
    NumberField("repeat_penalty", "Repeat penalty", float, 0.5, 3.0, help="chat; 1 turns it off"),
    NumberField("max_tokens", "Max tokens", int, 1, 1 << 20, help="longest reply"),
)


class SettingsView(VerticalScroll):
    """Edit and save ``settings.toml`` (the CLI uses the same file)."""

    BINDINGS = [Binding("ctrl+s", "save", "Save settings")]

    COMMANDS_LIST = [
        ("Save the settings", "Write the settings file the CLI uses too (Ctrl+S)", "save"),
        ("Change the theme", "Pick a colour theme in Settings", "focus_theme"),
    ]

    def __init__(self, ctx: AppContext, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ctx = ctx
        self.target = ""  # the default target language's code, as in the file

    def compose(self) -> ComposeResult:
        stored = self._stored()
        self.target = stored.target
        with Horizontal(classes="field"):
            yield Label("Target", classes="field-label")
            yield Button(self._target_label(), id="set-target", classes="field-input")
            yield Label("default language to translate into", classes="field-help")
        for spec in NUMBER_FIELDS:
            value = getattr(stored, spec.name)
            with Horizontal(classes="field"):
                yield Label(spec.label, classes="field-label")
                yield Input(
                    ""
                    if value is None
                    else f"{value:g}"
                    if isinstance(value, float)
                    else str(value),
                    placeholder="auto" if spec.optional else "",
                    id=f"set-{spec.name}",
                    classes="field-input",
                )
                yield Label(spec.help, classes="field-help")
        with Horizontal(classes="field"):
            yield Label("Instruction", classes="field-label")
            yield Select(
                [("English", "en"), ("中文 (Chinese)", "zh")],
                value=stored.instruction_lang if stored.instruction_lang in ("en", "zh") else "en",
                allow_blank=False,
                id="set-instruction_lang",
                classes="field-input",
            )
            yield Label("wording of BayLing's translation instruction", classes="field-help")
        with Horizontal(classes="field"):
            yield Label("Theme", classes="field-label")
            themes = sorted(self.app.available_themes)
            yield Select(
                [(name, name) for name in themes],
                value=stored.theme if stored.theme in themes else self.app.theme,
                allow_blank=False,
                id="set-theme",
                classes="field-input",
            )
            yield Label("applies at once", classes="field-help")
        with Vertical(classes="field tall"):
            yield Label("System prompt (empty: the model's own)", classes="field-label")
            yield TextArea(stored.system_prompt or "", id="set-system_prompt", soft_wrap=True)
        with Horizontal(classes="buttons"):
            yield Button("Save (Ctrl+S)", id="save", variant="primary")
        yield Label("", id="settings-note", classes="hint")

    def on_mount(self) -> None:
        if self.app.is_headless:  # tests and snapshots: no blinking cursor, reproducible frames
            for field in self.query(Input):
                field.cursor_blink = False

    def _stored(self) -> Settings:
        """The settings file's own values (environment overrides are not written back)."""
        try:
            return load_settings(environ={})
        except BaylingError as exc:
            self.notify(exc.message, title="Settings", severity="error")
            return self.ctx.settings

    def _target_label(self) -> str:
        from ...languages import resolve

        try:
            language = resolve(self.target)
        except BaylingError:
            return self.target
        return f"{language.name} ({language.code})"

    @on(Button.Pressed, "#set-target")
    def _pick_target(self) -> None:
        def chosen(result: object) -> None:
            if isinstance(result, Language):
                self.target = result.code
                self.query_one("#set-target", Button).label = self._target_label()

        self.app.push_screen(LanguagePicker("Default target language"), chosen)

    def input_widget(self) -> Widget:
        """What takes the focus when the view is shown."""
        return self.query_one(f"#set-{NUMBER_FIELDS[0].name}", Input)

    def focus_input(self) -> None:
        self.input_widget().focus()

    def action_focus_theme(self) -> None:
        self.query_one("#set-theme", Select).focus()

    @on(Select.Changed, "#set-theme")
    def _theme_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.post_message(ThemePreview(event.value))

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    def read_form(self) -> Settings:
        """The form as settings; a UsageError names the first bad field."""
        changes: dict[str, Any] = {}
        for spec in NUMBER_FIELDS:
            field = self.query_one(f"#set-{spec.name}", Input)
            try:
                changes[spec.name] = spec.parse(field.value)
            except UsageError:
                field.focus()
                raise
        changes["target"] = self.target
        changes["instruction_lang"] = self.query_one("#set-instruction_lang", Select).value
        changes["theme"] = self.query_one("#set-theme", Select).value
        prompt = self.query_one("#set-system_prompt", TextArea).text.strip()
        changes["system_prompt"] = prompt or None
        return replace(self._stored(), **changes)

    def action_save(self) -> None:
        try:
            settings = self.read_form()
            path = save_settings(settings)
            effective = load_settings()
        except BaylingError as exc:
            self.notify(exc.message, title="Settings not saved", severity="error")
            return
        self.post_message(SettingsSaved(effective))
        self.query_one("#settings-note", Label).update(Text(f"Saved to {path}"))
        self.notify(f"Saved to {path}", title="Settings")
