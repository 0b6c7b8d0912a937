"""Numeric values wider than a float keep every digit through backup and restore.

Through Supabase a number that wide inside a JSON column is backed up exactly but written
back as the nearest float: the client library serialises request bodies itself.
"""

from __future__ import annotations

import pytest

WIDE = "123456789012345678901234567890.1234567891"
PIPELINE = """\
version: 1
connections:
  db: {connection}
sinks:
  local: {{type: local, path: backups}}
backups:
  - {{name: ledger, connection: db, table: ledger, sinks: [local]}}
"""


def make_ledger(postgres_db, nested: str) -> None:
    postgres_db.execute(
        "CREATE TABLE ledger (id int PRIMARY KEY, amount numeric(40,10), rate double precision,"
        " small numeric(12,2), attributes jsonb)"
    )
    postgres_db.execute(
        "INSERT INTO ledger VALUES"
        f' (1, {WIDE}, 0.1, 12.50, \'{{"limit": {nested}, "cap": 2.5}}\'),'
        " (2, 5, 1e-7, 3, NULL), (3, NULL, NULL, NULL, '[1.5]')"
    )


def supabase_connection(request) -> str:
    postgrest = request.getfixturevalue("postgrest")
    return f'{{type: supabase, url: "{postgrest.url}", key: "{postgrest.service_role_key}"}}'


@pytest.fixture(params=["postgres", "supabase"])
def connection(request, postgres_db):
    if request.param == "postgres":
        make_ledger(postgres_db, nested=WIDE)
        return f'{{type: postgres, url: "{postgres_db.url}"}}'
    make_ledger(postgres_db, nested="7.25")
    return supabase_connection(request)


def backup_text(angles_cli, path, tmp_path) -> str:
    result = angles_cli("backup", path, "--format", "json")
    assert result.exit_code == 0, result.output
    [name] = [f["name"] for f in result.json()["backups"][0]["files"]]
    return (tmp_path / "backups" / name).read_text()


def test_backup_and_restore_keep_every_digit(
    connection, angles_cli, pipeline_file, postgres_db, tmp_path
):
    path = pipeline_file(PIPELINE.format(connection=connection))
    text = backup_text(angles_cli, path, tmp_path)
    # PostgreSQL's own text of each number, with its scale: neither rounded nor shortened.
    assert f'"amount":"{WIDE}"' in text
    assert '"amount":"5.0000000000",' in text and '"small":"3.00"}' in text
    assert '"small":"12.50"' in text and '"rate":"1e-07"' in text

    postgres_db.execute("UPDATE ledger SET amount = 0, small = 0 WHERE id = 1")
    plan = angles_cli("restore", path, "--format", "json").json()
    assert (plan["counts"]["update"], plan["counts"]["unchanged"]) == (1, 2)

    restored = angles_cli("restore", path, "--live", "--yes")
    assert restored.exit_code == 0, restored.output
    rows = postgres_db.fetchall(
        "SELECT id, amount::text, small::text, rate FROM ledger ORDER BY id"
    )
    assert rows[0] == (1, WIDE, "12.50", 0.1)
    again = angles_cli("restore", path, "--format", "json").json()
    assert again["counts"]["unchanged"] == 3, again["samples"]  # every digit matches


def test_a_supabase_backup_keeps_wide_numbers_inside_json(
    request, angles_cli, pipeline_file, postgres_db, tmp_path
):
    make_ledger(postgres_db, nested=WIDE)
    path = pipeline_file(PIPELINE.format(connection=supabase_connection(request)))
    assert f'\\"limit\\": {WIDE}' in backup_text(angles_cli, path, tmp_path)
