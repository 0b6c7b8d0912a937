"""The ``backup_freshness`` check: a table's newest backup in a sink is recent enough.

.. code-block:: yaml

    checks:
      - {name: backups, type: backup_freshness, sink: github, table: decision_vault,
         max_age_hours: 26}

The backups are found as ``angles backups list`` finds them: by the sink's listing and the
time in each file name (``decision_vault_2026-11-26_03-00-00.json``, UTC). Backups saved
before a live restore do not count. No backup at all is an error too: a backup job that
never ran is the failure this check exists for.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from angles import Check, CheckResult, hookimpl
from angles.helpers import format_duration


class BackupFreshnessCheck(Check):
    """The age of the newest backup of ``table`` in ``sink`` against ``max_age_hours``."""

    type = "backup_freshness"
    description = "The newest backup of a table in a sink is younger than max_age_hours."
    sink_keys = ("sink",)
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["sink", "table", "max_age_hours"],
        "properties": {
            "sink": {
                "type": "string",
                "minLength": 1,
                "description": "The sink to look in (a name under `sinks:`).",
            },
            "table": {
                "type": "string",
                "minLength": 1,
                "description": "The table whose backups to look at.",
            },
            "max_age_hours": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "An error when the newest backup is older than this (e.g. 26).",
            },
        },
    }

    def run(self) -> CheckResult:
        from angles.helpers import BackupName  # the engine loads only when used

        sink_name, table = self.config["sink"], self.config["table"]
        max_age_hours = float(self.config["max_age_hours"])
        sink = self.context.sink(sink_name)
        stored = {f.name: f for f in sink.list()}
        dated = [
            (parsed.timestamp, name)
            for name in stored
            if (parsed := BackupName.parse(name))
            and parsed.table == table
            and not parsed.pre_restore
        ]
        details: dict[str, Any] = {
            "sink": sink_name,
            "table": table,
            "max_age_hours": max_age_hours,
            "backups": len(dated),
        }
        if not dated:
            return CheckResult.error(
                f"no backup of {table!r} in sink {sink_name!r}: has the backup ever run?",
                **details,
            )
        timestamp, name = max(dated)
        age = max(datetime.now(UTC) - timestamp, timedelta(0))
        details.update(
            newest=name,
            timestamp=timestamp.isoformat().replace("+00:00", "Z"),
            age_hours=round(age.total_seconds() / 3600, 2),
            size=stored[name].size,
        )
        details["record_count"] = _record_count(sink, name)
        shown = f"{max_age_hours:g}h"
        if age.total_seconds() > max_age_hours * 3600:
            return CheckResult.error(
                f"the newest backup of {table!r} in {sink_name!r} is {format_duration(age)} old "
                f"(max {shown}): {name}",
                **details,
            )
        return CheckResult.ok(
            f"the newest backup of {table!r} in {sink_name!r} is {format_duration(age)} old "
            f"(max {shown})",
            **details,
        )


def _record_count(sink: Any, name: str) -> int | None:
    """The record count from the file's first line; None when it cannot be read."""
    from angles.helpers import metadata_from_head

    try:
        metadata = metadata_from_head(sink.head(name))
    except Exception:
        return None
    count = (metadata or {}).get("record_count")
    return count if isinstance(count, int) else None


@hookimpl
def angles_register_checks(register: Any) -> None:
    register(BackupFreshnessCheck)
