"""The ``notion`` check: the token works and the database's data source can be read.

.. code-block:: yaml

    checks:
      - {name: notion, type: notion, connection: notion, database_id: "${NOTION_DATABASE_ID}"}

It asks, in order, for the integration's bot user (the token is valid), the database (it
is shared with the integration), its data source and one page of it (readable), so the
error names the first thing that is wrong.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from angles import Check, CheckResult, hookimpl
from angles.plugins.connections.notion import NotionConnection, choose_data_source

_ID = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$")


class NotionCheck(Check):
    """Token, sharing and readability of one Notion database."""

    type = "notion"
    description = "The Notion token is valid and the database is shared and readable."
    connection_type = NotionConnection
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["database_id"],
        "properties": {
            "database_id": {
                "type": "string",
                "minLength": 1,
                "description": "The database's id (NOTION_DATABASE_ID), from its URL.",
            },
            "data_source": {
                "type": "string",
                "minLength": 1,
                "description": "The data source to read (name or id) when the database has several.",
            },
            "warn_latency_ms": {
                "type": "integer",
                "minimum": 1,
                "description": "A warning when the checks' requests take longer than this in total.",
            },
        },
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        if not _ID.match(config["database_id"].strip()):
            return [("database_id", "is not a Notion id: 32 hex digits, with or without dashes")]
        return []

    def run(self) -> CheckResult:
        notion: NotionConnection = self.connection  # type: ignore[assignment]
        database_id = self.config["database_id"].strip()
        started = time.perf_counter()
        bot = notion.me()
        database = notion.retrieve_database(database_id)
        source_id = choose_data_source(database, database_id, self.config.get("data_source"))
        source = notion.retrieve_data_source(source_id)
        sample = list(notion.query(source_id, page_size=1, limit=1))
        latency_ms = round((time.perf_counter() - started) * 1000)
        title = _plain(database.get("title")) or database_id
        details: dict[str, Any] = {
            "database_id": database.get("id", database_id),
            "database": title,
            "data_source_id": source_id,
            "data_source": _plain(source.get("title")) or source.get("name"),
            "properties": len(source.get("properties") or {}),
            "has_pages": bool(sample),
            "bot": bot.get("name"),
            "workspace": (bot.get("bot") or {}).get("workspace_name"),
            "latency_ms": latency_ms,
        }
        message = (
            f"database {title!r} is readable ({details['properties']} properties, {latency_ms} ms)"
        )
        warn = self.config.get("warn_latency_ms")
        if warn and latency_ms > warn:
            return CheckResult.warning(f"{message}: slower than {warn} ms", **details)
        return CheckResult.ok(message, **details)


def _plain(rich_text: Any) -> str:
    """The plain text of a rich text array."""
    if not isinstance(rich_text, list):
        return ""
    return "".join(str(item.get("plain_text", "")) for item in rich_text if isinstance(item, dict))


@hookimpl
def angles_register_checks(register: Any) -> None:
    register(NotionCheck)
