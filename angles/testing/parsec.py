"""A small port of Haskell's Parsec 3, faithful enough to reproduce its error messages.

PostgREST parses query strings with Parsec and returns Parsec's error text to the client
(``"failed to parse filter (0)" (line 1, column 1)`` with details ``unexpected "0" expecting
...``). Those texts depend on Parsec's rules for what a parser consumed, how errors of
alternatives merge (the one that got furthest wins, equal positions pool their messages) and
how ``<?>`` relabels them, so the rules are reproduced here, after ``Text.Parsec.Prim``,
``Text.Parsec.Combinator``, ``Text.Parsec.Char`` and ``Text.Parsec.Error``.

A parser is a function from a :class:`State` to a :class:`Reply`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ParseError",
    "Parser",
    "alt",
    "any_char",
    "between",
    "bind",
    "char",
    "digit",
    "eof",
    "fmap",
    "keep_left",
    "keep_right",
    "label",
    "letter",
    "look_ahead",
    "many",
    "many1",
    "none_of",
    "not_followed_by",
    "one_of",
    "option",
    "parse",
    "pure",
    "satisfy",
    "sep_by1",
    "seq",
    "show_char",
    "show_string",
    "string",
    "try_",
    "unexpected",
]

SYS_UNEXPECT, UNEXPECT, EXPECT, MESSAGE = range(4)


@dataclass(frozen=True, slots=True)
class State:
    """The input, the offset reached and Parsec's source position (line, column)."""

    text: str
    index: int
    line: int = 1
    column: int = 1

    @property
    def position(self) -> tuple[int, int]:
        return (self.line, self.column)


@dataclass(frozen=True, slots=True)
class ParseError:
    """Parsec's ``ParseError``: a position and messages as (kind, text) pairs."""

    position: tuple[int, int]
    messages: tuple[tuple[int, str], ...] = ()

    @property
    def unknown(self) -> bool:
        return not self.messages

    def expecting(self, text: str) -> ParseError:
        """``setErrorMessage (Expect text)``: every Expect replaced by this one."""
        kept = tuple(m for m in self.messages if m[0] != EXPECT)
        return ParseError(self.position, ((EXPECT, text), *kept))

    def describe(self) -> str:
        """``showErrorMessages "or" "unknown parse error" "expecting" "unexpected" "end of
        input"``, with PostgREST's newlines turned into spaces and the ends stripped."""
        if not self.messages:
            return "unknown parse error"
        ordered = sorted(self.messages, key=lambda m: m[0])  # Message's Ord: the kind only
        by_kind = {kind: [text for k, text in ordered if k == kind] for kind in range(4)}
        sys_unexpect, unexpect = by_kind[SYS_UNEXPECT], by_kind[UNEXPECT]
        if unexpect or not sys_unexpect:
            shown_sys = ""
        elif not sys_unexpect[0]:
            shown_sys = "unexpected end of input"
        else:
            shown_sys = "unexpected " + sys_unexpect[0]
        parts = [
            shown_sys,
            _show_many("unexpected", unexpect),
            _show_many("expecting", by_kind[EXPECT]),
            _show_many("", by_kind[MESSAGE]),
        ]
        return " ".join(_clean(parts)).strip()

    def line_column(self) -> str:
        line, column = self.position
        return f"(line {line}, column {column})"


def _clean(texts: Sequence[str]) -> list[str]:
    """``nub . filter (not . null)``."""
    return list(dict.fromkeys(t for t in texts if t))


def _show_many(prefix: str, texts: Sequence[str]) -> str:
    cleaned = _clean(texts)
    if not cleaned:
        return ""
    joined = cleaned[0] if len(cleaned) == 1 else ", ".join(cleaned[:-1]) + " or " + cleaned[-1]
    return f"{prefix} {joined}" if prefix else joined


def merge(first: ParseError, second: ParseError) -> ParseError:
    """``mergeError``: a meaningful error beats an unknown one, then the furthest wins."""
    if second.unknown and not first.unknown:
        return first
    if first.unknown and not second.unknown:
        return second
    if first.position == second.position:
        return ParseError(first.position, first.messages + second.messages)
    return first if first.position > second.position else second


@dataclass(frozen=True, slots=True)
class Reply:
    """What a parser answers: whether it consumed input, succeeded, and its error."""

    consumed: bool
    ok: bool
    value: Any
    state: State
    error: ParseError


Parser = Callable[[State], Reply]


def parse(parser: Parser, text: str) -> tuple[Any, ParseError | None]:
    """Run ``parser`` on ``text`` (like ``P.parse``: the rest of the input may remain)."""
    reply = parser(State(text, 0))
    return (reply.value, None) if reply.ok else (None, reply.error)


