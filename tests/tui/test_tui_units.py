"""The UI's logic without a UI: input guards, batching, cleaning, code blocks, chat turns."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from bayling_local.errors import UsageError
from bayling_local.tui.chat_session import ChatSession
from bayling_local.tui.screens import filter_languages
from bayling_local.tui.textutil import Batcher, ComposeGuard, code_blocks, printable


def test_compose_guard_tells_a_person_from_an_input_method():
    guard = ComposeGuard(window=0.05)
    for i, char in enumerate("hello"):  # typed by a person: 120 ms apart
        guard.note_text(char, 10.0 + i * 0.12)
    assert guard.enter_sends(10.0 + 4 * 0.12 + 0.01)

    guard = ComposeGuard(window=0.05)
    guard.note_text("你", 20.0)  # committed by an IME, Enter right behind it
    guard.note_text("好", 20.001)
    assert not guard.enter_sends(20.02)
    assert guard.enter_sends(20.2)  # the person's own Enter, later

    guard = ComposeGuard(window=0.05)
    for i, char in enumerate("ok"):  # ASCII read in one go by a busy app: Enter still sends
        guard.note_text(char, 30.0 + i * 0.001)
    assert guard.enter_sends(30.003)


def test_batcher_bounds_the_update_rate_and_loses_nothing():
    out: list[str] = []
    batcher = Batcher(out.append, interval=60.0)
    for piece in ("a", "b", "", "c"):
        batcher.add(piece)
    batcher.flush()
    assert out == ["a", "bc"]  # the first goes at once, the rest wait for the interval or flush
    batcher.flush()
    assert out == ["a", "bc"]

    out.clear()
    batcher = Batcher(out.append, interval=0.0)
    threads = [
        threading.Thread(target=lambda: [batcher.add("x") for _ in range(100)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.flush()
    assert "".join(out) == "x" * 400


def test_printable_removes_terminal_control_codes():
    assert printable("a\x1b[2Jb\r\nc\td\x07\x9b") == "a\ufffd[2Jb\nc\td\ufffd\ufffd"
    assert printable("中文 ok\n") == "中文 ok\n"


def test_code_blocks():
    text = "intro\n```python\nprint(1)\n\nprint(2)\n```\ntext\n~~~\nls\n~~~\n```\nunclosed"
    assert code_blocks(text) == ["print(1)\n\nprint(2)", "ls"]
    assert code_blocks("no code") == []


def test_chat_session_regenerate_and_edit_rules():
    session = ChatSession()
    with pytest.raises(UsageError, match="no reply"):
        session.drop_last_reply()
    with pytest.raises(UsageError, match="no message of yours"):
        session.from_last_user()
    session.add("user", "one")
    session.add("assistant", "reply one")
    session.add("user", "two")
    reply = session.add("assistant", "reply two", status="stopped")
    assert [m.content for m in session.messages(system="S")] == [
        "S",
        "one",
        "reply one",
        "two",
        "reply two",
    ]
    assert session.last_reply is reply
    assert session.drop_last_reply() is reply
    assert [t.content for t in session.turns] == ["one", "reply one", "two"]
    removed = session.from_last_user()
    assert [t.content for t in removed] == ["two"]
    assert len(session.turns) == 3, "nothing is removed until the edited message is sent"
    session.remove(removed)
    assert [t.content for t in session.turns] == ["one", "reply one"]


def test_language_filter_matches_every_name_best_first():
    assert filter_languages("de")[0].code == "de"
    assert filter_languages("Deutsch")[0].code == "de"
    assert filter_languages("德语")[0].code == "de"
    assert filter_languages("francais")[0].code == "fr"  # accents are optional
    assert filter_languages("chin")[0].name.startswith("Chinese")
    assert len(filter_languages("")) > 150
    assert filter_languages("zzzz-no-language") == []


def test_help_lists_every_views_keys():
    from bayling_local.tui.app import help_sections

    sections = dict(help_sections())
    assert ("F4", "History") in sections["Everywhere"]
    assert ("Shift+Enter / Ctrl+J", "New line") in sections["Text boxes"]
    assert ("Ctrl+R", "Regenerate") in sections["Chat (F3)"]
    assert ("Esc", "Stop reply") in sections["Everywhere"]
    # F10 (translate a document) is a key of the translate view like the others
    assert ("F10", "Translate a document (F10 again cancels)") in sections["Translate (F2)"]


def test_chat_command_without_a_terminal_is_one_clear_line(capsys):
    from bayling_local.cli import main

    assert main(["chat"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "bayling-local: error: the terminal UI needs an interactive terminal; for scripts and "
        "pipes use 'bayling-local translate'"
    ]


def test_the_app_imports_neither_torch_nor_llama_cpp_at_start():
    import subprocess

    code = (
        "import sys; import bayling_local.tui.app; "
        "bad = [m for m in ('torch', 'llama_cpp', 'transformers', 'numpy') if m in sys.modules]; "
        "print(bad)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_full_collections_are_held_only_while_a_reply_streams():
    import gc

    from bayling_local.tui.app import hold_full_collections

    before = gc.get_threshold()
    try:
        hold_full_collections(True)
        assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] >= 1_000_000
    finally:
        hold_full_collections(False)
    assert gc.get_threshold() == before


def test_views_import_neither_the_app_nor_each_other():
    """Attributes down, messages up: a view never reaches up into the app or across to a
    sibling view, so there is no import cycle between the app and its views."""
    import ast

    tui = Path(__file__).resolve().parents[2] / "bayling_local" / "tui"
    views = [p for p in sorted((tui / "views").glob("*.py")) if p.stem != "__init__"]
    assert {p.stem for p in views} >= {"translate", "chat", "history", "models", "settings"}
    below_app = [*views, *(tui / n for n in ("widgets.py", "screens.py", "messages.py"))]
    for path in below_app:
        package = "bayling_local.tui.views" if path.parent.name == "views" else "bayling_local.tui"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                if node.level:
                    base = base[: len(base) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                imported = [module] + [f"{module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                imported = [a.name for a in node.names]
            else:
                continue
            for name in imported:
                assert name != "bayling_local.tui.app", f"{path.name} imports the app"
                if path in views and name.startswith("bayling_local.tui.views."):
                    sibling = name.split(".")[3]
                    assert sibling == path.stem, f"{path.name} imports the {sibling} view"
