"""The ``supabase`` check: the project answers, and every listed table can be read.

.. code-block:: yaml

    checks:
      - {name: supabase, type: supabase, connection: supabase, tables: [decision_vault]}

Each table is counted exactly (one ``HEAD`` request), which proves the key, the grants and
the table at once; the slowest answer is compared with ``warn_latency_ms``.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from angles import Check, CheckResult, hookimpl
from angles.plugins.connections.supabase import SupabaseConnection, SupabaseError


class SupabaseCheck(Check):
    """Counts the rows of each listed table and times the answers."""

    type = "supabase"
    description = "Supabase answers and each listed table is readable, within a response time."
    connection_type = SupabaseConnection
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["tables"],
        "properties": {
            "tables": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "minLength": 1},
                "description": "The tables that must be readable.",
            },
            "warn_latency_ms": {
                "type": "integer",
                "minimum": 1,
                "description": "A warning when a table takes longer than this to answer "
                "(default 2000).",
            },
        },
    }

    def run(self) -> CheckResult:
        database: SupabaseConnection = self.connection  # type: ignore[assignment]
        warn_ms = int(self.config.get("warn_latency_ms", 2000))
        tables: dict[str, dict[str, Any]] = {}
        failures: list[SupabaseError] = []
        for table in self.config["tables"]:
            started = time.perf_counter()
            try:
                rows = database.count(table)
            except SupabaseError as error:
                failures.append(error)
                tables[table] = {"error": error.message}
                if not error.table_specific:  # unreachable or a refused key: no use going on
                    break
                continue
            tables[table] = {"rows": rows, "latency_ms": _ms(started)}
        latencies = [t["latency_ms"] for t in tables.values() if "latency_ms" in t]
        details: dict[str, Any] = {"tables": tables, "warn_latency_ms": warn_ms}
        if latencies:
            details["latency_ms"] = max(latencies)
        if failures:
            first = failures[0]
            more = f" (and {len(failures) - 1} more tables)" if len(failures) > 1 else ""
            return CheckResult.error(f"{first}{more}", failing_table=first.table, **details)
        slowest = max(tables, key=lambda t: tables[t]["latency_ms"])
        if details["latency_ms"] > warn_ms:
            return CheckResult.warning(
                f"Supabase is slow: {slowest!r} answered in {details['latency_ms']} ms "
                f"(warning above {warn_ms} ms)",
                **details,
            )
        counted = ", ".join(f"{t} ({tables[t]['rows']} rows)" for t in tables)
        return CheckResult.ok(
            f"{len(tables)} {'table' if len(tables) == 1 else 'tables'} readable: {counted}; "
            f"slowest {details['latency_ms']} ms",
            **details,
        )


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


@hookimpl
def angles_register_checks(register: Any) -> None:
    register(SupabaseCheck)
