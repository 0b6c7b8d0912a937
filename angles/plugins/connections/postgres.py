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
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import orjson

from angles import Filter, ForeignKey, Row, ServiceError, SqlDatabase, TableSchema, hookimpl
from angles.helpers import JSON_TYPES, dumps_exact, excerpt, loads_exact

if TYPE_CHECKING:
    import psycopg

# COPY in CSV with a delimiter and quote no canonical line can hold (JSON escapes every
# control character), so each line crosses as its own bytes, never quoted or escaped.
_RAW_LINES = "FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e'"
_BYTE_ORDER_COLLATIONS = frozenset({"C", "POSIX", "ucs_basic"})
_URL_HINT = "check the connection's url (DATABASE_URL)"

# Each catalog query reads the tables named in one array (%s::text[]) and gives each row
# its table's name first: a backup of many tables asks once, not once a table.
# Columns come with their base type (a domain's underlying type), where their values are
# judged: kind of type (enum, composite...), category (A: array) and collation.
_COLUMNS_SQL = """
SELECT r.name, a.attname, format_type(a.atttypid, NULL), a.attnotnull,
       a.atthasdef, a.attidentity, a.attgenerated, b.typtype,
       CASE WHEN a.attcollation = 0 THEN NULL ELSE co.collname END,
       format_type(b.oid, NULL), b.typcategory, format_type(a.atttypid, a.atttypmod)
FROM unnest(%s::text[]) AS r(name)
JOIN pg_attribute a ON a.attrelid = to_regclass(r.name)
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attnum > 0 AND NOT a.attisdropped
ORDER BY r.name, a.attnum
"""

_PRIMARY_KEY_SQL = """
SELECT r.name, a.attname
FROM unnest(%s::text[]) AS r(name)
JOIN pg_index i ON i.indrelid = to_regclass(r.name) AND i.indisprimary
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
ORDER BY r.name, k.position
"""

_FOREIGN_KEYS_SQL = """
SELECT r.name,
       array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, position)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             ORDER BY k.position),
       n.nspname, f.relname,
       array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, position)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum
             ORDER BY k.position)
FROM unnest(%s::text[]) AS r(name)
JOIN pg_constraint c ON c.conrelid = to_regclass(r.name)
JOIN pg_class f ON f.oid = c.confrelid
JOIN pg_namespace n ON n.oid = f.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0
ORDER BY r.name, c.conname
"""

# The sequences a table's columns draw from: owned by a column (serial, identity), or
# named by a column default's nextval().
_SEQUENCES_SQL = """
SELECT r.name, a.attname, s.oid::regclass::text
FROM unnest(%s::text[]) AS r(name)
JOIN pg_depend d ON d.refobjid = to_regclass(r.name)
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass
  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
UNION
SELECT r.name, a.attname, s.oid::regclass::text
FROM unnest(%s::text[]) AS r(name)
JOIN pg_attrdef ad ON ad.adrelid = to_regclass(r.name)
JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
  AND d.refclassid = 'pg_class'::regclass
JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
ORDER BY 1, 2
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
_BACKED_UP = frozenset({"table", "partitioned table"})  # the relations with rows of their own


@dataclass
class _Catalog:
    """The catalog's rows about one table: columns, primary key, foreign keys, sequences."""

    columns: list[tuple[Any, ...]] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    foreign_keys: list[tuple[Any, ...]] = field(default_factory=list)
    sequences: list[tuple[str, str]] = field(default_factory=list)


# Keys whose order in PostgreSQL is the order Python gives their JSON values.
_NUMERIC_ORDER = frozenset({"smallint", "integer", "bigint", "boolean"})


@dataclass
class _Table:
    """What describe learns beyond :class:`TableSchema`: how to order and write the table."""

    schema: TableSchema
    sort: dict[str, str]  # key column -> its ORDER BY expression
    generated: set[str]  # computed by PostgreSQL: never written
    identity_always: set[str]  # written only with OVERRIDING SYSTEM VALUE
    # column -> its type with modifiers: a value read as text is cast to it (a bare
    # ``character`` would be char(1))
    types: dict[str, str]


