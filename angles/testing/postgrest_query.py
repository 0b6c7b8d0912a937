"""PostgREST's query-string grammar, ported from ``src/PostgREST/ApiRequest/QueryParams.hs``.

Filters (``col=op.value``), logic trees (``or=(a.eq.1,and(b.gt.2,c.is.null))``), ``order``,
``columns`` and ``on_conflict`` are parsed by the same Parsec grammar as PostgREST v13/v14
(``pOpExpr``, ``pLogicTree``, ``pLogicSingleVal``, ``pListVal``, ``pOrder``, ``pTreePath``,
``pFieldName``, ``pJsonPath``), so values parse the same way (braces keep the commas of an
array literal inside ``or=(...)``, quotes and backslashes work as in PostgREST) and bad
syntax gets PostgREST's PGRST100 message and details, character for character.

Selecting (``select=``) is parsed by the server module, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from angles.testing import parsec as p

__all__ = [
    "Field",
    "Filter",
    "Logic",
    "OrderTerm",
    "QueryParamError",
    "parse_columns",
    "parse_filter",
    "parse_logic",
    "parse_order",
    "parse_tree_path",
]


class QueryParamError(Exception):
    """``QPError``: the PGRST100 message (source and position) and details."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Field:
    """A column and its JSON path: ``(("->", "a"), ("->>", 0))``; an index is an int."""

    name: str
    json_path: tuple[tuple[str, str | int], ...] = ()


@dataclass(frozen=True)
class Filter:
    """``field=[not.]operator[(modifier)].operand``.

    ``operator`` is PostgREST's name (``eq``, ``in``, ``is``, ``fts``...); ``operand`` is a
    tuple for ``in``; ``modifier`` is ``any``/``all`` for quantified comparisons or the
    language of a full-text search.
    """

    field: Field
    operator: str
    operand: str | tuple[str, ...]
    negated: bool = False
    modifier: str | None = None


@dataclass(frozen=True)
class Logic:
    """``[not.]and(...)`` / ``[not.]or(...)`` over filters and nested trees."""

    operator: str
    children: tuple[Filter | Logic, ...]
    negated: bool = False


@dataclass(frozen=True)
class OrderTerm:
    """``field[.asc|.desc][.nullsfirst|.nullslast]``; ``relation`` for ``rel(field)``."""

    field: Field
    direction: str | None = None
    nulls: str | None = None
    relation: str | None = field(default=None)


# -- the grammar (names follow QueryParams.hs) ---------------------------------------------

_ws = p.many(p.one_of(" \t"))


def _lexeme(parser: p.Parser) -> p.Parser:
    return p.keep_left(p.keep_right(_ws, parser), _ws)


def _joined(parser: p.Parser) -> p.Parser:
    return p.fmap("".join, parser)


_delimiter = p.label(p.char("."), "delimiter (.)")
_quoted_value = _joined(
    p.between(
        p.char('"'),
        p.char('"'),
        p.many(p.alt(p.none_of('\\"'), p.keep_right(p.char("\\"), p.any_char))),
    )
)
_dash = p.fmap(
    lambda _: "-",
    p.try_(p.keep_left(p.char("-"), p.not_followed_by(p.char(">"), p.show_char))),
)


def _sep_by_dash(identifier: p.Parser) -> p.Parser:
    return p.fmap("-".join, p.sep_by1(identifier, _dash))


_identifier = p.fmap(
    lambda chars: "".join(chars).strip(),
    p.many1(p.alt(p.letter, p.digit, p.one_of("_ $"))),
)
_field_name = p.label(
    p.alt(_quoted_value, _sep_by_dash(_identifier)), "field name (* or [a..z0..9_$])"
)


def _lookahead_string(text: str) -> p.Parser:
    return p.try_(p.look_ahead(p.string(text)))


_json_end = p.alt(
    _lookahead_string("->"),
    _lookahead_string("::"),
    _lookahead_string("."),
    _lookahead_string(","),
    p.try_(p.eof),
)
_json_index = p.keep_left(
    p.fmap(
        lambda v: int(v[0] + "".join(v[1])), p.seq(p.option("+", p.char("-")), p.many1(p.digit))
    ),
    _json_end,
)
_json_key_identifier = p.fmap(lambda chars: "".join(chars).strip(), p.many1(p.none_of("(-:.,>)")))
_json_key = p.label(
    p.alt(_quoted_value, _sep_by_dash(_json_key_identifier)),
    "any non reserved character different from: .,>()",
)
_json_arrow = p.alt(p.try_(p.string("->>")), p.try_(p.string("->")))
_json_path = p.fmap(
    tuple, p.many(p.seq(_json_arrow, p.alt(p.try_(_json_index), p.try_(_json_key))))
)
_field = _lexeme(p.fmap(lambda v: Field(v[0], v[1]), p.seq(_field_name, p.option((), _json_path))))
_tree_path = p.fmap(
    lambda v: (tuple(v[0][:-1]), Field(v[0][-1], v[1])),
    p.seq(p.sep_by1(_field_name, _delimiter), p.option((), _json_path)),
)

