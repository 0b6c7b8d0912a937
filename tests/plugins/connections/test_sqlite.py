"""The sqlite connection: describe, count, keyset streaming, select, upsert, errors."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from angles.core.context import Context
from angles.core.errors import ServiceError
from angles.core.filters import parse_filter
from angles.core.pipeline import Pipeline
from angles.core.plugins import load_plugins
from angles.plugins.connections.sqlite import SQLiteConnection


@pytest.fixture
def connect(tmp_path: Path):
    opened = []

    def make(path: str = "vault.db", page_size: int | None = None) -> SQLiteConnection:
        context = Context(Pipeline(tmp_path / "angles.yaml", {"version": 1}), load_plugins())
        connection = SQLiteConnection("vault", {"type": "sqlite", "path": path}, context)
        if page_size:
            connection.page_size = page_size
        opened.append(connection)
        return connection

    yield make
    for connection in opened:
        connection.close()


@pytest.fixture
def db(tmp_path: Path, connect) -> SQLiteConnection:
    with closing(sqlite3.connect(tmp_path / "vault.db")) as raw, raw:
        raw.execute(
            "CREATE TABLE pairs (a INTEGER NOT NULL, b TEXT, v TEXT, data JSON, bin BLOB,"
            " req TEXT NOT NULL, PRIMARY KEY (b, a))"
        )
        raw.executemany(
            "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, 'r')",
            [
                (
                    a,
                    b,
                    f"{a}{b}",
                    '{"k": [1, 2]}' if a == 1 else None,
                    b"\x00\xff" if a == 2 else None,
                )
                for a in range(1, 8)
                for b in ("x", "é", "A")
            ],
        )
    return connect(page_size=4)


def test_describe(db):
    schema = db.describe("pairs")
    assert schema.primary_key == ("b", "a")
    assert schema.columns == {
        "a": "integer",
        "b": "text",
        "v": "text",
        "data": "json",
        "bin": "blob",
        "req": "text",
    }
    assert schema.required == frozenset({"req"})


def test_stream_is_in_key_order_across_pages(db):
    rows = list(db.stream("pairs", db.describe("pairs")))
    keys = [(r["b"], r["a"]) for r in rows]
    assert len(keys) == 21 and keys == sorted(keys)
    first = next(r for r in rows if r["a"] == 1)
    assert first["data"] == {"k": [1, 2]}
    assert next(r for r in rows if r["a"] == 2)["bin"] == "\\x00ff"


def test_count_and_stream_with_a_filter(db):
    where = parse_filter("b=eq.x&a=gte.3")
    assert db.count("pairs") == 21
    assert db.count("pairs", where) == 5
    assert [r["a"] for r in db.stream("pairs", db.describe("pairs"), where)] == [3, 4, 5, 6, 7]
    assert db.count("pairs", parse_filter("data=is.null")) == 18
    assert db.count("pairs", parse_filter("v=ilike.*X")) == 7


def test_select(db):
    rows = db.select("pairs", order_by=[("a", True), ("b", False)], limit=2)
    assert [(r["a"], r["b"]) for r in rows] == [(7, "A"), (7, "x")]


def test_upsert_inserts_and_updates_and_round_trips_values(db):
    schema = db.describe("pairs")
    rows = [
        {"a": 1, "b": "x", "v": "changed", "data": {"z": "ü"}, "bin": "\\x0102", "req": "r"},
        {"a": 99, "b": "new", "v": None, "data": "1", "bin": None, "req": "r"},
    ]
    assert db.upsert("pairs", schema, rows, batch_size=1) == 2
    got = {(r["b"], r["a"]): r for r in db.stream("pairs", schema)}
    assert got[("x", 1)] == rows[0]
    assert got[("new", 99)] == rows[1]  # the string "1" stays a string in a JSON column
    assert db.count("pairs") == 22


def test_upsert_is_one_transaction(db):
    schema = db.describe("pairs")
    rows = [{"a": 50, "b": "ok", "req": "r"}, {"a": 51, "b": "bad", "req": None}]
    with pytest.raises(ServiceError, match="NOT NULL"):
        db.upsert("pairs", schema, rows, batch_size=1)
    assert db.count("pairs") == 21


def test_missing_file_table_and_primary_key(tmp_path, connect, db):
    with pytest.raises(ServiceError, match=r"the database file .*missing.db does not exist"):
        connect("missing.db").count("t")
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(ServiceError, match="there is no table 'nope'"):
        db.describe("nope")
    with closing(sqlite3.connect(tmp_path / "vault.db")) as raw, raw:
        raw.execute("CREATE TABLE loose (x TEXT, n INTEGER)")
        raw.executemany("INSERT INTO loose VALUES (?, ?)", [("b", 1), ("a", 2), ("b", 1), ("a", 1)])
    # Without a primary key, rows come ordered by every column, repeats kept.
    assert [tuple(r.values()) for r in db.stream("loose", db.describe("loose"))] == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
        ("b", 1),
    ]


def test_threads_get_their_own_connection(db):
    counts, errors = [], []

    def work():
        try:
            for _ in range(20):
                counts.append(db.count("pairs"))
                list(db.stream("pairs", db.describe("pairs")))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and set(counts) == {21}
    assert len(db._opened) >= 4
