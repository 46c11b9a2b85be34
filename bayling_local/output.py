"""The one writer of every file the project writes: translations, documents, GGUFs, settings,
the model manifest, exports.

What it promises, whatever the caller:

- **Never over its own input.** A path the process read as input (:func:`protect_input`, or
  ``inputs=`` of a call) is refused as an output when it is the *same file* -- same device and
  inode, so ``./f.txt``, a hard link or a symlink to it are all caught, not just the same name.
- **Regular files atomically.** The text goes to a temporary file beside the target, is
  flushed to disk, and is renamed over the target only when complete: an interrupted or failed
  write (Ctrl-C, full disk) leaves the previous file exactly as it was.
- **Symlinks are written through.** A symlink keeps pointing where it did and its target gets
  the new content (atomically, in the target's directory), as editors do. A dangling symlink
  creates its target.
- **Streams are streamed.** A FIFO, a character or block device, ``/dev/stdout`` or any
  ``/dev/...`` or ``/proc/...`` path is opened and written in place, never replaced by a
  regular file (``-o /dev/full`` reports "no space left" and leaves the device alone).
- **Modes as the user expects.** A new file gets the mode the umask gives (``0o666 & ~umask``,
  not ``mkstemp``'s 0600); a replaced file keeps its mode (and, where allowed, its owner).

Every failure is an :class:`~bayling_local.errors.OutputError`: one line, exit code 4.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .errors import OutputError

PathLike = Path | str

_protected: dict[tuple[int, int], str] = {}  # (st_dev, st_ino) of inputs -> as the user named it
_STREAM_PREFIXES = ("/dev/", "/proc/")


def describe_os_error(exc: OSError, path: PathLike) -> str:
    """A one-line, human explanation of why ``path`` could not be written."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device to write {path}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot write {path}: permission denied"
    if exc.errno == errno.EROFS:
        return f"cannot write {path}: the file system is read-only"
    if exc.errno == errno.ENOENT:
        return f"cannot write {path}: its directory does not exist"
    if exc.errno == errno.EISDIR:
        return f"cannot write {path}: it is a directory"
    if exc.errno == errno.ELOOP:
        return f"cannot write {path}: too many levels of symbolic links"
    if exc.errno == errno.ENOTDIR:
        return f"cannot write {path}: a part of the path is not a directory"
    if exc.errno == errno.ENAMETOOLONG:
        return f"cannot write {path}: the name is too long"
    return f"cannot write {path}: {exc.strerror or exc}"


def protect_input(path: PathLike) -> None:
    """Remember ``path`` as an input of this process: no output may replace it."""
    with contextlib.suppress(OSError):
        st = os.stat(Path(path).expanduser())
        if stat.S_ISREG(st.st_mode):
            _protected[(st.st_dev, st.st_ino)] = str(path)


@dataclass(frozen=True)
class _Plan:
    path: Path  # where to write: the real file (symlinks followed) or the stream's own path
    stream: bool  # write in place (FIFO, device, /dev/stdout) instead of replacing
    mode: int | None  # permission bits of the file being replaced; None for a new file
    owner: tuple[int, int] | None  # (uid, gid) of the file being replaced


