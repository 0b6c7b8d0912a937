"""The supabase connection against the PostgREST gateway, with the real supabase-py.

The Database methods are called on a connection made from a pipeline, as the core makes
it; backups and restores go through the command line to a local sink.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path

import pytest

from angles.core.config import load_pipeline
from angles.core.context import Context
from angles.core.errors import ServiceError
from angles.core.filters import parse_filter
from angles.core.plugins import load_plugins
from angles.plugins.connections.supabase import SupabaseConnection

pytestmark = pytest.mark.postgres

VAULT = """
CREATE TABLE decision_vault (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    decision text NOT NULL,
    type text,
    tags text[],
    payload jsonb,
    amount numeric(10, 2),
    notion_synced boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz
);
INSERT INTO decision_vault
SELECT md5('row' || g)::uuid,
       'décision ' || g || ' — ✓ "quoted", (paren)',
       CASE WHEN g % 3 = 0 THEN NULL ELSE 'Architecture' END,
       ARRAY['a', 'b,c', g::text],
       jsonb_build_object('n', g, 'nested', jsonb_build_array(1, NULL, 'ü')),
       g * 1.25,
       g % 2 = 0,
       timestamptz '2025-08-01 00:00+00' + g * interval '1 minute',
       timestamptz '2025-08-02 00:00+00' + g * interval '1 second'
FROM generate_series(1, {rows}) g;
"""

PIPELINE = """\
version: 1
name: test
log_dir: logs
connections:
  supabase:
    type: supabase
    url: "${SUPABASE_URL}"
    key: "${SUPABASE_KEY}"
%(extra)s
sinks:
  local: {type: local, path: backups}
backups:
  - {name: decision_vault, connection: supabase, table: decision_vault, sinks: [local]}
