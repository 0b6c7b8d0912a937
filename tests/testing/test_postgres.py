"""Tests of the PostgreSQL helper and its fixtures (angles.testing.postgres)."""

from __future__ import annotations

import os

import psycopg
import pytest

from angles.testing import postgres as pg
from angles.testing.postgres import PostgresDatabase

pytest_plugins = ["pytester"]


@pytest.mark.postgres
def test_admin_url_logs_in_as_a_superuser_over_tcp(postgres_admin_url):
    assert pg.ensure_postgres() == postgres_admin_url
    with psycopg.connect(postgres_admin_url) as conn:
        superuser = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert superuser == (True,)
        if not os.environ.get(pg.ENV_URL):
            assert conn.info.host == "127.0.0.1"


@pytest.mark.postgres
def test_session_database_is_fresh_and_has_the_supabase_roles(postgres_url):
    with psycopg.connect(postgres_url) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        roles = dict(
            conn.execute(
                "SELECT rolname, rolbypassrls FROM pg_roles WHERE rolname = ANY(%s)",
                [["anon", "authenticated", "service_role"]],
            ).fetchall()
        )
    assert name.startswith("angles_test_")
    assert roles == {"anon": False, "authenticated": False, "service_role": True}


@pytest.mark.postgres
def test_postgres_db_gives_an_empty_public_schema_with_grants(postgres_db: PostgresDatabase):
    assert postgres_db.fetchall("SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
    comment = postgres_db.fetchval("SELECT obj_description('public'::regnamespace)")
    assert comment == "standard public schema"
    postgres_db.execute("CREATE TABLE t (id serial PRIMARY KEY)")
    assert postgres_db.fetchval("SELECT has_table_privilege('anon', 'public.t', 'SELECT')")
    assert postgres_db.fetchval(
        "SELECT has_sequence_privilege('service_role', 'public.t_id_seq', 'USAGE')"
    )
    postgres_db.reset()
    assert postgres_db.fetchval("SELECT to_regclass('public.t')") is None
    assert postgres_db.fetchval("SELECT has_schema_privilege('anon', 'public', 'USAGE')")


@pytest.mark.postgres
def test_auth_functions_read_the_request_claims(postgres_db: PostgresDatabase):
    with postgres_db.connect(autocommit=False) as conn:
        claims = '{"sub": "00000000-0000-0000-0000-0000000000aa", "role": "authenticated"}'
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)", [claims])
        uid, role = conn.execute("SELECT auth.uid()::text, auth.role()").fetchone()
    assert (uid, role) == ("00000000-0000-0000-0000-0000000000aa", "authenticated")


@pytest.mark.postgres
def test_create_and_drop_a_database(postgres_admin_url):
    url = pg.create_database(postgres_admin_url, prefix="angles_probe")
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE x (id int)")
    pg.drop_database(postgres_admin_url, url)
    with psycopg.connect(postgres_admin_url) as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchall()
    assert left == []


def test_database_url_keeps_the_login():
    url = pg.database_url("postgresql://u:p@127.0.0.1:5433/postgres?sslmode=disable", "x")
    assert url == "postgresql://u:p@127.0.0.1:5433/x?sslmode=disable"
    assert "dbname=x" in pg.database_url("host=h user=u dbname=postgres", "x")


@pytest.mark.postgres
def test_env_url_wins(monkeypatch, postgres_admin_url):
    monkeypatch.setenv(pg.ENV_URL, postgres_admin_url)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert pg.ensure_postgres() == postgres_admin_url


def test_not_installed_raises_unavailable(monkeypatch, tmp_path):
    monkeypatch.delenv(pg.ENV_URL, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pg.PostgresUnavailable, match="pg_lsclusters"):
        pg.ensure_postgres()


@pytest.mark.parametrize("ci", [None, "true"])
def test_not_installed_skips_locally_and_fails_in_ci(pytester, monkeypatch, tmp_path, ci):
    monkeypatch.delenv(pg.ENV_URL, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile("def test_needs_postgres(postgres_url):\n    pass\n")
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    if ci is None:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*PostgreSQL is not available: pg_lsclusters*"])
    else:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*PostgreSQL is required when CI is set*"])
