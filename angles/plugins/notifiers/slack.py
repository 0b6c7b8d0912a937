"""The ``slack`` notifier: posts the run to a Slack incoming webhook, in Block Kit."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from angles import Notification, Notifier, ServiceError, Status, hookimpl
from angles.helpers import format_duration, format_timestamp

if TYPE_CHECKING:
    import httpx

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FALLBACK_TEXT = 3000  # Slack cuts at 40,000 but recommends 4,000
EMOJI = {Status.OK: "✅", Status.WARNING: "⚠️", Status.ERROR: "🔴"}

_RECREATE = "create a new webhook in Slack and update SLACK_WEBHOOK_URL"
HINTS = {
    "no_service": f"the webhook was revoked or disabled: {_RECREATE}",
    "no_service_id": f"the webhook was revoked or disabled: {_RECREATE}",
    "no_team": f"the webhook's workspace is gone: {_RECREATE}",
    "team_disabled": f"the webhook's workspace is disabled: {_RECREATE}",
    "invalid_token": f"the webhook's token is not valid: {_RECREATE}",
    "channel_not_found": f"the webhook's channel was deleted: {_RECREATE}",
    "channel_is_archived": (
        f"the webhook's channel is archived: unarchive it, or {_RECREATE} for another channel"
    ),
    "action_prohibited": "a workspace admin restricts this webhook: ask them to allow it",
    "posting_to_general_channel_denied": "only admins may post in that channel: use another one",
}


class SlackNotifier(Notifier):
    """Sends a Block Kit message with a plain-text fallback, within Slack's limits."""

    type = "slack"
    description = "Posts the run to a Slack channel through an incoming webhook."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["webhook_url"],
        "properties": {
            "webhook_url": {
                "type": "string",
                "secret": True,
                "description": 'The incoming webhook URL, e.g. "${SLACK_WEBHOOK_URL}".',
            },
            "username": {
                "type": "string",
                "description": "The sender name shown (legacy webhooks only).",
            },
            "icon_emoji": {
                "type": "string",
                "description": "The sender icon, e.g. :rotating_light: (legacy webhooks only).",
            },
        },
    }

    def send(self, notification: Notification) -> None:
        from angles.helpers import describe_failure, request  # httpx is slow to import

        payload = self.context.redact(build_message(notification))
        for key in ("username", "icon_emoji"):
            if key in self.config:
                payload[key] = self.config[key]
        client = self.context.http_client("Slack")
        response = request(
            client,
            "POST",
            self.config["webhook_url"],
            service="Slack",
            retries=self.retries,
            hint=hint,
            redact=self.context.redact,
            what="posting the message",
            timeout=self.timeout,
            json=payload,
        )
        if response.status_code != 200:  # only a 200 means the message was posted
            raise ServiceError(
                "Slack",
                f"posting the message: {describe_failure(response, self.context.redact)}",
                hint=hint(response),
            )
        if response.text.strip() != "ok":  # a webhook answers "ok"; anything else is not Slack
            raise ServiceError(
                "Slack",
                'posting the message: the answer was not Slack\'s "ok" '
                f"({describe_failure(response, self.context.redact)}), so it was not delivered",
                hint="check SLACK_WEBHOOK_URL: a https://hooks.slack.com/services/… URL "
                "(a proxy or a captive portal may be answering instead)",
            )


def hint(response: httpx.Response | None) -> str | None:
    """What to check after Slack refused a message (None: a network failure)."""
    if response is None:
        return "check the webhook URL and that hooks.slack.com is reachable"
    error = response.text.strip()
    if error in HINTS:
        return HINTS[error]
    status = response.status_code
    if status == 429:
        return "Slack is rate limiting this webhook: send fewer messages (see remind_every)"
    if status >= 500:
        return "Slack is having trouble: see https://slack-status.com and try again later"
    if status in (403, 404, 410):
        return f"the webhook no longer works: {_RECREATE}"
    if status == 400:
        return "Slack refused the message angles built: please report this as a bug"
    return None


def build_message(notification: Notification) -> dict[str, Any]:
    """The webhook payload: Block Kit ``blocks`` and a ``text`` fallback."""
    report = notification.report
    header = f"{EMOJI[notification.status]} {notification.title}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": fit(header, MAX_HEADER_TEXT), "emoji": True},
        },
        {
            "type": "section",
            "fields": [
                _mrkdwn(f"*Pipeline:*\n{escape(report.pipeline)}", 2000),
                _mrkdwn(f"*Status:*\n{report.status.value.upper()}", 2000),
                _mrkdwn(f"*Time:*\n{format_timestamp(report.started_at)}", 2000),
                _mrkdwn(f"*Duration:*\n{report.duration_seconds:.1f}s", 2000),
            ],
        },
    ]
    if notification.test:
        blocks.append(
            {
                "type": "context",
                "elements": [_mrkdwn("*This is a test:* the failures below are simulated.", 3000)],
            }
        )
    items = [
        f"{EMOJI[check.status]} *{escape(check.name)}* `{check.status.value}`\n"
        f"{escape(check.message)}"
        for check in notification.alerts
    ] + [
        f"{EMOJI[Status.OK]} *{escape(r.check.name)}* recovered after "
        f"{format_duration(r.failing_for)}"
        for r in notification.recoveries
    ]
    tail: list[dict[str, Any]] = []
    if report.backups:
        lines = [_backup_line(b.name, b.status, b.record_count, b.message) for b in report.backups]
        tail.append(
            {"type": "section", "text": _mrkdwn(fit_lines(["*Backups*", *lines]), MAX_SECTION_TEXT)}
        )
    room = MAX_BLOCKS - len(blocks) - len(tail) - (1 if items else 0)
    if len(items) > room:
        kept, cut = items[: room - 1], len(items) - (room - 1)
        items = [*kept, f"…and {cut} more"]
    if items:
        blocks.append({"type": "divider"})
    blocks += [{"type": "section", "text": _mrkdwn(item, MAX_SECTION_TEXT)} for item in items]
    blocks += tail
    return {"text": fallback_text(notification), "blocks": blocks}


def fallback_text(notification: Notification) -> str:
    """The notification text (and what a client without Block Kit shows), escaped."""
    lines = [escape(line) for line in notification.text().splitlines()]
    return fit_lines(lines, MAX_FALLBACK_TEXT)


def _backup_line(name: str, status: Status, count: int | None, message: str | None) -> str:
    rows = "no rows read" if count is None else f"{count:,} rows"
    detail = f": {message}" if message else ""
    return escape(f"• {name}: {status.value}, {rows}{detail}")


def _mrkdwn(text: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": fit(text, limit)}


def escape(text: str) -> str:
    """Text made safe for mrkdwn: ``&``, ``<`` and ``>`` as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, never inside an entity."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[: limit - 1]) + "…"


def fit_lines(lines: Iterable[str], limit: int = MAX_SECTION_TEXT) -> str:
    """Lines joined within ``limit`` characters, ending with "…and N more" when cut."""
    lines = list(lines)
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        rest = len(lines) - index - 1
        reserve = len(f"\n…and {len(lines)} more") if rest else 0
        line = fit(line, limit - reserve)
        if used + len(line) + (1 if kept else 0) + reserve > limit:
            kept.append(f"…and {len(lines) - index} more")
            break
        kept.append(line)
        used += len(line) + (1 if len(kept) > 1 else 0)
    return "\n".join(kept)


@hookimpl
def angles_register_notifiers(register):
    register(SlackNotifier)
