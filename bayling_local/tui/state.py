"""What the terminal UI remembers between runs that is not a setting: the last language pair.

A small JSON file next to the history. Reading it never fails the app (a missing or broken
file means "nothing remembered"); writing it is atomic and a failure is only reported.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import OutputError


@dataclass(frozen=True)
class UiState:
    source: str | None = None  # None: auto-detect
    target: str | None = None  # None: the settings' default target


def state_path() -> Path:
    from ..paths import data_dir

    return data_dir() / "tui-state.json"


def load_state(path: Path | None = None) -> UiState:
    try:
        raw = json.loads((path or state_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return UiState()
    if not isinstance(raw, dict):
        return UiState()
    source, target = raw.get("source"), raw.get("target")
    return UiState(
        source=source if isinstance(source, str) else None,
        target=target if isinstance(target, str) else None,
    )


def save_state(state: UiState, path: Path | None = None) -> None:
    """Write the state; raises OutputError (one line) when it cannot."""
    from ..atomic import describe_os_error, write_text_atomic

    target = path or state_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, json.dumps(asdict(state), ensure_ascii=False) + "\n")
    except OSError as exc:
        raise OutputError(describe_os_error(exc, target)) from None
