"""The ``heartbeat`` notifier: pings a Healthchecks-style URL after every run.

Success pings the URL; a failed run appends ``/fail`` (or, with ``append: exit_code``,
the exit code). The monitoring service then also notices a run that never happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from angles import Notification, Notifier, hookimpl

if TYPE_CHECKING:
    import httpx

MAX_BODY = 10_000  # Healthchecks keeps the first 100 kB of a ping's body as its log


class HeartbeatNotifier(Notifier):
    """Pings on every run (``on: [always]`` by default), telling success from failure."""

    type = "heartbeat"
    description = "Pings a Healthchecks-style URL with the run's outcome, on every run."
    default_on = ("always",)
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "secret": True,
                "description": "The ping URL, e.g. https://hc-ping.com/<uuid> (a secret).",
            },
            "append": {
                "enum": ["fail", "exit_code"],
                "description": "On a failed run append /fail (default), or always append "
                "/<exit code> (0 ok, 1 warnings, 2 errors).",
            },
            "method": {
                "enum": ["GET", "POST", "HEAD"],
                "description": "The HTTP method (default POST, with the run's summary as body).",
            },
        },
    }

    def send(self, notification: Notification) -> None:
        from angles.helpers import request  # httpx is slow to import

        method = self.config.get("method", "POST")
        body = self.context.redact(notification.text())[:MAX_BODY] if method == "POST" else None
        client = self.context.http_client("Heartbeat")
        request(
            client,
            method,
            self.ping_url(int(notification.report.status.exit_code)),
            service="Heartbeat",
            retries=self.retries,
            hint=hint,
            redact=self.context.redact,
            what="pinging",
            timeout=self.timeout,
            content=body.encode() if body is not None else None,
            headers={"Content-Type": "text/plain; charset=utf-8"} if body else None,
        )

    def ping_url(self, exit_code: int) -> str:
        """The URL to ping for a run that ended with ``exit_code``."""
        url = self.config["url"]
        if self.config.get("append", "fail") == "exit_code":
            return append_path(url, str(exit_code))
        return append_path(url, "fail") if exit_code else url


def append_path(url: str, segment: str) -> str:
    """``url`` with ``/segment`` added to its path (before any query)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{segment}"))


def hint(response: httpx.Response | None) -> str | None:
    """What to check after the ping failed."""
    if response is None:
        return "check the url: and that the monitoring service is reachable"
    if response.status_code == 404:
        return "no check has this ping URL: copy it again from the monitoring service"
    if response.status_code == 429:
        return "the monitoring service is rate limiting the pings"
    return None


@hookimpl
def angles_register_notifiers(register):
    register(HeartbeatNotifier)
