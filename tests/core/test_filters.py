"""PostgREST-syntax filters: parsing, SQL compilation and query parameters."""

from __future__ import annotations

import sqlite3

import pytest

from angles.core.filters import FilterSyntaxError, parse_filter


def quote(name: str) -> str:
    return '"' + name + '"'


@pytest.mark.parametrize(
    ("text", "sql", "params"),
    [
        ("notion_synced=is.false", '"notion_synced" IS FALSE', []),
        ("a=is.null", '"a" IS NULL', []),
        ("a=is.not_null", '"a" IS NOT NULL', []),
        ("a=not.is.null", 'NOT ("a" IS NULL)', []),
        ("n=gte.5&n=lt.10", '"n" >= ? AND "n" < ?', ["5", "10"]),
        ("s=neq.x y", '"s" <> ?', ["x y"]),
        ("s=like.*ab*", '"s" LIKE ?', ["%ab%"]),
        ('s=in.(a,"b,c",d)', '"s" IN (?, ?, ?)', ["a", "b,c", "d"]),
        ("s=in.()", '"s" IN (NULL)', []),
    ],
)
def test_to_sql(text, sql, params):
    assert parse_filter(text).to_sql(quote) == (sql, params)


def test_ilike_without_native_support_lowercases():
    sql, params = parse_filter("s=ilike.AB*").to_sql(quote, ilike=False)
    assert sql == 'lower("s") LIKE lower(?)' and params == ["AB%"]


@pytest.mark.parametrize(
    "text", ["notion_synced=is.false", 'a=in.(1,"x,y")', "a=not.eq.3", "a=like.%x%"]
)
def test_query_params_round_trip(text):
    parsed = parse_filter(text)
    rebuilt = "&".join(f"{column}={value}" for column, value in parsed.query_params())
    assert parse_filter(rebuilt).conditions == parsed.conditions


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the filter is empty"),
        ("notion_synced", "is not a filter"),
        ("1bad=eq.1", "is not a filter"),
        ("a=zz.1", "has no known operator"),
        ("a=eq", "has no known operator"),
        ("a=is.maybe", "is. takes null, not_null, true or false"),
        ("a=in.1,2", "in. takes a list in parentheses"),
    ],
)
def test_syntax_errors(text, message):
    with pytest.raises(FilterSyntaxError, match=message):
        parse_filter(text)


def test_the_compiled_sql_selects_the_right_rows_in_sqlite():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, synced BOOLEAN, name TEXT)")
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(1, 1, "Alpha"), (2, 0, "beta"), (3, 0, None), (4, 1, "alphabet")],
    )

    def ids(text):
        sql, params = parse_filter(text).to_sql(quote, ilike=False)
        return [row[0] for row in db.execute(f"SELECT id FROM t WHERE {sql} ORDER BY id", params)]

    assert ids("synced=is.false") == [2, 3]
    assert ids("synced=is.false&name=not.is.null") == [2]
    assert ids("name=ilike.alpha*") == [1, 4]
    assert ids("id=in.(1,3)") == [1, 3]
    assert ids("id=gt.2") == [3, 4]
