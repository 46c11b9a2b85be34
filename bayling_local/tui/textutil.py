"""Small pieces of UI logic that need no widgets: display cleaning, code blocks, input guards.

Kept free of Textual imports so they are unit-tested directly and cost nothing at start-up.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

# C0 and C1 control characters other than newline and tab. A model can emit any token, and
# an escape sequence written to the terminal would corrupt the screen, so they are shown as
# the replacement character instead.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` safe to draw: control characters become U+FFFD, CR-LF becomes LF."""
    return _CONTROL.sub("\ufffd", text.replace("\r\n", "\n"))


_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[^\n]*\n(.*?)^[ \t]{0,3}\1[ \t]*$", re.M | re.S)


def code_blocks(markdown: str) -> list[str]:
    """The contents of the fenced code blocks of a Markdown reply, in order."""
    return [match.group(2).rstrip("\n") for match in _FENCE.finditer(markdown)]


class ComposeGuard:
    """Tells an Enter that sends apart from one that commits input-method text.

    In a terminal the input method (IME) composes Chinese, Japanese or Korean text itself and
    the application only receives the committed characters. Most terminals swallow the Enter
    that commits a candidate; a few deliver it right behind the committed text. An Enter that
    arrives within ``window`` seconds of non-ASCII text is taken as that commit and does not
    send; a person's own Enter comes later. ASCII text never holds Enter back, so typing ahead
    on a busy machine (keys read in one go) still sends. Key events carry the time the terminal
    input was read, so a busy UI does not shorten the measured gap.
    """

    def __init__(self, window: float = 0.05) -> None:
        self.window = window
        self._last_composed = float("-inf")

    def note_text(self, character: str, at: float) -> None:
        """Record a character of typed (or committed) text that arrived at time ``at``."""
        if not character.isascii():
            self._last_composed = at

    def enter_sends(self, at: float) -> bool:
        """Whether an Enter arriving at ``at`` is the user's own "send"."""
        return at - self._last_composed > self.window


class Batcher:
    """Collects streamed text in a worker thread and hands it on at most every ``interval`` s.

    A tiny model can produce thousands of tokens a second; one UI update per token would
    flood the event loop and delay key presses. Batching bounds the update rate whatever the
    model's speed.
    """

    def __init__(self, emit: Callable[[str], None], interval: float = 0.03) -> None:
        self.emit = emit
        self.interval = interval
        self._pending: list[str] = []
        self._last = float("-inf")
        self._lock = threading.Lock()

    def add(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            self._pending.append(text)
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            self._last = now
            chunk, self._pending = "".join(self._pending), []
        self.emit(chunk)

    def flush(self) -> None:
        with self._lock:
            chunk, self._pending = "".join(self._pending), []
        if chunk:
            self.emit(chunk)
