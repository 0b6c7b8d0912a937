"""The ``backup_freshness`` check on a local sink: fresh, stale, none at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

PIPELINE = """\
version: 1
sinks:
  local: {{type: local, path: backups}}
checks:
  - {{name: fresh, type: backup_freshness, sink: {sink}, table: decision_vault, max_age_hours: 26}}
"""


def store(folder: Path, table: str, age: timedelta, *, pre_restore: bool = False) -> str:
    """A backup file in the local sink's folder, as old as ``age``."""
    moment = datetime.now(UTC) - age
    middle = "_pre-restore" if pre_restore else ""
    name = f"{table}{middle}_{moment:%Y-%m-%d_%H-%M-%S}.json"
    metadata = {"timestamp": moment.isoformat(), "record_count": 3, "source": table}
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(
        json.dumps({"metadata": metadata}, separators=(", ", ": "))[:-1]
        + ', "data": [\n{"id":1},\n{"id":2},\n{"id":3}\n]}'
    )
    return name


def run_check(angles_cli, pipeline_file, sink: str = "local"):
    result = angles_cli("check", pipeline_file(PIPELINE.format(sink=sink)), "--format", "json")
    [check] = result.json()["checks"]
    return result.exit_code, check


def test_a_recent_backup_is_ok(angles_cli, pipeline_file, tmp_path):
    store(tmp_path / "backups", "decision_vault", timedelta(hours=30))
    newest = store(tmp_path / "backups", "decision_vault", timedelta(hours=2, minutes=5))
    code, check = run_check(angles_cli, pipeline_file)
    assert (code, check["status"]) == (0, "ok"), check
    assert check["message"] == (
        "the newest backup of 'decision_vault' in 'local' is 2h 5m old (max 26h)"
    )
    details = check["details"]
    assert (details["newest"], details["backups"], details["record_count"]) == (newest, 2, 3)
    assert 2.0 < details["age_hours"] < 2.2


def test_a_stale_backup_is_an_error(angles_cli, pipeline_file, tmp_path):
    name = store(tmp_path / "backups", "decision_vault", timedelta(hours=27))
    store(tmp_path / "backups", "other_table", timedelta(minutes=5))
    store(tmp_path / "backups", "decision_vault", timedelta(minutes=5), pre_restore=True)
    code, check = run_check(angles_cli, pipeline_file)
    assert (code, check["status"]) == (2, "error")
    assert check["message"] == (
        f"the newest backup of 'decision_vault' in 'local' is 1d 3h old (max 26h): {name}"
    )


def test_no_backup_at_all_is_an_error(angles_cli, pipeline_file, tmp_path):
    store(tmp_path / "backups", "other_table", timedelta(minutes=5))
    code, check = run_check(angles_cli, pipeline_file)
    assert code == 2
    assert check["message"] == (
        "no backup of 'decision_vault' in sink 'local': has the backup ever run?"
    )
    assert check["details"]["backups"] == 0


def test_a_real_backup_counts(angles_cli, pipeline_file, tmp_path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "vault.db")
    db.execute("CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT)")
    db.executemany("INSERT INTO decision_vault VALUES (?, ?)", [("a", "x"), ("b", "y")])
    db.commit()
    db.close()
    path = pipeline_file(
        PIPELINE.format(sink="local")
        + "connections:\n  vault: {type: sqlite, path: vault.db}\n"
        + "backups:\n  - {name: dv, connection: vault, table: decision_vault, sinks: [local]}\n"
    )
    assert angles_cli("backup", path).exit_code == 0
    result = angles_cli("check", path, "--format", "json")
    [check] = result.json()["checks"]
    assert (result.exit_code, check["status"], check["details"]["record_count"]) == (0, "ok", 2)


def test_an_unknown_sink_is_a_pipeline_error(angles_cli, pipeline_file):
    result = angles_cli("validate", pipeline_file(PIPELINE.format(sink="github")))
    assert result.exit_code == 3
    assert "checks[0].sink: unknown sink 'github'" in result.stderr


def test_test_mode_reads_no_sink(angles_cli, pipeline_file, tmp_path):
    store(tmp_path / "backups", "decision_vault", timedelta(hours=1))
    path = pipeline_file(PIPELINE.format(sink="local"))
    result = angles_cli("check", path, "--test", "--format", "json")
    [check] = result.json()["checks"]
    assert result.exit_code == 2 and check["message"].startswith("[TEST]")
