"""The chat view: streaming Markdown replies, stop, regenerate, edit, copy."""

from __future__ import annotations

import threading
from time import monotonic
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, Markdown, Static
from textual.widgets._markdown import MarkdownStream

from ...errors import BaylingError
from ..chat_session import ChatSession, Turn
from ..messages import Generate, GenerationFinished, StreamChunk, StreamDone, StreamFailed
from ..model_session import chat_sampling
from ..textutil import code_blocks, printable
from ..widgets import PromptArea, focus_now

if TYPE_CHECKING:
    from ...engine import Engine
    from ...interactive import OnText, Reply
    from ..context import AppContext

# While the user types in the chat box, a streamed reply is drawn just after each keystroke's
# echo instead of whenever text arrives, so that re-laying out a long reply (tens of
# milliseconds) falls between two keys instead of delaying one (benchmarks/tui_latency.py).
TYPING_S = 0.3  # a key this recent means the user is typing
MAX_DEFER_S = 1.0  # even then, the reply moves at least this often


class ChatMessage(Vertical, can_focus=True):
    """One turn of the chat. Focus it (Tab, or click) to copy it or one of its code blocks."""

    BINDINGS = [
        Binding("c", "copy", "Copy message"),
        Binding("k", "copy_code", "Copy code block"),
    ]

    DEFAULT_CSS = """
    ChatMessage { height: auto; margin: 0 0 1 0; padding: 0 1; }
    ChatMessage.user { background: $boost; }
    ChatMessage:focus { background: $primary 15%; }
    ChatMessage .header { color: $text-muted; text-style: bold; }
    ChatMessage.assistant .header { color: $accent; }
    ChatMessage .status { color: $warning; }
    ChatMessage.editing { opacity: 50%; }
    ChatMessage Markdown { margin: 0; padding: 0; }
    ChatMessage .body { height: auto; }
    """

    def __init__(self, turn: Turn, *, label: str | None = None) -> None:
        super().__init__(classes=turn.role)
        self.turn = turn
        self.label_text = label or ("You" if turn.role == "user" else "BayLing")
        self._stream: MarkdownStream | None = None
        self._code_index = 0

    def compose(self) -> ComposeResult:
        yield Label(Text(self.label_text), classes="header")
        if self.turn.role == "assistant":
            yield Markdown(printable(self.turn.content), classes="body")
        else:
            yield Static(Text(printable(self.turn.content)), classes="body")
        status = Label(self._status_text(), classes="status")
        status.display = bool(self._status_text())
        yield status

    def _status_text(self) -> str:
        return {
            "stopped": "■ stopped — you stopped this reply (Esc); it is kept as it was",
            "cut": "▲ cut off — the reply reached the token or context limit",
            "waiting": "… loading model: the reply starts when it is ready",
        }.get(self.turn.status, "")

    def set_status(self, status: str) -> None:
        self.turn.status = status
        label = self.query_one(".status", Label)
        label.update(self._status_text())
        label.display = bool(self._status_text())

    def start_stream(self) -> None:
        self._stream = Markdown.get_stream(self.query_one(Markdown))

    async def write(self, text: str) -> None:
        """Append streamed text (the turn's content is updated by the caller)."""
        if self._stream is None:
            self.start_stream()
        assert self._stream is not None
        await self._stream.write(printable(text))

    async def finish(self, status: str) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.set_status(status)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.turn.content)
        self.notify(f"Copied the message ({len(self.turn.content)} characters)")

    def action_copy_code(self) -> None:
        blocks = code_blocks(self.turn.content)
        if not blocks:
            self.notify("This message has no code block", severity="warning")
            return
        index = self._code_index % len(blocks)
        self._code_index += 1
        self.app.copy_to_clipboard(blocks[index])
        self.notify(f"Copied code block {index + 1} of {len(blocks)}")


EMPTY_TEXT = (
    "Ask BayLing anything, in any language.\n"
    "Enter sends · Ctrl+J new line · Esc stops a reply · Ctrl+R regenerates · "
    "Ctrl+L edits your last message (Esc puts it back)"
)