_SIMPLE_OPERATORS = ("neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj")
_QUANT_OPERATORS = ("eq", "gte", "gt", "lte", "lt", "like", "ilike", "match", "imatch")
_FTS_OPERATORS = ("fts", "plfts", "phfts", "wfts")
_IS_VALUES = ("null", "not_null", "true", "false", "unknown")


def _keyword(names: Sequence[str], what: str | None = None) -> p.Parser:
    parser = p.alt(*(p.try_(p.string(name)) for name in names))
    return parser if what is None else p.label(parser, what)


def _ci_string(text: str) -> p.Parser:
    """``ciString``: each character in lower or upper case."""
    chars = [p.alt(p.char(c), p.char(c.upper())) for c in text]
    return p.fmap(lambda _: text, p.seq(*chars))


_list_element = p.alt(
    p.try_(p.keep_left(_quoted_value, p.not_followed_by(p.none_of(",)"), p.show_char))),
    _joined(p.many(p.none_of(",)"))),
)
_list_value = p.fmap(
    tuple,
    p.keep_left(
        p.keep_right(_lexeme(p.char("(")), p.sep_by1(_list_element, p.char(","))),
        _lexeme(p.char(")")),
    ),
)
_single_value = _joined(p.many(p.any_char))
_pg_array = p.fmap(
    lambda v: v[0] + "".join(v[1]) + v[2],
    p.seq(p.string("{"), p.many(p.none_of("{}")), p.string("}")),
)
_logic_single_value = p.alt(
    p.try_(p.keep_left(_quoted_value, p.not_followed_by(p.none_of(",)"), p.show_char))),
    p.try_(_pg_array),
    _joined(p.many(p.none_of(",)"))),
)


def _op_expr(value: p.Parser) -> p.Parser:
    """``pOpExpr``: ``[not.]operator.value``, as (negated, operator, operand, modifier)."""

    def tagged(operator: str, parser: p.Parser, modifier: str | None = None) -> p.Parser:
        return p.fmap(lambda operand: (operator, operand, modifier), parser)

    def after_delimiter(word: str) -> p.Parser:
        return p.try_(p.keep_left(p.string(word), _delimiter))

    in_ = p.keep_right(after_delimiter("in"), tagged("in", _list_value))
    is_ = p.keep_right(
        after_delimiter("is"),
        p.label(
            p.alt(*(p.try_(tagged("is", _ci_string(v))) for v in _IS_VALUES)),
            "isVal: (null, not_null, true, false, unknown)",
        ),
    )
    is_distinct = p.keep_right(after_delimiter("isdistinct"), tagged("isdistinct", value))
    language = p.option(None, p.try_(p.between(p.char("("), p.char(")"), _identifier)))
    fts = p.bind(
        p.seq(_keyword(_FTS_OPERATORS), language),
        lambda v: p.keep_right(_delimiter, tagged(v[0], value, v[1])),
    )
    simple = p.bind(
        _keyword(_SIMPLE_OPERATORS, "unknown single value operator"),
        lambda op: p.keep_right(_delimiter, tagged(op, value)),
    )
    quantifier = p.option(
        None,
        p.try_(
            p.between(
                p.char("("),
                p.char(")"),
                p.alt(p.try_(p.string("any")), p.string("all")),
            )
        ),
    )
    quant = p.bind(
        p.seq(_keyword(_QUANT_OPERATORS, "unknown single value operator"), quantifier),
        lambda v: p.keep_right(_delimiter, tagged(v[0], value, v[1])),
    )
    operation = p.label(
        p.alt(in_, is_, is_distinct, p.try_(fts), p.try_(simple), p.try_(quant)),
        "operator (eq, gt, ...)",
    )
    negation = p.alt(
        p.try_(p.fmap(lambda _: True, p.keep_left(p.string("not"), _delimiter))), p.pure(False)
    )
    return p.fmap(lambda v: (v[0], *v[1]), p.seq(negation, operation))


def _filter_from(fld: Field, expression: tuple[bool, str, object, str | None]) -> Filter:
    negated, operator, operand, modifier = expression
    return Filter(fld, operator, operand, negated, modifier)  # type: ignore[arg-type]


