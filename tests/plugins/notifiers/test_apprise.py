"""The apprise notifier through the real Apprise library, to a JSON receiver on 127.0.0.1."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from angles import ServiceError
from angles.core.retry import Budget

TOKEN = "tK9xQ2mVbL7pZ4wR"


def json_url(server, path: str = f"/hooks/{TOKEN}") -> str:
    """Apprise's ``json://`` URL for a path of the receiver (it posts over plain HTTP)."""
    return server.url.replace("http://", "json://", 1) + path


@pytest.mark.parametrize(
    ("status", "notify_type"),
    [("warning", "warning"), ("error", "failure")],
)
def test_a_failing_run_is_sent_with_the_matching_notify_type(
    webhook_server, notifier, notification, status, notify_type
):
    notifier({"type": "apprise", "urls": [json_url(webhook_server)]}).send(
        notification([("sync", status, "12 unsynced records")])
    )
    [request] = webhook_server.requests
    assert request.path == f"/hooks/{TOKEN}"
    sent = request.json()
    assert sent["type"] == notify_type
    assert sent["title"] == f"angles production: {status} (1 check failing)"
    assert sent["message"].splitlines() == [
        "Pipeline: production",
        "Time: 2026-11-26T03:00:00Z",
        "Duration: 1.8s",
        f"- sync [{status}]: 12 unsynced records",
    ]


def test_a_recovery_is_a_success(webhook_server, notifier, notification):
    notifier({"type": "apprise", "urls": [json_url(webhook_server)]}).send(
        notification([], recovered=[("sync", timedelta(hours=3, minutes=12))])
    )
    sent = webhook_server.requests[0].json()
    assert (sent["type"], sent["title"]) == ("success", "angles production: ok (recovered)")
    assert "- sync recovered after 3h 12m" in sent["message"]


def test_a_test_run_says_so(webhook_server, notifier, notification):
    notifier({"type": "apprise", "urls": [json_url(webhook_server)]}).send(
        notification([("sync", "error", "[TEST] simulated")], test=True)
    )
    sent = webhook_server.requests[0].json()
    assert sent["title"].startswith("[TEST] angles production: error")
    assert "This is a test: the failures below are simulated." in sent["message"]


def test_one_entry_may_hold_several_urls(webhook_server, notifier, notification):
    many = f"{json_url(webhook_server, '/a')}, {json_url(webhook_server, '/b')}"
    entry = {"type": "apprise", "urls": [many, json_url(webhook_server, "/c")]}
    notifier(entry).send(notification())
    assert sorted(r.path for r in webhook_server.requests) == ["/a", "/b", "/c"]


def test_a_refused_url_is_named_by_position_never_by_its_token(
    webhook_server, notifier, notification
):
    webhook_server.fail(path=f"^/hooks/{TOKEN}$", status=500, times=10)
    entry = {
        "type": "apprise",
        "urls": [json_url(webhook_server, "/fine"), json_url(webhook_server)],
        "retries": 0,
    }
    with pytest.raises(ServiceError) as raised:
        notifier(entry).send(notification())
    message = str(raised.value)
    assert message.startswith("Apprise: could not deliver to 1 of 2 URLs: URL 2 (JSON): ")
    assert "500" in message
    assert TOKEN not in message
    assert [r.path for r in webhook_server.requests] == ["/fine", f"/hooks/{TOKEN}"]


def test_a_failed_delivery_is_tried_again(webhook_server, notifier, notification):
    webhook_server.fail(status=503, times=1)
    notifier({"type": "apprise", "urls": [json_url(webhook_server)]}).send(notification())
    assert len(webhook_server.requests) == 2


def test_retries_stop_where_the_run_budget_ends(webhook_server, notifier, notification):
    webhook_server.fail(path=f"^/hooks/{TOKEN}$", status=503, times=10)
    entry = {
        "type": "apprise",
        "urls": [json_url(webhook_server, "/fine"), json_url(webhook_server)],
    }
    sender = notifier(entry)
    # pauses of 0.5 s then 1 s: the first fits in what is left, the second does not
    sender.context.budget = Budget(1.2)
    started = time.monotonic()
    with pytest.raises(ServiceError) as raised:
        sender.send(notification())
    assert time.monotonic() - started < 1.2
    message = str(raised.value)
    assert message.startswith("Apprise: could not deliver to 1 of 2 URLs: URL 2 (JSON): ")
    assert "not retried: the next try needs a 1s wait" in message
    # the delivered URL is not sent twice; the failing one was tried twice
    assert [r.path for r in webhook_server.requests] == ["/fine", *[f"/hooks/{TOKEN}"] * 2]


def test_a_spent_budget_sends_nothing(webhook_server, notifier, notification):
    sender = notifier({"type": "apprise", "urls": [json_url(webhook_server)]})
    sender.context.budget = Budget(0)
    with pytest.raises(ServiceError, match=r"^Apprise: sending to 1 URL: not tried: the run's"):
        sender.send(notification())
    assert webhook_server.requests == []


def test_a_url_apprise_does_not_know(notifier, notification, capfd, caplog):
    entry = {"type": "apprise", "urls": [f"nosuchservice://{TOKEN}@example.invalid/x"]}
    with pytest.raises(ServiceError) as raised:
        notifier(entry).send(notification())
    assert TOKEN not in "".join(capfd.readouterr()) + caplog.text  # Apprise's own log too
    assert str(raised.value) == (
        "Apprise: URL 1 of 1 is not a URL Apprise can send to (scheme 'nosuchservice') "
        "(see https://github.com/caronc/apprise/wiki for each service's URL)"
    )


PIPELINE = """\
version: 1
checks:
  - {name: sync, type: static, status: error, message: 51 unsynced records}
notifiers:
  - {name: everything, type: apprise, urls: ["${APPRISE_URLS}"], on: [error, recovery]}
"""


def test_a_run_alerts_through_apprise_and_keeps_the_urls_secret(
    angles_cli, pipeline_file, webhook_server, monkeypatch, tmp_path
):
    good, refused = json_url(webhook_server), json_url(webhook_server, "/down/Zq8rT3vW5yX1")
    webhook_server.fail(path="^/down/", status=500, times=10)
    monkeypatch.setenv("APPRISE_URLS", f"{good} {refused}")
    result = angles_cli("run", pipeline_file(PIPELINE), "--format", "json")
    assert result.exit_code == 2
    [outcome] = result.json()["notifications"]
    assert outcome["status"] == "error"
    assert outcome["message"].startswith("Apprise: could not deliver to 1 of 2 URLs: URL 2 (JSON)")
    assert webhook_server.requests_to(f"^/hooks/{TOKEN}$")[0].json()["type"] == "failure"
    assert len(webhook_server.requests_to("^/down/")) == 3  # two more attempts
    logs = "".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    for secret in (TOKEN, "Zq8rT3vW5yX1"):
        assert secret not in result.output
        assert secret not in logs
