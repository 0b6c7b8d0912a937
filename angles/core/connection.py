"""The connection interface: a named, configured client that checks, backups and restores use.

A connection type that holds tables implements :class:`Database`; one that is only an API
(Notion) implements :class:`Connection`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from angles.core.filters import Filter
from angles.core.plugin import Plugin

Row = dict[str, Any]

#: The kinds of relation :meth:`Database.list_tables` names that hold rows of their own and
#: are backed up; the others (views, materialized views) are left out.
BACKED_UP_KINDS = frozenset({"table", "partitioned table"})


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of a table refer to ``referenced`` of ``table`` (named as
    :meth:`Database.list_tables` names it)."""

    columns: tuple[str, ...]
    table: str
    referenced: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "table": self.table,
            "referenced": list(self.referenced),
        }


@dataclass(frozen=True)
class TableSchema:
    """A table as a database describes it: column types and primary key, in column order.

    ``required`` names the columns an insert must give (NOT NULL without a default).
    What a whole-database restore needs comes with it where the backend can tell (a
    backend that cannot leaves it empty): ``foreign_keys``; ``generated`` columns, which
    are never written; ``identity`` columns (``always`` or ``by default``); and the
    ``sequences`` columns draw from (column → sequence), owned or through a default.

    ``text_columns`` are the columns whose values the connection reads and writes as
    PostgreSQL's text output in a JSON string (numeric, floats, json, jsonb, arrays, xml…):
    the only spelling that keeps numeric scale, ``-0``, JSON text as written, SQL ``NULL``
    apart from JSON ``null`` and array bounds. Every other value is its JSON form.
    """

    name: str
    columns: dict[str, str]
    primary_key: tuple[str, ...]
    required: frozenset[str] = frozenset()
    foreign_keys: tuple[ForeignKey, ...] = ()
    generated: frozenset[str] = frozenset()
    identity: Mapping[str, str] = field(default_factory=dict)
    sequences: Mapping[str, str] = field(default_factory=dict)
    text_columns: frozenset[str] = frozenset()

    @property
    def parents(self) -> frozenset[str]:
        """The other tables this one's foreign keys refer to."""
        return frozenset(k.table for k in self.foreign_keys if k.table != self.name)

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


