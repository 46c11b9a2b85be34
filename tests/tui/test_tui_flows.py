"""The TUI's message flows and the papercuts of issue 16, driven with Pilot on tiny real models.

Each test is one thing a user does: send while the model loads, edit the last chat message and
change their mind, pick languages with long names, swap, restart, use a small terminal.
"""

from __future__ import annotations

import threading

import pytest
from rich.cells import cell_len
from textual.widgets import Button, DataTable, Input, Label

from bayling_local.history import History
from bayling_local.settings import load_settings
from bayling_local.tui.model_session import ModelSession
from bayling_local.tui.screens import LanguagePicker, TooSmallScreen
from bayling_local.tui.views.chat import ChatMessage
from bayling_local.tui.widgets import PromptArea
from tests.support.tui import (
    SIZE,
    TickClock,
    make_app,
    notifications,
    run,
    type_text,
    wait_for,
    wait_idle,
)


@pytest.fixture
def held_load(monkeypatch):
    """Model loads wait for ``gate.set()`` (then load the real model): a slow disk, on demand."""
    gate = threading.Event()
    real = ModelSession.load

    def load(spec, settings):
        assert gate.wait(30), "the test never released the load"
        return real(spec, settings)

    monkeypatch.setattr(ModelSession, "load", staticmethod(load))
    yield gate
    gate.set()


def _text(widget) -> str:
    return str(widget.render())


# --- nothing sent while the model loads is lost ---------------------------------------------------


def test_a_translation_sent_while_the_model_loads_waits_and_then_runs(tiny_spm_gguf, held_load):
    async def flow():
        app = make_app(tiny_spm_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.loading is not None, what="the load to start")
            view = app.translate_view
            await type_text(pilot, "The weather is nice today.")
            await pilot.press("enter")
            await pilot.pause(0.1)
            assert "loading model" in _text(view.query_one("#output-title"))
            assert "1 waiting" in app.status.state
            assert not any("No model" in n for n in notifications(app))
            held_load.set()
            await wait_for(pilot, lambda: view.session.versions, what="the queued translation")
            await wait_idle(pilot, app)
            assert view.session.versions[0].text
            assert "Translation v1 into English" in _text(view.query_one("#output-title"))

    run(flow())


def test_a_chat_message_sent_while_the_model_loads_waits_and_then_runs(tiny_bpe_gguf, held_load):
    async def flow():
        app = make_app(tiny_bpe_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f3")
            await wait_for(pilot, lambda: app.loading is not None, what="the load to start")
            view = app.chat_view
            await type_text(pilot, "Hello")
            await pilot.press("enter")
            await pilot.pause(0.1)
            reply = list(view.query(ChatMessage))[-1]
            assert reply.turn.role == "assistant" and "loading model" in _text(
                reply.query_one(".status")
            )
            held_load.set()
            await wait_for(pilot, lambda: view.session.last_reply is not None, what="the reply")
            await wait_idle(pilot, app)
            assert [m.role for m in app.history.messages(view.session.record_id)] == [
                "user",
                "assistant",
            ]

    run(flow())


def test_a_failed_load_tells_the_waiting_request(tmp_path, held_load):
    async def flow():
        broken = tmp_path / "broken.gguf"
        broken.write_bytes(b"GGUF" + b"\x00" * 64)
        app = make_app(broken)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.loading is not None)
            await type_text(pilot, "Hello there")
            await pilot.press("enter")
            held_load.set()
            await wait_for(pilot, lambda: app.model_error is not None, what="the failure")
            await pilot.pause(0.1)
            assert any("the model did not load" in n for n in notifications(app))
            assert not app.generating
            source = app.translate_view.query_one("#source", PromptArea)
            assert source.text == "Hello there", "the text is still there to send again"

    run(flow())


# --- Ctrl+L: edit, Esc puts it back, nothing deleted before the edit is sent -------------------


