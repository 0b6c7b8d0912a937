"""The ``postgres`` connection against a real PostgreSQL: the Database interface, values
shaped as PostgREST shapes them, errors, and backup → verify → restore end to end."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from angles import ServiceError, parse_filter
from angles.core.config import load_pipeline
from angles.core.context import Context
from angles.core.plugins import load_plugins

TABLE = """
CREATE TABLE decision_vault (
    id uuid PRIMARY KEY,
    decision text NOT NULL,
    type text,
    amount numeric(12,2),
    ratio double precision,
    payload jsonb,
    tags text[],
    blob bytea,
    notion_synced boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz
)"""

AWKWARD = {
    "id": "0a6a3a45-6513-470e-a69e-0d37f2a74de4",
    "decision": 'Décision — 決定 ✓ "quoted" \\ back\nslash',
    "type": None,
    "amount": 12.5,
    "ratio": 0.1,
    "payload": {"k": [1, 2.5, None], "nested": {"ü": "ß", "empty": {}}},
    "tags": ["a", "b,c", "", None, "ü"],
    "blob": "\\xdeadbeef00",
    "notion_synced": False,
    "created_at": "2025-05-01T08:38:31.216964+00:00",
    "updated_at": None,
}


# AWKWARD as the connection reads it: values that JSON cannot hold exactly (numeric,
# floats, jsonb, arrays, bytea) as PostgreSQL's text output (TableSchema.text_columns).
AWKWARD_TEXT = AWKWARD | {
    "amount": "12.50",
    "ratio": "0.1",
    "payload": '{"k": [1, 2.5, null], "nested": {"ü": "ß", "empty": {}}}',
    "tags": '{a,"b,c","",NULL,ü}',
}


def as_text(row: dict[str, Any]) -> dict[str, Any]:
    """A :func:`decision` row in the encoding the connection writes (see AWKWARD_TEXT)."""
    encoded = dict(row)
    for column, value in row.items():
        if column == "payload" and value is not None:
            encoded[column] = json.dumps(value)
        elif column == "tags" and value is not None:
            encoded[column] = "{" + ",".join(f'"{tag}"' for tag in value) + "}"
        elif column in ("amount", "ratio") and value is not None:
            encoded[column] = str(value)
    return encoded


def decision(i: int, **changes: Any) -> dict[str, Any]:
    row = {
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "decision": f"decision {i}",
        "type": "Architecture",
        "amount": i / 4,
        "ratio": None,
        "payload": {"i": i},
        "tags": ["x"],
        "blob": None,
        "notion_synced": i % 2 == 0,
        "created_at": "2025-08-01T09:20:00+00:00",
        "updated_at": "2025-08-01T09:25:00.5+00:00",
    }
    row.update(changes)
    return row


def insert(db: Any, rows: list[dict[str, Any]], table: str = "decision_vault") -> None:
    """Insert rows as PostgREST would (json_populate_recordset), independently of angles."""
    db.execute(
        f"INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, %s::json)",
        [json.dumps(rows)],
    )


def table_json(db: Any, table: str = "decision_vault") -> list[str]:
    """The table as PostgreSQL writes it in JSON, in key order (to compare exactly)."""
    return [r[0] for r in db.fetchall(f"SELECT row_to_json(t)::text FROM {table} t ORDER BY 1")]


@pytest.fixture
def vault(postgres_db):
    postgres_db.execute(TABLE)
    return postgres_db


@pytest.fixture
def connect(tmp_path: Path):
    """A ``postgres`` connection made the way a run makes it."""
    contexts: list[Context] = []

    def make(url: str, **options: Any) -> Any:
        path = tmp_path / "angles.yaml"
        config = {"type": "postgres", "url": url, **options}
        path.write_text(json.dumps({"version": 1, "connections": {"db": config}}))
        plugins = load_plugins()
        context = Context(load_pipeline(path, plugins, environ={}), plugins)
        contexts.append(context)
        return context.connection("db")

    yield make
    for context in contexts:
        context.close()


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the Database interface -----------------------------------------------------------------


def test_describe_reads_types_key_and_required_columns_from_the_catalog(vault, connect):
    schema = connect(vault.url).describe("decision_vault")
    assert schema.primary_key == ("id",)
    assert schema.columns == {
        "id": "uuid",
        "decision": "text",
        "type": "text",
        "amount": "numeric",
        "ratio": "double precision",
        "payload": "jsonb",
        "tags": "text[]",
        "blob": "bytea",
        "notion_synced": "boolean",
        "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    }
    # NOT NULL without a default: notion_synced and created_at have defaults.
    assert schema.required == {"id", "decision"}


def test_values_come_out_exactly_as_postgresql_holds_them(vault, connect):
    insert(vault, [AWKWARD])
    db = connect(vault.url)
    schema = db.describe("decision_vault")
    assert schema.text_columns == {"amount", "ratio", "payload", "tags", "blob"}
    [row] = db.stream("decision_vault", schema)
    assert row == AWKWARD_TEXT
    assert vault.fetchall(
        "SELECT amount::text, ratio::text, payload::text, tags::text FROM decision_vault"
    ) == [tuple(row[c] for c in ("amount", "ratio", "payload", "tags"))]
    # The other values as PostgREST writes them (json_agg in a UTC session).
    with vault.connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        [(text,)] = conn.execute("SELECT json_agg(t)::text FROM decision_vault t").fetchall()
    [postgrest] = json.loads(text)
    assert {c: v for c, v in postgrest.items() if c not in schema.text_columns} == {
        c: v for c, v in row.items() if c not in schema.text_columns
    }
    assert '"created_at":"2025-05-01T08:38:31.216964+00:00"' in text.replace(" ", "")


def test_timestamps_are_utc_whatever_the_servers_time_zone(vault, connect):
    vault.execute(f"ALTER DATABASE {vault.url.rsplit('/', 1)[1]} SET TimeZone = 'Asia/Tokyo'")
    try:
        insert(vault, [decision(1, created_at="2025-05-01T08:38:31+00:00")])
        db = connect(vault.url)
        [row] = db.select("decision_vault")
        assert row["created_at"] == "2025-05-01T08:38:31+00:00"
    finally:
        vault.execute(f"ALTER DATABASE {vault.url.rsplit('/', 1)[1]} RESET TimeZone")


def test_text_keys_stream_in_python_order(vault, connect):
    vault.execute("CREATE TABLE notes (k text, n int, body text, PRIMARY KEY (k, n))")
    keys = ["b", "B", "a", "é", "e", "Z", "ä", "_", "aa", "a b", "10", "9", "ß", "€", "😀", ""]
    insert(vault, [{"k": k, "n": n, "body": k * 2} for k in keys for n in (2, 1)], "notes")
    db = connect(vault.url)
    streamed = [(r["k"], r["n"]) for r in db.stream("notes", db.describe("notes"))]
    assert streamed == sorted((k, n) for k in keys for n in (1, 2))


def test_copy_escapes_and_wide_tables_come_back_intact(vault, connect):
    vault.execute("CREATE TABLE docs (id int PRIMARY KEY, raw json, note text)")
    note = 'tab\there \\ \b\f\v "q" \r\n end'
    vault.execute("INSERT INTO docs VALUES (1, %s, %s)", ['{"a":\n\t[1,\r\n2]}', note])
    columns = ", ".join(f"c{i} int" for i in range(120))
    vault.execute(f"CREATE TABLE wide (id int PRIMARY KEY, {columns})")
    vault.execute("INSERT INTO wide (id, c0, c119) VALUES (1, 0, 119)")
    db = connect(vault.url)
    [doc] = db.stream("docs", db.describe("docs"))
    assert doc == {"id": 1, "raw": '{"a":\n\t[1,\r\n2]}', "note": note}  # json as written
    [row] = db.stream("wide", db.describe("wide"))
    assert (len(row), row["c0"], row["c119"], row["c5"]) == (121, 0, 119, None)


def test_stream_filters_and_handles_more_rows_than_a_page(vault, connect):
    insert(vault, [decision(i) for i in range(2500)])
    db = connect(vault.url)
    schema = db.describe("decision_vault")
    rows = list(db.stream("decision_vault", schema, parse_filter("notion_synced=is.false")))
    assert len(rows) == 1250
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)


def test_an_abandoned_stream_releases_its_connection(vault, connect):
    insert(vault, [decision(i) for i in range(3000)])
    db = connect(vault.url)
    schema = db.describe("decision_vault")
    rows = db.stream("decision_vault", schema)
    assert next(rows)["id"].endswith("0000")
    assert sessions(vault) == 2  # the connection's own and the stream's
    rows.close()
    deadline = time.monotonic() + 5
    while sessions(vault) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sessions(vault) == 1
    assert db.count("decision_vault") == 3000


def sessions(db: Any) -> int:
    return db.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = 'angles' AND datname = current_database()"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("notion_synced=is.false", 5),
        ("notion_synced=is.true&type=eq.Architecture", 5),
        ("amount=gt.1", 5),
        ("decision=in.(decision 1,decision 2)", 2),
        ("decision=ilike.DECISION 1*", 1),
        ("type=not.is.null", 10),
        ("decision=like.*9", 1),
    ],
)
def test_count_is_exact_with_filters(vault, connect, text, expected):
    insert(vault, [decision(i) for i in range(10)])
    assert connect(vault.url).count("decision_vault", parse_filter(text)) == expected


def test_select_orders_and_limits(vault, connect):
    insert(vault, [decision(i, created_at=f"2025-08-0{9 - i}T00:00:00+00:00") for i in range(5)])
    db = connect(vault.url)
    rows = db.select(
        "decision_vault",
        where=parse_filter("notion_synced=is.true"),
        order_by=[("created_at", False)],
        limit=2,
    )
    assert [r["decision"] for r in rows] == ["decision 4", "decision 2"]


def test_upsert_casts_json_like_postgrest_and_round_trips_exactly(vault, connect):
    rows = [AWKWARD, *(decision(i) for i in range(1200))]
    insert(vault, rows)
    expected = table_json(vault)
    db = connect(vault.url)
    schema = db.describe("decision_vault")
    streamed = list(db.stream("decision_vault", schema))
    vault.execute("DELETE FROM decision_vault")
    assert db.upsert("decision_vault", schema, streamed, batch_size=500) == len(rows)
    assert table_json(vault) == expected
    assert (
        vault.fetchval("SELECT amount::text FROM decision_vault WHERE id = %s", [AWKWARD["id"]])
        == "12.50"
    )
    assert vault.fetchval(
        "SELECT blob FROM decision_vault WHERE id = %s", [AWKWARD["id"]]
    ) == bytes.fromhex("deadbeef00")


def test_upsert_updates_existing_rows_by_key(vault, connect):
    insert(vault, [decision(1), decision(2)])
    db = connect(vault.url)
    schema = db.describe("decision_vault")
    db.upsert("decision_vault", schema, [{"id": decision(1)["id"], "decision": "changed"}])
    assert vault.fetchall("SELECT decision, type FROM decision_vault ORDER BY id") == [
        ("changed", "Architecture"),
        ("decision 2", "Architecture"),
    ]


def test_an_upsert_failing_in_a_later_batch_writes_nothing(vault, connect):
    insert(vault, [decision(1)])
    db = connect(vault.url)
    schema = db.describe("decision_vault")
    rows = [as_text(decision(i, decision="new")) for i in range(1, 8)]
    rows.append(as_text(decision(9, decision=None)))
    with pytest.raises(ServiceError) as caught:
        db.upsert("decision_vault", schema, rows, batch_size=2)
    assert "writing to 'decision_vault' failed" in str(caught.value)
    assert "not-null" in str(caught.value)
    assert vault.fetchall("SELECT decision FROM decision_vault") == [("decision 1",)]


def test_a_transaction_spans_several_upserts(vault, connect):
    db = connect(vault.url)
    schema = db.describe("decision_vault")
    with pytest.raises(ServiceError), db.transaction():
        db.upsert("decision_vault", schema, [as_text(decision(1))])
        db.upsert("decision_vault", schema, [as_text(decision(2, decision=None))])
    assert vault.fetchval("SELECT count(*) FROM decision_vault") == 0
    with db.transaction():
        db.upsert("decision_vault", schema, [as_text(decision(1))])
        db.upsert("decision_vault", schema, [as_text(decision(2))])
    assert vault.fetchval("SELECT count(*) FROM decision_vault") == 2


def test_generated_and_identity_columns(vault, connect):
    vault.execute(
        "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " price numeric(8,2) NOT NULL, doubled numeric GENERATED ALWAYS AS (price * 2) STORED)"
    )
    vault.execute("INSERT INTO events (price) VALUES (1.25), (2.5)")
    db = connect(vault.url)
    schema = db.describe("events")
    assert schema.required == {"price"}
    rows = list(db.stream("events", schema))
    assert rows == [
        {"id": 1, "price": "1.25", "doubled": "2.50"},
        {"id": 2, "price": "2.50", "doubled": "5.00"},
    ]
    vault.execute("DELETE FROM events")
    db.upsert("events", schema, rows)
    assert vault.fetchall("SELECT id, price::text, doubled::text FROM events ORDER BY id") == [
        (1, "1.25", "2.50"),
        (2, "2.50", "5.00"),
    ]


def test_another_schema(vault, connect):
    vault.execute("CREATE SCHEMA private; CREATE TABLE private.items (id int PRIMARY KEY)")
    vault.execute("INSERT INTO private.items VALUES (2), (1)")
    db = connect(vault.url, schema="private")
    assert [r["id"] for r in db.stream("items", db.describe("items"))] == [1, 2]


# -- errors -------------------------------------------------------------------------------------


def test_a_missing_table_is_named(vault, connect):
    with pytest.raises(ServiceError) as caught:
        connect(vault.url).count("nope")
    assert str(caught.value).startswith("PostgreSQL: there is no table 'nope' in schema 'public'")


def test_a_refused_connection_says_what_to_check(connect):
    url = f"postgresql://angles:hunter2-secret@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(ServiceError) as caught:
        connect(url).count("decision_vault")
    message = str(caught.value)
    assert "could not connect to 127.0.0.1:" in message and "connection refused" in message
    assert "DATABASE_URL" in message
    assert "hunter2-secret" not in message


def test_a_bad_password_says_what_to_check(vault, connect):
    with pytest.raises(ServiceError) as caught:
        connect(with_password(vault.url, "wrong-pässword")).count("decision_vault")
    message = str(caught.value)
    assert f"refused the login of user {urlsplit(vault.url).username!r}" in message
    assert "password" in message and "DATABASE_URL" in message
    assert "wrong-pässword" not in message


@contextlib.contextmanager
def locked_by_another_session(url: str) -> Iterator[None]:
    """decision_vault locked (ACCESS EXCLUSIVE) by another session while the block runs."""
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(url) as conn:
            conn.execute("LOCK TABLE decision_vault IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        locked.wait(10)
        yield
    finally:
        release.set()
        holder.join()


def test_a_statement_that_overruns_times_out_clearly(vault, connect):
    db = connect(vault.url, timeout_seconds=0.5)
    with locked_by_another_session(vault.url), pytest.raises(ServiceError) as caught:
        db.count("decision_vault")
    assert "timed out after 0.5s" in str(caught.value)


def test_work_without_a_statement_timeout_still_waits_for_a_lock_only_so_long(vault, connect):
    # Reading a whole table (or staging a restore) lifts the statement timeout; a table
    # locked by another session must not hold the nightly run forever.
    db = connect(vault.url, timeout_seconds=0.5)
    schema = db.describe("decision_vault")
    with locked_by_another_session(vault.url), pytest.raises(ServiceError) as caught:
        list(db.stream_lines("decision_vault", schema))
    assert "another session held a lock on the table for 0.5s" in str(caught.value)
    assert "pg_stat_activity" in caught.value.hint


def test_an_invalid_url_is_a_pipeline_error_that_does_not_repeat_it(angles_cli, pipeline_file):
    path = pipeline_file(
        """\
        version: 1
        connections:
          db: {type: postgres, url: "mysql://root:s3cret@db/x"}
        """
    )
    result = angles_cli("validate", path)
    assert result.exit_code == 3
    assert "connections.db.url: is not a PostgreSQL URL" in result.stderr
    assert "s3cret" not in result.output


# -- end to end: backup, verify, restore ------------------------------------------------------

PIPELINE = """\
version: 1
name: pg
log_dir: logs
connections:
  db: {{type: postgres, url: "${{DATABASE_URL}}"}}
