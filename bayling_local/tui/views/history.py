"""The history view: every saved session; open, rename, delete, archive, restore, search, export."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label

from ...errors import BaylingError
from ..messages import OpenSession
from ..screens import AskText, Confirm
from ..textutil import printable
from ..widgets import focus_now

if TYPE_CHECKING:
    from ...history import SessionRecord
    from ..context import AppContext

KIND_NAMES = {"chat": "chat", "translate": "translation"}
WIDE = 100  # from this terminal width the list also shows each session's model
EXPORT_FORMATS = {
    "markdown": ("Markdown", ".md"),
    "json": ("JSON", ".json"),
    "text": ("plain text (source + current translation)", ".txt"),
}


def _when(iso: str) -> str:
    """A stored UTC time as local time: ``2024-05-01T10:00:00+00:00`` -> ``2024-05-01 12:00``."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso[:16].replace("T", " ")
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


def _pair(record: SessionRecord) -> str:
    """``zh → en`` for a translation (``auto → en`` when detected), empty for a chat."""
    if record.kind != "translate":
        return ""
    return f"{record.source_lang or 'auto'} → {record.target_lang or '?'}"


def column_widths(total: int, fixed: dict[str, int], flexible: str) -> dict[str, int]:
    """Widths that fill ``total`` cells: the fixed columns as given, the rest to ``flexible``.

    Each column also takes 2 cells of padding in a DataTable.
    """
    used = sum(fixed.values()) + 2 * (len(fixed) + 1) + 2  # padding and the scrollbar
    return {**fixed, flexible: max(12, total - used)}


