"""``angles backup``, ``angles backups list|verify`` and ``angles restore`` end to end."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

OLD_FILE = Path(__file__).parents[1] / "data" / "decision_vault_2025-08-07_15-30-00.json"

PIPELINE = """\
version: 1
name: cli
connections:
  vault: {type: sqlite, path: vault.db}
sinks:
  local: {type: local, path: backups, retention_days: 30}
backups:
  - {name: decision_vault, connection: vault, table: decision_vault, sinks: [local]}
"""


def sql(path: Path, statement: str, params=()) -> None:
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(statement, params)


@pytest.fixture
def project(pipeline_file, tmp_path):
    """A pipeline, and a vault shaped like the older system's table, with 3 rows."""
    path = pipeline_file(PIPELINE)
    db = tmp_path / "vault.db"
    sql(
        db,
        "CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT, type TEXT,"
        " date TEXT, notion_synced BOOLEAN, notion_page_id TEXT, created_at TEXT, updated_at TEXT)",
    )
    for i in range(3):
        sql(
            db,
            "INSERT INTO decision_vault (id, decision, updated_at) VALUES (?, ?, ?)",
            (f"id{i}", f"décision {i}", "2025-01-01T00:00:00Z"),
        )
    return path, db


def test_backup_then_list_then_verify(angles_cli, project, tmp_path):
    path, _ = project
    result = angles_cli("backup", path, "--format", "json")
    assert result.exit_code == 0, result.output
    report = result.json()
    (backup,) = report["backups"]
    assert backup["status"] == "ok" and backup["record_count"] == 3
    name = backup["files"][0]["name"]

    listed = angles_cli("backups", "list", path, "--format", "json")
    assert listed.exit_code == 0
    (row,) = listed.json()["local"]
    assert row["name"] == name and row["record_count"] == 3 and row["checksum"] is True
    assert row["size"] == (tmp_path / "backups" / name).stat().st_size
    text = angles_cli("backups", "list", path).stdout
    assert name in text and "3 rows" in text

    verified = angles_cli("backups", "verify", path, name)
    assert verified.exit_code == 0 and "match the checksum" in verified.stdout
    file = tmp_path / "backups" / name
    file.write_bytes(file.read_bytes().replace("décision 1".encode(), "décision 9".encode()))
    damaged = angles_cli("backups", "verify", path, "--format", "json")
    assert damaged.exit_code == 2
    assert damaged.json()["backups"][0]["status"] == "error"


def test_backup_by_name_and_unknown_name(angles_cli, project, monkeypatch, tmp_path):
    path, _ = project
    monkeypatch.chdir(tmp_path)
    assert angles_cli("backup", "decision_vault").exit_code == 0  # PIPELINE defaults
    unknown = angles_cli("backup", path, "nope")
    assert unknown.exit_code == 3 and "no backup named 'nope'" in unknown.stderr


def test_failed_backup_exits_2(angles_cli, project):
    path, db = project
    sql(db, "DROP TABLE decision_vault")
    result = angles_cli("backup", path)
    assert result.exit_code == 2
    assert "there is no table 'decision_vault'" in result.stdout


def test_restore_dry_run_live_and_confirmation(angles_cli, project):
    path, db = project
    angles_cli("backup", path)
    sql(db, "DELETE FROM decision_vault WHERE id = 'id1'")
    sql(db, "UPDATE decision_vault SET decision = 'x' WHERE id = 'id2'")

    dry = angles_cli("restore", path, "--format", "json")
    assert dry.exit_code == 0, dry.output
    plan = dry.json()
    assert set(plan) >= {"table", "backup", "sink", "verified", "live", "counts", "samples"}
    assert plan["counts"]["insert"] == 1 and plan["counts"]["update"] == 1
    assert plan["live"] is False and plan["pre_restore_backup"] is None
    text = angles_cli("restore", path, "--table", "decision_vault")
    assert "Dry run: nothing was changed" in text.stdout

    refused = angles_cli("restore", path, "--live")  # no terminal, no --yes
    assert refused.exit_code == 2 and "add --yes" in refused.stderr

    live = angles_cli("restore", path, "--live", "--yes", "--format", "json")
    assert live.exit_code == 0, live.output
    applied = live.json()
    assert applied["live"] is True and applied["applied"]["written"] == 2
    assert "_pre-restore_" in applied["pre_restore_backup"]
    again = angles_cli("restore", path, "--format", "json").json()
    assert again["counts"]["unchanged"] == 3


def test_restore_refusals_exit_2(angles_cli, project, tmp_path):
    path, _ = project
    angles_cli("backup", path)
    (name,) = [p.name for p in (tmp_path / "backups").iterdir()]
    file = tmp_path / "backups" / name
    file.write_bytes(file.read_bytes()[:-10])
    damaged = angles_cli("restore", path, "--backup", name)
    assert damaged.exit_code == 2 and "damaged" in damaged.stderr
    both = angles_cli("restore", path, "--backup", name, "--file", str(file))
    assert both.exit_code == 3


def test_restore_columns_differ_dry_run_exits_1_and_live_exits_2(angles_cli, project):
    path, db = project
    angles_cli("backup", path)
    sql(db, "ALTER TABLE decision_vault ADD COLUMN extra TEXT")
    dry = angles_cli("restore", path)
    assert dry.exit_code == 1 and "columns differ" in dry.stdout
    live = angles_cli("restore", path, "--live", "--yes")
    assert live.exit_code == 2 and "auto_migrate" in live.stderr


def test_old_format_file_lists_and_restores_unverified(angles_cli, project, tmp_path):
    path, db = project
    (tmp_path / "backups").mkdir()
    shutil.copy(OLD_FILE, tmp_path / "backups")
    listed = angles_cli("backups", "list", path, "--format", "json").json()["local"]
    assert listed[0]["record_count"] == 12 and listed[0]["checksum"] is False
    verify = angles_cli("backups", "verify", path)
    assert verify.exit_code == 1 and "no checksum" in verify.stdout
    plan = angles_cli("restore", path, "--format", "json").json()
    assert plan["verified"] is False and plan["counts"]["insert"] == 12
    live = angles_cli("restore", path, "--file", str(OLD_FILE), "--live", "--yes")
    assert live.exit_code == 0 and "UNVERIFIED" in live.stdout
    with closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT count(*) FROM decision_vault").fetchone()[0] == 15
