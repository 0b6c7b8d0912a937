"""The state store: every run's report, each check's current state, alert marks,
scheduler slots and locks.

SQLite by default (the pipeline's ``state:`` path); PostgreSQL when ``state`` is a
``postgresql://`` URL, with the tables in a schema named ``angles``. Angles creates and
migrates the schema itself and keeps its version in the ``angles_schema`` table.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from angles.core.errors import AnglesError
from angles.core.report import CheckRun, RunReport, format_timestamp
from angles.core.results import Status
from angles.core.text import one_line

if TYPE_CHECKING:
    from angles.core.context import Context

SCHEMA_VERSION = 3
POSTGRES_SCHEMA = "angles"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# Any constant works: it only has to be the same for every angles process.
_MIGRATION_LOCK_KEY = 0x616E676C6573

#: Statements per schema version. ``{id}`` and ``{real}`` differ between the backends.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE IF NOT EXISTS runs (
               id {id},
               pipeline TEXT NOT NULL,
               started_at TEXT NOT NULL,
               status TEXT NOT NULL,
               duration_seconds {real} NOT NULL,
               report TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, started_at)",
        """CREATE TABLE IF NOT EXISTS check_states (
               pipeline TEXT NOT NULL,
               check_name TEXT NOT NULL,
               status TEXT NOT NULL,
               failing_since TEXT,
               consecutive_failures INTEGER NOT NULL DEFAULT 0,
               last_alert_at TEXT,
               PRIMARY KEY (pipeline, check_name))""",
    ],
    2: [
        # The last alert is kept per notifier now (table alerts).
        "ALTER TABLE check_states DROP COLUMN last_alert_at",
        "ALTER TABLE check_states ADD COLUMN message TEXT",
        "ALTER TABLE check_states ADD COLUMN updated_at TEXT",
        """CREATE TABLE IF NOT EXISTS alerts (
               pipeline TEXT NOT NULL,
               check_name TEXT NOT NULL,
               notifier TEXT NOT NULL,
               alerted_at TEXT NOT NULL,
               status TEXT NOT NULL,
               PRIMARY KEY (pipeline, check_name, notifier))""",
        """CREATE TABLE IF NOT EXISTS schedules (
               pipeline TEXT PRIMARY KEY,
               last_scheduled_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS locks (
               name TEXT PRIMARY KEY,
               owner TEXT NOT NULL,
               expires_at TEXT NOT NULL)""",
    ],
    # Since when a lock is held, for the message another run prints.
    3: ["ALTER TABLE locks ADD COLUMN acquired_at TEXT"],
}
_TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"},
    "postgresql": {
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "real": "DOUBLE PRECISION",
    },
}


class StateError(AnglesError):
    """The state store cannot be opened, read or written."""


@dataclass
class CheckState:
    """What the store knows of a check: its last status and its current failing streak."""

    check: str
    status: Status
    failing_since: datetime | None = None
    consecutive_failures: int = 0
    message: str | None = None
    updated_at: datetime | None = None

    @property
    def failing(self) -> bool:
        return self.status is not Status.OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status.value,
            "failing_since": _stamp(self.failing_since),
            "consecutive_failures": self.consecutive_failures,
            "message": self.message,
            "updated_at": _stamp(self.updated_at),
        }


@dataclass(frozen=True)
class LockRecord:
    """A row of the ``locks`` table: who holds a lock, since when, and until when."""

    name: str
    owner: str
    acquired_at: datetime | None
    expires_at: datetime


@dataclass
class AlertMark:
    """The last time a notifier alerted about a check, and the status it reported."""

    check: str
    notifier: str
    alerted_at: datetime
    status: Status


def advance(previous: CheckState | None, check: CheckRun, at: datetime) -> CheckState:
    """The state of a check after a run that started at ``at``."""
    if check.status is Status.OK:
        return CheckState(check.name, check.status, None, 0, check.message, at)
    if previous is not None and previous.failing and previous.failing_since is not None:
        since, count = previous.failing_since, previous.consecutive_failures + 1
    else:
        since, count = at, 1
    return CheckState(check.name, check.status, since, count, check.message, at)


def is_postgres(location: str) -> bool:
    """Whether ``location`` is a PostgreSQL URL rather than a SQLite path."""
    return location.startswith(POSTGRES_SCHEMES)


def describe(location: str) -> str:
    """The location without any password, for messages."""
    if "://" not in location:
        return location
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(location)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return location


class StateStore:
    """An open state store. Use :meth:`open` (or a ``with`` block around it).

    One store object belongs to one thread; open another for another thread.
    """

    def __init__(self, connection: Any, backend: str, location: str) -> None:
        self._connection = connection
        self.backend = backend
        self.location = location

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, location: str, *, connect_timeout: float = 10.0) -> StateStore:
        """Connect to the store at a SQLite path or a ``postgresql://`` URL and migrate it."""
        if is_postgres(location):
            store = cls(_connect_postgres(location, connect_timeout), "postgresql", location)
        elif "://" in location:
            raise StateError(
                f"unsupported state store {describe(location)!r}",
                hint="state: takes a SQLite file path or a postgresql:// URL",
            )
        else:
            store = cls(_connect_sqlite(location, connect_timeout), "sqlite", location)
        try:
            store._migrate()
        except Exception:
            store.close()
            raise
        return store

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- runs ----------------------------------------------------------------------------

    def record_run(self, report: RunReport, document: dict[str, Any]) -> None:
        """Keep a run's report (``document``, already redacted) and advance its checks' states."""
        with self.transaction():
            self._execute(
                "INSERT INTO runs (pipeline, started_at, status, duration_seconds, report)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    report.pipeline,
                    format_timestamp(report.started_at),
                    report.status.value,
                    report.duration_seconds,
                    json.dumps(document, ensure_ascii=False),
                ),
            )
            previous = self.check_states(report.pipeline)
            self.save_check_states(
                report.pipeline,
                [advance(previous.get(c.name), c, report.started_at) for c in report.checks],
            )

    def runs(
        self,
        pipeline: str,
        limit: int | None = 20,
        check: str | None = None,
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Stored reports of a pipeline, newest first; with ``check``, only runs that ran it;
        with ``since``, only runs that started at or after it (read through the index)."""
        query, params = "SELECT report FROM runs WHERE pipeline = ?", (pipeline,)
        if since is not None:
            query += " AND started_at >= ?"
            params += (format_timestamp(since.astimezone(UTC)),)
        cursor = self._execute(query + " ORDER BY id DESC", params)
        found: list[dict[str, Any]] = []
        for (text,) in cursor:
            report = json.loads(text)
            if check is not None and not any(c.get("name") == check for c in report["checks"]):
                continue
            found.append(report)
            if limit is not None and len(found) >= limit:
                break
        return found

    # -- check states and alerts ---------------------------------------------------------

    def check_states(self, pipeline: str) -> dict[str, CheckState]:
        """Each check's stored state, by check name."""
        rows = self._execute(
            "SELECT check_name, status, failing_since, consecutive_failures, message, updated_at"
            " FROM check_states WHERE pipeline = ?",
            (pipeline,),
        ).fetchall()
        return {
            name: CheckState(name, Status(status), _moment(since), count, message, _moment(updated))
            for name, status, since, count, message, updated in rows
        }

    def save_check_states(self, pipeline: str, states: Iterable[CheckState]) -> None:
        """Replace the stored state of each check given."""
        for state in states:
            self._execute(
                "INSERT INTO check_states (pipeline, check_name, status, failing_since,"
                " consecutive_failures, message, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (pipeline, check_name) DO UPDATE SET status = excluded.status,"
                " failing_since = excluded.failing_since,"
                " consecutive_failures = excluded.consecutive_failures,"
                " message = excluded.message, updated_at = excluded.updated_at",
                (
                    pipeline,
                    state.check,
                    state.status.value,
                    _stamp(state.failing_since),
                    state.consecutive_failures,
                    state.message,
                    _stamp(state.updated_at),
                ),
            )

    def alert_marks(self, pipeline: str) -> dict[tuple[str, str], AlertMark]:
        """The last alert per (check, notifier)."""
        rows = self._execute(
            "SELECT check_name, notifier, alerted_at, status FROM alerts WHERE pipeline = ?",
            (pipeline,),
        ).fetchall()
        return {
            (check, notifier): AlertMark(check, notifier, _moment(at), Status(status))  # type: ignore[arg-type]
            for check, notifier, at, status in rows
        }

    def mark_alerted(self, pipeline: str, marks: Iterable[AlertMark]) -> None:
        """Remember that notifiers alerted about checks."""
        with self.transaction():
            for mark in marks:
                self._execute(
                    "INSERT INTO alerts (pipeline, check_name, notifier, alerted_at, status)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (pipeline, check_name, notifier)"
                    " DO UPDATE SET alerted_at = excluded.alerted_at, status = excluded.status",
                    (
                        pipeline,
                        mark.check,
                        mark.notifier,
                        _stamp(mark.alerted_at),
                        mark.status.value,
                    ),
                )

    # -- the scheduler ------------------------------------------------------------------

    def last_scheduled(self, pipeline: str) -> datetime | None:
        """The newest scheduled time a scheduler claimed for this pipeline."""
        row = self._execute(
            "SELECT last_scheduled_at FROM schedules WHERE pipeline = ?", (pipeline,)
        ).fetchone()
        return _moment(row[0]) if row else None

    def claim_slot(self, pipeline: str, slot: datetime) -> bool:
        """Claim the scheduled time ``slot``: True unless it (or a later one) was claimed."""
        with self.transaction():
            cursor = self._execute(
                "INSERT INTO schedules (pipeline, last_scheduled_at) VALUES (?, ?)"
                " ON CONFLICT (pipeline) DO UPDATE SET last_scheduled_at = excluded.last_scheduled_at"
                " WHERE schedules.last_scheduled_at < excluded.last_scheduled_at",
                (pipeline, _stamp(slot)),
            )
            return cursor.rowcount == 1

    def acquire_lock(self, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        """Take the lock ``name`` until ``now + ttl`` unless someone else holds it unexpired."""
        with self.transaction():
            self._execute(
                "INSERT INTO locks (name, owner, expires_at, acquired_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at,"
                " acquired_at = CASE WHEN locks.owner = excluded.owner"
                " THEN locks.acquired_at ELSE excluded.acquired_at END"
                " WHERE locks.expires_at <= ? OR locks.owner = excluded.owner",
                (name, owner, _stamp(now + ttl), _stamp(now), _stamp(now)),
            )
            row = self._execute("SELECT owner FROM locks WHERE name = ?", (name,)).fetchone()
        return bool(row) and row[0] == owner

    def take_over_lock(
        self, name: str, previous: str, owner: str, now: datetime, ttl: timedelta
    ) -> bool:
        """Take the lock from ``previous`` (a holder known to be gone), only if it still
        holds it: of several processes taking over at once, exactly one succeeds."""
        with self.transaction():
            cursor = self._execute(
                "UPDATE locks SET owner = ?, acquired_at = ?, expires_at = ?"
                " WHERE name = ? AND owner = ?",
                (owner, _stamp(now), _stamp(now + ttl), name, previous),
            )
            return cursor.rowcount == 1

    def lock_record(self, name: str) -> LockRecord | None:
        """The row of the lock ``name``, expired or not (None when nobody took it)."""
        row = self._execute(
            "SELECT owner, acquired_at, expires_at FROM locks WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        owner, acquired_at, expires_at = row
        return LockRecord(name, owner, _moment(acquired_at), _moment(expires_at))  # type: ignore[arg-type]

    def renew_lock(self, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        """Extend a lock this owner holds; False when it was lost."""
        with self.transaction():
            cursor = self._execute(
                "UPDATE locks SET expires_at = ? WHERE name = ? AND owner = ?",
                (_stamp(now + ttl), name, owner),
            )
            return cursor.rowcount == 1

    def release_lock(self, name: str, owner: str) -> None:
        """Give a lock back (nothing happens when this owner does not hold it)."""
        with self.transaction():
            self._execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    def lock_owner(self, name: str, now: datetime) -> str | None:
        """Who holds the lock ``name`` now (None when free or expired)."""
        row = self._execute(
            "SELECT owner FROM locks WHERE name = ? AND expires_at > ?", (name, _stamp(now))
        ).fetchone()
        return row[0] if row else None

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (nested calls join the outer one)."""
        if self.backend == "postgresql":
            with self._connection.transaction():
                yield
            return
        if self._connection.in_transaction:
            yield
            return
        # IMMEDIATE takes the write lock at once, so concurrent writers queue, not fail.
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def _execute(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        if self.backend == "postgresql":
            return self._connection.execute(statement.replace("?", "%s"), params)
        return self._connection.execute(statement, params)

    def schema_version(self) -> int:
        """The schema version the store is at."""
        row = self._execute("SELECT max(version) FROM angles_schema").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        with self.transaction():
            if self.backend == "postgresql":
                # Two processes opening a new store at once must not both create it.
                self._execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK_KEY,))
                self._execute(f"CREATE SCHEMA IF NOT EXISTS {POSTGRES_SCHEMA}")
            self._execute("CREATE TABLE IF NOT EXISTS angles_schema (version INTEGER NOT NULL)")
            version = self.schema_version()
            if version == 0 and self.backend == "sqlite":
                # Stores written before the version table kept it in user_version.
                version = self._connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"the state store {describe(self.location)} has schema version {version}, "
                    f"newer than this angles understands ({SCHEMA_VERSION})",
                    hint="upgrade angles",
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    self._execute(statement.format(**_TYPES[self.backend]))
                self._execute("INSERT INTO angles_schema (version) VALUES (?)", (target,))


def _connect_sqlite(location: str, timeout: float) -> sqlite3.Connection:
    path = Path(location)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened explicitly by StateStore.transaction.
        return sqlite3.connect(path, timeout=max(timeout, 30.0), isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(
            f"cannot open the state store {location}: {exc}",
            hint="check the state: path and that its folder is writable",
        ) from exc


def _connect_postgres(location: str, timeout: float) -> Any:
    import psycopg

    try:
        connection = psycopg.connect(
            location,
            autocommit=True,
            connect_timeout=max(1, int(timeout)),
            options=f"-c search_path={POSTGRES_SCHEMA}",
            application_name="angles",
        )
    except psycopg.Error as exc:
        detail = " ".join(str(exc).split())
        raise StateError(
            f"cannot connect to the state store {describe(location)}: {detail}",
            hint="check the state: URL, the server and the login",
        ) from exc
    return connection


def _stamp(moment: datetime | None) -> str | None:
    """UTC with microseconds and a ``Z``: equal-length strings that sort as times do."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def open_store(context: Context) -> StateStore:
    """The state store of the context's pipeline."""
    return StateStore.open(context.pipeline.state, connect_timeout=context.default_timeout)


def record_run(context: Context, report: RunReport) -> bool:
    """Keep the run's report (secrets redacted) and its checks' states, then write the
    pipeline's status page and metrics (``report:``, ``metrics:``) from the store.

    A ``--test`` run changes nothing. A store that cannot be written is logged, never
    raised: the run's result and exit code stand. Returns whether the run was recorded.
    """
    if report.test:
        return False
    document = context.redact(report.to_dict())
    try:
        with open_store(context) as store:
            store.record_run(report, document)
    except Exception as exc:
        context.logger("runs").error(
            "run not recorded", state=describe(context.pipeline.state), error=one_line(exc)
        )
        return False
    from angles.status import write_outputs

    write_outputs(context)
    return True