sinks:
  local: {{type: local, path: backups}}
backups:
  - {{name: decision_vault, connection: db, table: decision_vault, sinks: [local]}}
restore:
  batch_size: {batch_size}
"""


@pytest.fixture
def pipeline(vault, pipeline_file, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", vault.url)

    def write(batch_size: int = 500) -> Path:
        return pipeline_file(PIPELINE.format(batch_size=batch_size))

    return write


def everything_written(tmp_path: Path) -> str:
    """Every log line and backup file of the run, to look for secrets in."""
    return "".join(
        p.read_text(encoding="utf-8", errors="replace")
        for folder in ("logs", "backups")
        if (tmp_path / folder).is_dir()
        for p in (tmp_path / folder).iterdir()
    )


def test_backup_verify_and_restore_round_trip(vault, pipeline, angles_cli, tmp_path):
    rows = [AWKWARD, *(decision(i) for i in range(1500))]
    insert(vault, rows)
    original = table_json(vault)
    path = pipeline()

    backup = angles_cli("backup", path, "--format", "json")
    assert backup.exit_code == 0, backup.output
    [run] = backup.json()["backups"]
    assert (run["status"], run["record_count"]) == ("ok", 1501)
    [stored] = run["files"]
    document = json.loads((tmp_path / "backups" / stored["name"]).read_text(encoding="utf-8"))
    assert document["metadata"]["primary_key"] == ["id"]
    assert document["metadata"]["columns"]["created_at"] == "timestamp with time zone"
    assert AWKWARD_TEXT in document["data"]

    verify = angles_cli("backups", "verify", path, "--format", "json")
    assert verify.exit_code == 0, verify.output

    # Lose some rows, change others; add one the backup does not know.
    vault.execute("DELETE FROM decision_vault WHERE decision LIKE 'decision 1%'")
    vault.execute(
        "UPDATE decision_vault SET payload = '{\"changed\": true}', tags = NULL, blob = '\\x00'"
        " WHERE decision LIKE 'decision 2%%' OR id = %s",
        [AWKWARD["id"]],
    )
    insert(vault, [decision(99999)])

    dry = angles_cli("restore", path, "--format", "json")
    assert dry.exit_code == 0, dry.output
    plan = dry.json()
    deleted = sum(1 for i in range(1500) if str(i).startswith("1"))
    changed = sum(1 for i in range(1500) if str(i).startswith("2")) + 1
    assert plan["counts"]["insert"] == deleted
    assert plan["counts"]["update"] == changed
    assert plan["counts"]["only_in_database"] == 1
    assert plan["verified"] is True and plan["live"] is False
    assert vault.fetchval("SELECT count(*) FROM decision_vault") == 1501 - deleted + 1

    live = angles_cli("restore", path, "--live", "--yes", "--format", "json")
    assert live.exit_code == 0, live.output
    restored = table_json(vault)
    extra = [r for r in restored if decision(99999)["id"] in r]
    assert [r for r in restored if r not in extra] == original

    secret = urlsplit(vault.url).password
    assert secret not in backup.output + verify.output + dry.output + live.output
    assert secret not in everything_written(tmp_path)


def test_a_live_restore_failing_half_way_leaves_the_table_unchanged(
    vault, pipeline, angles_cli, tmp_path
):
    insert(vault, [decision(i) for i in range(10)] + [decision(20, decision="poison")])
    path = pipeline(batch_size=3)
    assert angles_cli("backup", path).exit_code == 0
    vault.execute("UPDATE decision_vault SET decision = decision || ' (edited)'")
    before = table_json(vault)
    # Added after the backup, so the last batch of the restore breaks it.
    vault.execute(
        "ALTER TABLE decision_vault ADD CONSTRAINT poison_refused"
        " CHECK (decision <> 'poison') NOT VALID"
    )
    live = angles_cli("restore", path, "--live", "--yes")
    assert live.exit_code == 2, live.output
    assert "poison_refused" in live.output
    assert table_json(vault) == before


STAMP_UPDATED_AT = """
CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at = now(); RETURN NEW; END $$;
CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON decision_vault
FOR EACH ROW EXECUTE FUNCTION stamp();
"""


def test_triggers_do_not_fire_while_a_restore_writes_so_it_converges(
    vault, pipeline, angles_cli, tmp_path
):
    """Supabase's updated_at recipe: a BEFORE UPDATE trigger stamping the row."""
    insert(vault, [decision(i, updated_at="2025-01-01T00:00:00+00:00") for i in range(20)])
    vault.execute(STAMP_UPDATED_AT)
    path = pipeline()
    assert angles_cli("backup", path).exit_code == 0
    original = table_json(vault)
    vault.execute("DELETE FROM decision_vault WHERE id IN (SELECT id FROM decision_vault LIMIT 5)")
    vault.execute("ALTER TABLE decision_vault DISABLE TRIGGER stamp")
    vault.execute("UPDATE decision_vault SET decision = 'changed', updated_at = NULL")
    vault.execute("ALTER TABLE decision_vault ENABLE TRIGGER stamp")
    live = angles_cli("restore", path, "--live", "--yes", "--overwrite-newer")
    assert live.exit_code == 0, live.output
    assert table_json(vault) == original  # no row stamped with the restore's time
    again = json.loads(angles_cli("restore", path, "--format", "json").stdout)
    assert again["counts"]["unchanged"] == 20 and again["counts"]["update"] == 0


