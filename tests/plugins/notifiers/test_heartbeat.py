"""The heartbeat notifier against a real HTTP receiver, as Healthchecks answers."""

from __future__ import annotations

import sqlite3

import pytest

from angles import ServiceError

UUID = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278"


@pytest.mark.parametrize(
    ("status", "options", "path"),
    [
        ("ok", {}, f"/ping/{UUID}"),
        ("warning", {}, f"/ping/{UUID}"),
        ("error", {"append": "fail"}, f"/ping/{UUID}/fail"),
        ("ok", {"fail_on": "warning"}, f"/ping/{UUID}"),
        ("warning", {"fail_on": "warning"}, f"/ping/{UUID}/fail"),
        ("error", {"fail_on": "error"}, f"/ping/{UUID}/fail"),
        ("ok", {"append": "exit_code"}, f"/ping/{UUID}/0"),
        ("warning", {"append": "exit_code"}, f"/ping/{UUID}/1"),
        ("error", {"append": "exit_code"}, f"/ping/{UUID}/2"),
    ],
)
def test_the_ping_tells_success_from_failure(
    webhook_server, notifier, notification, status, options, path
):
    entry = {"type": "heartbeat", "url": f"{webhook_server.url}/ping/{UUID}", **options}
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


def test_every_run_pings_start_then_its_outcome(
    angles_cli, pipeline_file, webhook_server, monkeypatch, tmp_path
):
    monkeypatch.setenv("HEALTHCHECK_URL", f"{webhook_server.url}/ping/{UUID}")
    ok = pipeline_file(PIPELINE.format(status="ok"))
    assert angles_cli("run", ok).exit_code == 0
    warning = pipeline_file(PIPELINE.format(status="warning"), name="warning.yaml")
    assert angles_cli("check", warning).exit_code == 1
    failing = pipeline_file(PIPELINE.format(status="error"), name="failing.yaml")
    assert angles_cli("run", failing).exit_code == 2
    assert angles_cli("run", failing).exit_code == 2
    assert angles_cli("run", ok, "--test").exit_code == 2
    start, success, fail = f"/ping/{UUID}/start", f"/ping/{UUID}", f"/ping/{UUID}/fail"
    assert [r.path for r in webhook_server.requests] == [
        *(start, success),
        *(start, success),
        *(start, fail),
        *(start, fail),
        *(start, fail),
    ]
    assert webhook_server.requests[-1].body.decode().startswith("[TEST] ")
    logs = "".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    assert UUID not in logs


def test_a_warning_fails_the_heartbeat_with_fail_on_warning(
    angles_cli, pipeline_file, webhook_server, monkeypatch
):
    monkeypatch.setenv("HEALTHCHECK_URL", f"{webhook_server.url}/ping/{UUID}")
    text = PIPELINE.format(status="warning").replace('"}', '", fail_on: warning}')
    assert angles_cli("run", pipeline_file(text)).exit_code == 1
    assert [r.path for r in webhook_server.requests] == [
        f"/ping/{UUID}/start",
        f"/ping/{UUID}/fail",
    ]


def test_the_start_ping_goes_before_the_first_check(
    angles_cli, pipeline_file, webhook_server, monkeypatch
):
    """The check's own request reaches its server after /start and before the outcome."""
    webhook_server.refuse_unknown("^/ping/")
    monkeypatch.setenv("HEALTHCHECK_URL", f"{webhook_server.url}/ping/{UUID}")
    text = f"""\
        version: 1
        checks:
          - {{name: site, type: http, url: "{webhook_server.url}/site"}}
        notifiers:
          - {{name: hc, type: heartbeat, url: "${{HEALTHCHECK_URL}}"}}
        """
    assert angles_cli("run", pipeline_file(text)).exit_code == 2
    assert [r.path for r in webhook_server.requests] == [
        f"/ping/{UUID}/start",
        "/site",
        f"/ping/{UUID}/fail",
    ]


def test_no_start_ping_where_the_end_may_not_be_told(
    angles_cli, pipeline_file, webhook_server, monkeypatch, tmp_path
):
    """A start with no end would look like a hung run: `backup` only tells of failures,
    an `on:` other than always may stay silent, and `start: false` opts out."""
    monkeypatch.setenv("HEALTHCHECK_URL", f"{webhook_server.url}/ping/{UUID}")
    sqlite3.connect(tmp_path / "vault.db").execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    backup = pipeline_file(
        """\
        version: 1
        connections: {db: {type: sqlite, path: vault.db}}
        sinks: {local: {type: local, path: backups}}
        backups: [{name: t, connection: db, table: t, sinks: [local]}]
        notifiers:
          - {name: hc, type: heartbeat, url: "${HEALTHCHECK_URL}"}
        """
    )
    assert angles_cli("backup", backup).exit_code == 0
    for options in ("on: [error]", "start: false"):
        text = PIPELINE.format(status="ok").replace('"}', f'", {options}}}')
        assert angles_cli("run", pipeline_file(text)).exit_code == 0
    assert [r.path for r in webhook_server.requests] == [f"/ping/{UUID}"]


def test_a_failed_start_ping_does_not_stop_the_run(
    angles_cli, pipeline_file, webhook_server, monkeypatch, tmp_path
):
    webhook_server.refuse_unknown(f"^/ping/{UUID}$")
    monkeypatch.setenv("HEALTHCHECK_URL", f"{webhook_server.url}/ping/{UUID}")
    result = angles_cli("run", pipeline_file(PIPELINE.format(status="ok")), "--format", "json")
    assert result.exit_code == 0
    assert [r.path for r in webhook_server.requests] == [f"/ping/{UUID}/start", f"/ping/{UUID}"]
    assert result.json()["notifications"] == [{"notifier": "hc", "status": "sent"}]
    logs = "".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    assert "start not announced" in logs
    assert UUID not in logs