def test_edit_last_message_then_escape_restores_and_loses_no_keystroke(tiny_bpe_gguf):
    async def flow():
        app = make_app(tiny_bpe_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None)
            await pilot.press("f3")
            view = app.chat_view
            await type_text(pilot, "First question")
            await pilot.press("enter")
            await wait_idle(pilot, app)
            sid = view.session.record_id
            saved = [(m.role, m.content) for m in app.history.messages(sid)]
            box = view.query_one("#chat-input", PromptArea)
            await type_text(pilot, "draft")  # something typed but not sent yet

            await pilot.press("ctrl+l", "!")  # a key right behind Ctrl+L is kept
            assert box.text == "First question!"
            assert len(view.query(ChatMessage)) == 2 and len(view.session.turns) == 2
            assert [(m.role, m.content) for m in app.history.messages(sid)] == saved
            assert all(w.has_class("editing") for w in view.query(ChatMessage))

            await pilot.press("escape")  # changed my mind: all back as it was
            assert box.text == "draft" and view.editing is None
            assert not any(w.has_class("editing") for w in view.query(ChatMessage))
            assert [(m.role, m.content) for m in app.history.messages(sid)] == saved

            box.clear()
            await pilot.press("ctrl+l")
            box.load_text("Second version")
            await pilot.press("enter")
            await wait_idle(pilot, app)
            messages = app.history.messages(sid)
            assert [m.role for m in messages] == ["user", "assistant"]
            assert messages[0].content == "Second version"
            assert [w.turn.content for w in view.query(ChatMessage)][0] == "Second version"

    run(flow())


# --- the language bar ----------------------------------------------------------------------------


async def _pick(pilot, key: str, query: str) -> None:
    await pilot.press(key)
    assert isinstance(pilot.app.screen, LanguagePicker)
    await type_text(pilot, query)
    await pilot.press("enter")
    await pilot.pause(0.05)


def _shows(button: Button, label: str) -> bool:
    return str(button.label) == label and button.content_region.width >= cell_len(label)


def test_language_labels_fit_their_names():
    async def flow():
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.translate_view
            await _pick(pilot, "ctrl+t", "japanese")
            assert _shows(view.query_one("#target-lang", Button), "To: Japanese")
            await _pick(pilot, "ctrl+f", "zh-Hant")
            source = view.query_one("#source-lang", Button)
            assert _shows(source, "From: Traditional Chinese")
            await _pick(pilot, "ctrl+t", "de")
            assert _shows(view.query_one("#target-lang", Button), "To: German")
            assert _shows(source, "From: Traditional Chinese")

    run(flow())


def test_detection_label_follows_the_text_swap_and_new_session():
    async def flow():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            view = app.translate_view
            label = view.query_one("#detected", Label)
            await type_text(pilot, "Das Wetter ist heute sehr schön und warm.")
            await wait_for(pilot, lambda: view.detected is not None, what="detection")
            assert label.display and "German" in _text(label)

            await pilot.press("f7")  # swap: German becomes the target, the source is English
            assert (view.source_lang.code, view.target_lang.code) == ("en", "de")
            assert not label.display and view.detected is None

            await _pick(pilot, "ctrl+f", "auto")
            view.query_one("#source", PromptArea).focus()
            await wait_for(pilot, lambda: view.detected is not None, what="detection again")
            assert label.display
            await pilot.press("ctrl+n")  # a new session empties the source: nothing detected
            assert not label.display and view.detected is None
            assert "auto-detect" in str(view.query_one("#source-lang", Button).label)

            await type_text(pilot, "Le temps est très beau aujourd'hui.")
            await wait_for(pilot, lambda: view.detected is not None, what="French")
            view.query_one("#source", PromptArea).load_text("")  # the text goes: so does the label
            await pilot.pause(0.05)
            assert not label.display

    run(flow())


def test_the_language_pair_is_remembered_across_restarts():
    async def first():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await _pick(pilot, "ctrl+f", "fran")
            await _pick(pilot, "ctrl+t", "ja")

    async def second():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            view = app.translate_view
            assert (view.source_lang.code, view.target_lang.code) == ("fr", "ja")
            assert str(view.query_one("#target-lang", Button).label) == "To: Japanese"

    run(first())
    run(second())