def test_a_restore_that_would_break_a_foreign_key_changes_nothing(
    vault, pipeline, angles_cli, tmp_path
):
    insert(vault, [decision(i) for i in range(3)])
    vault.execute(
        "CREATE TABLE owners (id int PRIMARY KEY);"
        " ALTER TABLE decision_vault ADD COLUMN owner int REFERENCES owners (id);"
        " INSERT INTO owners VALUES (1); UPDATE decision_vault SET owner = 1"
    )
    path = pipeline()
    assert angles_cli("backup", path).exit_code == 0
    vault.execute("DELETE FROM decision_vault; DELETE FROM owners")
    live = angles_cli("restore", path, "--live", "--yes")
    assert live.exit_code == 2, live.output
    assert "refer to no row of 'owners'" in live.output
    assert vault.fetchval("SELECT count(*) FROM decision_vault") == 0


def test_a_backup_through_postgres_equals_one_through_supabase(
    vault, postgrest, angles_cli, pipeline_file, tmp_path, monkeypatch
):
    insert(vault, [AWKWARD, *(decision(i) for i in range(30))])
    monkeypatch.setenv("DATABASE_URL", vault.url)
    monkeypatch.setenv("SUPABASE_KEY", postgrest.service_role_key)
    path = pipeline_file(
        f"""\
        version: 1
        connections:
          db: {{type: postgres, url: "${{DATABASE_URL}}"}}
          api: {{type: supabase, url: "{postgrest.url}", key: "${{SUPABASE_KEY}}"}}
        sinks:
          direct: {{type: local, path: direct}}
          rest: {{type: local, path: rest}}
        backups:
          - {{name: direct, connection: db, table: decision_vault, sinks: [direct]}}
          - {{name: rest, connection: api, table: decision_vault, sinks: [rest]}}
        """
    )
    result = angles_cli("backup", path, "--format", "json")
    assert result.exit_code == 0, result.output

    def data(folder: str) -> tuple[list[str], dict[str, Any]]:
        [file] = (tmp_path / folder).iterdir()
        text = file.read_text(encoding="utf-8")
        return text.splitlines()[1:], json.loads(text)["metadata"]

    direct, direct_meta = data("direct")
    rest, rest_meta = data("rest")
    assert direct == rest
    assert direct_meta["checksum"] == rest_meta["checksum"]


