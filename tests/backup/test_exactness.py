"""Every value back exactly as PostgreSQL held it, judged by ``pg_dump --data-only``.

A table of awkward values of every built-in kind (numeric scale, float ``-0`` and
infinities, ``json`` text as written, JSON ``null`` beside SQL ``NULL``, arrays with
bounds, BC timestamps, xml…), keys PostgreSQL orders differently from Python, and the
changes a looser diff cannot see.
"""

from __future__ import annotations

import json

import pytest

from .conftest import postgres_pipeline

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS numeric CHECK (VALUE > 0);
CREATE TABLE edge (
    id int PRIMARY KEY,
    n numeric, n3 numeric(12, 3), f8 double precision, f4 real,
    j json, jb jsonb, ints int[], nums numeric[], texts text[],
    b bytea, m mood, d positive, r int4range, tr tstzrange, iv interval,
    ts timestamp, tstz timestamptz, dt date, t time, tsv tsvector, x xml,
    bits varbit, addr inet, pt point, c char(5), u uuid, mo money
);
"""

ROWS = r"""
INSERT INTO edge VALUES
 (1, 1.500, 2.5, '-0', 'Infinity',
  '{"b": 1,  "a": [1, 2], "a": null}', '{"t": true, "big": 123456789012345678901234567890}',
  '[0:2]={1,2,3}', '{1.10,NaN}', '{"a,b",NULL,"","\"q\""}',
  '\x00ff', 'ok', 3.14, '[1,5)', '[2020-01-01 00:00+00,infinity)',
  '1 year 2 mons 3 days 04:05:06.789', '0044-03-15 12:00:00 BC', '1900-01-01 00:00:00+00',
  'infinity', '24:00:00', 'a:1 b:2', '<?xml version="1.0"?><a>é</a>', B'101', '::1/128',
  '(1.5,-0)', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 12.34),
 (2, 'NaN', '-0.000', '-Infinity', 'NaN', 'null', 'null', '{}', '{{1,2},{3,4}}', '{}',
  '', 'sad', 1, 'empty', 'empty', '-178000000 years', '294276-12-31 23:59:59.999999',
  '-infinity', '4713-01-01 BC', '00:00:00.000001', '', '<a/>', B'', '10.0.0.0/8',
  '(0,0)', '', NULL, -1),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 1e-20, 0.001, 1.7976931348623157e308, 1.5e-45, '1e400', '12345678901234567890',
  '{-1}', '{1e-5}', '{"\\\\", "é"}', '\x5c', 'happy', 12345678901234567890.5,
  '(,)', NULL, '-1 days +02:00', '2000-02-29 00:00:00', '2000-01-01 00:00:00.5+14',
  '2000-01-01', '23:59:59.999999', '''it''''s'':1', 'text only', B'0', '1.2.3.4',
  '(-1e+300,1e-300)', 'abcde', NULL, 0),
 (5, 0, 0, 0, 0, '{"s": "\u0000"}', '{"u": "\ud83d\ude00", "e": ""}', NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL);
"""

# Keys whose order PostgreSQL and Python disagree on: a Python merge of two sorted
# streams breaks on them unless both are sorted by what the row carries.
KEYS = """
CREATE TABLE eras (day date PRIMARY KEY, note text);
INSERT INTO eras VALUES ('0044-03-15 BC', 'a'), ('0001-01-01', 'b'), ('1999-12-31', 'c'),
  ('0100-01-01 BC', 'd'), ('infinity', 'e'), ('-infinity', 'f'), ('2024-02-29', 'g');
CREATE TABLE readings (value double precision PRIMARY KEY, note text);
INSERT INTO readings VALUES ('-Infinity', 'a'), ('Infinity', 'b'), ('NaN', 'c'), (-1.5, 'd'),
  (0, 'e'), (10, 'f'), (9, 'g'), (1e-300, 'h');
