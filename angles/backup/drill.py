"""A restore drill: proving that a stored backup really restores.

:func:`drill_backup` fetches one file from its sink into a scratch folder, verifies it
while loading every row into a scratch SQLite database (keyed by the backup's primary
key, so duplicate keys fail as a real restore would), reads every row back and compares
it with the file, and deletes the folder. Nothing is written to a sink or to a live
database. Every value goes into SQLite as it is (NULL, integer, real, text) or, where
SQLite has no such type (booleans, JSON objects and arrays, numbers wider than 64 bits
or a float), as JSON in a BLOB, so that reading back is exact.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from angles.backup import numbers
from angles.backup.format import BackupFile, canonical
from angles.core.connection import Row
from angles.core.errors import BackupError
from angles.core.sink import Sink

BATCH = 1000
_INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class DrillOutcome:
    """A backup that restored: how many rows, whether its checksum was verified (None:
    the file has none, as from the older system), its metadata time and the seconds taken."""

    name: str
    records: int
    verified: bool
    timestamp: datetime
    seconds: float


def drill_backup(sink: Sink, name: str) -> DrillOutcome:
    """Restore the backup ``name`` of ``sink`` into a scratch SQLite database and read it
    back; raises :class:`~angles.BackupError` saying what failed."""
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="angles-drill-"))
    try:
        copy = scratch / "backup"
        # The one read of the stored file; encryption decrypts here when it applies.
        with sink.open(name) as stream, open(copy, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        database = sqlite3.connect(scratch / "restore.db", isolation_level=None)
        with contextlib.closing(database):
            with open(copy, "rb") as stream:
                backup = BackupFile(stream, name)
                columns = _load(database, backup)
            with open(copy, "rb") as stream:
                records = _compare(database, BackupFile(stream, name), columns)
        return DrillOutcome(
            name, records, bool(backup.verified), backup.timestamp, time.perf_counter() - started
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _load(database: sqlite3.Connection, backup: BackupFile) -> list[str]:
    """Create the table and insert every row, in one transaction; returns the columns."""
    rows = backup.rows()
    first = next(rows, None)
    columns = list(backup.columns or (first or {}))
    if first is not None:
        columns += [c for c in first if c not in columns]
    key = [c for c in backup.primary_key or () if c in columns]
    definitions = [_quote(c) for c in columns] or ['"_empty"']
    if key:
        definitions.append(f"PRIMARY KEY ({', '.join(map(_quote, key))})")
    database.execute(f"CREATE TABLE restored ({', '.join(definitions)})")
    if first is None:
        for _ in rows:  # verifies the (empty) file to its end
            pass
        return columns
    insert = (
        f"INSERT INTO restored ({', '.join(map(_quote, columns))}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    database.execute("BEGIN")
    batch: list[tuple[Any, ...]] = []
    try:
        for number, row in enumerate(_chain(first, rows), start=1):
            extra = set(row) - set(columns)
            if extra:
                raise BackupError(
                    f"row {number} of backup {backup.name} has columns the others lack: "
                    f"{', '.join(sorted(extra))}"
                )
            batch.append(tuple(_stored(row.get(c)) for c in columns))
            if len(batch) >= BATCH:
                database.executemany(insert, batch)
                batch.clear()
        database.executemany(insert, batch)
    except sqlite3.IntegrityError as exc:
        raise BackupError(
            f"backup {backup.name} does not load into a table keyed by "
            f"{', '.join(key)}: {exc} (two rows with one key?)",
            hint="restore another backup (angles backups list shows them)",
        ) from exc
    database.execute("COMMIT")
    return columns


def _compare(database: sqlite3.Connection, backup: BackupFile, columns: list[str]) -> int:
    """Read every row back from SQLite, in load order, and compare it with the file."""
    names = ", ".join(map(_quote, columns)) if columns else "NULL"
    stored = database.execute(f"SELECT {names} FROM restored ORDER BY rowid")
    count = 0
    for count, row in enumerate(backup.rows(), start=1):
        back = stored.fetchone()
        if back is None:
            raise BackupError(f"row {count} of backup {backup.name} did not read back")
        restored = {c: _loaded(v) for c, v in zip(columns, back, strict=True) if c in row}
        if canonical(restored) != canonical(row):
            raise BackupError(
                f"row {count} of backup {backup.name} reads back differently from the file"
            )
    if stored.fetchone() is not None:
        raise BackupError(f"the restored table holds more rows than backup {backup.name}")
    return count


def _stored(value: Any) -> Any:
    if value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value in _INT64:
        return value
    return b"J" + numbers.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _loaded(value: Any) -> Any:
    if isinstance(value, bytes):
        return numbers.loads(value[1:])
    return value


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _chain(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest
