"""The production pipeline (the repository's angles.yaml) end to end, against every test server.

A per-environment file extends angles.yaml, as users write angles.prod.yaml, only to point
Notion and GitHub at the servers on 127.0.0.1 and to trust the mail server's certificate.
"""

from __future__ import annotations

import email.policy
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

TEST_ENVIRONMENT = """\
extends: angles.yaml
name: production
connections:
  notion: {{api_url: "{notion_url}"}}
sinks:
  github: {{api_url: "{github_url}", throttle: false}}
notifiers:
  - {{name: slack, type: slack, webhook_url: "${{SLACK_WEBHOOK_URL}}", on: [warning, error, recovery]}}
  - name: email
    type: smtp
    host: "${{SMTP_SERVER}}"
    port: "${{SMTP_PORT:-587}}"
    username: "${{SMTP_USERNAME}}"
    password: "${{SMTP_PASSWORD}}"
    to: ["${{EMAIL_RECIPIENT}}"]
    tls: starttls
    ca_file: "{ca_file}"
    on: [error, recovery]
"""


@pytest.fixture
def production(
    tmp_path,
    monkeypatch,
    postgrest,
    postgres_db,
    notion_server,
    github_server,
    slack_server,
    smtp_server,
):
    postgres_db.execute(
        "CREATE TABLE decision_vault (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
        " decision text NOT NULL, type text, notion_synced boolean NOT NULL DEFAULT false,"
        " notion_page_id text, created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now())"
    )
    postgres_db.execute(
        "INSERT INTO decision_vault (decision, type, notion_synced)"
        " SELECT 'Décision ' || i, 'Process', i > 3 FROM generate_series(1, 1500) AS i"
    )
    database_id, source_id = notion_server.add_database(
        "Decisions", properties={"Name": "title", "Synced": "checkbox"}
    )
    # Every row has its page; the first three are not flagged as synced yet.
    rows = postgres_db.fetchall("SELECT id, decision FROM decision_vault ORDER BY id")
    pages = notion_server.add_pages(source_id, [{"Name": decision} for _, decision in rows])
    postgres_db.execute(
        "UPDATE decision_vault AS d SET notion_page_id = p.page FROM"
        " unnest(%s::uuid[], %s::text[]) AS p(id, page) WHERE d.id = p.id",
        [[str(row_id) for row_id, _ in rows], pages],
    )
    github_server.create_repo("acme", "angles-backup")
    environment = {
        "SUPABASE_URL": postgrest.url,
        "SUPABASE_KEY": postgrest.service_role_key,
        "NOTION_API_KEY": notion_server.token,
        "NOTION_DATABASE_ID": database_id,
        "GITHUB_REPOSITORY": "acme/angles-backup",
        "GITHUB_TOKEN": github_server.token,
        "SLACK_WEBHOOK_URL": slack_server.webhook_url,
        "SMTP_SERVER": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_USERNAME": smtp_server.username,
        "SMTP_PASSWORD": smtp_server.password,
        "EMAIL_RECIPIENT": "ops@example.com",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    shutil.copy(ROOT / "angles.yaml", tmp_path / "angles.yaml")
    path = tmp_path / "angles.test.yaml"
    path.write_text(
        TEST_ENVIRONMENT.format(
            notion_url=notion_server.url, github_url=github_server.url, ca_file=smtp_server.ca_file
        )
    )
    return path, environment


def secrets_in(environment: dict[str, str]) -> list[str]:
    return [
        environment[n] for n in ("SUPABASE_KEY", "NOTION_API_KEY", "GITHUB_TOKEN", "SMTP_PASSWORD")
    ] + [environment["SLACK_WEBHOOK_URL"]]


def everything_written(tmp_path: Path, *outputs: str) -> str:
    logs = "".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    return "".join(outputs) + logs


def test_the_nightly_run(
    production, angles_cli, tmp_path, postgres_db, github_server, slack_server, smtp_server
):
    path, environment = production

    assert angles_cli("backup", path).exit_code == 0  # yesterday's, for the drill
    healthy = angles_cli("run", path, "--format", "json")
    report = healthy.json()
    assert healthy.exit_code == 0, healthy.output
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        "supabase": "ok",
        "notion": "ok",
        "sync": "ok",
        "notion-sync": "ok",
        "drill": "ok",
    }
    assert report["checks"][3]["details"]["synced_rows"] == 1497
    assert report["checks"][4]["details"]["tables"]["decision_vault"]["records"] == 1500
    assert report["checks"][2]["details"]["unsynced"] == 3
    [backup] = report["backups"]
    assert backup["status"] == "ok" and backup["record_count"] == 1500
    [stored] = backup["files"]
    assert stored["sink"] == "github"
    assert f"backups/{stored['name']}" in github_server.list_files("acme/angles-backup")
    assert report["notifications"] == []  # nothing wrong, nobody disturbed

    # The sync stalls: hundreds of records pile up, past the error threshold.
    postgres_db.execute(
        "UPDATE decision_vault SET notion_synced = false WHERE decision NOT LIKE 'Décision 9%'"
    )
    unsynced = postgres_db.fetchval("SELECT count(*) FROM decision_vault WHERE NOT notion_synced")
    assert unsynced > 1000  # more than one page of the gateway's 1,000-row cap
    failing = angles_cli("check", path, "--format", "json")
    assert failing.exit_code == 2
    [sync] = [c for c in failing.json()["checks"] if c["name"] == "sync"]
    assert sync["message"] == f"{unsynced} unsynced records (error above 50)"
    assert {n["notifier"]: n["status"] for n in failing.json()["notifications"]} == {
        "slack": "sent",
        "email": "sent",
    }
    assert f"{unsynced} unsynced records" in json.dumps(slack_server.messages[-1])
    mail = smtp_server.messages[-1]
    assert "error" in mail["Subject"] and mail["To"] == "ops@example.com"

    # Fixed again: a recovery message, on both channels.
    postgres_db.execute("UPDATE decision_vault SET notion_synced = true")
    recovered = angles_cli("check", path, "--format", "json")
    assert recovered.exit_code == 0
    assert len(slack_server.messages) == 2 and len(smtp_server.messages) == 2
    assert "recovered" in smtp_server.messages[-1]["Subject"]

    # The status page and the metrics follow every run.
    page = (tmp_path / "status.html").read_text(encoding="utf-8")
    assert "The last 4 runs" in page and "sync (error)" in page  # the stalled run
    metrics = (tmp_path / "angles.prom").read_text(encoding="utf-8")
    assert 'angles_check_status{check="sync",pipeline="production",type="sync_backlog"} 0.0' in (
        metrics
    )

    written = everything_written(tmp_path, healthy.output, failing.output, recovered.output)
    written += json.dumps(slack_server.messages) + page + metrics
    written += "".join(m.as_string(policy=email.policy.default) for m in smtp_server.messages)
    for secret in secrets_in(environment):
        assert secret not in written


