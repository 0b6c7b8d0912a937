"""The ``postgres`` connection: a PostgreSQL database reached directly, with psycopg 3.

.. code-block:: yaml

    connections:
      db: {type: postgres, url: "${DATABASE_URL}", schema: public, timeout_seconds: 30}

Values cross the boundary as PostgreSQL writes them in JSON, which is what PostgREST (and
so Supabase) returns: rows are read with ``row_to_json`` in a UTC session, so a timestamptz
is ``2025-05-01T08:38:31.216964+00:00``, numeric keeps its scale, bytea is ``\\x…``, jsonb
and arrays are JSON and a uuid is a string. Rows are written from JSON with
``json_populate_recordset``, so every value is cast by its column's type as PostgREST
casts it. A backup taken through one connection therefore restores through the other.

A table streams with one ``COPY … TO STDOUT`` on a connection of its own, in primary-key
order (collatable keys ``COLLATE "C"``: the order Python gives strings), so memory stays
flat and the uncommitted writes of a live restore never show up in the rows it compares.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from angles import Filter, Row, ServiceError, SqlDatabase, TableSchema, hookimpl
from angles.helpers import dumps_exact, loads_exact

if TYPE_CHECKING:
    import psycopg

_MAX_ARGUMENTS = 100  # PostgreSQL's limit on a function's arguments (json_build_array)
_COPY_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_COPY_ESCAPES = {
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"v": b"\v",
}
_BYTE_ORDER_COLLATIONS = frozenset({"C", "POSIX", "ucs_basic"})
_URL_HINT = "check the connection's url (DATABASE_URL)"

_COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, NULL), a.attnotnull,
       a.atthasdef, a.attidentity, a.attgenerated, t.typtype,
       CASE WHEN a.attcollation = 0 THEN NULL ELSE co.collname END
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_PRIMARY_KEY_SQL = """
SELECT a.attname
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
ORDER BY k.position
"""

_RELATIONS_SQL = """
SELECT n.nspname, c.relname, c.relkind
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
  AND has_schema_privilege(n.oid, 'USAGE')
