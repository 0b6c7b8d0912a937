"""Backup runs: files in the sinks, warnings, failures that keep earlier backups, retention."""

from __future__ import annotations

import gzip
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest

from angles import hookimpl
from angles.backup.engine import run_backups
from angles.backup.format import BackupFile, BackupName
from angles.core.errors import AnglesError, ServiceError
from angles.core.results import Status
from angles.plugins.connections.sqlite import SQLiteConnection


def backup_files(folder):
    return sorted(p.name for p in folder.iterdir())


class FlakySQLite(SQLiteConnection):
    """A SQLite connection whose stream fails halfway, as a dropped network would."""

    type = "flaky_sqlite"

    def stream(self, table, schema, where=None):
        for index, row in enumerate(super().stream(table, schema, where)):
            if index == 5:
                raise ServiceError("SQLite", "connection lost")
            yield row


class BusySQLite(SQLiteConnection):
    """A SQLite connection whose table gains a row while it is being read."""

    type = "busy_sqlite"
    page_size = 1

    def stream(self, table, schema, where=None):
        for index, row in enumerate(super().stream(table, schema, where)):
            if index == 0:
                with closing(sqlite3.connect(self.path)) as other, other:
                    other.execute("INSERT INTO decision_vault (id) VALUES ('zzz-new')")
            yield row


class TestPlugins:
    @hookimpl
    def angles_register_connections(self, register):
        register(FlakySQLite)
        register(BusySQLite)


def test_backup_writes_every_row_in_key_order(vault, make_context, tmp_path):
    rows = [vault.row(i) for i in (3, 1, 2)]
    rows[0]["payload"] = {"nested": [1, {"ü": None}]}
    vault.insert(rows)
    context = make_context()
    (run,) = run_backups(context)
    assert run.status is Status.OK, run.message
    assert run.record_count == 3
    (stored,) = run.files
    assert stored["sink"] == "local"
    parsed = BackupName.parse(stored["name"])
    assert parsed.table == "decision_vault" and not parsed.compressed
    assert abs(parsed.timestamp - datetime.now(UTC)) < timedelta(minutes=1)
    document = json.loads((tmp_path / "backups" / stored["name"]).read_text(encoding="utf-8"))
    assert [r["id"] for r in document["data"]] == ["id-00001", "id-00002", "id-00003"]
    assert document["data"][2]["payload"] == {"nested": [1, {"ü": None}]}
    assert document["metadata"]["primary_key"] == ["id"]
    assert document["metadata"]["columns"]["payload"] == "json"
    log = (tmp_path / "logs" / "backup.log").read_text(encoding="utf-8")
    assert '"backup stored"' in log and stored["name"] in log


def test_compressed_sink_and_several_sinks(vault, make_context, tmp_path):
    vault.insert([vault.row(i) for i in range(10)])
    context = make_context(
        sinks={
            "local": {"type": "local", "path": "backups"},
            "archive": {"type": "local", "path": "archive", "compress": True},
        },
        backups=[
            {
                "name": "decision_vault",
                "connection": "vault",
                "table": "decision_vault",
                "sinks": ["local", "archive"],
            }
        ],
    )
    (run,) = run_backups(context)
    assert run.status is Status.OK
    assert [f["sink"] for f in run.files] == ["local", "archive"]
    (gz,) = backup_files(tmp_path / "archive")
    assert gz.endswith(".json.gz")
    plain = gzip.decompress((tmp_path / "archive" / gz).read_bytes())
    assert plain == (tmp_path / "backups" / run.files[0]["name"]).read_bytes()
    # Each file entry says how many bytes its sink stored (the compressed size for gzip).
    assert [f["size"] for f in run.files] == [
        (tmp_path / "backups" / run.files[0]["name"]).stat().st_size,
        (tmp_path / "archive" / gz).stat().st_size,
    ]


