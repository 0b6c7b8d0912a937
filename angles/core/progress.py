"""Progress of long operations (backups, dry runs, restores): the core reports, the
command line draws.

A :data:`ProgressFactory` is called with a label and the expected total (None when
unknown) and gives a context manager yielding ``advance(done)``, which takes the number
of items done so far.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

T = TypeVar("T")

Advance = Callable[[int], None]
ProgressFactory = Callable[[str, int | None], AbstractContextManager[Advance]]

#: Items between two calls of ``advance``: often enough for a person, rare enough to cost nothing.
STEP = 1000


@contextmanager
def no_progress(label: str, total: int | None) -> Iterator[Advance]:
    """The factory where nobody watches: nothing is drawn."""
    yield lambda done: None


def counted(items: Iterable[T], advance: Advance, step: int = STEP) -> Iterator[T]:
    """``items`` unchanged, calling ``advance`` every ``step`` items and at the end."""
    done = 0
    for done, item in enumerate(items, 1):
        yield item
        if done % step == 0:
            advance(done)
    advance(done)
