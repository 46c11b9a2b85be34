"""Line-aligned text files (test sets, hypotheses) and the optional packages evaluation needs.

A test set is one segment a line; hypotheses and references must have the same number of
lines. Every way such a file can be unusable (missing, empty, binary, not UTF-8, a line count
that does not match) is one clear :class:`~bayling_local.errors.UsageError` line.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import InputError, OutputError, UsageError

EVAL_EXTRA = "pip install 'bayling-local[eval]'"


def require(module: str, purpose: str, extra: str = EVAL_EXTRA) -> ModuleType:
    """Import an optional dependency, or fail with one line saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise UsageError(f"{purpose} needs the {top} package, not installed: {extra}") from None


def read_segments(path: Path | str, what: str = "file") -> list[str]:
    """The lines of a UTF-8 text file, one segment each (the final newline ends the last one)."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a directory, not a text file") from None
    except PermissionError:
        raise InputError(f"cannot read {what} {path}: permission denied") from None
    if b"\x00" in data:
        raise InputError(f"{what} {path} looks like binary data, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} {path} is not valid UTF-8 text (bad byte at offset {exc.start})"
        ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.strip():
        raise InputError(f"{what} {path} is empty")
    return text.removesuffix("\n").split("\n")


def check_aligned(hyps: list[str], refs: list[str], hyp_name: str, ref_name: str) -> None:
    """Hypotheses and references pair up line by line, or the counts are named."""
    if len(hyps) != len(refs):
        raise InputError(
            f"{hyp_name} has {len(hyps)} lines but {ref_name} has {len(refs)}; "
            "they must be line-aligned"
        )


def new_run_dir(path: Path | str) -> Path:
    """Create the folder a run writes into; an existing one is refused (nothing is overwritten)."""
    path = Path(path).expanduser()
    if path.exists():
        raise UsageError(f"run folder {path} already exists; give a new --out folder")
    if not path.parent.is_dir():
        raise OutputError(f"cannot create {path}: its parent folder does not exist")
    try:
        path.mkdir()
    except OSError as exc:
        from ..atomic import describe_os_error

        raise OutputError(describe_os_error(exc, path)) from None
    return path


def write_text(path: Path, text: str) -> None:
    """Write a file atomically (a reader never sees half of it)."""
    from ..atomic import write_text_atomic

    write_text_atomic(path, text)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def write_lines(path: Path, lines: list[str]) -> None:
    """One segment a line; newlines inside a segment become spaces so lines stay aligned."""
    write_text(path, "".join(" ".join(line.splitlines()) + "\n" for line in lines))