class StagedBackup(Protocol):
    """A backup loaded into the database beside its table and diffed there, with the
    database's own types and order (see :meth:`Database.stage`). Kinds are the restore's
    verdicts: ``insert``, ``update``, ``unchanged``, ``only_in_database``,
    ``newer_in_database``."""

    def counts(self) -> dict[str, int]:
        """How many keys get each verdict, against the table as it is now."""
        ...

    def samples(self, kind: str, limit: int) -> list[tuple[tuple[Any, ...], tuple[str, ...]]]:
        """Up to ``limit`` keys of ``kind`` in key order (the backup's JSON values; the
        table's for ``only_in_database``), each with the columns that differ."""
        ...

    def write(self, *, overwrite_newer: bool) -> dict[str, int]:
        """Insert the missing rows and update the changed ones (and the newer ones when
        ``overwrite_newer``), in one statement judged at that moment, inside the caller's
        :meth:`Database.transaction`; returns how many of each kind were written."""
        ...

    def close(self) -> None:
        """Drop what the database holds for it."""
        ...


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

    def list_tables_of(self, schemas: Collection[str]) -> dict[str, str]:
        """What :meth:`list_tables` returns, for a caller that names other ``schemas`` too
        (the schema part of ``audit.*``): it must hold their relations, as ``schema.table``.

        The default is :meth:`list_tables`, right for a backend whose catalog covers every
        schema at once; one that describes a schema per request (the Data API) lists the
        named ones as well.
        """
        return self.list_tables()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[bool]:
        """Reads inside the block (describe, count, stream) see one consistent state of the
        database, as ``pg_dump``'s do; yields whether they really do.

        The default yields False: each read sees the database as it is at that moment.
        """
        yield False

    @contextlib.contextmanager
    def reading_table(self, table: str) -> Iterator[None]:
        """Around what a backup reads of ``table`` inside :meth:`snapshot`: a failure in the
        block leaves the snapshot usable for the tables after it. The default adds nothing."""
        yield

    def readers(self) -> int:
        """How many tables a backup may read at once inside the open :meth:`snapshot`:
        the thread holding it reads, and each other one first enters :meth:`join_snapshot`
        (as ``pg_dump --jobs`` reads). The default, 1, reads one table after another."""
        return 1

    @contextlib.contextmanager
    def join_snapshot(self) -> Iterator[None]:
        """On a thread other than the one holding :meth:`snapshot` open: reads inside the
        block see the state the snapshot sees. Entered only where :meth:`readers` is above 1;
        an error raised here leaves that thread's share of the tables to the others."""
        raise NotImplementedError
        yield

    def count(self, table: str, where: Filter | None = None) -> int:
        """The exact number of rows of ``table`` matching ``where``."""
        raise NotImplementedError

    def stream(self, table: str, schema: TableSchema, where: Filter | None = None) -> Iterator[Row]:
        """Every row of ``table`` (matching ``where``), in primary-key order (a table
        without a primary key: ordered by every column, repeated rows kept).

        Reads page by page with keyset pagination, so memory does not grow with the table.
        The order must be the one Python gives the key tuples (text by code point, i.e.
        ``COLLATE "C"`` on PostgreSQL): restores merge this stream with a backup's rows.
        """
        raise NotImplementedError

    def stream_lines(self, table: str, schema: TableSchema) -> Iterator[bytes] | None:
        """Every row of :meth:`stream`, already in its canonical form (compact JSON, keys
        sorted by code point, UTF-8: the bytes a backup's checksum covers), where the
        database can write rows so itself; None when it cannot, and rows are encoded from
        :meth:`stream`. A backup then never parses and re-encodes what the server wrote.

        Each item is a block of one or more lines joined by ``b"\\n"`` (no newline at its
        end), so that a large table is not handled a row at a time.
        """
        return None

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
    ) -> StagedBackup | None:
        """Load a backup's rows (canonical lines, in the encoding ``schema`` says) into the
        database and diff them with ``table`` there, on ``columns``; None when the
        database cannot (rows are then merged in Python with :meth:`stream`).

        Reads ``lines`` to their end (so the caller's checksum is judged) unless it fails.
        Raises a :class:`~angles.core.errors.BackupError` for what the rows themselves
        hold that no restore could write: a repeated or missing key, a value the
        column's type refuses, a column the backup does not declare (``declared``).
        """
        return None

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

    def sequence_values(self, sequences: Iterable[str]) -> dict[str, int | None]:
        """The last value of each sequence (None: never drawn from); recorded in backups."""
        return {}

    def advance_sequences(
        self, table: str, schema: TableSchema, recorded: Mapping[str, int | None]
    ) -> dict[str, int]:
        """After a restore of ``table``: set each sequence its columns draw from to at least
        the larger of its ``recorded`` last value and the column's maximum, never lower
        than it is, so the application's next insert gets a new key. Returns sequence →
        the value it now has; a backend without sequences returns ``{}``."""
        return {}

    def unwritable_columns(
        self, table: str, schema: TableSchema, columns: Sequence[str]
    ) -> dict[str, str]:
        """Which of ``columns`` a restore cannot write, column → why: ``generated`` (left
        out of every write) or ``identity always`` (values the backend cannot write: the
        restore is refused before anything is written). Asked before a restore writes,
        dry run included; it must change nothing.

        The default names the generated columns :meth:`describe` found.
        """
        return {c: "generated" for c in columns if c in schema.generated}

    def restore_warnings(self, table: str, schema: TableSchema) -> list[str]:
        """What a restore through this connection cannot make exact (triggers that fire,
        sequences left alone), each with its fix; shown before anything is written."""
        return []

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around several :meth:`upsert` calls (a live restore): all of
        them are written, or none.

        The default does nothing, so each upsert stays its own transaction; a backend
        with transactions overrides it. Reads (:meth:`stream`) are not part of it.
        """
        yield
