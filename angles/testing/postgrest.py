"""A PostgREST-compatible gateway over a real PostgreSQL, as Supabase serves it at ``/rest/v1``.

:class:`PostgrestServer` reproduces what ``/work/shared/reference/postgrest.md`` documents
and what PostgREST's source says (v13.0.7 to v14, behind Supabase's API gateway): the
``apikey`` check and its two 401 bodies, HS256 JWTs with ``anon``/``service_role``, one
transaction per request with the role and claims set, filters and logic trees parsed by
PostgREST's grammar (``postgrest_query``), ordering, ``limit``/``offset``/``Range`` and
db-max-rows, counting and ``Content-Range`` with 200/206/416, content negotiation (JSON,
single objects, nulls stripped, CSV; plans disabled as on Supabase) and ``Prefer``
(``postgrest_request``), inserts and upserts through ``json_to_recordset``, PATCH and DELETE
(refused without a filter), PostgREST's error bodies and status mapping, and the OpenAPI
root (``postgrest_openapi``). Row bodies are built by PostgreSQL with ``json_agg`` and passed
through untouched, so the bytes are PostgREST's. docs/fidelity.md lists each rule, its
upstream source and its test.

Not implemented: resource embedding (``rel(cols)``, refused with PGRST100/PGRST108), RPC
(``/rpc/fn``), PUT, aggregates, ``return=headers-only``'s Location header, plans.

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
from urllib.parse import quote, unquote

import psycopg
from psycopg import sql

from angles.testing.postgres import (
    ensure_supabase_roles,
    grant_supabase_roles,
)
from angles.testing.postgrest_openapi import openapi_document
from angles.testing.postgrest_query import Field as QueryField
from angles.testing.postgrest_query import (
    Filter,
    Logic,
    OrderTerm,
    QueryParamError,
    parse_columns,
    parse_filter,
    parse_logic,
    parse_order,
)
from angles.testing.postgrest_request import (
    ANY,
    ARRAY_STRIPPED,
    CSV,
    GEOJSON,
    JSON,
    OBJECT,
    OBJECT_STRIPPED,
    OPENAPI,
    MediaType,
    Preferences,
    Range,
    negotiate,
    parse_accept,
    read_integer,
    requested_range,
    unavailable_message,
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


def _version_tuple(version: str) -> tuple[int, ...]:
    """``"14.5"`` -> (14, 5); only the releases the imitation knows are accepted."""
    try:
        numbers = tuple(int(part) for part in version.split("."))
    except ValueError:
        numbers = ()
    if not (13, 0, 7) <= numbers < (15,):
        raise ValueError(f"PostgREST version {version!r}: the imitation knows 13.0.7 to 14.x")
    return numbers


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

    def payload(self) -> bytes:
        """``toJsonPgrstError``: code, details, hint and message, keys in order, nulls kept."""
        body = {"code": self.code, "details": self.details, "hint": self.hint}
        body["message"] = self.message
        return _dumps(body, sort_keys=True)

    def response(self) -> Response:
        """The HTTP response PostgREST sends for this error (``errorResponseFor``)."""
        headers = {
            "Content-Type": JSON_TYPE,
            "Proxy-Status": f"PostgREST; error={self.code}",
            **self.headers,
        }
        return Response(self.status, self.payload(), headers)


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
    if sqlstate == "42883" and message.startswith("function xmlagg("):
        return 406
    if sqlstate in exact:
        return exact[sqlstate]
    if sqlstate.startswith("PT"):  # HTTP.mkStatus <$> readMaybe n, else 500
        status = read_integer(sqlstate[2:])
        return status if status is not None else 500
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

_NON_FILTER_PARAMS = {"select", "columns", "on_conflict", "apikey"}
_NON_FILTER_SUFFIXES = {"order", "limit", "offset", "and", "or"}
_CAST_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*(\[\])?")
_COMPARISONS = {
    "eq": "=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "neq": "<>",
    "like": "like",
    "ilike": "ilike",
    "match": "~",
    "imatch": "~*",
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


def _param(query: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in query:
        if key == name:
            return value
    return None


def _last_segment(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _trim_nul(text: str) -> str:
    """``trimNullChars``: identifiers and array elements end at a NUL character."""
    return text.split("\0", 1)[0]


def _query_error(error: QueryParamError) -> ApiError:
    return ApiError(400, "PGRST100", error.message, error.details)


@dataclass
class _Query:
    """A query string as ``QueryParams.parse`` reads it; embedded paths are kept to be refused."""

    filters: list[tuple[tuple[str, ...], Filter]]
    logic: list[tuple[tuple[str, ...], Logic]]
    order: list[tuple[tuple[str, ...], list[OrderTerm]]]
    columns: list[str] | None
    on_conflict: list[str] | None
    select: str
    canonical: str
    range_keys: list[str]

    @classmethod
    def parse(cls, query: Sequence[tuple[str, str]]) -> _Query:
        """Parse in PostgREST's order (order, logic, columns, filters, on_conflict): the first
        bad parameter in that order is the one reported."""
        try:
            order = [parse_order(k, v) for k, v in query if _last_segment(k) == "order"]
            logic = [parse_logic(k, v) for k, v in query if _last_segment(k) in ("and", "or")]
            columns_text = _param(query, "columns")
            columns = parse_columns(columns_text) if columns_text is not None else None
            filters = [
                parse_filter(k, v)
                for k, v in query
                if k not in _NON_FILTER_PARAMS and _last_segment(k) not in _NON_FILTER_SUFFIXES
            ]
            conflict_text = _param(query, "on_conflict")
            on_conflict = (
                parse_columns(conflict_text, "on_conflict") if conflict_text is not None else None
            )
        except QueryParamError as error:
            raise _query_error(error) from None
        range_keys = [k for k, _ in query if _last_segment(k) in ("limit", "offset")]
        return cls(
            filters,
            logic,
            order,
            columns,
            on_conflict,
            _param(query, "select") or "*",
            _canonical(query),
            range_keys,
        )

    def refuse_embedding(self) -> None:
        """PGRST108 for a filter, order or range on an embedding (embedding is not imitated)."""
        paths = [path for path, _ in [*self.filters, *self.logic, *self.order]]
        paths += [tuple(key.split(".")[:-1]) for key in self.range_keys]
        relations = [term.relation for _, terms in self.order for term in terms if term.relation]
        for name in [path[0] for path in paths if path] + relations:
            raise ApiError(
                400,
                "PGRST108",
                f"'{name}' is not an embedded resource in this request",
                hint=f"Verify that '{name}' is included in the 'select' query parameter.",
            )

    def where(self, rel: sql.Composable) -> list[sql.Composable]:
        """The filters, then the logic trees, each a condition ANDed by the caller."""
        conditions = [_filter_sql(rel, flt) for _, flt in self.filters]
        return conditions + [_logic_sql(rel, tree) for _, tree in self.logic]

    def order_by(self, rel: sql.Composable) -> list[sql.Composable]:
        """``orderF``: the terms of the (last) top-level ``order``."""
        top = [terms for path, terms in self.order if not path]
        return [_order_term_sql(rel, term) for term in (top[-1] if top else [])]


def _canonical(query: Sequence[tuple[str, str]]) -> str:
    """``qsCanonical``: sorted by name, repeated names joined by commas, percent-encoded."""
    grouped: dict[str, list[str]] = {}
    for key, value in sorted(query, key=lambda item: item[0]):
        grouped.setdefault(key, []).append(value)

    def encode(text: str) -> str:
        return quote(text, safe="")

    return "&".join(
        f"{encode(k)}={','.join(encode(v) for v in values)}" for k, values in grouped.items()
    )


def _field_sql(rel: sql.Composable, fld: QueryField) -> sql.Composable:
    """``pgFmtField``: the column, then ``->``/``->>`` with a key or an ``::int`` index."""
    expr: sql.Composable = sql.SQL("{}.{}").format(rel, sql.Identifier(_trim_nul(fld.name)))
    for arrow, key in fld.json_path:
        operand = (
            sql.SQL("{}::int").format(sql.Literal(f"{key:+d}"))
            if isinstance(key, int)
            else sql.Literal(key)
        )
        expr = sql.SQL("{}{}{}").format(expr, sql.SQL(arrow), operand)
    return expr


def _array_literal(values: Sequence[str]) -> str:
    """``pgBuildArrayLiteral``: ``{"a","b \\"c\\""}``."""

    def escaped(value: str) -> str:
        return '"' + _trim_nul(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(escaped(value) for value in values) + "}"


def _filter_sql(rel: sql.Composable, flt: Filter) -> sql.Composable:
    """``pgFmtFilter`` (Query/SqlFragment.hs)."""
    column = _field_sql(rel, flt.field)
    operand = flt.operand
    if flt.operator == "in":
        values = tuple(operand)
        array = "{}" if values == ("",) else _array_literal(values)
        condition = sql.SQL("{} = ANY({})").format(column, sql.Literal(array))
    elif flt.operator == "is":
        keyword = {"not_null": "NOT NULL"}.get(str(operand), str(operand).upper())
        condition = sql.SQL("{} IS {}").format(column, sql.SQL(keyword))
    elif flt.operator == "isdistinct":
        condition = sql.SQL("{} IS DISTINCT FROM {}").format(column, sql.Literal(operand))
    elif flt.operator in _FTS:
        arguments = [sql.Literal(flt.modifier)] if flt.modifier else []
        arguments.append(sql.Literal(operand))
        condition = sql.SQL("{} @@ {}({})").format(
            column, sql.SQL(_FTS[flt.operator]), sql.SQL(", ").join(arguments)
        )
    else:
        text = str(operand)
        if flt.operator in ("like", "ilike"):
            text = text.replace("*", "%")
        value: sql.Composable = sql.Literal(text)
        if flt.modifier:
            value = sql.SQL("{}({})").format(sql.SQL(flt.modifier.upper()), value)
        condition = sql.SQL("{} {} {}").format(column, sql.SQL(_COMPARISONS[flt.operator]), value)
    return sql.SQL("NOT ({})").format(condition) if flt.negated else condition


def _logic_sql(rel: sql.Composable, tree: Logic | Filter) -> sql.Composable:
    """``pgFmtLogicTree``: ``[NOT] (a OR b ...)``."""
    if isinstance(tree, Filter):
        return _filter_sql(rel, tree)
    joiner = sql.SQL(" AND ") if tree.operator == "and" else sql.SQL(" OR ")
    condition = sql.SQL("({})").format(joiner.join(_logic_sql(rel, c) for c in tree.children))
    return sql.SQL("NOT {}").format(condition) if tree.negated else condition


def _order_term_sql(rel: sql.Composable, term: OrderTerm) -> sql.Composable:
    """``pgFmtOrderTerm``: the field, then ASC/DESC and NULLS FIRST/LAST when given."""
    parts = [_field_sql(rel, term.field)]
    if term.direction:
        parts.append(sql.SQL(term.direction.upper()))
    if term.nulls:
        parts.append(sql.SQL("NULLS FIRST" if term.nulls == "nullsfirst" else "NULLS LAST"))
    return sql.SQL(" ").join(parts)


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
            raise ApiError(503, "PGRST000", "Database connection error.", str(exc)) from None

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
    default); ``statement_timeouts`` maps a role to its ``statement_timeout``; ``version``
    is the PostgREST release imitated, from 13.0.7 to 14.x, where they differ (the 416 body
    that 13.0-14.1 cut to the rows' Content-Length, the integer ``format`` of 14.8+ in
    OpenAPI, the PGRST000 message of 14.13+). These attributes may be changed while the
    server runs; :meth:`reset` restores them.
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
        version: str = POSTGREST_VERSION,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        _version_tuple(version)  # refuse an unsupported version early
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
            "version": version,
        }
        self.version = version
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
        self.version = self._defaults["version"]

    @property
    def _version(self) -> tuple[int, ...]:
        return _version_tuple(self.version)

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
                return self._openapi(request, context)
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
            return self._versioned(error).response()

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
        self,
        conn: psycopg.Connection[Any],
        context: _Context,
        request: RecordedRequest,
        prefs: Preferences,
    ) -> None:
        """``setPgLocals`` (Query.hs): the transaction's settings, role and request GUCs."""
        headers = {k: v for k, v in request.headers.items() if k != "cookie"}
        cookies = dict(
            part.strip().partition("=")[::2]
            for part in request.headers.get("cookie", "").split(";")
            if part.strip()
        )
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
            "set_config('request.headers', %s, true), "
            "set_config('request.cookies', %s, true)",
            [
                search_path,
                timeout,
                context.role,
                json.dumps(context.claims),
                request.method,
                request.path[len("/rest/v1") :],
                json.dumps(headers),
                json.dumps(cookies),
            ],
        )
        if prefs.timezone is not None:
            conn.execute("SELECT set_config('timezone', %s, true)", [prefs.timezone])

    def _table_request(self, request: RecordedRequest, context: _Context, table: str) -> Response:
        handlers: dict[str, Callable[[psycopg.Connection[Any], _Call], Response]] = {
            "GET": self._read,
            "HEAD": self._read,
            "POST": self._insert,
            "PATCH": self._update,
            "DELETE": self._delete,
        }
        handler = handlers.get(request.method)
        if handler is None:
            raise ApiError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")
        # ApiRequest.hs: the query string and the ranges are read before the schema cache.
        query = _Query.parse(request.query)
        top_range, range_error = requested_range(
            request.query, request.method, request.header("range")
        )
        if range_error is not None:
            raise ApiError(416, "PGRST103", "Requested range not satisfiable", range_error)
        with self._pool.connection() as conn:
            conn.read_only = request.method in ("GET", "HEAD")
            try:
                prefs = self._preferences(conn, request)
                self._begin(conn, context, request, prefs)
                call = self._plan(conn, request, context, table, query, top_range, prefs)
                response = handler(conn, call)
                if response.status >= 400:
                    conn.rollback()
                else:
                    conn.commit()
            except psycopg.Error as exc:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
                raise _from_pg(exc, context.authed) from None
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
                raise
        return response

    def _preferences(self, conn: psycopg.Connection[Any], request: RecordedRequest) -> Preferences:
        """The ``Prefer`` header; a ``timezone=`` must name a zone of ``pg_timezone_names``."""
        header = request.header("prefer")
        headers = [header] if header is not None else []
        zones: list[str] = []
        if header and "timezone=" in header:
            zones = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM pg_timezone_names WHERE name = ANY(%s)",
                    [[t.strip()[len("timezone=") :] for t in header.split(",")]],
                )
            ]
            conn.rollback()
        return Preferences.parse(headers, zones)

    def _plan(
        self,
        conn: psycopg.Connection[Any],
        request: RecordedRequest,
        context: _Context,
        table_name: str,
        query: _Query,
        top_range: Range,
        prefs: Preferences,
    ) -> _Call:
        """Plan.hs: find the table, refuse embedding, negotiate the media type, then strict
        preferences, in that order."""
        table = self._table(conn, context.schema, table_name)
        query.refuse_embedding()
        accepts = parse_accept(request.header("accept"))
        media = negotiate(accepts, _PRODUCED)
        if media is None:
            raise ApiError(406, "PGRST107", unavailable_message(accepts))
        if prefs.strict and prefs.invalid:
            raise ApiError(
                400,
                "PGRST122",
                "Invalid preferences given with handling=strict",
                f"Invalid preferences: {', '.join(prefs.invalid)}",
            )
        return _Call(request, context, prefs, query, top_range, media, table)

    def _versioned(self, error: ApiError) -> ApiError:
        """PGRST000 lost its "Retrying the connection." in v14.13 (Error.hs)."""
        if error.code == "PGRST000" and self._version < (14, 13):
            error.message = "Database connection error. Retrying the connection."
        return error

    def _table_not_found(self, conn: psycopg.Connection[Any], schema: str, table: str) -> ApiError:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r','v','m','f','p')",
                [schema],
            )
        ]
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

    def _read(self, conn: psycopg.Connection[Any], call: _Call) -> Response:
        """``prepareRead`` (Query/Statements.hs), then ``actionResponse`` (Response.hs)."""
        head = call.request.method == "HEAD"
        rel = call.table.rel
        where = call.query.where(rel)
        where_sql = (
            sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(where)) if where else sql.SQL("")
        )
        order = call.query.order_by(rel)
        order_sql = (
            sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(order)) if order else sql.SQL("")
        )
        page = call.range.restrict(self.max_rows)
        limit_sql = sql.SQL("")
        if page != Range(0):  # limitOffsetF
            limit = sql.Literal(page.limit) if page.limit is not None else sql.SQL("ALL")
            limit_sql = sql.SQL(" LIMIT {} OFFSET {}").format(limit, sql.Literal(page.lower))
        source = sql.SQL("SELECT {} FROM {}{}{}{}").format(
            _select_sql(rel, call.query.select), rel, where_sql, order_sql, limit_sql
        )
        count_method = call.prefs.get("count")
        count_query = sql.SQL("SELECT 1 FROM {}{}").format(rel, where_sql)
        count_sql: sql.Composable = sql.SQL("NULL::bigint")
        if count_method == "exact" or (count_method == "estimated" and self.max_rows is None):
            count_sql = sql.SQL("(SELECT pg_catalog.count(*) FROM ({}) _postgrest_count)").format(
                count_query
            )
        elif count_method == "estimated":  # limitedQuery: LIMIT max_rows + 1
            count_sql = sql.SQL(
                "(SELECT pg_catalog.count(*) FROM ({} LIMIT {}) _postgrest_count)"
            ).format(count_query, sql.Literal(self.max_rows + 1))  # type: ignore[operator]
        statement = sql.SQL(
            "WITH pgrst_source AS ({}) SELECT {} AS total_result_set, "
            "pg_catalog.count(_postgrest_t) AS page_total, {} AS body "
            "FROM (SELECT * FROM pgrst_source) _postgrest_t"
        ).format(source, count_sql, _aggregate_sql(call.media, "pgrst_source", head))
        total, page_total, body = conn.execute(statement).fetchone()  # type: ignore[misc]
        if count_method == "planned" or (
            count_method == "estimated" and (self.max_rows is None or total > self.max_rows)
        ):
            plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(count_query))
            planned = int(plan.fetchone()[0][0]["Plan"]["Plan Rows"])  # type: ignore[index]
            total = planned if count_method == "planned" else max(total, planned)
        if call.media in (OBJECT, OBJECT_STRIPPED) and page_total != 1:
            raise _single_error(page_total)  # failNotSingular comes before the response
        lower = call.range.lower
        upper = lower + page_total - 1
        headers = {
            "Content-Range": _content_range(lower, upper, total),
            "Content-Location": _header_bytes(
                f"/{call.table.name}" + (f"?{call.query.canonical}" if call.query.canonical else "")
            ),
            **self._content_headers(call),
        }
        applied = call.prefs.applied(["count", "handling", "timezone"])
        if applied:
            headers["Preference-Applied"] = applied
        status = 200
        if total is not None and lower > total:
            error = ApiError(
                416,
                "PGRST103",
                "Requested range not satisfiable",
                f"An offset of {lower} was requested, but there are only {total} rows.",
            )
            payload = error.payload()
            if self._truncates_out_of_range_error and not head:
                # v13.0.0-v14.1 (PostgREST #4455): Content-Length is that of the rows' body.
                headers["Content-Length"] = str(len(body.encode()))
            return Response(416, payload, headers)
        if total is not None and (1 + upper - lower) < total:
            status = 206
        return Response(status, b"" if head else body.encode(), headers)

    def _content_headers(self, call: _Call) -> dict[str, str]:
        """``contentTypeHeaders``: Content-Type, and Content-Profile when negotiated."""
        return {"Content-Type": call.media.content_type, **call.context.headers}

    @property
    def _truncates_out_of_range_error(self) -> bool:
        return (13, 0) <= self._version < (14, 2)

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

    def _write_columns(self, call: _Call, payload: Any, rows_must_match: bool) -> list[str]:
        rows = payload if isinstance(payload, list) else [payload]
        if call.query.columns is not None:
            names = call.query.columns
        elif rows:
            names = list(rows[0])
            if rows_must_match:
                first = set(names)
                if any(set(row) != first for row in rows[1:]):
                    raise ApiError(400, "PGRST102", "All object keys must match")
        else:
            names = []
        for name in names:
            if name not in call.table.columns:
                raise ApiError(
                    400,
                    "PGRST204",
                    f"Could not find the '{name}' column of '{call.table.name}' in the schema cache",
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
        call: _Call,
        check_affected: bool,
    ) -> tuple[int, int, str | None]:
        """Run a write whose CTE is ``pgrst_source``; return (rows, inserted rows, body).

        ``prepareWrite``: the negotiated handler aggregates the ``select`` of the written rows
        only with ``return=representation``; then ``failNotSingular`` and, for PATCH and
        DELETE, ``failExceedsMaxAffectedPref``.
        """
        representation = call.prefs.get("return") == "representation"
        if representation:
            select = _select_sql(
                sql.Identifier(call.table.name),
                call.query.select,
                star=list(call.table.columns),
            )
            selected = sql.SQL(", pgrst_selected AS (SELECT {} FROM pgrst_source AS {})").format(
                select, sql.Identifier(call.table.name)
            )
            body_sql = sql.SQL(
                "(SELECT {} FROM (SELECT * FROM pgrst_selected) _postgrest_t)"
            ).format(_aggregate_sql(call.media, "pgrst_selected", False))
        else:
            selected, body_sql = sql.SQL(""), sql.SQL("NULL::text")
        query = sql.SQL(
            "{}{} SELECT (SELECT pg_catalog.count(*) FROM pgrst_source), "
            "(SELECT pg_catalog.count(*) FROM pgrst_source WHERE pgrst_source.pgrst_inserted), "
            "{}"
        ).format(statement, selected, body_sql)
        rows, inserted, body = conn.execute(query, params).fetchone()  # type: ignore[misc]
        if call.media in (OBJECT, OBJECT_STRIPPED) and rows != 1:
            raise _single_error(rows)
        prefs = call.prefs
        limit = prefs.max_affected if check_affected and prefs.strict else None
        if limit is not None and rows > limit:
            raise ApiError(
                400,
                "PGRST124",
                "Query result exceeds max-affected preference constraint",
                f"The query affects {rows} rows",
            )
        return rows, inserted, body

    def _write_response(
        self, call: _Call, status: int, headers: dict[str, str], body: str | None
    ) -> Response:
        """With ``return=representation`` the body and its content headers; otherwise 204
        (PATCH, DELETE) or an empty body."""
        if body is None:
            return Response(status, b"", headers)
        return Response(status, body.encode(), {**headers, **self._content_headers(call)})

    def _insert(self, conn: psycopg.Connection[Any], call: _Call) -> Response:
        payload = self._payload(call.request)
        table = call.table
        columns = self._write_columns(call, payload, rows_must_match=True)
        rows = payload if isinstance(payload, list) else [payload]
        resolution = call.prefs.get("resolution")
        conflict_columns = call.query.on_conflict or table.primary_key
        conflict_sql = sql.SQL("")
        if resolution is not None and conflict_columns:
            target = sql.SQL(", ").join(sql.Identifier(c) for c in conflict_columns)
            if resolution == "ignore-duplicates" or not columns:
                conflict_sql = sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(target)
            else:
                updates = sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns
                )
                conflict_sql = sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(target, updates)
        column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        source = self._body_source(table, columns, call.prefs.get("missing") == "default")
        # xmax = 0 tells an inserted row from an updated one (views have no xmax).
        inserted_sql = (
            sql.SQL("({}.xmax = 0)").format(table.rel)
            if resolution == "merge-duplicates" and conflict_columns
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
            conn, statement, [json.dumps(rows)], call, check_affected=False
        )
        status = 200 if resolution == "merge-duplicates" and inserted == 0 else 201
        kinds = ["missing", "return", "count", "handling", "timezone"]
        if conflict_columns:  # resolution is reported only where there is a conflict target
            kinds.append("resolution")
        headers = {"Content-Range": _content_range(1, 0, count if call.prefs.counted else None)}
        applied = call.prefs.applied(kinds)
        if applied:
            headers["Preference-Applied"] = applied
        return self._write_response(call, status, headers, body)

    def _filtered(self, call: _Call, verb: str) -> sql.Composable:
        where = call.query.where(call.table.rel)
        if not where:
            # Supabase preloads pg-safeupdate for the API's sessions.
            raise ApiError(400, "21000", f"{verb} requires a WHERE clause")
        return sql.SQL(" AND ").join(where)

    def _update(self, conn: psycopg.Connection[Any], call: _Call) -> Response:
        payload = self._payload(call.request)
        table = call.table
        columns = self._write_columns(call, payload, rows_must_match=False)
        where = self._filtered(call, "UPDATE")
        row = payload[0] if isinstance(payload, list) and payload else payload
        if not columns or not row:
            rows = 0
            body = "[]" if call.prefs.get("return") == "representation" else None
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
                conn, statement, [json.dumps([row])], call, check_affected=True
            )
        counted = call.prefs.counted
        headers = {"Content-Range": _content_range(0, rows - 1, rows if counted else None)}
        applied = call.prefs.applied(
            ["missing", "return", "count", "handling", "timezone", "max-affected"]
        )
        if applied:
            headers["Preference-Applied"] = applied
        return self._write_response(call, 200 if body is not None else 204, headers, body)

    def _delete(self, conn: psycopg.Connection[Any], call: _Call) -> Response:
        table = call.table
        where = self._filtered(call, "DELETE")
        statement = sql.SQL(
            "WITH pgrst_source AS (DELETE FROM {rel} WHERE {where} "
            "RETURNING {rel}.*, false AS pgrst_inserted)"
        ).format(rel=table.rel, where=where)
        rows, _, body = self._mutation_response(conn, statement, [], call, check_affected=True)
        headers = {"Content-Range": _content_range(1, 0, rows if call.prefs.counted else None)}
        applied = call.prefs.applied(["return", "count", "handling", "timezone", "max-affected"])
        if applied:
            headers["Preference-Applied"] = applied
        return self._write_response(call, 200 if body is not None else 204, headers, body)

    # -- OpenAPI ----------------------------------------------------------------------------

    def _openapi(self, request: RecordedRequest, context: _Context) -> Response:
        """``inspectPlan``: only openapi+json, json or */* are accepted; then the document."""
        accepts = parse_accept(request.header("accept"))
        if not any(a in (OPENAPI, JSON, ANY) for a in accepts):
            raise ApiError(406, "PGRST107", unavailable_message(accepts))
        with self._pool.connection() as conn:
            conn.read_only = True
            try:
                self._begin(conn, context, request, Preferences())
                document = openapi_document(
                    conn,
                    context.schema,
                    f"{self.host}:{self.port}",
                    self.version,
                    integer_formats=self._version >= (14, 8),
                )
            except psycopg.Error as exc:
                raise _from_pg(exc, context.authed) from None
            finally:
                conn.rollback()
        headers = {"Content-Type": "application/openapi+json; charset=utf-8", **context.headers}
        return Response(200, b"" if request.method == "HEAD" else _dumps(document), headers)


