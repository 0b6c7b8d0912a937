"""A PostgREST-compatible gateway over a real PostgreSQL, as Supabase serves it at ``/rest/v1``.

:class:`PostgrestServer` reproduces what ``/work/shared/reference/postgrest.md`` documents
(PostgREST v13/v14 behind Supabase's API gateway): the ``apikey`` check and its two 401
bodies, HS256 JWTs with ``anon``/``service_role``, one transaction per request with the
role and claims set, filters, ordering, ``limit``/``offset``/``Range``, db-max-rows,
counting and ``Content-Range`` with 200/206/416, inserts and upserts through
``json_to_recordset``, PATCH and DELETE (refused without a filter), PostgREST's error
bodies and status mapping, and the OpenAPI root. Row bodies are built by PostgreSQL with
``json_agg`` and passed through untouched, so the bytes are PostgREST's.

Not implemented: resource embedding (``rel(cols)``), RPC (``/rpc/fn``), CSV, PUT, aggregates.

Fixtures: ``postgrest`` (a started server over the test database, reset for each test) and
``postgrest_factory`` (servers with other options).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg import sql

from angles.testing.postgres import (
    ensure_supabase_roles,
    grant_supabase_roles,
)
from angles.testing.server import Fault, RecordedRequest, Response, ServiceServer

__all__ = [
    "DEFAULT_JWT_SECRET",
    "ApiError",
    "PostgrestServer",
    "decode_jwt",
    "encode_jwt",
    "fuzzy_match",
]

DEFAULT_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
POSTGREST_VERSION = "13.0.7"
JSON_TYPE = "application/json; charset=utf-8"
_NO_KEY_HINT = "No `apikey` request header or url param was found."
_BAD_KEY_HINT = "Double check your Supabase `anon` or `service_role` API key."
_CLOCK_SKEW = 30

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A PostgREST error: status, code, message, details, hint and extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def response(self) -> Response:
        """The HTTP response PostgREST sends for this error."""
        body = {"code": self.code, "details": self.details, "hint": self.hint}
        body["message"] = self.message
        headers = {
            "Content-Type": JSON_TYPE,
            "Proxy-Status": f"PostgREST; error={self.code}",
            **self.headers,
        }
        return Response(self.status, _dumps(body, sort_keys=True), headers)


def _dumps(payload: Any, sort_keys: bool = False) -> bytes:
    return json.dumps(
        payload, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys
    ).encode()


def _gateway_error(status: int, message: str, hint: str | None = None) -> Response:
    body: dict[str, Any] = {"message": message}
    if hint is not None:
        body["hint"] = hint
    return Response(status, _dumps(body), {"Content-Type": JSON_TYPE})


def _parse_error(what: str, value: str, column: int, details: str) -> ApiError:
    return ApiError(
        400, "PGRST100", f'"failed to parse {what} ({value})" (line 1, column {column})', details
    )


def _unexpected(text: str, pos: int, expecting: str) -> str:
    found = f'"{text[pos]}"' if pos < len(text) else "end of input"
    return f"unexpected {found} expecting {expecting}"


def _pg_status(sqlstate: str, message: str, authed: bool) -> int:
    """PostgREST's ``pgErrorStatus`` (Error.hs)."""
    exact = {
        "23503": 409,
        "23505": 409,
        "25006": 405,
        "53400": 500,
        "57P01": 503,
        "P0001": 400,
        "42883": 404,
        "42P01": 404,
        "42P17": 500,
    }
    if sqlstate == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if sqlstate == "22023":
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    if sqlstate == "42501":
        return 403 if authed else 401
    if sqlstate in exact:
        return exact[sqlstate]
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    prefixes = {
        "08": 503,
        "09": 500,
        "0L": 403,
        "0P": 403,
        "25": 500,
        "28": 403,
        "2D": 500,
        "38": 500,
        "39": 500,
        "3B": 500,
        "40": 500,
        "53": 503,
        "54": 500,
        "55": 500,
        "57": 500,
        "58": 500,
        "F0": 500,
        "HV": 500,
        "P0": 500,
        "XX": 500,
    }
    return prefixes.get(sqlstate[:2], 400)


def _from_pg(exc: psycopg.Error, authed: bool) -> ApiError:
    diag = exc.diag
    code = diag.sqlstate
    if code is None:  # the connection itself failed
        return ApiError(
            503, "PGRST001", "Database client error. Retrying the connection.", str(exc)
        )
    message = diag.message_primary or str(exc)
    status = _pg_status(code, message, authed)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return ApiError(status, code, message, diag.message_detail, diag.message_hint, headers)


# --------------------------------------------------------------------------------------------
# JWT (HS256)
# --------------------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(claims: dict[str, Any], secret: str) -> str:
    """Sign ``claims`` as an HS256 JWT."""
    header = _b64encode(_dumps({"alg": "HS256", "typ": "JWT"}))
    payload = _b64encode(_dumps(claims))
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(signature)}"


def _jwt_error(code: str, message: str, details: str | None = None) -> ApiError:
    header = f'Bearer error="invalid_token", error_description="{message}"'
    return ApiError(401, code, message, details, headers={"WWW-Authenticate": header})


def decode_jwt(token: str, secret: str, now: float | None = None) -> dict[str, Any]:
    """Verify an HS256 JWT the way PostgREST does and return its claims.

    Raises :class:`ApiError` with PGRST301 (malformed, bad signature) or PGRST303 (claims).
    """
    if not token:
        raise _jwt_error("PGRST301", "Empty JWT is sent in Authorization header")
    parts = token.split(".")
    if len(parts) != 3:
        raise _jwt_error("PGRST301", f"Expected 3 parts in JWT; got {len(parts)}")
    try:
        header = json.loads(_b64decode(parts[0]))
        signature = _b64decode(parts[2])
    except ValueError:
        raise _jwt_error("PGRST301", "JWT cryptographic operation failed") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise _jwt_error("PGRST301", "Wrong or unsupported encoding algorithm", f"{header!r}"[:100])
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise _jwt_error(
            "PGRST301",
            "No suitable key or wrong key type",
            "None of the keys was able to decode the JWT",
        )
    try:
        claims = json.loads(_b64decode(parts[1]))
    except ValueError:
        raise _jwt_error("PGRST303", "Parsing claims failed") from None
    if not isinstance(claims, dict):
        raise _jwt_error("PGRST303", "Parsing claims failed")
    now = time.time() if now is None else now
    for name, label in (("exp", "exp"), ("nbf", "nbf"), ("iat", "iat")):
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _jwt_error("PGRST303", f"The JWT '{label}' claim must be a number")
    if claims.get("exp") is not None and now - _CLOCK_SKEW > claims["exp"]:
        raise _jwt_error("PGRST303", "JWT expired")
    if claims.get("nbf") is not None and now + _CLOCK_SKEW < claims["nbf"]:
        raise _jwt_error("PGRST303", "JWT not yet valid")
    if claims.get("iat") is not None and now + _CLOCK_SKEW < claims["iat"]:
        raise _jwt_error("PGRST303", "JWT issued at future")
    return claims


# --------------------------------------------------------------------------------------------
# Query parsing
# --------------------------------------------------------------------------------------------

