"""The heartbeat notifier against a real HTTP receiver, as Healthchecks answers."""

from __future__ import annotations

import pytest

from angles import ServiceError

UUID = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"


@pytest.mark.parametrize(
    ("status", "append", "path"),
    [
        ("ok", None, f"/ping/{UUID}"),
        ("warning", None, f"/ping/{UUID}/fail"),
        ("error", "fail", f"/ping/{UUID}/fail"),
        ("ok", "exit_code", f"/ping/{UUID}/0"),
        ("warning", "exit_code", f"/ping/{UUID}/1"),
        ("error", "exit_code", f"/ping/{UUID}/2"),
    ],
)
def test_the_ping_tells_success_from_failure(
    webhook_server, notifier, notification, status, append, path
):
    entry = {"type": "heartbeat", "url": f"{webhook_server.url}/ping/{UUID}"}
    if append:
        entry["append"] = append
    notifier(entry).send(notification([("sync", status, "12 unsynced")]))
    [request] = webhook_server.requests
    assert (request.method, request.path) == ("POST", path)
    assert request.body.decode().startswith("angles production: ")


def test_a_query_string_stays_after_the_suffix(webhook_server, notifier, notification):
    entry = {
        "type": "heartbeat",
        "url": f"{webhook_server.url}/ping/{UUID}/?rid=1",
        "method": "GET",
    }
    notifier(entry).send(notification([("sync", "error", "down")]))
    [request] = webhook_server.requests
    assert (request.method, request.path, request.params) == (
        "GET",
        f"/ping/{UUID}/fail",
        {"rid": "1"},
    )


def test_an_unknown_ping_url(webhook_server, notifier, notification):
    webhook_server.refuse_unknown("^/ping/known")
    entry = {"type": "heartbeat", "url": f"{webhook_server.url}/ping/{UUID}"}
    with pytest.raises(ServiceError) as raised:
        notifier(entry).send(notification())
    assert str(raised.value) == (
        "Heartbeat: pinging: HTTP 404: not found "
        "(no check has this ping URL: copy it again from the monitoring service)"
    )


def test_rate_limited_pings_are_retried(webhook_server, notifier, notification):
    webhook_server.fail(status=429, headers={"Retry-After": "0"}, times=2)
    notifier({"type": "heartbeat", "url": f"{webhook_server.url}/ping/{UUID}"}).send(notification())
    assert len(webhook_server.requests) == 3


PIPELINE = """\
version: 1
checks:
  - {{name: sync, type: static, status: {status}}}
notifiers:
  - {{name: hc, type: heartbeat, url: "${{HEALTHCHECK_URL}}"}}
"""


def test_it_pings_on_every_run_by_default(
    angles_cli, pipeline_file, webhook_server, monkeypatch, tmp_path
):
    monkeypatch.setenv("HEALTHCHECK_URL", f"{webhook_server.url}/ping/{UUID}")
    ok = pipeline_file(PIPELINE.format(status="ok"))
    for _ in range(2):
        assert angles_cli("run", ok).exit_code == 0
    failing = pipeline_file(PIPELINE.format(status="error"), name="failing.yaml")
    assert angles_cli("run", failing).exit_code == 2
    assert angles_cli("run", failing).exit_code == 2
    assert angles_cli("run", ok, "--test").exit_code == 2
    assert [r.path for r in webhook_server.requests] == [
        f"/ping/{UUID}",
        f"/ping/{UUID}",
        f"/ping/{UUID}/fail",
        f"/ping/{UUID}/fail",
        f"/ping/{UUID}/fail",
    ]
    assert webhook_server.requests[-1].body.decode().startswith("[TEST] ")
    logs = "".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    assert UUID not in logs