_PRODUCED = (ANY, JSON, OBJECT, OBJECT_STRIPPED, ARRAY_STRIPPED, CSV, GEOJSON)


@dataclass
class _Call:
    """One table request, planned: what the handlers of each method need."""

    request: RecordedRequest
    context: _Context
    prefs: Preferences
    query: _Query
    range: Range
    media: MediaType
    table: _Table


def _aggregate_sql(media: MediaType, source: str, head: bool) -> sql.Composable:
    """The media handler's aggregate over ``_postgrest_t`` (``handlerF``, SqlFragment.hs)."""
    if head:
        return sql.SQL("''::text")  # NoAgg: no aggregate on HEAD
    if media == CSV:
        header = (
            "(SELECT coalesce(string_agg(a.k, ','), '') FROM (SELECT json_object_keys(r)::text"
            " AS k FROM (SELECT row_to_json(hh) AS r FROM {} AS hh LIMIT 1) s) a)"
        )
        body = (
            "coalesce(string_agg(substring(_postgrest_t::text, 2,"
            " length(_postgrest_t::text) - 2), E'\\n'), '')"
        )
        return sql.SQL(f"{header} || E'\\n' || {body}").format(sql.Identifier(source))
    templates = {
        JSON: "coalesce(json_agg(_postgrest_t), '[]')::text",
        ARRAY_STRIPPED: "coalesce(json_strip_nulls(json_agg(_postgrest_t)), '[]')::text",
        OBJECT: "coalesce(json_agg(_postgrest_t)->0, 'null')::text",
        OBJECT_STRIPPED: "coalesce(json_strip_nulls(json_agg(_postgrest_t)->0), 'null')::text",
        GEOJSON: "json_build_object('type', 'FeatureCollection', 'features',"
        " coalesce(json_agg(ST_AsGeoJSON(_postgrest_t)::json), '[]'))::text",
    }
    return sql.SQL(templates[media])


def _header_bytes(text: str) -> str:
    """``text`` as its UTF-8 bytes, for http.server's Latin-1 header encoding (as Warp sends)."""
    return text.encode().decode("latin-1")


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