CREATE TABLE amounts (value numeric PRIMARY KEY, note text);
INSERT INTO amounts VALUES (10, 'a'), (9, 'b'), (1.50, 'c'), (-2, 'd'), ('NaN', 'e');
CREATE TABLE moods (m mood PRIMARY KEY, note text);
INSERT INTO moods VALUES ('happy', 'a'), ('sad', 'c'), ('ok', 'z');
"""


@pytest.fixture
def edge(postgres_db, pipeline_file):
    postgres_db.execute(SCHEMA)
    postgres_db.execute(ROWS)
    return pipeline_file(postgres_pipeline(postgres_db.url, "everything", tables="all"))


def plan_of(angles_cli, path, table="edge"):
    result = angles_cli("restore", path, "--table", table, "--format", "json")
    assert result.exit_code == 0, result.output
    return result.json()


def restore(angles_cli, path, table="edge"):
    result = angles_cli("restore", path, "--table", table, "--live", "--yes")
    assert result.exit_code == 0, result.output


def plan_of_file(angles_cli, path, file):
    """The dry run's verdicts for a backup file: counts, samples and whether it verified."""
    result = angles_cli("restore", path, "--file", str(file), "--format", "json")
    assert result.exit_code == 0, result.output
    plan = result.json()
    return {k: plan[k] for k in ("counts", "samples", "verified")}


def through_supabase(pipeline_file, postgrest, table, folder="backups"):
    """A pipeline backing ``table`` up through the Data API, to the local folder ``folder``."""
    return pipeline_file(
        f"""
        version: 1
        connections:
          db: {{type: supabase, url: "{postgrest.url}", key: "{postgrest.service_role_key}"}}
        sinks:
          local: {{type: local, path: {folder}}}
        backups:
          - {{name: everything, connection: db, table: {table}, sinks: [local]}}
        """,
        name="api.yaml",
    )


def test_a_restore_into_an_empty_table_gives_back_what_pg_dump_saw(edge, postgres_db, angles_cli):
    original = postgres_db.data_dump()
    assert angles_cli("backup", edge).exit_code == 0
    postgres_db.execute("TRUNCATE edge")

    plan = plan_of(angles_cli, edge)
    assert plan["counts"]["insert"] == 5
    restore(angles_cli, edge)
    assert postgres_db.data_dump() == original
    # Converged: the table now holds the backup, so a second restore has nothing to do.
    again = plan_of(angles_cli, edge)["counts"]
    assert (again["unchanged"], again["update"], again["insert"]) == (5, 0, 0)


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ("n = 1.5", "n"),  # the scale: 1.500 is not 1.5
        ("f8 = 0", "f8"),  # -0 is not 0
        ("""jb = '{"t": 1, "big": 123456789012345678901234567890}'""", "jb"),  # true is not 1
        ("""j = '{"b": 1, "a": [1, 2], "a": null}'""", "j"),  # json text as written
        ("ints = '{1,2,3}'", "ints"),  # the lower bound
        ("x = '<a>é</a>'", "x"),  # the declaration
        ("ts = '0044-03-15 12:00:00'", "ts"),  # BC
    ],
)
def test_the_diff_sees_changes_a_looser_comparison_misses(
    edge, postgres_db, angles_cli, change, column
):
    original = postgres_db.data_dump()
    assert angles_cli("backup", edge).exit_code == 0
    postgres_db.execute(f"UPDATE edge SET {change} WHERE id = 1")

    plan = plan_of(angles_cli, edge)
    assert plan["counts"]["update"] == 1, plan
    assert plan["samples"]["update"] == [{"id": 1, "columns": [column]}]
    restore(angles_cli, edge)
    assert postgres_db.data_dump() == original


def test_json_null_and_sql_null_are_different_values(edge, postgres_db, angles_cli, tmp_path):
    assert angles_cli("backup", edge).exit_code == 0
    [name] = [p.name for p in (tmp_path / "backups").iterdir()]
    rows = {r["id"]: r for r in json.loads((tmp_path / "backups" / name).read_text())["data"]}
    assert (rows[2]["j"], rows[2]["jb"], rows[3]["j"]) == ("null", "null", None)

    postgres_db.execute("UPDATE edge SET j = NULL, jb = NULL WHERE id = 2")
    postgres_db.execute("UPDATE edge SET j = 'null' WHERE id = 3")
    plan = plan_of(angles_cli, edge)
    assert plan["counts"]["update"] == 2
    restore(angles_cli, edge)
    assert postgres_db.fetchall("SELECT id, j::text, jb::text FROM edge WHERE id IN (2, 3)") == [
        (2, "null", "null"),
        (3, None, None),
    ]


