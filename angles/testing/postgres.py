"""A local PostgreSQL server for tests: start it, log in, make throw-away databases.

:func:`ensure_postgres` returns an administrator URL. It honours ``ANGLES_TEST_POSTGRES_URL``
when set; otherwise it starts the Debian cluster (``pg_ctlcluster``) when it is down and
creates a password login ``angles`` (superuser) through ``runuser -u postgres -- psql``, so
the tests connect over TCP to 127.0.0.1. When PostgreSQL is not installed the fixtures skip,
except under ``CI`` where they fail.

Fixtures: ``postgres_admin_url`` (session), ``postgres_url`` (session, a fresh database that
is dropped afterwards) and ``postgres_db`` (function, the same database with an empty
``public`` schema and the Supabase roles granted on it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

__all__ = [
    "ENV_URL",
    "PostgresDatabase",
    "PostgresUnavailable",
    "create_database",
    "database_url",
    "drop_database",
    "ensure_postgres",
    "ensure_supabase_roles",
    "grant_supabase_roles",
    "reset_schema",
]

ENV_URL = "ANGLES_TEST_POSTGRES_URL"
LOGIN = "angles"
PASSWORD = "angles-test"
SUPABASE_ROLES = ("anon", "authenticated", "service_role")
_LOCK_FILE = Path(tempfile.gettempdir()) / "angles-test-postgres.lock"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed here (or cannot be reached without root)."""


# -- server and login ----------------------------------------------------------------------


def ensure_postgres(timeout: float = 30.0) -> str:
    """Make sure a PostgreSQL server runs and return a superuser URL (database ``postgres``).

    Raises :class:`PostgresUnavailable` when PostgreSQL is not installed, and
    :class:`RuntimeError` when it is installed but cannot be started or logged into.
    """
    env_url = os.environ.get(ENV_URL)
    if env_url:
        _wait_for(env_url, timeout)
        return env_url
    if not shutil.which("pg_lsclusters") or not shutil.which("pg_ctlcluster"):
        raise PostgresUnavailable(
            f"pg_lsclusters/pg_ctlcluster not found; install postgresql or set {ENV_URL}"
        )
    with _file_lock():
        version, name, port, online = _pick_cluster()
        url = f"postgresql://{LOGIN}:{PASSWORD}@127.0.0.1:{port}/postgres"
        if online and _can_connect(url):
            return url
        if os.geteuid() != 0:
            raise PostgresUnavailable(
                f"cluster {version}/{name} is not usable and we are not root; set {ENV_URL}"
            )
        if not online:
            _run(["pg_ctlcluster", version, name, "start"])
        _wait_for_socket(port, timeout)
        _create_login(port)
        _wait_for(url, timeout)
        return url


def _pick_cluster() -> tuple[str, str, str, bool]:
    out = _run(["pg_lsclusters", "--no-header"]).stdout
    clusters = [line.split() for line in out.splitlines() if line.strip()]
    if not clusters:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        if not versions:
            raise PostgresUnavailable("no PostgreSQL cluster and no server binaries")
        version = versions[-1].parent.parent.name
        _run(["pg_createcluster", version, "main"])
        return _pick_cluster()
    # Prefer the newest cluster named "main"; any cluster otherwise.
    clusters.sort(key=lambda c: (c[1] == "main", _version_key(c[0])), reverse=True)
    version, name, port, status = clusters[0][:4]
    return version, name, port, status == "online"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _create_login(port: str) -> None:
    statement = (
        "DO $$BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{LOGIN}') THEN "
        f"CREATE ROLE {LOGIN} LOGIN SUPERUSER PASSWORD '{PASSWORD}'; "
        f"ELSE ALTER ROLE {LOGIN} LOGIN SUPERUSER PASSWORD '{PASSWORD}'; END IF; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$;"
    )
    psql = ["psql", "-X", "-q", "-p", port, "-d", "postgres", "-v", "ON_ERROR_STOP=1"]
    if shutil.which("runuser"):
        command = ["runuser", "-u", "postgres", "--", *psql, "-c", statement]
    else:
        quoted = " ".join(_shell_quote(part) for part in [*psql, "-c", statement])
        command = ["su", "postgres", "-c", quoted]
    _run(command)


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:4])}... failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}"
        )
    return result


