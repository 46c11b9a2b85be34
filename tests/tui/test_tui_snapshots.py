"""Snapshots of the main screens (pytest-textual-snapshot).

Deterministic by construction: no model is loaded (so no speeds or token counts), the history
has fixed timestamps shown in UTC (the time zone is pinned), the store is empty, and the
terminal size is fixed: 80×24, the smallest common terminal, for the main views. Update the stored
SVGs after an intended change with ``pytest tests/tui/test_tui_snapshots.py --snapshot-update``
and look at the report before committing them.
"""

from __future__ import annotations

import time

import pytest

from bayling_local.history import History
from tests.support.tui import SIZE, TickClock, make_app, stage_history, type_text

SMALL = (80, 24)


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """The history shows local times: pin the zone so the pictures match everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def seeded(tmp_path) -> tuple[History, int, int]:
    history = History(tmp_path / "history.sqlite3", clock=TickClock())
    translation, chat = stage_history(history, model="bayling-2-8b")
    return history, translation, chat


def test_translate_view_with_versions_and_diff(snap_compare, tmp_path):
    history, translation, _ = seeded(tmp_path)

    async def run_before(pilot) -> None:
        await pilot.app.translate_view.load_session(translation)
        await pilot.pause()

    assert snap_compare(make_app(history=history), terminal_size=SMALL, run_before=run_before)


def test_translate_view_versions_hidden_with_ctrl_g_at_80x24(snap_compare, tmp_path):
    history, translation, _ = seeded(tmp_path)

    async def run_before(pilot) -> None:
        await pilot.app.translate_view.load_session(translation)
        await pilot.press("ctrl+g")  # hide the versions and changes: the texts take it all
        await pilot.pause()

    assert snap_compare(make_app(history=history), terminal_size=SMALL, run_before=run_before)


def test_translate_view_with_versions_at_120x36(snap_compare, tmp_path):
    history, translation, _ = seeded(tmp_path)

    async def run_before(pilot) -> None:
        await pilot.app.translate_view.load_session(translation)
        await pilot.pause()

    assert snap_compare(make_app(history=history), terminal_size=(120, 36), run_before=run_before)


def test_translate_view_empty(snap_compare, tmp_path):
    assert snap_compare(make_app(history=History(tmp_path / "h.sqlite3")), terminal_size=SMALL)


def test_translate_view_at_60x20(snap_compare, tmp_path):
    history, translation, _ = seeded(tmp_path)

    async def run_before(pilot) -> None:
        await pilot.app.translate_view.load_session(translation)
        await pilot.pause()

    assert snap_compare(make_app(history=history), terminal_size=(60, 20), run_before=run_before)


def test_chat_view_with_markdown_and_a_stopped_reply(snap_compare, tmp_path):
    history, _, chat = seeded(tmp_path)

    async def run_before(pilot) -> None:
        await pilot.press("f3")
        await pilot.app.chat_view.load_session(chat)
        await pilot.pause()

    assert snap_compare(make_app(history=history), terminal_size=SMALL, run_before=run_before)


def test_history_list(snap_compare, tmp_path):
    history, _, _ = seeded(tmp_path)
    assert snap_compare(make_app(history=history), terminal_size=SMALL, press=["f4"])


def test_history_search(snap_compare, tmp_path):
    history, _, _ = seeded(tmp_path)

    async def run_before(pilot) -> None:
        await pilot.press("f4", "slash")
        await type_text(pilot, "ballon")
        await pilot.pause()

    assert snap_compare(make_app(history=history), terminal_size=SMALL, run_before=run_before)


def test_models_view_empty_store(snap_compare, tmp_path):
    assert snap_compare(
        make_app(history=History(tmp_path / "h.sqlite3")), terminal_size=SIZE, press=["f5"]
    )


def test_settings_view(snap_compare, tmp_path):
    assert snap_compare(
        make_app(history=History(tmp_path / "h.sqlite3")), terminal_size=SIZE, press=["f6"]
    )


def test_help_screen(snap_compare, tmp_path):
    assert snap_compare(
        make_app(history=History(tmp_path / "h.sqlite3")), terminal_size=SIZE, press=["f1"]
    )


def test_language_picker_filtered(snap_compare, tmp_path):
    async def run_before(pilot) -> None:
        await pilot.press("ctrl+t")
        await type_text(pilot, "chin")
        await pilot.pause()

    assert snap_compare(
        make_app(history=History(tmp_path / "h.sqlite3")), terminal_size=SIZE, run_before=run_before
    )


def test_no_model_screen(snap_compare, tmp_path, monkeypatch):
    import bayling_local.resolve as resolve

    monkeypatch.setattr(resolve, "demo_model_path", lambda: None)

    async def run_before(pilot) -> None:
        from bayling_local.tui.screens import NoModelScreen

        for _ in range(200):
            if isinstance(pilot.app.screen, NoModelScreen):
                break
            await pilot.pause(0.05)

    app = make_app(history=History(tmp_path / "h.sqlite3"), autoload=True)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("size", [(50, 14), (30, 10)])
def test_terminal_too_small(snap_compare, tmp_path, size):
    assert snap_compare(make_app(history=History(tmp_path / "h.sqlite3")), terminal_size=size)
