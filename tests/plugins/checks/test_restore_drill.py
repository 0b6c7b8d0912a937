"""The ``restore_drill`` check: good, tampered, stale and shrunk backups, in a local folder
and in a GitHub repository; nothing written to the live database or a sink."""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from angles import TableSchema
from angles.backup.format import BackupWriter

REPO = "acme/backups"
SINKS = {
    "local": "{type: local, path: backups}",
    "github": (
        '{type: github, repository: acme/backups, token: "${GITHUB_TOKEN}", '
        'api_url: "${GITHUB_API_URL}", path: backups, throttle: false}'
    ),
}
PIPELINE = """\
version: 1
log_dir: logs
connections:
  db: {{type: sqlite, path: vault.db}}
sinks:
  {sink}: {definition}
backups:
  - {{name: vault, connection: db, table: decision_vault, sinks: [{sink}]}}
checks:
  - name: drill
    type: restore_drill
    backup: vault
{extra}
"""


class Backups:
    """The stored backups of one sink, to read and change behind angles' back."""

    def __init__(self, kind: str, folder: Path, github) -> None:
        self.kind, self.folder, self.github = kind, folder / "backups", github

    def files(self) -> dict[str, bytes]:
        if self.kind == "local":
            return {p.name: p.read_bytes() for p in sorted(self.folder.glob("*.json*"))}
        stored = self.github.list_files(REPO, prefix="backups/")
        return {path.removeprefix("backups/"): data for path, data in stored.items()}

    def replace(self, old: str, new: str, data: bytes) -> None:
        if self.kind == "local":
            (self.folder / old).unlink()
            (self.folder / new).write_bytes(data)
        else:
            self.github.move_branch(REPO, files={f"backups/{old}": None, f"backups/{new}": data})


@pytest.fixture(params=["local", "github"])
def setup(request, tmp_path, monkeypatch, angles_cli, pipeline_file):
    """``setup(rows, extra)``: a table of ``rows`` rows backed up once; returns a function
    running the drill (exit code, check) and the sink's :class:`Backups`."""
    kind = request.param
    github = None
    if kind == "github":
        github = request.getfixturevalue("github_server")
        github.create_repo("acme", "backups")
        monkeypatch.setenv("GITHUB_TOKEN", github.token)
        monkeypatch.setenv("GITHUB_API_URL", github.url)
    with sqlite3.connect(tmp_path / "vault.db") as db:
        db.execute(
            "CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT, score REAL,"
            " tags TEXT, done INTEGER)"
        )
        db.executemany(
            "INSERT INTO decision_vault VALUES (?, ?, ?, ?, ?)",
            [(f"d{n:04d}", f"Decision {n} ✓", n / 7, None, n % 2) for n in range(100)],
        )

    def drill(extra: str = ""):
        text = PIPELINE.format(sink=kind, definition=SINKS[kind], extra=extra)
        result = angles_cli("check", pipeline_file(text), "--format", "json")
        if github is not None:
            assert github.token not in result.output
        [check] = result.json()["checks"]
        return result.exit_code, check

    text = PIPELINE.format(sink=kind, definition=SINKS[kind], extra="")
    assert angles_cli("backup", pipeline_file(text)).exit_code == 0
    return drill, Backups(kind, tmp_path, github)


def live_state(folder: Path) -> str:
    with sqlite3.connect(folder / "vault.db") as db:
        dump = "\n".join(db.iterdump())
    return hashlib.sha256(dump.encode()).hexdigest()


def test_a_good_backup_restores(setup, tmp_path):
    drill, backups = setup
    [name] = backups.files()
    before, stored = live_state(tmp_path), backups.files()
    scratch_before = set(Path(tempfile.gettempdir()).glob("angles-drill-*"))
    code, check = drill("    max_age: 26h")
    assert (code, check["status"]) == (0, "ok"), check
    assert check["message"].startswith(f"decision_vault: {name} (")
    assert check["message"].endswith(
        ") restores, 100 rows read back as stored; the live table has 100"
    )
    table = check["details"]["tables"]["decision_vault"]
    assert (table["backup"], table["records"], table["live_count"]) == (name, 100, 100)
    assert table["verified"] is True
    assert 0 <= table["age_seconds"] < 60
    # Nothing written: the live table and the sink are as they were, the scratch is gone.
    assert (live_state(tmp_path), backups.files()) == (before, stored)
    assert set(Path(tempfile.gettempdir()).glob("angles-drill-*")) == scratch_before


