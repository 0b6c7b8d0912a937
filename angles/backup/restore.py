"""Restoring a table from a backup: plan first (a dry run), then apply if asked.

:func:`prepare_restore` finds the backup, reads it once while merging it with the live
table (:func:`angles.backup.diff.merge`) and verifies its checksum at the end; a
damaged backup refuses the restore. :func:`apply_restore` saves a pre-restore backup of
the table to the backup entry's sinks, then reads the backup again, re-diffs and writes
inserts and updates in batches. Nothing is ever deleted, and each batch is committed on
its own, so an interrupted restore is finished by running it again.

Rows must come in primary-key order. Backups written by angles are; a file laid out by
others (the older system ordered rows by ``created_at``) is small, and is sorted in memory.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from angles.backup.diff import (
    Change,
    Kind,
    OutOfOrder,
    merge,
    sort_key,
    updated_at_column,
    whole_rows,
)
from angles.backup.encryption import open_backup, open_backup_file
from angles.backup.engine import backup_name, database_for, export_table, store_files
from angles.backup.format import BackupFile, BackupName, ChecksumMismatch
from angles.backup.rowcheck import RowChecker
from angles.backup.tables import TableSelection
from angles.core.connection import Database, Row, StagedBackup, TableSchema
from angles.core.context import Context
from angles.core.errors import AnglesError, BackupError, RestoreRefused
from angles.core.progress import ProgressFactory, counted, no_progress

__all__ = [
    "RestorePlan",
    "RestoreRequest",
    "apply_restore",
    "close_plan",
    "prepare_restore",
    "save_pre_restore",
    "write_changes",
]

SAMPLE_SIZE = 10
DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class RestoreRequest:
    """What the user asked for (``angles restore`` options)."""

    table: str | None = None
    backup: str | None = None
    file: Path | None = None
    sink: str | None = None
    overwrite_newer: bool = False


@dataclass
class RestorePlan:
    """What a restore would change (or, once applied, did change)."""

    table: str
    backup: str
    sink: str | None
    connection: str
    sinks: list[str]
    verified: bool = False
    live: bool = False
    overwrite_newer: bool = False
    auto_migrate: bool = False
    counts: dict[str, int] = field(default_factory=lambda: {k.value: 0 for k in Kind})
    samples: dict[str, list[Any]] = field(default_factory=lambda: {k.value: [] for k in Kind})
    missing_in_table: list[str] = field(default_factory=list)
    new_in_table: list[str] = field(default_factory=list)
    required_missing: list[str] = field(default_factory=list)
    compared_columns: list[str] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    updated_at: str | None = None
    backup_time: datetime | None = None
    pre_restore_backup: str | None = None
    pre_restore_files: list[dict[str, str]] = field(default_factory=list)
    applied: dict[str, int] | None = None
    sorted_in_memory: bool = False
    #: The last value of each sequence the backup recorded (files from 1.2.0 on).
    recorded_sequences: dict[str, int | None] = field(default_factory=dict)
    #: Columns the connection cannot write (column → ``generated`` or ``identity always``).
    unwritable: dict[str, str] = field(default_factory=dict)
    #: What the connection cannot make exact, with the fix; shown before anything is written.
    warnings: list[str] = field(default_factory=list)
    #: The table as it was described when planned.
    schema: TableSchema | None = field(default=None, repr=False)
    _source: _Source | None = field(default=None, repr=False)
    #: The backup loaded into the database and diffed there, where it can be.
    _staged: StagedBackup | None = field(default=None, repr=False)

    @property
    def schema_differs(self) -> bool:
        return bool(self.missing_in_table or self.new_in_table)

    @property
    def to_write(self) -> int:
        """Rows a live restore writes: inserts, updates (and newer rows if overwriting)."""
        total = self.counts[Kind.INSERT] + self.counts[Kind.UPDATE]
        return total + (self.counts[Kind.NEWER_IN_DATABASE] if self.overwrite_newer else 0)

    def refusal(self) -> str | None:
        """Why a live restore would be refused, or None."""
        if self.schema_differs and not self.auto_migrate:
            return (
                f"the backup's columns differ from the table's ({self.describe_columns()}); "
                "set restore.auto_migrate: true to restore the common columns"
            )
        always = [c for c, why in self.unwritable.items() if why == "identity always"]
        if always and self.to_write:
            return (
                f"{', '.join(always)} of {self.table!r} "
                f"{'is an identity column' if len(always) == 1 else 'are identity columns'} "
                f"GENERATED ALWAYS, whose values the {self.connection!r} connection cannot "
                "write; restore through a postgres connection to the same database "
                "(type: postgres, url: the project's database URL)"
            )
        if self.required_missing and self.counts[Kind.INSERT]:
            return (
                f"the table requires {', '.join(self.required_missing)}, which the backup "
                "lacks, so its rows cannot be inserted"
            )
        return None

    def describe_columns(self) -> str:
        parts = []
        if self.missing_in_table:
            parts.append(f"not in the table: {', '.join(self.missing_in_table)}")
        if self.new_in_table:
            parts.append(f"not in the backup: {', '.join(self.new_in_table)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The plan as ``angles restore --format json`` prints it."""
        data: dict[str, Any] = {
            "table": self.table,
            "backup": self.backup,
            "sink": self.sink,
            "verified": self.verified,
            "live": self.live,
            "counts": dict(self.counts),
            "samples": {k: v for k, v in self.samples.items() if k != Kind.UNCHANGED},
            "pre_restore_backup": self.pre_restore_backup,
            "columns": {
                "missing_in_table": self.missing_in_table,
                "new_in_table": self.new_in_table,
            },
            "auto_migrate": self.auto_migrate,
            "overwrite_newer": self.overwrite_newer,
            "updated_at_column": self.updated_at,
            "unwritable_columns": self.unwritable,
            "warnings": self.warnings,
        }
        if self.applied is not None:
            data["applied"] = self.applied
            data["pre_restore_files"] = self.pre_restore_files
        return data


