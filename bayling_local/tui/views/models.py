"""The models view: installed models; switch, make default, import a GGUF, pull from the hub."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.css.query import NoMatches
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Label, ProgressBar

from ...errors import BaylingError
from ..messages import DefaultModelChanged, LoadModel, TaskDone, TaskNote
from ..screens import AskText

if TYPE_CHECKING:
    from ..context import AppContext


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # pragma: no cover


def _source(source: str) -> str:
    """Where a model came from, short: ``hf:REPO`` or ``imported``."""
    if source.startswith("import:"):
        return "imported"
    return source.split("@")[0]


class ModelsView(Vertical):
    """What is installed, what is loaded, and how to get more."""

    BINDINGS = [
        Binding("enter", "load", "Load model", show=False),
        Binding("d", "make_default", "Make default"),
        Binding("i", "import_model", "Import a GGUF"),
        Binding("p", "pull", "Pull a model"),
        Binding("r", "refresh", "Refresh"),
    ]

    COMMANDS_LIST = [
        (
            "Load the model",
            "Switch to the highlighted model; it loads in the background (Enter)",
            "load",
        ),
        (
            "Make the model the default",
            "Use the highlighted model in every command (d)",
            "make_default",
        ),
        ("Import a GGUF file", "Add a GGUF you have to the model store (i)", "import_model"),
        ("Pull a model", "Download BayLing from the Hugging Face hub into the store (p)", "pull"),
        ("Refresh the model list", "Read the model store again (r)", "refresh"),
    ]

    def __init__(self, ctx: AppContext, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ctx = ctx
        self._timer: Timer | None = None
        self._busy_since = 0.0
        self._busy_text = ""
        self._names: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Label("Installed models", classes="pane-title")
        yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="model-progress"):
            yield ProgressBar(total=None, show_eta=False, show_percentage=False, id="load-bar")
            yield Label("", id="load-status")
        yield Label(
            "Enter load · d make default · i import a GGUF · p pull from Hugging Face · r refresh",
            classes="hint",
        )

    def on_mount(self) -> None:
        with contextlib.suppress(NoMatches):  # the app may be closing while this view mounts
            self.query_one("#model-progress").display = False
            self.refresh_list()
            if self.ctx.model.loading:  # a load started before this view was mounted
                self.show_loading(self.ctx.model.loading)

    def input_widget(self) -> Widget:
        """What takes the focus when the view is shown."""
        return self.query_one("#models", DataTable)

    def focus_input(self) -> None:
        self.input_widget().focus()

    # -- listing ---------------------------------------------------------------------------

    def refresh_list(self) -> None:
        from ...resolve import default_model_name
        from ...store import Store

        table = self.query_one("#models", DataTable)
        table.clear(columns=True)
        for label, width in (
            (" ", 2),
            ("Name", 28),
            ("Size", 9),
            ("Quant", 8),
            ("Format", 10),
            ("Context", 8),
        ):
            table.add_column(label, width=width)
        table.add_column("Source")
        self._names = {}
        try:
            entries = Store().entries()
            default = default_model_name()
        except BaylingError as exc:
            self.notify(exc.message, title="Model store", severity="error")
            return
        loaded = self.ctx.model.label
        for entry in entries:
            marks = ("●" if entry.name == loaded else " ") + (
                "★" if default and default.lower() == entry.name.lower() else " "
            )
            table.add_row(
                marks,
                Text(entry.name),
                human_size(entry.size),
                entry.quantization,
                entry.prompt_format,
                str(entry.context_length or "?"),
                Text(_source(entry.source)),
                key=entry.name,
            )
            self._names[entry.name] = entry.name
        if not entries:
            resolved = self.ctx.model.resolved
            engine = self.ctx.model.engine
            if resolved is not None and engine is not None:
                table.add_row(
                    "●",
                    Text(resolved.name),
                    human_size(resolved.path.stat().st_size),
                    "",
                    engine.prompt_format.name,
                    str(engine.n_ctx),
                    Text(str(resolved.path)),
                    key="__loaded__",
                )
            self.query_one(".pane-title", Label).update(
                "Installed models · none in the store: press i to import a GGUF, p to pull BayLing"
            )
        else:
            self.query_one(".pane-title", Label).update(
                f"Installed models · {len(entries)} · ● loaded ★ default"
            )

    def action_refresh(self) -> None:
        self.refresh_list()

    def _selected(self) -> str | None:
        table = self.query_one("#models", DataTable)
        if table.row_count == 0:
            self.notify("No model is installed: import one (i) or pull one (p)", severity="warning")
            return None
        row_key, _ = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0))
        return self._names.get(str(row_key.value))

    # -- loading ---------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#models")
    def _row_selected(self) -> None:
        self.action_load()

    def action_load(self) -> None:
        name = self._selected()
        if name is not None:
            self.post_message(LoadModel(name))

    def show_loading(self, name: str) -> None:
        self._start_busy(f"loading {name}")

    def load_finished(self, error: str | None = None) -> None:
        self._stop_busy(f"could not load: {error}" if error else "")
        self.refresh_list()

    def _start_busy(self, text: str) -> None:
        self._busy_text = text
        self._busy_since = time.monotonic()
        self.query_one("#model-progress").display = True
        self.query_one("#load-bar").display = True
        self._tick()
        if self._timer is None:
            self._timer = self.set_interval(0.2, self._tick)

    def _tick(self) -> None:
        seconds = time.monotonic() - self._busy_since
        self.query_one("#load-status", Label).update(Text(f"{self._busy_text} … {seconds:.1f} s"))

    def _stop_busy(self, text: str = "") -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.query_one("#load-status", Label).update(Text(text))
        self.query_one("#load-bar").display = False
        self.query_one("#model-progress").display = bool(text)

    # -- store actions ---------------------------------------------------------------------

    def action_make_default(self) -> None:
        from ...resolve import set_default_model

        name = self._selected()
        if name is None:
            return
        try:
            set_default_model(name)
        except BaylingError as exc:
            self.notify(exc.message, severity="error")
            return
        self.post_message(DefaultModelChanged(name))
        self.refresh_list()

    def action_import_model(self) -> None:
        def chosen(path: str | None) -> None:
            if path and path.strip():
                self._start_busy(f"importing {path.strip()}")
                self._import(path.strip())

        self.app.push_screen(
            AskText(
                "Import a GGUF file",
                placeholder="/path/to/model.Q4_K_M.gguf",
                help_text="The file is checked and copied into the model store.",
            ),
            chosen,
        )

    @work(thread=True, group="store", exit_on_error=False)
    def _import(self, path: str) -> None:
        from ...store import Store

        try:
            entry = Store().add(path)
        except BaylingError as exc:
            self.post_message(TaskDone("import", error=exc.message))
            return
        except Exception as exc:
            self.post_message(TaskDone("import", error=f"could not import {path}: {exc}"))
            return
        self.post_message(TaskDone("import", result=entry.name))

    def action_pull(self) -> None:
        def chosen(name: str | None) -> None:
            if name and name.strip():
                self._start_busy(f"pulling {name.strip()}")
                self._pull(name.strip())

        self.app.push_screen(
            AskText(
                "Pull a model from the Hugging Face hub",
                value="bayling-2-8b",
                help_text="A BayLing name (bayling-2-8b, bayling-2-7b:Q8_0, …) or hf:USER/REPO/FILE.gguf. "
                "Needs the network; it is downloaded, converted and quantized.",
            ),
            chosen,
        )

    @work(thread=True, group="store", exit_on_error=False)
    def _pull(self, name: str) -> None:
        from ...hub import pull

        try:

            def note(line: str) -> None:
                self.post_message(TaskNote(line))

            result = pull(name, notify=note)
        except BaylingError as exc:
            self.post_message(TaskDone("pull", error=exc.message))
            return
        except Exception as exc:
            self.post_message(TaskDone("pull", error=f"could not pull {name}: {exc}"))
            return
        self.post_message(TaskDone("pull", result=result.entry.name))

    def on_task_note(self, message: TaskNote) -> None:
        self._busy_text = message.text

    def on_task_done(self, message: TaskDone) -> None:
        if message.error:
            self._stop_busy(f"{message.what} failed: {message.error}")
            self.notify(
                message.error,
                title=f"{message.what.capitalize()} failed",
                severity="error",
                timeout=12,
            )
            return
        self._stop_busy("")
        verb = "Imported" if message.what == "import" else "Installed"
        self.notify(f"{verb} {message.result}; press Enter on it to load it")
        self.refresh_list()
