"""The ``supabase`` connection: a Supabase project's tables through its REST API (PostgREST).

.. code-block:: yaml

    connections:
      supabase: {type: supabase, url: "${SUPABASE_URL}", key: "${SUPABASE_KEY}"}

It speaks through supabase-py, imported on first use so that ``angles --help`` stays fast.

* Counts are exact (``HEAD`` with ``Prefer: count=exact``), never capped at the server's
  1,000 rows.
* Tables stream in primary-key order by keyset pagination (an ``or=`` condition for
  composite keys), in pages no larger than Supabase's db-max-rows. The read is checked
  against an exact count: the one :meth:`~SupabaseConnection.count` just took of the same
  rows (a backup counts first; on a large table each exact count is a full scan, so it is
  taken once), else one carried by the first page. A stream that ends short of it, and
  short of a fresh count, raises instead of letting a backup be silently truncated.
* Tables are described from the OpenAPI root, which on Supabase only the service_role
  (``sb_secret_``) key may read. It describes one schema per request, the one
  ``Accept-Profile`` names.
* A bare table name is in the connection's ``schema:`` (default ``public``); ``schema.table``
  names one in another schema, read and written through supabase-py's ``.schema(name)``
  (``Accept-Profile`` on reads, ``Content-Profile`` on writes), so the schema must be one
  the project exposes. ``tables: all`` means the connection's schema; a glob such as
  ``audit.*`` lists the schema it names. The API cannot list the schemas themselves, so a
  glob in the schema part (``*.events``) is refused.
* A table without a primary key is read ordered by every column, in nulls-first order,
  and paged by keyset on the whole row (see :meth:`SupabaseConnection._stream_unkeyed`);
  it is written by plain inserts.
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
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from angles import Database, Filter, ForeignKey, Row, ServiceError, TableSchema, hookimpl
from angles.helpers import JSON_TYPES, jsonable, loads_exact, number_from_text

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
# Types with no btree ordering or equality: a table without a key cannot be paged over them.
_UNORDERED_TYPES = frozenset(
    {"json", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle"}
)
# PostgREST's PGRST106 hint (Error.hs): "Only the following schemas are exposed: a, b".
_EXPOSED_HINT = re.compile(r"^Only the following schemas are exposed: (.*)$")
_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODIFIERS = re.compile(r"\([^)]*\)")
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
        self._schemas: dict[str, Any] = {}  # schema -> its postgrest client (.schema(name))
        self._openapi: dict[str, dict[str, Any]] = {}  # schema -> its OpenAPI document

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
                    event_hooks={"request": [self._bound_timeout], "response": [self._note_answer]},
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

    def split(self, table: str) -> tuple[str, str]:
        """``schema.table`` split; a bare name is in the connection's ``schema:``."""
        schema, dot, name = table.partition(".")
        return (schema, name) if dot else (self.schema, table)

    def _name_of(self, schema: str, name: str) -> str:
        """A table's name as angles writes it: bare in the connection's schema."""
        return name if schema == self.schema else f"{schema}.{name}"

    def _postgrest(self, schema: str) -> Any:
        """The postgrest client whose profile headers select ``schema``."""
        client = self.client()
        if schema == self.schema:
            return client.postgrest
        with self._lock:
            if schema not in self._schemas:
                self._schemas[schema] = client.schema(schema)
            return self._schemas[schema]

    def _table(self, table: str) -> Any:
        schema, name = self.split(table)
        return self._postgrest(schema).from_(name)

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
            self._answers.counted = None  # a count is reused only by the very next read
            return send()

        return self.context.call(
            self.service, what, attempt, policy=self.retry_policy, failure=failure
        )

    def _bound_timeout(self, request: httpx.Request) -> None:
        """Cut this request's timeout to what is left of the run's budget: the runner can
        give up on a thread but not stop its request, so the request must end in time."""
        allowed = self.context.budget.bound(self.timeout)
        self._answers.allowed = allowed
        if allowed < self.timeout:
            import httpx

            request.extensions["timeout"] = httpx.Timeout(allowed).as_dict()

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
            if getattr(self._answers, "allowed", self.timeout) < self.timeout:
                return SupabaseError(  # cut by the run's budget: no time for another try
                    f"{what}: no answer before {self.context.budget.spent_text()}{unknown}",
                    hint="raise defaults.run_timeout, or find what took the time in the log",
                    code="run_timeout",
                    table=table,
                )
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
        if code == "PGRST106":
            return self._not_exposed(what, message, hint, table)
        if code in _MISSING_TABLE or (code == "404" and table):
            schema, name = self.split(table or "")
            return SupabaseError(
                f"{what}: there is no table {name!r} in the schema {schema!r}",
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

    def _not_exposed(self, what: str, message: str, hint: Any, table: str | None) -> SupabaseError:
        """PGRST106: the schema is not one the Data API serves; say which ones it does."""
        schema = message.removeprefix("Invalid schema: ") if message else "?"
        exposed = _EXPOSED_HINT.match(str(hint or ""))
        listed = f" (it exposes {exposed.group(1)})" if exposed else ""
        return SupabaseError(
            f"{what}: the schema {schema!r} is not exposed through the Data API{listed}",
            hint=f"add {schema!r} to the exposed schemas (Project Settings > Data API) or "
            "back it up through a `postgres` connection"
            + (
                f"; or check `schema:` of the connection {self.name!r}"
                if schema == self.schema
                else ""
            ),
            code="PGRST106",
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
        """Columns (PostgreSQL types), primary key and required columns, from the OpenAPI
        root of the table's schema."""
        schema, name = self.split(table)
        definitions = self._definitions(schema)
        definition = definitions.get(name)
        if definition is None:
            close = difflib.get_close_matches(name, list(definitions), n=1)
            raise SupabaseError(
                f"there is no table {name!r} in the schema {schema!r}",
                hint=f"perhaps you meant {self._name_of(schema, close[0])!r}"
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
        for column_name, p in properties.items():
            # The note names the referenced table without its schema: PostgREST's OpenAPI
            # describes one schema, so it is taken to be the table's own.
            for parent, column in _FOREIGN_KEY_NOTE.findall(str(p.get("description", ""))):
                parent_name = self._name_of(schema, parent)
                references.setdefault(parent_name, []).append((column_name, column))
        foreign_keys = tuple(
            ForeignKey(tuple(c for c, _ in pairs), parent, tuple(r for _, r in pairs))
            for parent, pairs in sorted(references.items())
        )
        # Values not exact in JSON come as their text output, as the postgres connection
        # reads them, so a backup through either restores through the other. The key
        # keeps its JSON form: the Data API orders it by its type, and so does the diff.
        text_columns = frozenset(
            name
            for name, p in properties.items()
            if _carried_as_text(columns[name], p) and name not in key
        )
        return TableSchema(
            table,
            columns,
            key,
            required=required,
            foreign_keys=foreign_keys,
            text_columns=text_columns,
        )

    def list_tables(self) -> dict[str, str]:
        """The relations the Data API describes in the connection's schema: a table where
        it accepts inserts, else a view (the API does not tell a materialized view, or a
        view it can write, apart)."""
        return self._relations(self.schema)

    def list_tables_of(self, schemas: Collection[str]) -> dict[str, str]:
        """The connection's schema and each of ``schemas`` (one OpenAPI request each), the
        others' relations named ``schema.table``.

        The Data API has no list of schemas, so a glob in a schema's name cannot be
        resolved; it is refused rather than matching nothing.
        """
        relations = self._relations(self.schema)
        for schema in schemas:
            if any(char in schema for char in "*?["):
                raise SupabaseError(
                    f"cannot list the schemas matching {schema!r}: the Data API describes "
                    "one named schema at a time",
                    hint="name the schema (`audit.*`), or list these tables through a "
                    "`postgres` connection",
                    code="glob",
                )
            if schema != self.schema:
                relations.update(self._relations(schema))
        return dict(sorted(relations.items()))

    def _relations(self, schema: str) -> dict[str, str]:
        definitions = self._definitions(schema)
        paths = self._openapi[schema].get("paths") or {}
        return {
            self._name_of(schema, name): "table"
            if "post" in (paths.get(f"/{name}") or {})
            else "view"
            for name in sorted(definitions)
        }

    def _definitions(self, schema: str) -> dict[str, Any]:
        """The ``definitions`` of ``schema``'s OpenAPI document (read once per connection)."""
        if schema not in self._openapi:
            import httpx

            client = self.client()
            headers = httpx.Headers(self._postgrest(schema).headers)
            headers["Accept"] = "application/openapi+json, application/json"
            what = (
                "reading the table descriptions"
                if schema == self.schema
                else f"reading the table descriptions of the schema {schema!r}"
            )

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
                self._openapi[schema] = response.json()
            except ValueError as exc:
                raise SupabaseError(
                    f"{what}: the answer is not JSON: {_html_excerpt(response.text)}",
                    hint=self._url_hint,
                ) from exc
        return dict(self._openapi[schema].get("definitions") or {})

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
        self._answers.counted = (table, where, int(response.count))
        return int(response.count)

    def _explained(
        self, error: SupabaseError, table: str, where: Filter | None, what: str
    ) -> SupabaseError:
        """A HEAD error has no body: ask again with a GET to get PostgREST's explanation."""
        if error.code in ("network", "timeout", "run_timeout", "429") or error.code in RETRY_CODES:
            return error

        def build() -> Any:
            return _filtered(self._table(table).select("*"), where).limit(0)

        try:
            self._run(lambda: build().execute(), what, table, read=True)
        except SupabaseError as detailed:
            return detailed
        return error

    def stream(self, table: str, schema: TableSchema, where: Filter | None = None) -> Iterator[Row]:
        """Rows in primary-key order, page by page (keyset), checked against an exact count
        (a table without a primary key: ordered by every column, repeated rows kept)."""
        if not schema.primary_key:
            return self._stream_unkeyed(table, schema, where)
        return self._stream_keyed(table, schema, where)

    def _stream_keyed(self, table: str, schema: TableSchema, where: Filter | None) -> Iterator[Row]:
        key = schema.primary_key
        exact, columns = _exact_columns(schema)
        key_of = operator.itemgetter(*key)
        what = f"reading {table!r}"
        total = self._count_just_taken(table, where)
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
        self._check_complete(table, where, what, seen, total)

    def _stream_unkeyed(
        self, table: str, schema: TableSchema, where: Filter | None
    ) -> Iterator[Row]:
        """The rows of a table without a primary key, ordered by every column.

        Offset pages would skip or repeat rows whenever the table changes between two
        requests (and through the Data API there is no snapshot to read them in), so pages
        follow each other by keyset on the whole row: each asks for the rows after the last
        one read, in the order of every column (nulls first), which inserts and deletes
        elsewhere in the table cannot shift. Rows may repeat, and identical rows cannot be
        told apart by a keyset: after each page, the other copies of its last row are read
        by equality (``eq``/``is.null`` on every column) with an offset past the copies
        already read; identical rows are interchangeable, so that offset is safe. Rows
        equal by PostgreSQL's comparison but written differently (numeric ``1.50`` and
        ``1.5``) count as copies too, which can only matter when such rows meet at a page
        boundary while the table changes. Columns without an ordering (json, xml,
        geometric types) cannot be paged over: such a table is refused. The condition
        carries the last row's values in the URL, so rows of very long values make long
        requests.
        """
        unordered = [
            f"{c} ({kind})"
            for c, kind in schema.columns.items()
            if kind.removesuffix("[]") in _UNORDERED_TYPES
        ]
        if unordered:
            raise SupabaseError(
                f"reading {table!r}: it has no primary key, and the Data API cannot order "
                f"its rows by {', '.join(unordered)}",
                hint="declare a PRIMARY KEY, use jsonb rather than json, or back it up "
                "through a `postgres` connection",
                code="unkeyed",
                table=table,
            )
        exact, columns = _exact_columns(schema)
        names = list(schema.columns)
        what = f"reading {table!r}"
        total: int | None = None
        seen = 0
        last: Row | None = None  # as the server wrote it: numeric and JSON still text

        def page(build: Callable[[], Any], offset: int = 0) -> list[Row]:
            def send() -> Any:
                query = build().limit(self.page_size)
                return (query.offset(offset) if offset else query).execute()

            response = self._run(send, what, table, read=True)
            nonlocal total
            if total is None:
                total = response.count if response.count is not None else -1
            rows: list[Row] = response.data
            del response
            gc.collect(1)
            return rows

        def finished(rows: list[Row]) -> Iterator[Row]:
            for row in rows:
                converted = dict(row)
                for column, read in exact.items():
                    if isinstance(converted[column], str):
                        converted[column] = read(converted[column])
                yield converted

        def following(after: Row | None) -> Any:
            query = self._table(table).select(columns, count="exact" if total is None else None)
            query = _filtered(query, where)
            if after is not None:
                query = query.or_(_row_after(names, after))
            for column in names:
                query = query.order(_select_name(column), nullsfirst=True)
            return query

        def copies_of(row: Row) -> Any:
            return _filtered(_row_equal(self._table(table).select(columns), names, row), where)

        while True:
            rows = page(partial(following, last))
            if not rows:
                break
            yield from finished(rows)
            seen += len(rows)
            last = rows[-1]
            if len(rows) < self.page_size and seen >= (total or 0):
                break
            # The other copies of the last row, past those this page held.
            copies = sum(1 for _ in itertools.takewhile(partial(operator.eq, last), reversed(rows)))
            while True:
                more = page(partial(copies_of, last), offset=copies)
                if not more:
                    break
                yield from finished(more)
                seen += len(more)
                copies += len(more)
        self._check_complete(table, where, what, seen, total)

    def _check_complete(
        self, table: str, where: Filter | None, what: str, seen: int, total: int | None
    ) -> None:
        """Refuse a read that ended short of the count taken with its first page, unless a
        fresh count says rows were deleted meanwhile."""
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

    def _count_just_taken(self, table: str, where: Filter | None) -> int | None:
        """The exact count this thread's last request took of these rows, used once: a
        backup counts a table and then reads it, and each exact count is a full scan."""
        counted, self._answers.counted = getattr(self._answers, "counted", None), None
        if counted is not None and counted[:2] == (table, where):
            return counted[2]
        return None

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
        """Upsert on the primary key in batches; returns the rows the server confirmed (a
        table without a primary key: plain inserts).

        Only the columns each row has are sent (columns missing from a backup keep their
        value, or get their default on insert), and no batch repeats a key, which
        PostgreSQL refuses in one ``ON CONFLICT`` statement. A batch is one transaction;
        batches before a failed one stay written, and running the restore again is safe.
        """
        key = schema.primary_key
        written = 0
        batch: list[Row] = []
        keys: set[tuple[Any, ...]] = set()
        # The Data API casts a string to the column's type, from its text: only JSON
        # columns take the value itself.
        json_text = {c for c in schema.text_columns if schema.columns.get(c) in ("json", "jsonb")}
        for original in rows:
            row = {
                column: jsonable(
                    loads_exact(value) if column in json_text and isinstance(value, str) else value
                )
                for column, value in original.items()
            }
            # A table without a primary key gets plain inserts, which may repeat a row.
            row_key = tuple(_hashable(row.get(c)) for c in key) if key else (len(batch),)
            if row_key in keys or len(batch) >= batch_size:
                written += self._write(table, key, batch)
                batch, keys = [], set()
            batch.append(row)
            keys.add(row_key)
        if batch:
            written += self._write(table, key, batch)
        return written

    def unwritable_columns(
        self, table: str, schema: TableSchema, columns: Sequence[str]
    ) -> dict[str, str]:
        """Generated and ``identity always`` columns among ``columns``.

        The OpenAPI description cannot tell them (PostgREST shows neither a default nor a
        flag for either), so ask PostgreSQL: a PATCH whose filter matches no row (a null
        primary key) with the columns in its body. PostgreSQL's rewriter refuses a
        generated or identity-always column in SET before looking at any row (428C9),
        naming it; nothing is written. One request per such column, plus one.
        """
        key = schema.primary_key
        found: dict[str, str] = {}
        remaining = [c for c in columns if c in schema.columns]
        what = f"checking which columns of {table!r} the Data API can write"
        while key and remaining:
            body = dict.fromkeys(remaining)

            def build(body: dict[str, None] = body) -> Any:
                return self._table(table).update(body, returning="minimal").is_(key[0], "null")

            try:
                self._run(lambda: build().execute(), what, table, read=False)
            except SupabaseError as exc:
                refused = _REFUSED_COLUMN.search(exc.message) if exc.code == "428C9" else None
                if refused is None or refused[1] not in remaining:
                    raise
                column = refused[1]
                found[column] = "identity always" if "identity" in exc.message else "generated"
                remaining.remove(column)
                continue
            break
        return found

    def restore_warnings(self, table: str, schema: TableSchema) -> list[str]:
        """The Data API cannot pause triggers nor set sequences: say so, with the fix."""
        return [
            f"through the Data API, triggers on {table!r} fire on the restored rows (one that "
            "stamps updated_at changes them) and its sequences are not advanced; for an exact "
            "restore, use a postgres connection to the same database (type: postgres, url: "
            "the project's database URL)"
        ]

    def _write(self, table: str, key: tuple[str, ...], batch: list[Row]) -> int:
        groups: dict[tuple[str, ...], list[Row]] = {}
        for row in batch:
            groups.setdefault(tuple(row), []).append(row)
        written = 0
        for group in groups.values():

            def build(group: list[Row] = group) -> Any:
                if not key:  # nothing to conflict on: a plain POST, no on_conflict
                    return self._table(table).insert(
                        group, returning="minimal", count="exact", default_to_null=False
                    )
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


def _carried_as_text(format_: str, definition: Mapping[str, Any]) -> bool:
    """Whether a column of this OpenAPI ``format`` is read as its text (TableSchema.text_columns).

    A type outside ``pg_catalog`` keeps its modifiers there (``varchar(10)``), and from
    PostgREST 14.8 the integers are ``int32`` and ``int64``.
    """
    if "enum" in definition or format_ in ("int32", "int64"):
        return False
    return " ".join(_MODIFIERS.sub("", format_).split()) not in JSON_TYPES


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


def _exact_columns(schema: TableSchema) -> tuple[dict[str, Callable[[str], Any]], str]:
    """The columns read as text and parsed back (and how), and the select list.

    ``text_columns`` are selected as their text output and kept so. Files before 1.3.0
    hold numeric and JSON values in their JSON form: read as text here, then parsed
    exactly (the client would round numbers to floats).
    """
    exact = {
        c: number_from_text if kind.startswith("numeric") else loads_exact
        for c, kind in schema.columns.items()
        if (kind.startswith("numeric") or kind in ("json", "jsonb"))
        and c not in schema.text_columns
    }
    columns = ",".join(
        _select_name(c) + ("::text" if c in exact or c in schema.text_columns else "")
        for c in schema.columns
    )
    return exact, columns


def _row_after(names: Sequence[str], row: Row) -> str:
    """The ``or=`` condition "after ``row`` in the order of every column, nulls first":
    ``c1 > v1 or (c1 = v1 and (c2 > v2 or (c2 = v2 and …)))``, nested so that it grows
    with the columns, not their square. ``row`` is as the server wrote it: every value
    that is not a JSON scalar (numeric, arrays, jsonb, ranges…) is its text output
    (``text_columns``), which PostgreSQL reads back as a literal of the column's type."""

    def after(column: str, value: Any) -> str:
        name = _logic_name(column)
        return f"{name}.not.is.null" if value is None else f"{name}.gt.{_logic_value(value)}"

    def same(column: str, value: Any) -> str:
        name = _logic_name(column)
        return f"{name}.is.null" if value is None else f"{name}.eq.{_logic_value(value)}"

    *head, tail = names
    condition = after(tail, row[tail])
    for column in reversed(head):
        condition = f"{after(column, row[column])},and({same(column, row[column])},or({condition}))"
    return condition


def _row_equal(query: Any, names: Sequence[str], row: Row) -> Any:
    """``query`` narrowed to the rows equal to ``row`` in every column."""
    for column in names:
        value = row[column]
        if value is None:
            query = query.filter(column, "is", "null")
        else:
            query = query.filter(column, "eq", _plain_value(value))
    return query


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


# PostgreSQL's 428C9 message, as PostgREST passes it on.
_REFUSED_COLUMN = re.compile(r'column "(.+?)" can only be updated to DEFAULT')


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
