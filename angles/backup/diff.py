"""Diffing a backup with a live table: a merge of two streams in primary-key order.

Both sides arrive sorted by primary key, so one pass with one row of each in hand
classifies every key, in constant memory, however large the table:

* ``insert``: in the backup, not in the table;
* ``update``: in both, some compared column differs;
* ``unchanged``: in both, equal;
* ``only_in_database``: in the table, not in the backup (reported, never deleted);
* ``newer_in_database``: differs, and the table's ``updated_at``-like column is later
  than the backup: today's work, skipped unless the restore overwrites newer rows.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from angles.backup import numbers
from angles.backup.format import canonical, parse_timestamp
from angles.core.connection import Row

__all__ = [
    "UPDATED_AT_COLUMNS",
    "Change",
    "Kind",
    "OutOfOrder",
    "merge",
    "sort_key",
    "whole_rows",
]

#: Columns that say when a row last changed, in order of preference.
UPDATED_AT_COLUMNS = ("updated_at", "modified_at", "last_modified", "updated", "last_edited_time")


class Kind(StrEnum):
    """What a restore would do with one primary key."""

    INSERT = "insert"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    ONLY_IN_DATABASE = "only_in_database"
    NEWER_IN_DATABASE = "newer_in_database"


@dataclass(frozen=True, slots=True)
class Change:
    """One key's verdict; ``row`` is the backup's row, ``columns`` those that differ."""

    kind: Kind
    key: tuple[Any, ...]
    row: Row | None = None
    columns: tuple[str, ...] = ()
    database_row: Row | None = None


class OutOfOrder(Exception):
    """A stream is not in primary-key order (``side`` is ``backup`` or ``database``)."""

    def __init__(self, side: str, key: tuple[Any, ...], previous: tuple[Any, ...]) -> None:
        duplicate = key == previous
        what = "repeats the key" if duplicate else "is out of primary-key order at"
        super().__init__(f"the {side} {what} {_show(key)} (after {_show(previous)})")
        self.side = side
        self.duplicate = duplicate


def sort_key(values: Sequence[Any]) -> tuple[tuple[int, Any], ...]:
    """A primary key made comparable across value types, in SQLite's order of types.

    Ranking the type first keeps a column that mixes integers and text (SQLite allows
    it) from breaking the comparison; within one type, Python's order is the database's
    (text by code point).
    """
    return tuple(_ranked(value) for value in values)


def _ranked(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool | int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, bytes):
        return (3, value)
    return (4, json.dumps(value, sort_keys=True))


def updated_at_column(columns: Iterable[str]) -> str | None:
    """The table's ``updated_at``-like column, if it has one."""
    present = set(columns)
    return next((c for c in UPDATED_AT_COLUMNS if c in present), None)


def whole_rows(
    backup: Iterable[Row], database: Iterable[Row], columns: Sequence[str]
) -> Iterator[Change]:
    """Classify the rows of a table without a primary key by whole-row comparison.

    A row is its values: it can be missing (``insert``), present (``unchanged``) or only
    in the table, never changed. Rows may repeat; each copy counts. The table's rows are
    held as digests (about 100 bytes a row), the backup's are streamed.
    """

    def digest(row: Row) -> bytes:
        return hashlib.blake2b(canonical({c: row.get(c) for c in columns}), digest_size=16).digest()

    present = Counter(digest(row) for row in database)
    for row in backup:
        key = tuple(row.get(c) for c in columns)
        found = digest(row)
        if present[found] > 0:
            present[found] -= 1
            yield Change(Kind.UNCHANGED, key, row)
        else:
            yield Change(Kind.INSERT, key, row)
    for _ in range(sum(present.values())):
        yield Change(Kind.ONLY_IN_DATABASE, ())


def merge(
    backup: Iterable[Row],
    database: Iterable[Row],
    primary_key: Sequence[str],
    columns: Sequence[str],
    *,
    updated_at: str | None = None,
    backup_time: datetime | None = None,
) -> Iterator[Change]:
    """Classify every key of two primary-key-ordered row streams.

    ``columns`` are the columns compared (those both sides have). Raises
    :class:`OutOfOrder` when a stream is not strictly ordered by key. The backup stream
    is always read to its end, so a reader that verifies after its last row does so.
    """
    key_of = _key_getter(primary_key)
    backup_rows = _ordered(backup, key_of, "backup")
    database_rows = _ordered(database, key_of, "database")
    b = next(backup_rows, None)
    d = next(database_rows, None)
    while b is not None or d is not None:
        if d is None or (b is not None and b[0] < d[0]):
            assert b is not None
            yield Change(Kind.INSERT, b[1], b[2])
            b = next(backup_rows, None)
        elif b is None or d[0] < b[0]:
            yield Change(Kind.ONLY_IN_DATABASE, d[1], database_row=d[2])
            d = next(database_rows, None)
        else:
            row, current = b[2], d[2]
            # Equal rows (the usual case) skip the column-by-column comparison.
            differ = (
                ()
                if row == current
                else tuple(c for c in columns if not same_value(row.get(c), current.get(c)))
            )
            if not differ:
                kind = Kind.UNCHANGED
            elif updated_at and _later(current.get(updated_at), backup_time):
                kind = Kind.NEWER_IN_DATABASE
            else:
                kind = Kind.UPDATE
            yield Change(kind, b[1], row, differ, current)
            b = next(backup_rows, None)
            d = next(database_rows, None)


def same_value(a: Any, b: Any) -> bool:
    """Whether a backup value and a live value are the same.

    By type as well as value: JSON ``true`` is not ``1``, nor ``1.0`` ``1``, nor ``null``
    a missing value. Two timestamps written differently (``+00:00`` and ``Z``, or other
    precision) are the same instant.
    """
    if type(a) is type(b) and a == b:
        # Containers equal by Python's rules may still hold a true where the other has 1.
        return not isinstance(a, dict | list) or numbers.dumps(a, sort_keys=True) == numbers.dumps(
            b, sort_keys=True
        )
    if isinstance(a, str) and isinstance(b, str) and len(a) > 10 and len(b) > 10:
        try:
            return parse_timestamp(a) == parse_timestamp(b)
        except ValueError:
            return False
    return False


def _later(value: Any, moment: datetime | None) -> bool:
    if moment is None or not isinstance(value, str):
        return False
    try:
        return parse_timestamp(value) > moment
    except ValueError:
        return False


def _key_getter(primary_key: Sequence[str]) -> Any:
    names = tuple(primary_key)
    if len(names) == 1:
        (name,) = names

        def single(row: Row) -> tuple[Any, ...]:
            return (row.get(name),)

        return single
    return lambda row: tuple(row.get(name) for name in names)


def _ordered(
    rows: Iterable[Row], key_of: Any, side: str
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...], Row]]:
    previous: tuple[Any, ...] | None = None
    previous_key: tuple[Any, ...] = ()
    for row in rows:
        key = key_of(row)
        ranked = sort_key(key)
        if previous is not None and ranked <= previous:
            raise OutOfOrder(side, key, previous_key)
        previous, previous_key = ranked, key
        yield ranked, key, row


def _show(key: tuple[Any, ...]) -> str:
    return repr(key[0]) if len(key) == 1 else repr(key)
