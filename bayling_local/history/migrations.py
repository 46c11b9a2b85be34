"""The history database's schema, as numbered migrations.

The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS` index ``i`` upgrades a
database from version ``i`` to ``i + 1``. Search is SQLite FTS5 over every message. The trigram
tokenizer is used where SQLite has it (3.34+), because it matches inside words and in Chinese
or Japanese text, which has no spaces for a word tokenizer to split on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

# --- schema --------------------------------------------------------------------------------

_V1 = (
    """CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('chat', 'translate')),
        title TEXT NOT NULL,
        model TEXT,
        source_lang TEXT,
        target_lang TEXT,
        source_text TEXT,
        current_version INTEGER,
        archived INTEGER NOT NULL DEFAULT 0,
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    )""",
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'done',
        parent_id INTEGER,
        stats TEXT,
        created TEXT NOT NULL
    )""",
    "CREATE INDEX messages_by_session ON messages(session_id, id)",
    "CREATE INDEX sessions_by_updated ON sessions(archived, updated)",
)

_V2 = (
    """CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content='messages', content_rowid='id', tokenize='{tokenizer}'
    )""",
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
    END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
    END""",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
)


def _fts_tokenizer(conn: sqlite3.Connection) -> str:
    """``trigram`` where this SQLite has it, else the word tokenizer."""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp._probe USING fts5(x, tokenize='trigram')")
        conn.execute("DROP TABLE temp._probe")
        return "trigram"
    except sqlite3.OperationalError:
        return "unicode61"


def _migrate_v1(conn: sqlite3.Connection) -> None:
    for statement in _V1:
        conn.execute(statement)


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Full-text search, indexing the messages already there."""
    tokenizer = _fts_tokenizer(conn)
    for statement in _V2:
        conn.execute(statement.replace("{tokenizer}", tokenizer))


# Index i upgrades a database from user_version i to i + 1. Append; never edit a released one.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_v1, _migrate_v2)
SCHEMA_VERSION = len(MIGRATIONS)


class NewerHistoryError(Exception):
    """The database was written by a newer bayling-local (its schema version is higher)."""


class _Broken(Exception):
    """The database cannot be used as it is: ``reason`` is 'corrupt' or 'locked'."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
