"""Run the terminal UI on a pseudo-terminal and time what reaches the screen.

The app runs exactly as a person starts it (``python -m bayling_local``, real Linux driver,
real terminal I/O) on the slave side of a pty; this side writes key presses into the master
and timestamps every chunk of output the app writes. What is measured ends when the app has
written the frame to the terminal; the terminal emulator's own drawing is not included.
"""

from __future__ import annotations

import codecs
import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# xterm key sequences the Textual driver understands
KEYS = {
    "enter": b"\r",
    "escape": b"\x1b",
    "ctrl+q": b"\x11",
    "f3": b"\x1bOR",
    "f4": b"\x1bOS",
}


class PtyApp:
    """``python -m bayling_local`` on a pty of a fixed size."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        size: tuple[int, int] = (120, 36),
        argv: list[str] | None = None,
    ):
        self.master, slave = os.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(ROOT), **env}
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            argv or [sys.executable, "-m", "bayling_local"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=full_env,
            cwd=str(ROOT),
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text = ""  # everything the app wrote, decoded

    def read(self, timeout: float) -> str:
        """Output that arrives within ``timeout`` seconds (empty string if none)."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return ""
        try:
            data = os.read(self.master, 1 << 16)
        except OSError:
            return ""
        chunk = self._decoder.decode(data)
        self.text += chunk
        return chunk

    def wait_for(self, found: Callable[[str], bool], timeout: float, *, since: int = 0) -> float:
        """Read until ``found(output since offset)``; returns the time it became true."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if found(self.text[since:]):
                return time.perf_counter()
            self.read(0.002)
        raise TimeoutError(f"the screen did not show what was expected within {timeout} s")

    def drain(self, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            self.read(0.005)

    def send(self, data: bytes | str) -> float:
        """Write key presses; returns the time they were written."""
        if isinstance(data, str):
            data = KEYS.get(data, data.encode("utf-8"))
        now = time.perf_counter()
        os.write(self.master, data)
        return now

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("ctrl+q")
                deadline = time.perf_counter() + 5
                while self.process.poll() is None and time.perf_counter() < deadline:
                    self.read(0.05)
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)

    def __enter__(self) -> PtyApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
