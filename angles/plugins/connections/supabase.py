"""The ``supabase`` connection: a Supabase project's tables through its REST API (PostgREST).

.. code-block:: yaml

    connections:
      supabase: {type: supabase, url: "${SUPABASE_URL}", key: "${SUPABASE_KEY}"}

It speaks through supabase-py, imported on first use so that ``angles --help`` stays fast.

* Counts are exact (``HEAD`` with ``Prefer: count=exact``), never capped at the server's
  1,000 rows.
* Tables stream in primary-key order by keyset pagination (an ``or=`` condition for
  composite keys), in pages no larger than Supabase's db-max-rows. The first page carries an
  exact count; a stream that ends short of it, and short of a fresh count, raises instead
  of letting a backup be silently truncated.
* Tables are described from the OpenAPI root, which on Supabase only the service_role
  (``sb_secret_``) key may read.
* Writes are upserts on the primary key, in batches, with ``return=minimal`` and an exact
  count to confirm every row was written. Each batch is one PostgREST transaction.
* Reads are retried by angles' retry policy (1, 2, 4 s apart, within the run's budget) on
  502/503/504/520/522/524, on PostgREST's "retrying" errors, on timeouts and on dropped or
  refused connections; a 429 is retried for any request (nothing was applied), after its
  ``Retry-After``; other writes never are. supabase-py's own retries are switched off so
  that the two never multiply.

The key is a secret: it never appears in a message.
"""

from __future__ import annotations

import difflib
import gc
import html
import itertools
import operator
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from angles import Database, Filter, ForeignKey, Row, ServiceError, TableSchema, hookimpl
from angles.helpers import jsonable, loads_exact, number_from_text

if TYPE_CHECKING:
    import httpx
    from supabase import Client

#: Supabase's default db-max-rows: no page may ask for more.
MAX_PAGE_SIZE = 1000
#: Codes (a PostgREST code, or the HTTP status when the body was not PostgREST's) worth a retry.
RETRY_CODES = frozenset(
    {"502", "503", "504", "520", "522", "524", "PGRST000", "PGRST001", "PGRST002", "PGRST003"}
)
_AUTH_CODES = frozenset({"401", "PGRST301", "PGRST302", "PGRST303"})
_MISSING_TABLE = frozenset({"PGRST205", "42P01"})
#: What a code means, for answers without a body (``HEAD``).
_MESSAGES = {
    "57014": "the statement timeout cancelled the query",
    "42501": "permission denied",
    "PGRST106": "the schema is not exposed",
}
_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# PostgREST's OpenAPI note on a foreign key column (``makeProperty``).
_FOREIGN_KEY_NOTE = re.compile(r"<fk table='([^']+)' column='([^']+)'/>")


class SupabaseError(ServiceError):
    """A Supabase request failed; ``code`` is PostgREST's code, the HTTP status, or
    ``network``/``timeout``, and ``table`` the table it was about (if any)."""

    def __init__(
        self, message: str, *, hint: str | None = None, code: str = "", table: str | None = None
    ) -> None:
        super().__init__("Supabase", message, hint=hint)
        self.code = code
        self.table = table

    @property
    def table_specific(self) -> bool:
        """Whether other tables may still be readable (a missing table, a refused grant)."""
        return self.code in _MISSING_TABLE or self.code in {"42501", "42703", "57014"}