@pytest.mark.parametrize("table", ["eras", "readings", "amounts", "moods"])
def test_keys_python_orders_differently_restore_into_a_populated_table(
    postgres_db, pipeline_file, angles_cli, table
):
    postgres_db.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
    postgres_db.execute(KEYS)
    path = pipeline_file(postgres_pipeline(postgres_db.url, "everything", tables="all"))
    original = postgres_db.data_dump()
    assert angles_cli("backup", path).exit_code == 0
    total = postgres_db.fetchval(f"SELECT count(*) FROM {table}")
    # Lose the first and the last row in the database's order, change one in the middle.
    postgres_db.execute(
        f"DELETE FROM {table} WHERE note IN ((SELECT min(note) FROM {table}), "
        f"(SELECT max(note) FROM {table}))"
    )
    postgres_db.execute(f"UPDATE {table} SET note = 'changed' WHERE note = 'c'")

    plan = plan_of(angles_cli, path, table)
    counts = plan["counts"]
    assert (counts["insert"], counts["update"], counts["only_in_database"]) == (2, 1, 0), plan
    assert counts["unchanged"] == total - 3
    restore(angles_cli, path, table)
    assert postgres_db.data_dump() == original
    assert plan_of(angles_cli, path, table)["counts"]["unchanged"] == total


def test_a_backup_through_supabase_is_the_one_postgres_would_take(
    postgres_db, postgrest, pipeline_file, angles_cli, tmp_path
):
    postgres_db.execute(SCHEMA)
    postgres_db.execute(ROWS)
    through_api = through_supabase(pipeline_file, postgrest, "edge", folder="api")
    direct = pipeline_file(postgres_pipeline(postgres_db.url, "everything", tables="all"))
    assert angles_cli("backup", through_api).exit_code == 0
    assert angles_cli("backup", direct).exit_code == 0
    [api_file] = (tmp_path / "api").iterdir()
    [direct_file] = (tmp_path / "backups").iterdir()
    rows = [json.loads(p.read_text())["data"] for p in (api_file, direct_file)]
    assert rows[0] == rows[1]  # value for value, the same file

    for path in (direct, through_api):
        result = angles_cli("restore", path, "--file", str(api_file), "--format", "json")
        assert result.exit_code == 0, result.output
        counts = result.json()["counts"]
        assert (counts["unchanged"], counts["update"], counts["insert"]) == (5, 0, 0), counts


def test_the_server_written_lines_are_the_canonical_form_of_the_rows(edge, postgres_db, tmp_path):
    from angles.backup.format import canonical
    from angles.core.config import load_pipeline
    from angles.core.context import Context
    from angles.core.plugins import load_plugins

    plugins = load_plugins()
    context = Context(load_pipeline(edge, plugins, environ={}), plugins)
    try:
        db = context.connection("db")
        schema = db.describe("edge")
        lines = b"\n".join(db.stream_lines("edge", schema)).split(b"\n")
        assert lines == [canonical(row) for row in db.stream("edge", schema)]
        assert len(lines) == 5
    finally:
        context.close()


def test_a_large_table_comes_in_blocks_of_whole_lines(edge, postgres_db):
    from angles.backup.format import canonical
    from angles.core.config import load_pipeline
    from angles.core.context import Context
    from angles.core.plugins import load_plugins

    # Rows of many lengths, so that blocks end at every offset inside a line.
    postgres_db.execute(
        "INSERT INTO edge (id, texts, j) SELECT i, ARRAY[repeat('é', i % 97)], "
        "json_build_object('i', i) FROM generate_series(6, 20000) i"
    )
    plugins = load_plugins()
    context = Context(load_pipeline(edge, plugins, environ={}), plugins)
    try:
        db = context.connection("db")
        schema = db.describe("edge")
        blocks = list(db.stream_lines("edge", schema))
        assert len(blocks) > 3
        assert all(block and not block.endswith(b"\n") for block in blocks)
        lines = b"\n".join(blocks).split(b"\n")
        assert lines == [canonical(row) for row in db.stream("edge", schema)]
        assert len(lines) == 20000
    finally:
        context.close()


