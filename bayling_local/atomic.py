"""Writing files so that a reader never sees half of one.

Everything the project writes for the user (translations, GGUFs, the model manifest, settings)
goes to a temporary file in the same directory and is renamed over the target only when
complete. An interrupted or failed write leaves any previous file untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import OutputError


def describe_os_error(exc: OSError, path: Path | str) -> str:
    """A one-line, human explanation of why ``path`` could not be written."""
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device to write {path}"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {path}: permission denied"
    if exc.errno == errno.ENOENT:
        return f"cannot write {path}: its directory does not exist"
    if exc.errno == errno.EISDIR:
        return f"cannot write {path}: it is a directory"
    return f"cannot write {path}: {exc.strerror or exc}"


@contextlib.contextmanager
def atomic_path(target: Path | str, *, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    On any exception (including KeyboardInterrupt) the temporary file is removed and
    ``target`` is left as it was.
    """
    target = Path(target)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=suffix, dir=target.parent or "."
        )
    except OSError as exc:
        raise OutputError(describe_os_error(exc, target)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(describe_os_error(exc, target)) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(
    target: Path | str, mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``target`` when closed without error."""
    if "b" in mode:
        encoding = None
    with atomic_path(target) as tmp:
        try:
            with open(tmp, mode, encoding=encoding) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise OutputError(describe_os_error(exc, target)) from None


def write_text_atomic(target: Path | str, text: str) -> None:
    with atomic_open(target, "w") as handle:
        handle.write(text)
