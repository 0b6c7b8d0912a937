"""The state store: every run's report and each check's current state.

SQLite by default (the pipeline's ``state:`` path); the schema is created and migrated
by angles itself.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from angles.core.context import Context
from angles.core.report import RunReport, format_timestamp

SCHEMA_VERSION = 1
MIGRATIONS = {
    1: [
        """CREATE TABLE IF NOT EXISTS runs (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               pipeline TEXT NOT NULL,
               started_at TEXT NOT NULL,
               status TEXT NOT NULL,
               duration_seconds REAL NOT NULL,
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
}


def connect(location: str) -> sqlite3.Connection:
    """Open the state store at a file path, creating and migrating its schema."""
    path = Path(location)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30)
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with connection:
            for statement in MIGRATIONS[target]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {target}")
    return connection


def record_run(context: Context, report: RunReport) -> None:
    """Keep the run's report (secrets redacted). A ``--test`` run changes nothing."""
    if report.test:
        return
    from angles.core.logging import redactor

    document = redactor()(report.to_dict())
    with closing(connect(context.pipeline.state)) as store, store:
        store.execute(
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


def recent_runs(location: str, pipeline: str, limit: int = 20) -> list[dict[str, Any]]:
    """The newest runs of a pipeline, newest first, as stored reports."""
    with closing(connect(location)) as store:
        rows = store.execute(
            "SELECT report FROM runs WHERE pipeline = ? ORDER BY id DESC LIMIT ?", (pipeline, limit)
        ).fetchall()
    return [json.loads(row[0]) for row in rows]
