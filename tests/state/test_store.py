"""The state store on SQLite and PostgreSQL: schema, migration, runs, states, slots, locks."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from angles.core.report import CheckRun, RunReport
from angles.core.results import Status
from angles.state.store import (
    SCHEMA_VERSION,
    CheckState,
    StateError,
    StateStore,
    advance,
    describe,
)

T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


@pytest.fixture
def pg_state(postgres_url):
    """A PostgreSQL state store location with no angles tables yet."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS angles CASCADE")
    return postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def location(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "state" / "state.db")
    return request.getfixturevalue("pg_state")


def report(at: datetime, **statuses: str) -> RunReport:
    checks = [CheckRun(n, "static", Status(s), f"{n}: {s}", 0.1) for n, s in statuses.items()]
    return RunReport("prod", at, duration_seconds=1.5, checks=checks)


def record(store: StateStore, run: RunReport) -> None:
    store.record_run(run, run.to_dict())


def test_a_new_store_is_created_at_the_current_version(location):
    with StateStore.open(location) as store:
        assert store.schema_version() == SCHEMA_VERSION
    with StateStore.open(location) as store:  # opening again changes nothing
        assert store.schema_version() == SCHEMA_VERSION


def test_runs_newest_first_with_limit_and_check(location):
    with StateStore.open(location) as store:
        record(store, report(T0, sync="ok", notion="ok"))
        record(store, report(T0 + timedelta(hours=1), sync="error"))
        record(store, report(T0 + timedelta(hours=2), notion="warning"))
        runs = store.runs("prod")
        assert [r["started_at"] for r in runs] == [
            "2026-11-26T05:00:00Z",
            "2026-11-26T04:00:00Z",
            "2026-11-26T03:00:00Z",
        ]
        assert [r["status"] for r in store.runs("prod", limit=2)] == ["warning", "error"]
        assert [r["started_at"][11:13] for r in store.runs("prod", check="sync")] == ["04", "03"]
        assert store.runs("other") == []


def test_check_states_follow_the_streak(location):
    with StateStore.open(location) as store:
        record(store, report(T0, sync="error"))
        record(store, report(T0 + timedelta(hours=1), sync="warning"))
        state = store.check_states("prod")["sync"]
        assert (state.status, state.failing_since, state.consecutive_failures) == (
            Status.WARNING,
            T0,
            2,
        )
        assert state.message == "sync: warning"
        record(store, report(T0 + timedelta(hours=2), sync="ok"))
        state = store.check_states("prod")["sync"]
        assert (state.status, state.failing_since, state.consecutive_failures) == (
            Status.OK,
            None,
            0,
        )


def test_slots_are_claimed_once(location):
    with StateStore.open(location) as store:
        assert store.last_scheduled("prod") is None
        assert store.claim_slot("prod", T0)
        assert not store.claim_slot("prod", T0)
        assert not store.claim_slot("prod", T0 - timedelta(days=1))
        assert store.claim_slot("prod", T0 + timedelta(days=1))
        assert store.last_scheduled("prod") == T0 + timedelta(days=1)


def test_locks_exclude_renew_and_expire(location):
    ttl = timedelta(minutes=10)
    with StateStore.open(location) as store:
        assert store.acquire_lock("run:prod", "a", T0, ttl)
        assert not store.acquire_lock("run:prod", "b", T0 + timedelta(minutes=5), ttl)
        assert store.lock_owner("run:prod", T0) == "a"
        assert store.renew_lock("run:prod", "a", T0 + timedelta(minutes=9), ttl)
        assert not store.acquire_lock("run:prod", "b", T0 + timedelta(minutes=15), ttl)
        assert store.acquire_lock("run:prod", "b", T0 + timedelta(minutes=20), ttl)  # expired
        assert not store.renew_lock("run:prod", "a", T0 + timedelta(minutes=21), ttl)
        store.release_lock("run:prod", "a")  # not a's any more: nothing happens
        assert store.lock_owner("run:prod", T0 + timedelta(minutes=21)) == "b"
        store.release_lock("run:prod", "b")
        assert store.acquire_lock("run:prod", "a", T0 + timedelta(minutes=22), ttl)


def test_advance():
    failing = CheckRun("sync", "static", Status.ERROR, "down", 0.1)
    first = advance(None, failing, T0)
    assert (first.failing_since, first.consecutive_failures) == (T0, 1)
    second = advance(first, failing, T0 + timedelta(hours=1))
    assert (second.failing_since, second.consecutive_failures) == (T0, 2)
    fine = advance(second, CheckRun("sync", "static", Status.OK, "up", 0.1), T0)
    assert fine == CheckState("sync", Status.OK, None, 0, "up", T0)


def test_a_store_from_before_the_version_table_is_migrated(tmp_path):
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL,
            started_at TEXT NOT NULL, status TEXT NOT NULL, duration_seconds REAL NOT NULL,
            report TEXT NOT NULL);
        CREATE TABLE check_states (pipeline TEXT NOT NULL, check_name TEXT NOT NULL,
            status TEXT NOT NULL, failing_since TEXT, consecutive_failures INTEGER NOT NULL
            DEFAULT 0, last_alert_at TEXT, PRIMARY KEY (pipeline, check_name));
        INSERT INTO runs (pipeline, started_at, status, duration_seconds, report)
            VALUES ('prod', '2026-11-25T03:00:00Z', 'ok', 1.0, '{"checks": [], "status": "ok"}');
        PRAGMA user_version = 1;
        """
    )
    old.close()
    with StateStore.open(str(path)) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.runs("prod") == [{"checks": [], "status": "ok"}]
        record(store, report(T0, sync="error"))
        assert store.check_states("prod")["sync"].consecutive_failures == 1


def test_a_store_from_a_newer_angles_is_refused(tmp_path):
    path = str(tmp_path / "state.db")
    StateStore.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO angles_schema (version) VALUES (99)")
    with pytest.raises(StateError, match="schema version 99, newer than this angles"):
        StateStore.open(path)


def test_other_urls_are_refused():
    with pytest.raises(StateError, match="unsupported state store 'mysql://u:\\*\\*\\*@db/x'"):
        StateStore.open("mysql://u:pw-1234@db/x")


def test_an_unreachable_postgres_hides_the_password():
    with pytest.raises(StateError) as raised:
        StateStore.open("postgresql://angles:pw-4321@127.0.0.1:9/angles", connect_timeout=2)
    assert "pw-4321" not in str(raised.value)
    assert "postgresql://angles:***@127.0.0.1:9/angles" in str(raised.value)
    assert describe("/var/lib/angles/state.db") == "/var/lib/angles/state.db"


@pytest.mark.postgres
def test_postgres_tables_live_in_their_own_schema(pg_state):
    StateStore.open(pg_state).close()
    with psycopg.connect(pg_state) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'angles'"
            )
        }
    assert tables == {"angles_schema", "runs", "check_states", "alerts", "schedules", "locks"}


@pytest.mark.postgres
def test_concurrent_first_opens_on_postgres_migrate_once(pg_state):
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store():
        barrier.wait()
        try:
            StateStore.open(pg_state).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(pg_state) as conn:
        versions = conn.execute("SELECT version FROM angles.angles_schema").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