def test_tables_of_a_snapshot_are_described_with_four_queries_in_all(postgres_db, connect):
    for n in range(6):
        parent = f", parent bigint REFERENCES t{n - 1}" if n else ""
        postgres_db.execute(
            f'CREATE TABLE t{n} (id bigserial PRIMARY KEY, "Name" text NOT NULL{parent})'
        )
    postgres_db.execute("CREATE TABLE pairs (a text, b int, PRIMARY KEY (b, a))")
    alone = {t: connect(postgres_db.url).describe(t) for t in ("t0", "t3", "pairs")}
    connection = connect(postgres_db.url)
    tables = [n for n, kind in connection.list_tables().items() if kind == "table"]
    queries: list[str] = []
    fetch = connection.fetch

    def counted(sql, params=(), table=None):  # counts, and asks the real database
        queries.append(sql)
        return fetch(sql, params, table)

    connection.fetch = counted
    with connection.snapshot():
        together = {t: connection.describe(t) for t in tables}
    assert len(queries) == 4  # columns, keys, foreign keys, sequences: for all 7 tables
    assert {t: together[t] for t in alone} == alone
    assert together["t3"].foreign_keys[0].table == "t2"
    assert together["t3"].sequences == {"id": "t3_id_seq"}
    assert together["pairs"].primary_key == ("b", "a")
    # outside a snapshot, a table is described on its own, afresh
    queries.clear()
    connection.describe("t1")
    assert len(queries) == 4
