"""The ``notion`` check, run by ``angles check`` against the Notion imitation."""

from __future__ import annotations

from pathlib import Path

import pytest

PIPELINE = """\
version: 1
log_dir: logs
connections:
  notion: {{type: notion, token: "${{NOTION_API_KEY}}", api_url: "{url}"}}
checks:
  - name: notion
    type: notion
    connection: notion
    database_id: "${{NOTION_DATABASE_ID}}"
{extra}
"""


@pytest.fixture
def run_check(notion_server, angles_cli, pipeline_file, monkeypatch):
    monkeypatch.setenv("NOTION_API_KEY", notion_server.token)

    def run(database_id: str, extra: str = "", *args: str):
        monkeypatch.setenv("NOTION_DATABASE_ID", database_id)
        path = pipeline_file(PIPELINE.format(url=notion_server.url, extra=extra))
        result = angles_cli("check", path, "--format", "json", *args)
        [check] = result.json()["checks"]
        return result, check

    return run


def logs(tmp_path: Path) -> str:
    folder = tmp_path / "logs"
    return "".join(p.read_text() for p in folder.iterdir()) if folder.is_dir() else ""


def test_a_shared_readable_database_is_ok(notion_server, run_check, tmp_path):
    database_id, source_id = notion_server.add_database(
        "Decisions", properties={"Name": "title", "Done": "checkbox"}, pages=[{"Name": "a"}]
    )
    result, check = run_check(database_id)
    assert (result.exit_code, check["status"]) == (0, "ok"), check
    assert check["message"].startswith("database 'Decisions' is readable (2 properties, ")
    details = check["details"]
    assert details["data_source_id"] == source_id
    assert details["has_pages"] is True
    assert isinstance(details["latency_ms"], int)
    paths = [r.path for r in notion_server.requests]
    assert paths == [
        "/v1/users/me",
        f"/v1/databases/{database_id}",
        f"/v1/data_sources/{source_id}",
        f"/v1/data_sources/{source_id}/query",
    ]
    assert notion_server.token not in result.output + logs(tmp_path)


def test_a_bad_token_is_an_error_naming_notion_api_key(
    notion_server, run_check, monkeypatch, tmp_path
):
    database_id, _ = notion_server.add_database()
    notion_server.token = "ntn_rotated-token-the-pipeline-does-not-have"
    result, check = run_check(database_id)
    assert (result.exit_code, check["status"]) == (2, "error")
    assert "HTTP 401 unauthorized" in check["message"]
    assert "check NOTION_API_KEY" in check["message"]


def test_an_unshared_database_is_an_error_saying_to_share_it(notion_server, run_check):
    database_id, _ = notion_server.add_database()
    notion_server.share(database_id, False)
    result, check = run_check(database_id)
    assert result.exit_code == 2
    assert "HTTP 404 object_not_found" in check["message"]
    assert "share the database with the integration" in check["message"]


def test_a_rate_limit_is_waited_out(notion_server, run_check):
    database_id, _ = notion_server.add_database()
    notion_server.rate_limited(times=2, retry_after=0, path="/databases/")
    result, check = run_check(database_id)
    assert (result.exit_code, check["status"]) == (0, "ok"), check
    assert len(notion_server.requests_to("/databases/")) == 3


def test_a_rate_limit_that_lasts_is_an_error(notion_server, run_check):
    database_id, _ = notion_server.add_database()
    notion_server.rate_limited(times=3, retry_after=0, path="/databases/")
    result, check = run_check(database_id)
    assert result.exit_code == 2
    assert "rate limited (HTTP 429); tried 3 times" in check["message"]


def test_several_data_sources_need_one_named(notion_server, run_check):
    database_id, _ = notion_server.add_database("Hub", data_source_name="Decisions")
    archive = notion_server.add_data_source(database_id, "Archive")
    result, check = run_check(database_id)
    assert result.exit_code == 2
    assert "has 2 data sources" in check["message"]
    result, check = run_check(database_id, "    data_source: Archive")
    assert (result.exit_code, check["details"]["data_source_id"]) == (0, archive)


def test_slow_answers_are_a_warning_above_warn_latency_ms(notion_server, run_check):
    database_id, _ = notion_server.add_database()
    notion_server.fail(path="/users/me", delay=0.1)
    result, check = run_check(database_id, "    warn_latency_ms: 50")
    assert (result.exit_code, check["status"]) == (1, "warning")
    assert "slower than 50 ms" in check["message"]


def test_test_mode_contacts_nothing(notion_server, run_check):
    database_id, _ = notion_server.add_database()
    result, check = run_check(database_id, "", "--test")
    assert result.exit_code == 2
    assert check["message"].startswith("[TEST]")
    assert notion_server.requests == []


def test_a_malformed_database_id_is_a_pipeline_error(
    notion_server, pipeline_file, angles_cli, monkeypatch
):
    monkeypatch.setenv("NOTION_API_KEY", "ntn_x")
    text = PIPELINE.format(url=notion_server.url, extra="")
    result = angles_cli("validate", pipeline_file(text.replace('"${NOTION_DATABASE_ID}"', "db")))
    assert result.exit_code == 3
    assert "checks[0].database_id: is not a Notion id" in result.stderr
    assert notion_server.requests == []
