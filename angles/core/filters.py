"""Row filters written in PostgREST syntax, usable on every kind of database.

Users write filters the way Supabase's REST API takes them (``notion_synced=is.false``,
several joined with ``&``). A :class:`Filter` passes straight through to PostgREST and
compiles to a SQL ``WHERE`` clause for SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Condition", "Filter", "FilterSyntaxError", "parse_filter"]

_COMPARISONS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_PATTERNS = {"like": "LIKE", "ilike": "ILIKE"}
_IS_VALUES = {"null": None, "true": True, "false": False, "not_null": "not_null"}
OPERATORS = (*_COMPARISONS, *_PATTERNS, "in", "is")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class FilterSyntaxError(ValueError):
    """A filter that does not follow the PostgREST syntax; the message says why."""


@dataclass(frozen=True)
class Condition:
    """One ``column=[not.]operator.value`` term."""

    column: str
    operator: str
    value: Any
    negated: bool = False

    def query_value(self) -> str:
        """The right-hand side as PostgREST takes it in a query string."""
        if self.operator == "in":
            inner = ",".join(_quote_in(v) for v in self.value)
            text = f"in.({inner})"
        elif self.operator == "is":
            text = "is." + {None: "null", True: "true", False: "false"}.get(self.value, "not_null")
        else:
            text = f"{self.operator}.{self.value}"
        return f"not.{text}" if self.negated else text


@dataclass(frozen=True)
class Filter:
    """A conjunction of conditions, as parsed from the text the user wrote."""

    text: str
    conditions: tuple[Condition, ...]

    def query_params(self) -> list[tuple[str, str]]:
        """The filter as PostgREST query parameters."""
        return [(c.column, c.query_value()) for c in self.conditions]

    def to_sql(
        self, quote: Callable[[str], str], placeholder: str = "?", *, ilike: bool = True
    ) -> tuple[str, list[Any]]:
        """A SQL condition and its parameters.

        ``quote`` quotes an identifier; ``placeholder`` is the driver's parameter marker;
        without native ILIKE (SQLite) it becomes a LIKE on lower-cased values.
        """
        parts: list[str] = []
        params: list[Any] = []
        for c in self.conditions:
            column = quote(c.column)
            if c.operator in _COMPARISONS:
                sql = f"{column} {_COMPARISONS[c.operator]} {placeholder}"
                params.append(c.value)
            elif c.operator in _PATTERNS:
                pattern = c.value.replace("*", "%")
                if c.operator == "ilike" and not ilike:
                    sql = f"lower({column}) LIKE lower({placeholder})"
                else:
                    sql = f"{column} {_PATTERNS[c.operator]} {placeholder}"
                params.append(pattern)
            elif c.operator == "in":
                marks = ", ".join([placeholder] * len(c.value)) or "NULL"
                sql = f"{column} IN ({marks})"
                params.extend(c.value)
            elif c.value == "not_null":
                sql = f"{column} IS NOT NULL"
            else:
                keyword = {None: "NULL", True: "TRUE", False: "FALSE"}[c.value]
                sql = f"{column} IS {keyword}"
            parts.append(f"NOT ({sql})" if c.negated else sql)
        return " AND ".join(parts) or "TRUE", params


def parse_filter(text: str) -> Filter:
    """Parse ``column=[not.]op.value`` terms joined by ``&``.

    Raises :class:`FilterSyntaxError` naming the term at fault.
    """
    conditions = []
    for term in (t.strip() for t in text.split("&")):
        if not term:
            continue
        column, sep, rhs = term.partition("=")
        column = column.strip()
        if not sep or not _COLUMN.match(column):
            raise FilterSyntaxError(
                f"{term!r} is not a filter: write column=operator.value, e.g. notion_synced=is.false"
            )
        negated = rhs.startswith("not.")
        if negated:
            rhs = rhs[4:]
        operator, dot, value = rhs.partition(".")
        if not dot or operator not in OPERATORS:
            raise FilterSyntaxError(
                f"{term!r} has no known operator: use one of {', '.join(OPERATORS)}"
            )
        conditions.append(Condition(column, operator, _parse_value(term, operator, value), negated))
    if not conditions:
        raise FilterSyntaxError("the filter is empty")
    return Filter(text, tuple(conditions))


def _parse_value(term: str, operator: str, value: str) -> Any:
    if operator == "is":
        if value not in _IS_VALUES:
            raise FilterSyntaxError(f"{term!r}: is. takes null, not_null, true or false")
        return _IS_VALUES[value]
    if operator == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise FilterSyntaxError(f"{term!r}: in. takes a list in parentheses, e.g. in.(a,b)")
        return _split_in(value[1:-1])
    return value


def _split_in(inner: str) -> list[str]:
    """Split the inside of ``in.(...)``, where double quotes protect commas."""
    values, current, quoted, escaped = [], [], False, False
    for char in inner:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    if current or values:
        values.append("".join(current))
    return values


def _quote_in(value: str) -> str:
    if any(ch in value for ch in ',.:()" '):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value
