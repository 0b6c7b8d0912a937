"""The ``webhook`` notifier: posts the run's JSON report to a URL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from angles import Notification, Notifier, hookimpl

if TYPE_CHECKING:
    import httpx


class WebhookNotifier(Notifier):
    """Sends the contract's JSON report, plus what this notification is about."""

    type = "webhook"
    description = "Posts the run's JSON report to a URL (any HTTP receiver)."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "secret": True,
                "description": "The receiver's URL (kept out of logs: it may hold a token).",
            },
            "method": {
                "enum": ["POST", "PUT"],
                "description": "The HTTP method (default POST).",
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "secret": True,
                "description": 'Extra request headers, e.g. {Authorization: "Bearer ${HOOK_TOKEN}"}; '
                "their values are secrets.",
            },
        },
    }

    def send(self, notification: Notification) -> None:
        from angles.helpers import request  # httpx is slow to import

        headers = {"X-Angles-Test": "true"} if notification.test else {}
        headers.update(self.config.get("headers") or {})
        client = self.context.http_client("Webhook")
        request(
            client,
            self.config.get("method", "POST"),
            self.config["url"],
            service="Webhook",
            retries=self.retries,
            hint=hint,
            redact=self.context.redact,
            what="posting the report",
            timeout=self.timeout,
            headers=headers,
            json=self.context.redact(payload(notification)),
        )


def payload(notification: Notification) -> dict[str, Any]:
    """The JSON report, with a ``notification`` key: the title, alerts and recoveries."""
    return {
        **notification.report.to_dict(),
        "notification": {
            "title": notification.title,
            "alerts": [check.name for check in notification.alerts],
            "recoveries": [
                {
                    "check": recovery.check.name,
                    "failing_seconds": int(recovery.failing_for.total_seconds()),
                }
                for recovery in notification.recoveries
            ],
        },
    }


def hint(response: httpx.Response | None) -> str | None:
    """What to check after the receiver refused the report."""
    if response is None:
        return "check the url: and that the receiver is reachable"
    status = response.status_code
    if status in (401, 403):
        return "the receiver refused the credentials: check the headers: values"
    if status in (404, 405, 410):
        return "check the url: and method:"
    if status >= 500:
        return "the receiver failed: see its logs"
    return None


@hookimpl
def angles_register_notifiers(register):
    register(WebhookNotifier)