"""


@pytest.fixture
def vault(postgres_db):
    """``vault(n)`` creates decision_vault with n rows."""

    def make(rows: int = 2500):
        postgres_db.execute(VAULT.replace("{rows}", str(int(rows))))
        return postgres_db

    return make


@pytest.fixture
def environment(postgrest, monkeypatch):
    monkeypatch.setenv("SUPABASE_URL", postgrest.url)
    monkeypatch.setenv("SUPABASE_KEY", postgrest.service_role_key)
    return postgrest


@pytest.fixture
def pipeline(pipeline_file, environment):
    """Write the pipeline; extra YAML lines go under the connection."""

    def write(extra: str = "") -> Path:
        if "retries" not in extra:  # no 1-2-4 s backoff unless a test asks for it
            extra = f"{extra}\n    retries: 0".strip("\n")
        return pipeline_file(PIPELINE % {"extra": extra})

    return write


@pytest.fixture
def connect(pipeline):
    """A supabase connection as a run makes it (options as extra YAML lines)."""
    contexts: list[Context] = []

    def make(extra: str = "") -> SupabaseConnection:
        plugins = load_plugins()
        context = Context(load_pipeline(pipeline(extra), plugins), plugins)
        contexts.append(context)
        return context.connection("supabase")  # type: ignore[return-value]

    yield make
    for context in contexts:
        context.close()


def table_requests(server, method="GET"):
    return server.requests_to(r"/rest/v1/decision_vault$", method)


def snapshot(db):
    return db.fetchval("SELECT jsonb_agg(to_jsonb(t) ORDER BY id) FROM decision_vault t")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- describe, count, stream, select ------------------------------------------------------------


def test_describe_reads_types_primary_key_and_required_columns(vault, connect, postgrest):
    vault(1)
    schema = connect().describe("decision_vault")
    assert schema.columns == {
        "id": "uuid",
        "decision": "text",
        "type": "text",
        "tags": "text[]",
        "payload": "jsonb",
        "amount": "numeric",
        "notion_synced": "boolean",
        "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    }
    assert schema.primary_key == ("id",)
    assert schema.required == {"decision"}  # NOT NULL columns with a default are not required
    assert [r.path for r in postgrest.requests] == ["/rest/v1/"]


def test_columns_whose_default_the_api_cannot_show_are_not_required(postgres_db, connect):
    # PostgREST's OpenAPI shows a default only when it reads as JSON (parseDefault): never
    # for identity, serial, json or array columns, nor for negative numbers, so the absence
    # of `default` proves nothing for those types; for string and boolean columns it does.
    postgres_db.execute(
        "CREATE TABLE settings (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " serial_no serial, meta jsonb NOT NULL DEFAULT '{}', tags text[] NOT NULL DEFAULT '{}',"
        " rank integer NOT NULL DEFAULT -1, count_ integer NOT NULL, label text NOT NULL,"
        " kind varchar(5) NOT NULL, active boolean NOT NULL, at timestamptz NOT NULL DEFAULT now())"
    )
    schema = connect().describe("settings")
    assert schema.required == {"label", "kind", "active"}


def test_describe_needs_the_service_role_key(vault, connect, environment, monkeypatch):
    vault(1)
    monkeypatch.setenv("SUPABASE_KEY", environment.anon_key)
    with pytest.raises(ServiceError) as caught:
        connect().describe("decision_vault")
    assert "HTTP 403" in str(caught.value)
    assert "the service_role key is needed" in str(caught.value)
    assert environment.anon_key not in str(caught.value)


def test_describe_an_unknown_table_suggests_a_name(vault, connect):
    vault(1)
    with pytest.raises(ServiceError, match=r"no table 'decision_vaults'.*perhaps you meant"):
        connect().describe("decision_vaults")


def test_count_is_exact_beyond_the_row_cap(vault, connect, postgrest):
    db = vault(2500)
    connection = connect()
    assert connection.count("decision_vault") == 2500
    assert connection.count("decision_vault", parse_filter("notion_synced=is.false")) == 1250
    expected = db.fetchval(
        "SELECT count(*) FROM decision_vault WHERE type IS NULL AND amount > 100"
    )
    assert (
        connection.count("decision_vault", parse_filter("type=is.null&amount=gt.100")) == expected
    )
    [head, *_] = table_requests(postgrest, "HEAD")
    assert head.header("prefer") == "count=exact"


def test_stream_reads_every_row_in_key_order_in_capped_pages(vault, connect, postgrest):
    db = vault(2500)
    connection = connect()
    rows = list(connection.stream("decision_vault", connection.describe("decision_vault")))
    expected = [r[0] for r in db.fetchall("SELECT id::text FROM decision_vault ORDER BY id")]
    assert [r["id"] for r in rows] == expected
    # Values JSON cannot hold exactly come as PostgreSQL's text, as through `postgres`.
    first = next(r for r in rows if json.loads(r["payload"])["n"] == 1)
    assert first["payload"] == '{"n": 1, "nested": [1, null, "ü"]}'
    assert (first["tags"], first["amount"], first["type"]) == (
        '{a,"b,c",1}',
        "1.25",
        "Architecture",
    )
    assert first["created_at"] == "2025-08-01T00:01:00+00:00"
    pages = table_requests(postgrest)
    assert len(pages) == 3  # 1000 + 1000 + 500: the short last page ends the read
    assert all(int(p.params["limit"]) <= 1000 for p in pages)
    assert [p.header("prefer") for p in pages] == ["count=exact", None, None]
    assert pages[1].params["id"] == f"gt.{expected[999]}"


def test_stream_keeps_going_when_the_server_caps_below_the_page_size(vault, connect, postgrest):
    vault(700)
    postgrest.max_rows = 300
    connection = connect()
    rows = list(connection.stream("decision_vault", connection.describe("decision_vault")))
    assert len({r["id"] for r in rows}) == 700


def test_stream_pages_a_composite_key_with_awkward_values(postgres_db, connect, postgrest):
    postgres_db.execute(
        "CREATE TABLE pairs (k text, n int, v text, PRIMARY KEY (k, n));"
        "INSERT INTO pairs SELECT k, n, k || n FROM unnest(ARRAY['a,b', 'x\"y', '(p)', "
        "'back\\slash', 'é', 'plain', 'dot.ted:colon']) k, generate_series(1, 4) n"
    )
    connection = connect("    page_size: 3")
    rows = list(connection.stream("pairs", connection.describe("pairs")))
    keys = [(r["k"], r["n"]) for r in rows]
    assert keys == sorted(keys)
    assert len(keys) == 28
    assert any("or" in r.params for r in postgrest.requests_to("/pairs$"))


def test_a_key_sorted_by_another_collation_is_refused(postgres_db, connect):
    if not postgres_db.fetchval("SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'"):
        pytest.skip("PostgreSQL without ICU")
    postgres_db.execute(
        'CREATE TABLE words (w text COLLATE "und-x-icu" PRIMARY KEY);'
        "INSERT INTO words VALUES ('a'), ('B'), ('c')"
    )
    connection = connect()
    with pytest.raises(ServiceError, match=r"out of primary-key order at 'B'.*COLLATE \"C\""):
        list(connection.stream("words", connection.describe("words")))


def test_a_date_key_out_of_order_is_not_blamed_on_collation(postgres_db, connect):
    # Dates BC come through the Data API as text that sorts the other way round.
    postgres_db.execute(
        "CREATE TABLE eras (d date PRIMARY KEY);"
        "INSERT INTO eras VALUES ('0100-01-01 BC'), ('0044-03-15 BC'), ('2026-11-26')"
    )
    connection = connect()
    with pytest.raises(ServiceError) as info:
        list(connection.stream("eras", connection.describe("eras")))
    assert "out of primary-key order" in info.value.message
    assert "d (date)" in str(info.value.hint) and "postgres connection" in str(info.value.hint)
    assert "collation" not in str(info.value.hint)


def test_stream_applies_a_filter(vault, connect):
    vault(50)
    connection = connect("    page_size: 7")
    where = parse_filter("notion_synced=is.false")
    rows = list(connection.stream("decision_vault", connection.describe("decision_vault"), where))
    assert len(rows) == 25
    assert not any(r["notion_synced"] for r in rows)


def test_a_read_that_ends_short_of_the_count_is_refused(vault, connect, postgrest):
    vault(2500)
    connection = connect()
    schema = connection.describe("decision_vault")
    # A page that comes back empty while the count says 2500 (a proxy, a cap): not the end.
    postgrest.fail(
        method="GET",
        path="decision_vault$",
        status=206,
        body=b"[]",
        headers={"Content-Type": "application/json", "Content-Range": "*/2500"},
    )
    with pytest.raises(ServiceError, match="only 0 of 2500 rows came back"):
        list(connection.stream("decision_vault", schema))


def test_rows_deleted_during_a_read_are_not_a_truncation(vault, connect):
    db = vault(2500)
    connection = connect()
    rows = []
    for row in connection.stream("decision_vault", connection.describe("decision_vault")):
        rows.append(row)
        if len(rows) == 1000:
            db.execute("DELETE FROM decision_vault WHERE id > %s", [row["id"]])
    assert len(rows) == 1000


def test_select_orders_and_limits(vault, connect):
    vault(30)
    rows = connect().select(
        "decision_vault",
        where=parse_filter("notion_synced=is.false"),
        order_by=[("created_at", True)],
        limit=2,
    )
    assert [r["created_at"] for r in rows] == [
        "2025-08-01T00:29:00+00:00",
        "2025-08-01T00:27:00+00:00",
    ]


# -- upsert ---------------------------------------------------------------------------------------


def test_upsert_writes_only_the_given_columns_in_batches(vault, connect, postgrest):
    db = vault(5)
    connection = connect()
    schema = connection.describe("decision_vault")
    [first_id] = db.fetchall("SELECT id::text FROM decision_vault ORDER BY id LIMIT 1")[0]
    untouched = "SELECT notion_synced, type, payload FROM decision_vault WHERE id = %s"
    before = db.fetchall(untouched, [first_id])
    new_id = "00000000-0000-0000-0000-000000000001"
    rows = [
        {"id": first_id, "decision": "changed"},
        {"id": new_id, "decision": "new"},
        {"id": first_id, "decision": "changed again"},  # the same key twice: two batches
    ]
    postgrest.clear()
    assert connection.upsert("decision_vault", schema, rows, batch_size=10) == 3
    posts = table_requests(postgrest, "POST")
    assert len(posts) == 2
    assert posts[0].params["on_conflict"] == "id"
    prefer = set(posts[0].header("prefer").split(","))
    assert {"return=minimal", "count=exact", "resolution=merge-duplicates"} <= prefer
    assert "missing=default" in prefer
    assert db.fetchval("SELECT decision FROM decision_vault WHERE id = %s", [first_id]) == (
        "changed again"
    )
    assert db.fetchall(untouched, [first_id]) == before  # columns not sent are kept
    inserted = db.fetchall(
        "SELECT decision, notion_synced, created_at IS NOT NULL FROM decision_vault WHERE id = %s",
        [new_id],
    )
    assert inserted == [("new", False, True)]  # defaults, not NULLs, for columns not sent


def test_upsert_batches_by_size(vault, connect, postgrest):
    vault(0)
    connection = connect()
    schema = connection.describe("decision_vault")
    rows = [{"id": f"00000000-0000-0000-0000-{i:012d}", "decision": str(i)} for i in range(25)]
    assert connection.upsert("decision_vault", schema, rows, batch_size=10) == 25
    assert [len(p.json()) for p in table_requests(postgrest, "POST")] == [10, 10, 5]


def test_a_failed_write_is_not_retried(vault, connect, postgrest):
    vault(0)
    connection = connect("    retries: 3")
    schema = connection.describe("decision_vault")
    postgrest.fail_with_html(503, method="POST")
    with pytest.raises(ServiceError, match="HTTP 503 from the gateway"):
        connection.upsert("decision_vault", schema, [{"id": str(uuid.uuid4()), "decision": "x"}])
    assert len(table_requests(postgrest, "POST")) == 1


# -- failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("bad_key", "the API key was refused (Invalid API key) (check SUPABASE_KEY"),
        ("unknown_table", "there is no table 'decision_vaults' in the schema 'public' (Perhaps"),
        ("unknown_column", "column decision_vault.banana does not exist (42703)"),
        ("statement_timeout", "the statement timeout cancelled the query (57014)"),
        ("html", "HTTP 522 from the gateway"),
        ("refused", "counting the rows of 'decision_vault': connection refused at 127.0.0.1"),
        ("slow", "Supabase: counting the rows of 'decision_vault': no answer within 0.3s"),
    ],
)
def test_failures_are_one_clear_line(vault, connect, environment, monkeypatch, fault, expected):
    vault(3)
    table, where, extra = "decision_vault", None, ""
    if fault == "bad_key":
        monkeypatch.setenv("SUPABASE_KEY", "not-the-key-" + "x" * 40)
    elif fault == "unknown_table":
        table = "decision_vaults"
    elif fault == "unknown_column":
        where = parse_filter("banana=eq.1")
    elif fault == "statement_timeout":
        environment.fail_with_timeout(method="HEAD")
    elif fault == "html":
        environment.fail_with_html(522)
    elif fault == "refused":
        monkeypatch.setenv("SUPABASE_URL", f"http://127.0.0.1:{closed_port()}")
    elif fault == "slow":
        environment.fail(delay=1.0)
        extra = "    timeout_seconds: 0.3"
    connection = connect(extra)
    with pytest.raises(ServiceError) as caught:
        connection.count(table, where)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message and "<" not in message
    for secret in (environment.service_role_key, "not-the-key-"):
        assert secret not in message


def test_reads_are_retried_with_backoff_and_not_multiplied(vault, connect, postgrest):
    vault(3)
    connection = connect("    retries: 1")
    postgrest.fail_with_html(522, times=1, method="HEAD")
    started = time.monotonic()
    assert connection.count("decision_vault") == 3
    assert 0.9 < time.monotonic() - started < 3
    heads = table_requests(postgrest, "HEAD")
    assert len(heads) == 2
    assert heads[1].header("x-retry-count") is None  # supabase-py's own retries are off

    postgrest.clear()
    postgrest.fail_with_html(503, times=5, method="HEAD")
    with pytest.raises(ServiceError, match="HTTP 503"):
        connect().count("decision_vault")  # retries: 0
    assert len(table_requests(postgrest, "HEAD")) == 1


# -- through the command line -----------------------------------------------------------------------


def test_backup_verify_and_restore_round_trip(vault, pipeline, angles_cli, postgrest, tmp_path):
    db = vault(2500)
    path = pipeline()
    original = snapshot(db)

    backup = angles_cli("backup", path, "--format", "json")
    assert backup.exit_code == 0, backup.output
    [run] = backup.json()["backups"]
    assert (run["status"], run["record_count"]) == ("ok", 2500)
    [stored] = sorted((tmp_path / "backups").iterdir())
    document = json.loads(stored.read_text())
    assert document["metadata"]["columns"]["created_at"] == "timestamp with time zone"
    assert [r["id"] for r in document["data"]] == [r["id"] for r in original]
    reads = table_requests(postgrest)
    assert len(reads) == 3 and all(int(r.params["limit"]) <= 1000 for r in reads)
    assert len(postgrest.requests) <= 3 + 5

    verify = angles_cli("backups", "verify", path)
    assert verify.exit_code == 0, verify.output

    gone = [r[0] for r in db.fetchall("SELECT id FROM decision_vault ORDER BY id LIMIT 100")]
    db.execute("DELETE FROM decision_vault WHERE id = ANY(%s)", [gone])
    db.execute(
        "UPDATE decision_vault SET decision = 'edited', payload = '{\"x\": 1}' "
        "WHERE id IN (SELECT id FROM decision_vault ORDER BY id DESC LIMIT 50)"
    )
    db.execute("INSERT INTO decision_vault (decision) VALUES ('today 1'), ('today 2')")

    dry = angles_cli("restore", path, "--format", "json")
    assert dry.exit_code == 0, dry.output
    plan = dry.json()
    assert plan["counts"] == {
        "insert": 100,
        "update": 50,
        "unchanged": 2350,
        "only_in_database": 2,
        "newer_in_database": 0,
    }
    assert plan["verified"] is True and plan["live"] is False
    assert db.fetchval("SELECT count(*) FROM decision_vault WHERE decision = 'edited'") == 50

    live = angles_cli("restore", path, "--live", "--yes", "--format", "json")
    assert live.exit_code == 0, live.output
    assert live.json()["pre_restore_backup"]
    restored = db.fetchval(
        "SELECT jsonb_agg(to_jsonb(t) ORDER BY id) FROM decision_vault t "
        "WHERE decision NOT LIKE 'today %%'"
    )
    assert restored == original
    assert db.fetchval("SELECT count(*) FROM decision_vault") == 2502

    outputs = [backup, verify, dry, live]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".log", ".json")]
    assert {"backup.log", "restore.log"} <= {p.name for p in files}
    for text in [o.output for o in outputs] + [p.read_text() for p in files]:
        assert postgrest.service_role_key not in text


def test_a_backup_counts_the_table_once(vault, pipeline, angles_cli, postgrest):
    vault(2500)
    backup = angles_cli("backup", pipeline(), "--format", "json")
    assert backup.json()["backups"][0]["record_count"] == 2500
    counted = [
        (r.method, r.params.get("offset"))
        for r in postgrest.requests_to(r"/rest/v1/decision_vault$")
        if "count=exact" in (r.header("prefer") or "")
    ]
    # on a large table each exact count is a full scan: one HEAD, and no page asks again
    assert counted == [("HEAD", None)]
    assert len(table_requests(postgrest)) == 3


def test_a_read_after_a_count_of_other_rows_counts_again(vault, connect, postgrest):
    vault(30)
    connection = connect("    page_size: 7")
    schema = connection.describe("decision_vault")
    assert connection.count("decision_vault", parse_filter("notion_synced=is.false")) == 15
    assert len(list(connection.stream("decision_vault", schema))) == 30
    [first, *rest] = table_requests(postgrest)
    assert first.header("prefer") == "count=exact"
    assert not any(r.header("prefer") for r in rest)


def test_a_new_column_with_a_default_the_api_hides_does_not_block_a_restore(
    vault, pipeline_file, environment, angles_cli
):
    db = vault(20)
    path = pipeline_file(PIPELINE % {"extra": "    retries: 0"} + "restore: {auto_migrate: true}\n")
    assert angles_cli("backup", path).exit_code == 0
    db.execute(
        "ALTER TABLE decision_vault ADD COLUMN meta jsonb NOT NULL DEFAULT '{}',"
        " ADD COLUMN rank integer NOT NULL DEFAULT -1"
    )
    db.execute("DELETE FROM decision_vault WHERE id IN (SELECT id FROM decision_vault LIMIT 5)")

    live = angles_cli("restore", path, "--live", "--yes", "--format", "json")
    assert live.exit_code == 0, live.output
    assert live.json()["counts"]["insert"] == 5
    assert db.fetchval("SELECT count(*) FROM decision_vault WHERE meta = '{}' AND rank = -1") == 20


def test_a_failure_while_paging_keeps_the_earlier_backup(
    vault, pipeline, angles_cli, postgrest, tmp_path, monkeypatch
):
    vault(2500)
    path = pipeline()
    assert angles_cli("backup", path).exit_code == 0
    [earlier] = list((tmp_path / "backups").iterdir())
    content = earlier.read_bytes()
    time.sleep(1.1)  # backups are named by the second

    serve = postgrest.handle

    def first_page_then_503(request):
        response = serve(request)
        if request.method == "GET" and request.path.endswith("/decision_vault"):
            postgrest.fail_with_html(503, times=10, method="GET", path="decision_vault$")
        return response

    with monkeypatch.context() as patch:
        patch.setattr(postgrest, "handle", first_page_then_503)
        failed = angles_cli("backup", path, "--format", "json")
    assert failed.exit_code == 2
    [run] = failed.json()["backups"]
    assert run["status"] == "error"
    assert "HTTP 503 from the gateway" in run["message"] and "<" not in run["message"]
    assert list((tmp_path / "backups").iterdir()) == [earlier]
    assert earlier.read_bytes() == content
    assert angles_cli("backups", "verify", path).exit_code == 0


def test_test_mode_contacts_nothing(vault, pipeline_file, environment, angles_cli):
    vault(3)
    path = pipeline_file(
        PIPELINE % {"extra": "    retries: 0"}
        + "checks:\n"
        + "  - {name: supabase, type: supabase, connection: supabase, tables: [decision_vault]}\n"
        + "  - {name: sync, type: sync_backlog, connection: supabase, table: decision_vault,"
        + ' unsynced: "notion_synced=is.false"}\n'
    )
    for command in ("run", "check"):
        result = angles_cli(command, path, "--test", "--format", "json")
        assert result.exit_code == 2
        assert all(c["message"].startswith("[TEST]") for c in result.json()["checks"])
    assert environment.requests == []


def test_a_page_larger_than_the_server_cap_is_refused_before_anything_runs(
    pipeline, angles_cli, environment
):
    result = angles_cli("validate", pipeline("    page_size: 5000\n    retries: 0"))
    assert result.exit_code == 3
    assert "page_size" in result.output and "1000" in result.output
    assert environment.requests == []


# -- other schemas, through the profile headers -------------------------------------------------

AUDIT = """
CREATE SCHEMA audit;
CREATE TABLE audit.events (id int PRIMARY KEY, what text NOT NULL, actor int);
CREATE TABLE audit.actors (id int PRIMARY KEY, name text);
ALTER TABLE audit.events ADD FOREIGN KEY (actor) REFERENCES audit.actors (id);
CREATE VIEW audit.recent AS SELECT count(*) AS n FROM audit.events;
CREATE TABLE public.events (id int PRIMARY KEY, note text);
INSERT INTO audit.actors VALUES (7, 'ada');
INSERT INTO audit.events SELECT g, 'event ' || g, 7 FROM generate_series(1, 5) g;
"""


@pytest.fixture
def audit(postgres_db, postgrest_factory, environment, monkeypatch):
    """A project exposing ``public`` and ``audit``, the connection's env pointed at it."""
    postgres_db.execute(AUDIT)
    server = postgrest_factory(schemas=["public", "audit"])
    monkeypatch.setenv("SUPABASE_URL", server.url)
    monkeypatch.setenv("SUPABASE_KEY", server.service_role_key)
    return server