class _Source:
    """A backup file that can be read several times (a sink's file, or a local path)."""

    def __init__(self, name: str, stream: BinaryIO) -> None:
        self.name = name
        if not stream.seekable():
            spool = tempfile.TemporaryFile()  # noqa: SIM115
            while chunk := stream.read(1 << 20):
                spool.write(chunk)
            stream.close()
            stream = spool  # type: ignore[assignment]
        self.stream = stream

    def open(self) -> BackupFile:
        self.stream.seek(0)
        return BackupFile(self.stream, self.name)

    def close(self) -> None:
        self.stream.close()


def prepare_restore(context: Context, request: RestoreRequest) -> RestorePlan:
    """The plan of a restore: find and read the backup, diff it with the table.

    Raises :class:`RestoreRefused` when the backup is damaged or its checksum does not
    match, and :class:`AnglesError` when the request names nothing restorable.
    """
    log = context.logger("restore")
    started = time.perf_counter()
    entry, table, sink_name, source = _locate(context, request)
    try:
        backup = _guarded(source.open)
        if backup.metadata.get("source") not in (None, table):
            raise RestoreRefused(
                f"{source.name} is a backup of {backup.metadata['source']!r}, not of {table!r}"
            )
        database = database_for(context, entry["connection"])
        # The table is read in the file's encoding, so values compare like for like.
        schema = replace(
            database.describe(table),
            text_columns=backup.text_columns,
        )
        plan = RestorePlan(
            table=table,
            backup=source.name,
            sink=sink_name,
            connection=entry["connection"],
            sinks=list(entry["sinks"]),
            overwrite_newer=request.overwrite_newer,
            auto_migrate=bool(context.pipeline.restore.get("auto_migrate")),
            primary_key=list(schema.primary_key),
            backup_time=backup.timestamp,
            recorded_sequences=backup.sequence_values,
            schema=schema,
            _source=source,
        )
        _diff(plan, database, schema, backup, source, sample=True, progress=context.progress)
        # Asked on the dry run too, so what a live restore cannot do is said before it runs.
        if plan.compared_columns:
            plan.unwritable = database.unwritable_columns(table, schema, plan.compared_columns)
        plan.warnings = database.restore_warnings(table, schema)
    except BaseException:
        source.close()
        raise
    log.info(
        "restore planned",
        table=table,
        backup=plan.backup,
        sink=sink_name,
        verified=plan.verified,
        counts=plan.counts,
        columns=plan.describe_columns() or None,
        duration_seconds=round(time.perf_counter() - started, 3),
    )
    return plan