class SupabaseConnection(Database):
    """A Supabase project: supabase-py over one HTTP client, created on first use."""

    type = "supabase"
    service = "Supabase"
    description = "A Supabase project's tables, through its REST API (supabase-py)."
    page_size: ClassVar[int] = MAX_PAGE_SIZE
    default_retries: ClassVar[int] = 3
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "required": ["url", "key"],
        "additionalProperties": False,
        "properties": {
            "url": {
                "type": "string",
                "pattern": r"^https?://[^\s/]+",
                "description": "The project URL, e.g. https://<ref>.supabase.co (SUPABASE_URL).",
            },
            "key": {
                "type": "string",
                "minLength": 1,
                "secret": True,
                "description": "The service_role (or sb_secret_) API key (SUPABASE_KEY).",
            },
            "schema": {
                "type": "string",
                "minLength": 1,
                "description": "The exposed schema holding the tables (default public).",
            },
            "page_size": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_PAGE_SIZE,
                "description": "Rows per request when reading (default and maximum 1000, "
                "Supabase's max rows).",
            },
            "timeout_seconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Seconds one request may take (default: defaults.timeout_seconds).",
            },
            "retries": {
                "type": "integer",
                "minimum": 0,
                "maximum": 5,
                "description": "Times a read failing on a transient error (429, 503, 520, "
                "522, a timeout) is tried again, after 1, 2, 4… s (default 3).",
            },
        },
    }

    def __init__(self, name: str, config: Any, context: Any) -> None:
        super().__init__(name, config, context)
        self.url: str = config["url"].rstrip("/")
        self.schema: str = config.get("schema", "public")
        self.page_size = int(config.get("page_size", MAX_PAGE_SIZE))  # type: ignore[misc]
        self.retries = int(config.get("retries", self.default_retries))
        self._answers = threading.local()
        self._key: str = config["key"]
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._http: Any = None
        self._openapi: dict[str, Any] | None = None

    # -- the client and requests ----------------------------------------------------------

    def client(self) -> Client:
        """The supabase-py client (created once, thread-safe)."""
        with self._lock:
            if self._client is None:
                from supabase import create_client
                from supabase.lib.client_options import SyncClientOptions

                self._http = self.context.http_client(
                    self.service,
                    timeout=self.timeout,
                    event_hooks={"response": [self._note_answer]},
                )
                options = SyncClientOptions(
                    schema=self.schema,
                    httpx_client=self._http,
                    postgrest_client_retry=False,  # retried here, with timeouts and 522
                    auto_refresh_token=False,
                    persist_session=False,
                )
                try:
                    self._client = create_client(self.url, self._key, options)
                except Exception as exc:  # SupabaseException: a malformed URL or key
                    raise SupabaseError(
                        self._clean(str(exc)), hint=self._url_hint, code="config"
                    ) from exc
            return self._client

    def _table(self, table: str) -> Any:
        return self.client().table(table)

    def _run(self, send: Callable[[], Any], what: str, table: str | None, read: bool) -> Any:
        """Call ``send()`` (which sends one request), retrying a read on transient failures
        (and any request on a 429, which PostgREST never applied) within the run's budget."""
        import httpx
        from postgrest.exceptions import APIError

        def failure(exc: Exception) -> SupabaseError | None:
            if not isinstance(exc, APIError | httpx.TransportError):
                return None
            status, retry_after = getattr(self._answers, "last", (None, None))
            error = self._error(exc, what, table, read, status=status)
            error.transient = error.code == "429" or (read and _transient(error.code))
            error.retry_after = retry_after
            return error

        def attempt() -> Any:
            self._answers.last = (None, None)
            return send()

        return self.context.call(
            self.service, what, attempt, policy=self.retry_policy, failure=failure
        )

    def _note_answer(self, response: httpx.Response) -> None:
        """Remember the status and ``Retry-After`` of this thread's last answer: supabase-py
        raises errors without them."""
        from angles.helpers import parse_retry_after

        self._answers.last = (
            response.status_code,
            parse_retry_after(response.headers.get("Retry-After")),
        )

    def _error(
        self,
        exc: Exception,
        what: str,
        table: str | None,
        read: bool,
        *,
        status: int | None = None,
    ) -> SupabaseError:
        """One clear, secret-free line for a failed request, saying what to check."""
        import httpx

        from angles.helpers import network_failure

        host = urlsplit(self.url).netloc or self.url
        if isinstance(exc, httpx.TimeoutException):
            unknown = "" if read else "; it may or may not have been applied (retrying is safe)"
            return SupabaseError(
                f"{what}: no answer within {self.timeout:g}s{unknown}",
                hint=f"is the project at {host} up? raise timeout_seconds of the connection "
                f"{self.name!r}",
                code="timeout",
                table=table,
            )
        if isinstance(exc, httpx.TransportError):
            message = network_failure(exc, self.timeout)[0]
            return SupabaseError(
                f"{what}: {message} at {host}",
                hint=self._url_hint,
                code="network",
                table=table,
            )
        if status == 429:
            return SupabaseError(
                f"{what}: rate limited (HTTP 429)",
                hint="Supabase limits requests per key and IP: run less often or try later",
                code="429",
                table=table,
            )
        code = str(getattr(exc, "code", None) or "")
        message = str(getattr(exc, "message", None) or "")
        hint = getattr(exc, "hint", None)
        details = getattr(exc, "details", None)
        body = details if isinstance(details, str) else ""
        if _is_reason_phrase(message):  # no PostgREST body (a HEAD, or a proxy's page)
            message = ""
        if len(code) == 3 and code.isdigit() and code >= "500" and not message:
            page = _html_excerpt(body) if body else ""
            return SupabaseError(
                f"{what}: HTTP {code} from the gateway" + (f": {page}" if page else ""),
                hint="Supabase (or Cloudflare in front of it) is failing; see "
                "https://status.supabase.com and try again later",
                code=code,
                table=table,
            )
        if code in _AUTH_CODES or message in ("Invalid API key", "No API key found in request"):
            return SupabaseError(
                f"{what}: the API key was refused ({message or 'HTTP 401'})",
                hint=f"check SUPABASE_KEY (the `key:` of the connection {self.name!r}): "
                "use the project's service_role key",
                code=code or "401",
                table=table,
            )
        if code in _MISSING_TABLE or (code == "404" and table):
            return SupabaseError(
                f"{what}: there is no table {table!r} in the schema {self.schema!r}",
                hint=self._clean(hint)
                if hint
                else "check `table:`, and that the table is in an exposed schema",
                code=code,
                table=table,
            )
        advice = {
            # A write names the backup's columns; only a read can carry a pipeline filter.
            "42703": "check the column names of the pipeline's filters (`unsynced:`, `synced:`) "
            "against the table, and that the table was not altered meanwhile"
            if read
            else "the table lacks a column the restore writes: compare the dry run's columns "
            "with the table (restore.auto_migrate: true restores the common ones)",
            "57014": "the query hit the statement timeout: add an index for the filter, or "
            "raise statement_timeout for the API role",
            "42501": "the key's role may not read or write this table: use the service_role key",
            "PGRST106": f"check `schema:` of the connection {self.name!r}",
            "PGRST204": "the backup has a column the table does not; see `angles restore` output",
            "21000": "the batch repeats a primary key",
        }
        text = message or _MESSAGES.get(code) or f"HTTP {code}"
        if details and code not in RETRY_CODES:
            text = f"{text}: {details}"
        if code and code not in text:
            text = f"{text} ({code})"
        return SupabaseError(
            f"{what}: {self._clean(text)}",
            hint=advice.get(code) or (self._clean(hint) if hint else None),
            code=code,
            table=table,
        )

    @property
    def _url_hint(self) -> str:
        return f"check SUPABASE_URL (the `url:` of the connection {self.name!r}) and the network"

    def _clean(self, text: str) -> str:
        """``text`` on one line, without the key (a server may echo a request back)."""
        return " ".join(str(text).replace(self._key, "***").split())

    # -- reading --------------------------------------------------------------------------

    def describe(self, table: str) -> TableSchema:
        """Columns (PostgreSQL types), primary key and required columns, from the OpenAPI root."""
        definitions = self._definitions()
        definition = definitions.get(table)
        if definition is None:
            close = difflib.get_close_matches(table, list(definitions), n=1)
            raise SupabaseError(
                f"there is no table {table!r} in the schema {self.schema!r}",
                hint=f"perhaps you meant {close[0]!r}"
                if close
                else "check `table:`, and that the table is in an exposed schema",
                code="PGRST205",
                table=table,
            )
        properties: dict[str, dict[str, Any]] = definition.get("properties", {})
        columns = {
            name: str(p.get("format") or p.get("type") or "") for name, p in properties.items()
        }
        key = tuple(
            name for name, p in properties.items() if "<pk/>" in str(p.get("description", ""))
        )
        required = frozenset(
            name
            for name in definition.get("required", [])
            if name in properties
            and _shows_its_default(properties[name])
            and "default" not in properties[name]
        )
        references: dict[str, list[tuple[str, str]]] = {}
        for name, p in properties.items():
            for parent, column in _FOREIGN_KEY_NOTE.findall(str(p.get("description", ""))):
                references.setdefault(parent, []).append((name, column))
        foreign_keys = tuple(
            ForeignKey(tuple(c for c, _ in pairs), parent, tuple(r for _, r in pairs))
            for parent, pairs in sorted(references.items())
        )
        return TableSchema(table, columns, key, required=required, foreign_keys=foreign_keys)

    def list_tables(self) -> dict[str, str]:
        """The relations the Data API describes: a table where it accepts inserts, else a
        view (the API does not tell a materialized view, or a view it can write, apart)."""
        definitions = self._definitions()
        paths = (self._openapi or {}).get("paths") or {}
        return {
            name: "table" if "post" in (paths.get(f"/{name}") or {}) else "view"
            for name in sorted(definitions)
        }

    def _definitions(self) -> dict[str, Any]:
        """The OpenAPI document's ``definitions`` (read once per connection)."""
        if self._openapi is None:
            import httpx

            client = self.client()
            headers = httpx.Headers(client.postgrest.headers)
            headers["Accept"] = "application/openapi+json, application/json"
            what = "reading the table descriptions"

            def send() -> Any:
                response = client.postgrest.session.get(f"{client.rest_url}/", headers=headers)
                if response.status_code == 403:
                    raise SupabaseError(
                        f"{what}: this key may not read the API description (HTTP 403); "
                        "the service_role key is needed",
                        hint=f"set SUPABASE_KEY (the `key:` of the connection {self.name!r}) "
                        "to the project's service_role or sb_secret_ key",
                        code="403",
                    )
                if response.is_error:
                    raise _api_error(response)
                return response

            response = self._run(send, what, None, read=True)
            try:
                self._openapi = response.json()
            except ValueError as exc:
                raise SupabaseError(
                    f"{what}: the answer is not JSON: {_html_excerpt(response.text)}",
                    hint=self._url_hint,
                ) from exc
        return dict(self._openapi.get("definitions") or {})

    def count(self, table: str, where: Filter | None = None) -> int:
        """The exact number of matching rows (``HEAD``, ``Prefer: count=exact``)."""

        def build() -> Any:
            return _filtered(self._table(table).select("*", count="exact", head=True), where)

        what = f"counting the rows of {table!r}"
        try:
            response = self._run(lambda: build().execute(), what, table, read=True)
        except SupabaseError as error:
            raise self._explained(error, table, where, what) from error
        if response.count is None:
            raise SupabaseError(f"{what}: the answer carried no count", code="count", table=table)
        return int(response.count)

    def _explained(
        self, error: SupabaseError, table: str, where: Filter | None, what: str
    ) -> SupabaseError:
        """A HEAD error has no body: ask again with a GET to get PostgREST's explanation."""
        if error.code in ("network", "timeout", "429") or error.code in RETRY_CODES:
            return error

        def build() -> Any:
            return _filtered(self._table(table).select("*"), where).limit(0)

        try:
            self._run(lambda: build().execute(), what, table, read=True)
        except SupabaseError as detailed:
            return detailed
        return error

    def stream(self, table: str, schema: TableSchema, where: Filter | None = None) -> Iterator[Row]:
        """Rows in primary-key order, page by page (keyset), checked against an exact count."""
        key = schema.require_primary_key("to read it in order", partial(SupabaseError, table=table))
        # numeric and JSON columns come as text, read here: the client would read their
        # numbers as floats and round the ones wider than a float.
        exact = {
            c: number_from_text if kind.startswith("numeric") else loads_exact
            for c, kind in schema.columns.items()
            if kind.startswith("numeric") or kind in ("json", "jsonb")
        }
        columns = ",".join(
            _select_name(c) + ("::text" if c in exact else "") for c in schema.columns
        )
        key_of = operator.itemgetter(*key)
        what = f"reading {table!r}"
        total: int | None = None
        seen = 0
        last: tuple[Any, ...] | None = None
        while True:

            def build(after: tuple[Any, ...] | None = last, first: bool = total is None) -> Any:
                query = self._table(table).select(columns, count="exact" if first else None)
                query = _filtered(query, where)
                if after is not None:
                    query = _after(query, key, after)
                for column in key:
                    query = query.order(column)
                return query.limit(self.page_size)

            response = self._run(lambda: build().execute(), what, table, read=True)
            if total is None:
                total = response.count if response.count is not None else -1
            rows: list[Row] = response.data
            for row in rows if exact else ():
                for column, read in exact.items():
                    if isinstance(row[column], str):
                        row[column] = read(row[column])
            # httpx keeps each response in a reference cycle (with its stream): collect the
            # young generations now, or the bodies pile up until a full collection.
            del response
            gc.collect(1)
            if not rows:
                break
            keys = [key_of(row) for row in rows]
            if len(key) == 1:
                keys = [(value,) for value in keys]
            _check_order(table, key, keys if last is None else [last, *keys], schema.columns)
            yield from rows
            seen += len(rows)
            last = keys[-1]
            # A short page ends the table only once the count is reached: a server whose
            # max rows is below page_size returns short pages all along.
            if len(rows) < self.page_size and seen >= total:
                break
        if total is not None and seen < total:
            now = self.count(table, where)
            if seen < now:
                raise SupabaseError(
                    f"{what}: only {seen} of {now} rows came back; refusing an incomplete read",
                    hint="the API may cap or hide rows (max rows, row-level security): "
                    "use the service_role key",
                    code="incomplete",
                    table=table,
                )

    def select(
        self,
        table: str,
        *,
        where: Filter | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        limit: int = 10,
    ) -> list[Row]:
        """A few rows, ordered as asked (at most the server's max rows)."""

        def build() -> Any:
            query = _filtered(self._table(table).select("*"), where)
            for column, descending in order_by:
                query = query.order(column, desc=descending)
            return query.limit(min(limit, MAX_PAGE_SIZE))

        return list(
            self._run(lambda: build().execute(), f"reading {table!r}", table, read=True).data
        )

    # -- writing --------------------------------------------------------------------------

    def upsert(
        self, table: str, schema: TableSchema, rows: Iterable[Row], batch_size: int = 500
    ) -> int:
        """Upsert on the primary key in batches; returns the rows the server confirmed.

        Only the columns each row has are sent (columns missing from a backup keep their
        value, or get their default on insert), and no batch repeats a key, which
        PostgreSQL refuses in one ``ON CONFLICT`` statement. A batch is one transaction;
        batches before a failed one stay written, and running the restore again is safe.
        """
        key = schema.require_primary_key("to upsert on", partial(SupabaseError, table=table))
        written = 0
        batch: list[Row] = []
        keys: set[tuple[Any, ...]] = set()
        for original in rows:
            row = {column: jsonable(value) for column, value in original.items()}
            row_key = tuple(_hashable(row.get(c)) for c in key)
            if row_key in keys or len(batch) >= batch_size:
                written += self._write(table, key, batch)
                batch, keys = [], set()
            batch.append(row)
            keys.add(row_key)
        if batch:
            written += self._write(table, key, batch)
        return written

    def _write(self, table: str, key: tuple[str, ...], batch: list[Row]) -> int:
        groups: dict[tuple[str, ...], list[Row]] = {}
        for row in batch:
            groups.setdefault(tuple(row), []).append(row)
        written = 0
        for group in groups.values():

            def build(group: list[Row] = group) -> Any:
                return self._table(table).upsert(
                    group,
                    on_conflict=",".join(key),
                    returning="minimal",
                    count="exact",
                    default_to_null=False,
                )

            response = self._run(
                lambda: build().execute(), f"writing {len(group)} rows to {table!r}", table, False
            )
            confirmed = len(group) if response.count is None else int(response.count)
            if confirmed != len(group):
                raise SupabaseError(
                    f"writing to {table!r}: the server confirmed {confirmed} of {len(group)} rows",
                    hint="row-level security may hide rows from this key: use the service_role key",
                    code="incomplete",
                    table=table,
                )
            written += confirmed
        return written

    def close(self) -> None:
        """Close the HTTP client."""
        with self._lock:
            http, self._http, self._client = self._http, None, None
        if http is not None:
            http.close()


