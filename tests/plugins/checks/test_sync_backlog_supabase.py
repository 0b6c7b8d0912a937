"""The sync_backlog check on the supabase connection: exact counts through PostgREST."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres

PIPELINE = """\
version: 1
log_dir: logs
connections:
  supabase: {type: supabase, url: "${SUPABASE_URL}", key: "${SUPABASE_KEY}", retries: 0}
checks:
  - name: sync
    type: sync_backlog
    connection: supabase
    table: decision_vault
    unsynced: "%(unsynced)s"
    warn_above: 10
    error_above: 50
%(extra)s
"""


@pytest.fixture
def vault(postgres_db):
    """``vault(unsynced, oldest_age)``: 5 synced rows and ``unsynced`` rows, the oldest
    created ``oldest_age`` ago (a PostgreSQL interval)."""

    def make(unsynced: int, oldest_age: str = "1 hour") -> None:
        postgres_db.execute(
            "CREATE TABLE decision_vault (id text PRIMARY KEY, decision text,"
            " notion_synced boolean NOT NULL DEFAULT false,"
            " created_at timestamptz NOT NULL DEFAULT now())"
        )
        postgres_db.execute(
            "INSERT INTO decision_vault SELECT 's' || lpad(g::text, 4, '0'), 'done', true, now()"
            " FROM generate_series(1, 5) g"
        )
        postgres_db.execute(
            "INSERT INTO decision_vault SELECT 'u' || lpad(g::text, 4, '0'), 'pending', false,"
            " now() - %s::interval + g * interval '1 second' FROM generate_series(0, %s - 1) g",
            [oldest_age, unsynced],
        )

    return make


@pytest.fixture
def check(angles_cli, pipeline_file, postgrest, monkeypatch):
    monkeypatch.setenv("SUPABASE_URL", postgrest.url)
    monkeypatch.setenv("SUPABASE_KEY", postgrest.service_role_key)

    def run(extra: str = "", unsynced: str = "notion_synced=is.false"):
        path = pipeline_file(PIPELINE % {"extra": extra, "unsynced": unsynced})
        result = angles_cli("check", path, "--format", "json")
        assert postgrest.service_role_key not in result.output
        [outcome] = result.json()["checks"]
        return result.exit_code, outcome

    return run


@pytest.mark.parametrize(
    ("unsynced", "status", "code", "message"),
    [
        (0, "ok", 0, "0 unsynced records"),
        (10, "ok", 0, "10 unsynced records"),
        (11, "warning", 1, "11 unsynced records (warning above 10)"),
        (51, "error", 2, "51 unsynced records (error above 50)"),
    ],
)
def test_thresholds(vault, check, unsynced, status, code, message):
    vault(unsynced)
    exit_code, result = check()
    assert (exit_code, result["status"], result["message"]) == (code, status, message)
    assert result["details"]["unsynced"] == unsynced


def test_a_backlog_beyond_the_row_cap_is_counted_exactly(vault, check, postgrest):
    vault(1500)
    exit_code, result = check()
    assert exit_code == 2
    assert result["message"] == "1500 unsynced records (error above 50)"
    [head] = postgrest.requests_to("/decision_vault$", "HEAD")
    assert head.params["notion_synced"] == "is.false"
    assert head.header("prefer") == "count=exact"


def test_samples_are_the_oldest_unsynced_keys(vault, check):
    vault(12)
    _, result = check("    samples: 3")
    assert result["details"]["samples"] == ["u0000", "u0001", "u0002"]
    assert 3500 < result["details"]["oldest_age_seconds"] < 3700


def test_a_stuck_sync_is_an_error_even_when_the_count_is_low(vault, check):
    vault(2, oldest_age="3 days")
    exit_code, result = check("    max_age: 1d")
    assert exit_code == 2
    assert result["message"] == "the oldest unsynced record is 3d old (max 1d): is the sync stuck?"


def test_an_unknown_column_in_the_filter_says_what_to_check(vault, check):
    vault(1)
    exit_code, result = check(unsynced="notion_sync=is.false")
    assert exit_code == 2
    assert "column decision_vault.notion_sync does not exist (42703)" in result["message"]
    assert "check the column names of the pipeline's filters (`unsynced:`" in result["message"]
