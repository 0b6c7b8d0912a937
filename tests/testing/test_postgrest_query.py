"""The gateway's port of PostgREST's query-string grammar, against PostgREST's own examples.

The failing cases and their exact texts are the doctests of ``src/PostgREST/ApiRequest/
QueryParams.hs`` (v13.0.7, unchanged in v14): ``pFieldName``, ``pJsonPath``, ``pOpExpr``,
``pOrder``, ``pLogicTree`` and ``pRequestFilter``. PostgREST returns these texts to clients
as the ``message`` (source and position) and ``details`` of a PGRST100 error.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from angles.testing.parsec import show_char, show_string
from angles.testing.postgrest_query import (
    Field,
    Filter,
    Logic,
    OrderTerm,
    QueryParamError,
    parse_columns,
    parse_filter,
    parse_logic,
    parse_order,
    parse_tree_path,
)

FAILURES: list[tuple[Callable[[], object], str, str]] = [
    # (the call, the message, the details)
    (
        lambda: parse_filter("a.b", "noop.0"),
        '"failed to parse filter (noop.0)" (line 1, column 1)',
        'unexpected "o" expecting "not" or operator (eq, gt, ...)',
    ),
    (
        lambda: parse_filter("id", "val"),
        '"failed to parse filter (val)" (line 1, column 1)',
        'unexpected "v" expecting "not" or operator (eq, gt, ...)',
    ),
    (
        lambda: parse_filter("x", "fts().value"),
        '"failed to parse filter (fts().value)" (line 1, column 5)',
        'unexpected ")" expecting operator (eq, gt, ...)',
    ),
    (
        lambda: parse_filter("x", "eq().value"),
        '"failed to parse filter (eq().value)" (line 1, column 4)',
        'unexpected ")" expecting operator (eq, gt, ...)',
    ),
    (
        lambda: parse_filter("x", "is().value"),
        '"failed to parse filter (is().value)" (line 1, column 3)',
        'unexpected "(" expecting operator (eq, gt, ...)',
    ),
    (
        lambda: parse_filter("x", "in().value"),
        '"failed to parse filter (in().value)" (line 1, column 3)',
        'unexpected "(" expecting operator (eq, gt, ...)',
    ),
    (
        lambda: parse_columns(":"),
        '"failed to parse columns parameter (:)" (line 1, column 1)',
        'unexpected ":" expecting field name (* or [a..z0..9_$])',
    ),
    (
        lambda: parse_tree_path("x->>-78xy"),
        '"failed to parse tree path (x->>-78xy)" (line 1, column 8)',
        'unexpected \'x\' expecting digit, "->", "::", ".", "," or end of input',
    ),
    (
        lambda: parse_tree_path("x->>--34"),
        '"failed to parse tree path (x->>--34)" (line 1, column 6)',
        'unexpected "-" expecting digit',
    ),
    (
        lambda: parse_order("order", "clients(name,id)"),
        '"failed to parse order (clients(name,id))" (line 1, column 8)',
        'unexpected \'(\' expecting letter, digit, "-", "->>", "->", delimiter (.), "," '
        "or end of input",
    ),
    (
        lambda: parse_order("order", "id.ac"),
        '"failed to parse order (id.ac)" (line 1, column 4)',
        'unexpected "c" expecting "asc", "desc", "nullsfirst" or "nullslast"',
    ),
    (
        lambda: parse_order("order", "id.descc"),
        '"failed to parse order (id.descc)" (line 1, column 8)',
        "unexpected 'c' expecting delimiter (.), \",\" or end of input",
    ),
    (
        lambda: parse_order("order", "id.nullslasttt"),
        '"failed to parse order (id.nullslasttt)" (line 1, column 13)',
        "unexpected 't' expecting \",\" or end of input",
    ),
    (
        lambda: parse_order("order", "id.asc.nlsfst"),
        '"failed to parse order (id.asc.nlsfst)" (line 1, column 8)',
        'unexpected "l" expecting "nullsfirst" or "nullslast"',
    ),
    (
        lambda: parse_order("order", "id.asc.nullslasttt"),
        '"failed to parse order (id.asc.nullslasttt)" (line 1, column 17)',
        "unexpected 't' expecting \",\" or end of input",
    ),
    (
        lambda: parse_logic("or", "()"),
        '"failed to parse logic tree (())" (line 1, column 4)',
        'unexpected ")" expecting field name (* or [a..z0..9_$]), negation operator (not) or '
        "logic operator (and, or)",
    ),
    (
        lambda: parse_logic("or", "(id.in.1,2,id.eq.3)"),
        '"failed to parse logic tree ((id.in.1,2,id.eq.3))" (line 1, column 10)',
        'unexpected "1" expecting "("',
    ),
    (
        lambda: parse_logic("and", "(ord(id.eq.1,id.eq.1),id.eq.2)"),
        '"failed to parse logic tree ((ord(id.eq.1,id.eq.1),id.eq.2))" (line 1, column 7)',
        'unexpected "d" expecting "("',
    ),
    (
        lambda: parse_logic("or", "(id.eq.1,not.xor(id.eq.2,id.eq.3))"),
        '"failed to parse logic tree ((id.eq.1,not.xor(id.eq.2,id.eq.3)))" (line 1, column 16)',
        'unexpected "x" expecting logic operator (and, or)',
    ),
]


@pytest.mark.parametrize(("call", "message", "details"), FAILURES)
def test_parse_errors_are_postgrest_s_word_for_word(call, message, details):
    with pytest.raises(QueryParamError) as caught:
        call()
    assert (caught.value.message, caught.value.details) == (message, details)


def test_braces_keep_the_commas_of_an_array_literal_in_a_logic_tree():
    # pLogicSingleVal: a quoted value, else a {...} literal, else up to the next , or ).
    _, tree = parse_logic("or", '(tags.cs.{a,b},id.eq.3,tags.ov.{"x,y",z})')
    assert tree == Logic(
        "or",
        (
            Filter(Field("tags"), "cs", "{a,b}"),
            Filter(Field("id"), "eq", "3"),
            Filter(Field("tags"), "ov", '{"x,y",z}'),
        ),
    )
    # Quotes still win, and a nested tree keeps its own braces.
    _, nested = parse_logic("not.and", '(name.eq."a,b",or(tags.cd.{a},id.is.NULL))')
    assert nested == Logic(
        "and",
        (
            Filter(Field("name"), "eq", "a,b"),
            Logic("or", (Filter(Field("tags"), "cd", "{a}"), Filter(Field("id"), "is", "null"))),
        ),
        negated=True,
    )
    # Outside a logic tree the value is the rest of the text, commas and all.
    assert parse_filter("tags", "cs.{a,b}")[1].operand == "{a,b}"


def test_a_brace_literal_must_end_the_value():
    with pytest.raises(QueryParamError) as caught:
        parse_logic("or", "(tags.cs.{a,b}x,id.eq.3)")
    assert caught.value.message.endswith("(line 1, column 17)")  # counted in "or(tags..."
    assert caught.value.details == 'unexpected "x" expecting "," or ")"'


def test_what_parses():
    assert parse_filter("data->a->>0", "not.eq(any).{1,2}") == (
        (),
        Filter(Field("data", (("->", "a"), ("->>", 0))), "eq", "{1,2}", True, "any"),
    )
    assert parse_filter("doc", "fts(english).cat")[1] == Filter(
        Field("doc"), "fts", "cat", False, "english"
    )
    assert parse_filter("name", 'in.("a,b",c,"d\\"e")')[1].operand == ("a,b", "c", 'd"e')
    assert parse_filter("clients.id", "eq.1")[0] == ("clients",)
    assert parse_logic("clients.not.or", "(a.eq.1)")[0] == ("clients",)
    assert parse_order("order", "name.desc.nullslast, id")[1] == [
        OrderTerm(Field("name"), "desc", "nullslast"),
        OrderTerm(Field("id")),
    ]
    assert parse_columns('"id", "a b",c-d') == ["id", "a b", "c-d"]


def test_haskell_show():
    assert show_string('a"b\\c') == '"a\\"b\\\\c"'
    assert show_string("é1") == '"\\233\\&1"'
    assert show_string("\n\x0eH") == '"\\n\\SO\\&H"'
    assert show_char("'") == "'\\''"
    assert show_char('"') == "'\"'"
