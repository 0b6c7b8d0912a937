"""What SQL databases share: the base of the ``sqlite`` and ``postgres`` connections.

:class:`SqlDatabase` implements :class:`~angles.core.connection.Database` over a DB-API 2.0
driver. It keeps one driver connection per thread (checks run in threads), reads tables
page by page in primary-key order (keyset pagination), writes upserts in batches grouped by
column set, and runs transactions. A subclass says how to connect, how its dialect writes
things, what its catalog holds and how its driver's errors read; a third-party SQL
connection needs little more than this::

    class DuckConnection(angles.SqlDatabase):
        type = "duck"
        service = "DuckDB"

        def open_connection(self):
            return duckdb_dbapi.connect(self.config["path"])

        def driver_error(self):
            return duckdb_dbapi.Error

        def read_schema(self, table):
            ...  # columns and primary key from the catalog, as an angles.TableSchema
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

from angles.core.connection import Database, Row, TableSchema
from angles.core.errors import ServiceError
from angles.core.filters import Filter

#: Turns one result row (a sequence of values) into a row of angles.
Decoder = Callable[[Sequence[Any]], Row]
#: Turns a row of angles into the parameters of one ``INSERT``.
Encoder = Callable[[Row], Sequence[Any]]


class SqlDatabase(Database):
    """A :class:`~angles.Database` over a DB-API 2.0 driver, one connection per thread.

    A subclass provides :meth:`open_connection`, :meth:`driver_error` and
    :meth:`read_schema`; it overrides the other hooks where its dialect or its types
    differ from the defaults (standard SQL, values passed as the driver gives them).
    """

    #: The driver's parameter marker: ``?`` (qmark) or ``%s`` (format).
    placeholder: ClassVar[str] = "?"
    #: Whether the dialect has ``ILIKE``; without it, a filter lower-cases both sides.
    has_ilike: ClassVar[bool] = False
    #: The alias reads give the table, so a select list can name the whole row.
    row_alias: ClassVar[str] = "_angles_row"

    def __init__(self, name: str, config: Any, context: Any) -> None:
        super().__init__(name, config, context)
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._schemas: dict[str, TableSchema] = {}

    # -- what a subclass provides ----------------------------------------------------------

    def open_connection(self) -> Any:
        """A new DB-API connection, in autocommit mode: :meth:`atomic` begins transactions.

        Called the first time each thread needs one; raise :class:`~angles.ServiceError`
        with a hint when it cannot connect.
        """
        raise NotImplementedError

    def driver_error(self) -> type[Exception]:
        """The driver's base exception (DB-API ``Error``), which :meth:`service_error` reads."""
        raise NotImplementedError

    def read_schema(self, table: str) -> TableSchema:
        """``table`` as the catalog describes it; :meth:`describe` keeps what it returns."""
        raise NotImplementedError

    def service_error(self, exc: Exception, table: str | None, action: str) -> ServiceError:
        """A driver error as one line that says what was being done (``reading``, ``writing
        to``, ``committing``) and, in the hint, what to check."""
        subject = f"{action} {table!r}" if table else action
        return ServiceError(self.service, f"{subject} failed: {self.first_line(str(exc))}")

    @staticmethod
    def quote(identifier: str) -> str:
        """An identifier in double quotes, as standard SQL writes it."""
        return '"' + identifier.replace('"', '""') + '"'

    def relation(self, table: str) -> str:
        """``table`` as SQL names it (a subclass may qualify it with a schema)."""
        return self.quote(table)

    def sort_expression(self, table: str, column: str) -> str:
        """How key ``column`` is ordered so that rows come in the order Python sorts keys
        (text by code point): ``stream`` promises that order."""
        return self.quote(column)

    def page_query(self, columns: str, source: str, condition: str, order: str) -> str:
        """At most N rows (the last parameter) of ``source``: the dialect's ``LIMIT``."""
        ordered = f" ORDER BY {order}" if order else ""
        return f"SELECT {columns} FROM {source} WHERE {condition}{ordered} LIMIT {self.placeholder}"

    def row_decoder(self, schema: TableSchema) -> Decoder:
        """How a result holding every column of ``schema``, in order, becomes a row."""
        names = list(schema.columns)
        return lambda values: dict(zip(names, values, strict=True))

    def row_encoder(self, schema: TableSchema, columns: Sequence[str]) -> Encoder:
        """How a row becomes the parameters of an insert of ``columns``."""
        return lambda row: [row[column] for column in columns]

    def select_list(self, table: str) -> tuple[str, Decoder]:
        """What :meth:`select` reads of each row of ``table``, and how it becomes a row."""
        schema = self.schema_of(table)
        return ", ".join(map(self.quote, schema.columns)), self.row_decoder(schema)

    def computed_columns(self, table: str) -> frozenset[str]:
        """Columns the database computes itself, which upserts never write."""
        return frozenset()

    def write_rows(
        self,
        connection: Any,
        table: str,
        schema: TableSchema,
        columns: Sequence[str],
        rows: list[Row],
    ) -> int:
        """Upsert ``rows``, which all have exactly ``columns``; returns how many were written."""
        sql = (
            f"INSERT INTO {self.relation(table)} ({', '.join(map(self.quote, columns))}) "
            f"VALUES ({', '.join([self.placeholder] * len(columns))}) "
            + self.on_conflict(schema, columns)
        )
        cursor = connection.cursor()
        try:
            cursor.executemany(sql, map(self.row_encoder(schema, columns), rows))
        finally:
            cursor.close()
        return len(rows)

    @contextlib.contextmanager
    def atomic(self, connection: Any) -> Iterator[None]:
        """A transaction on this thread's ``connection``, or a savepoint inside one."""
        depth = getattr(self._local, "depth", 0)
        savepoint = f"angles_{depth}"
        self._run(connection, "BEGIN" if depth == 0 else f"SAVEPOINT {savepoint}")
        self._local.depth = depth + 1
        try:
            yield
        except BaseException:
            self._local.depth = depth
            # The error that made the rollback necessary is the one to report.
            with contextlib.suppress(self.driver_error()):
                if depth == 0:
                    self._run(connection, "ROLLBACK")
                else:
                    self._run(connection, f"ROLLBACK TO SAVEPOINT {savepoint}")
                    self._run(connection, f"RELEASE SAVEPOINT {savepoint}")
            raise
        self._local.depth = depth
        self._run(connection, "COMMIT" if depth == 0 else f"RELEASE SAVEPOINT {savepoint}")

    # -- what the base does with them ------------------------------------------------------

    def thread_connection(self) -> Any:
        """This thread's driver connection, opened on first use (and again if it broke)."""
        connection = getattr(self._local, "connection", None)
        if connection is None or getattr(connection, "closed", False):
            connection = self.open_connection()
            self._local.connection = connection
            self._local.depth = 0
            with self._lock:
                self._opened.append(connection)
        return connection

    def fetch(
        self, sql: str, params: Sequence[Any] = (), table: str | None = None
    ) -> list[tuple[Any, ...]]:
        """Every row ``sql`` returns, read on this thread's connection."""
        try:
            cursor = self.thread_connection().cursor()
            try:
                cursor.execute(sql, params)
                return cursor.fetchall()
            finally:
                cursor.close()
        except self.driver_error() as exc:
            raise self.service_error(exc, table, "reading") from exc

    def condition(self, where: Filter | None) -> tuple[str, list[Any]]:
        """``where`` as an SQL condition and its parameters."""
        if where is None:
            return "1=1", []
        return where.to_sql(self.quote, self.placeholder, ilike=self.has_ilike)

    def schema_of(self, table: str) -> TableSchema:
        """The schema :meth:`describe` last returned for ``table``, described if need be."""
        return self._schemas.get(table) or self.describe(table)

    def source(self, table: str) -> str:
        """``table`` as reads name it: with :attr:`row_alias`."""
        return f"{self.relation(table)} AS {self.row_alias}"

    def on_conflict(self, schema: TableSchema, columns: Sequence[str]) -> str:
        """The ``ON CONFLICT`` clause that makes an insert of ``columns`` an upsert (none
        for a table without a primary key: its rows are only ever inserted)."""
        if not schema.primary_key:
            return ""
        updates = [c for c in columns if c not in schema.primary_key]
        action = (
            "DO UPDATE SET "
            + ", ".join(f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in updates)
            if updates
            else "DO NOTHING"
        )
        return f"ON CONFLICT ({', '.join(map(self.quote, schema.primary_key))}) {action}"

    # -- the Database interface ------------------------------------------------------------

    def describe(self, table: str) -> TableSchema:
        """Columns, primary key and required columns of ``table``, from the catalog."""
        schema = self.read_schema(table)
        self._schemas[table] = schema
        return schema

    def count(self, table: str, where: Filter | None = None) -> int:
        """``SELECT count(*)``: exact, with the filter compiled to SQL."""
        condition, params = self.condition(where)
        sql = f"SELECT count(*) FROM {self.source(table)} WHERE {condition}"
        return int(self.fetch(sql, params, table)[0][0])

    def stream(self, table: str, schema: TableSchema, where: Filter | None = None) -> Iterator[Row]:
        """Every row in primary-key order (a table without one: ordered by every column)."""
        if not schema.primary_key:
            return self.read_unkeyed_rows(table, schema, where)
        return self.read_rows(table, schema, where)

    def read_unkeyed_rows(
        self, table: str, schema: TableSchema, where: Filter | None
    ) -> Iterator[Row]:
        """The rows of a table without a primary key, ordered by every column, from one
        query read a page at a time (keys that may repeat cannot page by keyset)."""
        names = list(schema.columns)
        decode = self.row_decoder(schema)
        order = ", ".join(self.sort_expression(table, c) for c in names)
        condition, params = self.condition(where)
        sql = (
            f"SELECT {', '.join(map(self.quote, names))} FROM {self.source(table)} "
            f"WHERE {condition} ORDER BY {order}"
        )
        try:
            cursor = self.thread_connection().cursor()
            try:
                cursor.execute(sql, params)
                while page := cursor.fetchmany(self.page_size):
                    for values in page:
                        yield decode(values)
            finally:
                cursor.close()
        except self.driver_error() as exc:
            raise self.service_error(exc, table, "reading") from exc

    def read_rows(self, table: str, schema: TableSchema, where: Filter | None) -> Iterator[Row]:
        """The rows :meth:`stream` returns: page by page, each page the :attr:`page_size`
        rows after the last key of the one before (keyset pagination)."""
        names = list(schema.columns)
        decode = self.row_decoder(schema)
        positions = [names.index(column) for column in schema.primary_key]
        keys = ", ".join(self.sort_expression(table, c) for c in schema.primary_key)
        after = f"({keys}) > ({', '.join([self.placeholder] * len(positions))})"
        columns = ", ".join(map(self.quote, names))
        condition, params = self.condition(where)
        first = self.page_query(columns, self.source(table), condition, keys)
        following = self.page_query(columns, self.source(table), f"({condition}) AND {after}", keys)
        page = self.fetch(first, [*params, self.page_size], table)
        while page:
            for values in page:
                yield decode(values)
            if len(page) < self.page_size:
                return
            last = [page[-1][i] for i in positions]
            page = self.fetch(following, [*params, *last, self.page_size], table)

    def select(
        self,
        table: str,
        *,
        where: Filter | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        limit: int = 10,
    ) -> list[Row]:
        """A few rows, ordered as asked, shaped like the rows :meth:`stream` returns."""
        columns, decode = self.select_list(table)
        condition, params = self.condition(where)
        order = ", ".join(f"{self.quote(c)} {'DESC' if desc else 'ASC'}" for c, desc in order_by)
        sql = self.page_query(columns, self.source(table), condition, order)
        return [decode(values) for values in self.fetch(sql, [*params, limit], table)]

    def upsert(
        self, table: str, schema: TableSchema, rows: Iterable[Row], batch_size: int = 500
    ) -> int:
        """``INSERT … ON CONFLICT (key) DO UPDATE``, all batches in one transaction (a
        savepoint inside :meth:`transaction`), rows grouped by the columns they have. A
        table without a primary key gets plain inserts."""
        computed = self.computed_columns(table)
        connection = self.thread_connection()
        written = 0
        try:
            with self.atomic(connection):
                batch: list[Row] = []
                for row in rows:
                    batch.append(row)
                    if len(batch) >= batch_size:
                        written += self._write_batch(connection, table, schema, computed, batch)
                        batch = []
                if batch:
                    written += self._write_batch(connection, table, schema, computed, batch)
        except self.driver_error() as exc:
            raise self.service_error(exc, table, "writing to") from exc
        except (TypeError, ValueError, OverflowError) as exc:  # a value the driver cannot send
            raise ServiceError(
                self.service, f"writing to {table!r} failed: a value cannot be written ({exc})"
            ) from exc
        return written

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[bool]:
        """Every read of this thread inside one transaction on its connection."""
        connection = self.thread_connection()
        try:
            with self.atomic(connection):
                yield True
        except self.driver_error() as exc:
            raise self.service_error(exc, None, "reading a snapshot") from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around several :meth:`upsert` calls: all are written, or none."""
        connection = self.thread_connection()
        try:
            with self.atomic(connection):
                yield
        except self.driver_error() as exc:
            raise self.service_error(exc, None, "committing") from exc

    def release_thread_connection(self) -> None:
        """Close this thread's connection now: for a thread that ends before the run does."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            return
        self._local.connection = None
        with self._lock:
            if connection in self._opened:
                self._opened.remove(connection)
        with contextlib.suppress(Exception):
            connection.close()

    def close(self) -> None:
        """Close every thread's connection; a later call opens new ones."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            with contextlib.suppress(Exception):
                connection.close()
        self._local = threading.local()

    # -- helpers ---------------------------------------------------------------------------

    @property
    def _refusal(self) -> Callable[..., ServiceError]:
        return functools.partial(ServiceError, self.service)

    def _write_batch(
        self,
        connection: Any,
        table: str,
        schema: TableSchema,
        computed: frozenset[str],
        batch: list[Row],
    ) -> int:
        groups: dict[tuple[str, ...], list[Row]] = {}
        for row in batch:
            columns = tuple(c for c in row if c not in computed) if computed else tuple(row)
            groups.setdefault(columns, []).append(row)
        return sum(
            self.write_rows(connection, table, schema, columns, rows)
            for columns, rows in groups.items()
        )

    @staticmethod
    def first_line(text: str) -> str:
        """The first non-empty line of a driver's message (PostgreSQL adds DETAIL and HINT)."""
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        return lines[0] if lines else "unknown error"

    @staticmethod
    def _run(connection: Any, sql: str) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()