_COMPARISONS = {
    "eq": "=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "neq": "<>",
    "like": "LIKE",
    "ilike": "ILIKE",
    "match": "~",
    "imatch": "~*",
}
_OTHER_OPERATORS = {
    "isdistinct": "IS DISTINCT FROM",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
}
_FTS = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_IS_VALUES = {
    "null": "NULL",
    "not_null": "NOT NULL",
    "true": "TRUE",
    "false": "FALSE",
    "unknown": "UNKNOWN",
}
_OPERATOR_RE = re.compile(r"(not\.)?([a-z]+)(?:\(([^)]*)\))?\.", re.S)
_EXPECT_OPERATOR = "operator (eq, gt, ...)"
_NON_FILTER_PARAMS = {"select", "columns", "on_conflict", "apikey"}
_NON_FILTER_SUFFIXES = {"order", "limit", "offset", "and", "or"}
_CAST_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*(\[\])?")
_INT_RE = re.compile(r"\s*-?\d+\s*")


@dataclass
class _Field:
    """A column reference, possibly followed by a JSON path (``data->a->>b``)."""

    name: str
    path: list[tuple[str, str]] = field(default_factory=list)

    def sql(self, rel: sql.Composable) -> sql.Composable:
        expr: sql.Composable = sql.SQL("{}.{}").format(rel, sql.Identifier(self.name))
        for arrow, key in self.path:
            literal = sql.Literal(int(key)) if re.fullmatch(r"-?\d+", key) else sql.Literal(key)
            expr = sql.SQL("({} {} {})").format(expr, sql.SQL(arrow), literal)
        return expr

    @property
    def output_name(self) -> str:
        return self.path[-1][1] if self.path else self.name


def _parse_field(text: str) -> _Field:
    text = text.strip()
    if text.startswith('"'):
        end = text.find('"', 1)
        if end < 0:
            raise _parse_error("field", text, len(text) + 1, "unexpected end of input")
        name, rest = text[1:end], text[end + 1 :]
    else:
        match = re.match(r"[^-]*(?:-(?!>)[^-]*)*", text)
        name = match.group(0) if match else text
        rest = text[len(name) :]
    path = [(arrow, key.strip('"')) for arrow, key in re.findall(r"(->>|->)([^-]+)", rest)]
    return _Field(name, path)


def _split_top(text: str, separator: str = ",") -> list[str]:
    """Split at ``separator`` outside double quotes and parentheses."""
    parts: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    current: list[str] = []
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif char == separator and not quoted and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _filter_sql(rel: sql.Composable, fld: _Field, value: str, in_logic: bool) -> sql.Composable:
    """``value`` is ``[not.]op[(modifier)].operand``; returns the SQL condition."""
    match = _OPERATOR_RE.match(value)
    if not match:
        offset = 4 if value.startswith("not.") else 0
        expecting = _EXPECT_OPERATOR if offset else f'"not" or {_EXPECT_OPERATOR}'
        raise _parse_error("filter", value, offset + 1, _unexpected(value, offset, expecting))
    negate, op, modifier, operand = bool(match.group(1)), match.group(2), match.group(3), ""
    operand = value[match.end() :]
    column = fld.sql(rel)
    if in_logic and op != "in":
        operand = _unquote(operand)
    condition: sql.Composable
    if op in _COMPARISONS and modifier in ("any", "all"):
        if op in ("like", "ilike"):
            operand = operand.replace("*", "%")
        condition = sql.SQL("{} {} {}({})").format(
            column, sql.SQL(_COMPARISONS[op]), sql.SQL(modifier.upper()), sql.Literal(operand)
        )
    elif op in _COMPARISONS and modifier is None:
        if op in ("like", "ilike"):
            operand = operand.replace("*", "%")
        condition = sql.SQL("{} {} {}").format(
            column, sql.SQL(_COMPARISONS[op]), sql.Literal(operand)
        )
    elif op in _OTHER_OPERATORS and modifier is None:
        if op == "ov" and operand.startswith("(") and operand.endswith(")"):
            operand = "{" + operand[1:-1] + "}"
        condition = sql.SQL("{} {} {}").format(
            column, sql.SQL(_OTHER_OPERATORS[op]), sql.Literal(operand)
        )
    elif op == "is" and modifier is None:
        keyword = _IS_VALUES.get(operand.lower())
        if keyword is None:
            start = match.end()
            raise _parse_error(
                "filter",
                value,
                start + 1,
                _unexpected(value, start, '"null", "not_null", "true", "false" or "unknown"'),
            )
        condition = sql.SQL("{} IS {}").format(column, sql.SQL(keyword))
    elif op == "in" and modifier is None:
        if not (operand.startswith("(") and operand.endswith(")")):
            start = match.end()
            raise _parse_error("filter", value, start + 1, _unexpected(value, start, '"("'))
        inner = operand[1:-1]
        items = [_unquote(item) for item in _split_top(inner)] if inner.strip() else []
        if items:
            condition = sql.SQL("{} IN ({})").format(
                column, sql.SQL(", ").join(sql.Literal(item) for item in items)
            )
        else:
            condition = sql.SQL("FALSE")
    elif op in _FTS:
        function = sql.SQL(_FTS[op])
        if modifier:
            query = sql.SQL("{}({}::regconfig, {})").format(
                function, sql.Literal(modifier), sql.Literal(operand)
            )
        else:
            query = sql.SQL("{}({})").format(function, sql.Literal(operand))
        condition = sql.SQL("{} @@ {}").format(column, query)
    else:
        offset = 4 if negate else 0
        expecting = _EXPECT_OPERATOR if negate else f'"not" or {_EXPECT_OPERATOR}'
        raise _parse_error("filter", value, offset + 1, _unexpected(value, offset, expecting))
    return sql.SQL("NOT ({})").format(condition) if negate else condition


def _logic_sql(rel: sql.Composable, key: str, value: str) -> sql.Composable:
    """``or=(a.eq.1,and(b.gt.2,c.is.null))`` and friends."""
    negate = key.startswith("not.")
    operator = key[4:] if negate else key
    condition = _logic_tree(rel, operator, value, f"{key}={value}")
    return sql.SQL("NOT ({})").format(condition) if negate else condition


def _logic_tree(rel: sql.Composable, operator: str, value: str, source: str) -> sql.Composable:
    value = value.strip()
    if not (value.startswith("(") and value.endswith(")")):
        raise _parse_error("logic tree", source, 1, _unexpected(value, 0, '"("'))
    conditions: list[sql.Composable] = []
    for item in _split_top(value[1:-1]):
        item = item.strip()
        nested = re.match(r"(not\.)?(and|or)(\(.*\))$", item, re.S)
        if nested:
            inner = _logic_tree(rel, nested.group(2), nested.group(3), source)
            conditions.append(sql.SQL("NOT ({})").format(inner) if nested.group(1) else inner)
            continue
        if item.startswith('"'):
            end = item.find('"', 1)
            name_part, rest = item[: end + 1], item[end + 1 :]
        else:
            name_part, _, rest = item.partition(".")
            rest = "." + rest if rest or item.endswith(".") else ""
        if not rest.startswith("."):
            raise _parse_error("logic tree", source, 1, _unexpected(item, len(item), '"."'))
        conditions.append(_filter_sql(rel, _parse_field(name_part), rest[1:], in_logic=True))
    if not conditions:
        raise _parse_error("logic tree", source, 1, "unexpected end of input")
    joiner = sql.SQL(" AND ") if operator == "and" else sql.SQL(" OR ")
    return sql.SQL("({})").format(joiner.join(conditions))


def _where_sql(rel: sql.Composable, query: Sequence[tuple[str, str]]) -> list[sql.Composable]:
    conditions: list[sql.Composable] = []
    for key, value in query:
        if key in ("and", "or", "not.and", "not.or"):
            conditions.append(_logic_sql(rel, key, value))
        elif key in _NON_FILTER_PARAMS or key.rsplit(".", 1)[-1] in _NON_FILTER_SUFFIXES:
            continue
        else:
            conditions.append(_filter_sql(rel, _parse_field(key), value, in_logic=False))
    return conditions


