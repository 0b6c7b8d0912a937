"""Numbers that keep every digit through JSON."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from angles.backup.numbers import dumps, exact_number, jsonable, loads, number_from_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.50", 12.5),
        ("0.30000000000000004", 0.30000000000000004),
        ("1e-7", 1e-7),
        ("12345678901234567.891", Decimal("12345678901234567.891")),
        ("-0.000000000000000000123456789012345678", Decimal("-1.23456789012345678E-19")),
        ("1e400", Decimal("1E+400")),
    ],
)
def test_exact_number(text, expected):
    value = exact_number(text)
    assert value == expected and type(value) is type(expected)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_stays_a_float(value):
    assert exact_number(repr(value)) == value and type(exact_number(repr(value))) is float


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimals_round_trip_with_every_digit(number):
    loaded = loads(dumps({"n": number}))["n"]
    assert Decimal(str(loaded)) == number  # a float only where it keeps the value


def test_dumps_writes_decimals_as_numbers_with_every_digit():
    row = {"b": Decimal("12345678901234567.891"), "a": [Decimal("1E+400")], "c": "\x000\x00"}
    text = dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert text == '{"a":[1E+400],"b":12345678901234567.891,"c":"\\u00000\\u0000"}'
    assert json.loads(text)["c"] == "\x000\x00"


def test_dumps_without_decimals_is_json_dumps():
    with pytest.raises(TypeError):
        dumps({"a": object()})
    assert dumps({"a": 1.5}) == json.dumps({"a": 1.5})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", 5),
        ("12.50", 12.5),
        ("123456789012345678.9", Decimal("123456789012345678.9")),
        ("NaN", "NaN"),
    ],
)
def test_number_from_text(text, expected):
    value = number_from_text(text)
    assert value == expected and type(value) is type(expected)


def test_jsonable():
    assert jsonable(Decimal("123456789012345678.9")) == "123456789012345678.9"
    assert jsonable({"k": [Decimal("1.5")]}) == {"k": [1.5]}
    assert jsonable("x") == "x"