def test_test_mode_proves_alerts_arrive_without_contacting_services(
    production,
    angles_cli,
    tmp_path,
    postgrest,
    slack_server,
    smtp_server,
    notion_server,
    github_server,
):
    path, _ = production
    result = angles_cli("run", path, "--test", "--format", "json")
    assert result.exit_code == 2
    assert all(c["message"].startswith("[TEST]") for c in result.json()["checks"])
    assert (
        postgrest.requests == [] and notion_server.requests == [] and github_server.requests == []
    )
    assert "[TEST]" in json.dumps(slack_server.messages[-1])
    assert smtp_server.messages[-1]["Subject"].startswith("[TEST]")
    assert not (tmp_path / "status.html").exists() and not (tmp_path / "angles.prom").exists()


def test_restore_after_damage_keeps_todays_work(production, angles_cli, postgres_db):
    path, _ = production
    assert angles_cli("backup", path).exit_code == 0
    postgres_db.execute(
        "UPDATE decision_vault SET decision = 'oops' WHERE decision LIKE 'Décision 2%'"
    )
    postgres_db.execute(
        "UPDATE decision_vault SET decision = 'today', updated_at = now() + interval '1 second'"
        " WHERE decision = 'Décision 5'"
    )
    postgres_db.execute("DELETE FROM decision_vault WHERE decision = 'Décision 7'")

    dry = angles_cli("restore", path, "--format", "json")
    assert dry.exit_code == 0, dry.output
    plan = dry.json()
    assert (plan["sink"], plan["verified"], plan["live"]) == ("github", True, False)
    assert plan["counts"] == {
        "insert": 1,
        "update": 111,
        "unchanged": 1387,
        "only_in_database": 0,
        "newer_in_database": 1,
    }

    live = angles_cli("restore", path, "--live", "--yes", "--format", "json")
    assert live.exit_code == 0, live.output
    assert live.json()["pre_restore_backup"]
    assert postgres_db.fetchval("SELECT count(*) FROM decision_vault WHERE decision = 'oops'") == 0
    assert postgres_db.fetchval("SELECT count(*) FROM decision_vault WHERE decision = 'today'") == 1
    assert postgres_db.fetchval("SELECT count(*) FROM decision_vault") == 1500

    again = angles_cli("restore", path, "--format", "json")
    assert again.json()["counts"]["insert"] == again.json()["counts"]["update"] == 0
