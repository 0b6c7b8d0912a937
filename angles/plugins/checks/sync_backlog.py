"""The ``sync_backlog`` check: how many records are not yet synced into Notion."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from angles import Check, CheckResult, Database, FilterSyntaxError, hookimpl, parse_filter
from angles.helpers import format_duration, parse_duration, parse_timestamp


class SyncBacklogCheck(Check):
    """Counts the rows matching ``unsynced`` and compares them with two thresholds."""

    type = "sync_backlog"
    description = "Records not yet synced into Notion, under a warning and an error threshold."
    connection_type = Database
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["table", "unsynced"],
        "properties": {
            "table": {
                "type": "string",
                "minLength": 1,
                "description": "The table holding the records.",
            },
            "unsynced": {
                "type": "string",
                "description": "PostgREST filter matching unsynced rows, e.g. notion_synced=is.false.",
            },
            "warn_above": {
                "type": "integer",
                "minimum": 0,
                "description": "A warning when more rows than this are unsynced (default 10).",
            },
            "error_above": {
                "type": "integer",
                "minimum": 0,
                "description": "An error when more rows than this are unsynced (default 50).",
            },
            "max_age": {
                "type": "string",
                "pattern": r"^\s*\d+\s*(s|m|h|d|w)\s*$",
                "description": "An error when the oldest unsynced row is older than this (e.g. 1d).",
            },
            "age_column": {
                "type": "string",
                "description": "The column dating a row, for max_age (default created_at).",
            },
            "samples": {
                "type": "integer",
                "minimum": 0,
                "maximum": 100,
                "description": "How many unsynced primary keys to show in details (default 5).",
            },
        },
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = []
        try:
            parse_filter(config["unsynced"])
        except FilterSyntaxError as exc:
            problems.append(("unsynced", str(exc)))
        if config.get("warn_above", 10) > config.get("error_above", 50):
            problems.append(("warn_above", "must not be above error_above"))
        return problems

    def run(self) -> CheckResult:
        database: Database = self.connection  # type: ignore[assignment]
        table = self.config["table"]
        warn_above = self.config.get("warn_above", 10)
        error_above = self.config.get("error_above", 50)
        where = parse_filter(self.config["unsynced"])
        unsynced = database.count(table, where)
        details: dict[str, Any] = {
            "unsynced": unsynced,
            "warn_above": warn_above,
            "error_above": error_above,
        }
        age_problem = None
        if unsynced:
            age_problem = self._look_at_oldest(database, table, where, details)
        if unsynced > error_above:
            return CheckResult.error(
                f"{unsynced} unsynced records (error above {error_above})", **details
            )
        if age_problem:
            return CheckResult.error(age_problem, **details)
        if unsynced > warn_above:
            return CheckResult.warning(
                f"{unsynced} unsynced records (warning above {warn_above})", **details
            )
        return CheckResult.ok(f"{unsynced} unsynced records", **details)

    def _look_at_oldest(
        self, database: Database, table: str, where: Any, details: dict
    ) -> str | None:
        """Samples of unsynced keys, oldest first; a message when the oldest is too old."""
        age_column = self.config.get("age_column", "created_at")
        schema = database.describe(table)
        dated = age_column in schema.columns
        order = [(age_column, False)] if dated else [(c, False) for c in schema.primary_key]
        rows = database.select(
            table, where=where, order_by=order, limit=self.config.get("samples", 5)
        )
        details["samples"] = [
            row[schema.primary_key[0]] if len(schema.primary_key) == 1 else list(schema.key_of(row))
            for row in rows
        ]
        if not (dated and rows):
            return None
        oldest = parse_timestamp(rows[0].get(age_column))
        if oldest is None:
            return None
        age = datetime.now(UTC) - oldest
        details["oldest_age_seconds"] = int(age.total_seconds())
        if "max_age" in self.config and age > parse_duration(self.config["max_age"]):
            return (
                f"the oldest unsynced record is {format_duration(age)} old "
                f"(max {self.config['max_age'].strip()}): is the sync stuck?"
            )
        return None


@hookimpl
def angles_register_checks(register):
    register(SyncBacklogCheck)