def test_a_table_of_another_schema_is_read_and_written_with_its_profile(
    audit, connect, postgres_db
):
    connection = connect()
    assert connection.list_tables() == {"events": "table"}
    assert connection.list_tables_of(["audit"]) == {
        "audit.actors": "table",
        "audit.events": "table",
        "audit.recent": "view",
        "events": "table",
    }
    schema = connection.describe("audit.events")
    assert schema.name == "audit.events"
    assert schema.primary_key == ("id",)
    assert [(k.table, k.columns) for k in schema.foreign_keys] == [("audit.actors", ("actor",))]
    assert connection.count("audit.events") == 5
    rows = list(connection.stream("audit.events", schema))
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert connection.select("audit.events", order_by=[("id", True)], limit=1)[0]["id"] == 5
    written = [{"id": 2, "what": "changed"}, {"id": 9, "what": "new", "actor": None}]
    assert connection.upsert("audit.events", schema, written) == 2
    assert postgres_db.fetchall("SELECT id, what FROM audit.events WHERE id IN (2, 9)") == [
        (2, "changed"),
        (9, "new"),
    ]
    assert postgres_db.fetchval("SELECT count(*) FROM public.events") == 0
    # Reads name the schema in Accept-Profile, writes in Content-Profile, as PostgREST reads.
    (read, *_) = audit.requests_to(r"/rest/v1/events$", "GET")
    assert read.header("accept-profile") == "audit"
    writes = audit.requests_to(r"/rest/v1/events$", "POST")
    assert {w.header("content-profile") for w in writes} == {"audit"}
    roots = [r.header("accept-profile") for r in audit.requests if r.path == "/rest/v1/"]
    assert roots == ["public", "audit"]  # one OpenAPI document per schema, each read once


