"""The ``sqlite`` connection: an embedded database in a file beside the pipeline.

.. code-block:: yaml

    connections:
      vault: {type: sqlite, path: vault.db}

Values cross the boundary as JSON values, so a backup round-trips:

* text, integers, reals and NULL as they are;
* columns declared ``JSON``/``JSONB`` hold JSON text, read as objects and lists and written
  back as compact JSON text;
* blobs are read as ``\\x`` followed by hex digits (how PostgREST shows ``bytea``) and written
  back as bytes into columns declared ``BLOB``.

Tables are read in primary-key order by keyset pagination. A table without a declared
primary key is refused: its ``rowid`` is not a stable identity (``VACUUM`` may renumber it),
so a restore could not match rows with it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from angles import Database, Filter, Row, ServiceError, TableSchema, hookimpl
from angles.helpers import dumps_exact, loads_exact

_JSON_TYPES = {"json", "jsonb"}


def quote(identifier: str) -> str:
    """An SQL identifier in double quotes."""
    return '"' + identifier.replace('"', '""') + '"'


class SQLiteConnection(Database):
    """A SQLite database file; one ``sqlite3`` connection per thread."""

    type = "sqlite"
    service = "SQLite"
    description = "An embedded SQLite database file (the default for a local setup)."
    page_size: ClassVar[int] = 5000
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "The database file, relative to the pipeline file's folder.",
            },
        },
        "required": ["path"],
        "additionalProperties": False,
    }

    def __init__(self, name: str, config: Any, context: Any) -> None:
        super().__init__(name, config, context)
        self.path: Path = context.pipeline.resolve(config["path"])
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._schemas: dict[str, TableSchema] = {}

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if not self.path.is_file():
                raise ServiceError(
                    self.service,
                    f"the database file {self.path} does not exist",
                    hint=f"check `path:` of the connection {self.name!r}",
                )
            # mode=rw: never create an empty database where the real one was expected.
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=rw",
                uri=True,
                timeout=self.context.default_timeout,
                check_same_thread=False,
            )
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._connection().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise ServiceError(self.service, f"{exc} ({self.path.name})") from exc

    def describe(self, table: str) -> TableSchema:
        """Columns and primary key from ``PRAGMA table_info``."""
        info = self._execute(f"PRAGMA table_info({quote(table)})")
        if not info:
            raise ServiceError(
                self.service,
                f"there is no table {table!r} in {self.path}",
                hint="check the `table:` of the check or backup",
            )
        columns = {name: (declared or "any").lower() for _, name, declared, *_ in info}
        key = tuple(row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        required = frozenset(
            name
            for _, name, _, notnull, default, pk in info
            if notnull and default is None and not pk
        )
        schema = TableSchema(table, columns, key, required=required)
        self._schemas[table] = schema
        return schema

    def _schema(self, table: str) -> TableSchema:
        return self._schemas.get(table) or self.describe(table)

    def count(self, table: str, where: Filter | None = None) -> int:
        """``SELECT count(*)`` with the filter compiled to SQL."""
        condition, params = self._where(where)
        sql = f"SELECT count(*) FROM {quote(table)} WHERE {condition}"
        return int(self._execute(sql, params)[0][0])

    def stream(self, table: str, schema: TableSchema, where: Filter | None = None) -> Iterator[Row]:
        """Rows in primary-key order (binary collation), page by page (keyset)."""
        if not schema.primary_key:
            raise ServiceError(
                self.service,
                f"table {table!r} has no primary key; angles reads tables in primary-key order",
                hint="declare a PRIMARY KEY (a rowid is not stable across VACUUM)",
            )
        names = list(schema.columns)
        decode = self._decoders(schema)
        key_index = [names.index(column) for column in schema.primary_key]
        keys = ", ".join(f"{quote(c)} COLLATE BINARY" for c in schema.primary_key)
        condition, params = self._where(where)
        select = f"SELECT {', '.join(map(quote, names))} FROM {quote(table)} WHERE {condition}"
        first = f"{select} ORDER BY {keys} LIMIT ?"
        following = (
            f"{select} AND ({keys}) > ({', '.join('?' * len(key_index))}) ORDER BY {keys} LIMIT ?"
        )
        page = self._execute(first, [*params, self.page_size])
        while page:
            for values in page:
                yield decode(values)
            if len(page) < self.page_size:
                return
            last = [page[-1][i] for i in key_index]
            page = self._execute(following, [*params, *last, self.page_size])

    def select(
        self,
        table: str,
        *,
        where: Filter | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        limit: int = 10,
    ) -> list[Row]:
        """A few rows, ordered as asked."""
        schema = self._schema(table)
        decode = self._decoders(schema)
        condition, params = self._where(where)
        order = ", ".join(f"{quote(c)} {'DESC' if desc else 'ASC'}" for c, desc in order_by)
        sql = (
            f"SELECT {', '.join(map(quote, schema.columns))} FROM {quote(table)} WHERE {condition}"
            + (f" ORDER BY {order}" if order else "")
            + " LIMIT ?"
        )
        return [decode(values) for values in self._execute(sql, [*params, limit])]

    def upsert(
        self, table: str, schema: TableSchema, rows: Iterable[Row], batch_size: int = 500
    ) -> int:
        """``INSERT … ON CONFLICT (key) DO UPDATE``, every batch in one transaction."""
        connection = self._connection()
        written = 0
        try:
            with connection:
                batch: list[Row] = []
                for row in rows:
                    batch.append(row)
                    if len(batch) >= batch_size:
                        written += self._write(connection, table, schema, batch)
                if batch:
                    written += self._write(connection, table, schema, batch)
        except (sqlite3.Error, OverflowError) as exc:
            raise ServiceError(self.service, f"writing to {table!r} failed: {exc}") from exc
        return written

    def _write(
        self, connection: sqlite3.Connection, table: str, schema: TableSchema, batch: list[Row]
    ) -> int:
        groups: dict[tuple[str, ...], list[Row]] = {}
        for row in batch:
            groups.setdefault(tuple(row), []).append(row)
        for columns, rows in groups.items():
            updates = [c for c in columns if c not in schema.primary_key]
            action = (
                "DO UPDATE SET " + ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in updates)
                if updates
                else "DO NOTHING"
            )
            sql = (
                f"INSERT INTO {quote(table)} ({', '.join(map(quote, columns))}) "
                f"VALUES ({', '.join('?' * len(columns))}) "
                f"ON CONFLICT ({', '.join(map(quote, schema.primary_key))}) {action}"
            )
            encode = [_encoder(schema.columns.get(c, "")) for c in columns]
            connection.executemany(
                sql, ([f(row[c]) for f, c in zip(encode, columns, strict=True)] for row in rows)
            )
        count = len(batch)
        batch.clear()
        return count

    def _where(self, where: Filter | None) -> tuple[str, list[Any]]:
        if where is None:
            return "1", []
        return where.to_sql(quote, "?", ilike=False)

    def _decoders(self, schema: TableSchema) -> Any:
        names = list(schema.columns)
        json_columns = [i for i, c in enumerate(names) if schema.columns[c] in _JSON_TYPES]

        def decode(values: tuple[Any, ...]) -> Row:
            row = dict(zip(names, values, strict=True))
            for name, value in row.items():
                if isinstance(value, bytes):
                    row[name] = "\\x" + value.hex()
            for i in json_columns:
                value = values[i]
                if isinstance(value, str):
                    with contextlib.suppress(ValueError):  # not JSON after all: keep the text
                        row[names[i]] = loads_exact(value)
            return row

        return decode

    def close(self) -> None:
        """Close every per-thread connection."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()
        self._local = threading.local()


def _encoder(declared: str) -> Any:
    if declared in _JSON_TYPES:
        # Every value as JSON text, so that the string "1" does not come back as 1.
        def encode_json(value: Any) -> Any:
            if value is None:
                return None
            return dumps_exact(value, ensure_ascii=False, separators=(",", ":"))

        return encode_json
    is_blob = "blob" in declared

    def encode(value: Any) -> Any:
        if isinstance(value, dict | list):
            return dumps_exact(value, ensure_ascii=False, separators=(",", ":"))
        if isinstance(value, Decimal):
            return str(value)  # SQLite's column affinity makes it a number where declared
        if is_blob and isinstance(value, str) and value.startswith("\\x"):
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                return value
        return value

    return encode


@hookimpl
def angles_register_connections(register: Any) -> None:
    register(SQLiteConnection)
