"""A state store or log folder that cannot be used stops a command before any service is
contacted (exit 3, naming the key), and ``validate`` reports it without creating anything."""

from __future__ import annotations

import pytest

PIPELINE = """\
version: 1
name: nightly
{extra}
checks:
  - {{name: up, type: http, url: "{url}/up"}}
notifiers:
  - {{name: hook, type: webhook, url: "{url}/hook"}}
"""


@pytest.fixture
def write(pipeline_file, webhook_server):
    def make(extra: str):
        return pipeline_file(PIPELINE.format(extra=extra, url=webhook_server.url))

    return make


@pytest.mark.parametrize("command", ["run", "check", "validate"])
def test_a_state_path_that_is_a_folder_stops_the_command(
    angles_cli, write, webhook_server, tmp_path, command
):
    (tmp_path / "history").mkdir()
    path = write("state: history")
    result = angles_cli(command, path)
    assert result.exit_code == 3
    assert result.stderr == (
        f"ERROR: {path}:3: state: {tmp_path / 'history'} is a directory (state: is a SQLite "
        f"file, e.g. {tmp_path / 'history' / 'state.db'}, or a postgresql:// URL)\n"
    )
    assert webhook_server.requests == []  # neither the check nor the notifier ran


@pytest.mark.parametrize("command", ["run", "backup", "validate"])
def test_a_log_dir_that_is_a_file_stops_the_command(
    angles_cli, write, webhook_server, tmp_path, command
):
    (tmp_path / "logs.txt").write_text("not a folder")
    path = write("log_dir: logs.txt")
    result = angles_cli(command, path, "--format", "json")
    assert result.exit_code == 3
    if command == "validate":
        [problem] = result.json()["problems"]
        assert problem == {
            "file": str(path),
            "line": 3,
            "key": "log_dir",
            "message": f"{tmp_path / 'logs.txt'} is a file, not a folder",
        }
    else:
        assert result.json()["error"]["message"] == (
            f"{path}:3: log_dir: {tmp_path / 'logs.txt'} is a file, not a folder"
        )
    assert webhook_server.requests == []


def test_a_state_file_that_is_not_sqlite_is_reported(angles_cli, write, tmp_path):
    (tmp_path / "state.db").write_text("name,status\nnightly,ok\n")
    result = angles_cli("run", write("state: state.db"))
    assert result.exit_code == 3
    assert f"state: {tmp_path / 'state.db'} is not a SQLite database" in result.stderr


def test_a_state_folder_below_a_file_is_reported(angles_cli, write, tmp_path):
    (tmp_path / "data").write_text("")
    result = angles_cli("validate", write("state: data/angles/state.db"))
    assert result.exit_code == 3
    assert result.stderr.endswith(
        f"state: {tmp_path / 'data' / 'angles'} cannot be created: {tmp_path / 'data'} is a file\n"
    )


def test_validate_creates_nothing_and_run_creates_both(angles_cli, write, tmp_path):
    path = write("state: var/state.db\nlog_dir: var/logs")
    assert angles_cli("validate", path).exit_code == 0
    assert not (tmp_path / "var").exists()
    assert angles_cli("run", path).exit_code == 0
    assert (tmp_path / "var" / "state.db").is_file()
    assert (tmp_path / "var" / "logs" / "automated_runs.log").is_file()


def test_history_needs_neither_secrets_nor_services(angles_cli, pipeline_file, monkeypatch):
    for name in ("SUPABASE_URL", "SUPABASE_KEY", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    path = pipeline_file(
        """\
        version: 1
        name: prod
        connections:
          supabase: {type: supabase, url: "${SUPABASE_URL}", key: "${SUPABASE_KEY}"}
        checks:
          - {name: db, type: supabase, connection: supabase, tables: [decision_vault]}
        notifiers:
          - {name: slack, type: slack, webhook_url: "${SLACK_WEBHOOK_URL}"}
        """
    )
    history = angles_cli("history", path)
    assert history.exit_code == 0, history.output
    assert history.stdout == "prod: no runs recorded yet (angles run records them)\n"
    run = angles_cli("run", path)  # a command that contacts services still demands them
    assert run.exit_code == 3
    assert "variable SUPABASE_KEY is not set" in run.stderr
    assert "variable SLACK_WEBHOOK_URL is not set" in run.stderr


def test_history_still_needs_the_state_store_variable(angles_cli, pipeline_file, monkeypatch):
    monkeypatch.delenv("STATE_URL", raising=False)
    result = angles_cli("history", pipeline_file('version: 1\nstate: "${STATE_URL}"\n'))
    assert result.exit_code == 3
    assert "state: variable STATE_URL is not set" in result.stderr
