"""The sync_backlog check through the ``postgres`` connection: exact counts, samples, max_age."""

from __future__ import annotations

import socket

import pytest

PIPELINE = """\
version: 1
log_dir: logs
connections:
  db: {{type: postgres, url: "${{DATABASE_URL}}"}}
checks:
  - name: sync
    type: sync_backlog
    connection: db
    table: decision_vault
    unsynced: "notion_synced=is.false"
    warn_above: 10
    error_above: 50
{extra}
"""


@pytest.fixture
def vault(postgres_db, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", postgres_db.url)
    postgres_db.execute(
        "CREATE TABLE decision_vault (id text PRIMARY KEY, decision text,"
        " notion_synced boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL)"
    )

    def fill(unsynced: int, synced: int = 5, oldest: str = "1 hour") -> None:
        postgres_db.execute(
            "INSERT INTO decision_vault SELECT 's' || lpad(i::text, 5, '0'), 'done', true, now()"
            f" FROM generate_series(1, {synced}) i"
        )
        postgres_db.execute(
            "INSERT INTO decision_vault SELECT 'u' || lpad(i::text, 5, '0'), 'pending', false,"
            f" now() - interval '{oldest}' + i * interval '1 second'"
            f" FROM generate_series(0, {unsynced - 1}) i"
        )

    return fill


def run_check(angles_cli, pipeline_file, extra: str = ""):
    result = angles_cli("check", pipeline_file(PIPELINE.format(extra=extra)), "--format", "json")
    [check] = result.json()["checks"]
    return result, check


@pytest.mark.parametrize(
    ("unsynced", "status", "code", "message"),
    [
        (0, "ok", 0, "0 unsynced records"),
        (10, "ok", 0, "10 unsynced records"),
        (11, "warning", 1, "11 unsynced records (warning above 10)"),
        (51, "error", 2, "51 unsynced records (error above 50)"),
        (1500, "error", 2, "1500 unsynced records (error above 50)"),
    ],
)
def test_thresholds_with_exact_counts(
    vault, angles_cli, pipeline_file, unsynced, status, code, message
):
    vault(unsynced)
    result, check = run_check(angles_cli, pipeline_file)
    assert (result.exit_code, check["status"], check["message"]) == (code, status, message)
    assert check["details"]["unsynced"] == unsynced


def test_samples_are_the_oldest_unsynced_keys(vault, angles_cli, pipeline_file):
    vault(1500)
    _, check = run_check(angles_cli, pipeline_file, "    samples: 3")
    assert check["details"]["samples"] == ["u00000", "u00001", "u00002"]
    assert 3550 < check["details"]["oldest_age_seconds"] < 3700


def test_a_stuck_sync_is_an_error_even_when_the_count_is_low(vault, angles_cli, pipeline_file):
    vault(2, oldest="3 days")
    result, check = run_check(angles_cli, pipeline_file, "    max_age: 1d")
    assert result.exit_code == 2
    assert check["message"] == "the oldest unsynced record is 3d old (max 1d): is the sync stuck?"


def test_a_young_backlog_passes_max_age(vault, angles_cli, pipeline_file):
    vault(2, oldest="2 hours")
    result, check = run_check(angles_cli, pipeline_file, "    max_age: 1d")
    assert (result.exit_code, check["status"]) == (0, "ok")


def test_a_missing_table_is_an_error_naming_it(postgres_db, angles_cli, pipeline_file, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", postgres_db.url)
    result, check = run_check(angles_cli, pipeline_file)
    assert result.exit_code == 2
    assert check["message"].startswith("PostgreSQL: there is no table 'decision_vault'")


def test_an_unreachable_database_is_an_error_without_the_password(
    angles_cli, pipeline_file, monkeypatch, tmp_path
):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:pa55-w0rd@127.0.0.1:{port}/app")
    result, check = run_check(angles_cli, pipeline_file)
    assert result.exit_code == 2
    assert "connection refused" in check["message"]
    logs = "".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    assert "pa55-w0rd" not in result.output + logs


def test_test_mode_contacts_nothing(angles_cli, pipeline_file, monkeypatch):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        monkeypatch.setenv("DATABASE_URL", f"postgresql://app:x@127.0.0.1:{port}/app")
        path = pipeline_file(PIPELINE.format(extra=""))
        result = angles_cli("check", path, "--test", "--format", "json")
        [check] = result.json()["checks"]
        assert result.exit_code == 2 and check["message"].startswith("[TEST]")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked
