"""Comparing a table's values with Notion's property values by what they mean.

A sync writes ``NULL`` where Notion shows an empty rich text, ``1`` where Notion shows a
ticked checkbox, a ``timestamptz`` where Notion holds an ISO string with an offset: the
raw shapes differ while the values agree. :func:`page_value` reduces a Notion property
value to a plain comparable value, and :func:`same` tells whether a column's value means
the same. Long texts are kept as a digest, so an index of many pages stays small.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

#: Notion property types whose values are compared as text.
TEXT_TYPES = frozenset({"title", "rich_text", "url", "email", "phone_number"})
#: Property types notion_sync can compare, and the kind of value each holds.
COMPARABLE_TYPES = frozenset(
    {*TEXT_TYPES, "select", "status", "multi_select", "number", "date", "checkbox"}
)
#: Texts longer than this are kept as a digest rather than whole.
LONG_TEXT = 64
_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off", ""})


class Digest(bytes):
    """The digest of a long text (told apart from a short text that looks like one)."""


def page_value(kind: str, prop: Mapping[str, Any] | None) -> Any:
    """The meaning of a Notion property value of type ``kind``, ready for :func:`same`."""
    raw = (prop or {}).get(kind)
    if kind in ("title", "rich_text"):
        text = "".join(str(i.get("plain_text", "")) for i in raw or () if isinstance(i, Mapping))
        return _text(text)
    if kind in TEXT_TYPES:
        return _text(raw)
    if kind in ("select", "status"):
        return _text(raw.get("name") if isinstance(raw, Mapping) else None)
    if kind == "multi_select":
        return frozenset(str(o.get("name")) for o in raw or () if isinstance(o, Mapping))
    if kind == "number":
        return _number(raw)
    if kind == "checkbox":
        return bool(raw)
    if kind == "date":
        if not isinstance(raw, Mapping) or not raw.get("start"):
            return None
        return _moment(raw["start"], raw.get("time_zone"))
    raise ValueError(f"cannot compare a {kind} property")


def same(kind: str, notion: Any, column: Any) -> bool:
    """Whether a column's value means what :func:`page_value` found in Notion."""
    if kind in TEXT_TYPES or kind in ("select", "status"):
        return _text(column) == notion
    if kind == "multi_select":
        return _names(column) == notion
    if kind == "number":
        return _number(column) == notion
    if kind == "checkbox":
        return _flag(column) == notion
    if kind == "date":
        mine = _moment(column) if column is not None and column != "" else None
        if mine is None or notion is None:
            return mine is notion
        if isinstance(mine, datetime) and isinstance(notion, datetime):
            return mine == notion
        # A date against a date and time: the calendar day (where that time was) is
        # what both can say.
        return _day(mine) == _day(notion)
    raise ValueError(f"cannot compare a {kind} property")


def _text(value: Any) -> str | Digest:
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n")
    if len(text) > LONG_TEXT:
        return Digest(hashlib.blake2b(text.encode(), digest_size=16).digest())
    return text


def _names(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
        except ValueError:
            value = value.split(",")
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(v).strip() for v in value if str(v).strip())
    return frozenset({str(value)})


def _number(value: Any) -> Decimal | str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return Decimal(int(value))
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)  # not a number: only the same text matches
    return number if number.is_finite() else str(value)


def _flag(value: Any) -> bool | str:
    if value is None:
        return False  # Notion has no empty checkbox: unticked
    if isinstance(value, bool | int):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    return False if text in _FALSE else text


def _moment(value: Any, time_zone: str | None = None) -> date | datetime | str:
    """A date, an aware date and time (to the millisecond, in its own offset), or the
    text as it was."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return value
    else:
        text = str(value).strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            moment = datetime.fromisoformat(text.replace(" ", "T", 1))
        except ValueError:
            return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(time_zone))
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _zone(name: str | None) -> Any:
    if not name:
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _day(value: date | datetime | str) -> date | str:
    return value.date() if isinstance(value, datetime) else value
