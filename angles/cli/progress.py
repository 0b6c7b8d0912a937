"""The progress bar drawn on a terminal while a backup, dry run or restore runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from angles.core.progress import Advance


@contextmanager
def terminal_progress(label: str, total: int | None) -> Iterator[Advance]:
    """A rich progress bar on standard error, with the rate and the time left.

    Log lines written meanwhile are printed above the bar (rich redirects stderr), and
    the bar disappears when the work is done.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)
