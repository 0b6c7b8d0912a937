"""The slack notifier against the Slack incoming-webhook imitation."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from angles import ServiceError
from angles.core.report import BackupRun
from angles.core.results import Status


def test_a_message_has_blocks_and_a_text_fallback(slack_server, notifier, notification):
    note = notification(
        [("sync", "warning", "12 unsynced <records> & more"), ("notion", "error", "HTTP 401")],
        recovered=[("supabase", timedelta(hours=3, minutes=12))],
        backups=[BackupRun("decision_vault", Status.OK, 2500)],
    )
    notifier({"type": "slack", "webhook_url": slack_server.webhook_url}).send(note)

    [message] = slack_server.messages
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == "🔴 angles production: error (2 checks failing)"
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert fields == [
        "*Pipeline:*\nproduction",
        "*Status:*\nERROR",
        "*Time:*\n2026-11-26T03:00:00Z",
        "*Duration:*\n1.8s",
    ]
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert "⚠️ *sync* `warning`\n12 unsynced &lt;records&gt; &amp; more" in texts
    assert "🔴 *notion* `error`\nHTTP 401" in texts
    assert "✅ *supabase* recovered after 3h 12m" in texts
    assert "*Backups*\n• decision_vault: ok, 2,500 rows" in texts
    assert message["text"].startswith("angles production: error (2 checks failing)\n")
    assert "- sync [warning]: 12 unsynced &lt;records&gt; &amp; more" in message["text"]


def test_a_test_run_is_marked_in_the_header(slack_server, notifier, notification):
    note = notification([("sync", "error", "[TEST] simulated failure")], test=True)
    notifier({"type": "slack", "webhook_url": slack_server.webhook_url}).send(note)
    [message] = slack_server.messages
    assert "[TEST]" in message["blocks"][0]["text"]["text"]
    assert message["blocks"][2]["type"] == "context"
    assert "This is a test" in message["blocks"][2]["elements"][0]["text"]
    assert message["text"].startswith("[TEST] ")


def test_long_messages_stay_within_slacks_limits(slack_server, notifier, notification):
    checks = [(f"check-{i}", "error", "x" * 5000) for i in range(80)]
    backups = [BackupRun(f"table_{i}", Status.OK, i, message="y" * 100) for i in range(100)]
    note = notification(checks, backups=backups, pipeline="p" * 300)
    notifier({"type": "slack", "webhook_url": slack_server.webhook_url}).send(note)

    [message] = slack_server.messages  # the imitation refuses anything over a limit
    blocks = message["blocks"]
    assert len(blocks) == 50
    assert len(blocks[0]["text"]["text"]) == 150
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert all(len(text) <= 3000 for text in sections)
    assert sections[-2] == "…and 35 more"  # 45 checks shown, before the backups
    assert sections[-1].endswith(" more") and sections[-1].startswith("*Backups*")
    assert len(message["text"]) <= 3000 and message["text"].endswith(" more")


def test_escaping_never_splits_an_entity(notification):
    from angles.plugins.notifiers.slack import fit

    assert fit("a" * 8 + "&amp;b", 10) == "a" * 8 + "…"
    assert fit("short", 10) == "short"


@pytest.mark.parametrize(
    ("break_it", "status", "error", "hint"),
    [
        ("revoke", 404, "no_service", "the webhook was revoked or disabled: create a new webhook"),
        ("archive", 410, "channel_is_archived", "the webhook's channel is archived"),
    ],
)
def test_a_broken_webhook_says_what_to_do(
    slack_server, notifier, notification, break_it, status, error, hint
):
    getattr(slack_server, break_it)()
    with pytest.raises(ServiceError) as raised:
        notifier({"type": "slack", "webhook_url": slack_server.webhook_url}).send(notification())
    message = str(raised.value)
    assert message.startswith(f"Slack: posting the message: HTTP {status}: {error} ({hint}")
    assert "SLACK_WEBHOOK_URL" in message
    assert len(slack_server.requests) == 1  # a 4xx is not retried


def test_rate_limits_are_retried_after_retry_after(slack_server, notifier, notification):
    slack_server.rate_limited(times=1, retry_after=1)
    started = time.monotonic()
    notifier({"type": "slack", "webhook_url": slack_server.webhook_url}).send(notification())
    assert time.monotonic() - started >= 0.9
    assert len(slack_server.requests) == 2 and len(slack_server.messages) == 1


def test_persistent_rate_limiting_is_an_error(slack_server, notifier, notification):
    slack_server.rate_limited(times=3, retry_after=0)
    with pytest.raises(
        ServiceError,
        match=r"Slack: posting the message: HTTP 429: rate_limited; tried 3 times \(Slack is rate limiting",
    ):
        notifier({"type": "slack", "webhook_url": slack_server.webhook_url}).send(notification())
    assert len(slack_server.requests) == 3  # the first try and two retries


def test_a_server_error_is_retried(slack_server, notifier, notification):
    slack_server.fail(method="POST", status=500, body="rollup_error", headers={"Retry-After": "0"})
    notifier({"type": "slack", "webhook_url": slack_server.webhook_url}).send(notification())
    assert len(slack_server.messages) == 1


def test_a_persistent_server_error_names_the_status_and_body(slack_server, notifier, notification):
    slack_server.fail(
        method="POST", times=3, status=500, body="rollup_error", headers={"Retry-After": "0"}
    )
    with pytest.raises(ServiceError) as raised:
        notifier({"type": "slack", "webhook_url": slack_server.webhook_url}).send(notification())
    assert str(raised.value).startswith(
        "Slack: posting the message: HTTP 500: rollup_error; tried 3 times (Slack is having trouble"
    )


def test_a_slow_webhook_times_out(slack_server, notifier, notification):
    slack_server.fail(method="POST", delay=1.0)
    entry = {"type": "slack", "webhook_url": slack_server.webhook_url, "retries": 0}
    started = time.monotonic()
    with pytest.raises(ServiceError, match=r"Slack: posting the message: no answer within 0.2s"):
        notifier({**entry, "timeout_seconds": 0.2}).send(notification())
    assert time.monotonic() - started < 1.0


def test_an_unreachable_webhook(notifier, notification):
    entry = {"type": "slack", "webhook_url": "http://127.0.0.1:9/services/T1/B1/x", "retries": 0}
    with pytest.raises(ServiceError, match=r"Slack: posting the message: connection refused"):
        notifier(entry).send(notification())


PIPELINE = """\
version: 1
name: production
checks:
  - {name: sync, type: static, status: error, message: "12 unsynced records"}
notifiers:
  - {name: slack, type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}
"""


def test_the_webhook_url_appears_nowhere(
    angles_cli, pipeline_file, slack_server, monkeypatch, tmp_path
):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack_server.webhook_url)
    slack_server.revoke()
    path = pipeline_file(PIPELINE)
    result = angles_cli("run", path, "--format", "json")
    assert result.exit_code == 2  # from the check: a failed notification changes nothing
    [note] = result.json()["notifications"]
    assert note["status"] == "error" and note["message"].startswith(
        "Slack: posting the message: HTTP 404: no_service"
    )
    text = angles_cli("run", path)
    history = angles_cli("history", path, "--format", "json")
    secret_part = slack_server.webhook_path.rsplit("/", 1)[1]
    for blob in [
        result.output,
        text.output,
        history.output,
        *(p.read_text() for p in (tmp_path / "logs").iterdir()),
        (tmp_path / ".angles" / "state.db").read_bytes().decode("latin-1"),
    ]:
        assert secret_part not in blob
    assert json.loads(history.stdout)["runs"][0]["notifications"][0]["status"] == "error"