def _order_sql(rel: sql.Composable, value: str) -> list[sql.Composable]:
    terms: list[sql.Composable] = []
    position = 0
    for item in _split_top(value):
        if item.startswith('"'):
            end = item.find('"', 1) + 1
        else:
            end = item.find(".") if "." in item else len(item)
        if end <= 0 or not item[:end].strip('"'):
            raise _parse_error(
                "order", value, position + 1, _unexpected(value, position, "field name")
            )
        fld = _parse_field(item[:end])
        modifiers = re.match(r"(\.(asc|desc))?(\.(nullsfirst|nullslast))?", item[end:])
        assert modifiers is not None
        consumed = end + modifiers.end()
        if consumed != len(item):
            pos = position + consumed
            raise _parse_error(
                "order", value, pos + 1, _unexpected(value, pos, '"," or end of input')
            )
        term = fld.sql(rel)
        if modifiers.group(2):
            term = sql.SQL("{} {}").format(term, sql.SQL(modifiers.group(2).upper()))
        if modifiers.group(4):
            nulls = "NULLS FIRST" if modifiers.group(4) == "nullsfirst" else "NULLS LAST"
            term = sql.SQL("{} {}").format(term, sql.SQL(nulls))
        terms.append(term)
        position += len(item) + 1
    return terms


def _select_sql(
    rel: sql.Composable, value: str, star: Sequence[str] | None = None
) -> sql.Composable:
    """The select list; ``star`` expands ``*`` to named columns (used for write results)."""
    items: list[sql.Composable] = []
    for raw in _split_top(value):
        item = raw.strip()
        if not item:
            continue
        if item == "*":
            if star is None:
                items.append(sql.SQL("{}.*").format(rel))
            else:
                items.extend(sql.SQL("{}.{}").format(rel, sql.Identifier(c)) for c in star)
            continue
        if "(" in item or item.startswith("..."):
            raise ApiError(
                400,
                "PGRST100",
                f'"failed to parse select parameter ({value})" (line 1, column 1)',
                "resource embedding is not supported by the angles test gateway",
            )
        alias = None
        alias_match = re.match(r'("[^"]*"|[^:"]+):(?!:)', item)
        if alias_match:
            alias = alias_match.group(1).strip('"')
            item = item[alias_match.end() :]
        cast = None
        if "::" in item:
            item, cast = item.rsplit("::", 1)
            if not _CAST_RE.fullmatch(cast):
                raise _parse_error("select parameter", value, 1, f"unexpected cast {cast!r}")
        fld = _parse_field(item)
        expr = fld.sql(rel)
        if cast:
            expr = sql.SQL("CAST({} AS {})").format(expr, sql.SQL(cast))
        name = alias or fld.output_name
        if alias or cast or fld.path:
            expr = sql.SQL("{} AS {}").format(expr, sql.Identifier(name))
        items.append(expr)
    return sql.SQL(", ").join(items)


def _int_param(query: Sequence[tuple[str, str]], name: str) -> int | None:
    value = None
    for key, raw in query:
        if key == name and _INT_RE.fullmatch(raw):
            value = int(raw)
    return value