def apply_restore(context: Context, plan: RestorePlan) -> RestorePlan:
    """Apply a prepared plan: save a pre-restore backup, then write inserts and updates.

    A plan with nothing to write changes nothing and saves no pre-restore backup.

    Raises :class:`RestoreRefused` (before writing anything) when the schema differs without
    ``restore.auto_migrate`` or the pre-restore backup cannot be stored.
    """
    reason = plan.refusal()
    if reason:
        raise RestoreRefused(f"live restore of {plan.table!r} refused: {reason}")
    plan.live = True
    database = database_for(context, plan.connection)
    if plan.to_write:
        save_pre_restore(context, plan, database)
    with database.transaction():
        write_changes(context, plan, database)
    return plan


def write_changes(context: Context, plan: RestorePlan, database: Database) -> None:
    """Write a plan's inserts and updates (inside the caller's transaction, where the
    database has them: a failure half-way changes nothing): in one statement where the
    database diffed the backup itself, else in batches."""
    assert plan._source is not None, "a plan from prepare_restore"
    log = context.logger("restore")
    started = time.perf_counter()
    plan.live = True
    kinds = (Kind.INSERT.value, Kind.UPDATE.value, Kind.NEWER_IN_DATABASE.value)
    applied = dict.fromkeys([*kinds, "written"], 0)
    try:
        if not plan.to_write:
            pass
        elif plan._staged is not None:
            with context.progress(f"Restoring {plan.table}", plan.to_write) as advance:
                applied.update(plan._staged.write(overwrite_newer=plan.overwrite_newer))
                applied["written"] = sum(applied[kind] for kind in kinds)
                advance(applied["written"])
        else:
            _write_batches(context, plan, database, applied)
    finally:
        plan.applied = applied
        log.info(
            "restore applied",
            table=plan.table,
            backup=plan.backup,
            applied=plan.applied,
            pre_restore_backup=plan.pre_restore_backup,
            duration_seconds=round(time.perf_counter() - started, 3),
        )


def _write_batches(
    context: Context, plan: RestorePlan, database: Database, applied: dict[str, int]
) -> None:
    """Re-diff the backup with the table and upsert what differs, a batch at a time;
    ``applied`` counts the rows by kind, and those ``written``, as it goes."""
    assert plan._source is not None
    schema = plan.schema or database.describe(plan.table)
    batch_size = int(context.pipeline.restore.get("batch_size") or DEFAULT_BATCH_SIZE)
    batch: list[Row] = []
    write = set(plan.compared_columns) - set(schema.generated) - set(plan.unwritable)

    def flush() -> None:
        if batch:
            applied["written"] += database.upsert(plan.table, schema, batch, batch_size=len(batch))
            batch.clear()
            advance(applied["written"])

    with context.progress(f"Restoring {plan.table}", plan.to_write) as advance:
        for change in _changes(plan, database, schema, plan._source.open()):
            if change.kind in (Kind.INSERT, Kind.UPDATE) or (
                change.kind is Kind.NEWER_IN_DATABASE and plan.overwrite_newer
            ):
                assert change.row is not None
                batch.append({c: v for c, v in change.row.items() if c in write})
                applied[change.kind.value] += 1
                if len(batch) >= batch_size:
                    flush()
        flush()


def close_plan(plan: RestorePlan) -> None:
    """Release the backup file a plan keeps open."""
    if plan._source is not None:
        plan._source.close()
        plan._source = None
    if plan._staged is not None:
        plan._staged.close()
        plan._staged = None