_logic_filter = p.fmap(
    lambda v: _filter_from(v[0], v[1]),
    p.seq(p.keep_left(_field, _delimiter), _op_expr(_logic_single_value)),
)


def _logic_tree(s: p.State) -> p.Reply:
    """``pLogicTree``: a filter, or ``[not.]and|or(`` trees separated by commas ``)``."""
    negation = p.label(
        p.alt(
            p.try_(p.fmap(lambda _: True, p.keep_left(p.string("not"), _delimiter))), p.pure(False)
        ),
        "negation operator (not)",
    )
    operator = p.label(p.alt(p.try_(p.string("and")), p.string("or")), "logic operator (and, or)")
    children = p.keep_left(
        p.keep_right(_lexeme(p.char("(")), p.sep_by1(_logic_tree, _lexeme(p.char(",")))),
        _lexeme(p.char(")")),
    )
    expression = p.fmap(
        lambda v: Logic(v[1], tuple(v[2]), v[0]), p.seq(negation, operator, children)
    )
    return p.alt(p.try_(_logic_filter), expression)(s)


_order_direction = p.alt(
    p.try_(p.keep_right(_delimiter, p.string("asc"))),
    p.try_(p.keep_right(_delimiter, p.string("desc"))),
)
_order_nulls = p.alt(
    p.try_(p.keep_right(_delimiter, p.string("nullsfirst"))),
    p.try_(p.keep_right(_delimiter, p.string("nullslast"))),
)
_order_end = p.alt(p.try_(p.look_ahead(p.char(","))), p.try_(p.eof))
_order_modifiers = p.seq(
    p.option(None, _order_direction),
    p.alt(
        p.keep_left(p.option(None, _order_nulls), _order_end), p.fmap(lambda _: None, _order_end)
    ),
)
_order_term = p.fmap(lambda v: OrderTerm(v[0], v[1][0], v[1][1]), p.seq(_field, _order_modifiers))
_order_relation_term = p.fmap(
    lambda v: OrderTerm(v[1], v[2][0], v[2][1], relation=v[0]),
    p.seq(_field_name, p.between(p.char("("), p.char(")"), _field), _order_modifiers),
)
_order = p.sep_by1(_lexeme(p.alt(p.try_(_order_relation_term), _order_term)), p.char(","))
_columns = p.sep_by1(_field_name, _lexeme(p.char(",")))


# -- entry points (pRequestFilter, pRequestLogicTree, pRequestOrder, pRequestColumns) -------


def _run(parser: p.Parser, source: str, text: str) -> object:
    value, error = p.parse(parser, text)
    if error is not None:
        raise QueryParamError(f'"{source}" {error.line_column()}', error.describe())
    return value


def parse_tree_path(key: str) -> tuple[tuple[str, ...], Field]:
    """A filter's key: the embedding path and the field (``clients.name->>x``)."""
    return _run(_tree_path, f"failed to parse tree path ({key})", key)  # type: ignore[return-value]


def parse_filter(key: str, value: str) -> tuple[tuple[str, ...], Filter]:
    """``pRequestFilter``: ``key=value`` as (embedding path, filter)."""
    path, fld = parse_tree_path(key)
    expression = _run(_op_expr(_single_value), f"failed to parse filter ({value})", value)
    return path, _filter_from(fld, expression)  # type: ignore[arg-type]


def parse_logic(key: str, value: str) -> tuple[tuple[str, ...], Logic]:
    """``pRequestLogicTree``: ``or=(...)``, ``not.and=(...)``, ``rel.or=(...)``."""
    names = _run(p.sep_by1(_field_name, _delimiter), f"failed to parse logic path ({key})", key)
    operator = names[-1]  # type: ignore[index]
    if "not" in names:  # type: ignore[operator]
        operator = f"not.{operator}"
    path = tuple(name for name in names[:-1] if name != "not")  # type: ignore[index]
    tree = _run(_logic_tree, f"failed to parse logic tree ({value})", operator + value)
    return path, tree  # type: ignore[return-value]


def parse_order(key: str, value: str) -> tuple[tuple[str, ...], list[OrderTerm]]:
    """``pRequestOrder``: ``order=name.desc.nullslast,id``."""
    path, _ = parse_tree_path(key)
    terms = _run(_order, f"failed to parse order ({value})", value)
    return path, terms  # type: ignore[return-value]


def parse_columns(value: str, what: str = "columns") -> list[str]:
    """``pRequestColumns`` / ``pRequestOnConflict``: ``"a","b c"`` (``what``: the parameter)."""
    return _run(_columns, f"failed to parse {what} parameter ({value})", value)  # type: ignore[return-value]