def _param(query: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in query:
        if key == name:
            return value
    return None


def _parse_prefer(header: str | None) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key:
            prefs.setdefault(key.strip(), value.strip())
    return prefs


_VALID_PREFERENCES = {
    "return": {"minimal", "representation", "headers-only"},
    "count": {"exact", "planned", "estimated"},
    "resolution": {"merge-duplicates", "ignore-duplicates"},
    "missing": {"default", "null"},
    "handling": {"strict", "lenient"},
    "tx": {"commit", "rollback"},
}


def _parse_columns(value: str) -> list[str]:
    return [_unquote(item) for item in _split_top(value) if item.strip()]


# --------------------------------------------------------------------------------------------
# Fuzzy table suggestions (PostgREST uses Data.FuzzySet: n-gram cosine, then Levenshtein)
# --------------------------------------------------------------------------------------------


def _grams(value: str, size: int) -> Counter[str]:
    simplified = "-" + re.sub(r"[^a-z0-9\u00c0-\u00ff, ]+", "", value.lower()) + "-"
    simplified += "-" * max(0, size - len(simplified))
    return Counter(simplified[i : i + size] for i in range(len(simplified) - size + 1))


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def fuzzy_match(value: str, candidates: Sequence[str], min_score: float = 0.33) -> str | None:
    """The candidate PostgREST would suggest for ``value`` (None when nothing is close)."""
    lowered = {c.lower(): c for c in candidates}
    if value.lower() in lowered:
        return lowered[value.lower()]
    for size in (3, 2):
        wanted = _grams(value, size)
        wanted_norm = math.sqrt(sum(n * n for n in wanted.values()))
        scored: list[tuple[float, str]] = []
        for candidate in candidates:
            grams = _grams(candidate, size)
            dot = sum(n * grams[g] for g, n in wanted.items() if g in grams)
            if dot:
                norm = math.sqrt(sum(n * n for n in grams.values()))
                scored.append((dot / (wanted_norm * norm), candidate))
        scored.sort(key=lambda item: -item[0])
        rescored = []
        for _, candidate in scored[:50]:
            a, b = candidate.lower(), value.lower()
            rescored.append((1 - _levenshtein(a, b) / max(len(a), len(b)), candidate))
        matches = sorted((s for s in rescored if s[0] >= min_score), key=lambda s: -s[0])
        if matches:
            return matches[0][1]
    return None


# --------------------------------------------------------------------------------------------
# Connection pool
# --------------------------------------------------------------------------------------------


class _Pool:
    """At most ``size`` connections, one per concurrent request; idle ones are reused."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self._idle: list[psycopg.Connection[Any]] = []
        self._count = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def connection(self, timeout: float = 10.0) -> Iterator[psycopg.Connection[Any]]:
        conn = self._acquire(timeout)
        try:
            yield conn
        finally:
            self._release(conn)

    def _acquire(self, timeout: float) -> psycopg.Connection[Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._idle and self._count >= self.size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ApiError(
                        504, "PGRST003", "Timed out acquiring connection from connection pool."
                    )
                self._cond.wait(remaining)
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return psycopg.connect(
                self.url, prepare_threshold=None, application_name="angles-postgrest"
            )
        except psycopg.Error as exc:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise ApiError(503, "PGRST000", "Database connection error", str(exc)) from None

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        healthy = not conn.closed and conn.info.transaction_status == 0  # IDLE
        if not healthy:
            with contextlib.suppress(Exception):
                conn.close()
        with self._cond:
            if healthy:
                self._idle.append(conn)
            else:
                self._count -= 1
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            for conn in self._idle:
                with contextlib.suppress(Exception):
                    conn.close()
            self._count -= len(self._idle)
            self._idle.clear()


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


@dataclass
class _Context:
    """Who asks (after the gateway and JWT checks) and in which schema."""

    role: str
    claims: dict[str, Any]
    authed: bool
    apikey_role: str
    schema: str
    headers: dict[str, str]


@dataclass
class _Column:
    name: str
    type: str
    default: str | None
    identity: str


@dataclass
class _Table:
    schema: str
    name: str
    columns: dict[str, _Column]
    primary_key: list[str]

    @property
    def rel(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


_CLOUDFLARE_HTML = (
    "<!DOCTYPE html>\n<html><head><title>{host} | {status}: {title}</title></head>\n"
    '<body><div id="cf-error-details"><h1>{title}</h1>'
    "<span>Error code {status}</span></div></body></html>\n"
)
_HTML_TITLES = {
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service Unavailable",
    504: "Gateway time-out",
    520: "Web server is returning an unknown error",
    522: "Connection timed out",
    524: "A timeout occurred",
}


class PostgrestServer(ServiceServer):
    """Supabase's Data API (gateway + PostgREST) over the PostgreSQL database ``database_url``.

    Pass ``url`` and a key to ``supabase.create_client(url, key)``. ``anon_key`` and
    ``service_role_key`` are HS256 JWTs signed with ``jwt_secret``; ``publishable_key`` and
    ``secret_key`` are the opaque ``sb_`` keys for the same roles. ``max_rows`` is
    db-max-rows (None: no cap); ``schemas`` are the exposed schemas (the first is the
    default); ``statement_timeouts`` maps a role to its ``statement_timeout``. These
    attributes may be changed while the server runs; :meth:`reset` restores them.
    ``database_url`` must log in as a superuser (the server switches role per request).
    """

    name = "postgrest"

    def __init__(
        self,
        database_url: str,
        *,
        max_rows: int | None = 1000,
        schemas: Sequence[str] = ("public", "graphql_public"),
        jwt_secret: str = DEFAULT_JWT_SECRET,
        anon_role: str | None = "anon",
        extra_search_path: Sequence[str] = ("public", "extensions"),
        statement_timeouts: dict[str, str] | None = None,
        pool_size: int = 8,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.database_url = database_url
        self.jwt_secret = jwt_secret
        self._defaults = {
            "max_rows": max_rows,
            "schemas": list(schemas),
            "anon_role": anon_role,
            "extra_search_path": list(extra_search_path),
            "statement_timeouts": dict(
                statement_timeouts
                if statement_timeouts is not None
                else {"anon": "3s", "authenticated": "8s", "service_role": "8s"}
            ),
        }
        self.max_rows: int | None = max_rows
        self.schemas: list[str] = []
        self.anon_role: str | None = anon_role
        self.extra_search_path: list[str] = []
        self.statement_timeouts: dict[str, str] = {}
        self.reset()
        now = int(time.time())
        self.anon_key = self.mint_jwt("anon", iat=now, exp=now + 10 * 365 * 86400)
        self.service_role_key = self.mint_jwt("service_role", iat=now, exp=now + 10 * 365 * 86400)
        self.publishable_key = (
            "sb_publishable_angles_test_" + hashlib.sha256(self.anon_key.encode()).hexdigest()[:24]
        )
        self.secret_key = (
            "sb_secret_angles_test_"
            + hashlib.sha256(self.service_role_key.encode()).hexdigest()[:24]
        )
        self._pool = _Pool(database_url, pool_size)

    # -- configuration and helpers ----------------------------------------------------------

    @property
    def rest_url(self) -> str:
        """The PostgREST root as Supabase exposes it: ``<url>/rest/v1``."""
        return f"{self.url}/rest/v1"

    def mint_jwt(self, role: str | None = "authenticated", **claims: Any) -> str:
        """A JWT signed with the server's secret (``role=None`` leaves the claim out).

        Extra claims such as ``sub``, ``exp`` or ``aud`` are passed through; ``iss``, ``ref``
        and ``iat`` default to Supabase-like values and ``exp`` to one hour from now.
        """
        now = int(time.time())
        payload: dict[str, Any] = {"iss": "supabase", "ref": "angles-test"}
        if role is not None:
            payload["role"] = role
        payload.update({"iat": now, "exp": now + 3600})
        payload.update(claims)
        return encode_jwt(payload, self.jwt_secret)

    @property
    def _keys(self) -> dict[str, tuple[str, str]]:
        """apikey -> (role it stands for, JWT the gateway forwards)."""
        return {
            self.anon_key: ("anon", self.anon_key),
            self.service_role_key: ("service_role", self.service_role_key),
            self.publishable_key: ("anon", self.anon_key),
            self.secret_key: ("service_role", self.service_role_key),
        }

    def reset(self) -> None:
        """Forget requests and faults and restore the constructor's options."""
        self.clear()
        self.max_rows = self._defaults["max_rows"]
        self.schemas = list(self._defaults["schemas"])
        self.anon_role = self._defaults["anon_role"]
        self.extra_search_path = list(self._defaults["extra_search_path"])
        self.statement_timeouts = dict(self._defaults["statement_timeouts"])

    def prepare_database(self) -> None:
        """Create the Supabase roles if missing and grant them on the exposed schemas."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            ensure_supabase_roles(conn)
            existing = {
                row[0]
                for row in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [self.schemas]
                )
            }
            for schema in self.schemas:
                if schema in existing:
                    grant_supabase_roles(conn, schema)

    def start(self) -> PostgrestServer:
        """Prepare the database, then serve."""
        self.prepare_database()
        super().start()
        return self

    def stop(self) -> None:
        """Stop serving and close the database connections."""
        super().stop()
        self._pool.close()

    def client(self, key: str | None = None) -> Any:
        """A ``supabase.Client`` for this server (default: the service_role key)."""
        from supabase import create_client

        return create_client(self.url, key or self.service_role_key)

    # -- faults ---------------------------------------------------------------------------------

    def fail_with_html(
        self,
        status: int = 503,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Answer the next ``times`` requests with a Cloudflare-style HTML error page."""
        title = _HTML_TITLES.get(status, "Error")
        body = _CLOUDFLARE_HTML.format(host="127.0.0.1", status=status, title=title)
        return self.fail(
            method=method,
            path=path,
            times=times,
            status=status,
            body=body,
            headers={"Content-Type": "text/html; charset=UTF-8", "Server": "cloudflare"},
        )

    def fail_with_timeout(
        self, times: int = 1, method: str | None = None, path: str | None = None
    ) -> Fault:
        """Answer the next ``times`` requests with PostgREST's statement-timeout error (57014)."""
        error = ApiError(500, "57014", "canceling statement due to statement timeout")
        response = error.response()
        return self.fail(
            method=method,
            path=path,
            times=times,
            status=response.status,
            body=response.body,
            headers=response.headers,
        )

    def fail_with_error(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Answer the next ``times`` requests with any PostgREST error body (e.g. PGRST002)."""
        response = ApiError(status, code, message, details, hint).response()
        return self.fail(
            method=method,
            path=path,
            times=times,
            status=status,
            body=response.body,
            headers=response.headers,
        )

    # -- request handling -----------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Response:
        """Gateway checks, then PostgREST."""
        if request.path != "/rest/v1" and not request.path.startswith("/rest/v1/"):
            return _gateway_error(404, "no Route matched with those values")
        apikey = request.header("apikey") or _param(request.query, "apikey")
        if not apikey:
            return _gateway_error(401, "No API key found in request", _NO_KEY_HINT)
        key = self._keys.get(apikey)
        if key is None:
            return _gateway_error(401, "Invalid API key", _BAD_KEY_HINT)
        route = request.path[len("/rest/v1") :] or "/"
        try:
            context = self._authenticate(request, key)
            if route == "/":
                if request.method not in ("GET", "HEAD"):
                    return _gateway_error(405, "Method not allowed")
                if key[0] != "service_role":
                    return _gateway_error(403, "You cannot consume this service")
                return self._openapi(context, request.method == "HEAD")
            if route.startswith("/rpc/"):
                raise ApiError(
                    404,
                    "PGRST202",
                    f"Could not find the function {context.schema}.{route[5:]} without "
                    "parameters in the schema cache",
                    hint="RPC is not implemented by the angles test gateway",
                )
            table = unquote(route[1:])
            if not table or "/" in table:
                return Response(404, b"", {})
            return self._table_request(request, context, table)
        except ApiError as error:
            return error.response()

    def _authenticate(self, request: RecordedRequest, key: tuple[str, str]) -> _Context:
        authorization = request.header("authorization")
        token = key[1]
        if authorization is not None:
            match = re.match(r"\s*bearer\s*(.*)$", authorization, re.I | re.S)
            if match:
                bearer = match.group(1).strip()
                mapped = self._keys.get(bearer)
                token = mapped[1] if bearer.startswith("sb_") and mapped else bearer
        claims = decode_jwt(token, self.jwt_secret)
        role = claims.get("role") or self.anon_role
        if not role:
            raise ApiError(
                401,
                "PGRST302",
                "Anonymous access is disabled",
                headers={"WWW-Authenticate": "Bearer"},
            )
        write = request.method not in ("GET", "HEAD")
        profile = request.header("content-profile" if write else "accept-profile")
        schema = profile or self.schemas[0]
        if schema not in self.schemas:
            raise ApiError(
                406,
                "PGRST106",
                f"Invalid schema: {schema}",
                hint=f"Only the following schemas are exposed: {', '.join(self.schemas)}",
            )
        headers = {}
        if profile or len(self.schemas) > 1:
            headers["Content-Profile"] = schema
        return _Context(
            role=str(role),
            claims=claims,
            authed=role != self.anon_role,
            apikey_role=key[0],
            schema=schema,
            headers=headers,
        )

    def _begin(
        self, conn: psycopg.Connection[Any], context: _Context, request: RecordedRequest
    ) -> None:
        search_path = ", ".join(
            sql.Identifier(s).as_string(conn)
            for s in dict.fromkeys([context.schema, *self.extra_search_path])
        )
        timeout = self.statement_timeouts.get(context.role, "0")
        conn.execute(
            "SELECT set_config('search_path', %s, true), "
            "set_config('statement_timeout', %s, true), "
            "set_config('role', %s, true), "
            "set_config('request.jwt.claims', %s, true), "
            "set_config('request.method', %s, true), "
            "set_config('request.path', %s, true), "
            "set_config('request.headers', %s, true)",
            [
                search_path,
                timeout,
                context.role,
                json.dumps(context.claims),
                request.method,
                request.path[len("/rest/v1") :],
                json.dumps(request.headers),
            ],
        )

    def _table_request(self, request: RecordedRequest, context: _Context, table: str) -> Response:
        prefs = _parse_prefer(request.header("prefer"))
        if prefs.get("handling") == "strict":
            invalid = [
                f"{k}={v}" if v else k
                for k, v in prefs.items()
                if k != "max-affected" and v not in _VALID_PREFERENCES.get(k, ())
            ]
            if invalid:
                raise ApiError(
                    400,
                    "PGRST122",
                    "Invalid preferences given with handling=strict",
                    f"Invalid preferences: {', '.join(invalid)}",
                )
        accept = (request.header("accept") or "*/*").lower()
        single = "application/vnd.pgrst.object+json" in accept
        if "text/csv" in accept and "json" not in accept and "*/*" not in accept:
            raise ApiError(406, "PGRST107", "None of these media types are available: text/csv")
        method = request.method
        handlers: dict[str, Callable[..., Response]] = {
            "GET": self._read,
            "HEAD": self._read,
            "POST": self._insert,
            "PATCH": self._update,
            "DELETE": self._delete,
        }
        handler = handlers.get(method)
        if handler is None:
            raise ApiError(405, "PGRST117", f"Unsupported HTTP method: {method}")
        with self._pool.connection() as conn:
            conn.read_only = method in ("GET", "HEAD")
            try:
                self._begin(conn, context, request)
                response = handler(conn, request, context, table, prefs, single)
                if response.status >= 400:
                    conn.rollback()
                else:
                    conn.commit()
            except psycopg.Error as exc:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
                error = _from_pg(exc, context.authed)
                if error.code in ("42P01", "3F000") and (
                    f'"{context.schema}.{table}"' in error.message
                    or f'"{context.schema}"' in error.message
                ):
                    error = self._table_not_found(conn, context.schema, table)
                raise error from None
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
                raise
        response.headers.update(context.headers)
        return response

    def _table_not_found(self, conn: psycopg.Connection[Any], schema: str, table: str) -> ApiError:
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
        names = [
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r','v','m','f','p')",
                [schema],
            )
        ]
        conn.rollback()
        suggestion = fuzzy_match(table, names)
        hint = f"Perhaps you meant the table '{schema}.{suggestion}'" if suggestion else None
        return ApiError(
            404,
            "PGRST205",
            f"Could not find the table '{schema}.{table}' in the schema cache",
            hint=hint,
        )

    def _table(self, conn: psycopg.Connection[Any], schema: str, name: str) -> _Table:
        rows = conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod),
                   pg_get_expr(d.adbin, d.adrelid), a.attidentity,
                   coalesce(a.attnum = ANY(i.indkey), false)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
            LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
            WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r','v','m','f','p')
            ORDER BY a.attnum
            """,
            [schema, name],
        ).fetchall()
        if not rows:
            raise self._table_not_found(conn, schema, name)
        columns = {r[0]: _Column(r[0], r[1], r[2], r[3]) for r in rows}
        return _Table(schema, name, columns, [r[0] for r in rows if r[4]])

    # -- reads ------------------------------------------------------------------------------

    def _ranges(self, request: RecordedRequest) -> tuple[int, int | None]:
        """The (offset, limit) after Range, limit/offset and db-max-rows."""
        query = request.query
        limit = _int_param(query, "limit")
        offset = _int_param(query, "offset") or 0
        if limit is not None and limit < 0:
            raise ApiError(
                416,
                "PGRST103",
                "Requested range not satisfiable",
                "Limit should be greater than or equal to zero.",
            )
        low, high = offset, (None if limit is None else offset + limit - 1)
        header = request.header("range") if request.method == "GET" else None
        if header:
            match = re.fullmatch(r"\s*(?:items=)?(\d+)-(\d*)\s*", header)
            if match:
                h_low = int(match.group(1))
                h_high = int(match.group(2)) if match.group(2) else None
                if h_high is not None and h_low > h_high:
                    raise ApiError(
                        416,
                        "PGRST103",
                        "Requested range not satisfiable",
                        "The lower boundary must be lower than or equal to the upper boundary "
                        "in the Range header.",
                    )
                low = max(low, h_low)
                if h_high is not None:
                    high = h_high if high is None else min(high, h_high)
        if self.max_rows is not None:
            cap = low + self.max_rows - 1
            high = cap if high is None else min(high, cap)
        return low, (None if high is None else max(0, high - low + 1))

    def _read(
        self,
        conn: psycopg.Connection[Any],
        request: RecordedRequest,
        context: _Context,
        table: str,
        prefs: dict[str, str],
        single: bool,
    ) -> Response:
        head = request.method == "HEAD"
        offset, limit = self._ranges(request)
        rel = sql.Identifier(context.schema, table)
        where = _where_sql(rel, request.query)
        where_sql = (
            sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(where)) if where else sql.SQL("")
        )
        select = _select_sql(rel, _param(request.query, "select") or "*")
        order = _param(request.query, "order")
        order_sql = (
            sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(_order_sql(rel, order)))
            if order
            else sql.SQL("")
        )
        limit_sql = (
            sql.SQL(" LIMIT {}").format(sql.Literal(limit)) if limit is not None else sql.SQL("")
        )
        offset_sql = sql.SQL(" OFFSET {}").format(sql.Literal(offset)) if offset else sql.SQL("")
        source = sql.SQL("SELECT {} FROM {}{}{}{}{}").format(
            select, rel, where_sql, order_sql, limit_sql, offset_sql
        )
        count_method = prefs.get("count")
        if count_method not in ("exact", "planned", "estimated"):
            count_method = None
        count_query = sql.SQL("SELECT 1 FROM {}{}").format(rel, where_sql)
        count_sql: sql.Composable = sql.SQL("NULL::bigint")
        if count_method in ("exact", "estimated"):
            count_sql = sql.SQL("(SELECT pg_catalog.count(*) FROM ({}) _postgrest_count)").format(
                count_query
            )
        if head:
            body_sql: sql.Composable = sql.SQL("NULL::text")
        elif single:
            body_sql = sql.SQL("coalesce((json_agg(_postgrest_t)->0)::text, 'null')")
        else:
            body_sql = sql.SQL("coalesce(json_agg(_postgrest_t), '[]')::text")
        statement = sql.SQL(
            "WITH pgrst_source AS ({}) SELECT {} AS total_result_set, "
            "pg_catalog.count(_postgrest_t) AS page_total, {} AS body "
            "FROM (SELECT * FROM pgrst_source) _postgrest_t"
        ).format(source, count_sql, body_sql)
        total, page_total, body = conn.execute(statement).fetchone()  # type: ignore[misc]
        if count_method == "planned" or (
            count_method == "estimated" and self.max_rows is not None and total > self.max_rows
        ):
            plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(count_query)).fetchone()[
                0
            ]  # type: ignore[index]
            planned = int(plan[0]["Plan"]["Plan Rows"])
            total = planned if count_method == "planned" else max(total, planned)
        headers: dict[str, str] = {}
        if count_method:
            headers["Preference-Applied"] = f"count={count_method}"
        lower, upper = offset, offset + page_total - 1
        if total is not None and lower > total:
            headers["Content-Range"] = f"*/{total}"
            raise ApiError(
                416,
                "PGRST103",
                "Requested range not satisfiable",
                f"An offset of {lower} was requested, but there are only {total} rows.",
                headers=headers | context.headers,
            )
        headers["Content-Range"] = _content_range(lower, upper, total)
        status = 200
        if total is not None and (1 + upper - lower) < total:
            status = 206
        if single and page_total != 1:
            raise _single_error(page_total)
        content_type = "application/vnd.pgrst.object+json; charset=utf-8" if single else JSON_TYPE
        headers["Content-Type"] = content_type
        return Response(status, b"" if head else body.encode(), headers)

    # -- writes -----------------------------------------------------------------------------

    def _payload(self, request: RecordedRequest) -> Any:
        try:
            payload = json.loads(request.body) if request.body.strip() else None
        except ValueError:
            payload = None
        valid = isinstance(payload, dict) or (
            isinstance(payload, list) and all(isinstance(row, dict) for row in payload)
        )
        if not valid:
            raise ApiError(400, "PGRST102", "Empty or invalid json")
        return payload

    def _write_columns(
        self, request: RecordedRequest, table: _Table, payload: Any, rows_must_match: bool
    ) -> list[str]:
        columns_param = _param(request.query, "columns")
        rows = payload if isinstance(payload, list) else [payload]
        if columns_param is not None:
            names = _parse_columns(columns_param)
        elif rows:
            names = list(rows[0])
            if rows_must_match:
                first = set(names)
                if any(set(row) != first for row in rows[1:]):
                    raise ApiError(400, "PGRST102", "All object keys must match")
        else:
            names = []
        for name in names:
            if name not in table.columns:
                raise ApiError(
                    400,
                    "PGRST204",
                    f"Could not find the '{name}' column of '{table.name}' in the schema cache",
                )
        return list(dict.fromkeys(names))

    def _body_source(
        self, table: _Table, columns: list[str], missing_default: bool
    ) -> sql.Composable:
        """A SELECT of the payload (parameter %s, a JSON array) typed as the columns."""
        if not columns:
            return sql.SQL("SELECT FROM json_array_elements(%s::json)")
        definitions = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(table.columns[c].type))
            for c in columns
        )
        if not missing_default:
            return sql.SQL("SELECT * FROM json_to_recordset(%s::json) AS _({})").format(definitions)
        values = []
        for name in columns:
            column = table.columns[name]
            if column.identity:
                default: sql.Composable = sql.SQL("nextval(pg_get_serial_sequence({}, {}))").format(
                    sql.Literal(table.rel.as_string(None)), sql.Literal(name)
                )
            elif column.default is not None:
                default = sql.SQL(column.default)
            else:
                default = sql.SQL("NULL")
            values.append(
                sql.SQL(
                    "CASE WHEN _e.elem -> {key} IS NULL THEN {default} ELSE _r.{col} END AS {col}"
                ).format(key=sql.Literal(name), default=default, col=sql.Identifier(name))
            )
        return sql.SQL(
            "SELECT {} FROM json_array_elements(%s::json) AS _e(elem), "
            "LATERAL json_to_record(_e.elem) AS _r({})"
        ).format(sql.SQL(", ").join(values), definitions)

    def _mutation_response(
        self,
        conn: psycopg.Connection[Any],
        statement: sql.Composable,
        params: Sequence[Any],
        request: RecordedRequest,
        table: _Table,
        prefs: dict[str, str],
        single: bool,
    ) -> tuple[int, int, str | None]:
        """Run a write whose CTE is ``pgrst_source``; return (rows, inserted rows, body)."""
        representation = prefs.get("return") == "representation"
        if representation:
            select = _select_sql(
                sql.Identifier(table.name),
                _param(request.query, "select") or "*",
                star=list(table.columns),
            )
            agg = (
                "coalesce((json_agg(_postgrest_t)->0)::text, 'null')"
                if single
                else "coalesce(json_agg(_postgrest_t), '[]')::text"
            )
            body_sql = sql.SQL(
                "(SELECT {agg} FROM (SELECT {select} FROM pgrst_source AS {alias}) _postgrest_t)"
            ).format(agg=sql.SQL(agg), select=select, alias=sql.Identifier(table.name))
        else:
            body_sql = sql.SQL("NULL::text")
        query = sql.SQL(
            "{} SELECT (SELECT pg_catalog.count(*) FROM pgrst_source), "
            "(SELECT pg_catalog.count(*) FROM pgrst_source WHERE pgrst_source.pgrst_inserted), "
            "{}"
        ).format(statement, body_sql)
        rows, inserted, body = conn.execute(query, params).fetchone()  # type: ignore[misc]
        if prefs.get("handling") == "strict" and "max-affected" in prefs:
            with contextlib.suppress(ValueError):
                if rows > int(prefs["max-affected"]):
                    raise ApiError(
                        400,
                        "PGRST124",
                        "Query result exceeds max-affected preference constraint",
                        f"The query affects {rows} rows",
                    )
        if single and representation and rows != 1:
            raise _single_error(rows)
        return rows, inserted, body

    def _write_headers(
        self, prefs: dict[str, str], applied: Sequence[str], content_range: str
    ) -> dict[str, str]:
        headers = {"Content-Range": content_range}
        names = [name for name in applied if prefs.get(name) in _VALID_PREFERENCES.get(name, ())]
        if prefs.get("handling") == "strict" and "max-affected" in prefs:
            names.append("max-affected")
        if names:
            headers["Preference-Applied"] = ", ".join(f"{n}={prefs[n]}" for n in names)
        return headers

    def _insert(
        self,
        conn: psycopg.Connection[Any],
        request: RecordedRequest,
        context: _Context,
        table_name: str,
        prefs: dict[str, str],
        single: bool,
    ) -> Response:
        payload = self._payload(request)
        table = self._table(conn, context.schema, table_name)
        columns = self._write_columns(request, table, payload, rows_must_match=True)
        rows = payload if isinstance(payload, list) else [payload]
        resolution = prefs.get("resolution")
        on_conflict = _param(request.query, "on_conflict")
        conflict_columns = _parse_columns(on_conflict) if on_conflict else table.primary_key
        conflict_sql = sql.SQL("")
        if resolution in ("merge-duplicates", "ignore-duplicates") and conflict_columns:
            target = sql.SQL(", ").join(sql.Identifier(c) for c in conflict_columns)
            if resolution == "ignore-duplicates" or not columns:
                conflict_sql = sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(target)
            else:
                updates = sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns
                )
                conflict_sql = sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(target, updates)
        else:
            resolution = None
        column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        source = self._body_source(table, columns, prefs.get("missing") == "default")
        # xmax = 0 tells an inserted row from an updated one (views have no xmax).
        inserted_sql = (
            sql.SQL("({}.xmax = 0)").format(table.rel)
            if resolution == "merge-duplicates"
            else sql.SQL("true")
        )
        statement = sql.SQL(
            "WITH pgrst_body AS ({source}), pgrst_source AS ("
            "INSERT INTO {rel}{cols} SELECT {values} FROM pgrst_body{conflict} "
            "RETURNING {rel}.*, {inserted} AS pgrst_inserted)"
        ).format(
            inserted=inserted_sql,
            source=source,
            rel=table.rel,
            cols=sql.SQL("({})").format(column_list) if columns else sql.SQL(""),
            values=column_list if columns else sql.SQL(""),
            conflict=conflict_sql,
        )
        count, inserted, body = self._mutation_response(
            conn, statement, [json.dumps(rows)], request, table, prefs, single
        )
        status = 201
        if resolution == "merge-duplicates" and inserted == 0:
            status = 200
        counted = prefs.get("count") in _VALID_PREFERENCES["count"]
        headers = self._write_headers(
            prefs,
            ["resolution", "missing", "return", "count", "handling"],
            f"*/{count}" if counted else "*/*",
        )
        return self._write_response(status, headers, body, single)

    def _write_response(
        self, status: int, headers: dict[str, str], body: str | None, single: bool
    ) -> Response:
        if body is None:
            return Response(status, b"", headers)
        headers["Content-Type"] = (
            "application/vnd.pgrst.object+json; charset=utf-8" if single else JSON_TYPE
        )
        return Response(status, body.encode(), headers)

    def _filtered(self, request: RecordedRequest, rel: sql.Composable, verb: str) -> sql.Composable:
        where = _where_sql(rel, request.query)
        if not where:
            # Supabase preloads pg-safeupdate for the API's sessions.
            raise ApiError(400, "21000", f"{verb} requires a WHERE clause")
        return sql.SQL(" AND ").join(where)

    def _update(
        self,
        conn: psycopg.Connection[Any],
        request: RecordedRequest,
        context: _Context,
        table_name: str,
        prefs: dict[str, str],
        single: bool,
    ) -> Response:
        payload = self._payload(request)
        table = self._table(conn, context.schema, table_name)
        columns = self._write_columns(request, table, payload, rows_must_match=False)
        where = self._filtered(request, table.rel, "UPDATE")
        row = payload[0] if isinstance(payload, list) and payload else payload
        if not columns or not row:
            rows, body = 0, ("[]" if prefs.get("return") == "representation" else None)
        else:
            assignments = sql.SQL(", ").join(
                sql.SQL("{0} = pgrst_body.{0}").format(sql.Identifier(c)) for c in columns
            )
            statement = sql.SQL(
                "WITH pgrst_body AS ({source} LIMIT 1), pgrst_source AS ("
                "UPDATE {rel} SET {assignments} FROM pgrst_body WHERE {where} "
                "RETURNING {rel}.*, false AS pgrst_inserted)"
            ).format(
                source=self._body_source(table, columns, False),
                rel=table.rel,
                assignments=assignments,
                where=where,
            )
            rows, _, body = self._mutation_response(
                conn, statement, [json.dumps([row])], request, table, prefs, single
            )
        counted = prefs.get("count") in _VALID_PREFERENCES["count"]
        range_text = _content_range(0, rows - 1, rows if counted else None)
        headers = self._write_headers(prefs, ["return", "count", "handling"], range_text)
        status = 200 if body is not None else 204
        return self._write_response(status, headers, body, single)

    def _delete(
        self,
        conn: psycopg.Connection[Any],
        request: RecordedRequest,
        context: _Context,
        table_name: str,
        prefs: dict[str, str],
        single: bool,
    ) -> Response:
        table = self._table(conn, context.schema, table_name)
        where = self._filtered(request, table.rel, "DELETE")
        statement = sql.SQL(
            "WITH pgrst_source AS (DELETE FROM {rel} WHERE {where} "
            "RETURNING {rel}.*, false AS pgrst_inserted)"
        ).format(rel=table.rel, where=where)
        rows, _, body = self._mutation_response(conn, statement, [], request, table, prefs, single)
        counted = prefs.get("count") in _VALID_PREFERENCES["count"]
        headers = self._write_headers(
            prefs, ["return", "count", "handling"], f"*/{rows}" if counted else "*/*"
        )
        return self._write_response(200 if body is not None else 204, headers, body, single)

    # -- OpenAPI ----------------------------------------------------------------------------

    def _openapi(self, context: _Context, head: bool) -> Response:
        with self._pool.connection() as conn:
            conn.read_only = True
            try:
                document = _openapi_document(conn, context.schema, f"{self.host}:{self.port}")
            finally:
                conn.rollback()
        headers = {"Content-Type": "application/openapi+json; charset=utf-8", **context.headers}
        return Response(200, b"" if head else _dumps(document), headers)


