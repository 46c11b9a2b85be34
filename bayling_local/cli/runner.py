"""Running a click group as a console script: the one place errors become exit codes.

A :class:`~bayling_local.errors.BaylingError` becomes one line on stderr and its exit code,
Ctrl-C becomes exit code 130, and a closed pipe (``| head``) ends quietly. Both console scripts,
``bayling-local`` and ``bayling-train``, run through :func:`invoke`.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import BaylingError, Cancelled


def fail(prog: str, message: str, code: int) -> int:
    """Print one error line on stderr and return the exit code."""
    click.echo(f"{prog}: error: {message}", err=True)
    return code


def invoke(group: click.Group, prog: str, argv: list[str] | None = None) -> int:
    """Run ``group`` with ``argv`` and return the exit code; no traceback reaches the user."""
    try:
        group.main(args=argv, prog_name=prog, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        return fail(prog, "interrupted", Cancelled.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        return fail(prog, exc.format_message(), exc.exit_code)
    except BaylingError as exc:
        return fail(prog, exc.message, exc.exit_code)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return 0
