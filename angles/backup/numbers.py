"""Numbers that keep every digit.

PostgreSQL's ``numeric`` holds more digits than a float. JSON carries them as written,
but Python's ``json`` reads every number with a fraction as a float, which would round
a backup of ``12345678901234567.891``. Here a number becomes a float when the float keeps
its value (the usual case, and the fast one) and a :class:`~decimal.Decimal` otherwise;
:func:`dumps` writes a Decimal back with all its digits.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from decimal import Decimal
from typing import Any

#: PostgreSQL types (base types, as ``format_type`` names them) whose JSON form is exact:
#: integers, booleans, strings that are their text output, and dates and times in JSON's
#: ISO spelling, which PostgreSQL reads back. Values of every other type (numeric, floats,
#: json, jsonb, arrays, xml…) are carried as their text output: see
#: :attr:`angles.TableSchema.text_columns`. Enums and other string types are strings too.
JSON_TYPES = frozenset(
    {
        "smallint",
        "integer",
        "bigint",
        "boolean",
        "text",
        "character varying",
        "character",
        '"char"',
        "name",
        "uuid",
        "date",
        "timestamp without time zone",
        "timestamp with time zone",
        "time without time zone",
        "time with time zone",
    }
)
# Up to 15 significant decimal digits always survive a float (DBL_DIG).
FLOAT_DIGITS = 15
_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def exact_number(text: str) -> float | Decimal:
    """A JSON number with a fraction or exponent, as a float when that loses nothing."""
    value = float(text)
    mantissa = text.lower().partition("e")[0].lstrip("+-").replace(".", "")
    if len(mantissa.strip("0")) <= FLOAT_DIGITS and math.isfinite(value):
        return value
    exact = Decimal(text)
    return value if Decimal(repr(value)) == exact else exact


def number_from_text(text: str) -> int | float | Decimal | str:
    """A number written as text (PostgreSQL's ``numeric::text``), typed as JSON would be.

    Integers stay integers; ``NaN`` and other words stay text.
    """
    if not _JSON_NUMBER.fullmatch(text):
        return text
    try:
        return int(text)
    except ValueError:
        return exact_number(text)


def jsonable(value: Any) -> Any:
    """``value`` for a JSON encoder that knows no Decimal (a client library's).

    A Decimal in a column becomes its text, which PostgreSQL reads back as the same
    number; one nested in a JSON value becomes the nearest float.
    """
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict | list) and _has_decimal(value):
        return loads(json.dumps(value, default=float))
    return value


def loads(text: str | bytes) -> Any:
    """``json.loads``, with numbers read by :func:`exact_number`."""
    return _DECODER.decode(text.decode() if isinstance(text, bytes) else text)


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` that also writes Decimals, as JSON numbers with every digit."""
    try:
        return json.dumps(value, **options)
    except TypeError:
        if not _has_decimal(value):
            raise
    # Decimals become placeholders that no string holds, swapped after encoding.
    nonce = secrets.token_hex(8)
    numbers: list[str] = []

    def mark(item: Any) -> Any:
        if isinstance(item, Decimal):
            numbers.append(_number_text(item))
            return f"\x00{nonce}:{len(numbers) - 1}\x00"
        if isinstance(item, dict):
            return {key: mark(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [mark(inner) for inner in item]
        return item

    text = json.dumps(mark(value), **options)
    for index, number in enumerate(numbers):
        text = text.replace(f'"\\u0000{nonce}:{index}\\u0000"', number, 1)
    return text


# One decoder for every call: json.loads with options builds a new decoder on each.
_DECODER = json.JSONDecoder(parse_float=exact_number)


def _has_decimal(value: Any) -> bool:
    if isinstance(value, Decimal):
        return True
    if isinstance(value, dict):
        return any(_has_decimal(inner) for inner in value.values())
    if isinstance(value, list | tuple):
        return any(_has_decimal(inner) for inner in value)
    return False


def _number_text(number: Decimal) -> str:
    if not number.is_finite():
        raise ValueError(f"{number} cannot be written as JSON")
    return str(number)
