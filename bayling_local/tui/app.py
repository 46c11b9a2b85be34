"""The Textual application: views in tabs, the model, the history, and the status bar.

Data flows one way: the app hands each view an :class:`~bayling_local.tui.context.AppContext`
(settings, history, model state) and sets view attributes when something changes; views post
messages (:mod:`bayling_local.tui.messages`) for what only the app may do, and the app handles
them with ``@on``. The model's load and generation lifecycle is a
:class:`~bayling_local.tui.model_session.ModelSession` the app owns; every llama.cpp call runs
in a thread worker, so the UI never blocks. One generation runs at a time; requests made while
the model loads wait for it, and Esc stops a reply between tokens (the partial reply is kept).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Footer

from ..errors import BaylingError
from ..settings import Settings, load_settings
from .context import AppContext
from .messages import (
    CancelDocument,
    DefaultModelChanged,
    DocumentFinished,
    DocumentProgressed,
    Generate,
    GenerationFinished,
    LanguagesChanged,
    LoadModel,
    ModelLoaded,
    ModelLoadFailed,
    OpenSession,
    SettingsSaved,
    StreamDone,
    StreamFailed,
    ThemePreview,
    TranslateDocument,
)
from .screens import HelpScreen, NoModelScreen, TooSmallScreen
from .textutil import Batcher
from .views.translate import TranslateView
from .widgets import PromptArea, StatusBar, ViewTabs, focus_now

if TYPE_CHECKING:
    from ..engine import Engine, GenerationStats
    from ..history import History
    from ..interactive import Reply
    from .document_job import DocumentJob, JobProgress
    from .messages import Run

MIN_SIZE = (60, 20)
# Streamed text reaches the screen at most this often. Re-laying out a long Markdown reply
# takes tens of milliseconds on a slow machine; at 10 updates a second it keeps most of the UI
# thread free for key presses (see benchmarks/tui_latency.py), and text still flows smoothly.
STREAM_INTERVAL_S = 0.1
VIEWS = ("translate", "chat", "history", "models", "settings")
# The views other than translate are imported and mounted just after the first frame.
LAZY_VIEWS = {
    "chat": ("bayling_local.tui.views.chat", "ChatView"),
    "history": ("bayling_local.tui.views.history", "HistoryView"),
    "models": ("bayling_local.tui.views.models", "ModelsView"),
    "settings": ("bayling_local.tui.views.settings", "SettingsView"),
}
VIEW_TITLES = {
    "translate": "Translate",
    "chat": "Chat",
    "history": "History",
    "models": "Models",
    "settings": "Settings",
}


class BaylingApp(App[None]):
    """bayling-local's terminal UI."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "bayling-local"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS = [
        Binding("f1", "help", "Keys", priority=True),
        Binding("f2", "show_view('translate')", "Translate", show=False, priority=True),
        Binding("f3", "show_view('chat')", "Chat", show=False, priority=True),
        Binding("f4", "show_view('history')", "History", show=False, priority=True),
        Binding("f5", "show_view('models')", "Models", show=False, priority=True),
        Binding("f6", "show_view('settings')", "Settings", show=False, priority=True),
        Binding("escape", "stop", "Stop reply", show=False),
        Binding("ctrl+n", "new_session", "New", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        model: str | None = None,
        *,
        settings: Settings | None = None,
        history: History | None = None,
        autoload: bool = True,
        ime_window: float = 0.05,
        remember: bool = True,
    ) -> None:
        super().__init__()
        self.ctx = AppContext(
            settings=settings if settings is not None else load_settings(),
            ime_window=ime_window,
            _history=history,
        )
        self.model_spec = model
        self.autoload = autoload
        self._mounting: dict[str, asyncio.Lock] = {}  # views mounted after the first frame
        self.remember = remember  # the last language pair, across runs (tests turn it off)
        try:
            self.theme = self.settings.theme
        except Exception:  # an unknown theme name in the settings: keep the default
            self.ctx.settings = replace(self.settings, theme=self.theme)

    # -- what the app owns -----------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def history(self) -> History:
        return self.ctx.history

    @property
    def engine(self) -> Engine | None:
        return self.ctx.model.engine

    @property
    def generating(self) -> bool:
        return self.ctx.model.generating

    @property
    def loading(self) -> str | None:
        return self.ctx.model.loading

    @property
    def model_error(self) -> str | None:
        return self.ctx.model.error

    @property
    def last_stats(self) -> GenerationStats | None:
        return self.ctx.model.last_stats

    @property
    def resolved(self) -> Any:
        return self.ctx.model.resolved

    @property
    def model_label(self) -> str | None:
        return self.ctx.model.label

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        remembered = None
        if self.remember:
            from .state import load_state

            remembered = load_state()
        tabs = [(name, f"{VIEW_TITLES[name]} F{index + 2}") for index, name in enumerate(VIEWS)]
        yield ViewTabs(tabs, active="translate", id="tabs")
        # Only the translate view is built for the first frame; _startup mounts the others.
        with ContentSwitcher(initial="translate-view", id="views"):
            yield TranslateView(self.ctx, remembered=remembered, id="translate-view")
        yield StatusBar(id="status")
        yield Footer()

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    def view(self, name: str) -> Widget:
        """A view that is mounted (see :meth:`ensure_view` right after start-up)."""
        return self.query_one(f"#{name}-view")

    def mounted_view(self, name: str) -> Any:  # the view classes are imported lazily
        """The view if it is mounted yet (its widgets composed), else None."""
        found = self.query(f"#{name}-view")
        if not found or not found.first().is_mounted:
            return None
        return found.first()

    async def ensure_view(self, name: str) -> Any:
        """The view, importing and mounting it now if the start-up has not done so yet."""
        lock = self._mounting.setdefault(name, asyncio.Lock())
        async with lock:  # the start-up and a key press may ask for it at the same time
            found = self.query(f"#{name}-view")  # mounted under this lock, if at all
            view = found.first() if found else None
            if view is None:
                module, class_name = LAZY_VIEWS[name]
                view_class = getattr(importlib.import_module(module), class_name)
                view = view_class(self.ctx, id=f"{name}-view")
                await self.query_one(ContentSwitcher).add_content(view)
        return view

    @property
    def translate_view(self) -> TranslateView:
        return self.query_one(TranslateView)

    @property
    def chat_view(self) -> Any:
        return self.view("chat")

    def on_mount(self) -> None:
        if not self._check_size():
            self.translate_view.focus_input()
        self.call_after_refresh(self._startup)

    def _startup(self) -> None:
        """Just after the first frame: the model starts loading, the rest of the app is built."""
        notice = self.history.notice
        if notice:
            self.notify(notice, title="History", severity="warning", timeout=15)
        if self.autoload:
            self._load(self.model_spec)  # in a thread, while the views are built
        # In a worker, not here: the app keeps handling keys while the views are mounted.
        self.run_worker(self._build_the_rest(), group="startup")

    async def _build_the_rest(self) -> None:
        await self.translate_view.finish_layout()
        for name in LAZY_VIEWS:
            await self.ensure_view(name)
        self.set_timer(1.0, settle_memory)  # the long-lived objects are all there now

    # -- terminal size ---------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int | None = None, height: int | None = None) -> bool:
        """Show the "too small" screen while the terminal is below MIN_SIZE; True if so."""
        if width is None or height is None:
            width, height = self.size
        too_small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        showing = any(isinstance(screen, TooSmallScreen) for screen in self.screen_stack)
        if too_small and not showing:
            self.push_screen(TooSmallScreen(MIN_SIZE))
        elif not too_small and showing and isinstance(self.screen, TooSmallScreen):
            self.pop_screen()
        return too_small

    @on(TooSmallScreen.Resized)
    def _too_small_resized(self, event: TooSmallScreen.Resized) -> None:
        self._check_size(event.width, event.height)

    # -- views -----------------------------------------------------------------------------

    @property
    def current_view(self) -> str:
        current = self.query_one(ContentSwitcher).current or "translate-view"
        return current.removesuffix("-view")

    async def action_show_view(self, name: str) -> None:
        if isinstance(self.screen, TooSmallScreen):
            return
        view = await self.ensure_view(name)
        if self.current_view != name:
            self.query_one(ContentSwitcher).current = f"{name}-view"
            self.query_one(ViewTabs).active = name
            if name in ("history", "models"):
                view.refresh_list()
        # At once, not with Widget.focus() (which waits its turn behind the keys already
        # queued): keys typed right after F4 belong to the view they asked for.
        focus_now(view.input_widget())

    @on(ViewTabs.Chosen)
    async def _tab_chosen(self, message: ViewTabs.Chosen) -> None:
        await self.action_show_view(message.name)
        if message.by_key:
            focus_now(self.query_one(ViewTabs))

    def action_help(self) -> None:
        if not isinstance(self.screen, (HelpScreen, TooSmallScreen)):
            self.push_screen(HelpScreen(help_sections()))

    def action_new_session(self) -> None:
        view = self.current_view
        if view in ("translate", "chat"):
            self.view(view).new_session()  # type: ignore[attr-defined]

    async def run_view_action(self, view: str, action: str) -> None:
        """Show ``view`` and run one of its actions (the command palette uses this)."""
        await self.action_show_view(view)
        await self.view(view).run_action(action)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name in VIEWS:
            key = f"F{VIEWS.index(name) + 2}"
            yield SystemCommand(
                f"Go to {VIEW_TITLES[name]}",
                f"Show the {VIEW_TITLES[name]} view ({key})",
                lambda name=name: self.run_worker(self.action_show_view(name)),
            )
        yield SystemCommand("Show keys", "Every key of every view (F1)", self.action_help)
        yield SystemCommand(
            "Stop the reply", "Stop generating; the partial reply is kept (Esc)", self.action_stop
        )
        yield SystemCommand(
            "New session", "Start a new translation or chat (Ctrl+N)", self.action_new_session
        )
        for view, widget_class in view_classes().items():
            for title, help_text, action in widget_class.COMMANDS_LIST:
                yield SystemCommand(
                    title,
                    help_text,
                    lambda view=view, action=action: self.run_worker(
                        self.run_view_action(view, action)
                    ),
                )

    @on(OpenSession)
    async def _open_session(self, message: OpenSession) -> None:
        if self.generating:
            self.notify("Wait for the reply to finish (or stop it with Esc)", severity="warning")
            return
        name = "translate" if message.kind == "translate" else "chat"
        try:
            view = await self.ensure_view(name)
            await view.load_session(message.session_id)
        except BaylingError as exc:
            self.notify(exc.message, title="History", severity="error")
            return
        await self.action_show_view(name)

    @on(LanguagesChanged)
    def _languages_changed(self, message: LanguagesChanged) -> None:
        if not self.remember:
            return
        from .state import UiState, save_state

        try:
            save_state(UiState(source=message.source, target=message.target))
        except BaylingError as exc:
            self.notify(exc.message, title="Languages not remembered", severity="warning")

    # -- the model -------------------------------------------------------------------------

    @on(LoadModel)
    def _load_requested(self, message: LoadModel) -> None:
        self._load(message.spec)

    def _load(self, spec: str | None) -> None:
        model = self.ctx.model
        if model.generating:
            self.notify(
                "A reply is being generated; stop it (Esc) before switching models",
                severity="warning",
            )
            return
        token = model.begin_load(spec, self.settings)
        self._show_loading()
        models = self.mounted_view("models")
        if models is not None:
            models.show_loading(model.loading)
        self._load_worker(token, spec, self.settings)

    def _show_loading(self) -> None:
        model = self.ctx.model
        waiting = f" · {model.waiting} waiting" if model.waiting else ""
        self.status.set_state(f"loading model {model.loading}…{waiting}")

    @work(thread=True, group="load", exit_on_error=False)
    def _load_worker(self, token: int, spec: str | None, settings: Settings) -> None:
        from .model_session import ModelSession

        try:
            runtime = ModelSession.load(spec, settings)
        except BaylingError as exc:
            failure = ModelSession.failure(spec, settings, exc)
            self.post_message(ModelLoadFailed(token, failure.error, no_model=failure.no_model))
            return
        except Exception as exc:  # a bug or an unexpected llama.cpp failure: keep the app up
            self.post_message(ModelLoadFailed(token, f"could not load the model: {exc}"))
            return
        self.post_message(
            ModelLoaded(token, runtime.engine, runtime.resolved, notices=runtime.notices)
        )

    def on_model_loaded(self, message: ModelLoaded) -> None:
        model = self.ctx.model
        seconds = model.load_seconds
        if not model.accept(message.token, message.engine, message.resolved):
            return
        engine = message.engine
        self.status.set_model(
            f"{message.resolved.name}{' (demo)' if message.resolved.is_demo else ''}"
        )
        self.status.set_context(f"ctx 0/{engine.n_ctx}")
        self.status.set_speed("")
        self.status.set_state("")
        self._model_changed()
        models = self.mounted_view("models")
        if models is not None:
            models.load_finished()
        self.notify(
            f"{message.resolved.name}: {engine.prompt_format.name} format, context {engine.n_ctx} "
            f"tokens (loaded in {seconds:.1f} s)",
            title="Model loaded",
        )
        for notice in message.notices:  # the demo model, threads clamped to the cores
            self.notify(notice, severity="warning", timeout=12)
        self._start_next()

    def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        model = self.ctx.model
        if not model.reject(message.token, message.error):
            return
        self.status.set_state("")
        if model.engine is None:
            self.status.set_model("no model")
        models = self.mounted_view("models")
        if models is not None:
            models.load_finished(error=message.error)
        if model.engine is not None:
            self._start_next()  # the previous model is still loaded: it serves the queue
        else:
            for request in model.drop_queued():
                if isinstance(request, TranslateDocument):
                    self.notify(
                        f"{request.job.path_in.name} was not translated: the model did not load",
                        severity="error",
                    )
                    continue
                request.target.post_message(
                    StreamFailed(f"the model did not load: {message.error}")
                )
        if message.no_model:
            self.push_screen(NoModelScreen(), self._after_no_model)
        else:
            self.notify(message.error, title="The model did not load", severity="error", timeout=15)

    def _model_changed(self) -> None:
        """Tell the mounted views that the loaded model changed (attributes down)."""
        for name in ("translate", "chat"):
            view = self.mounted_view(name)
            if view is not None:
                view.model_name = self.model_label

    async def _after_no_model(self, choice: str | None) -> None:
        if choice == "import":
            await self.run_view_action("models", "import_model")
        elif choice == "models":
            await self.action_show_view("models")

    @on(DefaultModelChanged)
    def _default_model_changed(self, message: DefaultModelChanged) -> None:
        self.ctx.settings = replace(self.settings, model=message.name)
        self.notify(f"{message.name} is now the default model")

    async def action_quit(self) -> None:
        self.ctx.model.close()
        await super().action_quit()

    # -- generation ------------------------------------------------------------------------

    @on(Generate)
    def _generate_requested(self, message: Generate) -> None:
        message.stop()
        model = self.ctx.model
        if model.loading:  # it runs on the model being loaded, once it is ready
            model.queue(message)
            self._show_loading()
        elif model.generating:
            message.target.post_message(
                StreamFailed("a reply is being generated; wait for it or stop it with Esc")
            )
        elif model.engine is None:
            message.target.post_message(StreamFailed(model.unavailable_reason() or "no model"))
        else:
            self._start(message)

    def _start_next(self) -> None:
        model = self.ctx.model
        if model.generating or model.engine is None:
            return
        request = model.next_queued()
        if request is not None:
            self._start(request)

    def _start(self, request: Generate | TranslateDocument) -> None:
        model = self.ctx.model
        assert model.engine is not None
        if isinstance(request, TranslateDocument):
            self._start_document(request)
            return
        settle_memory()  # the user just pressed Enter: a good moment for a full collection
        hold_full_collections(True)
        cancel = model.start(request.target)
        self.status.set_state("generating… Esc stops")
        self._generate_worker(request.target, request.run, model.engine, cancel)

    @work(thread=True, group="generate", exit_on_error=False)
    def _generate_worker(
        self, target: Widget, run: Run, engine: Engine, cancel: threading.Event
    ) -> None:
        from .messages import StreamChunk

        def emit(text: str) -> None:
            target.post_message(StreamChunk(text))

        batcher = Batcher(emit, interval=STREAM_INTERVAL_S)
        try:
            reply = run(engine, batcher.add, cancel)
        except BaylingError as exc:
            batcher.flush()
            target.post_message(StreamFailed(exc.message))
            return
        except Exception as exc:  # never let a bug take the app down with a traceback
            batcher.flush()
            target.post_message(StreamFailed(f"unexpected error: {exc!r}"))
            return
        batcher.flush()
        target.post_message(StreamDone(reply))

    @on(GenerationFinished)
    def _generation_finished(self, message: GenerationFinished) -> None:
        model = self.ctx.model
        if not model.generating or message.view is not model.running:
            return  # a request that failed before it started
        hold_full_collections(False)
        model.finish(message.reply)
        self.status.set_state("")
        reply: Reply | None = message.reply
        if reply is not None:
            if reply.stats.decode_tps:
                self.status.set_speed(f"{reply.stats.decode_tps:.1f} tok/s")
            if model.engine is not None and reply.context_used is not None:
                self.status.set_context(f"ctx {reply.context_used}/{model.engine.n_ctx}")
        self._start_next()

    # -- documents (issue 11): one file translated whole, on the same engine ---------------

    @on(TranslateDocument)
    def _document_requested(self, message: TranslateDocument) -> None:
        message.stop()
        model = self.ctx.model
        if model.loading:  # it runs on the model being loaded, once it is ready
            model.queue(message)
            self._show_loading()
        elif model.generating:
            self.notify(
                "A reply or a document is being translated; wait for it or stop it with Esc",
                severity="warning",
            )
        elif model.engine is None:
            self.notify(model.unavailable_reason() or "no model", severity="error")
        else:
            self._start(message)

    def _start_document(self, request: TranslateDocument) -> None:
        model = self.ctx.model
        assert model.engine is not None
        cancel = model.start(request.job)
        self.status.set_state(f"{request.job.path_in.name}: starting… Esc cancels")
        self._document_worker(request.job, model.engine, self.settings, cancel)

    @work(thread=True, group="generate", exit_on_error=False)
    def _document_worker(
        self, job: DocumentJob, engine: Engine, settings: Settings, cancel: threading.Event
    ) -> None:
        from ..errors import Cancelled
        from .document_job import cancelled_line, run_document

        last: list[JobProgress | None] = [None]

        def progress(state: JobProgress) -> None:
            last[0] = state
            self.post_message(DocumentProgressed(job, state))

        try:
            summary = run_document(job, engine, settings, progress=progress, cancel=cancel)
        except Cancelled:
            self.post_message(DocumentFinished(job, error=cancelled_line(last[0]), cancelled=True))
            return
        except BaylingError as exc:
            self.post_message(DocumentFinished(job, error=exc.message))
            return
        except Exception as exc:  # never let a bug take the app down with a traceback
            self.post_message(DocumentFinished(job, error=f"unexpected error: {exc!r}"))
            return
        self.post_message(DocumentFinished(job, summary=summary))

    @on(DocumentProgressed)
    def _document_progressed(self, message: DocumentProgressed) -> None:
        if self.ctx.model.running is message.job:
            self.status.set_state(message.progress.line(message.job.path_in.name))

    @on(CancelDocument)
    def _document_cancel(self) -> None:
        self.action_stop()

    @on(DocumentFinished)
    def _document_finished(self, message: DocumentFinished) -> None:
        from .document_job import history_text

        model = self.ctx.model
        if model.running is not message.job:
            return
        model.finish(None)
        self.status.set_state("")
        job = message.job
        name = job.path_in.name
        if message.summary is None:
            if message.cancelled:
                self.notify(f"{name}: {message.error}", title="Document", severity="warning")
            else:
                self.notify(
                    f"{name}: {message.error}",
                    title="Document not translated",
                    severity="error",
                    timeout=15,
                )
            self._start_next()
            return
        summary = message.summary
        self.notify(summary.line(), title=f"Translated {name}", timeout=15)
        try:
            session = self.history.new_session(
                "translate",
                f"Document {name}",
                model=model.label,
                source_lang=summary.source,
                target_lang=summary.target,
                source_text=str(job.path_in),
            )
            self.history.add_message(
                session, "user", f"Translate the document {job.path_in} into {job.target.name}"
            )
            record = self.history.add_message(session, "assistant", history_text(job, summary))
            self.history.update_session(session, current_version=record)
        except BaylingError as exc:
            self.notify(exc.message, title="History", severity="warning")
        history = self.mounted_view("history")
        if history is not None:
            history.refresh_list()
        self._start_next()

    def action_stop(self) -> None:
        if self.ctx.model.stop():
            self.status.set_state("stopping…")

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notifications carry model output, titles and paths: never read them as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # -- settings --------------------------------------------------------------------------

    @on(SettingsSaved)
    def _settings_saved(self, message: SettingsSaved) -> None:
        settings = message.settings
        old = self.settings
        engine_changed = (settings.threads, settings.gpu_layers, settings.context) != (
            old.threads,
            old.gpu_layers,
            old.context,
        )
        self.ctx.settings = settings
        self.theme = settings.theme
        if engine_changed and self.engine is not None:
            self.notify(
                "Threads, GPU layers and context apply when a model is loaded: "
                "reload it in Models (F5, Enter)",
                severity="information",
            )

    @on(ThemePreview)
    def _theme_preview(self, message: ThemePreview) -> None:
        self.theme = message.theme


