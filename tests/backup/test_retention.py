"""Which old backups a sink lets go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from angles.backup.format import BackupName
from angles.backup.retention import expired

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def names(days_ago, table="t", pre_restore=False):
    return [str(BackupName(table, NOW - timedelta(days=d), pre_restore)) for d in days_ago]


def test_nothing_expires_without_retention_keys():
    assert expired(names(range(100)), "t", {}, NOW) == []


def test_retention_days():
    files = names([0, 1, 29, 31, 60])
    assert expired(files, "t", {"retention_days": 30}, NOW) == sorted(names([31, 60]))


def test_the_newest_backup_is_always_kept():
    files = names([40, 50])
    assert expired(files, "t", {"retention_days": 30}, NOW) == names([50])


def test_other_tables_and_other_files_are_left_alone():
    files = [*names([60], table="other"), "notes.txt", *names([0, 60])]
    assert expired(files, "t", {"retention_days": 30}, NOW) == names([60])


def test_keep_daily_weekly_monthly_like_restic():
    # Two backups a day for 120 days.
    files = names([d + h for d in range(120) for h in (0, 0.5)])
    kept = set(files) - set(
        expired(files, "t", {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 3}, NOW)
    )
    days = {BackupName.parse(n).timestamp.date() for n in kept}
    assert len([n for n in kept if BackupName.parse(n).timestamp > NOW - timedelta(days=7)]) == 7
    assert len(days) == len(kept)  # never two of one day
    months = {
        (BackupName.parse(n).timestamp.year, BackupName.parse(n).timestamp.month) for n in kept
    }
    assert len(months) == 3
    assert len(kept) <= 7 + 4 + 3


def test_keep_rules_combine_with_retention_days():
    files = names(range(0, 100, 10))
    doomed = expired(files, "t", {"retention_days": 25, "keep_monthly": 4}, NOW)
    kept = set(files) - set(doomed)
    assert set(names([0, 10, 20])) <= kept
    assert len(kept) < len(files)


def test_pre_restore_backups_are_their_own_series():
    files = names([0, 45]) + names([35, 40], pre_restore=True)
    doomed = expired(files, "t", {"retention_days": 30}, NOW)
    # The newest pre-restore backup survives although older than 30 days.
    assert doomed == sorted(names([45]) + names([40], pre_restore=True))
