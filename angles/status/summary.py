"""What the status page and the metrics show, gathered from the state store.

Only the runs of the last ``days`` are read (one query bounded by time), plus the newest
run whatever its age, so the page stays quick on a store of years of runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from angles.core.results import Status

if TYPE_CHECKING:
    from angles.core.context import Context
    from angles.state.store import StateStore

DEFAULT_DAYS = 30

#: A point of a chart: when, and the value then.
Sample = tuple[datetime, float]


@dataclass(frozen=True)
class CheckView:
    """A check as it stands: its newest result and how long it has been failing."""

    name: str
    type: str
    status: Status | None = None  # None: it has not run yet
    message: str = ""
    duration_seconds: float | None = None
    at: datetime | None = None
    failing_since: datetime | None = None
    failing_runs: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredBackup:
    """A backup file a run stored: which entry, table and sink, when, how big."""

    backup: str
    table: str
    sink: str
    name: str
    at: datetime
    records: int | None
    size: int | None


@dataclass(frozen=True)
class Delivery:
    """A notification that one notifier sent, or failed to send, after a run."""

    at: datetime
    notifier: str
    status: Status
    message: str = ""


@dataclass(frozen=True)
class Day:
    """How many runs of one day ended ok, with warnings or with errors."""

    day: date
    ok: int = 0
    warning: int = 0
    error: int = 0

    @property
    def total(self) -> int:
        return self.ok + self.warning + self.error

    @property
    def status(self) -> Status | None:
        """The worst status of the day's runs (None without runs)."""
        if self.error:
            return Status.ERROR
        return Status.WARNING if self.warning else Status.OK if self.ok else None


@dataclass
class Summary:
    """Everything the page and the metrics need about one pipeline."""

    pipeline: str
    now: datetime
    since: datetime
    days: int
    runs: list[dict[str, Any]]  # within the window, newest first
    latest: dict[str, Any] | None  # the newest run, however old
    checks: list[CheckView]
    timeline: list[Day]
    backlog: dict[str, list[Sample]]  # sync_backlog check -> unsynced records
    thresholds: dict[str, dict[str, float]]  # sync_backlog check -> warn_above, error_above
    records: dict[str, list[Sample]]  # table -> records in each backup
    sizes: dict[str, dict[str, list[Sample]]]  # table -> sink -> bytes stored
    durations: list[Sample]
    newest_backups: list[StoredBackup]
    notifications: list[Delivery]  # the newest delivery of each notifier
    failed_notifications: list[Delivery]  # within the window, newest first

    @property
    def latest_at(self) -> datetime | None:
        return moment(self.latest["started_at"]) if self.latest else None

    @property
    def latest_status(self) -> Status | None:
        return Status(self.latest["status"]) if self.latest else None


def window_start(now: datetime, days: int) -> datetime:
    """Midnight (UTC) that starts the last ``days`` calendar days, today included."""
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    return datetime.combine(first, time(0), UTC)


def collect(
    context: Context, store: StateStore, days: int = DEFAULT_DAYS, now: datetime | None = None
) -> Summary:
    """The summary of the context's pipeline from ``store``.

    Stored reports were redacted when they were recorded; the texts shown (messages)
    are redacted again with the pipeline's current secrets.
    """
    pipeline = context.pipeline
    now = now or datetime.now(UTC)
    since = window_start(now, days)
    runs = store.runs(pipeline.name, None, since=since)
    latest = runs[0] if runs else next(iter(store.runs(pipeline.name, 1)), None)
    newest_first = runs if runs or latest is None else [latest]
    stored = [list(_stored_backups(run)) for run in newest_first]
    oldest_first = runs[::-1]
    backlog, thresholds = _backlog(oldest_first)
    records, sizes = _backup_series(stored[::-1] if runs else [])
    deliveries = list(_deliveries(newest_first, context.redact.text))
    return Summary(
        pipeline=pipeline.name,
        now=now,
        since=since,
        days=days,
        runs=runs,
        latest=latest,
        checks=_checks(context, newest_first, store.check_states(pipeline.name)),
        timeline=_timeline(runs, since, days),
        backlog=backlog,
        thresholds=thresholds,
        records=records,
        sizes=sizes,
        durations=[(moment(r["started_at"]), float(r["duration_seconds"])) for r in oldest_first],
        newest_backups=_newest(stored),
        notifications=_newest_deliveries(deliveries),
        failed_notifications=[d for d in deliveries if d.status is Status.ERROR and d.at >= since],
    )


