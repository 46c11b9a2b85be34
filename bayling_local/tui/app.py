"""The Textual application: views in tabs, the model, the history, and the status bar.

The app owns the loaded :class:`~bayling_local.engine.Engine` and runs every llama.cpp call
(loading, generating) in a thread worker, so the UI never blocks. The engine does one
generation at a time; :meth:`BaylingApp.start_generation` is the only way to start one, and
Esc stops it between tokens (the partial reply is kept and marked stopped).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, TabbedContent, TabPane

from ..errors import BaylingError, ModelError
from ..settings import Settings, load_settings
from .messages import ModelLoaded, ModelLoadFailed, StreamDone, StreamFailed
from .screens import HelpScreen, NoModelScreen, TooSmallScreen
from .textutil import Batcher
from .views.translate import TranslateView
from .widgets import LazyView, PromptArea, StatusBar

if TYPE_CHECKING:
    from ..engine import Engine, GenerationStats, SamplingConfig
    from ..history import History
    from ..interactive import Reply
    from ..store import ResolvedModel
    from .views.chat import ChatView

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

Run = Callable[[Callable[[str], None], threading.Event], "Reply"]


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
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else load_settings()
        self.model_spec = model
        self.autoload = autoload
        self.ime_window = ime_window
        self._history = history
        self.engine: Engine | None = None
        self.resolved: ResolvedModel | None = None
        self.model_error: str | None = None
        self.loading: str | None = None  # the name being loaded
        self._load_started = 0.0
        self._load_token = 0
        self._cancel: threading.Event | None = None
        self.generating = False
        self.last_stats: GenerationStats | None = None
        try:
            self.theme = self.settings.theme
        except Exception:  # an unknown theme name in the settings: keep the default
            self.settings = replace(self.settings, theme=self.theme)

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="translate", id="views"):
            with TabPane("Translate F2", id="translate"):
                yield TranslateView(id="translate-view")
            for name in LAZY_VIEWS:
                key = f"F{VIEWS.index(name) + 2}"
                with TabPane(f"{VIEW_TITLES[name]} {key}", id=name):
                    yield LazyView(*LAZY_VIEWS[name], view_id=f"{name}-view")
        yield StatusBar(id="status")
        yield Footer()

    @property
    def history(self) -> History:
        """The history database, opened on first use."""
        if self._history is None:
            from ..history import History

            self._history = History()
        return self._history

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    def view(self, name: str) -> Widget:
        """A view that is mounted (see :meth:`ensure_view` right after start-up)."""
        return self.query_one(f"#{name}-view")

    def mounted_view(self, name: str) -> Any:
        """The view if it is mounted yet, else None."""
        found = self.query(f"#{name}-view")
        return found.first() if found else None

    async def ensure_view(self, name: str) -> Any:
        """The view, mounting it now if the start-up has not done so yet."""
        if name != "translate":
            await self.query_one(f"#{name}", TabPane).query_one(LazyView).load()
        return self.view(name)

    @property
    def translate_view(self) -> TranslateView:
        return self.query_one(TranslateView)

    @property
    def chat_view(self) -> ChatView:
        return self.view("chat")  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.translate_view.focus_input()
        self.call_after_refresh(self._startup)

    def _startup(self) -> None:
        self.check_size()
        self.set_timer(1.0, settle_memory)  # once the other views are mounted
        notice = self.history.notice
        if notice:
            self.notify(notice, title="History", severity="warning", timeout=15)
        if self.autoload:
            self.load_model(self.model_spec)

    # -- terminal size ---------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        self.check_size(event.size.width, event.size.height)

    def check_size(self, width: int | None = None, height: int | None = None) -> None:
        if width is None or height is None:
            width, height = self.size
        too_small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        showing = isinstance(self.screen, TooSmallScreen)
        if too_small and not showing:
            self.push_screen(TooSmallScreen(MIN_SIZE))
        elif not too_small and showing:
            self.pop_screen()

    # -- views -----------------------------------------------------------------------------

    @property
    def current_view(self) -> str:
        return self.query_one(TabbedContent).active or "translate"

    async def action_show_view(self, name: str) -> None:
        if isinstance(self.screen, TooSmallScreen):
            return
        view = await self.ensure_view(name)
        self.query_one(TabbedContent).active = name
        view.focus_input()

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        view = self.mounted_view(event.pane.id or "")
        if view is not None and event.pane.id in ("history", "models"):
            view.refresh_list()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
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

    # -- the model -------------------------------------------------------------------------

    @property
    def model_label(self) -> str | None:
        return self.resolved.name if self.resolved is not None and self.engine is not None else None

    def load_model(self, spec: str | None) -> None:
        """Load a model in the background; the UI stays usable and shows progress."""
        if self.generating:
            self.notify(
                "A reply is being generated; stop it (Esc) before switching models",
                severity="warning",
            )
            return
        self._load_token += 1
        self.loading = spec or self.settings.model or "the default model"
        self._load_started = time.monotonic()
        self.status.set_state(f"loading {self.loading}…")
        models = self.mounted_view("models")
        if models is not None:
            models.show_loading(self.loading)
        self._load_worker(self._load_token, spec)

    @work(thread=True, group="load", exit_on_error=False)
    def _load_worker(self, token: int, spec: str | None) -> None:
        from ..engine import Engine, EngineConfig
        from ..store import Store, demo_model_path, resolve_model

        settings = self.settings
        try:
            resolved = resolve_model(spec or settings.model)
            engine = Engine(
                EngineConfig(
                    model_path=resolved.path,
                    context=settings.context,
                    threads=settings.threads,
                    gpu_layers=settings.gpu_layers,
                )
            )
        except BaylingError as exc:
            no_model = False
            if isinstance(exc, ModelError) and not (spec or settings.model):
                try:
                    no_model = not Store().entries() and demo_model_path() is None
                except BaylingError:
                    no_model = False
            self.post_message(ModelLoadFailed(token, exc.message, no_model=no_model))
            return
        except Exception as exc:  # a bug or an unexpected llama.cpp failure: keep the app up
            self.post_message(ModelLoadFailed(token, f"could not load the model: {exc}"))
            return
        self.post_message(ModelLoaded(token, engine, resolved))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        if message.token != self._load_token or self.generating:
            message.engine.close()  # a newer load was asked for meanwhile
            return
        old, self.engine = self.engine, message.engine
        if old is not None:
            old.close()
        self.resolved = message.resolved
        self.model_error = None
        self.loading = None
        seconds = time.monotonic() - self._load_started
        engine = message.engine
        self.status.set_model(
            f"{message.resolved.name}{' (demo)' if message.resolved.is_demo else ''}"
        )
        self.status.set_context(f"ctx 0/{engine.n_ctx}")
        self.status.set_speed("")
        self.status.set_state("")
        models = self.mounted_view("models")
        if models is not None:
            models.load_finished()
        self.notify(
            f"{message.resolved.name}: {engine.prompt_format.name} format, context {engine.n_ctx} "
            f"tokens (loaded in {seconds:.1f} s)",
            title="Model loaded",
        )
        if message.resolved.is_demo:
            self.notify(message.resolved.demo_notice, severity="warning", timeout=12)

    def on_model_load_failed(self, message: ModelLoadFailed) -> None:
        if message.token != self._load_token:
            return
        self.loading = None
        self.model_error = message.error
        self.status.set_state("")
        if self.engine is None:
            self.status.set_model("no model")
        models = self.mounted_view("models")
        if models is not None:
            models.load_finished(error=message.error)
        if message.no_model:
            self.push_screen(NoModelScreen(), self._after_no_model)
        else:
            self.notify(message.error, title="The model did not load", severity="error", timeout=15)

    async def _after_no_model(self, choice: str | None) -> None:
        if choice == "import":
            await self.run_view_action("models", "import_model")
        elif choice == "models":
            await self.action_show_view("models")

    async def action_quit(self) -> None:
        if self._cancel is not None:  # let a streaming reply stop at its next token
            self._cancel.set()
        await super().action_quit()

    # -- generation ------------------------------------------------------------------------

    def chat_sampling(self) -> SamplingConfig:
        from ..engine import SamplingConfig

        s = self.settings
        return SamplingConfig(
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            repeat_penalty=s.repeat_penalty,
        )

    def translation_sampling(self) -> SamplingConfig:
        from ..translate import TRANSLATION_SAMPLING

        return replace(TRANSLATION_SAMPLING, max_tokens=self.settings.max_tokens)

    def can_generate(self) -> bool:
        """Whether a reply can start now; tells the user why not."""
        if self.generating:
            self.notify(
                "A reply is being generated; wait for it or stop it with Esc", severity="warning"
            )
            return False
        if self.engine is None:
            if self.loading:
                self.notify(f"The model ({self.loading}) is still loading…", severity="warning")
            else:
                reason = f" ({self.model_error})" if self.model_error else ""
                self.notify(
                    f"No model is loaded{reason}; choose one in Models (F5)", severity="error"
                )
            return False
        return True

    def start_generation(self, target: Widget, run: Run) -> bool:
        """Run ``run(on_text, cancel)`` in a thread worker; ``target`` gets the messages."""
        if not self.can_generate():
            return False
        settle_memory()  # the user just pressed Enter: a good moment for a full collection
        hold_full_collections(True)
        self._cancel = threading.Event()
        self.generating = True
        self.status.set_state("generating… Esc stops")
        self._generate_worker(target, run, self._cancel)
        return True

    @work(thread=True, group="generate", exit_on_error=False)
    def _generate_worker(self, target: Widget, run: Run, cancel: threading.Event) -> None:
        from .messages import StreamChunk

        batcher = Batcher(
            lambda text: target.post_message(StreamChunk(text)), interval=STREAM_INTERVAL_S
        )
        try:
            reply = run(batcher.add, cancel)
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

    def end_generation(self, reply: Reply | None) -> None:
        """Called by a view when its reply finished (or failed): update the status bar."""
        hold_full_collections(False)
        self.generating = False
        self._cancel = None
        self.status.set_state("")
        if reply is None:
            return
        self.last_stats = reply.stats
        if reply.stats.decode_tps:
            self.status.set_speed(f"{reply.stats.decode_tps:.1f} tok/s")
        if self.engine is not None and reply.context_used is not None:
            self.status.set_context(f"ctx {reply.context_used}/{self.engine.n_ctx}")

    def action_stop(self) -> None:
        if self._cancel is not None and self.generating:
            self._cancel.set()
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

    def apply_settings(self, settings: Settings) -> None:
        """New settings from the settings view (already saved)."""
        engine_changed = (settings.threads, settings.gpu_layers, settings.context) != (
            self.settings.threads,
            self.settings.gpu_layers,
            self.settings.context,
        )
        self.settings = settings
        self.theme = settings.theme
        if engine_changed and self.engine is not None:
            self.notify(
                "Threads, GPU layers and context apply when a model is loaded: "
                "reload it in Models (F5, Enter)",
                severity="information",
            )


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
