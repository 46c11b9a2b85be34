"""Errors the user can act on.

Every failure the CLI and the TUI show to a person is a :class:`BaylingError`: one line of
text and an exit code. Anything else escaping to the top level is a bug.
"""

from __future__ import annotations


class BaylingError(Exception):
    """A failure with a one-line message meant for the user."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class UsageError(BaylingError):
    """Bad arguments or input: unknown language, empty input, conflicting flags."""

    exit_code = 2


class ModelError(BaylingError):
    """A model that is missing, not a GGUF, truncated, or fails to load."""

    exit_code = 3


class InputError(UsageError):
    """Input text the tool cannot use (empty, binary, not UTF-8)."""


class OutputError(BaylingError):
    """An output that cannot be written (unwritable path, full disk)."""

    exit_code = 4


class PromptError(BaylingError):
    """A conversation that a prompt format cannot render."""

    exit_code = 2


class ContextOverflowError(BaylingError):
    """A prompt that does not fit in the model's context even after splitting."""

    exit_code = 5


class Cancelled(BaylingError):
    """The user interrupted the work (Ctrl-C); exit code 130 as shells expect."""

    exit_code = 130
