"""The Slack incoming-webhook imitation, exercised with httpx (never mocked)."""

from __future__ import annotations

import json

import httpx
import pytest

from angles.testing.slack import SlackWebhookServer


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def test_a_valid_message_gets_200_ok(slack_server: SlackWebhookServer) -> None:
    payload = {
        "text": "Backup failed",
        "blocks": [
            header("Backup failed"),
            section("*Repo:* acme/backups\n*Error:* `409`"),
            {"type": "divider"},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "run 42"}]},
        ],
    }
    response = httpx.post(slack_server.webhook_url, json=payload)

    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["content-type"].startswith("text/plain")
    assert slack_server.messages == [payload]
    assert slack_server.deliveries[0].webhook_url == slack_server.webhook_url
    assert slack_server.deliveries[0].text == "Backup failed"


def test_webhook_url_looks_like_slack(slack_server: SlackWebhookServer) -> None:
    assert slack_server.webhook_url.startswith(f"{slack_server.url}/services/T")
    assert "/B" in slack_server.webhook_url


def test_form_encoded_payload_is_accepted(slack_server: SlackWebhookServer) -> None:
    response = httpx.post(slack_server.webhook_url, data={"payload": json.dumps({"text": "hi"})})
    assert (response.status_code, response.text) == (200, "ok")
    assert slack_server.messages == [{"text": "hi"}]


@pytest.mark.parametrize(
    ("content", "status", "error"),
    [
        (b"{not json", 400, "invalid_payload"),
        (b"[1, 2]", 400, "invalid_payload"),
        (b"{}", 400, "no_text"),
        (b'{"text": ""}', 400, "no_text"),
        (b'{"username": "bot"}', 400, "no_text"),
        (b'{"text": "x", "blocks": "nope"}', 400, "invalid_blocks_format"),
    ],
)
def test_invalid_payloads(
    slack_server: SlackWebhookServer, content: bytes, status: int, error: str
) -> None:
    response = httpx.post(
        slack_server.webhook_url, content=content, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.text) == (status, error)
    assert slack_server.messages == []


@pytest.mark.parametrize(
    ("blocks", "accepted"),
    [
        ([section("x")] * 50, True),
        ([section("x")] * 51, False),
        ([section("x" * 3000)], True),
        ([section("x" * 3001)], False),
        ([header("h" * 150)], True),
        ([header("h" * 151)], False),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "no"}}], False),
        ([{"type": "section"}], False),
        ([{"type": "sparkles"}], False),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], False),
        ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}], False),
        ([{"type": "divider", "block_id": "b" * 256}], False),
    ],
)
def test_block_limits(slack_server: SlackWebhookServer, blocks: list, accepted: bool) -> None:
    response = httpx.post(slack_server.webhook_url, json={"text": "fallback", "blocks": blocks})
    if accepted:
        assert (response.status_code, response.text) == (200, "ok")
    else:
        assert (response.status_code, response.text) == (400, "invalid_blocks")


def test_too_many_attachments(slack_server: SlackWebhookServer) -> None:
    response = httpx.post(slack_server.webhook_url, json={"attachments": [{"text": "a"}] * 101})
    assert (response.status_code, response.text) == (400, "too_many_attachments")
    response = httpx.post(slack_server.webhook_url, json={"attachments": [{"text": "a"}]})
    assert response.status_code == 200


def test_unknown_hook_is_no_service(slack_server: SlackWebhookServer) -> None:
    response = httpx.post(f"{slack_server.url}/services/T000/B000/wrong", json={"text": "x"})
    assert (response.status_code, response.text) == (404, "no_service")


def test_archived_and_revoked_hooks(slack_server: SlackWebhookServer) -> None:
    other = slack_server.add_webhook()
    slack_server.archive()
    response = httpx.post(slack_server.webhook_url, json={"text": "x"})
    assert (response.status_code, response.text) == (410, "channel_is_archived")

    slack_server.revoke()
    response = httpx.post(slack_server.webhook_url, json={"text": "x"})
    assert (response.status_code, response.text) == (404, "no_service")

    assert httpx.post(other, json={"text": "y"}).status_code == 200
    assert slack_server.messages_to(other) == [{"text": "y"}]

    slack_server.restore()
    assert httpx.post(slack_server.webhook_url, json={"text": "z"}).text == "ok"
    assert slack_server.messages == [{"text": "y"}, {"text": "z"}]


def test_rate_limited_fault_has_retry_after(slack_server: SlackWebhookServer) -> None:
    slack_server.rate_limited(times=1, retry_after=7)
    response = httpx.post(slack_server.webhook_url, json={"text": "x"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert httpx.post(slack_server.webhook_url, json={"text": "x"}).status_code == 200
    assert len(slack_server.messages) == 1


def test_builtin_rate_limiter(slack_server: SlackWebhookServer) -> None:
    slack_server.limit_rate(1.0, burst=2)
    statuses = [httpx.post(slack_server.webhook_url, json={"text": str(i)}) for i in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[-1].headers["Retry-After"] == "1"
    assert len(slack_server.messages) == 2


def test_other_errors_through_faults(slack_server: SlackWebhookServer) -> None:
    slack_server.fail(status=500, body="rollup_error")
    slack_server.fail(status=403, body="action_prohibited")
    first = httpx.post(slack_server.webhook_url, json={"text": "x"})
    second = httpx.post(slack_server.webhook_url, json={"text": "x"})
    assert (first.status_code, first.text) == (500, "rollup_error")
    assert (second.status_code, second.text) == (403, "action_prohibited")


def test_each_test_starts_empty(slack_server: SlackWebhookServer) -> None:
    assert slack_server.messages == [] and slack_server.requests == []
    assert httpx.post(slack_server.webhook_url, json={"text": "x"}).status_code == 200
