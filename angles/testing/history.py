"""A state store filled with the runs of a month, for tests of what reads the history.

:func:`record_history` records real :class:`~angles.core.report.RunReport` objects through
the state store's own API, so the rows (and the check states they advance) are exactly
what ``angles run`` leaves: warnings and errors, recoveries, a sync backlog that rises
and falls, a table that grows, a failed backup and notifications that could not be sent.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from angles.core.report import BackupRun, CheckRun, NotificationRun, RunReport
from angles.core.results import Status

if TYPE_CHECKING:
    from angles.state.store import StateStore

#: The sync_backlog thresholds of the recorded ``sync`` check.
WARN_ABOVE, ERROR_ABOVE = 10, 50
TABLE = "decision_vault"


def record_history(
    store: StateStore,
    pipeline: str = "production",
    *,
    runs: int = 60,
    days: float = 30,
    now: datetime | None = None,
) -> list[RunReport]:
    """Record ``runs`` runs spread evenly over the ``days`` before ``now``; oldest first.

    The ``sync`` backlog rises past the error threshold and falls back twice, and is a
    warning again at the end; ``notion`` fails for a stretch of runs and recovers; one
    backup fails; the ``slack`` notifier fails now and then.
    """
    now = now or datetime.now(UTC)
    step = timedelta(days=days) / runs
    first = now - step * runs
    reports = [_run(pipeline, index, runs, first + step * (index + 0.5)) for index in range(runs)]
    with store.transaction():
        for report in reports:
            store.record_run(report, report.to_dict())
    return reports


def backlog_at(index: int, runs: int) -> int:
    """The ``sync`` check's unsynced records in run ``index``: it rises past the error
    threshold and falls back twice, and is rising again (a warning) at the newest run."""
    return round(36 - 34 * math.cos(3.6 * math.pi * index / max(runs - 1, 1)))


def _run(pipeline: str, index: int, runs: int, started: datetime) -> RunReport:
    phase = index / max(runs - 1, 1)
    unsynced = backlog_at(index, runs)
    checks = [
        CheckRun("supabase", "supabase", Status.OK, "1 table readable", 0.12 + 0.05 * phase),
        _notion(phase),
        CheckRun(
            "sync",
            "sync_backlog",
            _backlog_status(unsynced),
            _backlog_message(unsynced),
            0.08,
            {"unsynced": unsynced, "warn_above": WARN_ABOVE, "error_above": ERROR_ABOVE},
        ),
    ]
    backups = [_backup(index, runs, started)]
    report = RunReport(
        pipeline, started, duration_seconds=1.2 + 0.8 * phase + (index % 5) * 0.1, checks=checks
    )
    report.backups = backups
    if report.status is not Status.OK:
        failed = index % 7 == 3
        report.notifications = [
            NotificationRun(
                "slack",
                "error" if failed else "sent",
                "Slack: HTTP 500 from chat.postMessage (check the webhook URL)" if failed else None,
            )
        ]
    return report


def _notion(phase: float) -> CheckRun:
    if 0.70 <= phase < 0.78:
        return CheckRun(
            "notion",
            "notion",
            Status.ERROR,
            "Notion: reading the database: HTTP 503 <service unavailable> & no answer",
            30.0,
        )
    return CheckRun("notion", "notion", Status.OK, "the database answers", 0.3)


def _backlog_status(unsynced: int) -> Status:
    if unsynced > ERROR_ABOVE:
        return Status.ERROR
    return Status.WARNING if unsynced > WARN_ABOVE else Status.OK


def _backlog_message(unsynced: int) -> str:
    if unsynced > ERROR_ABOVE:
        return f"{unsynced} unsynced records (error above {ERROR_ABOVE})"
    if unsynced > WARN_ABOVE:
        return f"{unsynced} unsynced records (warning above {WARN_ABOVE})"
    return f"{unsynced} unsynced records"


def _backup(index: int, runs: int, started: datetime) -> BackupRun:
    if index == runs * 55 // 100:
        return BackupRun(
            TABLE,
            Status.ERROR,
            message=f"reading {TABLE!r} failed: Supabase: no answer within 30s",
            duration_seconds=30.0,
        )
    records = 2400 + index * 600 // max(runs, 1)
    stamp = started.strftime("%Y-%m-%d_%H-%M-%S")
    files = [
        {"sink": "github", "name": f"{TABLE}_{stamp}.json.gz", "size": records * 92},
        {"sink": "local", "name": f"{TABLE}_{stamp}.json", "size": records * 305},
    ]
    return BackupRun(TABLE, Status.OK, records, files, duration_seconds=0.6)
