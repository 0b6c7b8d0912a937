"""A production-like pipeline and a month of its runs, recorded through the state store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from angles.core.config import load_pipeline
from angles.core.context import Context
from angles.state.store import StateStore
from angles.status.summary import Summary, collect
from angles.testing.history import record_history

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)

PIPELINE = """\
version: 1
name: production
state: .angles/state.db
connections:
  supabase: {type: supabase, url: "http://127.0.0.1:9", key: "${SUPABASE_KEY}"}
  notion: {type: notion, token: "${NOTION_API_KEY}"}
checks:
  - {name: supabase, type: supabase, connection: supabase, tables: [decision_vault]}
  - {name: notion, type: notion, connection: notion, database_id: 0123456789abcdef0123456789abcdef}
  - name: sync
    type: sync_backlog
    connection: supabase
    table: decision_vault
    unsynced: "notion_synced=is.false"
backups:
  - {name: decision_vault, connection: supabase, table: decision_vault, sinks: [github, local]}
sinks:
  local: {type: local, path: backups}
  github: {type: github, repository: acme/angles-backup, token: "${GITHUB_TOKEN}"}
"""
ENVIRONMENT = {
    "SUPABASE_KEY": "sb-service-key-7f3a9c",
    "NOTION_API_KEY": "ntn_secret_55aa77",
    "GITHUB_TOKEN": "ghp_token_0c0ffee",
}


@pytest.fixture
def now() -> datetime:
    """The moment the month of runs ends and the page is written."""
    return NOW


@pytest.fixture
def production(tmp_path, angles_plugins) -> Context:
    """A run context of the production-like pipeline (nothing is contacted)."""
    path = tmp_path / "angles.yaml"
    path.write_text(PIPELINE, encoding="utf-8")
    plugins = angles_plugins()
    return Context(load_pipeline(path, plugins, environ=ENVIRONMENT), plugins)


@pytest.fixture
def store(production):
    with StateStore.open(production.pipeline.state) as opened:
        yield opened


@pytest.fixture
def month(production, store) -> tuple[Summary, list]:
    """60 runs over the 30 days before :data:`NOW`, and the summary the page is built from."""
    reports = record_history(store, "production", runs=60, days=30, now=NOW)
    return collect(production, store, days=30, now=NOW), reports
