"""The conversation history: the database (:mod:`.database`), its schema (:mod:`.migrations`),
its records (:mod:`.records`) and exports (:mod:`.export`).

Everything callers use is importable from here, as before the split.
"""

from __future__ import annotations

from .database import History
from .migrations import MIGRATIONS, SCHEMA_VERSION, NewerHistoryError
from .records import (
    EXPORT_FORMAT_NAME,
    MATCH_END,
    MATCH_START,
    MESSAGE_STATUSES,
    SESSION_KINDS,
    ExportFormat,
    MessageRecord,
    MessageStatus,
    SearchHit,
    SessionKind,
    SessionRecord,
    make_title,
    utc_now,
)

__all__ = [
    "EXPORT_FORMAT_NAME",
    "MATCH_END",
    "MATCH_START",
    "MESSAGE_STATUSES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SESSION_KINDS",
    "ExportFormat",
    "History",
    "MessageRecord",
    "MessageStatus",
    "NewerHistoryError",
    "SearchHit",
    "SessionKind",
    "SessionRecord",
    "make_title",
    "utc_now",
]
