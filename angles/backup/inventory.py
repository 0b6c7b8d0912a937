"""What the sinks hold: listing backups (``angles backups list``) and verifying them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from angles.backup.encryption import encrypted_name, open_backup
from angles.backup.format import BackupFile, BackupName, format_stamp, metadata_from_head
from angles.backup.rowcheck import RowChecker
from angles.core.context import Context
from angles.core.errors import AnglesError, BackupError, ServiceError
from angles.core.results import Status
from angles.core.sink import Sink, StoredFile

__all__ = ["ListedBackup", "Verification", "list_backups", "verify_backups"]


@dataclass
class ListedBackup:
    """One backup file in one sink, with what its metadata says."""

    sink: str
    name: str
    table: str | None
    timestamp: datetime | None
    size: int | None
    record_count: int | None = None
    has_checksum: bool | None = None
    pre_restore: bool = False
    encrypted: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sink": self.sink,
            "name": self.name,
            "table": self.table,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z")
            if self.timestamp
            else None,
            "size": self.size,
            "record_count": self.record_count,
            "checksum": self.has_checksum,
            "pre_restore": self.pre_restore,
            "encrypted": self.encrypted,
            # The files of one backup run share their timestamp: a set.
            "set": format_stamp(self.timestamp) if self.timestamp else None,
            "error": self.error,
        }


@dataclass
class Verification:
    """The outcome of re-reading one backup: ok (verified), warning (no checksum) or error."""

    sink: str
    name: str
    status: Status
    message: str
    record_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sink": self.sink,
            "name": self.name,
            "status": self.status.value,
            "verified": self.status is Status.OK,
            "record_count": self.record_count,
            "message": self.message,
        }


def list_backups(context: Context) -> dict[str, list[ListedBackup]]:
    """Each sink's backups, newest first, with record counts read from their first line
    (unknown for an encrypted file, which is listed without being read)."""
    listing: dict[str, list[ListedBackup]] = {}
    for sink_name in context.pipeline.sinks:
        sink = context.sink(sink_name)
        rows = [_describe(sink, stored) for stored in sink.list()]
        rows.sort(
            key=lambda row: (row.timestamp is not None, row.timestamp, row.name), reverse=True
        )
        listing[sink_name] = rows
    return listing


def _describe(sink: Sink, stored: StoredFile) -> ListedBackup:
    parsed = BackupName.parse(stored.name)
    row = ListedBackup(
        sink=sink.name,
        name=stored.name,
        table=parsed.table if parsed else None,
        timestamp=parsed.timestamp if parsed else stored.modified,
        size=stored.size,
        pre_restore=bool(parsed and parsed.pre_restore),
        encrypted=encrypted_name(stored.name),
    )
    if row.encrypted:
        return row
    try:
        metadata = metadata_from_head(sink.head(stored.name))
        if metadata is None:  # laid out by others: read it whole (such files are small)
            with sink.open(stored.name) as stream:
                metadata = BackupFile(stream, stored.name).metadata
    except (BackupError, OSError) as exc:
        row.error = str(exc)
        return row
    count = metadata.get("record_count")
    row.record_count = count if isinstance(count, int) else None
    row.has_checksum = isinstance(metadata.get("checksum"), str)
    return row


def verify_backups(context: Context, name: str | None = None) -> list[Verification]:
    """Re-read every backup of every sink (or the one named) and check it."""
    log = context.logger("backup")
    results: list[Verification] = []
    for sink_name in context.pipeline.sinks:
        sink = context.sink(sink_name)
        for stored in sink.list():
            if name is None or stored.name == name:
                results.append(_verify(sink, stored.name))
                log.info("backup verified", **results[-1].to_dict())
    if name is not None and not results:
        raise AnglesError(
            f"no sink holds a backup named {name!r}", hint="`angles backups list` shows them"
        )
    return results


def _verify(sink: Sink, name: str) -> Verification:
    started = time.perf_counter()
    try:
        with open_backup(sink, name) as stream:
            backup = BackupFile(stream, name)
            # The checks a restore applies, so a file that verifies is one that restores.
            checker = RowChecker(name, backup.primary_key or (), backup.columns)
            count = sum(1 for _ in checker.check(backup.rows()))
    except (BackupError, ServiceError) as exc:
        # One unreadable backup is a failed verification, not the end of the run.
        return Verification(sink.name, name, Status.ERROR, str(exc))
    seconds = time.perf_counter() - started
    if checker.count:
        return Verification(
            sink.name,
            name,
            Status.ERROR,
            f"{count} rows read, but a restore would refuse the file: {checker.summary()}",
            count,
        )
    if backup.verified:
        return Verification(
            sink.name, name, Status.OK, f"{count} rows match the checksum ({seconds:.2f}s)", count
        )
    return Verification(
        sink.name,
        name,
        Status.WARNING,
        f"{count} rows read; the file has no checksum (written by the older system)",
        count,
    )