def test_the_database_side_diff_plans_what_the_row_by_row_diff_plans(
    postgres_db, postgrest, pipeline_file, angles_cli, tmp_path
):
    postgres_db.execute(SCHEMA)
    postgres_db.execute(ROWS)
    postgres_db.execute("INSERT INTO edge (id, n) SELECT i, i / 7.0 FROM generate_series(6, 300) i")
    direct = pipeline_file(postgres_pipeline(postgres_db.url, "everything", tables="all"))
    through_api = through_supabase(pipeline_file, postgrest, "edge", folder="backups")
    assert angles_cli("backup", direct).exit_code == 0
    [backup] = (tmp_path / "backups").iterdir()
    postgres_db.execute("DELETE FROM edge WHERE id % 10 = 3")
    postgres_db.execute("UPDATE edge SET n = n + 1, j = '[]' WHERE id % 10 = 5")
    postgres_db.execute("INSERT INTO edge (id) VALUES (1000), (1001)")

    plans = [plan_of_file(angles_cli, path, backup) for path in (direct, through_api)]
    assert plans[0] == plans[1]  # in PostgreSQL, then row by row in Python
    assert plans[0]["counts"]["insert"] == 30 and plans[0]["counts"]["update"] == 30
    assert plans[0]["counts"]["only_in_database"] == 2


# Names and values that the way into the database must quote or escape: a ``%`` (a
# placeholder to a driver), a quote, a tab; ``COPY``'s own escapes and end marker as text.
ODD = r'''
CREATE TABLE "odd names" (
    "id%" int PRIMARY KEY, "rate%" numeric(6, 2), "say ""hi""" text, "tab	name" text,
    "Ünïcode" varchar(12), label char(4), raw bytea, flag boolean, big bigint, day date);
INSERT INTO "odd names" VALUES
 (1, 12.50, E'tab\there', E'line\nbreak', 'Zürich', 'ab', '\x5c4e', true,
  9223372036854775807, '2024-02-29'),
 (2, -0.01, E'back\\slash', '\N', E'cr\rlf\r\n', '\.', '\x', false,
  -9223372036854775808, '0044-03-15 BC'),
 (3, NULL, '', E'\\.', NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 0, '%s %(x)s %%', E'\t', 'é' || repeat('x', 11), '    ', '\x00', NULL, 0, 'infinity');
'''


def test_awkward_names_and_copy_escapes_restore_exactly(postgres_db, pipeline_file, angles_cli):
    postgres_db.execute(ODD)
    path = pipeline_file(postgres_pipeline(postgres_db.url, "everything", tables="all"))
    original = postgres_db.data_dump()
    assert angles_cli("backup", path).exit_code == 0
    postgres_db.execute('TRUNCATE "odd names"')
    restore(angles_cli, path, table="odd names")
    assert postgres_db.data_dump() == original
    # Into a damaged table: a deleted row and a changed one come back, and nothing else moves.
    postgres_db.execute('DELETE FROM "odd names" WHERE "id%" = 2')
    postgres_db.execute("""UPDATE "odd names" SET "tab	name" = 'changed' WHERE "id%" = 1""")
    counts = plan_of(angles_cli, path, table="odd names")["counts"]
    assert (counts["insert"], counts["update"], counts["unchanged"]) == (1, 1, 2)
    restore(angles_cli, path, table="odd names")
    assert postgres_db.data_dump() == original


