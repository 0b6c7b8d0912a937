"""The notifier interface, and the message every notifier sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import ClassVar

from angles.core.plugin import Plugin
from angles.core.report import CheckRun, RunReport, format_timestamp
from angles.core.results import Status
from angles.core.text import plural


@dataclass
class Recovery:
    """A check that passes again, and how long it had been failing."""

    check: CheckRun
    failing_for: timedelta


@dataclass
class Notification:
    """What a notifier is asked to tell: the run, its failing checks and its recoveries.

    ``alerts`` are the failing checks this notifier should mention (its alerting policy
    applied); ``recoveries`` the checks that pass again.
    """

    report: RunReport
    alerts: list[CheckRun] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)

    @property
    def test(self) -> bool:
        return self.report.test

    @property
    def status(self) -> Status:
        return self.report.status

    @property
    def title(self) -> str:
        """A one-line subject: ``[TEST] angles production: error (2 checks failing)``."""
        prefix = "[TEST] " if self.test else ""
        return f"{prefix}angles {self.report.pipeline}: {self.status.value} ({self.summary})"

    @property
    def summary(self) -> str:
        """``2 checks failing, 1 backup failed``, ``recovered``, ``all checks passed``…"""
        report = self.report
        failed_backups = [b for b in report.backups if b.status is not Status.OK]
        parts = []
        if self.alerts:
            parts.append(f"{plural(len(self.alerts), 'check')} failing")
        if failed_backups:
            parts.append(f"{plural(len(failed_backups), 'backup')} failed")
        if parts:
            return ", ".join(parts)
        if self.recoveries:
            return "recovered"
        if report.checks:
            return "all checks passed"
        return "all backups stored" if report.backups else "nothing to check"

    def text(self) -> str:
        """The message as plain text; every notifier can send this."""
        report = self.report
        lines = [
            self.title,
            f"Pipeline: {report.pipeline}",
            f"Time: {format_timestamp(report.started_at)}",
            f"Duration: {report.duration_seconds:.1f}s",
        ]
        if self.test:
            lines.append("This is a test: the failures below are simulated.")
        for check in self.alerts:
            lines.append(f"- {check.name} [{check.status.value}]: {check.message}")
        for recovery in self.recoveries:
            lines.append(
                f"- {recovery.check.name} recovered after {format_duration(recovery.failing_for)}"
            )
        for backup in report.backups:
            outcome = f" ({backup.message})" if backup.message else ""
            lines.append(f"Backup {backup.name}: {backup.status.value}, {backup.rows}{outcome}")
        return "\n".join(lines)


class Notifier(Plugin):
    """One entry of ``notifiers:``: delivers a :class:`Notification`.

    The core decides whether to notify (``on``, ``failure_threshold``, ``remind_every``)
    and records the outcome; :meth:`send` only delivers, and raises
    :class:`angles.ServiceError` naming the service and the reason when it cannot.
    """

    kind = "notifier"
    #: The ``on`` list used when the pipeline entry gives none.
    default_on: ClassVar[tuple[str, ...]] = ("warning", "error", "recovery")

    default_retries: ClassVar[int] = 2

    @property
    def retries(self) -> int:
        """Attempts after a temporary failure (``retries``, default 2)."""
        return int(self.config.get("retries", self.default_retries))

    def send(self, notification: Notification) -> None:
        """Deliver the notification or raise :class:`angles.ServiceError`."""
        raise NotImplementedError

    def start(self, report: RunReport) -> None:
        """Say that a run has begun (``report`` holds its pipeline and start time).

        Called before the first check, only for notifiers that hear every run
        (``on: [always]``), so that a service timing runs also sees one that hangs.
        Does nothing unless a notifier overrides it; raises :class:`angles.ServiceError`.
        """


def format_duration(delta: timedelta) -> str:
    """``3h 12m``, ``45m``, ``20s``."""
    seconds = int(delta.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if not parts:
        parts.append(f"{seconds}s")
    return " ".join(parts)