def _content_range(lower: int, upper: int, total: int | None) -> str:
    """RangeQuery.hs ``contentRangeH``."""
    in_range = total != 0 and lower <= upper
    range_text = f"{lower}-{upper}" if in_range else "*"
    return f"{range_text}/{'*' if total is None else total}"


def _single_error(rows: int) -> ApiError:
    return ApiError(
        406,
        "PGRST116",
        "Cannot coerce the result to a single JSON object",
        f"The result contains {rows} rows",
    )


# --------------------------------------------------------------------------------------------
# OpenAPI (Swagger 2.0), after PostgREST's Response/OpenAPI.hs
# --------------------------------------------------------------------------------------------

_OPENAPI_COLUMNS = """
SELECT c.relname, c.relkind, obj_description(c.oid, 'pg_class'),
       a.attname, format_type(a.atttypid, NULL), a.atttypmod, a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, col_description(c.oid, a.attnum),
       t.typtype, t.typcategory, format_type(t.typelem, NULL),
       (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder)
          FROM pg_enum e WHERE e.enumtypid = a.atttypid),
       coalesce(a.attnum = ANY(pk.conkey), false),
       fk.table_name, fk.column_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
LEFT JOIN LATERAL (
    SELECT fc.relname AS table_name, fa.attname AS column_name
    FROM pg_constraint f
    JOIN pg_class fc ON fc.oid = f.confrelid
    JOIN pg_attribute fa ON fa.attrelid = f.confrelid AND fa.attnum = f.confkey[1]
    WHERE f.conrelid = c.oid AND f.contype = 'f' AND cardinality(f.conkey) = 1
      AND f.conkey[1] = a.attnum
    LIMIT 1
) fk ON true
WHERE n.nspname = %s AND c.relkind IN ('r','v','m','f','p')
ORDER BY c.relname, a.attnum
"""