def _inode_of(path: PathLike) -> tuple[int, int] | None:
    try:
        st = os.stat(Path(path).expanduser())
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def check_output(target: PathLike, *, inputs: Iterable[PathLike] = ()) -> None:
    """Fail now, before any work, if ``target`` cannot or must not be written."""
    plan = _plan(target, inputs)
    if plan.stream:
        return
    if plan.mode is not None and not os.access(plan.path, os.W_OK):
        raise OutputError(f"cannot write {target}: permission denied")
    if not os.access(plan.path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {target}: permission denied")


def _plan(target: PathLike, inputs: Iterable[PathLike] = ()) -> _Plan:
    given = Path(target).expanduser()
    if str(given) == "" or str(target) == "":
        raise OutputError("no output file name given")
    if str(given).startswith(_STREAM_PREFIXES):
        return _Plan(given, True, None, None)
    real = Path(os.path.realpath(given))
    if str(real).startswith(_STREAM_PREFIXES):
        return _Plan(given, True, None, None)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(describe_os_error(exc, target)) from None
    if st is None:
        parent = real.parent
        if not parent.is_dir():
            raise OutputError(f"cannot write {target}: its directory does not exist")
        return _Plan(real, False, None, None)
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {target}: it is a directory")
    if not stat.S_ISREG(st.st_mode):
        return _Plan(real, True, None, None)
    key = (st.st_dev, st.st_ino)
    named = {k: str(p) for p in inputs if (k := _inode_of(p)) is not None}
    source = named.get(key) or _protected.get(key)
    if source is not None:
        same = "" if Path(source).expanduser() == given else f" ({source})"
        raise OutputError(
            f"refusing to write {target}: it is the input file{same}; choose another output"
        )
    return _Plan(real, False, stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid))


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)  # no read-only query elsewhere; set and restore at once
    os.umask(current)
    return current


def new_file_mode() -> int:
    """The mode a new file gets under this process's umask (what ``open()`` would give)."""
    return 0o666 & ~_umask()


def _finish_mode(tmp: Path, plan: _Plan) -> None:
    os.chmod(tmp, plan.mode if plan.mode is not None else new_file_mode())
    if plan.owner is not None:
        st = os.stat(tmp)
        if (st.st_uid, st.st_gid) != plan.owner:
            with contextlib.suppress(OSError):  # only root may give a file away; keep going
                os.chown(tmp, *plan.owner)


@contextlib.contextmanager
def atomic_path(
    target: PathLike, *, suffix: str = ".part", inputs: Iterable[PathLike] = ()
) -> Iterator[Path]:
    """Yield a temporary path for the caller to write; it becomes ``target`` on success.

    For a regular file the temporary file is renamed over the (real) target; for a stream the
    bytes are copied into it. On any exception (KeyboardInterrupt too) the temporary file is
    removed and ``target`` is left as it was.
    """
    plan = _plan(target, inputs)
    directory = Path(tempfile.gettempdir()) if plan.stream else plan.path.parent
    name = plan.path.name or "output"
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name[:80]}.", suffix=suffix, dir=directory)
    except OSError as exc:
        raise OutputError(describe_os_error(exc, target)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if plan.stream:
            with open(tmp, "rb") as src, open(plan.path, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            _finish_mode(tmp, plan)
            os.replace(tmp, plan.path)
    except OSError as exc:
        raise OutputError(describe_os_error(exc, target)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def open_output(
    target: PathLike,
    mode: str = "w",
    encoding: str | None = "utf-8",
    *,
    inputs: Iterable[PathLike] = (),
) -> Iterator[IO]:
    """A handle whose content replaces ``target`` (atomically) or streams into it, when the
    ``with`` block ends without an error."""
    if "b" in mode:
        encoding = None
    plan = _plan(target, inputs)
    if plan.stream:
        try:
            with open(plan.path, mode, encoding=encoding) as handle:
                yield handle
        except OSError as exc:
            raise OutputError(describe_os_error(exc, target)) from None
        return
    with atomic_path(target, inputs=inputs) as tmp:
        try:
            with open(tmp, mode, encoding=encoding) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise OutputError(describe_os_error(exc, target)) from None


def write_text(target: PathLike, text: str, *, inputs: Iterable[PathLike] = ()) -> None:
    """Write ``text`` (UTF-8) to ``target`` under the rules of this module."""
    with open_output(target, "w", inputs=inputs) as handle:
        handle.write(text)


def write_bytes(target: PathLike, data: bytes, *, inputs: Iterable[PathLike] = ()) -> None:
    with open_output(target, "wb", inputs=inputs) as handle:
        handle.write(data)


# The names this module had when it was ``atomic.py``.
atomic_open = open_output
write_text_atomic = write_text
