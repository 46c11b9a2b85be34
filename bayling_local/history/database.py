"""The history database: every chat and translation session, saved as it happens.

One SQLite file (:func:`bayling_local.paths.history_path`) in WAL mode, so a reader never waits
for the writer and a crash loses at most the message being written. The schema comes from
:mod:`.migrations`; a database written by a newer bayling-local is left untouched.

The history must never stop the app: a database that is corrupt, or locked by something that
does not let go, is renamed aside as a backup and a fresh one is started, and
:attr:`History.notice` says so in one line for the UI to show. Where even that fails (an
unwritable directory) the history lives in memory for the session, again with a notice.
Search queries shorter than three characters (the trigram size) fall back to ``LIKE``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import paths
from ..atomic import write_text_atomic
from ..errors import OutputError, UsageError
from . import export as exports
from .migrations import MIGRATIONS, SCHEMA_VERSION, NewerHistoryError, _Broken
from .records import (
    BUSY_TIMEOUT_S,
    MATCH_END,
    MATCH_START,
    MESSAGE_STATUSES,
    SESSION_KINDS,
    Clock,
    ExportFormat,
    MessageRecord,
    MessageStatus,
    SearchHit,
    SessionKind,
    SessionRecord,
    make_title,
    utc_now,
)

_SESSION_COLUMNS = (
    "id, kind, title, model, source_lang, target_lang, source_text, current_version, archived, "
    "created, updated"
)
_MESSAGE_COLUMNS = "id, session_id, role, content, status, parent_id, stats, created"


def _session(row: Sequence[Any]) -> SessionRecord:
    return SessionRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        bool(row[8]),
        row[9],
        row[10],
    )


def _message(row: Sequence[Any]) -> MessageRecord:
    stats = json.loads(row[6]) if row[6] else None
    return MessageRecord(row[0], row[1], row[2], row[3], row[4], row[5], stats, row[7])


# --- the store -----------------------------------------------------------------------------


class History:
    """The history database. Thread-safe: every call takes a lock around one transaction."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        clock: Clock = utc_now,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ) -> None:
        self.path = Path(path) if path is not None else paths.history_path()
        self.clock = clock
        self.busy_timeout = busy_timeout
        self.notice: str | None = None  # one line for the UI: what went wrong on opening
        self.backup: Path | None = None  # where a broken database was moved
        self.in_memory = False
        self._lock = threading.RLock()
        self._conn = self._open()

    # -- opening ---------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            return self._open_file()
        except NewerHistoryError as exc:
            return self._memory(
                f"the history database {self.path} was written by a newer bayling-local "
                f"({exc}); this session's history is kept in memory only"
            )
        except _Broken as broken:
            try:
                self.backup = self._move_aside()
                conn = self._open_file()
            except (OSError, sqlite3.Error, _Broken, NewerHistoryError) as exc:
                return self._memory(
                    f"the history database {self.path} is {broken.reason} and could not be "
                    f"replaced ({exc}); this session's history is kept in memory only"
                )
            self.notice = (
                f"the history database was {broken.reason} ({broken.detail}); it was kept as "
                f"{self.backup} and a new one started"
            )
            return conn
        except (OSError, sqlite3.Error) as exc:
            return self._memory(
                f"cannot open the history database {self.path} ({exc}); "
                "this session's history is kept in memory only"
            )

    def _memory(self, notice: str) -> sqlite3.Connection:
        self.notice = notice
        self.in_memory = True
        conn = self._connect(":memory:")
        self._migrate(conn)
        return conn

    def _connect(self, target: str) -> sqlite3.Connection:
        conn = sqlite3.connect(
            target, timeout=self.busy_timeout, check_same_thread=False, isolation_level=None
        )
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _open_file(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect(str(self.path))
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise NewerHistoryError(
                    f"schema version {version}, this one knows {SCHEMA_VERSION}"
                )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise _Broken("corrupt", check)
            conn.execute("BEGIN IMMEDIATE")  # a writer that never lets go shows up here
            conn.execute("ROLLBACK")
            self._migrate(conn)
        except NewerHistoryError:
            conn.close()
            raise
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Broken("locked", str(exc)) from None
            if "unable to open" in str(exc) or "readonly" in str(exc):
                raise
            raise _Broken("corrupt", str(exc)) from None
        except sqlite3.DatabaseError as exc:  # "file is not a database", "malformed"
            conn.close()
            raise _Broken("corrupt", str(exc)) from None
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for index in range(version, SCHEMA_VERSION):
            conn.execute("BEGIN IMMEDIATE")
            try:
                MIGRATIONS[index](conn)
                conn.execute(f"PRAGMA user_version = {index + 1}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _move_aside(self) -> Path:
        """Rename the database (and its WAL files) to a dated backup name."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = self.path.with_name(f"{self.path.name}.broken-{stamp}")
        n = 1
        while backup.exists():
            n += 1
            backup = self.path.with_name(f"{self.path.name}.broken-{stamp}-{n}")
        os.replace(self.path, backup)
        for suffix in ("-wal", "-shm"):
            sidecar = self.path.with_name(self.path.name + suffix)
            if sidecar.exists():
                with contextlib.suppress(OSError):
                    os.replace(sidecar, backup.with_name(backup.name + suffix))
        return backup

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    # -- plumbing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise OutputError(
                    f"cannot save to the history database {self.path}: {exc}"
                ) from None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise OutputError(f"cannot read the history database {self.path}: {exc}") from None

    def _touch(self, conn: sqlite3.Connection, session_id: int) -> None:
        conn.execute("UPDATE sessions SET updated = ? WHERE id = ?", (self.clock(), session_id))

    def _require(self, conn: sqlite3.Connection, session_id: int) -> None:
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
            raise UsageError(f"there is no session {session_id} in the history")

    # -- sessions --------------------------------------------------------------------------

    def new_session(
        self,
        kind: SessionKind,
        title: str,
        *,
        model: str | None = None,
        source_lang: str | None = None,
        target_lang: str | None = None,
        source_text: str | None = None,
    ) -> int:
        """Start a session; returns its id."""
        if kind not in SESSION_KINDS:
            raise UsageError(f"unknown session kind {kind!r}")
        now = self.clock()
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO sessions (kind, title, model, source_lang, target_lang, source_text, "
                "created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, make_title(title), model, source_lang, target_lang, source_text, now, now),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def session(self, session_id: int) -> SessionRecord:
        rows = self._query(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
        if not rows:
            raise UsageError(f"there is no session {session_id} in the history")
        return _session(rows[0])

    def sessions(
        self, *, archived: bool = False, kind: SessionKind | None = None, limit: int | None = None
    ) -> list[SessionRecord]:
        """Sessions, most recently updated first."""
        sql = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE archived = ?"
        params: list[Any] = [int(archived)]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        sql += " ORDER BY updated DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_session(row) for row in self._query(sql, params)]

    def update_session(
        self,
        session_id: int,
        *,
        model: str | None = None,
        source_lang: str | None = None,
        target_lang: str | None = None,
        current_version: int | None = None,
    ) -> None:
        """Record what changed about a session (fields left None are kept)."""
        changes = {
            "model": model,
            "source_lang": source_lang,
            "target_lang": target_lang,
            "current_version": current_version,
        }
        changes = {key: value for key, value in changes.items() if value is not None}
        if not changes:
            return
        assignments = ", ".join(f"{key} = ?" for key in changes)
        with self._transaction() as conn:
            self._require(conn, session_id)
            conn.execute(
                f"UPDATE sessions SET {assignments}, updated = ? WHERE id = ?",
                (*changes.values(), self.clock(), session_id),
            )

    def rename(self, session_id: int, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise UsageError("a session title cannot be empty")
        with self._transaction() as conn:
            self._require(conn, session_id)
            conn.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id))

    def archive(self, session_id: int) -> None:
        """Hide a session from the main list (it stays searchable)."""
        self._set_archived(session_id, True)

    def restore(self, session_id: int) -> None:
        """Bring an archived session back to the main list."""
        self._set_archived(session_id, False)

    def _set_archived(self, session_id: int, archived: bool) -> None:
        with self._transaction() as conn:
            self._require(conn, session_id)
            conn.execute(
                "UPDATE sessions SET archived = ? WHERE id = ?", (int(archived), session_id)
            )

    def delete(self, session_id: int) -> None:
        """Delete a session and its messages for good."""
        with self._transaction() as conn:
            self._require(conn, session_id)
            conn.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    # -- messages --------------------------------------------------------------------------

    def add_message(
        self,
        session_id: int,
        role: str,
        content: str,
        *,
        status: MessageStatus = "done",
        parent_id: int | None = None,
        stats: dict[str, Any] | None = None,
    ) -> int:
        """Append a turn to a session; returns the message id."""
        if status not in MESSAGE_STATUSES:
            raise UsageError(f"unknown message status {status!r}")
        with self._transaction() as conn:
            self._require(conn, session_id)
            cursor = conn.execute(
                "INSERT INTO messages (session_id, role, content, status, parent_id, stats, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    role,
                    content,
                    status,
                    parent_id,
                    json.dumps(stats) if stats else None,
                    self.clock(),
                ),
            )
            self._touch(conn, session_id)
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def delete_messages_from(self, session_id: int, message_id: int) -> int:
        """Delete a message and every later one of its session (edit, regenerate); returns how many."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "DELETE FROM messages WHERE session_id = ? AND id >= ?", (session_id, message_id)
            )
            self._touch(conn, session_id)
            return cursor.rowcount

    def messages(self, session_id: int) -> list[MessageRecord]:
        """A session's turns in the order they were written."""
        rows = self._query(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [_message(row) for row in rows]

    # -- search ----------------------------------------------------------------------------

    def search(self, query: str, *, limit: int = 100) -> list[SearchHit]:
        """Messages containing every word of ``query`` (archived sessions included), newest first."""
        words = query.split()
        if not words:
            return []
        if all(len(word) >= 3 for word in words):
            match = " ".join('"' + word.replace('"', '""') + '"' for word in words)
            rows = self._query(
                "SELECT s.id, m.id, s.title, s.kind, m.role, "
                "snippet(messages_fts, 0, char(2), char(3), '…', 48), s.archived, s.updated "
                "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                "JOIN sessions s ON s.id = m.session_id "
                "WHERE messages_fts MATCH ? ORDER BY s.updated DESC, m.id LIMIT ?",
                (match, limit),
            )
        else:  # too short for trigrams: a plain substring scan
            conditions = " AND ".join("m.content LIKE ? ESCAPE '\\'" for _ in words)
            patterns = ["%" + _escape_like(word) + "%" for word in words]
            rows = self._query(
                "SELECT s.id, m.id, s.title, s.kind, m.role, m.content, s.archived, s.updated "
                f"FROM messages m JOIN sessions s ON s.id = m.session_id WHERE {conditions} "
                "ORDER BY s.updated DESC, m.id LIMIT ?",
                (*patterns, limit),
            )
            rows = [(*row[:5], _excerpt(row[5], words[0]), *row[6:]) for row in rows]
        return [
            SearchHit(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                " ".join(row[5].split()),
                bool(row[6]),
                row[7],
            )
            for row in rows
        ]

    # -- export ----------------------------------------------------------------------------

    def export_text(self, session_id: int, fmt: ExportFormat) -> str:
        """The session in ``fmt``: "markdown", "json" or "text" (source + current translation)."""
        render = {"markdown": exports.to_markdown, "json": exports.to_json, "text": exports.to_text}
        if fmt not in render:
            raise UsageError(f"unknown export format {fmt!r}; use markdown, json or text")
        return render[fmt](self.session(session_id), self.messages(session_id))

    def export(self, session_id: int, path: Path | str, fmt: ExportFormat | None = None) -> Path:
        """Write a session to ``path`` (atomically); the format defaults from the suffix."""
        path = Path(path).expanduser()
        if fmt is None:
            suffix = path.suffix.lower()
            fmt = "json" if suffix == ".json" else "text" if suffix == ".txt" else "markdown"
        text = self.export_text(session_id, fmt)
        if path.is_dir():
            raise OutputError(f"cannot write {path}: it is a directory")
        write_text_atomic(path, text)
        return path


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _excerpt(content: str, word: str, width: int = 24) -> str:
    """A window of ``content`` around the first match of ``word``, the match marked."""
    at = content.lower().find(word.lower())
    if at < 0:
        return content[: 2 * width]
    start, end = max(0, at - width), min(len(content), at + len(word) + width)
    return (
        ("…" if start else "")
        + content[start:at]
        + MATCH_START
        + content[at : at + len(word)]
        + MATCH_END
        + content[at + len(word) : end]
        + ("…" if end < len(content) else "")
    )