# -- Haskell's show ------------------------------------------------------------------------

_ASCII_NAMES = (  # the names Haskell shows for control characters 0-31
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL",
    "BS", "HT", "LF", "VT", "FF", "CR", "SO", "SI",
    "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB",
    "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US",
)  # fmt: skip
_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES |= {"\v": "\\v", "\\": "\\\\", "\x7f": "\\DEL"}


def _show_lit(char: str, following: str) -> str:
    """``showLitChar``, with the ``\\&`` Haskell inserts to keep escapes unambiguous."""
    code = ord(char)
    if char in _ESCAPES:
        return _ESCAPES[char]
    if code > 127:
        return f"\\{code}" + ("\\&" if following.isdigit() and following.isascii() else "")
    if code < 32:
        name = _ASCII_NAMES[code]
        return f"\\{name}" + ("\\&" if name == "SO" and following == "H" else "")
    return char


def show_string(text: str) -> str:
    """Haskell's ``show`` of a String: ``"a\\"b"``."""
    shown = "".join(
        '\\"' if c == '"' else _show_lit(c, text[i + 1 : i + 2]) for i, c in enumerate(text)
    )
    return f'"{shown}"'


def show_char(char: str) -> str:
    """Haskell's ``show`` of a Char: ``'x'``."""
    return "'\\''" if char == "'" else f"'{_show_lit(char, '')}'"


# -- primitives ----------------------------------------------------------------------------


def _unknown(state: State) -> ParseError:
    return ParseError(state.position)


def _advance(state: State, char: str) -> State:
    """``updatePosChar``: newlines start a line, tabs go to the next multiple of 8 (+1)."""
    if char == "\n":
        return State(state.text, state.index + 1, state.line + 1, 1)
    if char == "\t":
        column = state.column + 8 - ((state.column - 1) % 8)
        return State(state.text, state.index + 1, state.line, column)
    return State(state.text, state.index + 1, state.line, state.column + 1)


def pure(value: Any) -> Parser:
    """``return``: succeed without consuming."""
    return lambda s: Reply(False, True, value, s, _unknown(s))


def unexpected(text: str) -> Parser:
    """``unexpected``: fail without consuming, with an UnExpect message."""
    return lambda s: Reply(False, False, None, s, ParseError(s.position, ((UNEXPECT, text),)))


def satisfy(predicate: Callable[[str], bool]) -> Parser:
    """One character for which ``predicate`` holds."""

    def run(s: State) -> Reply:
        if s.index >= len(s.text):
            return Reply(False, False, None, s, ParseError(s.position, ((SYS_UNEXPECT, ""),)))
        char = s.text[s.index]
        if not predicate(char):
            error = ParseError(s.position, ((SYS_UNEXPECT, show_string(char)),))
            return Reply(False, False, None, s, error)
        after = _advance(s, char)
        return Reply(True, True, char, after, _unknown(after))

    return run


def _any_token(s: State) -> Reply:
    """``anyToken``: one character; its position function leaves the position unchanged."""
    if s.index >= len(s.text):
        return Reply(False, False, None, s, ParseError(s.position, ((SYS_UNEXPECT, ""),)))
    after = State(s.text, s.index + 1, s.line, s.column)
    return Reply(True, True, s.text[s.index], after, _unknown(after))


def string(expected: str) -> Parser:
    """``string`` (``tokens``): errors are reported at the start, consumed after one match."""

    def run(s: State) -> Reply:
        def error(found: str | None) -> ParseError:
            shown = "" if found is None else show_string(found)
            return ParseError(s.position, ((EXPECT, show_string(expected)), (SYS_UNEXPECT, shown)))

        for offset, wanted in enumerate(expected):
            index = s.index + offset
            found = s.text[index] if index < len(s.text) else None
            if found != wanted:
                return Reply(offset > 0, False, None, s, error(found))
        after = s
        for char in expected:
            after = _advance(after, char)
        return Reply(bool(expected), True, expected, after, _unknown(after))

    return run


# -- combinators ---------------------------------------------------------------------------


def bind(parser: Parser, then: Callable[[Any], Parser]) -> Parser:
    """``>>=``: errors of an empty continuation merge with the first parser's."""

    def run(s: State) -> Reply:
        first = parser(s)
        if not first.ok:
            return first
        second = then(first.value)(first.state)
        if second.consumed or first.error.unknown:
            return Reply(first.consumed or second.consumed, *_rest(second))
        error = merge(first.error, second.error)
        return Reply(first.consumed, second.ok, second.value, second.state, error)

    return run