def _locate(
    context: Context, request: RestoreRequest
) -> tuple[dict[str, Any], str, str | None, _Source]:
    """The backup entry, table, sink and file a request designates."""
    pipeline = context.pipeline
    entries = pipeline.backups
    if request.file is not None:
        path = Path(request.file)
        try:
            stream = open_backup_file(context, path)
        except BackupError as exc:
            raise RestoreRefused(exc.message, hint=exc.hint) from exc
        source = _Source(path.name, stream)
        try:
            table = request.table or _guarded(source.open).metadata.get("source")
        except BaseException:
            source.close()
            raise
        entry = _entry_for(entries, table)
        return entry, table, None, source
    table = request.table
    if table is None and request.backup:
        parsed = BackupName.parse(request.backup)
        table = parsed.table if parsed else None
    if table is None:
        selections = [TableSelection.of(e) for e in entries]
        tables = sorted({s.single for s in selections if s.single})
        if len(tables) != 1 or len(selections) != 1:
            named = tables + [
                e["name"] for e, s in zip(entries, selections, strict=True) if not s.single
            ]
            raise AnglesError(
                "which table? the pipeline backs up " + (", ".join(named) or "no table"),
                hint="name it with --table",
            )
        table = tables[0]
    entry = _entry_for(entries, table)
    sink_name = request.sink or entry["sinks"][0]
    if sink_name not in pipeline.sinks:
        raise AnglesError(
            f"no sink named {sink_name!r}",
            hint=f"the pipeline defines: {', '.join(pipeline.sinks)}",
        )
    sink = context.sink(sink_name)
    name = request.backup or _newest(sink.list(), table, sink_name)
    try:
        stream = open_backup(sink, name)
    except BackupError as exc:
        raise RestoreRefused(exc.message, hint=exc.hint) from exc
    return entry, table, sink_name, _Source(name, stream)


def _entry_for(entries: list[dict[str, Any]], table: Any) -> dict[str, Any]:
    for entry in entries:
        if isinstance(table, str) and TableSelection.of(entry).covers(table):
            return entry
    raise AnglesError(
        f"the pipeline has no backup entry for the table {table!r}",
        hint="a restore uses the connection and sinks of the table's entry under backups:",
    )


def _newest(files: list[Any], table: str, sink_name: str) -> str:
    candidates = []
    for stored in files:
        parsed = BackupName.parse(stored.name)
        if parsed and parsed.table == table and not parsed.pre_restore:
            candidates.append((parsed.timestamp, stored.name))
    if not candidates:
        raise RestoreRefused(
            f"sink {sink_name!r} holds no backup of {table!r}",
            hint="run `angles backup` first, or choose another sink with --sink",
        )
    return max(candidates)[1]


def _guarded(read: Callable[[], BackupFile]) -> BackupFile:
    try:
        return read()
    except BackupError as exc:
        raise RestoreRefused(exc.message, hint=exc.hint) from exc


