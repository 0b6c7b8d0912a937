"""The sync_backlog check on the embedded SQLite connection."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

PIPELINE = """\
version: 1
connections:
  vault: {{type: sqlite, path: vault.db}}
checks:
  - name: sync
    type: sync_backlog
    connection: vault
    table: decision_vault
    unsynced: "notion_synced=is.false"
    warn_above: 10
    error_above: 50
{extra}
"""


def make_vault(path, unsynced: int, synced: int = 5, oldest_age=timedelta(hours=1)):
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT,"
        " notion_synced BOOLEAN NOT NULL, created_at TEXT NOT NULL)"
    )
    now = datetime.now(UTC)
    rows = [(f"s{i:04}", "done", True, now.isoformat()) for i in range(synced)]
    rows += [
        (f"u{i:04}", "pending", False, (now - oldest_age + timedelta(seconds=i)).isoformat())
        for i in range(unsynced)
    ]
    db.executemany("INSERT INTO decision_vault VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def run_check(angles_cli, pipeline_file, extra: str = ""):
    path = pipeline_file(PIPELINE.format(extra=extra))
    result = angles_cli("check", path, "--format", "json")
    [check] = result.json()["checks"]
    return result.exit_code, check


@pytest.mark.parametrize(
    ("unsynced", "status", "code", "message"),
    [
        (0, "ok", 0, "0 unsynced records"),
        (10, "ok", 0, "10 unsynced records"),
        (11, "warning", 1, "11 unsynced records (warning above 10)"),
        (51, "error", 2, "51 unsynced records (error above 50)"),
        (1500, "error", 2, "1500 unsynced records (error above 50)"),
    ],
)
def test_thresholds(angles_cli, pipeline_file, tmp_path, unsynced, status, code, message):
    make_vault(tmp_path / "vault.db", unsynced)
    exit_code, check = run_check(angles_cli, pipeline_file)
    assert (exit_code, check["status"], check["message"]) == (code, status, message)
    assert check["details"]["unsynced"] == unsynced


def test_samples_are_the_oldest_unsynced_keys(angles_cli, pipeline_file, tmp_path):
    make_vault(tmp_path / "vault.db", 12)
    _, check = run_check(angles_cli, pipeline_file, "    samples: 3")
    assert check["details"]["samples"] == ["u0000", "u0001", "u0002"]
    assert 3500 < check["details"]["oldest_age_seconds"] < 3700


def test_a_stuck_sync_is_an_error_even_when_the_count_is_low(angles_cli, pipeline_file, tmp_path):
    make_vault(tmp_path / "vault.db", 2, oldest_age=timedelta(days=3))
    exit_code, check = run_check(angles_cli, pipeline_file, "    max_age: 1d")
    assert exit_code == 2
    assert check["message"] == "the oldest unsynced record is 3d old (max 1d): is the sync stuck?"


def test_a_young_backlog_passes_max_age(angles_cli, pipeline_file, tmp_path):
    make_vault(tmp_path / "vault.db", 2, oldest_age=timedelta(hours=2))
    exit_code, check = run_check(angles_cli, pipeline_file, "    max_age: 1d")
    assert (exit_code, check["status"]) == (0, "ok")


def test_a_missing_table_is_an_error_naming_it(angles_cli, pipeline_file, tmp_path):
    sqlite3.connect(tmp_path / "vault.db").close()
    exit_code, check = run_check(angles_cli, pipeline_file)
    assert exit_code == 2
    assert "decision_vault" in check["message"]


def test_a_missing_database_file_is_an_error_naming_it(angles_cli, pipeline_file, tmp_path):
    exit_code, check = run_check(angles_cli, pipeline_file)
    assert exit_code == 2
    assert "vault.db" in check["message"] and "does not exist" in check["message"]


def test_thresholds_in_the_wrong_order_are_a_pipeline_error(angles_cli, pipeline_file):
    path = pipeline_file(PIPELINE.format(extra="").replace("warn_above: 10", "warn_above: 60"))
    result = angles_cli("validate", path)
    assert result.exit_code == 3
    assert "checks[0].warn_above: must not be above error_above" in result.stderr