def moment(stamp: str) -> datetime:
    """A report's ``2026-11-26T03:00:00Z`` as an aware datetime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _checks(
    context: Context, runs: list[dict[str, Any]], states: dict[str, Any]
) -> list[CheckView]:
    """Each check of the pipeline with its newest result (the runs are newest first)."""
    newest: dict[str, tuple[dict[str, Any], datetime]] = {}
    for run in runs:
        for check in run.get("checks", []):
            newest.setdefault(check["name"], (check, moment(run["started_at"])))
    redact = context.redact.text
    views = []
    for entry in context.pipeline.checks:
        name = entry["name"]
        state = states.get(name)
        failing = state is not None and state.failing
        view = CheckView(
            name,
            entry.get("type", ""),
            failing_since=state.failing_since if failing else None,
            failing_runs=state.consecutive_failures if failing else 0,
        )
        if name in newest:
            check, at = newest[name]
            view = replace(
                view,
                status=Status(check["status"]),
                message=redact(check.get("message") or ""),
                duration_seconds=check.get("duration_seconds"),
                at=at,
                details=check.get("details") or {},
            )
        elif state is not None:  # it last ran before the window
            message = redact(state.message or "")
            view = replace(view, status=state.status, message=message, at=state.updated_at)
        views.append(view)
    return views


def _timeline(runs: list[dict[str, Any]], since: datetime, days: int) -> list[Day]:
    counts: dict[date, dict[str, int]] = {}
    for run in runs:
        day = moment(run["started_at"]).date()
        tally = counts.setdefault(day, {"ok": 0, "warning": 0, "error": 0})
        tally[run["status"]] = tally.get(run["status"], 0) + 1
    first = since.date()
    return [
        Day(day, **counts.get(day, {}))
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]


def _backlog(
    runs: list[dict[str, Any]],
) -> tuple[dict[str, list[Sample]], dict[str, dict[str, float]]]:
    series: dict[str, list[Sample]] = {}
    thresholds: dict[str, dict[str, float]] = {}
    for run in runs:
        at = moment(run["started_at"])
        for check in run.get("checks", []):
            details = check.get("details") or {}
            if check.get("type") != "sync_backlog" or not is_number(details.get("unsynced")):
                continue
            series.setdefault(check["name"], []).append((at, float(details["unsynced"])))
            thresholds[check["name"]] = {
                key: float(details[key])
                for key in ("warn_above", "error_above")
                if is_number(details.get(key))
            }
    return series, thresholds


def _backup_series(
    runs: list[list[StoredBackup]],
) -> tuple[dict[str, list[Sample]], dict[str, dict[str, list[Sample]]]]:
    """Records per table and bytes per table and sink, from each run's stored files."""
    records: dict[str, list[Sample]] = {}
    sizes: dict[str, dict[str, list[Sample]]] = {}
    for files in runs:
        seen: set[str] = set()
        for stored in files:
            if stored.records is not None and stored.table not in seen:
                records.setdefault(stored.table, []).append((stored.at, float(stored.records)))
                seen.add(stored.table)
            if stored.size is not None:
                by_sink = sizes.setdefault(stored.table, {})
                by_sink.setdefault(stored.sink, []).append((stored.at, float(stored.size)))
    return records, sizes


def _newest(runs: list[list[StoredBackup]]) -> list[StoredBackup]:
    """The newest file of each backup entry, table and sink (the runs are newest first)."""
    newest: dict[tuple[str, str, str], StoredBackup] = {}
    for files in runs:
        for stored in files:
            newest.setdefault((stored.backup, stored.table, stored.sink), stored)
    return sorted(newest.values(), key=lambda s: (s.table, s.sink, s.backup))


def _stored_backups(run: dict[str, Any]) -> Iterator[StoredBackup]:
    """The files a run stored, each with its table (read from the file name)."""
    from angles.backup.format import BackupName

    started = moment(run["started_at"])
    for backup in run.get("backups", []):
        for file in backup.get("files", []):
            parsed = BackupName.parse(file["name"])
            if parsed is not None and parsed.pre_restore:
                continue
            yield StoredBackup(
                backup=backup["name"],
                table=parsed.table if parsed else backup["name"],
                sink=file["sink"],
                name=file["name"],
                at=parsed.timestamp if parsed else started,
                records=file.get("record_count", backup.get("record_count")),
                size=file.get("size"),
            )


def _deliveries(runs: list[dict[str, Any]], redact: Callable[[str], str]) -> Iterator[Delivery]:
    for run in runs:
        at = moment(run["started_at"])
        for sent in run.get("notifications", []):
            status = Status.ERROR if sent.get("status") == "error" else Status.OK
            yield Delivery(at, sent["notifier"], status, redact(sent.get("message") or ""))


def _newest_deliveries(deliveries: list[Delivery]) -> list[Delivery]:
    """The newest delivery of each notifier (the deliveries are newest first)."""
    newest: dict[str, Delivery] = {}
    for delivery in deliveries:
        newest.setdefault(delivery.notifier, delivery)
    return sorted(newest.values(), key=lambda d: d.notifier)


def is_number(value: Any) -> bool:
    """Whether a detail is a number (JSON booleans are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