LEGACY = """
CREATE TABLE ledger (id int PRIMARY KEY, amount numeric(12, 2), attributes jsonb,
                     tags text[], seen timestamptz, ratio double precision);
INSERT INTO ledger VALUES (1, 12.5, '{"a": [1, 2.5, null], "b": {"c": "é"}}', '{x,"y z"}',
                           '2025-01-01 10:00:00.5+00', 0.1),
                          (2, NULL, NULL, NULL, NULL, NULL), (3, 0, '[]', '{}', 'infinity', -1.5);
"""


def _legacy_file(postgres_db, pipeline_file, tmp_path, table):
    """The pipeline, and a backup of ``table`` holding every value in its JSON form, as files
    up to 1.2.0 do."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from angles.backup.format import BackupWriter
    from angles.core.config import load_pipeline
    from angles.core.context import Context
    from angles.core.plugins import load_plugins

    path = pipeline_file(postgres_pipeline(postgres_db.url, "everything", tables="all"))
    plugins = load_plugins()
    context = Context(load_pipeline(path, plugins, environ={}), plugins)
    try:
        db = context.connection("db")
        schema = replace(db.describe(table), text_columns=frozenset())
        with BackupWriter(schema, datetime(2026, 1, 1, tzinfo=UTC)) as writer:
            writer.write(db.stream(table, schema))
            file = tmp_path / f"{table}_2026-01-01_00-00-00.json"
            file.write_bytes(b"".join(writer.chunks()))
    finally:
        context.close()
    return path, file


def _restores_into_empty(postgres_db, angles_cli, path, file, table, rows):
    original = postgres_db.data_dump()
    plan = angles_cli("restore", path, "--file", str(file), "--format", "json").json()
    assert plan["counts"]["unchanged"] == rows, plan
    postgres_db.execute(f"TRUNCATE {table}")
    result = angles_cli("restore", path, "--file", str(file), "--live", "--yes")
    assert result.exit_code == 0, result.output
    assert postgres_db.data_dump() == original


def test_a_file_from_before_text_columns_still_restores(
    postgres_db, pipeline_file, angles_cli, tmp_path
):
    postgres_db.execute(LEGACY)
    path, file = _legacy_file(postgres_db, pipeline_file, tmp_path, "ledger")
    document = json.loads(file.read_text())
    assert document["metadata"]["text_columns"] == []
    assert document["data"][0]["attributes"] == {"a": [1, 2.5, None], "b": {"c": "é"}}
    _restores_into_empty(postgres_db, angles_cli, path, file, "ledger", 3)


# Only types whose JSON form is also their text: an old file of it is COPY-ed as a new one is.
LEGACY_PLAIN = r"""
CREATE TYPE state AS ENUM ('new', 'done');
CREATE TABLE plain (id bigint PRIMARY KEY, name text, ok boolean, at timestamptz, day date,
                    u uuid, s state, code varchar(8));
