"""Backing up many tables with one entry: ``tables: all`` or names and globs, ``exclude:``,
views left out, partitioned tables once, other schemas, and one snapshot per set."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from angles.backup.engine import run_backups
from angles.backup.format import BackupName
from angles.backup.restore import RestoreRequest, apply_restore, close_plan, prepare_restore
from angles.core.config import load_pipeline
from angles.core.context import Context
from angles.core.errors import PipelineError
from angles.core.plugins import load_plugins
from angles.core.results import Status

from .conftest import backup_files, pipeline_document


def entry(**keys: Any) -> dict[str, Any]:
    return {"name": "vault", "connection": "vault", "sinks": ["local"], **keys}


def metadata(path: Path) -> dict[str, Any]:
    header = path.read_bytes().split(b"\n", 1)[0].decode()
    return json.loads(header.removesuffix(', "data": [') + "}")["metadata"]


def file_rows(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["data"]


# ---- SQLite -------------------------------------------------------------------------------


@pytest.fixture
def shop(vault):
    """The vault plus two more tables and a view."""
    vault.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    vault.execute("CREATE TABLE tmp_import (id INTEGER PRIMARY KEY)")
    vault.execute("CREATE VIEW named_customers AS SELECT name FROM customers")
    vault.insert([{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}], "customers")
    vault.insert([vault.row(i) for i in range(3)])
    return vault


def test_all_backs_up_every_table_as_one_set_and_skips_views(shop, make_context, tmp_path):
    (run,) = run_backups(make_context(backups=[entry(tables="all")]))
    assert run.status is Status.OK, run.message
    names = backup_files(tmp_path / "backups")
    assert [BackupName.parse(n).table for n in names] == [
        "customers",
        "decision_vault",
        "tmp_import",
    ]
    assert len({BackupName.parse(n).timestamp for n in names}) == 1  # one set
    assert run.record_count == 5
    assert {f["table"]: f["record_count"] for f in run.files} == {
        "customers": 2,
        "decision_vault": 3,
        "tmp_import": 0,
    }
    assert run.skipped == ["named_customers (view)"]
    assert run.to_dict()["skipped"] == ["named_customers (view)"]


def test_all_is_resolved_at_every_run(shop, make_context, tmp_path):
    context = make_context(backups=[entry(tables="all")])
    run_backups(context)
    shop.execute("CREATE TABLE added_later (id INTEGER PRIMARY KEY)")
    (run,) = run_backups(make_context(backups=[entry(tables="all")]))
    assert "added_later" in {f["table"] for f in run.files}


def test_globs_and_exclude(shop, make_context):
    (run,) = run_backups(
        make_context(backups=[entry(tables=["*"], exclude=["tmp_*", "decision_*"])])
    )
    assert [f["table"] for f in run.files] == ["customers"]
    assert run.skipped == ["named_customers (view)"]


def test_a_view_named_explicitly_is_an_error_naming_it(shop, make_context):
    (run,) = run_backups(make_context(backups=[entry(tables=["customers", "named_customers"])]))
    assert run.status is Status.ERROR
    assert "'named_customers' is a view, not a table" in run.message
    assert run.files == []  # nothing stored of a set that cannot be whole


def test_a_table_that_fails_does_not_stop_the_others(shop, make_context):
    (run,) = run_backups(make_context(backups=[entry(tables=["customers", "dropped"])]))
    assert run.status is Status.ERROR
    assert "reading 'dropped' failed" in run.message and "no table 'dropped'" in run.message
    assert [f["table"] for f in run.files] == ["customers"]


def test_one_listing_and_one_deletion_for_the_retention_of_a_set(shop, make_context, tmp_path):
    backups = tmp_path / "backups"
    backups.mkdir()
    for table in ("customers", "decision_vault", "tmp_import"):
        (backups / f"{table}_2020-01-01_00-00-00.json").write_text("{}")
    sinks = {"local": {"type": "local", "path": "backups", "retention_days": 30}}
    (run,) = run_backups(make_context(backups=[entry(tables="all")], sinks=sinks))
    assert run.status is Status.OK, run.message
    assert not [n for n in backup_files(backups) if "2020" in n]


def test_a_restore_finds_the_entry_of_a_table_in_a_set(shop, make_context):
    context = make_context(backups=[entry(tables="all")])
    run_backups(context)
    shop.execute("DELETE FROM customers")
    plan = prepare_restore(context, RestoreRequest(table="customers"))
    try:
        assert plan.counts["insert"] == 2
        apply_restore(context, plan)
    finally:
        close_plan(plan)
    assert [r["name"] for r in shop.rows("customers")] == ["Ada", "Grace"]


def test_a_sqlite_file_in_wal_mode_is_read_in_one_snapshot(shop, make_context, tmp_path):
    with closing(sqlite3.connect(shop.path)) as connection:
        connection.execute("PRAGMA journal_mode=wal")
    (run,) = run_backups(make_context(backups=[entry(tables="all")]))
    for file in run.files:
        assert metadata(tmp_path / "backups" / file["name"])["snapshot"] is True
    (run,) = run_backups(make_context())  # a single table is a set of one
    assert metadata(tmp_path / "backups" / run.files[0]["name"])["snapshot"] is True


def test_rollback_journal_sqlite_is_not_claimed_a_snapshot(shop, make_context, tmp_path):
    (run,) = run_backups(make_context(backups=[entry(tables="all")]))
    assert metadata(tmp_path / "backups" / run.files[0]["name"])["snapshot"] is False


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"table": "a", "tables": ["b"]}, "either `table:` or `tables:`"),
        ({}, "needs `table:` (one table) or `tables:`"),
        ({"table": "a", "exclude": ["b"]}, "`exclude:` goes with `tables:`"),
        ({"tables": "some"}, "backups[0].tables"),
    ],
)
def test_the_pipeline_says_what_is_wrong_with_tables(tmp_path, keys, message):
    path = tmp_path / "angles.yaml"
    path.write_text(json.dumps(pipeline_document(backups=[entry(**keys)])))
    with pytest.raises(PipelineError) as raised:
        load_pipeline(path, load_plugins(), environ={})
    assert message in str(raised.value)


# ---- PostgreSQL ---------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE accounts_a (id int PRIMARY KEY, amount bigint NOT NULL);
CREATE TABLE accounts_b (id int PRIMARY KEY, amount bigint NOT NULL);
CREATE TABLE measurements (id int, at date, value numeric, PRIMARY KEY (id, at))
    PARTITION BY RANGE (at);
CREATE TABLE measurements_2025 PARTITION OF measurements
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE measurements_2026 PARTITION OF measurements
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE VIEW rich AS SELECT DISTINCT id FROM accounts_a WHERE amount > 100;
CREATE MATERIALIZED VIEW totals AS SELECT sum(amount) AS total FROM accounts_a;
CREATE SCHEMA audit;
CREATE TABLE audit.events (id int PRIMARY KEY, what text);
INSERT INTO measurements VALUES (1, '2025-06-01', 1.50), (2, '2026-06-01', 2.25);
INSERT INTO audit.events VALUES (1, 'created'), (2, 'deleted');
"""
ACCOUNTS = 20_000


