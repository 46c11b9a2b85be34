"""The history store: sessions, messages, search, export, migrations, and broken databases."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from bayling_local.errors import OutputError, UsageError
from bayling_local.history import SCHEMA_VERSION, History, make_title, migrations


class FixedClock:
    """A clock that ticks one second per call, so ordering by time is deterministic."""

    def __init__(self) -> None:
        self.tick = 0

    def __call__(self) -> str:
        self.tick += 1
        return f"2024-05-01T10:{self.tick // 60:02d}:{self.tick % 60:02d}+00:00"


@pytest.fixture
def db(tmp_path):
    store = History(tmp_path / "history.sqlite3", clock=FixedClock())
    yield store
    store.close()


def test_new_database_is_wal_at_the_current_schema(db, tmp_path):
    assert db.notice is None and not db.in_memory
    conn = sqlite3.connect(tmp_path / "history.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_sessions_and_messages_round_trip(db):
    sid = db.new_session("chat", "  Hello there,\nsecond line", model="tiny")
    first = db.add_message(sid, "user", "Hello there")
    db.add_message(sid, "assistant", "Hi!", status="stopped", stats={"generated_tokens": 3})
    record = db.session(sid)
    assert record.title == "Hello there," and record.kind == "chat" and record.model == "tiny"
    messages = db.messages(sid)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].status == "stopped" and messages[1].stats == {"generated_tokens": 3}
    assert db.delete_messages_from(sid, first) == 2
    assert db.messages(sid) == []


def test_list_is_newest_first_and_archive_restore_rename_delete(db):
    a = db.new_session("chat", "first")
    b = db.new_session("translate", "second", source_lang="en", target_lang="zh")
    db.add_message(a, "user", "touch a so it is the newest")
    assert [s.id for s in db.sessions()] == [a, b]
    assert [s.id for s in db.sessions(kind="translate")] == [b]
    db.archive(a)
    assert [s.id for s in db.sessions()] == [b]
    assert [s.id for s in db.sessions(archived=True)] == [a]
    db.restore(a)
    assert {s.id for s in db.sessions()} == {a, b}
    db.rename(b, "  a   better\ttitle ")
    assert db.session(b).title == "a better title"
    with pytest.raises(UsageError):
        db.rename(b, "   ")
    db.delete(a)
    assert [s.id for s in db.sessions()] == [b]
    with pytest.raises(UsageError, match="no session"):
        db.session(a)
    with pytest.raises(UsageError, match="no session"):
        db.add_message(a, "user", "x")


def test_update_session_records_translation_state(db):
    sid = db.new_session(
        "translate", "text", source_lang="en", target_lang="zh", source_text="text"
    )
    mid = db.add_message(sid, "assistant", "文本")
    db.update_session(sid, current_version=mid, target_lang="de")
    record = db.session(sid)
    assert (
        record.current_version == mid and record.target_lang == "de" and record.source_lang == "en"
    )


def test_full_text_search_words_cjk_and_short_queries(db):
    a = db.new_session("translate", "Messi")
    db.add_message(
        a, "user", "Provide the Chinese translation for this sentence: Messi won the Ballon d'Or."
    )
    db.add_message(a, "assistant", "梅西获得了金球奖。")
    b = db.new_session("chat", "Python")
    db.add_message(b, "user", "Write a python function")
    db.archive(b)
    hits = db.search("ballon")
    assert [(h.session_id, h.role) for h in hits] == [(a, "user")]
    assert (True, "Ballon") in hits[0].spans() and "\x02Ballon\x03" in hits[0].snippet
    assert [text for match, text in db.search("金球")[0].spans() if match] == ["金球"]
    assert [h.session_id for h in db.search("金球奖")] == [a]  # no spaces to split on
    assert [h.session_id for h in db.search("金球")] == [a]  # two characters: LIKE fallback
    assert [h.session_id for h in db.search("messi won")] == [a]  # every word must match
    assert [h.session_id for h in db.search("PYTHON")] == [b] and db.search("python")[0].archived
    assert db.search("nothing-like-this") == [] and db.search("   ") == []
    assert db.search('"quoted" AND ) (') == []  # FTS syntax in a query is taken literally


def test_search_follows_deletes(db):
    sid = db.new_session("chat", "x")
    db.add_message(sid, "user", "kept wording")
    mid = db.add_message(sid, "user", "original wording")
    db.delete_messages_from(sid, mid)  # an edited chat message replaces this one
    assert db.search("original") == [] and len(db.search("kept")) == 1
    db.delete(sid)
    assert db.search("kept") == []


def test_export_markdown_json_and_text(db, tmp_path):
    sid = db.new_session(
        "translate",
        "The weather",
        model="tiny",
        source_lang="en",
        target_lang="zh",
        source_text="The weather",
    )
    db.add_message(sid, "user", "Provide the Chinese translation for this sentence: The weather")
    v1 = db.add_message(sid, "assistant", "天气")
    db.add_message(sid, "user", "more formal", parent_id=v1)
    v2 = db.add_message(sid, "assistant", "天气情况", parent_id=v1, status="cut")
    db.add_message(sid, "user", "shorter", parent_id=v1)  # a branch from v1
    v3 = db.add_message(sid, "assistant", "天", parent_id=v1)
    db.update_session(sid, current_version=v2)
    markdown = db.export_text(sid, "markdown")
    assert markdown.startswith("# The weather\n") and "languages: en → zh" in markdown
    # the version tree, the current version marked, then its text
    assert (
        "## Versions\n\n- v1 · translation\n  - v2 · more formal ← current\n  - v3 · shorter\n"
        in markdown
    )
    assert "## Current translation (v2)\n\n天气情况\n" in markdown
    assert "### BayLing — v2, from v1 (current) — cut off" in markdown
    raw = db.export_text(sid, "json")
    assert "天气情况" in raw, "CJK stays readable (ensure_ascii=False)"
    data = json.loads(raw)
    assert data["format"] == "bayling-local-history" and data["session"]["model"] == "tiny"
    assert [m["parent_id"] for m in data["messages"]] == [None, None, v1, v1, v1, v1]
    assert db.export_text(sid, "text") == "The weather\n\n天气情况\n"
    out = db.export(sid, tmp_path / "s.json")
    assert json.loads(out.read_text(encoding="utf-8"))["session"]["id"] == sid
    out = db.export(sid, tmp_path / "s.md")
    assert out.read_text(encoding="utf-8") == markdown
    out = db.export(sid, tmp_path / "s.txt")
    assert out.read_text(encoding="utf-8") == "The weather\n\n天气情况\n"
    assert v3 != v2
    with pytest.raises(UsageError):
        db.export_text(sid, "pdf")  # type: ignore[arg-type]
    with pytest.raises(OutputError):
        db.export(sid, tmp_path)
    with pytest.raises(OutputError):
        db.export(sid, tmp_path / "missing-dir" / "s.md")


def test_migration_from_version_1_indexes_existing_messages(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    migrations._migrate_v1(conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO sessions (kind, title, created, updated) VALUES ('chat', 'old', 't', 't')"
    )
    conn.execute(
        "INSERT INTO messages (session_id, role, content, created) VALUES (1, 'user', 'written before search existed', 't')"
    )
    conn.commit()
    conn.close()
    store = History(path)
    assert store.notice is None
    assert [h.session_id for h in store.search("before search")] == [1]
    store.close()


def test_corrupt_database_is_kept_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"this is not a database at all" * 100)
    store = History(path)
    assert store.notice is not None and "corrupt" in store.notice and not store.in_memory
    assert store.backup is not None and store.backup.read_bytes().startswith(b"this is not")
    sid = store.new_session("chat", "fresh")
    assert store.session(sid).title == "fresh"
    store.close()


def test_locked_database_is_kept_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "history.sqlite3"
    first = History(path)
    first.new_session("chat", "kept in the backup")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process that never lets go
    try:
        store = History(path, busy_timeout=0.1)
        assert store.notice is not None and "locked" in store.notice
        assert store.sessions() == [] and store.backup is not None
        store.new_session("chat", "works")
        store.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        first.close()


def test_newer_schema_is_left_alone_and_history_kept_in_memory(tmp_path):
    path = tmp_path / "history.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    store = History(path)
    assert store.in_memory and "newer bayling-local" in store.notice
    store.new_session("chat", "temporary")
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 5
    conn.close()


def test_unwritable_directory_falls_back_to_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = History(blocker / "history.sqlite3")  # its "directory" is a file
    assert store.in_memory and "in memory" in store.notice
    assert store.new_session("chat", "still works") > 0


def test_writes_from_several_threads(db):
    sid = db.new_session("chat", "threads")

    def write(n: int) -> None:
        for i in range(20):
            db.add_message(sid, "user", f"thread {n} message {i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(db.messages(sid)) == 80


def test_make_title():
    assert make_title("\n\n  first   line \nsecond") == "first line"
    assert make_title("   ") == "untitled"
    long = make_title("x" * 200)
    assert len(long) == 60 and long.endswith("…")
