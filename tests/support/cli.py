"""Run the real ``bayling-local`` CLI in a child process and check its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys


def run(
    *args: str,
    stdin: bytes | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    if isinstance(stdin, str):
        stdin = stdin.encode()
    return subprocess.run(
        [sys.executable, "-m", "bayling_local", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def one_line_error(result: subprocess.CompletedProcess[bytes], code: int, *fragments: str) -> None:
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert err.startswith("bayling-local: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