def settle_memory() -> None:
    """Collect garbage now, then exempt what survives from later full collections.

    A full collection walks every object of the app (the DOM, style caches) and takes tens of
    milliseconds; landing in the middle of a stream it was the largest key-press delay measured
    (benchmarks/tui_latency.py). Freezing the long-lived objects makes the collections during a
    reply cheap. It runs at start-up and whenever a reply starts, so garbage is never frozen
    for long.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


_GC_THRESHOLDS = gc.get_threshold()


def hold_full_collections(hold: bool) -> None:
    """While a reply streams, let only the young generations be collected automatically.

    Full collections still came about once a second during a reply (7-18 ms each), and a key
    press landing on one waited for it. Young garbage is still freed as usual; what reaches the
    old generation meanwhile waits for the next :func:`settle_memory` (next reply, or start-up).
    """
    young0, young1, _ = _GC_THRESHOLDS
    gc.set_threshold(young0, young1, 1_000_000 if hold else _GC_THRESHOLDS[2])


def _key_name(keys: str) -> str:
    """``ctrl+j,shift+enter`` -> ``Ctrl+J / Shift+Enter``."""
    names = []
    for key in keys.split(","):
        parts = [p.capitalize() if len(p) > 1 else p.upper() for p in key.split("+")]
        names.append("+".join(parts).replace("Escape", "Esc"))
    return " / ".join(names)


def _binding_rows(bindings: Iterable[Any]) -> list[tuple[str, str]]:
    rows = []
    for binding in bindings:
        if isinstance(binding, Binding) and binding.description:
            rows.append((_key_name(binding.key), binding.description))
    return rows


def view_classes() -> dict[str, Any]:
    """Every view's class by name (imports the lazily loaded ones)."""
    import importlib

    classes: dict[str, Any] = {"translate": TranslateView}
    for name, (module, class_name) in LAZY_VIEWS.items():
        classes[name] = getattr(importlib.import_module(module), class_name)
    return classes


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The F1 help, made from the bindings themselves so it cannot go stale."""
    from .views.chat import ChatMessage, ChatView
    from .views.history import HistoryView
    from .views.models import ModelsView
    from .views.settings import SettingsView

    return [
        ("Everywhere", _binding_rows(BaylingApp.BINDINGS) + [("Ctrl+P", "Command palette")]),
        (
            "Text boxes",
            [("Enter", "Send (translate, refine, chat)")] + _binding_rows(PromptArea.BINDINGS),
        ),
        ("Translate (F2)", _binding_rows(TranslateView.BINDINGS)),
        ("Chat (F3)", _binding_rows(ChatView.BINDINGS)),
        ("A focused chat message", _binding_rows(ChatMessage.BINDINGS)),
        ("History (F4)", _binding_rows(HistoryView.BINDINGS)),
        ("Models (F5)", _binding_rows(ModelsView.BINDINGS)),
        ("Settings (F6)", _binding_rows(SettingsView.BINDINGS)),
    ]
