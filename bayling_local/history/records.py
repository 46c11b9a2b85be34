"""What the history stores: sessions, messages, search hits, and the names of their fields.

Plain frozen dataclasses and the constants the database and the exports share; no SQLite here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

SessionKind = Literal["chat", "translate"]
MessageStatus = Literal["done", "stopped", "cut"]
ExportFormat = Literal["markdown", "json", "text"]
SESSION_KINDS: tuple[str, ...] = ("chat", "translate")
MESSAGE_STATUSES: tuple[str, ...] = ("done", "stopped", "cut")
EXPORT_FORMAT_NAME = "bayling-local-history"
TITLE_CHARS = 60
BUSY_TIMEOUT_S = 2.0
# Around each match in a search snippet: control characters, which no message text contains
# after the UI cleans it, so a literal "[" in a message is never mistaken for a match.
MATCH_START, MATCH_END = "\x02", "\x03"

Clock = Callable[[], str]


def utc_now() -> str:
    """The current time as ISO 8601 UTC, to the second (what the history records)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def make_title(text: str, limit: int = TITLE_CHARS) -> str:
    """A session title from its first text: the first non-empty line, shortened."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    if not line:
        return "untitled"
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRecord:
    """One saved session."""

    id: int
    kind: str
    title: str
    model: str | None
    source_lang: str | None
    target_lang: str | None
    source_text: str | None
    current_version: int | None  # translation: the message id of the version in use
    archived: bool
    created: str
    updated: str


@dataclass(frozen=True)
class MessageRecord:
    """One saved turn. ``parent_id`` links a refinement turn to the version it refines."""

    id: int
    session_id: int
    role: str
    content: str
    status: str
    parent_id: int | None
    stats: dict[str, Any] | None
    created: str


@dataclass(frozen=True)
class SearchHit:
    """A message that matched a search, with its session and a short excerpt.

    ``snippet`` marks each match with :data:`MATCH_START` / :data:`MATCH_END`;
    :meth:`spans` splits it for display.
    """

    session_id: int
    message_id: int
    title: str
    kind: str
    role: str
    snippet: str
    archived: bool
    updated: str

    def spans(self) -> list[tuple[bool, str]]:
        """The snippet as ``(is_match, text)`` pieces."""
        pieces: list[tuple[bool, str]] = []
        for index, part in enumerate(self.snippet.split(MATCH_START)):
            if index == 0:
                pieces.append((False, part))
                continue
            match, _, rest = part.partition(MATCH_END)
            pieces += [(True, match), (False, rest)]
        return [(is_match, text) for is_match, text in pieces if text]