def _transient(code: str) -> bool:
    return code in RETRY_CODES or code in ("network", "timeout")


def _is_reason_phrase(message: str) -> bool:
    """Whether supabase-py made ``message`` up from the status line (no JSON body)."""
    from http import HTTPStatus

    return message.startswith("Request failed with status") or message in {
        status.phrase for status in HTTPStatus
    }


def _filtered(query: Any, where: Filter | None) -> Any:
    """``query`` with the filter's PostgREST conditions added."""
    if where is not None:
        for condition in where.conditions:
            operator = ("not." if condition.negated else "") + condition.operator
            criteria = condition.query_value()[len(operator) + 1 :]
            query = query.filter(condition.column, operator, criteria)
    return query


def _after(query: Any, key: tuple[str, ...], last: tuple[Any, ...]) -> Any:
    """The keyset condition ``key > last``: ``gt`` for one column, ``or=`` for several."""
    if len(key) == 1:
        return query.filter(key[0], "gt", _plain_value(last[0]))
    terms = []
    for i, column in enumerate(key):
        equal = [
            f"{_logic_name(c)}.eq.{_logic_value(v)}" for c, v in zip(key[:i], last, strict=False)
        ]
        greater = f"{_logic_name(column)}.gt.{_logic_value(last[i])}"
        terms.append(f"and({','.join([*equal, greater])})" if equal else greater)
    return query.or_(",".join(terms))


