"""A file whose checksum matches but whose rows a restore cannot take: verify, the dry run
and the live restore all refuse it, naming the row, and nothing is written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from angles.backup.engine import run_backups
from angles.backup.format import canonical
from angles.backup.inventory import verify_backups
from angles.backup.restore import RestoreRequest, apply_restore, close_plan, prepare_restore
from angles.backup.rowcheck import RowChecker
from angles.cli import main
from angles.core.errors import RestoreRefused

from .conftest import postgres_pipeline


def rewrite(path: Path, change, *, spelled_canonically: bool = False) -> None:
    """Rewrite a backup's rows with ``change(rows)``, with a checksum and count that match
    (a file as a careless hand or another tool could produce); its rows spelled as
    ``json.dumps`` writes them, or canonically, as angles writes them."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0][: -len(', "data": [')] + "}")
    rows = [json.loads(line.rstrip(",")) for line in lines[1:-1]]
    rows = change(rows)
    metadata = header["metadata"]
    metadata["record_count"] = len(rows)
    metadata["checksum"] = "sha256:" + hashlib.sha256(b"\n".join(map(canonical, rows))).hexdigest()
    if spelled_canonically:
        body = ",\n".join(canonical(row).decode() for row in rows)
    else:
        body = ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows)
    head = json.dumps({"metadata": metadata}, ensure_ascii=False)[:-1]
    path.write_text(f'{head}, "data": [\n{body}\n]}}\n', encoding="utf-8")


@pytest.fixture
def numbered(vault, make_context, tmp_path):
    """A table with an integer key, backed up, then emptied of one row."""
    vault.execute("CREATE TABLE n (id INTEGER PRIMARY KEY, v TEXT)")
    vault.insert([{"id": i, "v": str(i)} for i in range(1, 6)], "n")
    context = make_context(
        backups=[{"name": "n", "connection": "vault", "table": "n", "sinks": ["local"]}]
    )
    (run,) = run_backups(context)
    vault.execute("DELETE FROM n WHERE id = 5")
    return context, tmp_path / "backups" / run.files[0]["name"]


def _repeated(rows):
    return [*rows[:2], dict(rows[1], v="again"), *rows[2:]]


def _undeclared(rows):
    rows[2]["secret_note"] = "kept nowhere"
    return rows


def _null_key(rows):
    rows[0]["id"] = None
    return rows


def _text_key(rows):
    rows[4]["id"] = "five"
    return rows


CASES = [
    (_repeated, "row 3", "repeats the previous row's"),
    (_undeclared, "row 3, column 'secret_note'", "does not declare"),
    (_null_key, "row 1, column 'id'", "is null"),
    (_text_key, "row 5, column 'id'", "is not of the declared type integer"),
]


@pytest.mark.parametrize(("change", "where", "problem"), CASES)
def test_verify_dry_run_and_live_restore_refuse_the_same_file(
    numbered, vault, tmp_path, change, where, problem
):
    context, path = numbered
    rewrite(path, change)
    (result,) = verify_backups(context, path.name)
    assert result.status.value == "error"
    assert where in result.message and problem in result.message
    before = vault.rows("n")
    with pytest.raises(RestoreRefused) as info:
        prepare_restore(context, RestoreRequest(table="n"))
    assert where in info.value.message and problem in info.value.message
    assert info.value.exit_code == 2
    # Nothing written, and no pre-restore backup stored either.
    assert vault.rows("n") == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_sound_file_still_verifies_and_restores(numbered, vault):
    context, path = numbered
    (result,) = verify_backups(context, path.name)
    assert result.status.value == "ok"
    plan = prepare_restore(context, RestoreRequest(table="n"))
    try:
        apply_restore(context, plan)
    finally:
        close_plan(plan)
    assert [r["id"] for r in vault.rows("n")] == [1, 2, 3, 4, 5]


def test_the_cli_verify_exits_2_and_names_the_row(numbered, tmp_path, capsys):
    _, path = numbered
    rewrite(path, _repeated)
    code = main(["backups", "verify", "--format", "json", str(tmp_path / "angles.yaml")])
    assert code == 2
    (backup,) = json.loads(capsys.readouterr().out)["backups"]
    assert "row 3" in backup["message"] and "remove the repeated row" in backup["message"]


@pytest.mark.parametrize(
    ("declared", "good", "bad"),
    [
        ("uuid", "0b5f8c1e-3f0a-4a57-9d1e-2c3b4d5e6f70", "not-a-uuid"),
        ("date", "2026-11-26", "26/11/2026"),
        ("bigint", 2**70, 1.5),
        ("double precision", "Infinity", "high"),
        ("timestamp with time zone", "2026-11-26 03:00:00+00", 17),
        ("text", "a", 1),
    ],
)
def test_keys_are_judged_by_the_declared_type(declared, good, bad):
    checker = RowChecker("f.json", ("id",), {"id": declared})
    list(checker.check(iter([{"id": good}])))
    assert checker.count == 0
    list(checker.check(iter([{"id": bad}])))
    assert checker.count == 1 and "not of the declared type" in checker.problems[0].problem


@pytest.mark.parametrize("spelled_canonically", [True, False], ids=["staged", "row by row"])
@pytest.mark.parametrize(("change", "where", "problem"), CASES)
def test_postgres_diffing_in_the_database_refuses_the_same_files(
    postgres_db, pipeline_file, angles_cli, tmp_path, change, where, problem, spelled_canonically
):
    postgres_db.execute("CREATE TABLE n (id integer PRIMARY KEY, v text)")
    postgres_db.execute("INSERT INTO n SELECT i, i::text FROM generate_series(1, 5) i")
    path = pipeline_file(postgres_pipeline(postgres_db.url, "n", table="n"))
    assert angles_cli("backup", path).exit_code == 0
    (file,) = (tmp_path / "backups").iterdir()
    rewrite(file, change, spelled_canonically=spelled_canonically)
    postgres_db.execute("DELETE FROM n WHERE id = 5")
    before = postgres_db.data_dump()
    verify = angles_cli("backups", "verify", path)
    assert verify.exit_code == 2 and problem in verify.output
    for args in ([], ["--live", "--yes"]):
        result = angles_cli("restore", path, "--table", "n", *args)
        assert result.exit_code == 2, result.output
        assert problem in result.output, result.output
    assert postgres_db.data_dump() == before
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [file.name]