def test_a_schema_the_api_does_not_expose_is_a_clear_error(postgres_db, connect, postgrest):
    postgres_db.execute(AUDIT)
    connection = connect()
    expected = (
        "the schema 'audit' is not exposed through the Data API (it exposes public, graphql_public)"
    )
    for attempt in (
        lambda: connection.count("audit.events"),  # a HEAD: no body, asked again by GET
        lambda: connection.describe("audit.events"),
        lambda: connection.list_tables_of(["audit"]),
    ):
        with pytest.raises(ServiceError) as caught:
            attempt()
        assert expected in str(caught.value)
        assert "Data API" in (caught.value.hint or "")
        assert postgrest.service_role_key not in str(caught.value)
    with pytest.raises(ServiceError, match=r"schemas matching 'au\*'.*one named schema"):
        connection.list_tables_of(["au*"])


# -- tables without a primary key ------------------------------------------------------------

LOG = """
CREATE TABLE log (at date, event text, amount numeric(6, 2), tags text[], payload jsonb);
INSERT INTO log
SELECT DATE '2025-01-01' + (g % 3), CASE WHEN g % 4 = 0 THEN NULL ELSE 'e' || (g % 2) END,
       CASE WHEN g % 5 = 0 THEN NULL ELSE (g % 2) * 1.50 END, ARRAY['a,b', 'x"y'],
       jsonb_build_object('k', g % 2)
FROM generate_series(1, 40) g;
-- one row seven times over, across page boundaries
INSERT INTO log SELECT '2025-01-02', 'same', 2.50, '{q}', '{"s": [1, null]}'
FROM generate_series(1, 7);
INSERT INTO log VALUES (NULL, NULL, NULL, NULL, NULL), (NULL, NULL, NULL, NULL, NULL);
"""
LOG_ORDER = (
    "ORDER BY at NULLS FIRST, event NULLS FIRST, amount NULLS FIRST, tags NULLS FIRST,"
    " payload NULLS FIRST"
)


