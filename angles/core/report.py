"""What a run did: the report printed with ``--format json`` and kept in the history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from angles.core.results import Status


@dataclass
class CheckRun:
    """A check's result within a run."""

    name: str
    type: str
    status: Status
    message: str
    duration_seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "status": self.status.value,
            "message": self.message,
            "duration_seconds": round(self.duration_seconds, 3),
            "details": self.details,
        }


@dataclass
class BackupRun:
    """One backup entry within a run: the files it stored and how many rows."""

    name: str
    status: Status
    record_count: int | None = None
    files: list[dict[str, Any]] = field(default_factory=list)  # sink, name, size (bytes)
    message: str | None = None
    duration_seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # relations `tables:` left out (views)

    @property
    def rows(self) -> str:
        """How many rows it read, in words: ``1200 rows``, or ``no rows read``."""
        return "no rows read" if self.record_count is None else f"{self.record_count} rows"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "status": self.status.value,
            "record_count": self.record_count,
            "files": self.files,
            "duration_seconds": round(self.duration_seconds, 3),
        }
        if self.message:
            data["message"] = self.message
        if self.skipped:
            data["skipped"] = self.skipped
        return data


@dataclass
class NotificationRun:
    """Whether one notifier delivered its message: ``status`` is ``sent`` or ``error``."""

    notifier: str
    status: str
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"notifier": self.notifier, "status": self.status}
        if self.message:
            data["message"] = self.message
        return data


@dataclass
class RunReport:
    """Everything one run did, in the shape of the contract's JSON report."""

    pipeline: str
    started_at: datetime
    test: bool = False
    duration_seconds: float = 0.0
    checks: list[CheckRun] = field(default_factory=list)
    backups: list[BackupRun] = field(default_factory=list)
    notifications: list[NotificationRun] = field(default_factory=list)

    @property
    def status(self) -> Status:
        """The worst status of the checks and backups (notifications do not count)."""
        return Status.worst([c.status for c in self.checks] + [b.status for b in self.backups])

    @property
    def failing_checks(self) -> list[CheckRun]:
        return [c for c in self.checks if c.status is not Status.OK]

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "status": self.status.value,
            "started_at": format_timestamp(self.started_at),
            "duration_seconds": round(self.duration_seconds, 3),
            "test": self.test,
            "checks": [c.to_dict() for c in self.checks],
            "backups": [b.to_dict() for b in self.backups],
            "notifications": [n.to_dict() for n in self.notifications],
        }


def format_timestamp(moment: datetime) -> str:
    """UTC, to the second, with a ``Z``: ``2026-11-26T03:00:00Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
