"""An angles plugin as a third party writes one: a check type and a notifier type."""

from __future__ import annotations

import json
import time
from pathlib import Path

from angles import Check, CheckResult, Notification, Notifier, Status, hookimpl


class StaticCheck(Check):
    """Reports the status and message it is configured with, after an optional pause."""

    type = "static"
    description = "Reports a fixed status (for trying pipelines out)."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["status"],
        "properties": {
            "status": {"enum": ["ok", "warning", "error"], "description": "The status to report."},
            "message": {"type": "string", "description": "The message to report."},
            "sleep_seconds": {"type": "number", "description": "Pause before answering."},
        },
    }

    def run(self) -> CheckResult:
        time.sleep(self.config.get("sleep_seconds", 0))
        status = Status(self.config["status"])
        return CheckResult(status, self.config.get("message", f"static {status.value}"))


class JsonLinesNotifier(Notifier):
    """Appends each notification, as JSON, to a file."""

    type = "jsonl"
    description = "Appends notifications to a JSON-lines file."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["path"],
        "properties": {"path": {"type": "string", "description": "The file to append to."}},
    }

    def send(self, notification: Notification) -> None:
        record = {
            "title": notification.title,
            "text": notification.text(),
            "alerts": [check.name for check in notification.alerts],
            "recoveries": [r.check.name for r in notification.recoveries],
            "report": notification.report.to_dict(),
        }
        path = self.context.pipeline.resolve(self.config["path"])
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


@hookimpl
def angles_register_checks(register):
    register(StaticCheck)


@hookimpl
def angles_register_notifiers(register):
    register(JsonLinesNotifier)
