"""The supabase check against the PostgREST gateway, through the command line."""

from __future__ import annotations

import socket

import pytest

pytestmark = pytest.mark.postgres

PIPELINE = """\
version: 1
log_dir: logs
connections:
  supabase:
    type: supabase
    url: "${SUPABASE_URL}"
    key: "${SUPABASE_KEY}"
    retries: 0
%(connection)s
checks:
  - name: supabase
    type: supabase
    connection: supabase
    tables: [%(tables)s]
%(check)s
"""


@pytest.fixture
def tables(postgres_db):
    postgres_db.execute(
        "CREATE TABLE decision_vault (id bigint PRIMARY KEY, decision text);"
        "INSERT INTO decision_vault SELECT g, 'd' || g FROM generate_series(1, 1500) g;"
        "CREATE TABLE notes (id bigint PRIMARY KEY);"
    )


@pytest.fixture
def check(angles_cli, pipeline_file, postgrest, monkeypatch, tables):
    """Run the check; returns (exit code, the check's JSON result, all output)."""
    monkeypatch.setenv("SUPABASE_URL", postgrest.url)
    monkeypatch.setenv("SUPABASE_KEY", postgrest.service_role_key)

    def run(tables="decision_vault, notes", connection="", extra="", *options):
        text = PIPELINE % {"tables": tables, "connection": connection, "check": extra}
        result = angles_cli("check", pipeline_file(text), "--format", "json", *options)
        assert postgrest.service_role_key not in result.output
        [outcome] = result.json()["checks"]
        return result.exit_code, outcome, result.output

    return run


def test_healthy(check, postgrest):
    code, result, _ = check()
    assert (code, result["status"]) == (0, "ok")
    assert result["message"].startswith("2 tables readable: decision_vault (1500 rows), notes (0")
    tables = result["details"]["tables"]
    assert tables["decision_vault"]["rows"] == 1500  # exact, beyond the 1000-row cap
    assert isinstance(tables["notes"]["latency_ms"], int)
    assert result["details"]["latency_ms"] == max(t["latency_ms"] for t in tables.values())
    assert [r.method for r in postgrest.requests] == ["HEAD", "HEAD"]


def test_slow_answers_are_a_warning(check, postgrest):
    postgrest.fail(method="HEAD", delay=0.3)
    code, result, _ = check(extra="    warn_latency_ms: 100")
    assert (code, result["status"]) == (1, "warning")
    assert result["message"].startswith("Supabase is slow: 'decision_vault' answered in 3")
    assert result["message"].endswith("ms (warning above 100 ms)")


def test_a_timeout_is_an_error(check, postgrest):
    postgrest.fail(method="HEAD", delay=1.0)
    code, result, _ = check(connection="    timeout_seconds: 0.3")
    assert (code, result["status"]) == (2, "error")
    assert "counting the rows of 'decision_vault': no answer within 0.3s" in result["message"]
    assert "within 0.3s" in result["message"]
    assert result["details"]["failing_table"] == "decision_vault"


def test_a_bad_key(check, monkeypatch):
    monkeypatch.setenv("SUPABASE_KEY", "sb_secret_wrong_" + "k" * 30)
    code, result, output = check()
    assert (code, result["status"]) == (2, "error")
    assert "the API key was refused (Invalid API key)" in result["message"]
    assert "check SUPABASE_KEY" in result["message"]
    assert "sb_secret_wrong_" not in output
    assert list(result["details"]["tables"]) == ["decision_vault"]  # no use trying the others


def test_an_unknown_table_is_named_with_the_servers_hint(check):
    code, result, _ = check(tables="decision_vaults, notes")
    assert (code, result["status"]) == (2, "error")
    assert result["message"] == (
        "Supabase: counting the rows of 'decision_vaults': there is no table 'decision_vaults' "
        "in the schema 'public' (Perhaps you meant the table 'public.decision_vault')"
    )
    assert result["details"]["tables"]["notes"]["rows"] == 0  # the other tables still checked


def test_the_gateway_is_down(check, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SUPABASE_URL", f"http://127.0.0.1:{port}")
    code, result, _ = check()
    assert (code, result["status"]) == (2, "error")
    assert f"connection refused at 127.0.0.1:{port}" in result["message"]
    assert "check SUPABASE_URL" in result["message"]


def test_a_cloudflare_page_becomes_one_line(check, postgrest):
    postgrest.fail_with_html(520, method="HEAD")
    code, result, _ = check()
    assert code == 2
    assert "counting the rows of 'decision_vault': HTTP 520 from the gateway" in result["message"]
    assert "<" not in result["message"]


def test_test_mode_contacts_nothing(check, postgrest):
    code, result, _ = check("decision_vault", "", "", "--test")
    assert (code, result["status"]) == (2, "error")
    assert result["message"].startswith("[TEST]")
    assert postgrest.requests == []


def test_the_check_needs_a_supabase_connection(angles_cli, pipeline_file):
    path = pipeline_file(
        "version: 1\n"
        "connections:\n  vault: {type: sqlite, path: vault.db}\n"
        "checks:\n  - {name: s, type: supabase, connection: vault, tables: [t]}\n"
    )
    result = angles_cli("validate", path)
    assert result.exit_code == 3
    assert "a supabase check needs a supabase connection; 'vault' is a sqlite" in result.output
