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
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from angles import Database, Row, ServiceError, SqlDatabase, TableSchema, hookimpl
from angles.helpers import dumps_exact, loads_exact

_JSON_TYPES = {"json", "jsonb"}


class SQLiteConnection(SqlDatabase):
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

    #: A live restore commits batch by batch: one transaction would hold SQLite's single
    #: write lock, shutting out the application that writes to the file, for the whole
    #: restore (an interrupted one is finished by running it again).
    transaction = Database.transaction

    def __init__(self, name: str, config: Any, context: Any) -> None:
        super().__init__(name, config, context)
        self.path: Path = context.pipeline.resolve(config["path"])

    def open_connection(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise ServiceError(
                self.service,
                f"the database file {self.path} does not exist",
                hint=f"check `path:` of the connection {self.name!r}",
            )
        # mode=rw: never create an empty database where the real one was expected.
        return sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode=rw",
            uri=True,
            timeout=self.context.default_timeout,
            check_same_thread=False,
            isolation_level=None,  # autocommit: transactions are begun by atomic()
        )

    def driver_error(self) -> type[Exception]:
        return sqlite3.Error

    def service_error(self, exc: Exception, table: str | None, action: str) -> ServiceError:
        subject = f"{action} {table!r}" if table else action
        return ServiceError(self.service, f"{subject} failed: {exc} ({self.path.name})")

    def read_schema(self, table: str) -> TableSchema:
        """Columns and primary key from ``PRAGMA table_info``."""
        info = self.fetch(f"PRAGMA table_info({self.quote(table)})", (), table)
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
        return TableSchema(table, columns, key, required=required)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[bool]:
        """One read transaction around the block when the file is in WAL mode, where readers
        see a snapshot and writers go on. In rollback-journal mode a read transaction would
        shut the application's writes out for the whole backup: each read stands alone."""
        (mode,) = self.fetch("PRAGMA journal_mode")[0]
        if str(mode).lower() != "wal":
            yield False
            return
        with super().snapshot() as consistent:
            yield consistent

    def list_tables(self) -> dict[str, str]:
        """Tables and views of the ``main`` database (SQLite's own tables aside)."""
        rows = self.fetch(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"
            " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
        )
        return {name: kind for name, kind in rows}

    def sort_expression(self, table: str, column: str) -> str:
        return f"{self.quote(column)} COLLATE BINARY"

    def row_decoder(self, schema: TableSchema) -> Callable[[Sequence[Any]], Row]:
        """Blobs as ``\\x`` and hex digits; JSON columns parsed (keeping exact numbers)."""
        names = list(schema.columns)
        json_columns = [i for i, c in enumerate(names) if schema.columns[c] in _JSON_TYPES]

        def decode(values: Sequence[Any]) -> Row:
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

    def row_encoder(
        self, schema: TableSchema, columns: Sequence[str]
    ) -> Callable[[Row], list[Any]]:
        encode = [_encoder(schema.columns.get(c, "")) for c in columns]
        return lambda row: [f(row[c]) for f, c in zip(encode, columns, strict=True)]


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