INSERT INTO plain VALUES (1, E'tab	here \N', true, '2025-01-01 10:00:00.5+00', '0044-03-15 BC',
                          'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'done', 'x%y'),
                         (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
                         (-9223372036854775808, '', false, 'infinity', 'infinity',
                          '00000000-0000-0000-0000-000000000000', 'new', '');
"""


def test_an_old_file_of_plain_types_restores_through_the_typed_copy(
    postgres_db, pipeline_file, angles_cli, tmp_path
):
    postgres_db.execute(LEGACY_PLAIN)
    path, file = _legacy_file(postgres_db, pipeline_file, tmp_path, "plain")
    assert json.loads(file.read_text())["metadata"]["text_columns"] == []
    _restores_into_empty(postgres_db, angles_cli, path, file, "plain", 3)


UNKEYED = """
CREATE TABLE log (at timestamptz, who text, amount numeric, meta jsonb);
INSERT INTO log VALUES ('2025-01-01 10:00+00', 'ada', 1.50, '{"a": 1}'),
  ('2025-01-01 10:00+00', 'ada', 1.50, '{"a": 1}'), ('2025-01-01 10:00+00', 'ada', 1.50, '{"a": 1}'),
  ('2025-01-02 10:00+00', 'grace', 2, NULL), ('2025-01-03 10:00+00', NULL, -0.0, '[]');
INSERT INTO log SELECT timestamptz '2025-02-01 00:00+00' + i * interval '1 hour', 'bulk', i, NULL
  FROM generate_series(1, 300) i;
"""


def test_a_table_without_a_key_plans_in_the_database_what_the_row_by_row_diff_plans(
    postgres_db, postgrest, pipeline_file, angles_cli, tmp_path
):
    postgres_db.execute(UNKEYED)
    original = postgres_db.data_dump()
    direct = pipeline_file(postgres_pipeline(postgres_db.url, "everything", tables="all"))
    through_api = through_supabase(pipeline_file, postgrest, "log", folder="backups")
    assert angles_cli("backup", direct).exit_code == 0
    [backup] = (tmp_path / "backups").iterdir()
    # Two of three copies lost, a row changed (its old copy lost, the new one extra),
    # bulk rows lost, and a row the backup never had.
    postgres_db.execute(
        "DELETE FROM log WHERE ctid IN (SELECT ctid FROM log WHERE who = 'ada' LIMIT 2)"
    )
    postgres_db.execute("UPDATE log SET amount = 5 WHERE who IS NULL")
    postgres_db.execute("DELETE FROM log WHERE who = 'bulk' AND amount % 10 = 3")
    postgres_db.execute("INSERT INTO log VALUES (now(), 'new', 1, NULL)")

    plans = [plan_of_file(angles_cli, path, backup) for path in (direct, through_api)]
    assert plans[0] == plans[1]  # in PostgreSQL, then row by row in Python
    counts = plans[0]["counts"]
    assert (counts["insert"], counts["update"], counts["only_in_database"]) == (33, 0, 2)
    assert counts["unchanged"] == 305 - 33

    result = angles_cli("restore", direct, "--file", str(backup), "--live", "--yes")
    assert result.exit_code == 0, result.output
    # Nothing deleted: the changed row and the new one stay beside what came back.
    postgres_db.execute("DELETE FROM log WHERE who = 'new' OR (who IS NULL AND amount = 5)")
    assert postgres_db.data_dump() == original


def test_a_live_restore_writes_only_what_its_plan_showed(edge, postgres_db, tmp_path):
    from angles.backup.format import BackupFile
    from angles.core.config import load_pipeline
    from angles.core.context import Context
    from angles.core.plugins import load_plugins

    postgres_db.execute("INSERT INTO edge (id, n) SELECT i, i FROM generate_series(6, 20) i")
    plugins = load_plugins()
    context = Context(load_pipeline(edge, plugins, environ={}), plugins)
    try:
        db = context.connection("db")
        schema = db.describe("edge")
        with _backup(db, schema, tmp_path).open("rb") as stream:
            backup = BackupFile(stream, "edge_2026-01-01_00-00-00.json")
            postgres_db.execute("UPDATE edge SET n = -1 WHERE id IN (6, 7)")
            staged = db.stage(
                "edge",
                schema,
                backup.lines(),
                columns=list(schema.columns),
                updated_at=None,
                backup_time=None,
                declared=list(schema.columns),
            )
        assert staged.counts()["update"] == 2
        # After the plan: row 6 is put back by someone else, row 8 (unchanged) is edited.
        postgres_db.execute("UPDATE edge SET n = 6 WHERE id = 6")
        postgres_db.execute("UPDATE edge SET n = 99 WHERE id = 8")
        with db.transaction():
            applied = staged.write(overwrite_newer=False)
        staged.close()
    finally:
        context.close()
    assert applied == {"insert": 0, "update": 1}
    assert postgres_db.fetchall("SELECT id, n FROM edge WHERE id IN (6, 7, 8) ORDER BY id") == [
        (6, 6),
        (7, 7),
        (8, 99),
    ]


def _backup(db, schema, folder):
    from datetime import UTC, datetime

    from angles.backup.format import BackupWriter

    with BackupWriter(schema, datetime(2026, 1, 1, tzinfo=UTC)) as writer:
        writer.write_lines(db.stream_lines("edge", schema))
        file = folder / "edge_2026-01-01_00-00-00.json"
        file.write_bytes(b"".join(writer.chunks()))
    return file