@pytest.fixture
def bank(postgres_db, tmp_path):
    postgres_db.execute(SCHEMA)
    for table in ("accounts_a", "accounts_b"):
        postgres_db.execute(
            f"INSERT INTO {table} SELECT i, 100 FROM generate_series(1, {ACCOUNTS}) AS i"
        )

    def make(url: str = postgres_db.url, jobs: int | None = None, **keys: Any) -> Context:
        connection = {"type": "postgres", "url": url} | ({"jobs": jobs} if jobs else {})
        document = pipeline_document(connections={"vault": connection}, backups=[entry(**keys)])
        path = tmp_path / "angles.yaml"
        path.write_text(json.dumps(document))
        plugins = load_plugins()
        return Context(load_pipeline(path, plugins, environ={}), plugins)

    return postgres_db, make


def test_postgres_all_takes_base_and_partitioned_tables_once(bank, tmp_path):
    _, make = bank
    (run,) = run_backups(make(tables="all"))
    assert run.status is Status.OK, run.message
    assert [f["table"] for f in run.files] == ["accounts_a", "accounts_b", "measurements"]
    assert run.skipped == ["rich (view)", "totals (materialized view)"]
    measurements = next(f for f in run.files if f["table"] == "measurements")
    assert measurements["record_count"] == 2  # both partitions, through the parent


