"""The old name of :mod:`bayling_local.output`; its names keep working for existing callers.

New code imports from :mod:`bayling_local.output`, the one writer of every file the project
writes (atomic regular files, symlinks written through, streams streamed, inputs protected).
"""

from __future__ import annotations

from .output import (
    atomic_open,
    atomic_path,
    describe_os_error,
    open_output,
    protect_input,
    write_text,
    write_text_atomic,
)

__all__ = [
    "atomic_open",
    "atomic_path",
    "describe_os_error",
    "open_output",
    "protect_input",
    "write_text",
    "write_text_atomic",
]
