"""Bounded time, end to end: the run's budget, stalled services, and readable failures.

Each test programs a fault on a test server (a stall, a 429 with Retry-After, an HTML
answer, a refused connection) and runs ``angles`` as a user would.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SQLITE_BACKUP = """\
version: 1
log_dir: logs
state: state.db
connections:
  vault: {type: sqlite, path: vault.db}
backups:
  - {name: vault, connection: vault, table: decision_vault, sinks: [github, local]}
sinks:
  github:
    type: github
    repository: acme/backups
    token: "${GITHUB_TOKEN}"
    api_url: "${GITHUB_API_URL}"
    throttle: false
  local: {type: local, path: backups}
notifiers:
  - {name: hook, type: webhook, url: "${HOOK_URL}", on: [error]}
defaults:
  timeout_seconds: 1
  run_timeout: %(run_timeout)s
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def backup_to_github(
    tmp_path, pipeline_file, angles_cli, github_server, webhook_server, monkeypatch
):
    """Back up a small SQLite table to GitHub, then a local folder; returns (result, seconds)."""
    github_server.create_repo("acme", "backups")
    with sqlite3.connect(tmp_path / "vault.db") as db:
        db.execute("CREATE TABLE decision_vault (id INTEGER PRIMARY KEY, decision TEXT)")
        db.executemany("INSERT INTO decision_vault VALUES (?, ?)", [(1, "a"), (2, "b")])
    monkeypatch.setenv("GITHUB_TOKEN", github_server.token)
    monkeypatch.setenv("GITHUB_API_URL", github_server.url)
    monkeypatch.setenv("HOOK_URL", f"{webhook_server.url}/hook")

    def run(run_timeout: str = "15m"):
        path = pipeline_file(SQLITE_BACKUP % {"run_timeout": run_timeout})
        started = time.monotonic()
        result = angles_cli("backup", path, "--format", "json")
        return result, time.monotonic() - started

    return run


def local_backups(tmp_path: Path) -> list[str]:
    folder = tmp_path / "backups"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_stalled_github_costs_its_tries_not_eleven_timeouts(
    backup_to_github, github_server, webhook_server, tmp_path
):
    github_server.fail(delay=4, times=50)
    result, elapsed = backup_to_github()
    [backup] = result.json()["backups"]
    assert backup["status"] == "error"
    assert "GitHub: opening the repository: no answer within 1s; tried 3 times" in backup["message"]
    # three tries of 1 s and pauses of 1 and 2 s: PyGithub's own retries are off
    assert len(github_server.requests) == 3
    assert elapsed < 9
    assert len(local_backups(tmp_path)) == 1  # the next sink is still written
    assert len(webhook_server.requests) == 1  # and people are told


def test_a_rate_limit_longer_than_the_run_budget_is_not_waited_for(
    backup_to_github, github_server, webhook_server, tmp_path
):
    github_server.fail(
        status=429,
        headers={"Retry-After": "60"},
        body={"message": "You have exceeded a secondary rate limit."},
        times=50,
    )
    result, elapsed = backup_to_github(run_timeout="20s")
    [backup] = result.json()["backups"]
    assert elapsed < 5
    assert "secondary rate limit exceeded" in backup["message"]
    assert "not retried: the next try asked for a 60s wait" in backup["message"]
    assert len(local_backups(tmp_path)) == 1
    assert result.json()["notifications"] == [{"notifier": "hook", "status": "sent"}]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            {"status": 200, "body": "<html><title>Sign in</title><p>to the portal</p></html>"},
            "GitHub: opening the repository: the answer was not GitHub's API: Sign in to the "
            "portal",
        ),
        (
            {"status": 502, "body": "<html><title>502 Bad Gateway</title><p>nginx</p></html>"},
            "GitHub: opening the repository: HTTP 502: 502 Bad Gateway nginx; tried 3 times",
        ),
    ],
    ids=["html", "5xx"],
)
def test_malformed_github_answers_are_one_readable_line(
    backup_to_github, github_server, fault, expected
):
    github_server.fail(headers={"Content-Type": "text/html"}, times=50, **fault)
    result, _ = backup_to_github()
    [backup] = result.json()["backups"]
    assert expected in backup["message"]
    assert "Error" not in backup["message"] and "urllib3" not in backup["message"]
    assert len(backup["message"]) < 300