def _shows_its_default(prop: dict[str, Any]) -> bool:
    """Whether PostgREST's OpenAPI would show this column's default if it had one.

    It shows a default only when it reads as JSON (PostgREST's ``parseDefault``): for string
    and boolean columns nearly always (a text default holding a double quote is lost), but
    never for identity, serial, json or array columns, nor for negative or computed numbers;
    for those a missing ``default`` does not make the column required.
    """
    return prop.get("type") in ("string", "boolean")


def _plain_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _logic_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _plain_value(value)


def _logic_name(column: str) -> str:
    return column if _SIMPLE_NAME.match(column) else _logic_value(column)


def _select_name(column: str) -> str:
    return column if _SIMPLE_NAME.match(column) else '"' + column.replace('"', '""') + '"'


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, dict | list) else value


def _check_order(
    table: str,
    key: tuple[str, ...],
    keys: list[tuple[Any, ...]],
    types: Mapping[str, str] | None = None,
) -> None:
    """Raise unless ``keys`` strictly ascend in the order restores merge rows in
    (``types``: the table's column types, to say why they do not)."""
    compared: list[Any] = keys
    try:
        if all(map(operator.lt, compared, compared[1:])):
            return
    except TypeError:  # values of mixed types: rank them as the merge does
        from angles.helpers import sort_key

        compared = [sort_key(k) for k in keys]
        if all(map(operator.lt, compared, compared[1:])):
            return
    index = next(i for i, (a, b) in enumerate(itertools.pairwise(compared), 1) if not a < b)
    at = keys[index]
    shown = at[0] if len(at) == 1 else at
    raise SupabaseError(
        f"reading {table!r}: rows came back out of primary-key order at {shown!r}",
        hint=_order_hint(key, types or {}),
        code="order",
        table=table,
    )


