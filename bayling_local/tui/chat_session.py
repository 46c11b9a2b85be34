"""A chat conversation as the chat view holds it: turns, their status, regenerate and edit.

No widgets here, so the rules (what regenerate drops, what edit gives back) are tested
without a UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..prompts import Message

if TYPE_CHECKING:
    from ..history import MessageRecord


@dataclass
class Turn:
    """One message of the chat."""

    role: str  # "user" or "assistant"
    content: str
    status: str = "done"  # assistant: "done", "stopped" or "cut"
    record_id: int | None = None  # its id in the history


@dataclass
class ChatSession:
    """The turns of one chat and its history session id."""

    turns: list[Turn] = field(default_factory=list)
    record_id: int | None = None

    def messages(self, *, system: str | None = None) -> list[Message]:
        """The conversation to send to the model (it ends with the user's turn)."""
        messages = [Message("system", system)] if system else []
        return messages + [Message(t.role, t.content) for t in self.turns]  # type: ignore[arg-type]

    def add(self, role: str, content: str, *, status: str = "done") -> Turn:
        turn = Turn(role, content, status)
        self.turns.append(turn)
        return turn

    @property
    def last_reply(self) -> Turn | None:
        return next((t for t in reversed(self.turns) if t.role == "assistant"), None)

    def drop_last_reply(self) -> Turn:
        """For regenerate: remove the last reply, so the conversation ends with the user again."""
        if not self.turns or self.turns[-1].role != "assistant":
            raise UsageError("there is no reply to regenerate")
        return self.turns.pop()

    def from_last_user(self) -> list[Turn]:
        """For edit: the last user message and what followed it (nothing is removed yet)."""
        for index in range(len(self.turns) - 1, -1, -1):
            if self.turns[index].role == "user":
                return self.turns[index:]
        raise UsageError("there is no message of yours to edit")

    def remove(self, turns: Sequence[Turn]) -> None:
        """Drop these turns (an edited message is sent: the old one and its reply go)."""
        self.turns = [t for t in self.turns if not any(t is r for r in turns)]

    @classmethod
    def from_history(cls, session_id: int, messages: Sequence[MessageRecord]) -> ChatSession:
        session = cls(record_id=session_id)
        for message in messages:
            if message.role in ("user", "assistant"):
                turn = session.add(message.role, message.content, status=message.status)
                turn.record_id = message.id
        return session