def live_log(db):
    """The log as the connection reads it: numeric, arrays and jsonb as their text output."""
    return db.fetchval(
        "SELECT json_agg(json_build_object('at', at, 'event', event, 'amount', amount::text,"
        f" 'tags', tags::text, 'payload', payload::text) {LOG_ORDER}) FROM log"
    )


@pytest.mark.parametrize(
    ("page_size", "max_rows"),
    [(3, 1000), (1000, 1000), (1000, 4)],  # the last: the server caps below the page size
)
def test_a_table_without_a_key_streams_in_the_order_of_every_column(
    postgres_db, connect, postgrest, page_size, max_rows
):
    postgres_db.execute(LOG)
    postgrest.max_rows = max_rows
    connection = connect(f"    page_size: {page_size}")
    schema = connection.describe("log")
    assert schema.primary_key == ()
    rows = list(connection.stream("log", schema))
    assert len(rows) == 49
    assert rows == live_log(postgres_db)
    assert sum(1 for r in rows if r["event"] == "same") == 7  # repeats kept, none doubled
    [first, *following] = table_requests_of(postgrest, "log")
    assert first.params["order"] == (
        "at.asc.nullsfirst,event.asc.nullsfirst,amount.asc.nullsfirst,"
        "tags.asc.nullsfirst,payload.asc.nullsfirst"
    )
    if page_size < 49 or max_rows < 49:
        assert any("or" in r.params for r in following)  # keyset, never a bare offset
        assert all("or" in r.params or "event" in r.params for r in following)


