"""Progress bars for long work, on stderr, and only when stderr is a terminal.

Output meant for pipes stays clean: when stderr is not a terminal (or ``quiet`` is set) the
bar is a no-op and nothing is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Progress:
    """A single task's progress: ``advance`` it, ``update`` its total or description."""

    _bar: Any = None
    _task: Any = None
    completed: float = field(default=0.0)

    def advance(self, amount: float = 1.0) -> None:
        self.completed += amount
        if self._bar is not None:
            self._bar.advance(self._task, amount)

    def update(self, *, total: float | None = None, description: str | None = None) -> None:
        if self._bar is not None:
            kwargs: dict[str, Any] = {}
            if total is not None:
                kwargs["total"] = total
            if description is not None:
                kwargs["description"] = description
            self._bar.update(self._task, **kwargs)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress(
    description: str, total: float | None = None, *, unit: str = "", quiet: bool = False
) -> Iterator[Progress]:
    """A rich progress bar on stderr, shown only where a person watches it."""
    if quiet or not stderr_is_terminal():
        yield Progress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as RichProgress

    columns: list[Any] = [TextColumn("[progress.description]{task.description}"), BarColumn()]
    if unit == "bytes":
        columns += [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns.append(MofNCompleteColumn())
    columns.append(TimeRemainingColumn())
    with RichProgress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield Progress(bar, task)
