"""The checks a backup file's rows must pass before anything restores them.

``backups verify``, the restore's dry run and the live restore (before its pre-restore
backup) all judge a file with :class:`RowChecker`, so a file that verifies is one the
restore accepts. The checker wraps the row stream and keeps only the previous key, so
memory stays flat: rows are written in key order, so a repeated key is two equal
consecutive keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from angles.core.connection import Row

__all__ = ["FileProblem", "RowChecker"]

#: Problems kept (and shown) per file; the count goes on.
MAX_SHOWN = 10

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^(\d{4,}-\d{2}-\d{2}( BC)?|infinity|-infinity)$")
_INTEGER_TYPES = ("smallint", "integer", "bigint", "int", "int2", "int4", "int8", "serial")
_FLOAT_SPECIALS = ("NaN", "Infinity", "-Infinity", "-0")


@dataclass(frozen=True)
class FileProblem:
    """One problem of one row: where it is and what to do about it."""

    file: str
    row: int
    column: str | None
    problem: str
    fix: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column else "")
        return f"{self.file} {where}: {self.problem} ({self.fix})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "problem": self.problem,
            "fix": self.fix,
        }


@dataclass
class RowChecker:
    """Checks rows as they stream past: repeated or null keys, keys not of their
    declared type, and columns the metadata does not declare.

    ``columns`` is the metadata's ``columns`` (None for files of the older system, whose
    rows are then only checked for null and repeated keys).
    """

    file: str
    primary_key: tuple[str, ...]
    columns: Mapping[str, str] | None
    problems: list[FileProblem] = field(default_factory=list)
    count: int = 0
    _previous: tuple[Any, ...] | None = None

    def check(self, rows: Iterator[Row]) -> Iterator[Row]:
        """Yield ``rows`` unchanged, recording each problem found."""
        for number, row in enumerate(rows, 1):
            self._row(number, row)
            yield row

    def summary(self) -> str:
        """The problems as one message (the first few, and how many there are)."""
        shown = "; ".join(str(p) for p in self.problems[:MAX_SHOWN])
        more = self.count - min(self.count, MAX_SHOWN)
        return shown + (f"; and {more} more" if more else "")

    def _add(self, row: int, column: str | None, problem: str, fix: str) -> None:
        self.count += 1
        if len(self.problems) < MAX_SHOWN:
            self.problems.append(FileProblem(self.file, row, column, problem, fix))

    def _row(self, number: int, row: Row) -> None:
        if self.columns is not None:
            for column in row:
                if column not in self.columns:
                    self._add(
                        number,
                        column,
                        "the row has a column the metadata does not declare, "
                        "so a restore would drop its value",
                        "add the column to metadata.columns (and fix the checksum), "
                        "or restore another backup",
                    )
        if not self.primary_key:
            return
        key = tuple(row.get(c) for c in self.primary_key)
        for column, value in zip(self.primary_key, key, strict=True):
            if value is None:
                self._add(
                    number,
                    column,
                    "the primary key is null (or missing)",
                    "a row cannot be restored without its key: restore another backup",
                )
            elif self.columns is not None and not _fits(value, self.columns.get(column)):
                self._add(
                    number,
                    column,
                    f"the key {value!r} is not of the declared type {self.columns[column]}",
                    "correct the value in the file, or restore another backup",
                )
        if self._previous is not None and key == self._previous:
            shown = key[0] if len(key) == 1 else key
            self._add(
                number,
                None,
                f"the primary key {shown!r} repeats the previous row's",
                "remove the repeated row (keep the one to restore), or restore another backup",
            )
        self._previous = key


def _fits(value: Any, declared: str | None) -> bool:
    """Whether a key value (as JSON gives it) can be of the column's declared type.

    Only types whose JSON form is unambiguous are judged; any other type passes.
    """
    if declared is None:
        return True
    kind = declared.lower().split("(")[0].strip()
    if kind.endswith("[]"):
        return isinstance(value, list)
    if isinstance(value, bool):
        return kind in ("boolean", "bool")
    if kind in _INTEGER_TYPES or kind.endswith("serial"):
        return isinstance(value, int) or (isinstance(value, str) and _is_integer(value))
    if kind in ("real", "double precision", "float4", "float8", "numeric", "decimal"):
        return isinstance(value, int | float) or (
            isinstance(value, str) and (value in _FLOAT_SPECIALS or _is_number(value))
        )
    if kind == "uuid":
        return isinstance(value, str) and bool(_UUID.match(value))
    if kind == "date":
        return isinstance(value, str) and bool(_DATE.match(value))
    if kind in ("text", "character varying", "varchar", "character", "char", "citext"):
        return isinstance(value, str)
    if kind.startswith("timestamp") or kind.startswith("time"):
        return isinstance(value, str)
    return True


def _is_integer(text: str) -> bool:
    # Large integers may be written as text to keep every digit.
    return bool(re.fullmatch(r"-?\d+", text))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
