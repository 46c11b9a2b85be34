"""Issue 11 in the terminal UI: translate a whole document from the translate view.

Driven with Pilot on the real tiny models of tests/conftest.py: open the dialog (F10 and the
command palette), watch the progress in the status bar, read the summary, find the session in
History, and cancel a long one (no output file, the finished segments in the memory).
"""

from __future__ import annotations

import re

from textual.widgets import Input, Label

from bayling_local.documents import TranslationMemory
from bayling_local.tui.document_job import DocumentJob, default_output
from bayling_local.tui.messages import OpenSession, TranslateDocument
from bayling_local.tui.screens import DocumentDialog
from bayling_local.tui.widgets import StatusBar
from tests.support import tui as tui_support
from tests.support.tui import SIZE, make_app, notifications, run, type_text, wait_for

slow_gguf = tui_support.slow_gguf  # the shared session fixture

SRT = """1
00:00:01,000 --> 00:00:02,500
Hello there.

2
00:00:03,000 --> 00:00:05,000
The weather is nice today.
We should go outside.
"""


def test_default_output_is_beside_the_input(tmp_path):
    assert default_output(tmp_path / "film.srt", "de") == tmp_path / "film.de.srt"
    assert default_output(tmp_path / "README.md", "zh") == tmp_path / "README.zh.md"


def test_f10_translates_a_subtitle_file_and_keeps_it_in_history(
    tiny_spm_gguf, tmp_path, monkeypatch
):
    seen: list[str] = []  # every status-bar line (the job can be over between two frames)
    real = StatusBar.set_state

    def set_state(self, text: str) -> None:
        seen.append(text)
        real(self, text)

    monkeypatch.setattr(StatusBar, "set_state", set_state)
    doc = tmp_path / "film.srt"
    doc.write_text(SRT, encoding="utf-8")

    async def flow():
        app = make_app(tiny_spm_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None, what="the model")
            await pilot.press("f10")
            await wait_for(pilot, lambda: isinstance(app.screen, DocumentDialog), what="dialog")
            dialog = app.screen
            # A missing file is refused in the dialog, which stays open.
            await type_text(pilot, str(tmp_path / "nope.srt"))
            await pilot.press("enter", "enter")
            assert isinstance(app.screen, DocumentDialog)
            assert "not found" in str(dialog.query_one("#doc-error", Label).render())
            dialog.query_one("#doc-input", Input).value = str(doc)
            await pilot.pause(0.05)
            expected = tmp_path / f"film.{app.translate_view.target_lang.code}.srt"
            assert dialog.query_one("#doc-output", Input).value == str(expected)
            dialog.query_one("#doc-output", Input).focus()
            await pilot.press("enter")
            await wait_for(
                pilot, lambda: expected.exists() and not app.generating, timeout=60, what="job"
            )
            await pilot.pause(0.1)
            progress = [line for line in seen if line.startswith("film.srt: ") and "/" in line]
            assert any("2/2 segments" in line for line in progress), seen
            assert seen[-1] == ""  # cleared at the end
            out = expected.read_text(encoding="utf-8")
            # The structure is kept: numbering and timings exactly, one block per cue.
            assert "00:00:01,000 --> 00:00:02,500" in out
            assert "00:00:03,000 --> 00:00:05,000" in out
            blocks = out.strip().split("\n\n")
            assert [b.splitlines()[0] for b in blocks] == ["1", "2"]
            summary = [n for n in notifications(app) if "segments" in n and "translated" in n]
            assert summary and str(expected) in summary[-1]
            sessions = app.history.sessions()
            assert sessions[0].title.startswith("Document film.srt")
            reply = app.history.messages(sessions[0].id)[-1]
            assert str(expected) in reply.content and "segments" in reply.content
            # Found in History, and it opens in the translate view.
            await pilot.press("f4")
            history = await app.ensure_view("history")
            await wait_for(pilot, lambda: history.query_one("#sessions").row_count >= 1)
            app.post_message(OpenSession(sessions[0].id, "translate"))
            view = app.translate_view
            await wait_for(
                pilot,
                lambda: app.current_view == "translate" and str(expected) in view.output.text,
                what="the session opened in the translate view",
            )

    run(flow())


def test_the_palette_opens_the_dialog(tiny_spm_gguf):
    async def flow():
        app = make_app(tiny_spm_gguf, autoload=False)
        async with app.run_test(size=SIZE) as pilot:
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Translate a document…" in titles
            await pilot.press("ctrl+p")
            await type_text(pilot, "Translate a document")
            await pilot.pause(0.3)
            await pilot.press("enter")
            # No model: the view says so instead of opening a dialog that cannot run.
            await wait_for(
                pilot,
                lambda: any("No model" in n for n in notifications(app)),
                what="the no-model notice",
            )

    run(flow())


def test_the_palette_command_opens_the_dialog_with_a_model(tiny_spm_gguf):
    async def flow():
        app = make_app(tiny_spm_gguf)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None, what="the model")
            await pilot.press("f3")  # from another view: the palette shows the translate view
            await pilot.press("ctrl+p")
            await type_text(pilot, "Translate a document")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, DocumentDialog), what="dialog")
            assert app.current_view == "translate"
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, DocumentDialog))

    run(flow())


def test_escape_cancels_a_document_and_writes_nothing(slow_gguf, tmp_path, monkeypatch):
    seen: list[str] = []
    real = StatusBar.set_state

    def set_state(self, text: str) -> None:
        seen.append(text)
        real(self, text)

    monkeypatch.setattr(StatusBar, "set_state", set_state)
    doc = tmp_path / "long.md"
    doc.write_text(
        "\n\n".join(f"Paragraph {i}: the weather is nice today." for i in range(40)) + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "long.out.md"

    async def flow():
        app = make_app(slow_gguf, max_tokens=400)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.engine is not None, what="the model")
            target = app.translate_view.target_lang
            app.translate_view.post_message(TranslateDocument(DocumentJob(doc, out, target)))
            await wait_for(
                pilot,
                lambda: any(re.search(r": [1-9][0-9]*/40 segments", line) for line in seen),
                timeout=60,
                what="the first finished segment",
            )
            await pilot.press("escape")
            await wait_for(pilot, lambda: not app.generating, timeout=60, what="the cancel")
            await pilot.pause(0.1)
            assert not out.exists()
            notes = [n for n in notifications(app) if "cancelled;" in n]
            assert notes, notifications(app)
            kept = int(
                re.search(
                    r"cancelled; (\d+) segments? kept in the translation memory", notes[-1]
                ).group(1)
            )
            assert 1 <= kept < 40
            with TranslationMemory() as memory:
                assert memory.stats().units >= kept
            assert app.history.sessions() == []
            # The model is free again: F10 opens the dialog.
            await pilot.press("f10")
            await wait_for(pilot, lambda: isinstance(app.screen, DocumentDialog), what="dialog")

    run(flow())
