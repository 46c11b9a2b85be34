"""The terminal UI driven headless with Pilot, on tiny real models run by llama.cpp."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Input, Markdown, OptionList, TextArea

from bayling_local.history import History
from bayling_local.settings import load_settings
from bayling_local.tui.screens import (
    AskText,
    Confirm,
    HelpScreen,
    LanguagePicker,
    NoModelScreen,
    TooSmallScreen,
)
from bayling_local.tui.views.chat import ChatMessage
from bayling_local.tui.widgets import PromptArea
from tests.support import tui as tui_support
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

slow_gguf = tui_support.slow_gguf  # the shared session fixture


# --- translate and refine ---------------------------------------------------------------------


def test_translate_refine_restore_copy_and_history(tiny_spm_gguf):
    async def flow():
        app = make_app(tiny_spm_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None, what="the model")
            view = app.translate_view
            assert app.focused is view.query_one("#source")
            await type_text(pilot, "The weather is nice today.")
            await pilot.press("enter")
            await wait_idle(pilot, app)
            session = view.session
            assert session is not None and len(session.versions) == 1
            v1 = session.versions[0]
            assert view.streamed.strip(), "the translation was streamed to the view"
            assert v1.status in ("done", "cut") and v1.text
            assert view.output.text == v1.text.replace("\r\n", "\n") or v1.status != "done"
            assert "Translation v1 into English" in str(view.query_one("#output-title").render())
            assert "tok/s" in app.status.speed
            assert "ctx " in app.status.context

            view.query_one("#refine").focus()
            await type_text(pilot, "more formal")
            await pilot.press("enter")
            await wait_idle(pilot, app)
            assert len(session.versions) == 2 and session.current == 1
            assert session.versions[1].request == "more formal" and session.versions[1].parent == 0
            versions = view.query_one("#versions", OptionList)
            assert versions.option_count == 2
            assert "Changes v1 → v2" in str(view.query_one("#diff-title").render())

            versions.focus()
            versions.highlighted = 0
            await pilot.press("ctrl+o")  # restore v1
            assert session.current == 0 and view.output.text.strip() == v1.text.strip()
            await pilot.press("f8")
            assert app.clipboard == v1.text

            history = app.history
            record = history.sessions(kind="translate")[0]
            assert record.current_version == v1.record_id and record.target_lang == "en"
            roles = [(m.role, m.parent_id) for m in history.messages(record.id)]
            assert roles == [
                ("user", None),
                ("assistant", None),
                ("user", v1.record_id),
                ("assistant", v1.record_id),
            ]

    run(flow())


def test_language_picker_filter_swap_and_detection(tiny_spm_gguf):
    async def flow():
        app = make_app(tiny_spm_gguf)
        async with app.run_test(size=SIZE) as pilot:
            view = app.translate_view
            await pilot.press("ctrl+t")
            assert isinstance(app.screen, LanguagePicker)
            await type_text(pilot, "德语")  # the Chinese name finds German
            options = app.screen.query_one(OptionList)
            assert options.get_option_at_index(0).id == "deu_Latn"
            await pilot.press("enter")
            assert view.target_lang.code == "de"

            await pilot.press("ctrl+f")
            await type_text(pilot, "fran")
            await pilot.press("enter")
            assert view.source_lang.code == "fr"
            await pilot.press("f7")  # swap
            assert (view.source_lang.code, view.target_lang.code) == ("de", "fr")

            await pilot.press("ctrl+f")
            await type_text(pilot, "auto")
            await pilot.press("enter")
            assert view.source_lang is None
            view.query_one("#source", PromptArea).focus()
            await type_text(pilot, "Das Wetter ist heute sehr schön und warm.")
            await wait_for(pilot, lambda: view.detected is not None, what="language detection")
            assert view.detected.code == "de"
            assert "auto (German)" in str(view.query_one("#source-lang").label)

            await pilot.press("ctrl+t")
            await pilot.press("escape")  # cancelling the picker changes nothing
            assert view.target_lang.code == "fr" and not isinstance(app.screen, LanguagePicker)

    run(flow())


def test_escape_stops_a_translation_and_keeps_the_partial_text(slow_gguf):
    async def flow():
        app = make_app(slow_gguf, max_tokens=7800)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None, what="the model")
            view = app.translate_view
            # A long line: the translator allows twice its tokens for the translation.
            view.query_one("#source", PromptArea).load_text("The weather is nice today. " * 250)
            await pilot.press("enter")
            await wait_for(pilot, lambda: view.output.text.strip(), what="the first text")
            await pilot.press("escape")
            await wait_idle(pilot, app)
            version = view.session.versions[0]
            assert version.status == "stopped" and version.text
            assert version.stats is None or version.stats.generated_tokens < 3000
            assert "stopped" in str(view.query_one("#output-title").render())
            saved = app.history.messages(view.session.record_id)[-1]
            assert saved.status == "stopped" and saved.content == version.text

    run(flow())


def test_a_reply_cut_by_the_token_limit_is_said(tiny_spm_gguf):
    async def flow():
        app = make_app(tiny_spm_gguf, max_tokens=3)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None)
            await type_text(pilot, "A sentence long enough to need more than three tokens.")
            await pilot.press("enter")
            await wait_idle(pilot, app)
            assert app.translate_view.session.versions[0].status == "cut"
            assert any("cut off" in n for n in notifications(app))
            assert "cut off" in str(app.translate_view.query_one("#output-title").render())

    run(flow())


def test_nothing_to_translate_and_refine_before_translate_are_explained(tiny_spm_gguf):
    async def flow():
        app = make_app(tiny_spm_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None)
            await pilot.press("enter")
            app.translate_view.query_one("#refine").focus()
            await type_text(pilot, "more formal")
            await pilot.press("enter")
            messages = notifications(app)
            assert any("Type or paste the text" in m for m in messages)
            assert any("Translate something first" in m for m in messages)
            assert not app.generating

    run(flow())


# --- chat -------------------------------------------------------------------------------------


def test_chat_send_regenerate_edit_and_copy(tiny_bpe_gguf):
    async def flow():
        app = make_app(tiny_bpe_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None)
            await pilot.press("f3")
            view = app.chat_view
            assert app.focused is view.query_one("#chat-input")
            await type_text(pilot, "Hello BayLing")
            await pilot.press("ctrl+j")
            await type_text(pilot, "second line")
            await pilot.press("enter")
            await wait_idle(pilot, app)
            widgets = list(view.query(ChatMessage))
            assert [w.turn.role for w in widgets] == ["user", "assistant"]
            assert widgets[0].turn.content == "Hello BayLing\nsecond line"
            first_reply = view.session.last_reply
            assert first_reply is not None and first_reply.record_id is not None
            sid = view.session.record_id
            assert [m.role for m in app.history.messages(sid)] == ["user", "assistant"]

            await pilot.press("ctrl+r")  # regenerate
            await wait_idle(pilot, app)
            assert [w.turn.role for w in view.query(ChatMessage)] == ["user", "assistant"]
            assert view.session.last_reply is not first_reply
            assert [m.role for m in app.history.messages(sid)] == ["user", "assistant"]

            await pilot.press("f8")
            assert app.clipboard == view.session.last_reply.content

            await pilot.press("ctrl+l")  # edit the last message: nothing goes until it is sent
            box = view.query_one("#chat-input", PromptArea)
            assert box.text == "Hello BayLing\nsecond line"
            assert len(view.query(ChatMessage)) == 2 and len(app.history.messages(sid)) == 2
            box.load_text("Edited question")
            await pilot.press("enter")
            await wait_idle(pilot, app)
            assert [m.content for m in app.history.messages(sid)][0] == "Edited question"

    run(flow())


def test_chat_scrolling_up_while_a_reply_streams_is_not_undone(slow_gguf):
    async def flow():
        # Greedy without a repeat penalty: this prompt runs to the token limit on this model
        # (with the batch engine's decoder "Tell me a long story" ends after some 650 tokens).
        app = make_app(slow_gguf, max_tokens=3000, repeat_penalty=1.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.engine is not None)
            await pilot.press("f3")
            view = app.chat_view
            await type_text(pilot, "Once upon a time")
            await pilot.press("enter")
            log = view.log
            await wait_for(
                pilot, lambda: log.max_scroll_y > 2, what="the reply to overflow the view"
            )
            assert log.scroll_y == log.max_scroll_y, "the view follows the reply"
            reply = list(view.query(ChatMessage))[-1].turn
            log.scroll_home(animate=False)  # the user scrolls up to read
            shown = len(reply.content)
            await wait_for(pilot, lambda: len(reply.content) > shown, what="more of the reply")
            await pilot.pause(0.05)
            assert log.scroll_y == 0, "new text did not drag the view down"
            await wait_idle(pilot, app)
            assert log.scroll_y == 0
            log.scroll_end(animate=False)  # back at the bottom, it follows again
            assert log.is_anchored

    run(flow())


def test_typing_while_a_reply_streams_defers_drawing_and_loses_nothing(tiny_spm_gguf, monkeypatch):
    """While the user types, streamed text is drawn after each keystroke, and all of it is."""
    from bayling_local.tui.views import chat

    monkeypatch.setattr(chat, "TYPING_S", 5.0)  # "typing" however slow the test machine is
    monkeypatch.setattr(chat, "MAX_DEFER_S", 5.0)
    from bayling_local.engine import GenerationStats
    from bayling_local.interactive import Reply
    from bayling_local.tui.chat_session import Turn
    from bayling_local.tui.messages import StreamChunk, StreamDone

    async def flow():
        app = make_app(tiny_spm_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None)
            await pilot.press("f3")
            view = app.chat_view
            message = await view._mount_turn(Turn("assistant", ""))
            message.start_stream()
            view._streaming = message
            drawn = message.query_one(Markdown)

            view.post_message(StreamChunk("Once upon "))  # nobody has typed yet: drawn at once
            await pilot.pause(0.05)
            assert drawn.source == "Once upon "
            await type_text(pilot, "a")
            view.post_message(StreamChunk("a time"))  # typing: held back ...
            await pilot.pause(0.05)
            assert drawn.source == "Once upon "
            await type_text(pilot, "b")  # ... until just after the next keystroke is drawn
            await pilot.pause(0.05)
            assert drawn.source == "Once upon a time"
            view.post_message(StreamChunk(" there was"))
            await pilot.pause(0.05)
            reply = Reply("Once upon a time there was", "done", GenerationStats())
            view.post_message(StreamDone(reply))  # the end draws whatever is left
            await pilot.pause(0.1)
            assert message.query_one(Markdown).source == reply.text
            assert view.query_one("#chat-input", PromptArea).text == "ab"

    run(flow())


def test_chat_escape_stops_a_reply_and_keeps_it_marked(slow_gguf):
    async def flow():
        app = make_app(slow_gguf, max_tokens=7800, repeat_penalty=1.0)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None)
            await pilot.press("f3")
            view = app.chat_view
            await type_text(pilot, "Once upon a time")
            await pilot.press("enter")
            await wait_for(
                pilot,
                lambda: any(
                    w.turn.content for w in view.query(ChatMessage) if w.turn.role == "assistant"
                ),
                what="the first text of the reply",
            )
            await pilot.press("escape")
            await wait_idle(pilot, app)
            reply = view.session.last_reply
            assert reply.status == "stopped" and reply.content
            assert app.last_stats.generated_tokens < 7800
            widget = list(view.query(ChatMessage))[-1]
            assert "stopped" in str(widget.query_one(".status").render())
            assert app.history.messages(view.session.record_id)[-1].status == "stopped"

    run(flow())


def test_chat_prompt_too_long_for_the_context_is_said_and_the_app_stays_up(tiny_spm_gguf):
    async def flow():
        app = make_app(tiny_spm_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None)
            await pilot.press("f3")
            box = app.chat_view.query_one("#chat-input", PromptArea)
            box.load_text("word " * 1200)
            await pilot.press("enter")
            await wait_idle(pilot, app)
            assert any("context holds 512" in n for n in notifications(app))
            assert [w.turn.role for w in app.chat_view.query(ChatMessage)] == ["user"]

    run(flow())


def test_copy_a_message_and_its_code_blocks(tmp_path):
    async def flow():
        history = History(tmp_path / "h.sqlite3")
        sid = history.new_session("chat", "code please")
        history.add_message(sid, "user", "code please")
        history.add_message(
            sid, "assistant", "Here:\n\n```python\nprint(1)\n```\n\nand\n\n```\nls -l\n```\n"
        )
        app = make_app(history=history)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f4")
            await pilot.press("enter")  # open the session
            await wait_for(pilot, lambda: len(app.chat_view.query(ChatMessage)) == 2)
            assert app.current_view == "chat"
            await pilot.press("f9")
            assert app.clipboard == "ls -l"
            reply = list(app.chat_view.query(ChatMessage))[-1]
            reply.focus()
            await pilot.press("k")
            assert app.clipboard == "print(1)"
            await pilot.press("k")
            assert app.clipboard == "ls -l"
            await pilot.press("c")
            assert app.clipboard.startswith("Here:")

    run(flow())


# --- history ----------------------------------------------------------------------------------


def _seeded_history(path) -> History:
    history = History(path, clock=TickClock())
    a = history.new_session(
        "translate",
        "梅西获得了金球奖。",
        source_lang="zh",
        target_lang="en",
        source_text="梅西获得了金球奖。",
    )
    history.add_message(
        a, "user", "Provide the English translation for this sentence: 梅西获得了金球奖。"
    )
    v1 = history.add_message(a, "assistant", "Messi won the Golden Ball.")
    history.add_message(a, "user", "use 'Ballon d'Or' for 金球奖", parent_id=v1)
    v2 = history.add_message(a, "assistant", "Messi won the Ballon d'Or.", parent_id=v1)
    history.update_session(a, current_version=v2)
    b = history.new_session("chat", "What is BayLing?")
    history.add_message(b, "user", "What is BayLing?")
    history.add_message(b, "assistant", "BayLing is a multilingual assistant.")
    return history


def test_history_open_search_rename_archive_restore_delete_export(tmp_path):
    async def flow():
        history = _seeded_history(tmp_path / "h.sqlite3")
        app = make_app(history=history)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f4")
            view = app.query_one("HistoryView")
            table = view.query_one(DataTable)
            assert table.row_count == 2

            await pilot.press("slash")
            assert isinstance(app.focused, Input)
            await type_text(pilot, "ballon")
            assert table.row_count == 2  # the refinement and the reply
            await pilot.press("enter")  # back to the table
            await pilot.press("enter")  # open the translation
            assert app.current_view == "translate"
            session = app.translate_view.session
            assert [v.text for v in session.versions] == [
                "Messi won the Golden Ball.",
                "Messi won the Ballon d'Or.",
            ]
            assert session.current == 1 and app.translate_view.source_lang.code == "zh"
            assert "Changes v1 → v2" in str(app.translate_view.query_one("#diff-title").render())

            await pilot.press("f4")
            view.query_one(Input).value = ""
            table.focus()
            await pilot.press("r")
            assert isinstance(app.screen, AskText)
            app.screen.query_one(Input).value = "Renamed chat"
            await pilot.press("enter")
            assert history.sessions()[0].title == "Renamed chat"

            await pilot.press("a")  # archive
            assert [s.title for s in history.sessions(archived=True)] == ["Renamed chat"]
            assert table.row_count == 1
            await pilot.press("v")  # show the archive
            assert table.row_count == 1 and "Archived" in str(
                view.query_one("#history-mode").render()
            )
            await pilot.press("u")  # restore it
            assert history.sessions(archived=True) == [] and len(history.sessions()) == 2
            await pilot.press("v")

            out = tmp_path / "export.json"
            await pilot.press("j")
            app.screen.query_one(Input).value = str(out)
            await pilot.press("enter")
            exported = json.loads(out.read_text(encoding="utf-8"))
            assert exported["session"]["title"] == "Renamed chat"
            out_md = tmp_path / "export.md"
            await pilot.press("m")
            app.screen.query_one(Input).value = str(out_md)
            await pilot.press("enter")
            assert out_md.read_text(encoding="utf-8").startswith("# Renamed chat")
            await pilot.press("m")
            app.screen.query_one(Input).value = str(tmp_path / "missing" / "x.md")
            await pilot.press("enter")
            assert any("does not exist" in n for n in notifications(app))

            await pilot.press("d")
            assert isinstance(app.screen, Confirm)
            await pilot.press("n")
            assert len(history.sessions()) == 2
            await pilot.press("d")
            await pilot.press("y")
            assert [s.kind for s in history.sessions()] == ["translate"]

    run(flow())


def test_a_corrupt_history_database_is_replaced_and_the_user_told(tmp_path):
    async def flow():
        from bayling_local.paths import history_path

        path = history_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"garbage" * 500)
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(
                pilot, lambda: any("corrupt" in n and "broken-" in n for n in notifications(app))
            )
            assert app.history.sessions() == []
        assert list(path.parent.glob("history.sqlite3.broken-*"))

    run(flow())


# --- models -----------------------------------------------------------------------------------


def test_models_import_default_and_switch(tiny_spm_gguf, tiny_bpe_gguf):
    async def flow():
        app = make_app(tiny_spm_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None)
            first = app.engine
            await pilot.press("f5")
            await pilot.press("i")
            assert isinstance(app.screen, AskText)
            app.screen.query_one(Input).value = str(tiny_bpe_gguf)
            await pilot.press("enter")
            view = app.query_one("ModelsView")
            table = view.query_one(DataTable)
            await wait_for(pilot, lambda: table.row_count == 1, what="the import")
            name = str(table.get_row_at(0)[1])
            await pilot.press("d")
            assert load_settings().model == name
            await pilot.press("enter")  # load it
            await wait_for(
                pilot, lambda: app.engine is not first and app.engine is not None, what="the switch"
            )
            assert app.resolved.name == name and app.engine.prompt_format.name == "bayling-3"
            assert name in app.status.model
            assert "●" in str(table.get_row_at(0)[0])

    run(flow())


def test_a_model_that_fails_to_load_leaves_the_app_usable(tmp_path):
    async def flow():
        broken = tmp_path / "broken.gguf"
        broken.write_bytes(b"GGUF" + b"\x00" * 64)
        app = make_app(broken)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.model_error is not None, what="the failure")
            assert app.engine is None and "no model" in app.status.model
            assert any("broken.gguf" in n for n in notifications(app))
            await pilot.press("f2")
            await type_text(pilot, "still typing")
            await pilot.press("enter")
            assert any("No model is loaded" in n for n in notifications(app))
            assert app.translate_view.query_one("#source", PromptArea).text == "still typing"

    run(flow())


def test_no_model_installed_explains_how_to_get_one(monkeypatch):
    import bayling_local.resolve as resolve

    monkeypatch.setattr(resolve, "demo_model_path", lambda: None)  # as an install without the demo

    async def flow():
        app = make_app(autoload=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(
                pilot, lambda: isinstance(app.screen, NoModelScreen), what="the no-model screen"
            )
            await pilot.press("m")
            assert app.current_view == "models" and not isinstance(app.screen, NoModelScreen)

    run(flow())


def test_pull_without_a_network_fails_with_one_clear_line(tiny_spm_gguf):
    async def flow():
        app = make_app(autoload=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f5")
            await pilot.press("p")
            await pilot.press("enter")  # the suggested bayling-2-8b
            await wait_for(
                pilot,
                lambda: any(n.title == "Pull failed" for n in app._notifications),
                what="the pull",
            )
            assert any("offline" in n.lower() or "network" in n.lower() for n in notifications(app))

    run(flow())


# --- settings, help, palette, size -------------------------------------------------------------


def test_settings_are_validated_saved_and_applied():
    async def flow():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f6")
            view = app.query_one("SettingsView")
            view.query_one("#set-temperature", Input).value = "hot"
            await pilot.press("ctrl+s")
            assert any("'hot' is not a number" in n for n in notifications(app))
            assert app.focused is view.query_one("#set-temperature")
            view.query_one("#set-temperature", Input).value = "0.3"
            view.query_one("#set-max_tokens", Input).value = "77"
            view.query_one("#set-threads", Input).value = ""
            view.query_one("#set-theme").value = "nord"
            view.query_one("#set-system_prompt", TextArea).load_text("Be brief.")
            await pilot.press("ctrl+s")
            saved = load_settings(environ={})  # the file itself, not the environment
            assert (saved.temperature, saved.max_tokens, saved.threads, saved.theme) == (
                0.3,
                77,
                None,
                "nord",
            )
            assert saved.system_prompt == "Be brief."
            assert app.settings.max_tokens == 77 and app.theme == "nord"

    run(flow())


def test_help_palette_and_every_action_has_a_command():
    async def flow():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f1")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for expected in (
                "Go to History",
                "Swap languages",
                "Regenerate the reply",
                "Edit the last message",
                "Copy the last code block",
                "Export the session as JSON",
                "Import a GGUF file",
                "Pull a model",
                "Save the settings",
                "Stop the reply",
                "Show keys",
                "Restore a version",
            ):
                assert expected in titles
            await pilot.press("ctrl+p")
            await type_text(pilot, "Go to Settings")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_for(
                pilot, lambda: app.current_view == "settings", what="the palette command"
            )

    run(flow())


def test_a_terminal_too_small_gets_a_clear_message():
    async def flow():
        app = make_app()
        async with app.run_test(size=(50, 14)) as pilot:
            await pilot.pause(0.1)
            assert isinstance(app.screen, TooSmallScreen)
            assert "needs at least 60×20" in str(app.screen.query_one("#too-small").render())
            await pilot.resize_terminal(100, 30)
            await pilot.pause(0.1)
            assert not isinstance(app.screen, TooSmallScreen)

    run(flow())


def test_enter_right_behind_input_method_text_does_not_send():
    from textual import events

    async def flow():
        from bayling_local.tui.app import BaylingApp

        app = BaylingApp(settings=make_app().settings, autoload=False, ime_window=0.05)
        sent: list[str] = []
        async with app.run_test(size=SIZE) as pilot:
            area = app.translate_view.query_one("#source", PromptArea)
            area.post_message  # noqa: B018
            app.translate_view.action_translate = lambda: sent.append(area.text)  # type: ignore[method-assign]

            def key(name: str, character: str | None, at: float) -> events.Key:
                event = events.Key(name, character)
                event.time = at
                return event

            base = 1000.0
            for i, char in enumerate("你好"):  # an IME commit: two characters in one burst
                await area._on_key(key(char, char, base + i * 0.001))
            await area._on_key(key("enter", "\r", base + 0.01))
            await pilot.pause()
            assert sent == [] and area.text == "你好"
            await area._on_key(key("enter", "\r", base + 0.5))  # the person presses Enter
            await pilot.pause()
            assert sent == ["你好"]

    run(flow())