def table_requests_of(server, table, method="GET"):
    return server.requests_to(rf"/rest/v1/{table}$", method)


def test_rows_added_and_removed_while_an_unkeyed_table_streams(postgres_db, connect):
    postgres_db.execute(
        "CREATE TABLE tally (n int, label text);"
        " INSERT INTO tally SELECT g, 'x' FROM generate_series(1, 30) g"
    )
    connection = connect("    page_size: 5")
    stream = connection.stream("tally", connection.describe("tally"))
    seen = [next(stream)["n"] for _ in range(12)]
    # Rows before the position and after it change: offset pages would now skip or repeat.
    postgres_db.execute(
        "DELETE FROM tally WHERE n IN (2, 3, 20); INSERT INTO tally VALUES (1, 'x')"
    )
    seen += [row["n"] for row in stream]
    assert seen == [*range(1, 20), *range(21, 31)]


def test_a_table_without_a_key_and_a_json_column_is_refused_clearly(postgres_db, connect):
    postgres_db.execute("CREATE TABLE raw (at date, body json)")
    connection = connect()
    with pytest.raises(ServiceError) as caught:
        list(connection.stream("raw", connection.describe("raw")))
    assert "no primary key" in str(caught.value) and "body (json)" in str(caught.value)
    assert "postgres" in (caught.value.hint or "")