def test_settings_edit_the_default_target_top_k_and_repeat_penalty():
    async def flow():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f6")
            view = app.query_one("SettingsView")
            view.query_one("#set-top_k", Input).value = "12"
            view.query_one("#set-repeat_penalty", Input).value = "1.2"
            view.query_one("#set-target", Button).press()
            await pilot.pause(0.05)
            await type_text(pilot, "deutsch")
            await pilot.press("enter")
            await pilot.pause(0.05)
            view.query_one("#set-top_k", Input).focus()
            await pilot.press("ctrl+s")
            saved = load_settings(environ={})
            assert (saved.top_k, saved.repeat_penalty, saved.target) == (12, 1.2, "de")
            assert app.settings.top_k == 12

    run(flow())


# --- history ---------------------------------------------------------------------------------------


def test_history_shows_pairs_and_times_and_search_keys_work(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Asia/Shanghai")  # UTC+8: the list shows local time
    time.tzset()

    async def flow():
        history = History(tmp_path / "h.sqlite3", clock=TickClock())
        sid = history.new_session(
            "translate", "梅西", source_lang="zh", target_lang="en", source_text="梅西"
        )
        history.add_message(sid, "user", "translate 梅西")
        history.add_message(sid, "assistant", "Messi")
        app = make_app(history=history)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("f4")
            view = app.query_one("HistoryView")
            table = view.query_one(DataTable)
            row = [str(cell) for cell in table.get_row_at(0)]
            updated = history.session(sid).updated  # stored in UTC: 2024-05-01T09:0N:00+00:00
            assert updated.startswith("2024-05-01T09:")
            assert "zh → en" in row and f"2024-05-01 17:{updated[14:16]}" in row
            assert sum(c.width + 2 for c in table.columns.values()) <= 80

            await pilot.press("slash")
            await type_text(pilot, "Messi")
            assert "1 matches" in _text(view.query_one("#history-mode"))
            await pilot.press("down")
            assert app.focused is table
            await pilot.press("slash", "escape")
            assert view.query_one("#search", Input).value == ""
            assert "Active sessions" in _text(view.query_one("#history-mode"))

            out = tmp_path / "out.txt"
            await pilot.press("t")
            app.screen.query_one(Input).value = str(out)
            await pilot.press("enter")
            assert out.read_text(encoding="utf-8") == "梅西\n\nMessi\n"

    try:
        run(flow())
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# --- keys mean one thing -------------------------------------------------------------------------


def test_ctrl_r_regenerates_in_both_views(tiny_spm_gguf):
    async def flow():
        app = make_app(tiny_spm_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None)
            view = app.translate_view
            await type_text(pilot, "Good morning.")
            await pilot.press("enter")
            await wait_idle(pilot, app)
            first = view.session
            view.query_one("#source", PromptArea).focus()
            await pilot.press("ctrl+r")
            await wait_idle(pilot, app)
            assert view.session is not first and view.session.versions
            assert len(app.history.sessions(kind="translate")) == 2

    run(flow())


# --- small terminals (issue 15) --------------------------------------------------------------------


@pytest.mark.parametrize("size", [(30, 10), (59, 19)])
def test_starting_in_a_terminal_below_the_minimum_shows_the_notice(size):
    async def flow():
        app = make_app()
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.2)
            assert isinstance(app.screen, TooSmallScreen)
            assert "needs at least 60×20" in _text(app.screen.query_one("#too-small"))
            await pilot.press("f3", "f1")  # keys do nothing harmful meanwhile
            assert isinstance(app.screen, TooSmallScreen)
            await pilot.resize_terminal(80, 24)
            await pilot.pause(0.2)
            assert not isinstance(app.screen, TooSmallScreen)
            assert app.focused is not None

    run(flow())


def test_chat_with_a_missing_model_fails_like_translate(capsys):
    from bayling_local.cli import main

    code = main(["chat", "-m", "no-such-model"])
    chat_err = capsys.readouterr().err.strip().splitlines()
    translate_code = main(["translate", "-m", "no-such-model", "-t", "de", "Hello"])
    translate_err = capsys.readouterr().err.strip().splitlines()
    assert code == translate_code != 0
    assert chat_err == translate_err and len(chat_err) == 1