def _rest(reply: Reply) -> tuple[bool, Any, State, ParseError]:
    return reply.ok, reply.value, reply.state, reply.error


def fmap(function: Callable[[Any], Any], parser: Parser) -> Parser:
    """``<$>``."""

    def run(s: State) -> Reply:
        reply = parser(s)
        if not reply.ok:
            return reply
        return Reply(reply.consumed, True, function(reply.value), reply.state, reply.error)

    return run


def seq(*parsers: Parser) -> Parser:
    """The parsers one after another; their values as a tuple (``(,) <$> a <*> b``)."""

    def step(index: int, values: tuple[Any, ...]) -> Parser:
        if index == len(parsers):
            return pure(values)
        return bind(parsers[index], lambda value: step(index + 1, (*values, value)))

    return step(0, ())


def keep_left(parser: Parser, after: Parser) -> Parser:
    """``<*``."""
    return fmap(lambda values: values[0], seq(parser, after))


def keep_right(before: Parser, parser: Parser) -> Parser:
    """``*>``."""
    return fmap(lambda values: values[1], seq(before, parser))


def alt(*parsers: Parser) -> Parser:
    """``<|>``: the next alternative only when the previous failed without consuming."""

    def run(s: State) -> Reply:
        reply = parsers[0](s)
        for parser in parsers[1:]:
            if reply.ok or reply.consumed:
                return reply
            failed = reply.error
            reply = parser(s)
            if not reply.consumed:
                reply = Reply(False, reply.ok, reply.value, reply.state, merge(failed, reply.error))
        return reply

    return run


def try_(parser: Parser) -> Parser:
    """``try``: a consumed failure becomes an empty one."""

    def run(s: State) -> Reply:
        reply = parser(s)
        if reply.consumed and not reply.ok:
            return Reply(False, False, None, s, reply.error)
        return reply

    return run


def look_ahead(parser: Parser) -> Parser:
    """``lookAhead``: succeed with the value without consuming."""

    def run(s: State) -> Reply:
        reply = parser(s)
        if reply.ok:
            return Reply(False, True, reply.value, s, _unknown(s))
        return reply

    return run


def label(parser: Parser, text: str) -> Parser:
    """``<?>``: when nothing was consumed, the expected items become ``text``."""

    def run(s: State) -> Reply:
        reply = parser(s)
        if reply.consumed or (reply.ok and reply.error.unknown):
            return reply
        return Reply(False, reply.ok, reply.value, reply.state, reply.error.expecting(text))

    return run


def many(parser: Parser) -> Parser:
    """Zero or more; stops at the first failure that consumed nothing."""

    def run(s: State) -> Reply:
        values: list[Any] = []
        consumed = False
        state = s
        while True:
            reply = parser(state)
            if not reply.consumed:
                if reply.ok:
                    raise ValueError("many applied to a parser that accepts an empty string")
                return Reply(consumed, True, values, state, reply.error)
            if not reply.ok:
                return reply
            consumed = True
            values.append(reply.value)
            state = reply.state

    return run


def many1(parser: Parser) -> Parser:
    """One or more."""
    return fmap(lambda values: [values[0], *values[1]], seq(parser, many(parser)))


def sep_by1(parser: Parser, separator: Parser) -> Parser:
    """One or more ``parser`` separated by ``separator``."""
    return fmap(
        lambda values: [values[0], *values[1]], seq(parser, many(keep_right(separator, parser)))
    )


def option(default: Any, parser: Parser) -> Parser:
    """``option``: ``parser`` or, when it fails without consuming, ``default``."""
    return alt(parser, pure(default))


def between(open_: Parser, close: Parser, parser: Parser) -> Parser:
    """``between``."""
    return keep_left(keep_right(open_, parser), close)


def not_followed_by(parser: Parser, show: Callable[[Any], str]) -> Parser:
    """``notFollowedBy``: succeed, consuming nothing, only where ``parser`` fails."""
    return try_(alt(bind(try_(parser), lambda value: unexpected(show(value))), pure(None)))


def one_of(chars: str) -> Parser:
    return satisfy(lambda c: c in chars)


def none_of(chars: str) -> Parser:
    return satisfy(lambda c: c not in chars)


def char(expected: str) -> Parser:
    """``char``: labelled with the shown one-character string."""
    return label(satisfy(lambda c: c == expected), show_string(expected))


any_char: Parser = satisfy(lambda c: True)
letter: Parser = label(satisfy(lambda c: unicodedata.category(c).startswith("L")), "letter")
digit: Parser = label(satisfy(lambda c: "0" <= c <= "9"), "digit")
eof: Parser = label(not_followed_by(_any_token, show_char), "end of input")
