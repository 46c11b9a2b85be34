"""What the first frame builds, and the light widgets that keep it small (issue 16).

Start-up time is measured by benchmarks/tui_startup.py, never here; these tests pin what makes
it short (how many widgets exist before the first frame) and that nothing was lost for it: the
view tabs switch by click and by keys, the versions pane and the other views arrive just after
the first frame, the status bar still shows every field.
"""

from __future__ import annotations

from textual.widgets import Footer, OptionList

from bayling_local.tui.app import BaylingApp
from bayling_local.tui.widgets import ViewTabs
from tests.support.tui import SIZE, TEST_SETTINGS, make_app, run, wait_for

# The translate view's language bar and two text boxes, the tab bar, the status bar, the footer
# and Textual's own few (it was 53 with TabbedContent and every pane built).
FIRST_FRAME_WIDGETS = 24


class FirstFrameOnly(BaylingApp):
    """The app as it is when the first frame is drawn: the work after it never starts."""

    def _startup(self) -> None:
        return None


def test_the_first_frame_builds_only_the_translate_view():
    async def flow():
        app = FirstFrameOnly(settings=TEST_SETTINGS, autoload=False, remember=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            footer = app.query_one(Footer)  # its keys are composed after the first frame
            widgets = [w for w in app.screen.walk_children() if footer not in w.ancestors]
            assert len(widgets) <= FIRST_FRAME_WIDGETS, [type(w).__name__ for w in widgets]
            assert app.mounted_view("chat") is None and app.mounted_view("settings") is None
            view = app.translate_view
            assert not view.query("#refine-pane") and not view.query("#versions-pane")
            # ... but their room is kept, so the boxes above do not move when they come
            assert view.query_one("#below-pending").size.height == 4 + 7
            assert app.focused is app.translate_view.query_one("#source")

    run(flow())


def test_the_rest_arrives_just_after_the_first_frame():
    async def flow():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(
                pilot,
                lambda: (
                    all(app.mounted_view(name) for name in ("chat", "history", "settings"))
                    and app.mounted_view("models")
                ),
                what="the other views",
            )
            view = app.translate_view
            await wait_for(pilot, lambda: view.query("#versions-pane"), what="the versions")
            assert view.query_one("#versions-pane").display  # 34 rows: shown below the texts
            assert app.current_view == "translate"
            assert app.query_one("#chat-view").display is False

    run(flow())


def test_a_session_opened_before_the_versions_pane_is_mounted_fills_it():
    """A history session can be opened at any moment: the pane is built on demand."""

    async def flow():
        app = FirstFrameOnly(settings=TEST_SETTINGS, autoload=False, remember=False)
        async with app.run_test(size=SIZE) as pilot:
            view = app.translate_view
            await pilot.press("ctrl+g")  # the toggle builds the pane too
            await pilot.pause()
            pane = view.query_one("#versions-pane")
            assert view.query_one("#versions", OptionList).option_count == 0
            assert pane.display is False  # shown by height at 34 rows, so Ctrl+G hid it
            await pilot.press("ctrl+g")
            assert pane.display is True

    run(flow())


def test_view_tabs_switch_by_click_and_by_keys():
    async def flow():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            tabs = app.query_one(ViewTabs)
            spans = {name: (start, end) for name, start, end in tabs._spans()}
            start, _ = spans["history"]
            await pilot.click(ViewTabs, offset=(1 + start + 2, 0))  # after the padding
            await wait_for(pilot, lambda: app.current_view == "history", what="the click")
            assert tabs.active == "history"
            assert app.query_one("#history-view").display
            assert not app.query_one("#translate-view").display

            tabs.focus()
            await pilot.press("right")
            await wait_for(pilot, lambda: app.current_view == "models", what="Right")
            assert app.focused is tabs  # the next Right goes on from here
            await pilot.press("right")
            await wait_for(pilot, lambda: app.current_view == "settings", what="Right again")
            await pilot.press("right")  # round to the first view
            await wait_for(pilot, lambda: app.current_view == "translate", what="Right, round")
            await pilot.press("left")
            await wait_for(pilot, lambda: app.current_view == "settings", what="Left")
            await pilot.press("f2")
            await wait_for(pilot, lambda: app.current_view == "translate", what="F2")
            assert tabs.active == "translate"
            assert app.focused is app.translate_view.query_one("#source")
            # the labels: every view with its key, the shown one marked on the bar below
            line = "".join(segment.text for segment in tabs.render_line(0))
            for label in ("Translate F2", "Chat F3", "History F4", "Models F5", "Settings F6"):
                assert label in line

    run(flow())


def test_the_status_bar_shows_every_field_with_the_state_at_the_right():
    async def flow():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            status = app.status
            status.set_model("bayling-demo (demo)")
            status.set_speed("812.3 tok/s")
            status.set_context("ctx 41/512")
            status.set_state("generating… Esc stops")
            await pilot.pause()
            line = "".join(segment.text for segment in status.render_line(0))
            assert line.index("bayling-demo") < line.index("812.3 tok/s") < line.index("ctx 41")
            assert line.endswith("  generating… Esc stops")  # flush right, inside the padding
            assert len(line) == SIZE[0] - 2
            status.set_state("")
            await pilot.pause()
            line = "".join(segment.text for segment in status.render_line(0))
            assert "generating" not in line

    run(flow())


def test_keys_typed_in_a_burst_after_f4_and_slash_reach_the_search_box(tmp_path):
    """F4, / and a word arriving at once (a busy machine, the views still being built): the
    word lands in History's search box, not in the translate box or the table."""
    from textual import events

    from bayling_local.history import History

    history = History(tmp_path / "history.sqlite3")
    session = history.new_session("translate", "a/b test", source_text="a/b test")
    history.add_message(session, "user", "Translate a/b test")

    async def flow():
        app = make_app(history=history)
        async with app.run_test(size=SIZE) as pilot:
            for key, char in (
                [("f4", None), ("slash", "/")]
                + [(c, c) for c in "a"]
                + [
                    ("slash", "/"),
                    ("b", "b"),
                ]
            ):
                app.post_message(events.Key(key, char))  # queued together, not one by one

            def typed() -> bool:
                found = app.query("#search")
                return bool(found) and found.first().value == "a/b"

            await wait_for(pilot, typed, what="the word in the search")
            assert app.focused is app.query_one("#search")
            assert app.translate_view.query_one("#source").text == ""

    run(flow())
