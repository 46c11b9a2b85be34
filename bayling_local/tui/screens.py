"""Modal screens: key help, language picker, text prompt, confirmation, no model, too small."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..languages import Language, all_languages

AUTO = "auto"


class HelpScreen(ModalScreen[None]):
    """Every key of every view (F1). The table is built from the bindings themselves."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        text = Text()
        for title, keys in self.sections:
            text.append(f"{title}\n", style="bold underline")
            for key, description in keys:
                text.append(f"  {key:<22}", style="bold")
                text.append(f"{description}\n")
            text.append("\n")
        text.append("Ctrl+P opens the command palette: every action is there, by name.\n")
        text.append("Esc, F1 or q closes this help.", style="italic")
        with Vertical(id="dialog", classes="help"):
            yield Label("Keys", classes="title")
            with VerticalScroll():
                yield Static(text)


def _fold(text: str) -> str:
    """Case- and accent-blind form: ``Français`` and ``francais`` compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _matches(language: Language, query: str) -> int | None:
    """A rank for ``language`` under a filter (lower is better), or None if it does not match."""
    if not query:
        return 2
    names = [
        language.code,
        language.iso3,
        language.flores,
        language.name,
        language.native,
        language.chinese,
        *language.aliases,
    ]
    folded = [_fold(n) for n in names if n]
    if query in folded:
        return 0
    if any(n.startswith(query) for n in folded):
        return 1
    if any(query in n for n in folded):
        return 2
    return None


def filter_languages(query: str, languages: Iterable[Language] | None = None) -> list[Language]:
    """Languages matching ``query`` (code, English, native or Chinese name, alias), best first."""
    query = _fold(query.strip())
    ranked = []
    for index, language in enumerate(languages if languages is not None else all_languages()):
        rank = _matches(language, query)
        if rank is not None:
            ranked.append((rank, index, language))
    return [language for _, _, language in sorted(ranked, key=lambda item: item[:2])]


class LanguagePicker(ModalScreen[object]):
    """Type to filter the whole language table; Enter picks. Returns a Language, AUTO or None."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(
        self, title: str, *, allow_auto: bool = False, current: Language | None = None
    ) -> None:
        super().__init__()
        self.title_text = title
        self.allow_auto = allow_auto
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="picker"):
            yield Label(self.title_text, classes="title")
            yield Input(placeholder="type a name or code: de, German, Deutsch, 德语 …", id="filter")
            yield OptionList(id="languages")

    def on_mount(self) -> None:
        self._refill("")
        options = self.query_one(OptionList)
        if self.current is not None:
            for index in range(options.option_count):
                if options.get_option_at_index(index).id == self.current.flores:
                    options.highlighted = index
                    break

    def _refill(self, query: str) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        if self.allow_auto and (not query or "auto".startswith(query.strip().casefold())):
            options.add_option(Option("Auto-detect", id=AUTO))
        for language in filter_languages(query):
            options.add_option(
                Option(
                    Text(
                        f"{language.name} · {language.native} · {language.chinese} ({language.code})"
                    ),
                    id=language.flores,
                )
            )
        if options.option_count:
            options.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        self._refill(event.value)

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            current = options.highlighted or 0
            options.highlighted = max(0, min(options.option_count - 1, current + step))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self._pick(options.get_option_at_index(options.highlighted).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._pick(event.option.id)

    def _pick(self, option_id: str | None) -> None:
        if option_id == AUTO:
            self.dismiss(AUTO)
            return
        language = next((lang for lang in all_languages() if lang.flores == option_id), None)
        self.dismiss(language)


class AskText(ModalScreen["str | None"]):
    """One line of text from the user (a title, a path, a model name); Esc cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(
        self, title: str, *, value: str = "", placeholder: str = "", help_text: str = ""
    ) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.help_text = help_text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="ask"):
            yield Label(self.title_text, classes="title")
            if self.help_text:
                yield Static(self.help_text, classes="help-text")
            yield Input(value=self.value, placeholder=self.placeholder, id="answer")
            yield Label("Enter: OK · Esc: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class Confirm(ModalScreen[bool]):
    """A yes/no question; Enter or y confirms, Esc or n cancels."""

    BINDINGS = [
        Binding("escape,n", "dismiss(False)", "No"),
        Binding("y", "dismiss(True)", "Yes"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm"):
            yield Static(Text(self.question), classes="title")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


NO_MODEL_TEXT = """\
bayling-local runs BayLing models on this machine, and none is installed yet.

  • Download and install BayLing (about 5 GB, needs the network once):
        bayling-local models pull bayling-2-8b
    or smaller/older ones: bayling-local models pull bayling-2-7b
  • Or import a GGUF file you already have: press i (or Models, F5, then i).

Without a model you can still browse your history and change settings.
"""


class NoModelScreen(ModalScreen["str | None"]):
    """Explains how to get a model. Returns "import", "models" or None (continue)."""

    BINDINGS = [
        Binding("escape,c", "dismiss(None)", "Continue"),
        Binding("i", "dismiss('import')", "Import a GGUF"),
        Binding("m", "dismiss('models')", "Models"),
    ]

    def __init__(self, detail: str | None = None) -> None:
        super().__init__()
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="no-model"):
            yield Label("No model installed", classes="title")
            yield Static(NO_MODEL_TEXT)
            with Horizontal(classes="buttons"):
                yield Button("Import a GGUF… (i)", id="import", variant="primary")
                yield Button("Models (m)", id="models")
                yield Button("Continue (Esc)", id="continue")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "continue" else event.button.id)


class TooSmallScreen(Screen[None]):
    """Shown instead of the app while the terminal is smaller than the layout needs."""

    class Resized(Message):
        """The terminal changed size while this screen shows (the app decides what next)."""

        def __init__(self, width: int, height: int) -> None:
            super().__init__()
            self.width = width
            self.height = height

    def __init__(self, need: tuple[int, int]) -> None:
        super().__init__()
        self.need = need

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    def on_mount(self) -> None:
        self.update_size()

    def on_resize(self, event: events.Resize) -> None:
        self.update_size(event.size.width, event.size.height)
        self.post_message(self.Resized(event.size.width, event.size.height))

    def update_size(self, width: int | None = None, height: int | None = None) -> None:
        if width is None or height is None:
            width, height = self.app.size
        self.query_one("#too-small", Static).update(
            f"The terminal is {width}×{height}; bayling-local needs at least "
            f"{self.need[0]}×{self.need[1]}.\nMake the window larger (or the font smaller).\n"
            "Ctrl+Q quits."
        )


class DocumentDialog(ModalScreen["tuple[Path, Path] | None"]):
    """Which document to translate, and where to write it (``NAME.<target>.EXT`` by default).

    ``check(path_in, path_out)`` returns why the pair cannot be translated (shown in the
    dialog, which stays open) or None. Enter in the input box moves to the output box; Enter
    there starts; Esc cancels.
    """

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(
        self,
        languages: str,
        target: str,
        check: Callable[[Path, Path], str | None],
        *,
        value: str = "",
    ) -> None:
        super().__init__()
        self.languages = languages
        self.target = target
        self.check = check
        self.value = value
        self._output_edited = False
        self._filling = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="ask document"):
            yield Label("Translate a document", classes="title")
            yield Static(
                Text(
                    f"{self.languages} · .md .srt .vtt .html .docx .epub .po .xliff .txt; "
                    "the output is written when the whole document is done"
                ),
                classes="help-text",
            )
            yield Label("Document")
            yield Input(value=self.value, placeholder="path/to/file.md", id="doc-input")
            yield Label("Output")
            yield Input(placeholder="NAME.<target>.EXT beside the document", id="doc-output")
            yield Label("", id="doc-error")
            yield Label("Enter: next / translate · Esc: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#doc-error", Label).display = False
        if self.value:
            self._fill_output(self.value)
        self.query_one("#doc-input", Input).focus()

    def _fill_output(self, value: str) -> None:
        from .document_job import default_output

        text = value.strip()
        output = self.query_one("#doc-output", Input)
        new = str(default_output(Path(text).expanduser(), self.target)) if text else ""
        if new != output.value:
            self._filling = True  # a Changed event follows: not the user's edit
            output.value = new

    @on(Input.Changed, "#doc-input")
    def _input_changed(self, event: Input.Changed) -> None:
        if not self._output_edited:
            self._fill_output(event.value)

    @on(Input.Changed, "#doc-output")
    def _output_changed(self) -> None:
        if self._filling:
            self._filling = False
        else:
            self._output_edited = True

    @on(Input.Submitted, "#doc-input")
    def _input_submitted(self) -> None:
        self.query_one("#doc-output", Input).focus()

    @on(Input.Submitted, "#doc-output")
    def _output_submitted(self) -> None:
        self.submit()

    def submit(self) -> None:
        path_in = self.query_one("#doc-input", Input).value.strip()
        path_out = self.query_one("#doc-output", Input).value.strip()
        error = self.query_one("#doc-error", Label)
        if not path_in or not path_out:
            problem: str | None = "Give the document and the output file"
        else:
            problem = self.check(Path(path_in).expanduser(), Path(path_out).expanduser())
        if problem:
            error.update(Text(problem))
            error.display = True
            return
        self.dismiss((Path(path_in).expanduser(), Path(path_out).expanduser()))
