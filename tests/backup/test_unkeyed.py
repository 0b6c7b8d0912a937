"""Tables without a primary key: backed up ordered by every column, restored by
whole-row comparison (what is missing is inserted, repeats counted, nothing deleted)."""

from __future__ import annotations

import json

from angles.backup.engine import run_backups
from angles.backup.restore import RestoreRequest, apply_restore, close_plan, prepare_restore
from angles.core.results import Status

LOG = [
    {"at": "2025-01-02", "event": "login", "who": "ada"},
    {"at": "2025-01-01", "event": "login", "who": "grace"},
    {"at": "2025-01-01", "event": "login", "who": "grace"},  # the same row twice
    {"at": "2025-01-03", "event": "logout", "who": None},
]


def restore(context, table):
    plan = prepare_restore(context, RestoreRequest(table=table))
    try:
        counts = dict(plan.counts)
        apply_restore(context, plan)
    finally:
        close_plan(plan)
    return counts


def backups(tmp_path, table):
    (path,) = (tmp_path / "backups").glob(f"{table}_*.json")
    return json.loads(path.read_text())


def test_sqlite_table_without_a_key_round_trips(vault, make_context, tmp_path):
    vault.execute("CREATE TABLE log (at TEXT, event TEXT, who TEXT)")
    vault.insert(LOG, "log")
    entry = {"name": "log", "connection": "vault", "table": "log", "sinks": ["local"]}
    context = make_context(backups=[entry])
    (run,) = run_backups(context)
    assert run.status is Status.OK, run.message
    document = backups(tmp_path, "log")
    assert document["metadata"]["primary_key"] == []
    assert document["data"] == sorted(LOG, key=lambda r: (r["at"], r["event"], r["who"] or ""))

    vault.execute(
        "DELETE FROM log WHERE rowid IN (SELECT rowid FROM log WHERE who = 'grace' LIMIT 1)"
    )
    vault.execute("DELETE FROM log WHERE who IS NULL")
    vault.execute("INSERT INTO log VALUES ('2025-02-01', 'login', 'new')")  # today's work
    counts = restore(context, "log")
    assert counts["insert"] == 2  # one copy of grace's row, and the logout
    assert counts["unchanged"] == 2 and counts["only_in_database"] == 1
    assert counts["update"] == 0
    rows = vault.rows("log", order="at, event, who")
    assert len(rows) == 5 and {"at": "2025-02-01", "event": "login", "who": "new"} in rows
    again = prepare_restore(context, RestoreRequest(table="log"))
    try:
        assert again.counts["insert"] == 0 and again.counts["unchanged"] == 4
    finally:
        close_plan(again)


def test_postgres_table_without_a_key_with_json_round_trips(postgres_db, tmp_path, make_context):
    postgres_db.execute(
        "CREATE TABLE events (at date, payload json, tags text[]);"
        " INSERT INTO events VALUES ('2025-01-01', '{\"b\": 1, \"a\": [1, 2]}', '{x}'),"
        " ('2025-01-01', '{\"b\": 1, \"a\": [1, 2]}', '{x}'), ('2024-12-31', 'null', NULL)"
    )
    context = make_context(
        connections={"vault": {"type": "postgres", "url": postgres_db.url}},
        backups=[{"name": "events", "connection": "vault", "table": "events", "sinks": ["local"]}],
    )
    (run,) = run_backups(context)
    assert run.status is Status.OK, run.message
    assert run.record_count == 3
    postgres_db.execute("DELETE FROM events WHERE at = '2025-01-01'")
    counts = restore(context, "events")
    assert counts["insert"] == 2 and counts["unchanged"] == 1
    assert postgres_db.fetchval("SELECT count(*) FROM events WHERE at = '2025-01-01'") == 2


def test_supabase_table_without_a_key_round_trips(postgres_db, postgrest, tmp_path, make_context):
    """Through the Data API: read by keyset on the whole row, restored by plain inserts of
    the rows that are missing, repeats counted, nothing deleted."""
    postgres_db.execute(
        "CREATE TABLE log (at date, event text, who text, tags text[], meta jsonb);"
        " INSERT INTO log VALUES ('2025-01-02', 'login', 'ada', '{a}', '{\"n\": 1}'),"
        " ('2025-01-01', 'login', 'grace', NULL, NULL), ('2025-01-01', 'login', 'grace', NULL, NULL),"
        " ('2025-01-01', 'login', 'grace', NULL, NULL), ('2025-01-03', 'logout', NULL, '{}', '[]')"
    )
    context = make_context(
        connections={
            "vault": {
                "type": "supabase",
                "url": postgrest.url,
                "key": postgrest.service_role_key,
                "page_size": 2,
            }
        },
        backups=[{"name": "log", "connection": "vault", "table": "log", "sinks": ["local"]}],
    )
    (run,) = run_backups(context)
    assert run.status is Status.OK, run.message
    document = backups(tmp_path, "log")
    assert document["metadata"]["primary_key"] == []
    assert document["metadata"]["snapshot"] is False
    assert [(r["at"], r["who"]) for r in document["data"]] == [
        ("2025-01-01", "grace"),
        ("2025-01-01", "grace"),
        ("2025-01-01", "grace"),
        ("2025-01-02", "ada"),
        ("2025-01-03", None),
    ]
    postgres_db.execute(
        "DELETE FROM log WHERE ctid IN (SELECT ctid FROM log WHERE who = 'grace' LIMIT 2);"
        " DELETE FROM log WHERE who IS NULL;"
        " INSERT INTO log VALUES ('2025-02-01', 'login', 'new', NULL, NULL)"  # today's work
    )
    postgrest.clear()
    counts = restore(context, "log")
    assert counts["insert"] == 3  # two copies of grace's row, and the logout
    assert counts["unchanged"] == 2 and counts["only_in_database"] == 1
    assert counts["update"] == 0
    assert postgres_db.fetchval("SELECT count(*) FROM log WHERE who = 'grace'") == 3
    assert postgres_db.fetchval("SELECT count(*) FROM log") == 6  # nothing deleted
    assert postgres_db.fetchval("SELECT meta FROM log WHERE who IS NULL") == []
    writes = postgrest.requests_to(r"/rest/v1/log$", "POST")
    assert writes and all("on_conflict" not in w.params for w in writes)
    again = prepare_restore(context, RestoreRequest(table="log"))
    try:
        assert again.counts["insert"] == 0 and again.counts["unchanged"] == 5
    finally:
        close_plan(again)