def test_postgres_other_schemas_by_name(bank, tmp_path):
    postgres, make = bank
    context = make(tables=["audit.*"])
    (run,) = run_backups(context)
    assert run.status is Status.OK, run.message
    (file,) = run.files
    assert file["name"].startswith("audit.events_")
    assert file_rows(tmp_path / "backups" / file["name"]) == [
        {"id": 1, "what": "created"},
        {"id": 2, "what": "deleted"},
    ]
    postgres.execute("DELETE FROM audit.events WHERE id = 2")
    plan = prepare_restore(context, RestoreRequest(table="audit.events"))
    try:
        apply_restore(context, plan)
    finally:
        close_plan(plan)
    assert postgres.fetchval("SELECT count(*) FROM audit.events") == 2


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_postgres_set_is_one_snapshot_while_money_moves(bank, tmp_path, jobs):
    """A writer moves amounts from accounts_a to accounts_b, one transaction each, while
    the backup reads both (one after the other, or both at once on two connections
    sharing one snapshot): the set must hold the same total as before."""
    postgres, make = bank
    total = 2 * 100 * ACCOUNTS
    stop, moved = threading.Event(), [0]

    def transfer() -> None:
        with postgres.connect() as connection:
            while not stop.is_set():
                account = moved[0] % ACCOUNTS + 1
                with connection.transaction():
                    connection.execute(
                        "UPDATE accounts_a SET amount = amount - 1 WHERE id = %s", [account]
                    )
                    connection.execute(
                        "UPDATE accounts_b SET amount = amount + 1 WHERE id = %s", [account]
                    )
                moved[0] += 1

    writer = threading.Thread(target=transfer)
    writer.start()
    try:
        while moved[0] < 10:  # the writer is under way before the backup starts
            stop.wait(0.01)
        before = moved[0]
        (run,) = run_backups(make(tables=["accounts_*"], jobs=jobs))
        during = moved[0] - before
    finally:
        stop.set()
        writer.join()
    assert run.status is Status.OK, run.message
    assert during > 0, "the writer moved nothing during the backup: the test proves nothing"
    backed_up = 0
    for file in run.files:
        path = tmp_path / "backups" / file["name"]
        assert metadata(path)["snapshot"] is True
        backed_up += sum(row["amount"] for row in file_rows(path))
    assert backed_up == total


def _contents(run: Any, folder: Path) -> dict[str, bytes]:
    """Each file of ``run`` without its first line (the metadata, with its timestamp)."""
    return {f["table"]: (folder / f["name"]).read_bytes().split(b"\n", 1)[1] for f in run.files}


@contextlib.contextmanager
def login(postgres: Any, grants: str, *, connections: int = -1) -> Iterator[tuple[str, str]]:
    """A login role of its own, ``grants`` given (``{role}`` stands for its name), allowed
    ``connections`` at once; yields its name and a URL that logs in as it."""
    role = f"angles_login_{uuid.uuid4().hex[:8]}"
    postgres.execute(
        f"CREATE ROLE {role} LOGIN PASSWORD 'reader' CONNECTION LIMIT {connections}; "
        f"GRANT USAGE ON SCHEMA public TO {role}; " + grants.format(role=role)
    )
    url = urlunsplit(urlsplit(postgres.url)._replace(netloc=f"{role}:reader@127.0.0.1:5432"))
    try:
        yield role, url
    finally:
        postgres.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


def _sessions_settle_at(postgres: Any, role: str, count: int) -> bool:
    """Whether the sessions of ``role`` come down to ``count`` within 5 s (a server process
    ends a moment after its client closes)."""
    deadline = time.monotonic() + 5
    while True:
        sessions = postgres.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", [role]
        )
        if sessions == count or time.monotonic() > deadline:
            return sessions == count
        time.sleep(0.05)


def test_tables_read_at_once_give_the_files_read_one_at_a_time_give(bank, tmp_path):
    postgres, make = bank
    (one_by_one,) = run_backups(make(tables="all", jobs=1))
    assert one_by_one.status is Status.OK, one_by_one.message
    expected = _contents(one_by_one, tmp_path / "backups")
    for file in (tmp_path / "backups").iterdir():
        file.unlink()
    with login(postgres, "GRANT pg_read_all_data TO {role}") as (role, url):
        context = make(url=url, tables="all", jobs=3)
        (at_once,) = run_backups(context)
        assert at_once.status is Status.OK, at_once.message
        # The readers' connections closed with the backup; the run's own one stays open.
        assert _sessions_settle_at(postgres, role, 1)
        context.close()
    assert [f["table"] for f in at_once.files] == [f["table"] for f in one_by_one.files]
    assert _contents(at_once, tmp_path / "backups") == expected


def test_readers_that_cannot_connect_leave_their_tables_to_the_first(bank, tmp_path):
    """A login allowed one connection (a pooler's or a plan's limit): the readers beyond the
    first are refused, and the first reads every table itself."""
    postgres, make = bank
    with login(postgres, "GRANT pg_read_all_data TO {role}", connections=1) as (_, url):
        context = make(url=url, tables="all", jobs=3)
        (run,) = run_backups(context)
        context.close()
    assert run.status is Status.OK, run.message
    assert [f["table"] for f in run.files] == ["accounts_a", "accounts_b", "measurements"]
    assert sum(f["record_count"] for f in run.files) == 2 * ACCOUNTS + 2
    logged = "".join(path.read_text() for path in (tmp_path / "logs").iterdir())
    refusals = [line for line in logged.splitlines() if "reader not started" in line]
    assert len(refusals) == 2
    assert all("too many connections" in line for line in refusals)
    assert "reader'" not in logged and ":reader@" not in logged  # the password stays out