_STRING_TYPES = {"character varying", "character", "text"}
_INTEGER_TYPES = {"smallint", "integer", "bigint"}
_NUMBER_TYPES = {"numeric", "real", "double precision"}


def _swagger_type(type_name: str) -> str | None:
    if type_name in _STRING_TYPES:
        return "string"
    if type_name in _INTEGER_TYPES:
        return "integer"
    if type_name in _NUMBER_TYPES:
        return "number"
    if type_name == "boolean":
        return "boolean"
    if type_name in ("json", "jsonb"):
        return None
    if type_name.endswith("[]"):
        return "array"
    return "string"


def _openapi_default(default: str | None, identity: str, swagger_type: str | None) -> Any:
    if default is None or identity or default.startswith("nextval("):
        return None
    literal = re.fullmatch(r"'((?:[^']|'')*)'::[\w\s\[\]\".]+", default)
    text = literal.group(1).replace("''", "'") if literal else default
    if swagger_type == "string":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None


def _openapi_document(conn: psycopg.Connection[Any], schema: str, host: str) -> dict[str, Any]:
    comment = conn.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
        [schema],
    ).fetchone()
    if comment and comment[0]:
        title, _, description = comment[0].partition("\n")
    else:
        title, description = "PostgREST API", "This is a dynamic API generated by PostgREST"
    tables: dict[str, dict[str, Any]] = {}
    columns_of: dict[str, list[str]] = {}
    for row in conn.execute(_OPENAPI_COLUMNS, [schema]):
        (
            relname,
            relkind,
            table_comment,
            name,
            type_name,
            typmod,
            notnull,
            default,
            identity,
            column_comment,
            typtype,
            category,
            element,
            labels,
            is_pk,
            fk_table,
            fk_column,
        ) = row
        definition = tables.setdefault(relname, {"required": [], "properties": {}})
        if table_comment:
            definition["description"] = table_comment
        definition["relkind"] = relkind
        columns_of.setdefault(relname, []).append(name)
        swagger_type = "string" if typtype == "e" else _swagger_type(type_name)
        prop: dict[str, Any] = {"format": type_name}
        if swagger_type:
            prop["type"] = swagger_type
        if category == "A":
            items_type = _swagger_type(element)
            prop["items"] = {"type": items_type} if items_type else {}
        if type_name in ("character varying", "character") and typmod > 4:
            prop["maxLength"] = typmod - 4
        if labels:
            prop["enum"] = list(labels)
        value = _openapi_default(default, identity, swagger_type)
        if value is not None:
            prop["default"] = value
        notes = ["Note:"]
        if is_pk:
            notes.append("This is a Primary Key.<pk/>")
        if fk_table:
            notes.append(
                f"This is a Foreign Key to `{fk_table}.{fk_column}`."
                f"<fk table='{fk_table}' column='{fk_column}'/>"
            )
        if len(notes) > 1:
            prefix = f"{column_comment}\n\n" if column_comment else ""
            prop["description"] = prefix + "\n".join(notes)
        elif column_comment:
            prop["description"] = column_comment
        definition["properties"][name] = dict(sorted(prop.items()))
        if notnull:
            definition["required"].append(name)
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "produces": ["application/openapi+json", "application/json"],
                "responses": {"200": {"description": "OK"}},
                "summary": "OpenAPI description (this document)",
                "tags": ["Introspection"],
            }
        }
    }
    definitions: dict[str, Any] = {}
    parameters = _openapi_parameters()
    for relname, definition in tables.items():
        relkind = definition.pop("relkind")
        ordered: dict[str, Any] = {}
        if "description" in definition:
            ordered["description"] = definition["description"]
        if definition["required"]:
            ordered["required"] = definition["required"]
        ordered["properties"] = definition["properties"]
        ordered["type"] = "object"
        definitions[relname] = ordered
        filters = []
        for column in columns_of[relname]:
            key = f"rowFilter.{relname}.{column}"
            parameters[key] = {
                "name": column,
                "required": False,
                "format": definition["properties"][column]["format"],
                "in": "query",
                "type": "string",
            }
            filters.append({"$ref": f"#/parameters/{key}"})
        parameters[f"body.{relname}"] = {
            "name": relname,
            "description": relname,
            "required": False,
            "in": "body",
            "schema": {"$ref": f"#/definitions/{relname}"},
        }
        refs = {n: {"$ref": f"#/parameters/{n}"} for n in parameters}
        path: dict[str, Any] = {
            "get": {
                "parameters": [
                    *filters,
                    refs["select"],
                    refs["order"],
                    refs["range"],
                    refs["rangeUnit"],
                    refs["offset"],
                    refs["limit"],
                    refs["preferCount"],
                ],
                "responses": {
                    "200": {
                        "description": "OK",
                        "schema": {
                            "items": {"$ref": f"#/definitions/{relname}"},
                            "type": "array",
                        },
                    },
                    "206": {"description": "Partial Content"},
                },
                "tags": [relname],
            }
        }
        if relkind in ("r", "p", "f", "v"):
            path["post"] = {
                "parameters": [refs[f"body.{relname}"], refs["select"], refs["preferPost"]],
                "responses": {"201": {"description": "Created"}},
                "tags": [relname],
            }
            path["delete"] = {
                "parameters": [*filters, refs["preferReturn"]],
                "responses": {"204": {"description": "No Content"}},
                "tags": [relname],
            }
            path["patch"] = {
                "parameters": [*filters, refs[f"body.{relname}"], refs["preferReturn"]],
                "responses": {"204": {"description": "No Content"}},
                "tags": [relname],
            }
        paths[f"/{relname}"] = path
    media = [
        "application/json",
        "application/vnd.pgrst.object+json;nulls=stripped",
        "application/vnd.pgrst.object+json",
        "text/csv",
    ]
    return {
        "swagger": "2.0",
        "info": {
            "description": description.strip(),
            "title": title,
            "version": f"{POSTGREST_VERSION} (angles-test)",
        },
        "host": host,
        "basePath": "/",
        "schemes": ["http"],
        "consumes": media,
        "produces": media,
        "paths": paths,
        "definitions": definitions,
        "parameters": parameters,
        "externalDocs": {
            "description": "PostgREST Documentation",
            "url": "https://postgrest.org/en/v13/references/api.html",
        },
    }