def _can_connect(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _wait_for_socket(port: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run(
            ["pg_isready", "-q", "-p", port], capture_output=True, check=False, timeout=10
        )
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"PostgreSQL on port {port} did not become ready in {timeout:.0f} s")


def _wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last = exc
            time.sleep(0.2)
    raise RuntimeError(f"cannot log into PostgreSQL at {_redact(url)}: {last}")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@contextlib.contextmanager
def _file_lock() -> Iterator[None]:
    # Several pytest processes may start the cluster at the same time.
    with open(_LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- databases -------------------------------------------------------------------------------


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` pointed at the database ``name``."""
    if "://" in admin_url:
        return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    return psycopg.conninfo.make_conninfo(admin_url, dbname=name)


def create_database(admin_url: str, prefix: str = "angles_test") -> str:
    """Create an empty database with a random name and return its URL."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database that ``url`` points at, closing its sessions."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


def ensure_supabase_roles(conn: psycopg.Connection[Any]) -> None:
    """Create the Supabase API roles when missing (they are cluster-wide).

    ``anon`` and ``authenticated`` are plain NOLOGIN roles; ``service_role`` has BYPASSRLS.
    Also creates the ``auth`` schema with Supabase's ``auth.uid()``, ``auth.role()`` and
    ``auth.jwt()``, which read the claims the gateway sets.
    """
    for role in SUPABASE_ROLES:
        conn.execute(
            sql.SQL(
                "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN "
                "CREATE ROLE {role} NOLOGIN NOINHERIT; END IF; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$"
            ).format(name=sql.Literal(role), role=sql.Identifier(role))
        )
    # Only when needed: concurrent ALTER ROLE from two test runs fails ("tuple concurrently
    # updated").
    conn.execute(
        "DO $$BEGIN IF NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role')"
        " THEN ALTER ROLE service_role BYPASSRLS; END IF; END$$"
    )
    conn.execute(_AUTH_SCHEMA_SQL)


_AUTH_SCHEMA_SQL = """
CREATE SCHEMA IF NOT EXISTS auth;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT nullif(auth.jwt() ->> 'sub', '')::uuid
$$;
CREATE OR REPLACE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT auth.jwt() ->> 'role'
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA auth TO anon, authenticated, service_role;
"""


def grant_supabase_roles(conn: psycopg.Connection[Any], schema: str = "public") -> None:
    """Grant the Supabase roles what Supabase grants them on ``schema`` (now and later)."""
    roles = sql.SQL(", ").join(sql.Identifier(r) for r in SUPABASE_ROLES)
    ident = sql.Identifier(schema)
    for statement in (
        "GRANT USAGE ON SCHEMA {s} TO {r}",
        "GRANT ALL ON ALL TABLES IN SCHEMA {s} TO {r}",
        "GRANT ALL ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        "GRANT ALL ON ALL FUNCTIONS IN SCHEMA {s} TO {r}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT ALL ON TABLES TO {r}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT ALL ON SEQUENCES TO {r}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT ALL ON FUNCTIONS TO {r}",
    ):
        conn.execute(sql.SQL(statement).format(s=ident, r=roles))


def reset_schema(url: str, schema: str = "public") -> None:
    """Drop and recreate ``schema`` (everything in it goes), with the Supabase grants."""
    with psycopg.connect(url, autocommit=True) as conn:
        ident = sql.Identifier(schema)
        with conn.transaction():
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
            if schema == "public":
                conn.execute("COMMENT ON SCHEMA public IS 'standard public schema'")
            ensure_supabase_roles(conn)
            grant_supabase_roles(conn, schema)


@dataclass
class PostgresDatabase:
    """A test database: its URL and a few shortcuts for setting up tables."""

    url: str

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A new autocommit connection (close it, or use it in a ``with`` block)."""
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.url, **kwargs)

    def execute(self, query: str | sql.Composable, params: Sequence[Any] | None = None) -> None:
        """Run one statement (or several, without parameters) and commit."""
        with self.connect() as conn:
            conn.execute(query, params)  # type: ignore[arg-type]

    def fetchall(
        self, query: str | sql.Composable, params: Sequence[Any] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a query and return every row as a tuple."""
        with self.connect() as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def fetchval(self, query: str | sql.Composable, params: Sequence[Any] | None = None) -> Any:
        """Run a query and return the first column of the first row (None when empty)."""
        rows = self.fetchall(query, params)
        return rows[0][0] if rows else None

    def reset(self, schema: str = "public") -> None:
        """Empty ``schema`` by dropping and recreating it (see :func:`reset_schema`)."""
        reset_schema(self.url, schema)

    def data_dump(self, schema: str = "public") -> list[str]:
        """``pg_dump --data-only`` of ``schema``: the judge of an exact restore.

        Rows of each table are sorted (a restore writes them in key order, not in the
        original's physical order), and the dump's random session key is left out.
        """
        result = subprocess.run(
            ["pg_dump", "--data-only", f"--schema={schema}", "--no-owner", self.url],
            capture_output=True,
            text=True,
            check=True,
        )
        lines: list[str] = []
        rows: list[str] = []
        copying = False
        for line in result.stdout.splitlines():
            if line.startswith(("--", "\\restrict", "\\unrestrict")):
                continue
            if copying and line == "\\.":
                lines += sorted(rows)
                rows, copying = [], False
            if copying:
                rows.append(line)
            else:
                lines.append(line)
                copying = line.startswith("COPY ")
        return lines


def drop_test_schemas(url: str) -> None:
    """Drop every schema a test created, keeping ``public`` and Supabase's ``auth``."""
    with psycopg.connect(url, autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT IN "
                "('public', 'auth', 'information_schema') AND nspname NOT LIKE 'pg\\_%'"
            )
        ]
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