def test_a_failed_backup_leaves_earlier_backups_and_no_temporary_file(
    vault, make_context, tmp_path, register_plugin
):
    register_plugin(TestPlugins())
    vault.insert([vault.row(i) for i in range(20)])
    old = str(BackupName("decision_vault", datetime.now(UTC) - timedelta(days=90)))
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / old).write_text("an old backup")
    context = make_context(
        connections={"vault": {"type": "flaky_sqlite", "path": "vault.db"}},
        sinks={"local": {"type": "local", "path": "backups", "retention_days": 30}},
    )
    (run,) = run_backups(context)
    assert run.status is Status.ERROR
    assert "connection lost" in run.message
    assert run.files == []
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == [old]


def test_a_sink_that_cannot_store_is_an_error(vault, make_context, tmp_path):
    vault.insert([vault.row(1)])
    (tmp_path / "backups").write_text("a file where the folder should be")
    (run,) = run_backups(make_context())
    assert run.status is Status.ERROR
    assert "storing in sink 'local' failed" in run.message


def test_rows_changing_during_the_backup_give_a_warning(vault, make_context, register_plugin):
    register_plugin(TestPlugins())
    vault.insert([vault.row(i) for i in range(3)])
    context = make_context(connections={"vault": {"type": "busy_sqlite", "path": "vault.db"}})
    (run,) = run_backups(context)
    assert run.status is Status.WARNING
    assert "had 3 rows when the backup started but 4 were written" in run.message
    assert run.files  # the backup is still stored


def test_retention_runs_after_the_new_backup_is_stored(vault, make_context, tmp_path):
    vault.insert([vault.row(1)])
    folder = tmp_path / "backups"
    folder.mkdir()
    now = datetime.now(UTC)
    old = [str(BackupName("decision_vault", now - timedelta(days=d))) for d in (2, 40, 41)]
    other = str(BackupName("another_table", now - timedelta(days=400)))
    for name in [*old, other]:
        (folder / name).write_text("x")
    context = make_context(
        sinks={"local": {"type": "local", "path": "backups", "retention_days": 30}}
    )
    (run,) = run_backups(context)
    assert run.status is Status.OK
    assert backup_files(folder) == sorted([old[0], other, run.files[0]["name"]])


def test_tables_that_cannot_be_backed_up(vault, make_context, tmp_path):
    vault.execute("CREATE TABLE loose (a TEXT)")
    context = make_context(
        backups=[
            {"name": "loose", "connection": "vault", "table": "loose", "sinks": ["local"]},
            {"name": "missing", "connection": "vault", "table": "nope", "sinks": ["local"]},
            {"name": "vault", "connection": "vault", "table": "decision_vault", "sinks": ["local"]},
        ]
    )
    loose, missing, fine = run_backups(context)
    assert loose.status is Status.OK and loose.record_count == 0  # no key: every column orders
    assert missing.status is Status.ERROR and "there is no table 'nope'" in missing.message
    assert fine.status is Status.OK and fine.record_count == 0
    assert run_backups(context, ["vault"])[0].name == "vault"
    with pytest.raises(AnglesError, match="no backup named 'other'"):
        run_backups(context, ["other"])


def test_composite_keys_are_written_in_key_order(vault, make_context, tmp_path):
    vault.execute("CREATE TABLE pairs (a INTEGER, b TEXT, v TEXT, PRIMARY KEY (b, a))")
    vault.insert(
        [{"a": a, "b": b, "v": f"{a}{b}"} for a in (2, 1, 10) for b in ("y", "x", "é")], "pairs"
    )
    context = make_context(
        backups=[{"name": "pairs", "connection": "vault", "table": "pairs", "sinks": ["local"]}]
    )
    (run,) = run_backups(context)
    with open(tmp_path / "backups" / run.files[0]["name"], "rb") as stream:
        backup = BackupFile(stream)
        keys = [(r["b"], r["a"]) for r in backup.rows()]
    assert keys == sorted(keys)
    assert backup.verified and backup.primary_key == ("b", "a")