def test_rows_without_a_key_are_inserted_plainly(postgres_db, connect, postgrest):
    postgres_db.execute("CREATE TABLE tally (n int, label text)")
    connection = connect()
    schema = connection.describe("tally")
    rows = [{"n": 1, "label": "a"}, {"n": 1, "label": "a"}, {"n": 2, "label": None}]
    assert connection.upsert("tally", schema, rows) == 3
    assert postgres_db.fetchval("SELECT count(*) FROM tally WHERE n = 1") == 2
    (post,) = table_requests_of(postgrest, "tally", "POST")
    assert "on_conflict" not in post.params
    assert "resolution" not in post.header("prefer")


# -- columns the Data API cannot write ------------------------------------------------------

COMPUTED = """\
version: 1
connections:
  supabase: {type: supabase, url: "${SUPABASE_URL}", key: "${SUPABASE_KEY}", retries: 0}
sinks:
  local: {type: local, path: backups}
backups:
  - {name: %(table)s, connection: supabase, table: %(table)s, sinks: [local]}
"""


def test_a_generated_column_is_never_written_and_the_rest_is_restored(
    postgres_db, pipeline_file, environment, angles_cli, tmp_path
):
    postgres_db.execute(
        "CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL,"
        " search tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED)"
    )
    postgres_db.execute(
        "INSERT INTO notes (id, body) SELECT g, 'note ' || g FROM generate_series(1, 30) g"
    )
    path = pipeline_file(COMPUTED % {"table": "notes"})
    assert angles_cli("backup", path).exit_code == 0
    original = postgres_db.data_dump()
    postgres_db.execute("DELETE FROM notes WHERE id > 20")
    postgres_db.execute("UPDATE notes SET body = 'changed' WHERE id = 1")

    dry = angles_cli("restore", path, "--table", "notes")
    assert dry.exit_code == 0, dry.output
    assert "generated columns, never written: search" in dry.output
    assert "triggers on 'notes' fire" in dry.output  # said before anything is written

    live = angles_cli("restore", path, "--table", "notes", "--live", "--yes", "--format", "json")
    assert live.exit_code == 0, live.output
    report = live.json()
    assert report["unwritable_columns"] == {"search": "generated"}
    assert report["applied"]["insert"] == 10 and report["applied"]["update"] == 1
    assert postgres_db.data_dump() == original


def test_an_identity_always_column_is_refused_before_anything_is_written(
    postgres_db, pipeline_file, environment, angles_cli, tmp_path
):
    postgres_db.execute(
        "CREATE TABLE tickets (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text)"
    )
    postgres_db.execute("INSERT INTO tickets (title) SELECT 't' || g FROM generate_series(1, 8) g")
    path = pipeline_file(COMPUTED % {"table": "tickets"})
    assert angles_cli("backup", path).exit_code == 0
    postgres_db.execute("DELETE FROM tickets WHERE id > 5")
    before = postgres_db.data_dump()
    stored = sorted(p.name for p in (tmp_path / "backups").iterdir())

    dry = angles_cli("restore", path, "--table", "tickets")
    assert dry.exit_code == 1, dry.output  # a warning: the live restore would be refused
    assert "a live restore is refused" in dry.output and "GENERATED ALWAYS" in dry.output
    assert "type: postgres" in dry.output  # the fix

    live = angles_cli("restore", path, "--table", "tickets", "--live", "--yes")
    assert live.exit_code == 2, live.output
    assert "id of 'tickets' is an identity column GENERATED ALWAYS" in live.output
    assert postgres_db.data_dump() == before
    # Refused before its pre-restore backup was stored.
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == stored