ORDER BY 1, 2
"""
_KINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view"}


@dataclass
class _Table:
    """What describe learns beyond :class:`TableSchema`: how to order and write the table."""

    schema: TableSchema
    sort: dict[str, str]  # key column -> its ORDER BY expression
    generated: set[str]  # computed by PostgreSQL: never written
    identity_always: set[str]  # written only with OVERRIDING SYSTEM VALUE


class PostgresConnection(SqlDatabase):
    """A PostgreSQL database; one psycopg connection per thread, one more per stream."""

    type = "postgres"
    service = "PostgreSQL"
    description = "A PostgreSQL database reached directly (psycopg), e.g. Supabase's DATABASE_URL."
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "url": {
                "type": "string",
                "minLength": 1,
                "secret": True,
                "description": "postgresql://user:password@host:5432/database (DATABASE_URL).",
            },
            "schema": {
                "type": "string",
                "minLength": 1,
                "description": "The schema holding the tables (default: public).",
            },
            "timeout_seconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": (
                    "Seconds to connect and for each statement (default: "
                    "defaults.timeout_seconds); a backup's read is not limited."
                ),
            },
        },
        "required": ["url"],
        "additionalProperties": False,
    }

    placeholder = "%s"
    has_ilike = True

    def __init__(self, name: str, config: Any, context: Any) -> None:
        super().__init__(name, config, context)
        self.url: str = config["url"]
        self.schema_name: str = config.get("schema") or "public"
        self._tables: dict[str, _Table] = {}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        url = config["url"]
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            scheme = ""
        if scheme not in ("postgres", "postgresql") and "=" not in url:
            # The value is a secret: say what is wrong without repeating it.
            return [("url", "is not a PostgreSQL URL: write postgresql://user:password@host/db")]
        return []

    # -- connecting ------------------------------------------------------------------------

    def _connect(self, *, statement_timeout: bool = True) -> psycopg.Connection[Any]:
        import psycopg

        try:
            connection = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, round(self.timeout)),
                application_name="angles",
                prepare_threshold=None,  # transaction poolers cannot keep prepared statements
            )
        except psycopg.Error as exc:
            raise self._connect_error(exc) from exc
        except ValueError as exc:  # a URL psycopg cannot parse
            raise ServiceError(
                self.service, "the url is not a valid PostgreSQL URL", hint=_URL_HINT
            ) from exc
        milliseconds = str(round(self.timeout * 1000)) if statement_timeout else "0"
        try:
            # Supabase runs in UTC: timestamptz must come out as PostgREST writes it.
            connection.execute(
                "SELECT set_config('TimeZone', 'UTC', false),"
                " set_config('statement_timeout', %s, false)",
                [milliseconds],
            )
        except psycopg.Error as exc:
            connection.close()
            raise self.service_error(exc, None, "setting up the session") from exc
        return connection

    def open_connection(self) -> psycopg.Connection[Any]:
        return self._connect()

    def driver_error(self) -> type[Exception]:
        import psycopg

        return psycopg.Error

    def atomic(self, connection: psycopg.Connection[Any]) -> contextlib.AbstractContextManager[Any]:
        """psycopg's own transaction block (a savepoint when nested)."""
        return connection.transaction()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[bool]:
        """One ``REPEATABLE READ READ ONLY`` transaction around every read of the block, on
        this thread's connection (tables are copied on it too), as ``pg_dump`` reads."""
        from psycopg import IsolationLevel

        connection = self.thread_connection()
        connection.isolation_level, connection.read_only = IsolationLevel.REPEATABLE_READ, True
        self._local.snapshot = True
        try:
            with super().snapshot() as consistent:
                yield consistent
        finally:
            self._local.snapshot = False
            if not connection.closed:
                connection.isolation_level, connection.read_only = None, None

    @staticmethod
    def quote(identifier: str) -> str:
        """An SQL identifier in double quotes, safe inside a psycopg query string."""
        return '"' + identifier.replace('"', '""').replace("%", "%%") + '"'

    def relation(self, table: str) -> str:
        return ".".join(map(self.quote, self._schema_and_name(table)))

    def _schema_and_name(self, table: str) -> tuple[str, str]:
        """``schema.table`` split; a bare name is in the connection's ``schema:``."""
        schema, dot, name = table.partition(".")
        return (schema, name) if dot else (self.schema_name, table)

    def list_tables(self) -> dict[str, str]:
        """Tables, partitioned tables, views and materialized views of every schema the
        role can use (system schemas aside); partitions are left out."""
        found = {}
        for schema, name, kind in self.fetch(_RELATIONS_SQL):
            found[name if schema == self.schema_name else f"{schema}.{name}"] = _KINDS[kind]
        return found

    # -- the catalog --------------------------------------------------------------------

    def read_schema(self, table: str) -> TableSchema:
        """Columns (type names without modifiers, as Supabase shows them), primary key, required."""
        relation = self._relation_name(table)
        columns = self.fetch(_COLUMNS_SQL, [relation], table)
        if not columns:
            raise ServiceError(
                self.service,
                f"there is no table {table!r} in schema {self.schema_name!r}",
                hint="check the `table:` of the check or backup, and `schema:` of the connection",
            )
        key = tuple(row[0] for row in self.fetch(_PRIMARY_KEY_SQL, [relation], table))
        types = {name: type_name for name, type_name, *_ in columns}
        required = frozenset(
            name
            for name, _, notnull, has_default, identity, generated, *_ in columns
            if notnull and not has_default and not identity and not generated
        )
        schema = TableSchema(table, types, key, required=required)
        info = {row[0]: row for row in columns}
        sort = {}
        for column in key:
            *_, typtype, collation = info[column]
            if typtype == "e":  # an enum sorts by declaration; Python sorts its label
                sort[column] = f'{self.quote(column)}::text COLLATE "C"'
            elif collation is not None and collation not in _BYTE_ORDER_COLLATIONS:
                sort[column] = f'{self.quote(column)} COLLATE "C"'
            else:
                sort[column] = self.quote(column)
        self._tables[table] = _Table(
            schema,
            sort,
            generated={name for name, row in info.items() if row[5]},
            identity_always={name for name, row in info.items() if row[4] == "a"},
        )
        return schema

    def _table(self, table: str) -> _Table:
        if table not in self._tables:
            self.describe(table)
        return self._tables[table]

    def sort_expression(self, table: str, column: str) -> str:
        return self._table(table).sort.get(column) or self.quote(column)

    def computed_columns(self, table: str) -> frozenset[str]:
        """Generated columns: PostgreSQL computes them, and refuses values for them."""
        return frozenset(self._table(table).generated)

    # -- reading --------------------------------------------------------------------------

    def select_list(self, table: str) -> tuple[str, Callable[[Sequence[Any]], Row]]:
        """Each row as PostgreSQL writes it in JSON (``row_to_json``), read exactly."""
        return f"row_to_json({self.row_alias})::text", lambda values: loads_exact(values[0])

    def read_rows(self, table: str, schema: TableSchema, where: Filter | None) -> Iterator[Row]:
        """Every row in primary-key order, read with one ``COPY`` on its own connection:
        one snapshot, no page queries, and none of this thread's uncommitted writes."""
        import psycopg

        order = ", ".join(self.sort_expression(table, c) for c in schema.primary_key)
        # Each row as a JSON array of its values (the conversion row_to_json makes, without
        # repeating the keys), columns in the sorted order the backup's canonical form uses.
        names = sorted(self._table(table).schema.columns)
        if len(names) <= _MAX_ARGUMENTS:
            values = f"json_build_array({', '.join(map(self.quote, names))})::text"
        else:
            values = f"row_to_json({self.row_alias})::text"
        condition, params = self.condition(where)
        sql = (
            f"COPY (SELECT {values} FROM {self.source(table)} "
            f"WHERE {condition} ORDER BY {order}) TO STDOUT"
        )
        decode = _row_decoder(names if len(names) <= _MAX_ARGUMENTS else None)
        # No statement timeout: reading a large table legitimately takes long.
        in_snapshot = getattr(self._local, "snapshot", False)
        if in_snapshot:
            connection = self.thread_connection()
            connection.execute("SELECT set_config('statement_timeout', '0', true)")
        else:
            connection = self._connect(statement_timeout=False)
        finished = False
        try:
            with connection.cursor() as cursor, cursor.copy(sql, params) as copy:
                pending = b""
                for chunk in copy:
                    # The server sends a row per message, but the protocol does not promise it.
                    lines = (pending + bytes(chunk) if pending else bytes(chunk)).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        yield decode(line)
            finished = True
        except psycopg.Error as exc:
            raise self.service_error(exc, table, "reading") from exc
        finally:
            if not finished:  # abandoned mid-table: stop the server sending the rest
                with contextlib.suppress(Exception):
                    connection.cancel_safe(timeout=2)
            if not in_snapshot:
                connection.close()
            elif finished:
                milliseconds = str(round(self.timeout * 1000))
                connection.execute(
                    "SELECT set_config('statement_timeout', %s, true)", [milliseconds]
                )

    # -- writing --------------------------------------------------------------------------

    def write_rows(
        self,
        connection: psycopg.Connection[Any],
        table: str,
        schema: TableSchema,
        columns: Sequence[str],
        rows: list[Row],
    ) -> int:
        """``INSERT … SELECT … FROM json_populate_recordset … ON CONFLICT (key) DO UPDATE``:
        every value cast by its column's type as PostgREST casts it; identity columns keep
        the backup's values."""
        target = self.relation(table)
        names = ", ".join(map(self.quote, columns))
        overriding = (
            " OVERRIDING SYSTEM VALUE" if self._table(table).identity_always & set(columns) else ""
        )
        sql = (
            f"INSERT INTO {target} ({names}){overriding} "
            f"SELECT {names} FROM json_populate_recordset(NULL::{target}, %s::json) "
            + self.on_conflict(schema, columns)
        )
        payload = dumps_exact(
            [{c: row[c] for c in columns} for row in rows],
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
        return max(connection.execute(sql, [payload]).rowcount, 0)

    # -- helpers ---------------------------------------------------------------------------

    def _relation_name(self, table: str) -> str:
        # to_regclass parses the name itself, so it gets plain (not %-escaped) quoting.
        return ".".join(map(SqlDatabase.quote, self._schema_and_name(table)))

    def _scrub(self, text: str) -> str:
        """``text`` without the URL or its password (libpq does not print them; be sure)."""
        try:
            password = urlsplit(self.url).password
        except ValueError:
            password = None
        for secret in (self.url, password):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _endpoint(self) -> tuple[str, str]:
        try:
            from psycopg.conninfo import conninfo_to_dict

            info = conninfo_to_dict(self.url)
        except Exception:
            return "the server", ""
        host = str(info.get("host") or "localhost")
        port = info.get("port")
        return (f"{host}:{port}" if port else host), str(info.get("user") or "")

    def _connect_error(self, exc: Exception) -> ServiceError:
        text = self._scrub(str(exc))
        host, user = self._endpoint()
        lowered = text.lower()
        if "password authentication failed" in lowered or "no password supplied" in lowered:
            return ServiceError(
                self.service,
                f"the server at {host} refused the login of user {user!r} (bad password?)",
                hint="check the user name and password in the connection's url (DATABASE_URL)",
            )
        if "connection refused" in lowered:
            return ServiceError(
                self.service,
                f"could not connect to {host}: connection refused",
                hint=f"is PostgreSQL running there? {_URL_HINT}",
            )
        if "timeout expired" in lowered:
            return ServiceError(
                self.service,
                f"connecting to {host} timed out after {self.timeout:g}s",
                hint=f"is the host reachable (firewall, IPv6)? {_URL_HINT}",
            )
        if "could not translate host name" in lowered or "name or service not known" in lowered:
            return ServiceError(
                self.service, f"unknown host {host!r}", hint=f"check the host; {_URL_HINT}"
            )
        if "does not exist" in lowered and "database" in lowered:
            return ServiceError(
                self.service,
                self.first_line(text),
                hint="check the database name at the end of the url",
            )
        return ServiceError(
            self.service, f"could not connect: {self.first_line(text)}", hint=_URL_HINT
        )

    def service_error(self, exc: Exception, table: str | None, action: str) -> ServiceError:
        """A psycopg error as a ServiceError that says what was being done."""
        from psycopg import errors

        subject = f"{action} {table!r}" if table else action
        text = self.first_line(self._scrub(str(exc)))
        if isinstance(exc, errors.UndefinedTable):
            return ServiceError(
                self.service,
                f"there is no table {table!r} in schema {self.schema_name!r}",
                hint="check the `table:` of the check or backup, and `schema:` of the connection",
            )
        if isinstance(exc, errors.QueryCanceled):
            return ServiceError(
                self.service,
                f"{subject} timed out after {self.timeout:g}s",
                hint="raise timeout_seconds of the connection, or look for locks",
            )
        if isinstance(exc, errors.InsufficientPrivilege):
            return ServiceError(
                self.service,
                f"{subject}: {text}",
                hint="grant the login SELECT (and INSERT, UPDATE to restore) on the table",
            )
        if isinstance(exc, errors.UndefinedColumn):
            return ServiceError(
                self.service, f"{subject}: {text}", hint="check the column names in the filter"
            )
        if isinstance(exc, errors.OperationalError) and not getattr(exc, "sqlstate", None):
            return ServiceError(
                self.service, f"{subject}: the connection failed ({text})", hint=_URL_HINT
            )
        return ServiceError(self.service, f"{subject} failed: {text}")


def _row_decoder(names: list[str] | None) -> Any:
    """Turns one line of ``COPY … TO STDOUT`` (text format) holding JSON into a row.

    COPY escapes backslashes and control characters; they are undone only on the lines
    that have any. With ``names`` the line is a JSON array of the values in that order.
    """
    loads = loads_exact

    def decode(line: bytes) -> Row:
        if b"\\" in line:
            line = _COPY_ESCAPE.sub(_unescape, line)
        values = loads(line.decode())
        return values if names is None else dict(zip(names, values, strict=True))

    return decode


def _unescape(match: re.Match[bytes]) -> bytes:
    return _COPY_ESCAPES.get(match[1], match[1])


@hookimpl
def angles_register_connections(register: Any) -> None:
    register(PostgresConnection)
