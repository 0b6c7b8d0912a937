"""Keeping secret values out of logs, reports, notifications and backups."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "***"
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSPHRASE|WEBHOOK", re.IGNORECASE)
# Values this short would redact ordinary words; real secrets are longer.
MIN_SECRET_LENGTH = 4


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says its value is a secret."""
    return bool(SECRET_NAME.search(name))


class Redactor:
    """Replaces every known secret value, wherever it appears in a string or structure."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Redact these values too (a secret read during the run, e.g. a key file)."""
        values = {s.strip() for s in secrets if isinstance(s, str)}
        values = {s for s in values if len(s) >= MIN_SECRET_LENGTH} - self._values
        if not values:
            return
        self._values |= values
        ordered = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, value: str) -> str:
        return self._pattern.sub(REDACTED, value) if self._pattern else value

    def __call__(self, value: Any) -> Any:
        """``value`` with secrets replaced, recursing into dicts, lists and tuples."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self(v) for v in value)
        if isinstance(value, BaseException):
            return self.text(str(value))
        return value
