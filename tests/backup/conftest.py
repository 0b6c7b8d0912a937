"""Fixtures for the backup tests: a SQLite vault beside a pipeline with a local sink."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from angles.core.config import load_pipeline
from angles.core.context import Context
from angles.core.plugins import load_plugins

VAULT_SCHEMA = """CREATE TABLE decision_vault (
    id TEXT PRIMARY KEY, decision TEXT, type TEXT, notion_synced BOOLEAN,
    payload JSON, created_at TEXT, updated_at TEXT)"""


class Vault:
    """A SQLite database file that tests fill and inspect directly."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def execute(self, sql: str, params: Any = ()) -> None:
        with closing(sqlite3.connect(self.path)) as connection, connection:
            connection.execute(sql, params)

    def insert(self, rows: list[dict[str, Any]], table: str = "decision_vault") -> None:
        if not rows:
            return
        columns = list(rows[0])
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        encoded = [
            [json.dumps(r[c]) if isinstance(r[c], dict | list) else r[c] for c in columns]
            for r in rows
        ]
        with closing(sqlite3.connect(self.path)) as connection, connection:
            connection.executemany(sql, encoded)

    row = staticmethod(lambda i, **changes: decision(i, **changes))

    def rows(self, table: str = "decision_vault", order: str = "id") -> list[dict[str, Any]]:
        with closing(sqlite3.connect(self.path)) as connection:
            connection.row_factory = sqlite3.Row
            return [dict(r) for r in connection.execute(f"SELECT * FROM {table} ORDER BY {order}")]


def decision(i: int, **changes: Any) -> dict[str, Any]:
    """A row of decision_vault (also available to tests as ``vault.row``)."""
    row = {
        "id": f"id-{i:05d}",
        "decision": f"décision {i} — ✓",
        "type": "Architecture",
        "notion_synced": i % 2,
        "payload": None,
        "created_at": "2025-08-01T09:20:00+00:00",
        "updated_at": "2025-08-01T09:25:00+00:00",
    }
    row.update(changes)
    return row


def pipeline_document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "version": 1,
        "name": "test",
        "connections": {"vault": {"type": "sqlite", "path": "vault.db"}},
        "sinks": {"local": {"type": "local", "path": "backups"}},
        "backups": [
            {
                "name": "decision_vault",
                "connection": "vault",
                "table": "decision_vault",
                "sinks": ["local"],
            }
        ],
        "log_dir": "logs",
    }
    document.update(overrides)
    return document


def postgres_pipeline(url: str, name: str, **selection: str) -> str:
    """A pipeline backing the PostgreSQL database at ``url`` up into ``backups/``: one entry,
    ``name``, choosing its tables by ``selection`` (``table="kinds"``, ``tables="all"``)."""
    return json.dumps(
        {
            "version": 1,
            "connections": {"db": {"type": "postgres", "url": url}},
            "sinks": {"local": {"type": "local", "path": "backups"}},
            "backups": [{"name": name, "connection": "db", **selection, "sinks": ["local"]}],
        }
    )


def backup_files(folder: Path) -> list[str]:
    """The visible files of a local sink's folder."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    """``vault.db`` beside the pipeline, with an empty ``decision_vault`` table."""
    database = Vault(tmp_path / "vault.db")
    database.execute(VAULT_SCHEMA)
    return database


@pytest.fixture
def make_context(tmp_path: Path) -> Iterator[Callable[..., Context]]:
    """Write ``angles.yaml`` (keys of the document overridable) and load it as a run would."""
    contexts: list[Context] = []

    def make(**overrides: Any) -> Context:
        path = tmp_path / "angles.yaml"
        path.write_text(json.dumps(pipeline_document(**overrides)), encoding="utf-8")
        plugins = load_plugins()
        context = Context(load_pipeline(path, plugins, environ={}), plugins)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