def test_a_refused_github_is_one_short_line(backup_to_github, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{closed_port()}")
    result, _ = backup_to_github()
    [backup] = result.json()["backups"]
    assert "GitHub: opening the repository: connection refused; tried 3 times" in backup["message"]
    assert "HTTPConnectionPool" not in backup["message"]
    assert len(backup["message"]) < 300


SUPABASE_CHECK = """\
version: 1
log_dir: logs
state: state.db
connections:
  supabase:
    type: supabase
    url: "${SUPABASE_URL}"
    key: "${SUPABASE_KEY}"
%(connection)s
checks:
  - {name: vault, type: supabase, connection: supabase, tables: [decision_vault]}
notifiers:
  - {name: hook, type: webhook, url: "${HOOK_URL}", on: [error]}
defaults:
%(defaults)s
"""


@pytest.fixture
def supabase_check(pipeline_file, angles_cli, postgrest, postgres_db, webhook_server, monkeypatch):
    """Run ``angles check`` on a supabase check; returns (result, the check, seconds)."""
    postgres_db.execute("CREATE TABLE decision_vault (id bigint PRIMARY KEY, decision text)")
    monkeypatch.setenv("SUPABASE_URL", postgrest.url)
    monkeypatch.setenv("SUPABASE_KEY", postgrest.service_role_key)
    monkeypatch.setenv("HOOK_URL", f"{webhook_server.url}/hook")

    def run(connection: str = "", defaults: str = "  timeout_seconds: 30"):
        path = pipeline_file(SUPABASE_CHECK % {"connection": connection, "defaults": defaults})
        started = time.monotonic()
        result = angles_cli("check", path, "--format", "json")
        [check] = result.json()["checks"]
        return result, check, time.monotonic() - started

    return run


@pytest.mark.postgres
def test_a_run_out_of_time_names_the_service_and_still_notifies(
    supabase_check, postgrest, webhook_server
):
    postgrest.fail(method="HEAD", delay=8, times=5)
    result, check, elapsed = supabase_check(defaults="  timeout_seconds: 30\n  run_timeout: 3s")
    # the request itself ends with the budget, so the connection's own message wins
    assert check["message"] == (
        "Supabase: counting the rows of 'decision_vault': no answer before the run's time "
        "limit (defaults.run_timeout: 3s) was spent (raise defaults.run_timeout, or find what "
        "took the time in the log)"
    )
    assert elapsed < 6
    assert result.exit_code == 2
    assert result.json()["notifications"] == [{"notifier": "hook", "status": "sent"}]
    [sent] = webhook_server.requests
    assert "counting the rows of 'decision_vault'" in sent.body.decode()


SUPABASE_BACKUP = """\
version: 1
log_dir: logs
state: state.db
connections:
  supabase: {type: supabase, url: "${SUPABASE_URL}", key: "${SUPABASE_KEY}"}
backups:
  - {name: vault, connection: supabase, tables: all, sinks: [local]}
sinks:
  local: {type: local, path: backups}
notifiers:
  - {name: hook, type: webhook, url: "${HOOK_URL}", on: [error], timeout_seconds: 2}
defaults:
  timeout_seconds: 30
  run_timeout: 4s
"""


@pytest.mark.postgres
def test_a_black_holed_supabase_backup_ends_with_the_budget(
    pipeline_file, angles_cli, postgrest, postgres_db, webhook_server, monkeypatch, tmp_path
):
    postgres_db.execute(
        "CREATE TABLE decision_vault (id bigint PRIMARY KEY, decision text);"
        "INSERT INTO decision_vault SELECT g, 'd' || g FROM generate_series(1, 10) g"
    )
    monkeypatch.setenv("SUPABASE_URL", postgrest.url)
    monkeypatch.setenv("SUPABASE_KEY", postgrest.service_role_key)
    monkeypatch.setenv("HOOK_URL", f"{webhook_server.url}/hook")
    postgrest.fail(method="GET", path="decision_vault$", delay=20, times=5)
    started = time.monotonic()
    result = angles_cli("backup", pipeline_file(SUPABASE_BACKUP), "--format", "json")
    elapsed = time.monotonic() - started
    [backup] = result.json()["backups"]
    assert backup["message"].startswith(
        "reading 'decision_vault' failed: Supabase: reading 'decision_vault': no answer before "
        "the run's time limit (defaults.run_timeout: 4s) was spent"
    )
    # the request was cut, not abandoned: the run ends with its budget, and tells people
    assert elapsed < 6
    assert result.exit_code == 2
    assert result.json()["notifications"] == [{"notifier": "hook", "status": "sent"}]
    assert local_backups(tmp_path) == []


@pytest.mark.postgres
def test_the_connections_own_message_wins_over_the_check_deadline(supabase_check, postgrest):
    postgrest.fail(method="HEAD", delay=3, times=5)
    _, check, elapsed = supabase_check(
        connection="    retries: 1\n    timeout_seconds: 0.5", defaults="  timeout_seconds: 0.5"
    )
    assert check["message"].startswith(
        "Supabase: counting the rows of 'decision_vault': no answer within 0.5s; tried 2 times"
    )
    assert elapsed < 5


@pytest.mark.postgres
def test_supabase_retries_a_429_after_its_retry_after(supabase_check, postgrest):
    postgrest.fail(method="HEAD", status=429, headers={"Retry-After": "1"}, times=1)
    _, check, elapsed = supabase_check(connection="    retries: 1")
    assert check["status"] == "ok"
    assert len(postgrest.requests_to("decision_vault", "HEAD")) == 2
    assert 1 <= elapsed < 5


@pytest.mark.postgres
def test_a_429_whose_wait_passes_the_budget_fails_at_once(supabase_check, postgrest):
    postgrest.fail(method="HEAD", status=429, headers={"Retry-After": "120"}, times=5)
    _, check, elapsed = supabase_check(
        connection="    retries: 3", defaults="  timeout_seconds: 5\n  run_timeout: 1m"
    )
    assert check["message"].startswith(
        "Supabase: counting the rows of 'decision_vault': rate limited (HTTP 429); not retried: "
        "the next try asked for a 120s wait"
    )
    assert elapsed < 5


def test_slack_answering_200_without_ok_is_not_sent(pipeline_file, angles_cli, slack_server):
    url = slack_server.webhook_url
    slack_server.fail(status=200, body="<html><title>Wi-Fi login</title></html>")
    path = pipeline_file(
        f"version: 1\nlog_dir: logs\nstate: state.db\n"
        f"notifiers:\n  - {{name: slack, type: slack, webhook_url: '{url}', on: [always]}}\n"
    )
    result = angles_cli("run", path, "--format", "json")
    [notification] = result.json()["notifications"]
    assert notification["status"] == "error"
    assert notification["message"].startswith(
        'Slack: posting the message: the answer was not Slack\'s "ok" (HTTP 200: Wi-Fi login)'
    )
    assert url not in result.output


@pytest.mark.parametrize("value", ["0m", "soon", "-5"])
def test_run_timeout_is_validated(pipeline_file, angles_cli, value):
    path = pipeline_file(f"version: 1\ndefaults:\n  run_timeout: {value}\n")
    result = angles_cli("validate", path)
    assert result.exit_code == 3
    assert "angles.yaml:3: defaults.run_timeout:" in result.output


def test_an_abandoned_check_does_not_hold_the_exit(tmp_path, webhook_server):
    """The stuck check's thread is still busy when the run ends: the process exits; the
    stalled request ends with the run's budget, with its own message."""
    webhook_server.fail(delay=30)
    path = tmp_path / "angles.yaml"
    path.write_text(
        "version: 1\nlog_dir: logs\nstate: state.db\n"
        f"checks:\n  - {{name: api, type: http, url: '{webhook_server.url}/health', "
        "timeout_seconds: 30}\n"
        "  - {name: stuck, type: static, status: ok, sleep_seconds: 30}\n"
        "defaults:\n  run_timeout: 2s\n"
    )
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", "angles", "check", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=25,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert time.monotonic() - started < 12
    assert process.returncode == 2
    api, stuck = json.loads(process.stdout)["checks"]
    assert api["message"] == (
        f"GET {webhook_server.url}/health: no answer before the run's time limit "
        "(defaults.run_timeout: 2s) was spent"
    )
    assert stuck["message"] == (
        "the run's time limit (defaults.run_timeout: 2s) was spent; "
        "it was not waiting on any service"
    )
