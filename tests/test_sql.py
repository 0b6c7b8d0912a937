"""The SQL base of the sqlite and postgres connections: keyset pages in key order with a
compound key, a connection per thread, transactions, and the primary-key rule."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from angles import ServiceError, SqlDatabase, parse_filter
from angles.core.context import Context
from angles.core.pipeline import Pipeline
from angles.core.plugins import load_plugins
from angles.plugins.connections.postgres import PostgresConnection
from angles.plugins.connections.sqlite import SQLiteConnection

KEYS = ["b", "B", "a", "é", "e", "Z", "ä", "_", "aa", "a b", "10", "9", "ß", "€", "😀", ""]
ROWS = [{"k": k, "n": n, "body": f"{k}/{n}"} for k in KEYS for n in (3, 1, 2)]
PAIRS = """CREATE TABLE pairs (k text NOT NULL, n integer NOT NULL CHECK (n >= 0), body text,
    PRIMARY KEY (k, n))"""


class PageCounting:
    """Counts the page queries a keyset stream sends (each ends in ``LIMIT``)."""

    page_queries = 0

    def fetch(self, sql: str, params: Any = (), table: str | None = None) -> Any:
        if sql.rstrip().endswith(f"LIMIT {self.placeholder}"):  # type: ignore[attr-defined]
            self.page_queries += 1
        return super().fetch(sql, params, table)  # type: ignore[misc]


class CountingSQLite(PageCounting, SQLiteConnection):
    pass


class KeysetPostgres(PageCounting, PostgresConnection):
    """A third-party-style subclass reading PostgreSQL with the base's keyset pages."""

    read_rows = SqlDatabase.read_rows


class TransactionalSQLite(SQLiteConnection):
    """SQLite with the base's transaction (BEGIN, savepoints) around several upserts."""

    transaction = SqlDatabase.transaction


class Engine:
    """One database holding ``pairs`` and a way to reach it from outside angles."""

    def __init__(self, name: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.name = name
        self.context = Context(Pipeline(tmp_path / "angles.yaml", {"version": 1}), load_plugins())
        self.made: list[SqlDatabase] = []
        if name == "sqlite":
            self.path = tmp_path / "vault.db"
            self.execute(PAIRS)
        else:
            self.postgres = request.getfixturevalue("postgres_db")
            self.execute(PAIRS)

    def execute(self, sql: str) -> None:
        if self.name == "sqlite":
            with closing(sqlite3.connect(self.path)) as raw, raw:
                raw.executescript(sql)
        else:
            self.postgres.execute(sql)

    def insert(self, rows: list[dict[str, Any]]) -> None:
        if self.name == "sqlite":
            with closing(sqlite3.connect(self.path)) as raw, raw:
                raw.executemany("INSERT INTO pairs VALUES (:k, :n, :body)", rows)
        else:
            self.postgres.execute(
                "INSERT INTO pairs SELECT * FROM json_populate_recordset(NULL::pairs, %s::json)",
                [json.dumps(rows)],
            )

    def connect(self, kind: type[SqlDatabase] | None = None, page_size: int = 4) -> Any:
        if self.name == "sqlite":
            kind = kind or CountingSQLite
            config: dict[str, Any] = {"type": "sqlite", "path": "vault.db"}
        else:
            kind = kind or (
                KeysetPostgres if self.name == "postgres (keyset)" else PostgresConnection
            )
            config = {"type": "postgres", "url": self.postgres.url}
        database = kind("db", config, self.context)
        database.page_size = page_size
        self.made.append(database)
        return database

    def sessions(self) -> int:
        """How many connections to the database are open: sessions, or open files."""
        if self.name == "sqlite":
            fds = Path("/proc/self/fd")
            return sum(1 for fd in fds.iterdir() if _target(fd) == str(self.path.resolve()))
        return self.postgres.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'angles' AND datname = current_database()"
        )

    def close(self) -> None:
        for database in self.made:
            database.close()


