"""Which backups a sink may delete: ``retention_days`` and ``keep_daily/weekly/monthly``.

The keys belong to every sink. Rules, applied to one table's backups in one sink, after a
new backup is stored:

* with no key set, nothing is deleted;
* a backup is kept if it is younger than ``retention_days``, or if it is the newest of one
  of the last ``keep_daily`` days (``keep_weekly`` ISO weeks, ``keep_monthly`` months)
  that have a backup, as restic's ``forget --keep-*`` counts them;
* the newest backup is always kept;
* pre-restore backups form their own series, so they never take a daily slot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from angles.backup.format import BackupName

RETENTION_KEYS = ("retention_days", "keep_daily", "keep_weekly", "keep_monthly")

_BUCKETS: dict[str, Callable[[datetime], Any]] = {
    "keep_daily": lambda moment: moment.date(),
    "keep_weekly": lambda moment: moment.isocalendar()[:2],
    "keep_monthly": lambda moment: (moment.year, moment.month),
}


def expired(
    names: Iterable[str], table: str, config: Mapping[str, Any], now: datetime
) -> list[str]:
    """The backups of ``table`` among ``names`` that the sink's retention lets go."""
    if not any(config.get(key) is not None for key in RETENTION_KEYS):
        return []
    series: dict[bool, list[tuple[datetime, str]]] = {}
    for name in names:
        parsed = BackupName.parse(name)
        if parsed and parsed.table == table:
            series.setdefault(parsed.pre_restore, []).append((parsed.timestamp, name))
    doomed: list[str] = []
    for files in series.values():
        files.sort(reverse=True)
        kept = {files[0][1]}
        days = config.get("retention_days")
        if days is not None:
            limit = now - timedelta(days=days)
            kept.update(name for moment, name in files if moment >= limit)
        for key, bucket in _BUCKETS.items():
            kept.update(_newest_per_bucket(files, bucket, config.get(key) or 0))
        doomed.extend(name for _, name in files if name not in kept)
    return sorted(doomed)


def _newest_per_bucket(
    files: list[tuple[datetime, str]], bucket: Callable[[datetime], Any], count: int
) -> list[str]:
    """The newest file of each of the ``count`` newest buckets (``files`` newest first)."""
    seen: set[Any] = set()
    kept = []
    for moment, name in files:
        if len(seen) >= count:
            break
        key = bucket(moment)
        if key not in seen:
            seen.add(key)
            kept.append(name)
    return kept
