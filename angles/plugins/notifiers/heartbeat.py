"""The ``heartbeat`` notifier: pings a Healthchecks-style URL as every run begins and ends.

``/start`` as a run begins (so the service measures how long runs take and notices one
that hangs); at the end the plain URL for success (exit 0, and 1 unless
``fail_on: warning``) and ``/fail`` for a failure, or with ``append: exit_code`` the
exit code. The monitoring service then also notices a run that never happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from angles import Notification, Notifier, RunReport, hookimpl

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
            "fail_on": {
                "enum": ["error", "warning"],
                "description": "The status from which a run is a failure: error (default; "
                "exit 2) or warning (exit 1 and 2).",
            },
            "start": {
                "type": "boolean",
                "description": "Ping /start when a run begins (default true).",
            },
            "method": {
                "enum": ["GET", "POST", "HEAD"],
                "description": "The HTTP method (default POST, with the run's summary as body).",
            },
        },
    }

    def start(self, report: RunReport) -> None:
        if self.config.get("start", True):
            self._ping(append_path(self.config["url"], "start"), None)

    def send(self, notification: Notification) -> None:
        method = self.config.get("method", "POST")
        body = self.context.redact(notification.text())[:MAX_BODY] if method == "POST" else None
        self._ping(self.ping_url(int(notification.report.status.exit_code)), body)

    def ping_url(self, exit_code: int) -> str:
        """The URL to ping for a run that ended with ``exit_code``."""
        url = self.config["url"]
        if self.config.get("append", "fail") == "exit_code":
            return append_path(url, str(exit_code))
        worst_success = 0 if self.config.get("fail_on") == "warning" else 1
        return append_path(url, "fail") if exit_code > worst_success else url

    def _ping(self, url: str, body: str | None) -> None:
        from angles.helpers import request  # httpx is slow to import

        method = self.config.get("method", "POST")
        client = self.context.http_client("Heartbeat")
        request(
            client,
            method,
            url,
            service="Heartbeat",
            retries=self.retries,
            hint=hint,
            redact=self.context.redact,
            what="pinging",
            timeout=self.timeout,
            content=body.encode() if body is not None else None,
            headers={"Content-Type": "text/plain; charset=utf-8"} if body else None,
        )


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