#: Tables a backup reads at once: the server writes one table's rows while angles stores
#: another's, and neither waits for the other.
DEFAULT_JOBS = 3


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
            "jobs": {
                "type": "integer",
                "minimum": 1,
                "maximum": 16,
                "description": (
                    f"Tables a backup reads at once, each on its own connection, all in "
                    f"one shared snapshot as pg_dump --jobs reads (default: {DEFAULT_JOBS})."
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
        self.jobs: int = config.get("jobs", DEFAULT_JOBS)
        #: The id of the snapshot an open :meth:`snapshot` shares with its other readers.
        self._exported: str | None = None
        self._tables: dict[str, _Table] = {}
        #: The tables :meth:`list_tables` last named: described together in a snapshot.
        self._listed: list[str] = []

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
        timeout = str(round(self.timeout * 1000))
        try:
            # Supabase runs in UTC: timestamptz must come out as PostgREST writes it.
            # Text output that reads back as the same value, however the server is set:
            # shortest exact floats, ISO dates, the default interval spelling. Work on a
            # whole table may outlast the statement timeout, waiting for a lock never does.
            connection.execute(
                "SELECT set_config('TimeZone', 'UTC', false),"
                " set_config('statement_timeout', %s, false),"
                " set_config('lock_timeout', %s, false),"
                " set_config('extra_float_digits', '1', false),"
                " set_config('DateStyle', 'ISO, YMD', false),"
                " set_config('IntervalStyle', 'postgres', false)",
                [timeout if statement_timeout else "0", timeout],
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
    def transaction(self) -> Iterator[None]:
        """One transaction around a live restore, in which triggers do not fire (as
        ``pg_dump --disable-triggers`` restores): a ``BEFORE UPDATE`` trigger stamping
        ``updated_at`` would change every restored row. The foreign keys, which are
        triggers too, are checked at the end instead, for every table written."""
        outermost = getattr(self._local, "depth", 0) == 0
        with super().transaction():
            if outermost:
                self._local.written = set()
                self._local.replica = self._stop_triggers(self.thread_connection())
            yield
            if outermost and self._local.replica:
                for table in sorted(self._local.written):
                    self._check_references(table)

    def _stop_triggers(self, connection: psycopg.Connection[Any]) -> bool:
        """``session_replication_role = replica`` for this transaction, where the role may
        set it (a superuser; Supabase's ``postgres``); whether it could."""
        import psycopg

        try:
            with connection.transaction():  # a savepoint: a refusal keeps the transaction
                connection.execute("SET LOCAL session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            return False
        return True

    def _check_references(self, table: str) -> None:
        """Refuse (and so roll back) rows of ``table`` whose foreign key finds no row."""
        for key in self.schema_of(table).foreign_keys:
            pairs = list(zip(key.columns, key.referenced, strict=True))
            present = " AND ".join(f"c.{self.quote(c)} IS NOT NULL" for c, _ in pairs)
            match = " AND ".join(f"p.{self.quote(r)} = c.{self.quote(c)}" for c, r in pairs)
            sql = (
                f"SELECT 1 FROM {self.relation(table)} c WHERE {present} AND NOT EXISTS "
                f"(SELECT 1 FROM {self.relation(key.table)} p WHERE {match}) LIMIT 1"
            )
            if self.fetch(sql, (), table):
                raise ServiceError(
                    self.service,
                    f"restoring {table!r} would leave rows whose {', '.join(key.columns)} "
                    f"refer to no row of {key.table!r}; nothing was restored",
                    hint=f"restore {key.table!r} first, or the whole set with --all",
                )

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[bool]:
        """One ``REPEATABLE READ READ ONLY`` transaction around every read of the block, on
        this thread's connection (tables are copied on it too), as ``pg_dump`` reads.

        With ``jobs`` above 1 the transaction exports its snapshot, which the other
        readers' transactions take up (:meth:`join_snapshot`), as ``pg_dump --jobs`` does.
        """
        with (
            self._snapshot_transaction(self.thread_connection()),
            super().snapshot() as consistent,
        ):
            if self.jobs > 1:
                self._exported = self._export_snapshot()
            try:
                yield consistent
            finally:
                self._exported = None

    def _export_snapshot(self) -> str:
        import psycopg

        try:
            with self.thread_connection().cursor() as cursor:
                return cursor.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
        except psycopg.Error as exc:
            error = self.service_error(exc, None, "sharing the backup's snapshot")
            error.hint = "set `jobs: 1` on the connection to read one table at a time"
            raise error from exc

    @contextlib.contextmanager
    def reading_table(self, table: str) -> Iterator[None]:
        """A savepoint: a table that fails (a privilege missing, a read cancelled) would
        otherwise abort the snapshot's transaction, and every table after it with it."""
        if not getattr(self._local, "snapshot", False):
            yield
            return
        connection = self.thread_connection()
        self._savepoint(connection, "SAVEPOINT angles_table", table)
        try:
            yield
        except BaseException:
            with contextlib.suppress(self.driver_error()):
                self._run(connection, "ROLLBACK TO SAVEPOINT angles_table")
            raise
        self._savepoint(connection, "RELEASE SAVEPOINT angles_table", table)

    def _savepoint(self, connection: psycopg.Connection[Any], sql: str, table: str) -> None:
        try:
            self._run(connection, sql)
        except self.driver_error() as exc:
            raise self.service_error(exc, table, "reading") from exc

    def readers(self) -> int:
        return self.jobs if self._exported else 1

    @contextlib.contextmanager
    def join_snapshot(self) -> Iterator[None]:
        """This thread's reads in a transaction of the snapshot :meth:`snapshot` exported."""
        from psycopg import sql

        exported = self._exported
        if exported is None:
            raise ServiceError(self.service, "no snapshot is open to join")
        connection = self.thread_connection()
        try:
            with self._snapshot_transaction(connection), self.atomic(connection):
                try:
                    connection.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(exported))
                except self.driver_error() as exc:
                    raise self.service_error(exc, None, "joining the backup's snapshot") from exc
                yield
        finally:
            self.release_thread_connection()  # the reader's thread ends with the backup

    @contextlib.contextmanager
    def _snapshot_transaction(self, connection: psycopg.Connection[Any]) -> Iterator[None]:
        """Transactions begun on ``connection`` inside the block are read-only snapshots;
        what this thread read of the catalog ends with them."""
        from psycopg import IsolationLevel

        connection.isolation_level, connection.read_only = IsolationLevel.REPEATABLE_READ, True
        self._local.snapshot = True
        try:
            yield
        finally:
            self._local.snapshot = False
            self._local.catalog = None
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

    def _name_of(self, schema: str, name: str) -> str:
        """A table's name as angles writes it: bare in the connection's schema."""
        return name if schema == self.schema_name else f"{schema}.{name}"

    def sequence_values(self, sequences: Iterable[str]) -> dict[str, int | None]:
        names = list(dict.fromkeys(sequences))
        if not names:
            return {}
        rows = self.fetch(
            "SELECT s, pg_sequence_last_value(s::regclass) FROM unnest(%s::text[]) AS s", [names]
        )
        return dict(rows)

    def advance_sequences(
        self, table: str, schema: TableSchema, recorded: Mapping[str, int | None]
    ) -> dict[str, int]:
        advanced = {}
        for column, sequence in schema.sequences.items():
            # GREATEST skips NULLs; setval of NULL (an empty table, a sequence never
            # drawn from, nothing recorded) changes nothing.
            sql = (
                "SELECT setval(%s::regclass, GREATEST(%s::bigint, "
                f"(SELECT max({self.quote(column)}) FROM {self.relation(table)})::bigint, "
                "pg_sequence_last_value(%s::regclass)))"
            )
            (value,) = self.fetch(sql, [sequence, recorded.get(sequence), sequence], table)[0]
            if value is not None:
                advanced[sequence] = int(value)
        return advanced

    def list_tables(self) -> dict[str, str]:
        """Tables, partitioned tables, views and materialized views of every schema the
        role can use (system schemas aside); partitions are left out."""
        relations = {
            self._name_of(schema, name): _KINDS[kind]
            for schema, name, kind in self.fetch(_RELATIONS_SQL)
        }
        self._listed = [name for name, kind in relations.items() if kind in _BACKED_UP]
        return relations

    # -- the catalog --------------------------------------------------------------------

    def read_schema(self, table: str) -> TableSchema:
        """Columns (type names without modifiers, as Supabase shows them), primary key, required."""
        catalog = self._catalog_of(table)
        columns = catalog.columns
        if not columns:
            raise ServiceError(
                self.service,
                f"there is no table {table!r} in schema {self.schema_name!r}",
                hint="check the `table:` of the check or backup, and `schema:` of the connection",
            )
        key = tuple(catalog.key)
        types = {name: type_name for name, type_name, *_ in columns}
        required = frozenset(
            name
            for name, _, notnull, has_default, identity, generated, *_ in columns
            if notnull and not has_default and not identity and not generated
        )
        info = {row[0]: row for row in columns}
        foreign_keys = tuple(
            ForeignKey(tuple(cols), self._name_of(schema_name, name), tuple(referenced))
            for cols, schema_name, name, referenced in catalog.foreign_keys
        )
        sequences = dict(catalog.sequences)
        text_columns = frozenset(
            name
            for name, row in info.items()
            if row[8] not in JSON_TYPES and row[6] != "e" and row[9] != "S"
        )
        schema = TableSchema(
            table,
            types,
            key,
            required=required,
            foreign_keys=foreign_keys,
            generated=frozenset(name for name, row in info.items() if row[5]),
            identity={
                name: "always" if row[4] == "a" else "by default"
                for name, row in info.items()
                if row[4]
            },
            sequences=sequences,
            text_columns=text_columns,
        )
        sort = {}
        for column in key:
            _, _, _, _, _, _, typtype, collation, base, *_ = info[column]
            if base in _NUMERIC_ORDER or base == "uuid":  # uuid: text order is byte order
                sort[column] = self.quote(column)
            elif base in ("text", "character varying", "name") and typtype != "e":
                byte_order = collation is None or collation in _BYTE_ORDER_COLLATIONS
                sort[column] = self.quote(column) + ("" if byte_order else ' COLLATE "C"')
            else:
                # By the very string the row carries (a BC date, -Infinity, an enum's label,
                # a numeric's text), as Python orders it: the diff merges in that order.
                value = _json_value(self.quote(column), column in text_columns)
                sort[column] = f"({value} #>> '{{}}') COLLATE \"C\""
        self._tables[table] = _Table(
            schema,
            sort,
            generated={name for name, row in info.items() if row[5]},
            identity_always={name for name, row in info.items() if row[4] == "a"},
            types={name: row[10] for name, row in info.items()},
        )
        return schema

    def _catalog_of(self, table: str) -> _Catalog:
        """The catalog's rows about ``table``. Inside a snapshot, describing one of the
        tables :meth:`list_tables` named reads them all at once (four queries, not four a
        table), kept for the rest of the snapshot; each is used once."""
        pending: dict[str, _Catalog] | None = getattr(self._local, "catalog", None)
        if pending is not None and table in pending:
            return pending.pop(table)
        if getattr(self._local, "snapshot", False) and table in self._listed:
            self._local.catalog = pending = self._read_catalog(self._listed, table)
            return pending.pop(table, _Catalog())
        return self._read_catalog([table], table).get(table, _Catalog())

    def _read_catalog(self, tables: Sequence[str], subject: str) -> dict[str, _Catalog]:
        """Columns, keys, foreign keys and sequences of ``tables``, one query for each."""
        names = {self._relation_name(table): table for table in tables}
        relations = [list(names)]
        found: dict[str, _Catalog] = {}

        def of(relation: str) -> _Catalog:
            return found.setdefault(names[relation], _Catalog())

        for relation, *column in self.fetch(_COLUMNS_SQL, relations, subject):
            of(relation).columns.append(tuple(column))
        for relation, column in self.fetch(_PRIMARY_KEY_SQL, relations, subject):
            of(relation).key.append(column)
        for relation, *key in self.fetch(_FOREIGN_KEYS_SQL, relations, subject):
            of(relation).foreign_keys.append(tuple(key))
        for relation, column, sequence in self.fetch(_SEQUENCES_SQL, relations * 2, subject):
            of(relation).sequences.append((column, sequence))
        return found

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
        return self._copy_rows(table, schema, where)

    def read_unkeyed_rows(
        self, table: str, schema: TableSchema, where: Filter | None
    ) -> Iterator[Row]:
        return self._copy_rows(table, schema, where)

    def stream_lines(self, table: str, schema: TableSchema) -> Iterator[bytes]:
        """Each row's canonical line, written by PostgreSQL itself (see :func:`_line_sql`),
        in blocks of many lines."""
        return self._copy(table, schema, None)

    def _copy_rows(self, table: str, schema: TableSchema, where: Filter | None) -> Iterator[Row]:
        for block in self._copy(table, schema, where):
            for line in block.split(b"\n"):
                yield loads_exact(line.decode())

    def _copy(self, table: str, schema: TableSchema, where: Filter | None) -> Iterator[bytes]:
        """Every row in primary-key order, read with one ``COPY`` on its own connection:
        one snapshot, no page queries, and none of this thread's uncommitted writes.

        Each row is its canonical line (:func:`_line_sql`), in the encoding ``schema``
        says (``text_columns``); a table without a primary key is ordered by its whole row,
        as text. Lines come in blocks of about :data:`_BLOCK_BYTES`, joined by ``\n``: the
        server sends a message per row, and handling each one in Python would cost more
        than the server spends writing it.
        """
        import psycopg

        names = [c for c in self._table(table).schema.columns if c in schema.columns]
        line = _line_sql(names, self.quote, schema.text_columns)
        order = ", ".join(self.sort_expression(table, c) for c in schema.primary_key) or (
            f'row_to_json({self.row_alias})::text COLLATE "C"'
        )
        condition, params = self.condition(where)
        sql = (
            f"COPY (SELECT {line} FROM {self.source(table)} "
            f"WHERE {condition} ORDER BY {order}) TO STDOUT ({_RAW_LINES})"
        )
        # No statement timeout: reading a large table legitimately takes long.
        in_snapshot = getattr(self._local, "snapshot", False)
        if in_snapshot:
            connection = self.thread_connection()
            connection.execute("SELECT set_config('statement_timeout', '0', true)")
        else:
            connection = self._connect(statement_timeout=False)
        finished = False
        try:
            with connection.cursor() as cursor, _copy_statement(cursor, sql, params) as copy:
                buffer = bytearray()
                for chunk in copy:
                    buffer += chunk
                    if len(buffer) >= _BLOCK_BYTES:
                        # A message is a row, but the protocol does not promise it: a block
                        # ends at the last whole line.
                        end = buffer.rfind(b"\n")
                        if end > 0:
                            yield bytes(buffer[:end])
                            del buffer[: end + 1]
                if buffer:
                    yield bytes(buffer[:-1] if buffer.endswith(b"\n") else buffer)
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

    # -- restoring in the database -------------------------------------------------------

    def stage(
        self,
        table: str,
        schema: TableSchema,
        lines: Iterable[bytes],
        *,
        columns: Sequence[str],
        updated_at: str | None,
        backup_time: datetime | None,
        declared: Sequence[str],
    ) -> _Stage | None:
        """The backup ``COPY``-ed into a temporary table of this thread's session, typed
        by the table's columns, and diffed there by SQL (see :class:`_Stage`, and
        :class:`_UnkeyedStage` for a table without a primary key)."""
        if updated_at is not None and schema.columns.get(updated_at) not in _MOMENTS:
            return None
        kind = _Stage if schema.primary_key else _UnkeyedStage
        stage = kind(self, table, schema, list(columns), updated_at, backup_time)
        try:
            stage.load(lines, declared)
        except BaseException:
            stage.close()
            raise
        return stage

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
        if schema.text_columns:
            types = self._table(table).types
            # Every value from its text (``->>``), cast by the column's type: its text
            # output for text columns, the JSON scalar's text for the others.
            values = ", ".join(
                f"(r.v ->> {_literal(c)})::{types[c].replace('%', '%%')}" for c in columns
            )
            source = "json_array_elements(%s::json) AS r(v)"
        else:
            values, source = names, f"json_populate_recordset(NULL::{target}, %s::json)"
        sql = (
            f"INSERT INTO {target} ({names}){overriding} SELECT {values} FROM {source} "
            + self.on_conflict(schema, columns)
        )
        payload = dumps_exact(
            [{c: row[c] for c in columns} for row in rows],
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        )
        written = getattr(self._local, "written", None)
        if written is not None:
            written.add(table)
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
        if isinstance(exc, errors.LockNotAvailable):
            return ServiceError(
                self.service,
                f"{subject}: another session held a lock on the table for {self.timeout:g}s",
                hint="find it in pg_stat_activity (wait_event_type 'Lock' shows who waits), "
                "let it finish, or raise timeout_seconds of the connection",
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


_MOMENTS = frozenset({"timestamp with time zone", "timestamp without time zone", "date"})
_COPY_BATCH = 1 << 20  # bytes sent per COPY message
_stage_numbers = itertools.count(1)


class _Stage:
    """A backup in a temporary table, typed as ``table`` types its columns, beside it.

    Every verdict is one SQL pass: a row of the backup whose key the table lacks is an
    insert; one whose compared columns all have the same text output is unchanged (text,
    so ``1.50`` is not ``1.5``, nor ``-0`` ``0``, nor jsonb ``true`` ``1``); one whose table
    row changed after the backup was taken is newer; else an update. Keys match by the
    type's own equality, so any key PostgreSQL can index works, in its order.
    """

    def __init__(
        self,
        database: PostgresConnection,
        table: str,
        schema: TableSchema,
        columns: list[str],
        updated_at: str | None,
        backup_time: datetime | None,
    ) -> None:
        self.database = database
        self.table = table
        self.schema = schema
        self.columns = columns
        self.updated_at = updated_at
        self.backup_time = backup_time
        number = next(_stage_numbers)
        self.raw = f"pg_temp.angles_backup_{number}"
        self.rows = f"pg_temp.angles_rows_{number}"
        self.verdicts = f"pg_temp.angles_verdicts_{number}"
        self.total = 0
        self.connection = database.thread_connection()
        self._counts: dict[str, int] | None = None
        #: What the plan left as its verdicts: None before it, "TABLE" (every key it found
        #: not unchanged) or "VIEW" (into an empty table: every staged row, an insert).
        self._verdicts_kind: str | None = None

    # -- loading ----------------------------------------------------------------------

    def load(self, lines: Iterable[bytes], declared: Sequence[str]) -> None:
        import psycopg

        database = self.database
        target = database.relation(self.table)
        key = list(self.schema.primary_key)
        wanted = list(dict.fromkeys([*key, *self.columns]))
        live = database._table(self.table)
        # The file holds as text every value the table's types need as text (a file from
        # 1.3.0 on, or one whose columns all read the same either way): each value's text
        # goes to its type. Older files hold numbers, objects and arrays as JSON.
        as_text = live.schema.text_columns.intersection(wanted) <= self.schema.text_columns
        try:
            with self._unbounded():
                if as_text:
                    self._copy_typed(lines, wanted, live.types, declared)
                else:
                    self._copy_json(lines, wanted, target, declared)
                if key:
                    self._check_keys(key)
                if not self._target_is_empty():  # into an empty table, no join to plan
                    self.connection.execute(f"ANALYZE {self.rows}")
        except psycopg.Error as exc:
            raise self._refusal(exc) from exc

    def _copy_typed(
        self,
        lines: Iterable[bytes],
        wanted: list[str],
        types: Mapping[str, str],
        declared: Sequence[str],
    ) -> None:
        """``COPY`` the rows straight into a table of the columns' own types: each value's
        text goes to its type's input function, as ``pg_dump``'s ``COPY`` gives it."""
        quote = self.database.quote
        columns = ", ".join(f"{quote(c)} {types[c]}" for c in wanted)
        self.connection.execute(f"CREATE TEMP TABLE {self.rows} ({columns})", ())
        fields = _CopyRows(wanted, declared)
        names = ", ".join(map(quote, wanted))
        with (
            self.connection.cursor() as cursor,
            _copy_statement(cursor, f"COPY {self.rows} ({names}) FROM STDIN") as copy,
        ):
            _send_lines(copy, map(fields.line, lines))
        self.total = fields.count
        fields.check()

    def _copy_json(
        self, lines: Iterable[bytes], wanted: list[str], target: str, declared: Sequence[str]
    ) -> None:
        """Lines into a ``jsonb`` column, then each row read as the table's record type."""
        quote = self.database.quote
        values = ", ".join(f"p.{quote(c)}" for c in wanted)
        self.connection.execute(f"CREATE TEMP TABLE {self.raw} (line jsonb)")
        with (
            self.connection.cursor() as cursor,
            cursor.copy(f"COPY {self.raw} (line) FROM STDIN ({_RAW_LINES})") as copy,
        ):
            _send_lines(copy, lines)
        self._check_columns(declared)
        self.total = self.connection.execute(
            f"CREATE TEMP TABLE {self.rows} AS SELECT {values} "
            f"FROM {self.raw} b, jsonb_populate_record(NULL::{target}, b.line) p",
            (),
        ).rowcount
        self.connection.execute(f"DROP TABLE {self.raw}")

    def _check_columns(self, declared: Sequence[str]) -> None:
        # jsonb minus the declared names leaves what the metadata does not declare.
        found = self.database.fetch(
            f"SELECT count(*), min(k) FROM (SELECT (SELECT min(k) FROM "
            f"jsonb_object_keys(line - %s::text[]) k) AS k FROM {self.raw} "
            "WHERE (line - %s::text[]) <> '{}'::jsonb) extra",
            [list(declared), list(declared)],
            self.table,
        )
        rows, column = found[0]
        if rows:
            raise _undeclared(rows, column)

    def _check_keys(self, key: list[str]) -> None:
        import psycopg

        from angles import BackupError

        quote = self.database.quote
        names = ", ".join(quote(c) for c in key)
        missing = " OR ".join(f"{quote(c)} IS NULL" for c in key)
        [(nulls,)] = self.database.fetch(
            f"SELECT count(*) FROM {self.rows} WHERE {missing}", (), self.table
        )
        if nulls:
            raise BackupError(
                f"{nulls} row(s) of the backup have no value for the primary key "
                f"{', '.join(key)} of {self.table!r}",
                hint=_EDITED,
            )
        # A unique index finds a repeated key (and speeds the joins that follow).
        try:
            self.connection.execute(f"CREATE UNIQUE INDEX ON {self.rows} ({names})", ())
        except psycopg.errors.UniqueViolation as exc:
            detail = exc.diag.message_detail or ""
            raise BackupError(
                f"the backup repeats a primary key of {self.table!r} ({excerpt(detail, 160)})",
                hint=_EDITED,
            ) from exc

    def _refusal(self, exc: Exception) -> Exception:
        """A value the column's type refuses, as a problem of the file."""
        from angles import BackupError

        text = self.database.first_line(str(exc))
        if getattr(exc, "sqlstate", "") and str(exc.sqlstate).startswith(("22", "23")):
            return BackupError(
                f"the backup holds a value {self.table!r} cannot take: {text}",
                hint="the file was edited or written for another schema; restore another backup",
            )
        return self.database.service_error(exc, self.table, "loading the backup beside")

    @contextlib.contextmanager
    def _unbounded(self) -> Iterator[None]:
        """No statement timeout while the whole table is worked on (as for a backup)."""
        self.connection.execute("SELECT set_config('statement_timeout', '0', false)")
        try:
            yield
        finally:
            milliseconds = str(round(self.database.timeout * 1000))
            self.connection.execute(
                "SELECT set_config('statement_timeout', %s, false)", [milliseconds]
            )

    # -- verdicts ---------------------------------------------------------------------

    def _verdicts(self, *, judged_only: bool = False) -> str:
        """Each backup row with its verdict (``angles_kind``) against the table now; with
        ``judged_only``, only the rows the plan found to be not unchanged."""
        quote = self.database.quote
        key = self.schema.primary_key
        match = " AND ".join(f"t.{quote(c)} = b.{quote(c)}" for c in key)
        rows = f"{self.rows} b"
        if judged_only:
            judged = " AND ".join(f"k.{quote(c)} = b.{quote(c)}" for c in key)
            rows = f"{self.rows} b JOIN {self.verdicts} k ON {judged}"
        same = " AND ".join(
            f'(b.{quote(c)}::text COLLATE "C") IS NOT DISTINCT FROM (t.{quote(c)}::text COLLATE "C")'
            for c in self.columns
            if c not in key
        )
        newer = (
            f"t.{quote(self.updated_at)} > %(backup_time)s"
            if self.updated_at and self.backup_time
            else "false"
        )
        differs = ", ".join(
            f'CASE WHEN (b.{quote(c)}::text COLLATE "C") IS DISTINCT FROM '
            f'(t.{quote(c)}::text COLLATE "C") THEN {_literal(c)} END'
            for c in self.columns
            if c not in key
        )
        return (
            f"SELECT b.*, CASE WHEN t.{quote(key[0])} IS NULL THEN 'insert' "
            f"WHEN {same or 'true'} THEN 'unchanged' WHEN {newer} THEN 'newer_in_database' "
            f"ELSE 'update' END AS angles_kind, "
            f"array_remove(ARRAY[{differs or 'NULL'}]::text[], NULL) AS angles_columns "
            f"FROM {rows} LEFT JOIN {self.database.relation(self.table)} t ON {match}"
        )

    def _params(self) -> dict[str, Any]:
        return {"backup_time": self.backup_time}

    def _target_is_empty(self) -> bool:
        target = self.database.relation(self.table)
        return bool(self.database.fetch(f"SELECT NOT EXISTS (SELECT 1 FROM {target})")[0][0])

    def counts(self) -> dict[str, int]:
        """Judged once: the keys that are not unchanged are kept (with their verdict and
        differing columns) for the samples. Into an empty table every row is an insert."""
        quote = self.database.quote
        key = ", ".join(quote(c) for c in self.schema.primary_key)
        with self._unbounded():
            self._drop_verdicts()
            if self._target_is_empty():
                # Every row is an insert: the samples read the staged rows themselves.
                self.connection.execute(
                    f"CREATE TEMP VIEW {self.verdicts} AS SELECT {key}, "
                    f"'insert'::text AS angles_kind, '{{}}'::text[] AS angles_columns "
                    f"FROM {self.rows}",
                    (),
                )
                self._verdicts_kind = "VIEW"
                return {"insert": self.total}
            self.connection.execute(
                f"CREATE TEMP TABLE {self.verdicts} AS SELECT {key}, angles_kind, "
                f"angles_columns FROM ({self._verdicts()}) v WHERE angles_kind <> 'unchanged'",
                self._params(),
            )
            self._verdicts_kind = "TABLE"
            counts = dict(
                self.database.fetch(
                    f"SELECT angles_kind, count(*) FROM {self.verdicts} GROUP BY 1", (), self.table
                )
            )
            counts["unchanged"] = self.total - sum(counts.values())
            counts["only_in_database"] = self._only_in_database("count(*)")[0][0]
        return counts

    def _only_in_database(self, what: str, tail: str = "") -> list[tuple[Any, ...]]:
        quote = self.database.quote
        match = " AND ".join(f"b.{quote(c)} = t.{quote(c)}" for c in self.schema.primary_key)
        return self.database.fetch(
            f"SELECT {what} FROM {self.database.relation(self.table)} t "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self.rows} b WHERE {match}){tail}",
            (),
            self.table,
        )

    def samples(self, kind: str, limit: int) -> list[tuple[tuple[Any, ...], tuple[str, ...]]]:
        quote, key = self.database.quote, self.schema.primary_key
        order = ", ".join(self.database.sort_expression(self.table, c) for c in key)
        # Each key as the file spells it: its JSON form, or its text for a text column.
        values = ", ".join(
            f"{_json_value(quote(c), c in self.schema.text_columns)}::text" for c in key
        )
        if kind == "only_in_database":
            rows = self._only_in_database(values, f" ORDER BY {order} LIMIT {int(limit)}")
            return [(tuple(loads_exact(v) for v in row), ()) for row in rows]
        rows = self.database.fetch(
            f"SELECT {values}, angles_columns FROM {self.verdicts} "
            f"WHERE angles_kind = %(kind)s ORDER BY {order} LIMIT {int(limit)}",
            {"kind": kind},
            self.table,
        )
        return [(tuple(loads_exact(v) for v in row[:-1]), tuple(row[-1])) for row in rows]

    # -- writing ----------------------------------------------------------------------

    def _insert(self) -> tuple[str, list[str], psycopg.Connection[Any]]:
        """``INSERT INTO table (columns)`` for the backup's columns but generated ones,
        those columns, and this thread's connection, made ready to write."""
        database = self.database
        described = database._table(self.table)
        columns = dict.fromkeys([*self.schema.primary_key, *self.columns])
        written = [c for c in columns if c not in described.generated]
        names = ", ".join(map(database.quote, written))
        overriding = " OVERRIDING SYSTEM VALUE" if described.identity_always & set(written) else ""
        connection = database.thread_connection()
        connection.execute("SELECT set_config('statement_timeout', '0', true)")
        tracked = getattr(database._local, "written", None)
        if tracked is not None:
            tracked.add(self.table)
        insert = f"INSERT INTO {database.relation(self.table)} ({names}){overriding}"
        return insert, written, connection

    def write(self, *, overwrite_newer: bool) -> dict[str, int]:
        """Judged again as it writes (the table may have changed since the plan), but only
        the rows the plan would write: a row the plan found unchanged is left as it is."""
        database = self.database
        kinds = _written_kinds(overwrite_newer)
        insert, written, connection = self._insert()
        names = ", ".join(map(database.quote, written))
        if self._target_is_empty():  # a disaster recovery: every row is missing
            count = connection.execute(f"{insert} SELECT {names} FROM {self.rows}", ()).rowcount
            return {kind: count if kind == "insert" else 0 for kind in kinds}
        sql = (
            f"WITH v AS ({self._verdicts(judged_only=self._verdicts_kind == 'TABLE')}), "
            f"w AS ({insert} SELECT {names} FROM v "
            f"WHERE v.angles_kind = ANY(%(kinds)s) "
            f"{database.on_conflict(self.schema, written)} RETURNING 1) "
            "SELECT v.angles_kind, count(*) FROM v WHERE v.angles_kind = ANY(%(kinds)s) GROUP BY 1"
        )
        applied = dict(database.fetch(sql, {**self._params(), "kinds": kinds}, self.table))
        return {kind: int(applied.get(kind, 0)) for kind in kinds}

    def _drop_verdicts(self) -> None:
        if self._verdicts_kind is not None:
            self.connection.execute(f"DROP {self._verdicts_kind} IF EXISTS {self.verdicts}")
            self._verdicts_kind = None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if not self.connection.closed:
                self._drop_verdicts()
                self.connection.execute(f"DROP TABLE IF EXISTS {self.raw}, {self.rows}")


class _UnkeyedStage(_Stage):
    """A backup of a table without a primary key, diffed by whole rows in SQL.

    A row is its values (compared as their text output): each copy the backup holds
    beyond the copies the table holds is an insert, the others are unchanged, and the
    table's extra copies are only in the database. Nothing is updated.
    """

    def _values(self, alias: str) -> str:
        """One row's compared values as one comparable value: an array of their texts."""
        quote = self.database.quote
        texts = ", ".join(f'{alias}.{quote(c)}::text COLLATE "C"' for c in self.columns)
        return f"ARRAY[{texts}]::text[]"

    def _table_copies(self) -> str:
        target = self.database.relation(self.table)
        return f"SELECT {self._values('t')} AS r, count(*) AS n FROM {target} t GROUP BY 1"

    def _numbered(self) -> str:
        """The backup's rows, each copy of a row numbered from 1."""
        values = self._values("b")
        return (
            f"SELECT b.*, {values} AS angles_r, row_number() OVER (PARTITION BY {values}) "
            f"AS angles_n FROM {self.rows} b"
        )

    def _missing(self) -> str:
        """The copies of the backup's rows that the table lacks."""
        return (
            f"SELECT b.* FROM ({self._numbered()}) b LEFT JOIN ({self._table_copies()}) t "
            "ON t.r = b.angles_r WHERE b.angles_n > coalesce(t.n, 0)"
        )

    def counts(self) -> dict[str, int]:
        if self._target_is_empty():
            return {"insert": self.total}
        target = self.database.relation(self.table)
        with self._unbounded():
            [(missing,)] = self.database.fetch(
                f"SELECT count(*) FROM ({self._missing()}) m", (), self.table
            )
            [(rows,)] = self.database.fetch(f"SELECT count(*) FROM {target}", (), self.table)
        unchanged = self.total - missing
        self._counts = {"insert": missing, "unchanged": unchanged}
        self._counts["only_in_database"] = rows - unchanged
        return self._counts

    def samples(self, kind: str, limit: int) -> list[tuple[tuple[Any, ...], tuple[str, ...]]]:
        if kind == "only_in_database":  # a row only in the table has no key to show
            counts = self._counts if self._counts is not None else self.counts()
            return [((), ())] * min(limit, counts.get(kind, 0))
        if kind != "insert":
            return []
        quote = self.database.quote
        # Each row as the file spells it, in the file's order (the row's JSON text).
        values = ", ".join(
            f"{_json_value(f'm.{quote(c)}', c in self.schema.text_columns)}::text"
            for c in self.columns
        )
        order = ", ".join(f"m.{quote(c)}" for c in self.columns)
        source = self._missing() if not self._target_is_empty() else f"SELECT * FROM {self.rows}"
        rows = self.database.fetch(
            f"SELECT {values} FROM ({source}) m ORDER BY "
            f'row_to_json(ROW({order}))::text COLLATE "C" LIMIT {int(limit)}',
            (),
            self.table,
        )
        return [(tuple(None if v is None else loads_exact(v) for v in row), ()) for row in rows]

    def write(self, *, overwrite_newer: bool) -> dict[str, int]:
        insert, written, connection = self._insert()
        names = ", ".join(map(self.database.quote, written))
        source = f"({self._missing()}) m" if not self._target_is_empty() else self.rows
        count = connection.execute(f"{insert} SELECT {names} FROM {source}", ()).rowcount
        return {kind: count if kind == "insert" else 0 for kind in _written_kinds(overwrite_newer)}


class _CopyRows:
    """Canonical lines of a backup as rows of ``COPY``'s text format, in ``columns``' order.

    A value comes out as ``line ->> 'column'`` gives it, the text its type's input function
    reads: a string's characters, an integer's digits, ``true``/``false``; a missing value
    or JSON ``null`` is SQL ``NULL``. Lines holding a column the metadata does not declare
    are counted, and refused by :meth:`check` once every line was read.
    """

    def __init__(self, columns: Sequence[str], declared: Sequence[str]) -> None:
        self.columns = list(columns)
        self.declared = frozenset(declared)
        self.count = 0
        self.undeclared_rows = 0
        self.undeclared: str | None = None  # the least undeclared name seen

    def line(self, line: bytes) -> bytes:
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            row = self._parsed(line)
        if type(row) is not dict:
            raise self._malformed("is not a JSON object")
        self.count += 1
        if not self.declared.issuperset(row):
            extra = min(set(row) - self.declared)
            self.undeclared_rows += 1
            self.undeclared = min(extra, self.undeclared or extra)
        values = map(row.get, self.columns)
        try:
            if b"\\" not in line:  # no escape in the JSON: no string needs one in COPY
                fields = [v if type(v) is str else _copy_field(v) for v in values]
            else:
                fields = [_copy_field(v) for v in values]
        except TypeError as exc:
            raise self._malformed(f"holds {exc} where a value's text belongs") from None
        return "\t".join(fields).encode()

    def _parsed(self, line: bytes) -> Any:
        """A line orjson refuses: an integer wider than 64 bits is still JSON."""
        try:
            return loads_exact(line.decode())
        except ValueError:
            raise self._malformed("is not JSON") from None

    def _malformed(self, what: str) -> Exception:
        from angles import BackupError

        return BackupError(
            f"row {self.count + 1} of the backup {what}",
            hint=_EDITED,
        )

    def check(self) -> None:
        """Refuse the file if a line held a column the metadata does not declare."""
        if self.undeclared_rows:
            raise _undeclared(self.undeclared_rows, self.undeclared)


#: The hint of every problem found in a backup's rows.
_EDITED = "the file was edited or written by another tool; restore another backup"


def _undeclared(rows: int, column: str | None) -> Exception:
    from angles import BackupError

    return BackupError(
        f"{rows} row(s) of the backup hold a column {column!r} that its metadata does not "
        "declare; a restore would drop those values",
        hint=_EDITED,
    )


#: What ``COPY``'s text format escapes in a field.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: Any) -> str:
    """One JSON value as a field of ``COPY``'s text format (see :class:`_CopyRows`)."""
    kind = type(value)
    if kind is str:
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.translate(_COPY_ESCAPES)
        return value
    if value is None:
        return "\\N"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    raise TypeError({dict: "a JSON object", list: "a JSON array"}.get(kind, "a JSON number"))


def _written_kinds(overwrite_newer: bool) -> list[str]:
    """The verdicts a live restore writes."""
    return ["insert", "update"] + (["newer_in_database"] if overwrite_newer else [])


def _copy_statement(cursor: Any, statement: str, params: Sequence[Any] = ()) -> Any:
    """``cursor.copy`` of a statement written for parameters (every ``%`` of a name or a
    literal doubled, see :meth:`PostgresConnection.quote`), with or without any: psycopg
    merges parameters, and so undoubles, only when there are some."""
    if params:
        return cursor.copy(statement, params)
    return cursor.copy(statement.replace("%%", "%"))


def _send_lines(copy: Any, lines: Iterable[bytes]) -> None:
    """Canonical lines into ``COPY … FROM STDIN`` (:data:`_RAW_LINES`), a megabyte at a time."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line) + 1
        if size >= _COPY_BATCH:
            copy.write(b"\n".join(batch) + b"\n")
            batch, size = [], 0
    if batch:
        copy.write(b"\n".join(batch) + b"\n")


def _literal(text: str) -> str:
    """An SQL string literal, safe inside a psycopg query string."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


#: The size of the blocks of lines a ``COPY`` is read in.
_BLOCK_BYTES = 256 * 1024


def _json_value(column: str, text: bool) -> str:
    """The JSON of one quoted column's value: its text output as a string when ``text``."""
    return f"to_json({column}::text)" if text else f"to_json({column})"


def _line_sql(names: Sequence[str], quote: Callable[[str], str], text: frozenset[str]) -> str:
    """An expression giving a row's canonical line: ``{"a":1,"b":"x"}``, keys sorted by code
    point, compact, UTF-8, SQL ``NULL`` as ``null``.

    PostgreSQL escapes strings in JSON as Python's encoder does (``\\"``, ``\\\\``,
    ``\\n`` and the like, ``\\u00XX`` for other control characters, nothing else), so the
    line is the very bytes ``canonical()`` gives the parsed row.
    """
    parts = []
    for position, name in enumerate(sorted(names)):
        key = ("," if position else "{") + json.dumps(name, ensure_ascii=False) + ":"
        value = _json_value(quote(name), name in text)
        parts.append(f"{_literal(key)} || COALESCE({value}::text, 'null')")
    return "(" + (" || ".join(parts) + " || '}'" if parts else "'{}'") + ")"


@hookimpl
def angles_register_connections(register: Any) -> None:
    register(PostgresConnection)