def _diff(
    plan: RestorePlan,
    database: Database,
    schema: TableSchema,
    backup: BackupFile,
    source: _Source,
    *,
    sample: bool,
    progress: ProgressFactory = no_progress,
) -> None:
    """Compare columns, then count (and sample) every key's verdict."""
    # Rows are read only once it is known that the database cannot diff the lines itself.
    rows: Iterator[Row] | None = None
    if backup.columns is not None:
        backup_columns = list(backup.columns)
    elif not backup.streaming:
        backup_columns = backup.parsed_columns() or []
    else:
        rows = backup.rows()
        first = next(rows, None)
        backup_columns = list(first or {})
        if first is not None:
            rows = _chain(first, rows)
    live = list(schema.columns)
    plan.missing_in_table = [c for c in backup_columns if c not in schema.columns]
    plan.new_in_table = [c for c in live if c not in backup_columns]
    plan.required_missing = sorted(schema.required & set(plan.new_in_table))
    plan.compared_columns = [c for c in live if c in backup_columns]
    lacking = [c for c in schema.primary_key if c not in backup_columns]
    if lacking and backup_columns:
        raise RestoreRefused(
            f"the backup lacks the primary key column(s) {', '.join(lacking)} of {plan.table!r}"
        )
    # Rows of a table without a primary key are never updated, so none is newer.
    plan.updated_at = updated_at_column(plan.compared_columns) if schema.primary_key else None
    if backup.columns is not None and backup.streaming:
        try:
            if _staged_diff(plan, database, schema, backup, sample=sample, progress=progress):
                return
        except ChecksumMismatch:
            # Rows spelled other than canonically: their lines were read, read the rows.
            backup = _guarded(source.open)
        except BackupError as exc:
            # The database refused the file: name the row, as verify does, where one can.
            checker = RowChecker(source.name, tuple(schema.primary_key), backup.columns)
            for _ in checker.check(_guarded(source.open).rows()):
                pass
            if checker.count:
                raise _file_refusal(plan, checker) from exc
            raise RestoreRefused(f"backup {plan.backup}: {exc.message}", hint=exc.hint) from exc
    # The file's own problems are found here, on the one read of the dry run, so a live
    # restore is refused before its pre-restore backup is stored.
    if rows is None:
        rows = backup.rows()
    checker = RowChecker(source.name, tuple(schema.primary_key), backup.columns)
    try:
        _count(plan, database, schema, backup, checker.check(rows), sample, progress)
    except RestoreRefused as exc:
        if checker.count:
            raise _file_refusal(plan, checker) from exc
        raise
    if checker.count:
        raise _file_refusal(plan, checker)


def _file_refusal(plan: RestorePlan, checker: RowChecker) -> RestoreRefused:
    return RestoreRefused(
        f"backup {plan.backup} cannot be restored into {plan.table!r}: {checker.summary()}",
        hint="`angles backups verify` lists the problems of every stored backup; "
        "nothing was written",
    )


def _count(
    plan: RestorePlan,
    database: Database,
    schema: TableSchema,
    backup: BackupFile,
    rows: Iterator[Row],
    sample: bool,
    progress: ProgressFactory,
) -> None:
    with progress(f"Comparing {plan.table}", backup.record_count) as advance:
        for change in counted(_changes(plan, database, schema, backup, rows), advance):
            kind = change.kind.value
            plan.counts[kind] += 1
            if (
                sample
                and change.kind is not Kind.UNCHANGED
                and len(plan.samples[kind]) < SAMPLE_SIZE
            ):
                key = schema.primary_key or tuple(plan.compared_columns)
                plan.samples[kind].append(_sample(change, key))


def _staged_diff(
    plan: RestorePlan,
    database: Database,
    schema: TableSchema,
    backup: BackupFile,
    *,
    sample: bool,
    progress: ProgressFactory,
) -> bool:
    """Diff inside the database (:meth:`Database.stage`) where it can; whether it did.

    Raises :class:`ChecksumMismatch` for a file whose bytes fail the checksum (read row
    by row, a row spelled other than canonically still verifies) and :class:`BackupError`
    for a file the database refuses.
    """
    assert backup.columns is not None
    with progress(f"Loading {plan.table}", backup.record_count) as advance:
        staged = database.stage(
            plan.table,
            schema,
            counted(backup.lines(), advance),
            columns=plan.compared_columns,
            updated_at=plan.updated_at,
            backup_time=plan.backup_time,
            declared=list(backup.columns),
        )
    if staged is None:
        return False
    plan._staged = staged
    plan.verified = bool(backup.verified)
    counts = staged.counts()
    for kind in Kind:
        plan.counts[kind.value] = int(counts.get(kind.value, 0))
        if sample and kind is not Kind.UNCHANGED and plan.counts[kind.value]:
            key = schema.primary_key or tuple(plan.compared_columns)
            plan.samples[kind.value] = [
                _sample(Change(kind, values, columns=columns), key)
                for values, columns in staged.samples(kind.value, SAMPLE_SIZE)
            ]
    return True