def _order_hint(key: tuple[str, ...], types: Mapping[str, str]) -> str:
    """Collation is to blame only for text keys; other keys (dates BC, float infinities
    or NaN) come through the Data API as JSON values that do not order as PostgreSQL's."""
    other = [c for c in key if not _is_text_type(types.get(c, "text"))]
    if not other:
        return (
            "angles needs text keys sorted by code point: use the C.UTF-8 collation (Supabase's "
            'default) or COLLATE "C" on the key columns'
        )
    shown = ", ".join(f"{c} ({types[c]})" for c in other)
    return (
        f"the key column(s) {shown} hold values whose JSON form does not order as PostgreSQL "
        "orders them (such as dates BC, infinities or NaN): use a postgres connection to the "
        "same database for this table"
    )


def _is_text_type(declared: str) -> bool:
    kind = declared.lower().split("(")[0].strip()
    return kind in ("text", "character varying", "varchar", "character", "char", "citext", "name")


def _api_error(response: Any) -> Exception:
    """A postgrest ``APIError`` for a raw response, as supabase-py would raise it."""
    from postgrest.exceptions import APIError, generate_default_error_message

    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "message" in body:
        return APIError({k: body.get(k) for k in ("message", "code", "hint", "details")})
    return APIError(generate_default_error_message(response))


def _html_excerpt(text: str, limit: int = 160) -> str:
    """A Cloudflare-style HTML page as one readable line: its title, else its text."""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    if title and title.group(1).strip():
        plain = title.group(1)
    else:
        plain = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.I | re.S)
        plain = re.sub(r"<[^>]+>", " ", plain)
    flat = " ".join(html.unescape(plain).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@hookimpl
def angles_register_connections(register: Any) -> None:
    register(SupabaseConnection)
