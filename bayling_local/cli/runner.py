"""Running a click group as a console script: the one place errors become exit codes.

A :class:`~bayling_local.errors.BaylingError` becomes one line on stderr and its exit code,
Ctrl-C becomes exit code 130, a closed pipe (``| head``) ends quietly with 141 (as a shell
reports SIGPIPE), a full or failing stdout (``> /dev/full``) is one line and exit code 4, and
an argument that is not valid UTF-8 is named. Anything else is a bug: one line that says so
(``BAYLING_LOCAL_DEBUG=1`` shows the traceback). Both console scripts, ``bayling-local`` and
``bayling-train``, run through :func:`invoke`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import traceback

import click

from ..errors import BaylingError, Cancelled

EXIT_OUTPUT = 4
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `... | head`
EXIT_BUG = 1
DEBUG_ENV = "BAYLING_LOCAL_DEBUG"


def _write_err(line: str) -> None:
    """One line on stderr, even when it holds undecodable bytes from argv (surrogates)."""
    data = (line + "\n").encode("utf-8", "surrogateescape")
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
        sys.stderr.buffer.write(data)
        sys.stderr.flush()
        return
    with contextlib.suppress(OSError, ValueError):
        os.write(2, data)


def fail(prog: str, message: str, code: int) -> int:
    """Print one error line on stderr and return the exit code."""
    _write_err(f"{prog}: error: {' '.join(message.splitlines()) or 'failed'}")
    return code


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's last flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _undecodable_argument(argv: list[str]) -> int | None:
    """The 1-based position of the first argument holding bytes that are not UTF-8."""
    for number, arg in enumerate(argv, 1):
        if any("\udc80" <= ch <= "\udcff" for ch in arg):
            return number
    return None


def invoke(group: click.Group, prog: str, argv: list[str] | None = None) -> int:
    """Run ``group`` with ``argv`` and return the exit code; no traceback reaches the user."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        _run(group, prog, args)
        sys.stdout.flush()  # a full stdout shows here, not in the interpreter's last flush
    except (click.exceptions.Abort, KeyboardInterrupt):
        return fail(prog, "interrupted", Cancelled.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        return fail(prog, exc.format_message(), exc.exit_code)
    except BaylingError as exc:
        return fail(prog, exc.message, exc.exit_code)
    except UnicodeError as exc:
        position = _undecodable_argument(args)
        if position is not None:
            return fail(
                prog, f"argument {position} is not valid UTF-8 text: {args[position - 1]}", 2
            )
        return _bug(prog, exc)
    except RecursionError:
        return fail(prog, "the input is nested too deeply to process", 2)
    except MemoryError:
        return fail(prog, "out of memory", 1)
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            _silence_stdout()
            return fail(prog, "cannot write the output: no space left on the device", EXIT_OUTPUT)
        if exc.errno == errno.EIO:
            _silence_stdout()
            return fail(prog, "cannot write the output: input/output error", EXIT_OUTPUT)
        return _bug(prog, exc)
    except Exception as exc:  # a bug: one line, the traceback only when asked for
        return _bug(prog, exc)
    return 0


def _run(group: click.Group, prog: str, args: list[str]) -> None:
    """What ``group.main(standalone_mode=False)`` does, minus its own handling of Ctrl-C (an
    extra blank line on stderr) and of a closed pipe (exit 1): those are decided here."""
    complete = getattr(group, "_main_shell_completion", None)
    if complete is not None:  # `_BAYLING_LOCAL_COMPLETE=bash_source bayling-local` and friends
        complete({}, prog)
    with group.make_context(prog, args) as ctx:
        group.invoke(ctx)


def _bug(prog: str, exc: BaseException) -> int:
    if os.environ.get(DEBUG_ENV):
        traceback.print_exception(exc)
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return fail(
        prog,
        f"unexpected internal error ({type(exc).__name__}{': ' + detail if detail else ''}); "
        f"please report it (run with {DEBUG_ENV}=1 to see where)",
        EXIT_BUG,
    )