@pytest.mark.parametrize("jobs", [1, 3])
def test_a_table_the_login_cannot_read_does_not_stop_the_others(bank, tmp_path, jobs):
    """A refused read aborts a PostgreSQL transaction: the snapshot must go on without it."""
    postgres, make = bank
    postgres.execute("CREATE TABLE secrets (id int PRIMARY KEY)")
    grants = "GRANT SELECT ON accounts_a, accounts_b, measurements TO {role}"
    tables = ["accounts_a", "secrets", "accounts_b", "measurements"]
    with login(postgres, grants) as (_, url):
        context = make(url=url, tables=tables, jobs=jobs)
        (run,) = run_backups(context)
        context.close()
    assert run.status is Status.ERROR
    assert [f["table"] for f in run.files] == ["accounts_a", "accounts_b", "measurements"]
    assert "reading 'secrets'" in run.message and "permission denied" in run.message
    assert "aborted" not in run.message
    for file in run.files:
        assert metadata(tmp_path / "backups" / file["name"])["snapshot"] is True


def test_supabase_all_takes_what_the_data_api_can_insert_into(bank, postgrest, tmp_path):
    postgres, _ = bank
    postgres.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role")
    document = pipeline_document(
        connections={
            "vault": {"type": "supabase", "url": postgrest.url, "key": postgrest.service_role_key}
        },
        backups=[entry(tables="all", exclude=["measurements*"])],
    )
    path = tmp_path / "angles.yaml"
    path.write_text(json.dumps(document))
    plugins = load_plugins()
    (run,) = run_backups(Context(load_pipeline(path, plugins, environ={}), plugins))
    assert run.status is Status.OK, run.message
    assert [f["table"] for f in run.files] == ["accounts_a", "accounts_b"]
    assert run.skipped == ["rich (view)", "totals (view)"]
    for file in run.files:
        assert metadata(tmp_path / "backups" / file["name"])["snapshot"] is False


def test_supabase_other_schemas_by_glob(bank, postgrest_factory, tmp_path):
    """``audit.*`` through the Data API: the schema's own OpenAPI document lists it, its
    rows are read with Accept-Profile and restored with Content-Profile."""
    postgres, _ = bank
    server = postgrest_factory(schemas=["public", "audit"])
    document = pipeline_document(
        connections={
            "vault": {"type": "supabase", "url": server.url, "key": server.service_role_key}
        },
        backups=[entry(tables=["audit.*"])],
    )
    path = tmp_path / "angles.yaml"
    path.write_text(json.dumps(document))
    plugins = load_plugins()
    context = Context(load_pipeline(path, plugins, environ={}), plugins)
    try:
        (run,) = run_backups(context)
        assert run.status is Status.OK, run.message
        (file,) = run.files
        assert file["name"].startswith("audit.events_")
        stored = tmp_path / "backups" / file["name"]
        assert metadata(stored)["source"] == "audit.events"
        assert metadata(stored)["snapshot"] is False
        assert file_rows(stored) == [{"id": 1, "what": "created"}, {"id": 2, "what": "deleted"}]
        postgres.execute("DELETE FROM audit.events WHERE id = 2")
        plan = prepare_restore(context, RestoreRequest(table="audit.events"))
        try:
            assert plan.counts["insert"] == 1 and plan.counts["unchanged"] == 1
            apply_restore(context, plan)
        finally:
            close_plan(plan)
    finally:
        context.close()
    assert postgres.fetchall("SELECT id, what FROM audit.events ORDER BY id") == [
        (1, "created"),
        (2, "deleted"),
    ]
    writes = server.requests_to(r"/rest/v1/events$", "POST")
    assert writes and {w.header("content-profile") for w in writes} == {"audit"}


def test_supabase_a_schema_not_exposed_fails_the_entry_clearly(bank, postgrest, tmp_path):
    document = pipeline_document(
        connections={
            "vault": {"type": "supabase", "url": postgrest.url, "key": postgrest.service_role_key}
        },
        backups=[entry(tables=["accounts_a", "audit.*"])],
    )
    path = tmp_path / "angles.yaml"
    path.write_text(json.dumps(document))
    plugins = load_plugins()
    context = Context(load_pipeline(path, plugins, environ={}), plugins)
    try:
        (run,) = run_backups(context)
    finally:
        context.close()
    assert run.status is Status.ERROR
    assert "the schema 'audit' is not exposed through the Data API" in run.message
    assert "(it exposes public, graphql_public)" in run.message
    assert run.files == []
