"""The webhook notifier against a real HTTP receiver."""

from __future__ import annotations

import pytest

from angles import ServiceError


def test_posts_the_json_report(webhook_server, notifier, notification):
    url = webhook_server.url + "/hooks/angles"
    notifier({"type": "webhook", "url": url}).send(notification())
    [request] = webhook_server.requests
    assert (request.method, request.path) == ("POST", "/hooks/angles")
    assert request.header("content-type") == "application/json"
    assert request.header("user-agent").startswith("angles/")
    body = request.json()
    assert body["pipeline"] == "production" and body["status"] == "warning"
    assert body["checks"][0]["message"] == "12 unsynced records"
    assert body["notification"] == {
        "title": "angles production: warning (1 check failing)",
        "alerts": ["sync"],
        "recoveries": [],
    }
    assert request.header("x-angles-test") is None


def test_headers_are_sent_and_a_test_is_marked(webhook_server, notifier, notification):
    entry = {
        "type": "webhook",
        "url": webhook_server.url + "/in",
        "method": "PUT",
        "headers": {"Authorization": "Bearer hook-token-123"},
    }
    notifier(entry).send(notification(test=True))
    [request] = webhook_server.requests
    assert request.method == "PUT"
    assert request.header("authorization") == "Bearer hook-token-123"
    assert request.header("x-angles-test") == "true"
    assert request.json()["test"] is True


def test_a_server_error_is_retried(webhook_server, notifier, notification):
    webhook_server.fail(status=503, headers={"Retry-After": "0"})
    notifier({"type": "webhook", "url": webhook_server.url + "/in"}).send(notification())
    assert len(webhook_server.requests) == 2


def test_a_refusal_names_the_status_the_body_and_what_to_check(
    webhook_server, notifier, notification
):
    webhook_server.fail(status=401, body='{"error": "bad token Bearer hook-token-123"}')
    entry = {
        "type": "webhook",
        "url": webhook_server.url + "/in",
        "headers": {"Authorization": "Bearer hook-token-123"},
    }
    with pytest.raises(ServiceError) as raised:
        notifier(entry, secrets=["Bearer hook-token-123"]).send(notification())
    assert str(raised.value) == (
        'Webhook: posting the report: HTTP 401: {"error": "bad token ***"} '
        "(the receiver refused the credentials: check the headers: values)"
    )


def test_a_slow_receiver_times_out(webhook_server, notifier, notification):
    webhook_server.fail(delay=1.0, times=2)
    entry = {"type": "webhook", "url": webhook_server.url + "/in", "retries": 0}
    with pytest.raises(ServiceError, match=r"Webhook: posting the report: no answer within 0\.2s"):
        notifier({**entry, "timeout_seconds": 0.2}).send(notification())


PIPELINE = """\
version: 1
checks:
  - {name: sync, type: static, status: error, message: "12 unsynced"}
notifiers:
  - name: hook
    type: webhook
    url: "${HOOK_URL}"
    headers: {Authorization: "Bearer ${HOOK_CREDENTIAL}"}
"""


def test_header_values_and_the_url_are_secrets(
    angles_cli, pipeline_file, webhook_server, monkeypatch, tmp_path
):
    monkeypatch.setenv("HOOK_URL", webhook_server.url + "/in/private-path-4242")
    monkeypatch.setenv("HOOK_CREDENTIAL", "credential-5151")
    echo = f"refused {webhook_server.url}/in/private-path-4242 with Bearer credential-5151"
    webhook_server.fail(status=500, body=echo, headers={"Retry-After": "0"}, times=3)
    result = angles_cli("run", pipeline_file(PIPELINE), "--format", "json")
    [note] = result.json()["notifications"]
    assert note["status"] == "error"
    for blob in [result.output, *(p.read_text() for p in (tmp_path / "logs").iterdir())]:
        assert "private-path-4242" not in blob and "credential-5151" not in blob
