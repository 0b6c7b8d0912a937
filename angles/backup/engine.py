"""Running the pipeline's backups: each table read once, stored in every sink it names.

Each table is streamed in primary-key order into a spooled :class:`BackupWriter` (constant
memory), then every sink stores all the run's files in one transaction (one commit for a
git sink). Retention runs only after the new file is stored, so a failed run never costs
an older backup. A sink with ``encrypt:`` gets each file encrypted with age and named
``….age`` (:mod:`angles.backup.encryption`), whatever the sink's type.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from angles.backup.encryption import AGE_SUFFIX, Encryption
from angles.backup.format import BackupName, BackupWriter
from angles.backup.retention import RETENTION_KEYS, expired
from angles.backup.tables import TableSelection
from angles.core.connection import Database, TableSchema
from angles.core.context import Context
from angles.core.errors import BackupError
from angles.core.progress import Advance, ProgressFactory, counted, no_progress
from angles.core.report import BackupRun
from angles.core.results import Status
from angles.core.sink import Sink
from angles.core.text import one_line

__all__ = ["backup_name", "database_for", "export_table", "run_backups", "store_files"]


@dataclass
class _Export:
    """One backup entry of the run, from reading its tables to storing them.

    ``writers`` holds one file per table read, all with the same timestamp: the set a
    whole-database restore restores.
    """

    entry: dict[str, Any]
    run: BackupRun
    started: float
    writers: dict[str, BackupWriter] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def database_for(context: Context, connection: str) -> Database:
    """The named connection, which must hold tables."""
    database = context.connection(connection)
    if not isinstance(database, Database):
        raise BackupError(f"the connection {connection!r} ({database.type}) holds no tables")
    return database


def export_table(
    database: Database,
    table: str,
    moment: datetime,
    progress: ProgressFactory = no_progress,
    *,
    snapshot: bool | None = None,
) -> tuple[BackupWriter, int]:
    """Read ``table`` into a new writer; returns it and the count taken before reading.

    Rows come in primary-key order (a table without one: ordered by every column).
    The count comes first, so rows added or removed while the table streams show up as
    a difference between it and the rows exported (and the progress has a total).
    ``snapshot`` is recorded in the file: whether it was read in one snapshot with the
    other tables of its set.
    """
    schema: TableSchema = database.describe(table)
    expected = database.count(table)
    writer = BackupWriter(schema, moment, snapshot=snapshot)
    try:
        with progress(f"Backing up {table}", expected) as advance:
            lines = database.stream_lines(table, schema)
            if lines is None:
                writer.write(counted(database.stream(table, schema), advance))
            else:
                writer.write_lines(lines, advance)
        writer.sequence_values = database.sequence_values(schema.sequences.values())
    except BaseException:
        writer.close()
        raise
    return writer, expected


def backup_name(
    sink: Sink, table: str, moment: datetime, size: int, *, pre_restore: bool = False
) -> str:
    """The name a backup of ``table`` taken at ``moment`` gets in ``sink``: compressed as
    the sink decides for a file of ``size`` bytes, ``.age`` when the sink encrypts."""
    name = BackupName(
        table,
        moment,
        pre_restore=pre_restore,
        compressed=sink.compresses(size),
        encrypted=Encryption.of(sink) is not None,
    )
    return str(name)


def store_files(
    sink: Sink,
    files: Sequence[tuple[str, BackupWriter]],
    message: str,
    sizes: dict[str, int] | None = None,
) -> dict[str, str | None]:
    """Store files in one transaction of ``sink``: name → None when stored, else the error.

    A file that fails does not stop the others; a failed commit fails them all. A name
    ending in ``.gz`` is stored gzip-compressed, one ending in ``.age`` encrypted with the
    sink's ``encrypt:`` settings (and the sink is not told its record count, which a git
    sink would write in the clear). ``sizes``, when given, receives the bytes the sink
    stored for each file.
    """
    encryption = Encryption.of(sink)
    outcome: dict[str, str | None] = {}
    try:
        with sink.transaction(message) as transaction:
            for name, writer in files:
                try:
                    plain = name.removesuffix(AGE_SUFFIX)
                    # a writer that compresses .gz files itself gets the JSON (and cuts it
                    # into parts first); what is encrypted is compressed here, as a whole
                    itself = plain == name and getattr(transaction, "gzips_itself", False) is True
                    chunks = writer.chunks(compress=plain.endswith(".gz") and not itself)
                    if plain != name:
                        if encryption is None:
                            raise BackupError(f"sink {sink.name!r} has no encrypt: settings")
                        chunks = encryption.encrypt(chunks)
                    size = transaction.store(
                        name,
                        chunks,
                        record_count=None if encryption else writer.record_count,
                    )
                    outcome[name] = None
                    if sizes is not None:
                        sizes[name] = size
                except Exception as exc:
                    outcome[name] = one_line(exc)
    except Exception as exc:
        reason = one_line(exc)
        return {name: reason for name, _ in files}
    return outcome


def run_backups(context: Context, names: Sequence[str] = ()) -> list[BackupRun]:
    """Back up the pipeline's tables (all entries, or the ones named); one result per entry.

    A table that changed while it was read gets a warning (count before ≠ rows written);
    a table that could not be read or stored gets an error, and no older backup of it is
    deleted.
    """
    entries = context.pipeline.select("backups", names)
    log = context.logger("backup")
    exports = [_export(context, entry, log) for entry in entries]
    sink_names = list(dict.fromkeys(s for e in exports if e.writers for s in e.entry["sinks"]))
    for sink_name in sink_names:
        chosen = [e for e in exports if e.writers and sink_name in e.entry["sinks"]]
        _store(context, sink_name, chosen, log)
    for export in exports:
        for writer in export.writers.values():
            writer.close()
        run = export.run
        run.duration_seconds = time.perf_counter() - export.started
        if export.problems:
            run.status, run.message = Status.ERROR, "; ".join(export.problems + export.warnings)
        elif export.warnings:
            run.status, run.message = Status.WARNING, "; ".join(export.warnings)
        getattr(log, run.status.log_level)(
            "backup finished",
            backup=run.name,
            status=run.status.value,
            records=run.record_count,
            files=run.files,
            message=run.message,
            duration_seconds=round(run.duration_seconds, 3),
        )
    return [export.run for export in exports]


def _export(context: Context, entry: dict[str, Any], log: Any) -> _Export:
    """Read every table of ``entry``, in one snapshot where the connection can."""
    export = _Export(entry, BackupRun(entry["name"], Status.OK), time.perf_counter())
    selection = TableSelection.of(entry)
    try:
        database = database_for(context, entry["connection"])
        tables, skipped = selection.resolve(database)
    except Exception as exc:
        export.problems.append(f"finding the tables failed: {one_line(exc)}")
        log.error("backup failed", backup=entry["name"], error=one_line(exc))
        return export
    export.run.skipped = skipped
    moment = datetime.now(UTC)
    try:
        with database.snapshot() as consistent:
            _read_tables(context, export, database, tables, moment, consistent, log)
    except Exception as exc:  # the snapshot itself could not be begun or ended
        export.problems.append(f"reading a snapshot failed: {one_line(exc)}")
        log.error("backup failed", backup=entry["name"], error=one_line(exc))
    export.writers = {t: export.writers[t] for t in tables if t in export.writers}
    if export.writers:
        export.run.record_count = sum(w.record_count for w in export.writers.values())
    return export


def _read_tables(
    context: Context,
    export: _Export,
    database: Database,
    tables: Sequence[str],
    moment: datetime,
    consistent: bool,
    log: Any,
) -> None:
    """Read ``tables`` one after another, or on as many threads at once as the database
    reads in its snapshot: each takes the next table not yet taken, so a thread that
    cannot join leaves its share to the others."""
    readers = min(database.readers(), len(tables)) if consistent else 1
    if readers <= 1:
        for table in tables:
            _export_one(export, database, table, moment, consistent, log, context.progress)
        return
    pending = iter(tables)
    taking = threading.Lock()
    done = 0
    stopped = threading.Event()  # the run was interrupted: no reader takes another table

    def read(advance: Advance) -> None:
        nonlocal done
        while not stopped.is_set():
            with taking:
                table = next(pending, None)
            if table is None:
                return
            _export_one(export, database, table, moment, consistent, log, no_progress)
            with taking:
                done += 1
                advance(done)

    def join_and_read(advance: Advance) -> None:
        joined = False
        try:
            with database.join_snapshot():
                joined = True
                read(advance)
        except Exception as exc:  # the other readers take the tables it did not
            log.warning(
                "reader ended" if joined else "reader not started, the others read its tables",
                backup=export.entry["name"],
                error=one_line(exc),
            )

    with (
        context.progress(f"Backing up {len(tables)} tables", len(tables)) as advance,
        ThreadPoolExecutor(readers - 1, thread_name_prefix="angles-reader") as pool,
    ):
        helpers = [pool.submit(join_and_read, advance) for _ in range(readers - 1)]
        try:
            read(advance)
        except BaseException:
            stopped.set()
            raise
        for helper in helpers:
            helper.result()


def _export_one(
    export: _Export,
    database: Database,
    table: str,
    moment: datetime,
    consistent: bool,
    log: Any,
    progress: ProgressFactory,
) -> None:
    started = time.perf_counter()
    name = export.entry["name"]
    try:
        with database.reading_table(table):
            writer, expected = export_table(database, table, moment, progress, snapshot=consistent)
    except Exception as exc:
        export.problems.append(f"reading {table!r} failed: {one_line(exc)}")
        log.error("backup failed", backup=name, table=table, error=one_line(exc))
        return
    export.writers[table] = writer
    if writer.record_count != expected:
        export.warnings.append(
            f"{table!r} had {expected} rows when the backup started but {writer.record_count} "
            "were written (rows changed during the backup)"
        )
    log.info(
        "table exported",
        backup=name,
        table=table,
        records=writer.record_count,
        counted=expected,
        duration_seconds=round(time.perf_counter() - started, 3),
    )


def _store(context: Context, sink_name: str, exports: list[_Export], log: Any) -> None:
    """Store every file of ``exports`` in one transaction of the sink, then apply its
    retention with one listing."""
    started = time.perf_counter()
    try:
        sink = context.sink(sink_name)
    except Exception as exc:
        for export in exports:
            export.problems.append(f"sink {sink_name!r}: {one_line(exc)}")
        return
    files = []
    for export in exports:
        for table, writer in export.writers.items():
            name = backup_name(sink, table, writer.timestamp, writer.size)
            files.append((name, table, writer, export))
    tables = [table for _, table, _, _ in files]
    subject = ", ".join(tables) if len(tables) <= 5 else f"{len(tables)} tables"
    message = f"angles backup of {subject} ({context.pipeline.name})"
    sizes: dict[str, int] = {}
    outcome = store_files(sink, [(name, writer) for name, _, writer, _ in files], message, sizes)
    stored: dict[str, str] = {}  # table -> the file just stored
    for name, table, writer, export in files:
        error = outcome.get(name)
        if error:
            what = f" {table!r}" if len(export.writers) > 1 else ""
            export.problems.append(f"storing{what} in sink {sink_name!r} failed: {error}")
            log.error(
                "backup not stored", backup=export.run.name, sink=sink_name, file=name, error=error
            )
            continue
        export.run.files.append(
            {
                "sink": sink_name,
                "name": name,
                "table": table,
                "record_count": writer.record_count,
                "size": sizes[name],
            }
        )
        stored[table] = name
        log.info(
            "backup stored",
            backup=export.run.name,
            sink=sink_name,
            file=name,
            records=writer.record_count,
            duration_seconds=round(time.perf_counter() - started, 3),
        )
    if stored:
        _apply_retention(sink, stored, exports, log)


def _apply_retention(sink: Sink, stored: dict[str, str], exports: list[_Export], log: Any) -> None:
    """Delete the files retention no longer keeps of the tables just stored: one listing,
    one deletion (one commit for a git sink). Only after the new files are stored, so a
    failed run never costs an older backup."""
    if not any(sink.config.get(key) is not None for key in RETENTION_KEYS):
        return
    try:
        names = [f.name for f in sink.list()]
        now = datetime.now(UTC)
        doomed = [
            name
            for table, kept in stored.items()
            for name in expired(names, table, sink.config, now)
            if name != kept
        ]
        if doomed:
            sink.delete(doomed, f"angles retention: {len(doomed)} old backups")
            log.info("old backups deleted", sink=sink.name, files=doomed)
    except Exception as exc:
        for export in exports:
            if any(table in stored for table in export.writers):
                export.warnings.append(f"retention in sink {sink.name!r} failed: {one_line(exc)}")
        log.warning("retention failed", sink=sink.name, error=one_line(exc))
