"""The connection interface: a named, configured client that checks, backups and restores use.

A connection type that holds tables implements :class:`Database`; one that is only an API
(Notion) implements :class:`Connection`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from angles.core.filters import Filter
from angles.core.plugin import Plugin

Row = dict[str, Any]

#: The kinds of relation :meth:`Database.list_tables` names that hold rows of their own and
#: are backed up; the others (views, materialized views) are left out.
BACKED_UP_KINDS = frozenset({"table", "partitioned table"})


@dataclass(frozen=True)
class TableSchema:
    """A table as a database describes it: column types and primary key, in column order.

    ``required`` names the columns an insert must give (NOT NULL without a default);
    a backend that cannot tell leaves it empty.
    """

    name: str
    columns: dict[str, str]
    primary_key: tuple[str, ...]
    required: frozenset[str] = frozenset()

    def key_of(self, row: Row) -> tuple[Any, ...]:
        """The primary key of a row, as a tuple."""
        return tuple(row[column] for column in self.primary_key)

    def require_primary_key(self, purpose: str, error: Callable[..., Exception]) -> tuple[str, ...]:
        """The primary key; a table without one is refused with ``error(message, hint=…)``.

        angles reads tables in key order and writes, compares and restores rows by key
        (a rowid or ctid is no stable identity). ``purpose`` ends the message ("to match
        rows by"); ``error`` is the caller's kind of error, e.g. :class:`RestoreRefused`
        or ``functools.partial(ServiceError, service)``.
        """
        if not self.primary_key:
            raise error(
                f"table {self.name!r} has no primary key {purpose}",
                hint="declare a PRIMARY KEY: angles reads, writes and restores rows by it",
            )
        return self.primary_key


class Connection(Plugin):
    """A client for one service, configured by one entry under ``connections:``.

    ``service`` is the name people know the service by ("Supabase"), used in messages.
    A connection opens lazily, is shared by every check and backup of a run, and is
    closed by the core at the end with :meth:`close`.
    """

    kind = "connection"
    service: ClassVar[str] = ""

    def close(self) -> None:
        """Release what the connection holds (sockets, files). Called once, at the end."""


class Database(Connection):
    """A connection that holds tables: what backups, restores and ``sync_backlog`` need.

    Filters (``where``) are :class:`angles.core.filters.Filter` objects, parsed from the
    PostgREST syntax users write in the pipeline (``notion_synced=is.false``).
    """

    #: Rows per page when streaming; a backend caps it at what its server returns.
    page_size: ClassVar[int] = 1000

    def describe(self, table: str) -> TableSchema:
        """Columns (name → type) and primary key of ``table``."""
        raise NotImplementedError

    def list_tables(self) -> dict[str, str]:
        """Every relation the connection can read, name → kind (``table``, ``partitioned
        table``, ``view``, ``materialized view``): those of its own schema by bare name,
        others as ``schema.table``. Partitions are left out (their parent holds their rows).

        A backend that cannot list its tables leaves this unimplemented; its backups then
        name their tables.
        """
        raise NotImplementedError

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[bool]:
        """Reads inside the block (describe, count, stream) see one consistent state of the
        database, as ``pg_dump``'s do; yields whether they really do.

        The default yields False: each read sees the database as it is at that moment.
        """
        yield False

    def count(self, table: str, where: Filter | None = None) -> int:
        """The exact number of rows of ``table`` matching ``where``."""
        raise NotImplementedError

    def stream(self, table: str, schema: TableSchema, where: Filter | None = None) -> Iterator[Row]:
        """Every row of ``table`` (matching ``where``), in primary-key order.

        Reads page by page with keyset pagination, so memory does not grow with the table.
        The order must be the one Python gives the key tuples (text by code point, i.e.
        ``COLLATE "C"`` on PostgreSQL): restores merge this stream with a backup's rows.
        """
        raise NotImplementedError

    def select(
        self,
        table: str,
        *,
        where: Filter | None = None,
        order_by: Sequence[tuple[str, bool]] = (),
        limit: int = 10,
    ) -> list[Row]:
        """A few rows: ``order_by`` is a list of ``(column, descending)``."""
        raise NotImplementedError

    def upsert(
        self, table: str, schema: TableSchema, rows: Iterable[Row], batch_size: int = 500
    ) -> int:
        """Insert or update ``rows`` by primary key, in batches; returns how many were written.

        Backends with transactions write every batch in one transaction.
        """
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around several :meth:`upsert` calls (a live restore): all of
        them are written, or none.

        The default does nothing, so each upsert stays its own transaction; a backend
        with transactions overrides it. Reads (:meth:`stream`) are not part of it.
        """
        yield
