"""Structured logs: JSON lines in the contract's files, readable lines for people."""

from __future__ import annotations

import io
import json

from angles.core import logging as angles_logging
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
    angles_logging.configure(tmp_path, Redactor(["hunter2-secret"]), console=console)
    try:
        angles_logging.get_logger("backup").info("backup stored", table="t", token="hunter2-secret")
    finally:
        angles_logging.configure(None, Redactor())
    line = console.getvalue().strip()
    assert "info" in line and "backup stored" in line and "table=t" in line and "token=***" in line
    assert "hunter2-secret" not in (tmp_path / "backup.log").read_text()
    assert json.loads((tmp_path / "backup.log").read_text())["token"] == "***"
