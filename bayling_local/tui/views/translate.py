"""The translate view: languages, source, streaming output, refinements, versions and diffs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widget import AwaitMount, Widget
from textual.widgets import Button, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from ...errors import BaylingError, UsageError
from ...languages import Language, resolve
from ..messages import (
    CancelDocument,
    Generate,
    GenerationFinished,
    LanguagesChanged,
    SourceDetected,
    StreamChunk,
    StreamDone,
    StreamFailed,
    TranslateDocument,
)
from ..model_session import translation_sampling
from ..screens import AUTO, DocumentDialog, LanguagePicker
from ..textutil import printable
from ..widgets import PromptArea, diff_text

if TYPE_CHECKING:
    from ...engine import Engine
    from ...interactive import InteractiveSession, OnText, Reply
    from ..context import AppContext
    from ..state import UiState

_W = TypeVar("_W", bound=Widget)

DETECT_DELAY_S = 0.4
# The source and the translation get the room: from this terminal height the versions and
# changes are shown in full below them, from the next one in 4 lines, and in a shorter
# terminal they are behind Ctrl+G.
VERSIONS_FULL_HEIGHT = 30
VERSIONS_MIN_HEIGHT = 22
# Heights of the panes below the texts (as in app.tcss), for the room kept before they mount.
REFINE_ROWS, VERSIONS_ROWS, VERSIONS_SHORT_ROWS = 4, 7, 4


class TranslateView(Vertical):
    """Translate, then refine over several turns; every reply is a version."""

    BINDINGS = [
        Binding("ctrl+f", "pick_source", "From language"),
        Binding("ctrl+t", "pick_target", "To language"),
        Binding("f7", "swap", "Swap languages", priority=True),  # over the box's select-all
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+g", "toggle_versions", "Versions"),
        Binding("f8", "copy", "Copy translation"),
        Binding("ctrl+o", "restore", "Restore version"),
        Binding("ctrl+b", "compare_base", "Compare from version"),
        # In the F1 table, not in the footer (the footer keeps to the keys used most).
        Binding(
            "f10", "translate_document", "Translate a document (F10 again cancels)", show=False
        ),
    ]

    COMMANDS_LIST = [
        ("Translate", "Translate the source text (Enter in the source box)", "translate"),
        ("Refine the translation", "Send the refinement box (Enter in it)", "refine"),
        ("Choose the source language", "Type to filter every language (Ctrl+F)", "pick_source"),
        ("Choose the target language", "Type to filter every language (Ctrl+T)", "pick_target"),
        ("Swap languages", "Swap source and target, and the texts (F7)", "swap"),
        ("Regenerate the translation", "Translate the source text again (Ctrl+R)", "regenerate"),
        (
            "Show or hide the versions",
            "The versions and the changes between them (Ctrl+G)",
            "toggle_versions",
        ),
        ("Copy the translation", "Copy the current version to the clipboard (F8)", "copy"),
        ("Restore a version", "Make the highlighted version current (Ctrl+O)", "restore"),
        (
            "Compare from a version",
            "Diff later versions against the highlighted one (Ctrl+B)",
            "compare_base",
        ),
        ("New translation", "Clear the source, output and versions (Ctrl+N)", "new_session"),
        (
            "Translate a document…",
            "A Markdown, subtitle, HTML, Word, EPUB, PO or XLIFF file; F10 again cancels (F10)",
            "translate_document",
        ),
    ]

    def __init__(
        self, ctx: AppContext, *, remembered: UiState | None = None, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.ctx = ctx
        self.model_name: str | None = None  # set by the app when a model is loaded
        self.detected: Language | None = None
        self.target_lang: Language = (
            _language_or(remembered.target if remembered else None, None)
            or _language_or(ctx.settings.target, None)
            or resolve("en")
        )
        self.source_lang: Language | None = _language_or(  # None: auto-detect
            remembered.source if remembered else None, None
        )
        self.session: InteractiveSession | None = None
        self.compare_from: int | None = None  # version index the diff starts from (None: parent)
        self._pending: tuple[str, str, int | None] | None = None  # (kind, request, parent record)
        self._detect_timer: Timer | None = None
        self.streamed = ""
        self._stream_title = ""
        self._versions_chosen: bool | None = None  # Ctrl+G's choice; None: by terminal height
        self._mounting_below: AwaitMount | None = None  # see _ensure_panes_below

    def compose(self) -> ComposeResult:
        with Horizontal(id="lang-bar"):
            yield Button(self._source_label(), id="source-lang", compact=True)
            yield Button("⇄", id="swap", compact=True, tooltip="Swap languages (F7)")
            yield Button(self._target_label(), id="target-lang", compact=True)
            yield Label("", id="detected")
        with Horizontal(id="panes"):
            with Vertical(id="source-pane"):
                yield Label("Source · Enter translates · Ctrl+J new line", classes="pane-title")
                yield PromptArea(
                    placeholder="Type or paste text to translate",
                    id="source",
                    ime_window=self.ctx.ime_window,
                )
            with Vertical(id="output-pane"):
                yield Label("Translation", id="output-title", classes="pane-title")
                yield TextArea(id="output", read_only=True, soft_wrap=True, show_cursor=False)
        # The refinement box, the versions and the changes have nothing to show before a
        # translation: they are mounted just after the first frame (finish_layout), in the room
        # this keeps for them, so the boxes above do not move.
        yield Static(id="below-pending")

    def _panes_below(self) -> tuple[Vertical, Horizontal]:
        refine = Vertical(
            Label(
                "Refine · Ctrl+G versions · e.g. more formal · use 'Ballon d'Or' for 金球奖 · "
                "now into German",
                classes="pane-title",
            ),
            PromptArea(
                placeholder="How should the translation change?",
                id="refine",
                ime_window=self.ctx.ime_window,
            ),
            id="refine-pane",
        )
        versions = Horizontal(
            Vertical(
                Label("Versions · Enter restores · Ctrl+B compare from", classes="pane-title"),
                OptionList(id="versions"),
                id="versions-box",
            ),
            VerticalScroll(
                Label("Changes", id="diff-title", classes="pane-title"),
                Static("", id="diff"),
                id="diff-pane",
            ),
            id="versions-pane",
        )
        return refine, versions

    async def finish_layout(self) -> None:
        """Mount what the first frame does without (the app calls this just after it), then
        show in it what happened meanwhile (a translation typed at once, a session opened)."""
        await self._ensure_panes_below()
        self._refresh_versions()
        session = self.session
        self._show_diff(session.current if session is not None else None)

    def _ensure_panes_below(self) -> AwaitMount:
        """Start mounting the refinement box, versions and changes if that has not started.

        Until the returned mount is done their widgets may be missing: the methods that show
        something in them skip it then, and :meth:`finish_layout` shows it once they are in.
        """
        if self._mounting_below is None:
            for placeholder in self.query("#below-pending"):
                placeholder.display = False
                placeholder.remove()
            self._mounting_below = self.mount(*self._panes_below())
            self._fit_versions()
        return self._mounting_below

    # -- helpers ---------------------------------------------------------------------------

    def input_widget(self) -> Widget:
        """What takes the focus when the view is shown."""
        return self.query_one("#source", PromptArea)

    def focus_input(self) -> None:
        self.input_widget().focus()

    def _source_label(self) -> str:
        if self.source_lang is not None:
            return f"From: {self.source_lang.name}"
        if self.detected is not None:
            return f"From: auto ({self.detected.name})"
        return "From: auto-detect"

    def _target_label(self) -> str:
        return f"To: {self.target_lang.name}"

    def _update_language_buttons(self) -> None:
        label = self.query_one("#detected", Label)
        if self.source_lang is not None or not self.query_one("#source", PromptArea).text.strip():
            self.detected = None  # a chosen language, or no text: nothing detected to show
            label.update("")
            label.display = False
        for selector, text in (
            ("#source-lang", self._source_label()),
            ("#target-lang", self._target_label()),
        ):
            button = self.query_one(selector, Button)
            button.label = text
            button.styles.width = cell_len(text) + 2  # sized to the label, whatever its length

    def _languages_changed(self) -> None:
        """After the user changed the pair: redraw the bar and have the app remember it."""
        self._update_language_buttons()
        self.post_message(
            LanguagesChanged(
                self.source_lang.code if self.source_lang else None, self.target_lang.code
            )
        )

    def on_mount(self) -> None:
        self._update_language_buttons()
        self._fit_versions()

    def on_resize(self) -> None:
        self._fit_versions()

    def _fit_versions(self) -> None:
        """Versions below the texts in a tall terminal; behind Ctrl+G in a short one."""
        height = self.app.size.height
        found = self.query("#versions-pane")
        if not found:  # not mounted yet: keep the room they will take
            for placeholder in self.query("#below-pending"):
                versions = 0
                if height >= VERSIONS_MIN_HEIGHT:
                    versions = (
                        VERSIONS_ROWS if height >= VERSIONS_FULL_HEIGHT else VERSIONS_SHORT_ROWS
                    )
                placeholder.styles.height = REFINE_ROWS + versions
            return
        pane = found.first()
        pane.set_class(height < VERSIONS_FULL_HEIGHT, "short")
        if self._versions_chosen is None:
            pane.display = height >= VERSIONS_MIN_HEIGHT

    @property
    def output(self) -> TextArea:
        return self.query_one("#output", TextArea)

    def _set_output(self, text: str, title: str) -> None:
        self.output.load_text(printable(text))
        self.query_one("#output-title", Label).update(Text(printable(title)))

    # -- languages -------------------------------------------------------------------------

    def action_pick_source(self) -> None:
        def chosen(result: object) -> None:
            if result == AUTO:
                self.source_lang = None
                self.detected = None
                self._source_changed()  # detect the text's language again
            elif isinstance(result, Language):
                self.source_lang = result
                self.detected = None
            else:
                return
            self._languages_changed()

        self.app.push_screen(
            LanguagePicker("Translate from", allow_auto=True, current=self.source_lang), chosen
        )

    def action_pick_target(self) -> None:
        def chosen(result: object) -> None:
            if isinstance(result, Language):
                self.target_lang = result
                self._languages_changed()

        self.app.push_screen(LanguagePicker("Translate into", current=self.target_lang), chosen)

    def action_swap(self) -> None:
        source = self.source_lang or self.detected
        if source is None:
            self.notify(
                "The source language is not known yet: pick it (Ctrl+F) or type more text",
                severity="warning",
            )
            return
        self.source_lang, self.target_lang = self.target_lang, source
        self.detected = None
        version = self.session.current_version if self.session else None
        if version is not None and version.text.strip():
            self.query_one("#source", PromptArea).load_text(version.text)
            self.new_session(keep_source=True)
        self._languages_changed()

    @on(Button.Pressed, "#source-lang")
    def _source_pressed(self) -> None:
        self.action_pick_source()

    @on(Button.Pressed, "#target-lang")
    def _target_pressed(self) -> None:
        self.action_pick_target()

    @on(Button.Pressed, "#swap")
    def _swap_pressed(self) -> None:
        self.action_swap()

    @on(TextArea.Changed, "#source")
    def _source_changed(self) -> None:
        if self._detect_timer is not None:
            self._detect_timer.stop()
        if self.source_lang is None:
            # What was detected was for the old text: say nothing until the new one is known.
            if self.detected is not None:
                self.detected = None
                self._update_language_buttons()
            label = self.query_one("#detected", Label)
            label.update("")
            label.display = False
            self._detect_timer = self.set_timer(DETECT_DELAY_S, self._start_detection)

    def _start_detection(self) -> None:
        text = self.query_one("#source", PromptArea).text
        if text.strip():
            self._detect(text)

    @work(thread=True, group="detect", exclusive=True, exit_on_error=False)
    def _detect(self, text: str) -> None:
        from ...detect import detect

        try:
            found = detect(text)
        except UsageError as exc:
            self.post_message(SourceDetected(text, None, 0.0, exc.message))
            return
        self.post_message(SourceDetected(text, found.language, found.confidence))

    def on_source_detected(self, message: SourceDetected) -> None:
        if message.text != self.query_one("#source", PromptArea).text or self.source_lang:
            return  # the text (or the From language) changed since
        self.detected = message.language
        self._update_language_buttons()
        label = self.query_one("#detected", Label)
        if message.language is not None:
            label.update(f"detected {message.language.name} ({message.confidence:.0%})")
        else:
            label.update("language not sure yet")
        label.display = True

    # -- translating -----------------------------------------------------------------------

    @on(PromptArea.Submitted, "#source")
    def _source_submitted(self) -> None:
        self.action_translate()

    @on(PromptArea.Submitted, "#refine")
    def _refine_submitted(self) -> None:
        self.action_refine()

    def _refusal(self) -> str | None:
        """Why a request cannot be sent now (None: it can, maybe after the model loads)."""
        model = self.ctx.model
        if self._pending is not None or model.generating:
            return "A reply is being generated; wait for it or stop it with Esc"
        return model.unavailable_reason()

    def _waiting_note(self) -> str:
        model = self.ctx.model
        return f"loading model {model.loading}…" if model.loading else "streaming…"

    def action_regenerate(self) -> None:
        self.action_translate()

    def action_translate(self) -> None:
        from ...interactive import InteractiveSession, InteractiveTranslator

        text = self.query_one("#source", PromptArea).text
        if not text.strip():
            self.notify("Type or paste the text to translate first", severity="warning")
            return
        refusal = self._refusal()
        if refusal:
            self.notify(refusal, severity="error" if "No model" in refusal else "warning")
            return
        settings = self.ctx.settings
        instruction_lang = (
            settings.instruction_lang if settings.instruction_lang in ("en", "zh") else "en"
        )
        session = InteractiveSession(
            source_text=text,
            target=self.target_lang,
            source=self.source_lang or self.detected,
            instruction_lang=instruction_lang,
        )
        try:
            history = self.ctx.history
            session.record_id = history.new_session(
                "translate",
                text,
                model=self.ctx.model.label or self.ctx.model.loading,
                source_lang=session.source.code if session.source else None,
                target_lang=session.target.code,
                source_text=text,
            )
            history.add_message(session.record_id, "user", session.instruction)
        except BaylingError as exc:
            self.notify(exc.message, title="History", severity="warning")
        self.session = session
        self.compare_from = None
        self._pending = ("translate", session.instruction, None)
        self.streamed = ""
        self._stream_title = f"Translation v1 into {self.target_lang.name}"
        self._set_output("", f"{self._stream_title} · {self._waiting_note()}")
        sampling = translation_sampling(settings)
        system = settings.system_prompt

        def run(engine: Engine, on_text: OnText, cancel: threading.Event) -> Reply:
            translator = InteractiveTranslator(engine, sampling, system=system)
            return translator.translate(session, on_text=on_text, cancel=cancel)

        self._refresh_versions()
        self.post_message(Generate(self, run))

    def action_refine(self) -> None:
        from ...interactive import InteractiveTranslator

        box = self._below("#refine", PromptArea)
        refinement = box.text.strip() if box is not None else ""
        session = self.session
        if session is None or session.current is None:
            self.notify(
                "Translate something first (type in the source box, Enter)", severity="warning"
            )
            return
        if box is None or not refinement:
            self.notify(
                "Type how the translation should change, e.g. more formal", severity="warning"
            )
            return
        refusal = self._refusal()
        if refusal:
            self.notify(refusal, severity="error" if "No model" in refusal else "warning")
            return
        parent = session.current_version
        assert parent is not None
        try:
            if session.record_id is not None:
                self.ctx.history.add_message(
                    session.record_id, "user", refinement, parent_id=parent.record_id
                )
        except BaylingError as exc:
            self.notify(exc.message, title="History", severity="warning")
        self._pending = ("refine", refinement, parent.record_id)
        self.streamed = ""
        number = len(session.versions) + 1
        self._stream_title = f"Version v{number} · {refinement[:40]}"
        self._set_output("", f"{self._stream_title} · {self._waiting_note()}")
        sampling = translation_sampling(self.ctx.settings)
        system = self.ctx.settings.system_prompt

        def run(engine: Engine, on_text: OnText, cancel: threading.Event) -> Reply:
            translator = InteractiveTranslator(engine, sampling, system=system)
            return translator.refine(session, refinement, on_text=on_text, cancel=cancel)

        box.clear()
        self.post_message(Generate(self, run))

    def on_stream_chunk(self, message: StreamChunk) -> None:
        if not self.streamed:  # the first text: the model is loaded and generating
            self.query_one("#output-title", Label).update(
                Text(printable(f"{self._stream_title} · streaming…"))
            )
        self.streamed += message.text
        output = self.output
        follow = output.scroll_y >= output.max_scroll_y - 1
        output.insert(printable(message.text), output.document.end)
        if follow:
            output.scroll_end(animate=False)

    def on_stream_done(self, message: StreamDone) -> None:
        reply = message.reply
        session = self.session
        pending = self._pending
        self._pending = None
        self.post_message(GenerationFinished(self, reply))
        if session is None or pending is None:
            return
        kind, request, parent_record = pending
        if not reply.text and reply.status == "stopped":
            self.notify(
                "Stopped before any text was produced; nothing was kept", severity="warning"
            )
            self._show_current()
            return
        index = session.add_version(
            reply.text, request, refines=kind == "refine", status=reply.status, stats=reply.stats
        )
        if session.record_id is not None:
            try:
                history = self.ctx.history
                record = history.add_message(
                    session.record_id,
                    "assistant",
                    reply.text,
                    status=reply.status,
                    parent_id=parent_record,
                    stats=reply.stats.as_dict(),
                )
                session.versions[index].record_id = record
                history.update_session(session.record_id, current_version=record)
            except BaylingError as exc:
                self.notify(exc.message, title="History", severity="warning")
        self._refresh_versions()
        self._show_current()
        source_box = self.query_one("#source", PromptArea)
        if kind == "translate" and self.app.focused is source_box:
            refine = self._below("#refine", PromptArea)
            if refine is not None:  # the next step is usually a refinement
                refine.focus()
        if reply.status == "cut":
            self.notify(
                f"v{index + 1} was cut off: it reached the token limit "
                f"({self.ctx.settings.max_tokens} max tokens) or the model's context. "
                "Raise max tokens in Settings (F6).",
                severity="warning",
                timeout=10,
            )
        elif reply.status == "stopped":
            self.notify(f"Stopped; the partial translation is kept as v{index + 1}")

    def on_stream_failed(self, message: StreamFailed) -> None:
        self._pending = None
        self.post_message(GenerationFinished(self, None))
        self.notify(message.error, title="Translation failed", severity="error", timeout=10)
        self._show_current()

    # -- documents -------------------------------------------------------------------------

    def action_translate_document(self) -> None:
        """Ask for a file and translate it whole into the To language (F10 again cancels)."""
        from ..document_job import DocumentJob, check_job

        if isinstance(self.ctx.model.running, DocumentJob):
            self.post_message(CancelDocument())
            return
        refusal = self._refusal()
        if refusal:
            self.notify(refusal, severity="error" if "No model" in refusal else "warning")
            return
        source, target = self.source_lang, self.target_lang
        pair = f"From {source.name if source else 'auto-detect'} into {target.name}"

        def job_for(path_in: Path, path_out: Path) -> DocumentJob:
            return DocumentJob(path_in, path_out, target=target, source=source)

        def check(path_in: Path, path_out: Path) -> str | None:
            try:
                check_job(job_for(path_in, path_out))
            except BaylingError as exc:
                return exc.message
            return None

        def chosen(result: tuple[Path, Path] | None) -> None:
            if result is not None:
                self.post_message(TranslateDocument(job_for(*result)))

        self.app.push_screen(DocumentDialog(pair, target.code, check), chosen)

    # -- versions --------------------------------------------------------------------------

    def _below(self, selector: str, kind: type[_W]) -> _W | None:
        """A widget of the panes below the texts, or None while they are being mounted."""
        self._ensure_panes_below()
        found = self.query(selector)
        return found.first(kind) if found else None

    def _refresh_versions(self) -> None:
        options = self._below("#versions", OptionList)
        if options is None:
            return
        options.clear_options()
        session = self.session
        if session is None:
            return
        for index in range(len(session.versions)):
            marker = "●" if index == session.current else " "
            options.add_option(
                Option(Text(printable(f"{marker} {session.label(index)}")), id=str(index))
            )
        if session.current is not None:
            options.highlighted = session.current

    def _show_current(self) -> None:
        session = self.session
        if session is None or session.current is None:
            self._set_output("", "Translation")
            self._show_diff(None)
            return
        index = session.current
        version = session.versions[index]
        status = {"stopped": " · stopped", "cut": " · cut off"}.get(version.status, "")
        self._set_output(
            version.text, f"Translation v{index + 1} into {session.target.name}{status}"
        )
        self._show_diff(index)

    def _diff_base(self, index: int) -> int | None:
        session = self.session
        assert session is not None
        if self.compare_from is not None and self.compare_from != index:
            return self.compare_from
        return session.versions[index].parent

    def _show_diff(self, index: int | None) -> None:
        title = self._below("#diff-title", Label)
        diff = self._below("#diff", Static)
        if title is None or diff is None:
            return
        session = self.session
        if session is None or index is None:
            title.update("Changes")
            diff.update("")
            return
        base = self._diff_base(index)
        if base is None:
            title.update(f"v{index + 1} is the first translation")
            diff.update(Text(printable(session.versions[index].text)))
            return
        title.update(f"Changes v{base + 1} → v{index + 1}")
        diff.update(diff_text(session.diff(base, index)))

    @on(OptionList.OptionHighlighted, "#versions")
    def _version_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self._show_diff(int(event.option.id))

    @on(OptionList.OptionSelected, "#versions")
    def _version_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.restore(int(event.option.id))

    def _highlighted_version(self) -> int | None:
        options = self._below("#versions", OptionList)
        if self.session is None or not self.session.versions:
            self.notify("There are no versions yet: translate something first", severity="warning")
            return None
        if options is None or options.highlighted is None:
            return self.session.current
        return options.highlighted

    def action_restore(self) -> None:
        index = self._highlighted_version()
        if index is not None:
            self.restore(index)

    def restore(self, index: int) -> None:
        """Make version ``index`` current: it is shown, copied, and refined next."""
        session = self.session
        if session is None:
            return
        if self.ctx.model.generating or self._pending is not None:
            self.notify("Wait for the reply to finish (or stop it with Esc)", severity="warning")
            return
        version = session.restore(index)
        if session.record_id is not None and version.record_id is not None:
            try:
                self.ctx.history.update_session(
                    session.record_id, current_version=version.record_id
                )
            except BaylingError as exc:
                self.notify(exc.message, title="History", severity="warning")
        self._refresh_versions()
        self._show_current()
        self.notify(f"v{index + 1} is current: refinements continue from it")

    def action_compare_base(self) -> None:
        index = self._highlighted_version()
        if index is None:
            return
        self.compare_from = index
        self.notify(f"Differences are now shown from v{index + 1}")
        session = self.session
        if session is not None and session.current is not None:
            self._show_diff(session.current)

    def action_copy(self) -> None:
        session = self.session
        version = session.current_version if session else None
        text = version.text if version is not None else self.output.text
        if not text.strip():
            self.notify("There is no translation to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        label = (
            f"v{session.current + 1}"
            if session and session.current is not None
            else "the translation"
        )
        self.notify(f"Copied {label} ({len(text)} characters)")

    # -- sessions --------------------------------------------------------------------------

    def new_session(self, *, keep_source: bool = False) -> None:
        if self.ctx.model.generating or self._pending is not None:
            self.notify("Wait for the reply to finish (or stop it with Esc)", severity="warning")
            return
        self.session = None
        self.compare_from = None
        if not keep_source:
            self.query_one("#source", PromptArea).clear()
            self.detected = None
        refine = self._below("#refine", PromptArea)
        if refine is not None:
            refine.clear()
        self._update_language_buttons()
        self._refresh_versions()
        self._show_current()
        self.focus_input()

    def action_new_session(self) -> None:
        self.new_session()

    def action_toggle_versions(self) -> None:
        self._ensure_panes_below()
        pane = self.query_one("#versions-pane")
        pane.display = not pane.display
        self._versions_chosen = pane.display  # the user's choice holds whatever the size

    async def load_session(self, record_id: int) -> None:
        """Open a saved translation session from the history."""
        from ...interactive import InteractiveSession

        await self._ensure_panes_below()  # it shows the versions at once

        history = self.ctx.history
        record = history.session(record_id)
        target = _language_or(record.target_lang, self.target_lang) or self.target_lang
        source = _language_or(record.source_lang, None)
        session = InteractiveSession.from_history(
            record, history.messages(record_id), target=target, source=source
        )
        self.session = session
        self.compare_from = None
        self.target_lang = target
        self.source_lang = source
        self.detected = None
        self.query_one("#source", PromptArea).load_text(session.source_text)
        self._update_language_buttons()
        self._refresh_versions()
        self._show_current()


def _language_or(code: str | None, default: Language | None) -> Language | None:
    if not code:
        return default
    try:
        return resolve(code)
    except UsageError:
        return default
