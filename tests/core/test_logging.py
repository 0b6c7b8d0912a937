"""Structured logs: JSON lines in the contract's files, readable lines for people."""

from __future__ import annotations

import io
import json

from angles.core.logging import Logs
from angles.core.redact import Redactor

PIPELINE = """\
version: 1
name: demo
log_dir: var/logs
checks:
  - {name: fine, type: static, status: ok, message: all good}
"""


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_writes_json_lines_to_the_contract_files(angles_cli, pipeline_file, tmp_path):
    angles_cli("run", pipeline_file(PIPELINE))
    health = read(tmp_path / "var/logs/health_check.log")
    assert [(e["event"], e["check"], e["status"], e["level"]) for e in health] == [
        ("check finished", "fine", "ok", "info")
    ]
    assert health[0]["timestamp"].endswith("Z")
    runs = read(tmp_path / "var/logs/automated_runs.log")
    assert [e["event"] for e in runs] == ["run started", "run finished"]
    assert runs[1]["status"] == "ok" and runs[1]["pipeline"] == "demo"


def test_logs_append_across_runs(angles_cli, pipeline_file, tmp_path):
    path = pipeline_file(PIPELINE)
    angles_cli("run", path)
    angles_cli("run", path)
    assert len(read(tmp_path / "var/logs/health_check.log")) == 2


def test_console_rendering_is_readable_and_redacted(tmp_path):
    console = io.StringIO()
    logs = Logs(tmp_path, Redactor(["hunter2-secret"]), console=console, console_level="info")
    logs.logger("backup").info("backup stored", table="t", token="hunter2-secret")
    logs.close()
    line = console.getvalue().strip()
    assert "info" in line and "backup stored" in line and "table=t" in line and "token=***" in line
    assert "hunter2-secret" not in (tmp_path / "backup.log").read_text()
    assert json.loads((tmp_path / "backup.log").read_text())["token"] == "***"


def test_two_commands_in_one_process_keep_their_own_secrets(angles_cli, pipeline_file):
    url = "http://127.0.0.1:9/hooks/first-secret"
    first = pipeline_file(
        f"version: 1\nnotifiers:\n  - {{name: hook, type: webhook, url: '{url}'}}\n",
        name="first.yaml",
    )
    second = pipeline_file(f"version: 1\nname: '{url}'\n", name="second.yaml")
    assert angles_cli("validate", first).exit_code == 0
    result = angles_cli("run", second, "--format", "json")
    # The URL is a secret of the first pipeline only: the second command shows it.
    assert result.json()["pipeline"] == url


def test_logs_of_two_contexts_go_to_their_own_folders(tmp_path):
    one, two = (
        Logs(tmp_path / "one", Redactor(["alpha-secret"])),
        Logs(tmp_path / "two", Redactor()),
    )
    one.logger("runs").warning("hello", value="alpha-secret")
    two.logger("runs").warning("hello", value="alpha-secret")
    one.close()
    two.close()
    assert json.loads((tmp_path / "one/automated_runs.log").read_text())["value"] == "***"
    assert json.loads((tmp_path / "two/automated_runs.log").read_text())["value"] == "alpha-secret"
