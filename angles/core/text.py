"""Text for people: errors on one line, excerpts of service answers, counted nouns."""

from __future__ import annotations

from angles.core.errors import AnglesError


def one_line(exc: BaseException) -> str:
    """An exception as one line: ``ValueError: bad value`` (an angles error: its message)."""
    text = str(exc).strip().splitlines()
    detail = text[0] if text else ""
    if isinstance(exc, AnglesError):
        return detail
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def excerpt(text: str, limit: int = 200) -> str:
    """The start of a text (a response body, a message) on one line, at most ``limit`` long."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def plural(count: int, word: str) -> str:
    """``1 backup``, ``2 backups``."""
    return f"{count} {word}{'' if count == 1 else 's'}"