def test_a_tampered_backup_is_an_error(setup):
    drill, backups = setup
    [(name, data)] = backups.files().items()
    backups.replace(name, name, data.replace(b"Decision 42 ", b"Decision 24 "))
    code, check = drill()
    assert (code, check["status"]) == (2, "error")
    assert check["message"].startswith(
        f"decision_vault: the newest backup does not restore: backup {name} does not match "
        "its checksum"
    )


def test_a_backup_with_a_row_twice_does_not_load(setup):
    """Its checksum matches (it was written so): only loading it keyed by id tells."""
    drill, backups = setup
    [name] = backups.files()
    schema = TableSchema("decision_vault", {"id": "TEXT", "decision": "TEXT"}, ("id",))
    rows = [{"id": "d0001", "decision": "a"}, {"id": "d0001", "decision": "b"}]
    with BackupWriter(schema, datetime.now(UTC)) as writer:
        writer.write(rows)
        backups.replace(name, name, b"".join(writer.chunks()))
    code, check = drill()
    assert (code, check["status"]) == (2, "error")
    assert "does not load into a table keyed by id" in check["message"]


def test_a_stale_backup_is_an_error(setup):
    drill, backups = setup
    [(name, data)] = backups.files().items()
    old = "decision_vault_2026-01-01_03-00-00.json"
    backups.replace(name, old, data)
    code, check = drill("    max_age: 26h")
    assert (code, check["status"]) == (2, "error")
    assert check["message"].startswith(f"decision_vault: the newest backup, {old}, is ")
    assert check["message"].endswith(" old (max 26h): have the backups stopped?")
    assert check["details"]["tables"]["decision_vault"]["records"] == 100


def test_a_shrunk_live_table_is_a_warning(setup, tmp_path):
    drill, _ = setup
    with sqlite3.connect(tmp_path / "vault.db") as db:
        db.execute("DELETE FROM decision_vault WHERE id >= 'd0085'")
    code, check = drill("    shrink_warn: 10%")
    assert (code, check["status"]) == (1, "warning")
    assert check["message"].startswith(
        "decision_vault: the live table holds 85 rows, 15% fewer than the 100 of its newest backup"
    )
    assert check["message"].endswith("(warning at 10%): were rows deleted?")
    code, check = drill("    shrink_warn: 20%")
    assert (code, check["status"]) == (0, "ok")


def test_no_backup_at_all(tmp_path, angles_cli, pipeline_file):
    sqlite3.connect(tmp_path / "vault.db").execute(
        "CREATE TABLE decision_vault (id TEXT PRIMARY KEY)"
    )
    text = PIPELINE.format(sink="local", definition=SINKS["local"], extra="")
    result = angles_cli("check", pipeline_file(text), "--format", "json")
    [check] = result.json()["checks"]
    assert (result.exit_code, check["message"]) == (
        2,
        "no backup of 'vault' in 'local' to restore: has the backup ever run?",
    )


def test_every_table_of_the_newest_set_is_drilled(tmp_path, angles_cli, pipeline_file):
    with sqlite3.connect(tmp_path / "vault.db") as db:
        db.execute("CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT)")
        db.execute("CREATE TABLE audit_log (id INTEGER PRIMARY KEY, event TEXT)")
        db.execute("CREATE TABLE tmp_scratch (id INTEGER PRIMARY KEY)")
        db.executemany("INSERT INTO audit_log VALUES (?, ?)", [(n, "seen") for n in range(30)])
    text = PIPELINE.format(sink="local", definition=SINKS["local"], extra="").replace(
        "table: decision_vault,", 'tables: all, exclude: ["tmp_*"],'
    )
    path = pipeline_file(text)
    assert angles_cli("backup", path).exit_code == 0
    (tmp_path / "backups" / "gone_2020-01-01_00-00-00.json").write_bytes(b"{}")  # long dropped
    result = angles_cli("check", path, "--format", "json")
    [check] = result.json()["checks"]
    assert (result.exit_code, check["status"]) == (0, "ok"), check
    tables = check["details"]["tables"]
    assert sorted(tables) == ["audit_log", "decision_vault"]
    assert (tables["audit_log"]["records"], tables["decision_vault"]["records"]) == (30, 0)
    assert "audit_log: audit_log_" in check["message"] and "; decision_vault: " in check["message"]


def test_the_backup_key_must_name_a_backup_entry(angles_cli, pipeline_file):
    text = PIPELINE.format(sink="local", definition=SINKS["local"], extra="")
    result = angles_cli("validate", pipeline_file(text.replace("backup: vault", "backup: vualt")))
    assert result.exit_code == 3
    assert "checks[0].backup:" in result.stderr
    assert "vualt" in result.stderr
