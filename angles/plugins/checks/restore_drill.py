"""The ``restore_drill`` check: can the newest backup of each table really be restored?

.. code-block:: yaml

    checks:
      - name: drill
        type: restore_drill
        backup: vault          # a backups entry: each of its tables
        sink: github           # default: the entry's first sink
        max_age: 26h           # error when the newest backup is older
        shrink_warn: 10%       # warning when a live table holds that much fewer rows

For each table it fetches the newest backup from the sink, verifies its checksum while
loading it into a scratch SQLite database (deleted afterwards), reads every row back and
compares it with the file, and counts the live table's rows. It never writes to the live
database or to a sink. "A backup you have never restored is not a backup."
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from angles import AnglesError, Check, CheckResult, Database, Status, hookimpl
from angles.helpers import format_duration, parse_duration, plural

_PERCENT = r"^\s*\d+(\.\d+)?\s*%\s*$"
DEFAULT_SHRINK_WARN = "10%"


@dataclass
class TableDrill:
    """What the drill found for one table."""

    table: str
    status: Status
    message: str
    details: dict[str, Any]


class RestoreDrillCheck(Check):
    """Restores each table's newest backup into a scratch database and reads it back."""

    type = "restore_drill"
    description = "The newest backup of each table of a backup entry restores, whole and as stored."
    sink_keys = ("sink",)
    backup_keys = ("backup",)
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["backup"],
        "properties": {
            "backup": {
                "type": "string",
                "minLength": 1,
                "description": "The entry of backups: whose tables to drill.",
            },
            "sink": {
                "type": "string",
                "minLength": 1,
                "description": "The sink to fetch from (default: the entry's first sink).",
            },
            "max_age": {
                "type": "string",
                "pattern": r"^\s*\d+\s*(s|m|h|d|w)\s*$",
                "description": "An error when the newest backup is older than this (e.g. 26h).",
            },
            "shrink_warn": {
                "type": "string",
                "pattern": _PERCENT,
                "description": "A warning when a live table holds this much fewer rows than "
                "its newest backup (default 10%).",
            },
        },
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        if float(config.get("shrink_warn", DEFAULT_SHRINK_WARN).strip().rstrip("%")) > 100:
            return [("shrink_warn", "must be at most 100%")]
        return []

    def run(self) -> CheckResult:
        entry = self._entry()
        sink_name = self.config.get("sink") or entry["sinks"][0]
        sink = self.context.sink(sink_name)
        newest = newest_backups(entry, [f.name for f in sink.list()])
        if not newest:
            return CheckResult.error(
                f"no backup of {self.config['backup']!r} in {sink_name!r} to restore: "
                "has the backup ever run?",
                sink=sink_name,
                tables={},
            )
        drills = [self._drill(entry, sink, t, *found) for t, found in newest.items()]
        details = {"sink": sink_name, "tables": {d.table: d.details for d in drills}}
        worst = max((d.status for d in drills), key=lambda s: s.severity)
        failing = [d for d in drills if d.status is not Status.OK]
        if not failing:
            message = "; ".join(d.message for d in drills)
            return CheckResult.ok(message, **details)
        message = "; ".join(d.message for d in failing)
        if worst is Status.ERROR:
            return CheckResult.error(message, **details)
        return CheckResult.warning(message, **details)

    def _entry(self) -> dict[str, Any]:
        for entry in self.context.pipeline.backups:
            if entry.get("name") == self.config["backup"]:
                return entry
        raise AnglesError(f"no entry of backups: is named {self.config['backup']!r}")

    def _drill(
        self, entry: dict[str, Any], sink: Any, table: str, taken: datetime, name: str
    ) -> TableDrill:
        from angles import BackupError, ServiceError
        from angles.helpers import drill_backup

        age = max(datetime.now(UTC) - taken, timedelta(0))
        details: dict[str, Any] = {"backup": name, "age_seconds": int(age.total_seconds())}
        try:
            outcome = drill_backup(sink, name)
        except (BackupError, ServiceError) as exc:
            details["error"] = str(exc)
            return TableDrill(
                table, Status.ERROR, f"{table}: the newest backup does not restore: {exc}", details
            )
        details.update(records=outcome.records, verified=outcome.verified)
        details["seconds"] = round(outcome.seconds, 3)
        database: Database = self.context.connection(entry["connection"])  # type: ignore[assignment]
        live = database.count(table)
        details["live_count"] = live
        old = f"{format_duration(age)} old"
        if "max_age" in self.config and age > parse_duration(self.config["max_age"]):
            limit = self.config["max_age"].strip()
            return TableDrill(
                table,
                Status.ERROR,
                f"{table}: the newest backup, {name}, is {old} (max {limit}): "
                "have the backups stopped?",
                details,
            )
        shrink = float(self.config.get("shrink_warn", DEFAULT_SHRINK_WARN).strip().rstrip("%"))
        if outcome.records and live < outcome.records * (1 - shrink / 100):
            fewer = 100 * (outcome.records - live) / outcome.records
            return TableDrill(
                table,
                Status.WARNING,
                f"{table}: the live table holds {live} rows, {fewer:.0f}% fewer than the "
                f"{outcome.records} of its newest backup {name} (warning at {shrink:g}%): "
                "were rows deleted?",
                details,
            )
        unverified = "" if outcome.verified else " (no checksum to verify: an older file)"
        return TableDrill(
            table,
            Status.OK,
            f"{table}: {name} ({old}) restores, {plural(outcome.records, 'row')} read back "
            f"as stored{unverified}; the live table has {live}",
            details,
        )


def newest_backups(entry: Mapping[str, Any], names: list[str]) -> dict[str, tuple[datetime, str]]:
    """Table -> (time, file name) of the entry's newest set among ``names``: the tables
    the entry covers whose file carries the newest time (a table dropped since is left out)."""
    from angles.helpers import BackupName, TableSelection

    selection = TableSelection.of(entry)
    covered = [
        (parsed.timestamp, parsed.table, name)
        for name in names
        if (parsed := BackupName.parse(name))
        and not parsed.pre_restore
        and selection.covers(parsed.table)
    ]
    if not covered:
        return {}
    newest = max(stamp for stamp, _, _ in covered)
    return {table: (stamp, name) for stamp, table, name in sorted(covered) if stamp == newest}


@hookimpl
def angles_register_checks(register: Any) -> None:
    register(RestoreDrillCheck)
