"""Durations written in the pipeline file (``30m``, ``6h``, ``1d``, ``2w``) and timestamps read from rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``6h`` → 6 hours. Raises ValueError for anything else."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30m, 6h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def format_seconds(seconds: float) -> str:
    """``900`` → ``15m``: the largest unit that says it exactly (``90s``, ``2h``)."""
    whole = round(seconds)
    if whole != seconds or whole <= 0:
        return f"{seconds:g}s"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def parse_timestamp(value: Any) -> datetime | None:
    """A row's timestamp value as an aware datetime (naive ones are taken as UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
