"""bayling-local's terminal UI (Textual): translate, refine, chat, history, models, settings.

:func:`run_app` is the entry point. Importing this package is cheap; the app module, Textual
and the engine are imported when the app starts.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def terminal_on_own_fd() -> Iterator[None]:
    """Give Textual its own descriptor for the terminal and send fd 2 to /dev/null meanwhile.

    Textual draws on ``sys.__stderr__``. llama.cpp (and llama-cpp-python while it loads a
    model) writes to, and temporarily silences, file descriptor 2 for the whole process: that
    would corrupt the screen, or blank it for the whole load. With the terminal on a private
    duplicate, C-level chatter on fd 2 goes nowhere and the screen is Textual's alone.
    """
    original = sys.__stderr__
    tty_fd = next((fd for fd in (2, 1) if _isatty_fd(fd)), None)
    if tty_fd is None:
        yield
        return
    encoding = getattr(original, "encoding", None) or "utf-8"
    private = os.fdopen(os.dup(tty_fd), "w", encoding=encoding, errors="replace")
    saved_fd2 = os.dup(2)
    if tty_fd == 2:  # a stderr redirected to a file may keep llama.cpp's messages
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    sys.__stderr__ = private  # type: ignore[misc]  # Textual draws on sys.__stderr__
    try:
        yield
    finally:
        sys.__stderr__ = original  # type: ignore[misc]
        with contextlib.suppress(OSError):
            private.flush()
        os.dup2(saved_fd2, 2)
        os.close(saved_fd2)
        with contextlib.suppress(OSError):
            private.close()


def _isatty_fd(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def run_app(model: str | None = None) -> None:
    """Run the terminal UI until the user quits."""
    from .app import BaylingApp

    app = BaylingApp(model=model)
    with terminal_on_own_fd():
        app.run()