def _changes(
    plan: RestorePlan,
    database: Database,
    schema: TableSchema,
    backup: BackupFile,
    rows: Iterator[Row] | None = None,
) -> Iterator[Change]:
    """Every key's verdict, then ``plan.verified`` from the backup's checksum.

    A backup found out of key order (a file laid out by others) is read again and
    sorted in memory; the verdicts restart, and ``plan.counts`` is reset for them.
    """
    rows = backup.rows() if rows is None else rows
    if not schema.primary_key:
        live = database.stream(plan.table, schema)
        yield from whole_rows(rows, live, plan.compared_columns)
        plan.verified = bool(backup.verified)
        return
    if plan.sorted_in_memory or not backup.streaming:
        rows = iter(_sorted(rows, schema.primary_key))
    try:
        yield from _merged(plan, database, schema, rows)
    except OutOfOrder as exc:
        if exc.side != "backup" or exc.duplicate or plan.sorted_in_memory:
            raise _order_error(exc, plan) from exc
        plan.sorted_in_memory = True
        for kind in plan.counts:
            plan.counts[kind] = 0
            plan.samples[kind] = []
        assert plan._source is not None
        backup = _guarded(plan._source.open)
        yield from _merged(plan, database, schema, iter(_sorted(backup.rows(), schema.primary_key)))
    plan.verified = bool(backup.verified)


def _merged(
    plan: RestorePlan, database: Database, schema: TableSchema, rows: Iterator[Row]
) -> Iterator[Change]:
    changes = merge(
        rows,
        database.stream(plan.table, schema),
        schema.primary_key,
        plan.compared_columns,
        updated_at=plan.updated_at,
        backup_time=plan.backup_time,
    )
    try:
        yield from changes
    except BackupError as exc:
        raise RestoreRefused(exc.message, hint=exc.hint) from exc


def _order_error(exc: OutOfOrder, plan: RestorePlan) -> AnglesError:
    if exc.side == "backup":
        return RestoreRefused(f"backup {plan.backup}: {exc}")
    return AnglesError(
        f"{exc}: the connection must return rows in primary-key order",
        hint="this is a bug in the connection plugin",
    )


def _sorted(rows: Iterator[Row], primary_key: tuple[str, ...]) -> list[Row]:
    names = tuple(primary_key)
    try:
        return sorted(rows, key=lambda row: sort_key(tuple(row.get(c) for c in names)))
    except BackupError as exc:
        raise RestoreRefused(exc.message, hint=exc.hint) from exc


def _chain(first: Row, rest: Iterator[Row]) -> Iterator[Row]:
    yield first
    yield from rest


def _sample(change: Change, primary_key: tuple[str, ...]) -> Any:
    if not change.key:  # a row only in a table without a primary key: not kept
        return "a row"
    if change.kind in (Kind.INSERT, Kind.ONLY_IN_DATABASE):
        return (
            change.key[0]
            if len(change.key) == 1
            else dict(zip(primary_key, change.key, strict=True))
        )
    return {**dict(zip(primary_key, change.key, strict=True)), "columns": list(change.columns)}


def save_pre_restore(
    context: Context, plan: RestorePlan, database: Database, moment: datetime | None = None
) -> None:
    """Back the table up as it is now, to every sink of its entry, before writing
    (``moment``: the timestamp of a pre-restore set of several tables)."""
    log = context.logger("restore")
    moment = moment or datetime.now(UTC)
    writer, _ = export_table(database, plan.table, moment, context.progress)
    try:
        for sink_name in plan.sinks:
            sink = context.sink(sink_name)
            name = backup_name(sink, plan.table, moment, writer.size, pre_restore=True)
            outcome = store_files(
                sink, [(name, writer)], f"angles: {plan.table} before restoring {plan.backup}"
            )
            if outcome.get(name):
                raise RestoreRefused(
                    f"the pre-restore backup of {plan.table!r} could not be stored in "
                    f"{sink_name!r} ({outcome[name]}); nothing was restored"
                )
            plan.pre_restore_files.append({"sink": sink_name, "name": name})
            plan.pre_restore_backup = plan.pre_restore_backup or name
    finally:
        writer.close()
    log.info(
        "pre-restore backup stored",
        table=plan.table,
        files=plan.pre_restore_files,
        records=writer.record_count,
    )