def _target(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:
        return ""


@pytest.fixture(params=["sqlite", "postgres", "postgres (keyset)"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    made = Engine(request.param, tmp_path, request)
    yield made
    made.close()


def keys_of(rows: Any) -> list[tuple[str, int]]:
    return [(row["k"], row["n"]) for row in rows]


# -- keyset pages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected", "pages"),
    [
        (None, 48, 13),  # twelve full pages, then the empty one that says it is over
        ("n=gte.2", 32, 9),
        ("k=like.a*", 9, 3),  # 4 + 4 + 1
    ],
)
def test_a_compound_key_streams_in_python_order_across_pages(engine, where, expected, pages):
    engine.insert(ROWS)
    db = engine.connect(page_size=4)
    schema = db.describe("pairs")
    assert schema.primary_key == ("k", "n")
    rows = list(db.stream("pairs", schema, parse_filter(where) if where else None))
    assert len(rows) == expected
    assert keys_of(rows) == sorted(keys_of(rows))  # text by code point, then the number
    assert len(set(keys_of(rows))) == expected  # no row twice at a page boundary
    assert {r["body"] for r in rows} <= {r["body"] for r in ROWS}
    if engine.name != "postgres":  # the builtin postgres reads with one COPY, not pages
        assert db.page_queries == pages


def test_a_row_inserted_behind_the_cursor_does_not_upset_the_order(engine):
    engine.insert(ROWS)
    db = engine.connect(page_size=4)
    rows = db.stream("pairs", db.describe("pairs"))
    seen = [next(rows) for _ in range(6)]
    engine.insert([{"k": "", "n": 0, "body": "late"}])  # sorts before every row read
    seen += list(rows)
    assert keys_of(seen) == sorted(keys_of(ROWS))


# -- a connection per thread ----------------------------------------------------------------


def test_each_thread_gets_its_own_connection_and_close_closes_them_all(engine):
    engine.insert(ROWS)
    db = engine.connect()
    threads_count = 4
    opened = threading.Barrier(threads_count + 1)
    done = threading.Event()
    connections: list[int] = []
    results: list[tuple[int, list[tuple[str, int]]]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            count = db.count("pairs")
            mine = db.thread_connection()
            connections.append(id(mine))
            opened.wait(10)
            done.wait(10)
            rows = keys_of(db.stream("pairs", db.describe("pairs")))
            assert db.thread_connection() is mine  # the same one for the thread's whole life
            results.append((count, rows))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    opened.wait(10)
    assert len(set(connections)) == threads_count
    assert engine.sessions() == threads_count  # all open at once, one each
    done.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [(48, sorted(keys_of(ROWS)))] * threads_count
    assert settled(engine, threads_count) == threads_count  # kept for the run, not per call

    db.close()
    assert settled(engine, 0) == 0
    assert db.count("pairs") == 48  # used again after close: a new connection
    assert settled(engine, 1) == 1


def settled(engine: Engine, expected: int) -> int:
    """The number of open connections once it reaches ``expected`` (a server notices a
    closed session a moment later), or after five seconds."""
    deadline = time.monotonic() + 5
    while (count := engine.sessions()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


# -- transactions ---------------------------------------------------------------------------


def test_an_upsert_writes_every_batch_or_none(engine):
    db = engine.connect()
    schema = db.describe("pairs")
    good = [{"k": "x", "n": i, "body": "new"} for i in range(5)]
    bad = {"k": "x", "n": -1, "body": "refused"}  # by the CHECK constraint
    with pytest.raises(ServiceError, match="writing to 'pairs' failed"):
        db.upsert("pairs", schema, [*good, bad], batch_size=2)
    assert db.count("pairs") == 0
    assert db.upsert("pairs", schema, good, batch_size=2) == 5
    changed = [{"k": "x", "n": 1, "body": "changed"}, {"k": "x", "n": 7}]
    assert db.upsert("pairs", schema, changed) == 2
    rows = {(r["k"], r["n"]): r["body"] for r in db.stream("pairs", schema)}
    assert (rows[("x", 1)], rows[("x", 0)], rows[("x", 7)]) == ("changed", "new", None)


@pytest.mark.parametrize("kind", [TransactionalSQLite, PostgresConnection])
def test_a_transaction_spans_upserts_and_nests_them_as_savepoints(tmp_path, request, kind):
    engine = Engine("sqlite" if kind is TransactionalSQLite else "postgres", tmp_path, request)
    try:
        db = engine.connect(kind=kind)
        schema = db.describe("pairs")
        with pytest.raises(ServiceError), db.transaction():
            db.upsert("pairs", schema, [{"k": "a", "n": 1}])
            db.upsert("pairs", schema, [{"k": "b", "n": -1}])
        assert db.count("pairs") == 0
        with db.transaction():
            db.upsert("pairs", schema, [{"k": "a", "n": 1}])
            with pytest.raises(ServiceError):  # its savepoint is rolled back, not the rest
                db.upsert("pairs", schema, [{"k": "b", "n": 1}, {"k": "b", "n": -1}])
            db.upsert("pairs", schema, [{"k": "c", "n": 1}])
        assert keys_of(db.stream("pairs", schema)) == [("a", 1), ("c", 1)]
    finally:
        engine.close()


# -- the primary-key rule -------------------------------------------------------------------


def test_a_table_without_a_primary_key_is_refused_for_reading_and_writing(engine):
    engine.execute("CREATE TABLE loose (x text)")
    db = engine.connect()
    schema = db.describe("loose")
    service = "SQLite" if engine.name == "sqlite" else "PostgreSQL"
    with pytest.raises(ServiceError) as read:
        db.stream("loose", schema)
    assert str(read.value) == (
        f"{service}: table 'loose' has no primary key to read it in order"
        " (declare a PRIMARY KEY: angles reads, writes and restores rows by it)"
    )
    with pytest.raises(ServiceError, match="has no primary key to upsert on"):
        db.upsert("loose", schema, [{"x": "a"}])
    assert db.count("loose") == 0
