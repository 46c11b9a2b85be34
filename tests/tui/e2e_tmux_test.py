"""End to end, as a person uses it: the app in a real terminal under tmux.

Start ``bayling-local`` (with a tiny real model as the default in the settings), type a
sentence, watch the translation stream, refine it, quit, start again, and find the session in
the history. Keys go in with ``tmux send-keys``; the screen comes back with ``capture-pane``.
Needs the ``tmux`` program (Debian/Ubuntu: ``apt-get install tmux``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.support import tui as tui_support

slow_gguf = tui_support.slow_gguf  # the shared session fixture

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"
)

REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 120, 36


class Terminal:
    """One tmux server of our own (its own socket), one window running the app."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"bayling-e2e-{uuid.uuid4().hex[:8]}"
        self.env = env
        self.session = "e2e"

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", os.devnull, *args],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return result.stdout

    def start(self) -> None:
        assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in self.env.items())
        command = (
            f"cd {shlex.quote(str(REPO))} && env {assignments} "
            f"{shlex.quote(sys.executable)} -m bayling_local; echo APP-EXITED-$?; sleep 60"
        )
        if self.tmux("list-sessions", "-F", "#{session_name}").split() == [self.session]:
            # Restart in the same pane: killing the only session would stop the tmux server,
            # and a new session could race its shutdown and come up blank.
            self.tmux("respawn-pane", "-k", "-t", self.session, command)
            return
        self.tmux(
            "new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT), command
        )

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)
        time.sleep(0.15)  # a person's pace: the app handles one key before the next arrives

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", text)
        time.sleep(0.3)  # a person pauses before Enter; a burst + Enter reads as an IME commit

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.05)
        raise AssertionError(f"{text!r} did not appear on the screen:\n{screen}")

    def close(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def terminal(tmp_path, slow_gguf):
    config, data = tmp_path / "config", tmp_path / "data"
    config.mkdir()
    (config / "settings.toml").write_text(
        f'model = "{slow_gguf}"\nthreads = 1\ntemperature = 0.0\nmax_tokens = 200\n',
        encoding="utf-8",
    )
    env = {
        "BAYLING_LOCAL_CONFIG_DIR": str(config),
        "BAYLING_LOCAL_DATA_DIR": str(data),
        "TERM": "xterm-256color",
        "HF_HUB_OFFLINE": "1",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO),
    }
    term = Terminal(env)
    yield term
    term.close()


def test_translate_refine_quit_and_find_it_in_history(terminal):
    terminal.start()
    terminal.wait_for("Translate F2")
    terminal.wait_for("tiny-spm-f32.gguf")  # the model loaded (status bar)

    source = "\n".join(
        f"Line {n}: the weather is nice today and we walk to the river." for n in range(1, 13)
    )
    for number, line in enumerate(source.splitlines()):
        if number:
            terminal.keys("C-j")  # a new line inside the box, not "send"
        terminal.tmux("send-keys", "-t", terminal.session, "-l", line)
    time.sleep(0.3)
    terminal.keys("Enter")

    saw_streaming = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        screen = terminal.screen()
        saw_streaming = saw_streaming or "streaming…" in screen
        if "Translation v1 into English" in screen and "streaming…" not in screen:
            break
        time.sleep(0.03)
    else:
        raise AssertionError(f"the translation did not finish:\n{terminal.screen()}")
    assert saw_streaming, "the output was seen while it streamed"
    assert "v1 · translation" in terminal.screen()

    terminal.type("more formal")  # the refine box has the focus after a translation
    terminal.keys("Enter")
    screen = terminal.wait_for("v2 · more formal")
    assert "Changes v1 → v2" in terminal.wait_for("Changes v1 → v2")

    terminal.keys("C-q")
    terminal.wait_for("APP-EXITED-0")

    terminal.start()
    terminal.wait_for("Translate F2")
    terminal.keys("F4")
    screen = terminal.wait_for("Line 1: the weather is nice today")
    assert "translation" in screen
    terminal.keys("/")
    terminal.type("formal")
    screen = terminal.wait_for("1 matches")  # the refinement turn "more formal" matched
    assert "more" in screen.split("Match", 1)[1]  # its snippet (the column may cut it short)
    terminal.keys("Enter")  # back to the table
    terminal.keys("Enter")  # open the session
    screen = terminal.wait_for("v2 · more formal")
    assert "Translation v2 into English" in screen
    terminal.keys("C-q")
    terminal.wait_for("APP-EXITED-0")