def _openapi_parameters() -> dict[str, Any]:
    def prefer(values: list[str]) -> dict[str, Any]:
        return {
            "name": "Prefer",
            "description": "Preference",
            "required": False,
            "enum": values,
            "in": "header",
            "type": "string",
        }

    def query(name: str, description: str) -> dict[str, Any]:
        return {
            "name": name,
            "description": description,
            "required": False,
            "in": "query",
            "type": "string",
        }

    returns = ["return=representation", "return=minimal", "return=none"]
    return {
        "preferParams": prefer(["params=single-object"]),
        "preferReturn": prefer(returns),
        "preferCount": prefer(["count=none"]),
        "preferPost": prefer(
            [*returns, "resolution=ignore-duplicates", "resolution=merge-duplicates"]
        ),
        "select": query("select", "Filtering Columns"),
        "on_conflict": query("on_conflict", "On Conflict"),
        "order": query("order", "Ordering"),
        "range": {
            "name": "Range",
            "description": "Limiting and Pagination",
            "required": False,
            "in": "header",
            "type": "string",
        },
        "rangeUnit": {
            "name": "Range-Unit",
            "description": "Limiting and Pagination",
            "required": False,
            "default": "items",
            "in": "header",
            "type": "string",
        },
        "offset": query("offset", "Limiting and Pagination"),
        "limit": query("limit", "Limiting and Pagination"),
    }