class ChatView(Vertical):
    """A conversation with the model."""

    BINDINGS = [
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+l", "edit_last", "Edit last message"),
        Binding("escape", "cancel_edit", "Cancel the edit", show=False),
        Binding("f8", "copy_reply", "Copy last reply"),
        Binding("f9", "copy_code", "Copy last code block"),
    ]

    COMMANDS_LIST = [
        ("Send the chat message", "Send the text of the chat box (Enter)", "send"),
        ("Regenerate the reply", "Replace the last reply with a new one (Ctrl+R)", "regenerate"),
        ("Edit the last message", "Take back your last message to change it (Ctrl+L)", "edit_last"),
        ("Copy the last reply", "Copy BayLing's last reply (F8)", "copy_reply"),
        (
            "Copy the last code block",
            "Copy the last code block of the last reply (F9)",
            "copy_code",
        ),
        ("New chat", "Start a new conversation (Ctrl+N)", "new_session"),
    ]

    def __init__(self, ctx: AppContext, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ctx = ctx
        self.model_name: str | None = ctx.model.label  # set by the app when a model loads
        self.session = ChatSession()
        # Ctrl+L: (the message being edited and what followed it, the box's text before).
        self.editing: tuple[list[Turn], str] | None = None
        self._streaming: ChatMessage | None = None
        self._unshown = ""  # streamed text not drawn yet (see TYPING_S)
        self._shown_at = 0.0
        self._typed_at = 0.0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="chat-log"):
            yield Static(EMPTY_TEXT, id="chat-empty")
        yield PromptArea(
            placeholder="Message BayLing", id="chat-input", ime_window=self.ctx.ime_window
        )

    def input_widget(self) -> Widget:
        """What takes the focus when the view is shown."""
        return self.query_one("#chat-input", PromptArea)

    def focus_input(self) -> None:
        self.input_widget().focus()

    @property
    def log(self) -> VerticalScroll:  # type: ignore[override]
        return self.query_one("#chat-log", VerticalScroll)

    async def _mount_turn(self, turn: Turn) -> ChatMessage:
        self.query_one("#chat-empty").display = False
        label = None
        if turn.role == "assistant" and self.model_name:
            label = f"BayLing · {self.model_name}"
        widget = ChatMessage(turn, label=label)
        await self.log.mount(widget)
        return widget

    # -- sending ---------------------------------------------------------------------------

    @on(PromptArea.Submitted, "#chat-input")
    async def _submitted(self) -> None:
        await self.action_send()

    def _refusal(self) -> str | None:
        """Why nothing can be sent now (None: it can, maybe once the model has loaded)."""
        model = self.ctx.model
        if model.generating or self._streaming is not None:
            return "A reply is being generated; wait for it or stop it with Esc"
        return model.unavailable_reason()

    def _refused(self) -> bool:
        refusal = self._refusal()
        if refusal:
            self.notify(refusal, severity="error" if "No model" in refusal else "warning")
        return refusal is not None

    async def action_send(self) -> None:
        box = self.query_one("#chat-input", PromptArea)
        text = box.text.strip()
        if not text or self._refused():
            return
        if self.editing is not None:  # the edited message replaces the old one only now
            removed, _ = self.editing
            self.editing = None
            self.session.remove(removed)
            await self._remove_turns(removed)
        box.clear()
        turn = self.session.add("user", text)
        history = self.ctx.history
        try:
            if self.session.record_id is None:
                self.session.record_id = history.new_session(
                    "chat", text, model=self.ctx.model.label or self.ctx.model.loading
                )
            turn.record_id = history.add_message(self.session.record_id, "user", text)
        except BaylingError as exc:
            self.notify(exc.message, title="History", severity="warning")
        await self._mount_turn(turn)
        await self._generate()

    async def _generate(self) -> None:
        from ...interactive import stream_reply

        messages = self.session.messages(system=self.ctx.settings.system_prompt)
        sampling = chat_sampling(self.ctx.settings)
        reply_turn = Turn("assistant", "")
        widget = await self._mount_turn(reply_turn)
        if self.ctx.model.loading:
            widget.set_status("waiting")
        widget.start_stream()
        self._streaming = widget
        self.log.anchor()

        def run(engine: Engine, on_text: OnText, cancel: threading.Event) -> Reply:
            return stream_reply(engine, messages, sampling, on_text=on_text, cancel=cancel)

        self.post_message(Generate(self, run))

    async def on_stream_chunk(self, message: StreamChunk) -> None:
        widget = self._streaming
        if widget is None:
            return
        if widget.turn.status == "waiting":
            widget.set_status("done")
        widget.turn.content += message.text
        self._unshown += message.text
        now = monotonic()
        if now - self._typed_at >= TYPING_S or now - self._shown_at >= MAX_DEFER_S:
            await self._show_streamed()

    @on(PromptArea.Changed, "#chat-input")
    def _typed(self) -> None:
        self._typed_at = monotonic()
        if self._unshown:
            self.call_after_refresh(self._show_streamed)

    async def _show_streamed(self) -> None:
        """Draw the streamed text that has not been drawn yet."""
        text, self._unshown = self._unshown, ""
        if text and self._streaming is not None:
            self._shown_at = monotonic()
            await self._streaming.write(text)

    async def on_stream_done(self, message: StreamDone) -> None:
        reply: Reply = message.reply
        await self._show_streamed()
        widget, self._streaming = self._streaming, None
        self.post_message(GenerationFinished(self, reply))
        if widget is None:
            return
        turn = widget.turn
        turn.content = reply.text
        await widget.finish(reply.status)
        self.session.turns.append(turn)
        if self.session.record_id is not None:
            try:
                turn.record_id = self.ctx.history.add_message(
                    self.session.record_id,
                    "assistant",
                    reply.text,
                    status=reply.status,
                    stats=reply.stats.as_dict(),
                )
            except BaylingError as exc:
                self.notify(exc.message, title="History", severity="warning")
        if reply.status == "cut":
            self.notify(
                "The reply was cut off: it reached the token limit "
                f"({self.ctx.settings.max_tokens} max tokens) or the model's context",
                severity="warning",
                timeout=10,
            )

    async def on_stream_failed(self, message: StreamFailed) -> None:
        await self._show_streamed()
        widget, self._streaming = self._streaming, None
        self.post_message(GenerationFinished(self, None))
        if widget is not None:
            await widget.finish("done")
            if not widget.turn.content:
                await widget.remove()
        self.notify(message.error, title="No reply", severity="error", timeout=10)

    # -- regenerate, edit ------------------------------------------------------------------

    def _busy(self) -> bool:
        if self.ctx.model.generating or self._streaming is not None:
            self.notify("Wait for the reply to finish (or stop it with Esc)", severity="warning")
            return True
        return False

    async def action_regenerate(self) -> None:
        if self._busy() or self._refused():
            return
        if self.editing is not None:
            self.notify("Send the edited message (Enter) or put it back (Esc) first")
            return
        try:
            turn = self.session.drop_last_reply()
        except BaylingError as exc:
            self.notify(exc.message, severity="warning")
            return
        await self._remove_turns([turn])
        await self._generate()

    def action_edit_last(self) -> None:
        """Put the last message in the box to change it; nothing is removed until it is sent.

        Synchronous on purpose: keys typed right after Ctrl+L land in the box after the loaded
        text, never before it or lost under a reload.
        """
        if self._busy():
            return
        if self.editing is not None:
            self.notify("Already editing: Enter sends the edited message, Esc puts it back")
            return
        try:
            removed = self.session.from_last_user()
        except BaylingError as exc:
            self.notify(exc.message, severity="warning")
            return
        box = self.query_one("#chat-input", PromptArea)
        self.editing = (removed, box.text)
        for widget in self.query(ChatMessage):
            if _among(widget.turn, removed):
                widget.add_class("editing")
        box.load_text(removed[0].content)
        box.move_cursor(box.document.end)
        focus_now(box)
        self.notify("Editing your last message: Enter replaces it and its reply, Esc puts it back")

    async def action_cancel_edit(self) -> None:
        """Esc: put the edited message back as it was; otherwise stop a reply (the app's Esc)."""
        if self.editing is None:
            await self.app.run_action("stop")
            return
        _, before = self.editing
        self.editing = None
        for widget in self.query(ChatMessage):
            widget.remove_class("editing")
        box = self.query_one("#chat-input", PromptArea)
        box.load_text(before)
        box.move_cursor(box.document.end)
        self.notify("The message is back as it was")

    async def _remove_turns(self, turns: list[Turn]) -> None:
        for widget in list(self.query(ChatMessage)):
            if any(widget.turn is t for t in turns):
                await widget.remove()
        first_saved = next((t.record_id for t in turns if t.record_id is not None), None)
        if self.session.record_id is not None and first_saved is not None:
            try:
                self.ctx.history.delete_messages_from(self.session.record_id, first_saved)
            except BaylingError as exc:
                self.notify(exc.message, title="History", severity="warning")

    # -- copy ------------------------------------------------------------------------------

    def action_copy_reply(self) -> None:
        reply = self.session.last_reply
        if reply is None:
            self.notify("There is no reply to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(reply.content)
        self.notify(f"Copied the last reply ({len(reply.content)} characters)")

    def action_copy_code(self) -> None:
        reply = self.session.last_reply
        blocks = code_blocks(reply.content) if reply else []
        if not blocks:
            self.notify("The last reply has no code block", severity="warning")
            return
        self.app.copy_to_clipboard(blocks[-1])
        self.notify(f"Copied the last code block ({len(blocks[-1])} characters)")

    # -- sessions --------------------------------------------------------------------------

    async def _clear(self) -> None:
        await self.query(ChatMessage).remove()
        self.query_one("#chat-empty").display = True

    def new_session(self) -> None:
        if self._busy():
            return
        self.run_worker(self._new_session(), group="chat-ui")

    async def _new_session(self) -> None:
        self.session = ChatSession()
        self.editing = None
        await self._clear()
        self.focus_input()

    async def action_new_session(self) -> None:
        if not self._busy():
            await self._new_session()

    async def load_session(self, record_id: int) -> None:
        """Open a saved chat from the history; new messages continue it."""
        history = self.ctx.history
        record = history.session(record_id)
        self.editing = None
        self.session = ChatSession.from_history(record.id, history.messages(record_id))
        await self._clear()
        for turn in self.session.turns:
            await self._mount_turn(turn)
        self.log.scroll_end(animate=False)


def _among(turn: Turn, turns: list[Turn]) -> bool:
    return any(turn is t for t in turns)