class HistoryView(Vertical):
    """Saved chats and translations."""

    BINDINGS = [
        # Priority: handled as the key arrives, so the word typed right after it reaches the
        # search box even when the app is busy (a plain binding runs only once the key has
        # been offered to the table, and the next keys were already sent there).
        Binding("slash", "search", "Search", priority=True),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
        Binding("a", "archive", "Archive"),
        Binding("u", "unarchive", "Restore from archive"),
        Binding("v", "toggle_archived", "Show archived / active"),
        Binding("m", "export('markdown')", "Export Markdown"),
        Binding("j", "export('json')", "Export JSON"),
        Binding("t", "export('text')", "Export text"),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]

    COMMANDS_LIST = [
        ("Open the session", "Open the highlighted session of the history (Enter)", "open"),
        ("Search the history", "Full-text search over every message (/)", "search"),
        ("Rename the session", "Give the highlighted session a new title (r)", "rename"),
        ("Delete the session", "Delete the highlighted session for good (d)", "delete"),
        ("Archive the session", "Move the highlighted session to the archive (a)", "archive"),
        ("Restore the session from the archive", "Bring an archived session back (u)", "unarchive"),
        (
            "Show archived sessions",
            "Switch between active and archived sessions (v)",
            "toggle_archived",
        ),
        (
            "Export the session as Markdown",
            "Write the highlighted session to a .md file (m)",
            "export('markdown')",
        ),
        (
            "Export the session as JSON",
            "Write the highlighted session to a .json file (j)",
            "export('json')",
        ),
        (
            "Export the source and translation",
            "Write the source text and the current translation to a .txt file (t)",
            "export('text')",
        ),
    ]

    def __init__(self, ctx: AppContext, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ctx = ctx
        self.show_archived = False
        self._row_sessions: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="history-bar"):
            yield Input(placeholder="Search every message (words, 中文, …)", id="search")
            yield Label("Active sessions", id="history-mode")
        yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
        yield Label(
            "Enter open · / search · r rename · d delete · a archive · u restore · v archived · "
            "m Markdown · j JSON · t text",
            classes="hint",
        )

    def on_mount(self) -> None:
        with contextlib.suppress(NoMatches):  # the app may be closing while this view mounts
            self.refresh_list()

    def input_widget(self) -> Widget:
        """What takes the focus when the view is shown."""
        return self.query_one("#sessions", DataTable)

    def focus_input(self) -> None:
        self.input_widget().focus()

    @property
    def table(self) -> DataTable:
        return self.query_one("#sessions", DataTable)

    # -- listing ---------------------------------------------------------------------------

    def refresh_list(self) -> None:
        query = self.query_one("#search", Input).value.strip()
        try:
            if query:
                self._show_hits(query)
            else:
                self._show_sessions()
        except BaylingError as exc:
            self.notify(exc.message, title="History", severity="error")

    def _width(self) -> int:
        return self.size.width or self.app.size.width

    def _show_sessions(self) -> None:
        table = self.table
        table.clear(columns=True)
        width = self._width()
        fixed = {"Kind": 11, "Languages": 9, "Model": 16, "Updated": 16}
        if width < WIDE:  # the title needs the room more than the model's name
            del fixed["Model"]
        widths = column_widths(width, fixed, "Title")
        for label in ("Title", *fixed):
            table.add_column(label, width=widths[label])
        self._row_sessions = {}
        sessions = self.ctx.history.sessions(archived=self.show_archived)
        for record in sessions:
            key = str(record.id)
            self._row_sessions[key] = record.id
            cells = {
                "Kind": KIND_NAMES.get(record.kind, record.kind),
                "Languages": _pair(record),
                "Model": Text(record.model or "", no_wrap=True, overflow="ellipsis"),
                "Updated": _when(record.updated),
            }
            table.add_row(
                Text(printable(record.title), no_wrap=True, overflow="ellipsis"),
                *(cells[label] for label in fixed),
                key=key,
            )
        mode = "Archived sessions" if self.show_archived else "Active sessions"
        self.query_one("#history-mode", Label).update(f"{mode} · {len(sessions)}")

    def _show_hits(self, query: str) -> None:
        table = self.table
        table.clear(columns=True)
        widths = column_widths(self._width(), {"Title": 24, "Kind": 11}, "Match")
        for label in ("Title", "Kind", "Match"):
            table.add_column(label, width=widths[label])
        self._row_sessions = {}
        hits = self.ctx.history.search(query)
        for hit in hits:
            key = f"{hit.session_id}:{hit.message_id}"
            self._row_sessions[key] = hit.session_id
            title = printable(hit.title) + (" (archived)" if hit.archived else "")
            snippet = Text(no_wrap=True, overflow="ellipsis")
            for is_match, text in hit.spans():
                snippet.append(printable(text), style="bold reverse" if is_match else "")
            table.add_row(
                Text(title, no_wrap=True, overflow="ellipsis"),
                KIND_NAMES.get(hit.kind, hit.kind),
                snippet,
                key=key,
            )
        self.query_one("#history-mode", Label).update(f"{len(hits)} matches")

    def on_resize(self) -> None:
        with contextlib.suppress(NoMatches):
            self.refresh_list()

    @on(Input.Changed, "#search")
    def _search_changed(self) -> None:
        self.refresh_list()

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        focus_now(self.table)

    def on_key(self, event: events.Key) -> None:
        if event.key != "down" or not self.is_mounted:
            return
        search = self.query("#search")
        if search and self.app.focused is search.first():
            event.stop()
            focus_now(self.table)  # Down from the search box moves into the results

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        if self.app.focused is search:  # a "/" typed in the search: after the keys before it
            search.call_later(search.insert_text_at_cursor, "/")
            return
        focus_now(search)

    async def action_clear_search(self) -> None:
        """Esc: empty the search and show every session again (or stop a reply, elsewhere)."""
        search = self.query_one("#search", Input)
        if not search.value:
            await self.app.run_action("stop")
            return
        search.value = ""
        self.refresh_list()
        focus_now(self.table)

    def action_toggle_archived(self) -> None:
        self.show_archived = not self.show_archived
        self.query_one("#search", Input).value = ""
        self.refresh_list()

    def selected_session(self, *, quiet: bool = False) -> int | None:
        table = self.table
        if table.row_count == 0:
            if not quiet:
                self.notify("There is no session here", severity="warning")
            return None
        row_key, _ = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0))
        return self._row_sessions.get(str(row_key.value))

    # -- actions ---------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#sessions")
    async def _row_selected(self) -> None:
        await self.action_open()

    async def action_open(self) -> None:
        session_id = self.selected_session()
        if session_id is None:
            return
        try:
            record = self.ctx.history.session(session_id)
        except BaylingError as exc:
            self.notify(exc.message, title="History", severity="error")
            return
        self.post_message(OpenSession(session_id, record.kind))

    def action_rename(self) -> None:
        session_id = self.selected_session()
        if session_id is None:
            return
        current = self.ctx.history.session(session_id).title

        def renamed(title: str | None) -> None:
            if title is None:
                return
            try:
                self.ctx.history.rename(session_id, title)
            except BaylingError as exc:
                self.notify(exc.message, severity="error")
                return
            self.refresh_list()

        self.app.push_screen(AskText("Rename the session", value=current), renamed)

    def action_delete(self) -> None:
        session_id = self.selected_session()
        if session_id is None:
            return
        title = self.ctx.history.session(session_id).title

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.ctx.history.delete(session_id)
            except BaylingError as exc:
                self.notify(exc.message, severity="error")
                return
            self.notify(f"Deleted “{title}”")
            self.refresh_list()

        self.app.push_screen(
            Confirm(f"Delete “{printable(title)}” and all its messages for good?"), confirmed
        )

    def action_archive(self) -> None:
        self._set_archived(True)

    def action_unarchive(self) -> None:
        self._set_archived(False)

    def _set_archived(self, archived: bool) -> None:
        session_id = self.selected_session()
        if session_id is None:
            return
        try:
            if archived:
                self.ctx.history.archive(session_id)
            else:
                self.ctx.history.restore(session_id)
        except BaylingError as exc:
            self.notify(exc.message, severity="error")
            return
        self.notify(
            "Archived (v shows the archive)" if archived else "Restored to the active sessions"
        )
        self.refresh_list()

    def action_export(self, fmt: str) -> None:
        session_id = self.selected_session()
        if session_id is None or fmt not in EXPORT_FORMATS:
            return
        record = self.ctx.history.session(session_id)
        if fmt == "text" and record.kind != "translate":
            self.notify("A text export is for translations; export a chat as Markdown (m)")
            return
        name, suffix = EXPORT_FORMATS[fmt]
        slug = re.sub(r"[^\w]+", "-", record.title.lower()).strip("-")[:40] or "session"
        default = Path.cwd() / f"bayling-{record.id}-{slug}{suffix}"

        def chosen(path: str | None) -> None:
            if not path:
                return
            try:
                written = self.ctx.history.export(session_id, Path(path), fmt)  # type: ignore[arg-type]
            except BaylingError as exc:
                self.notify(exc.message, title="Export failed", severity="error", timeout=10)
                return
            self.notify(f"Wrote {written}", title="Exported")

        self.app.push_screen(AskText(f"Export as {name} to", value=str(default)), chosen)
