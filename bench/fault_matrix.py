"""The fault matrix: every service by every fault, as ``angles`` reports it, and its wall time.

Services: Supabase (a check, through the PostgREST gateway on a local PostgreSQL),
Notion (a check), GitHub (a backup of a small SQLite table), Slack (a notification) and
SMTP (a notification). Faults: the port refuses connections; the service accepts and never
answers; it answers 5xx; it answers 429 with ``Retry-After``; the credentials are wrong;
the body is malformed (an HTML page, or a greeting that is not SMTP). Each cell is one
``angles`` command in this process, against the servers of ``angles.testing``, with the
services' default retries and ``defaults.timeout_seconds`` (30 s by default: the stall
cells then take minutes; ``--timeout 5`` for a quick look). Prints one line per cell:
service, fault, status, wall time, message; then the worst cell against the bound
``timeout * attempts + documented pauses``.

    .venv/bin/python bench/fault_matrix.py [--timeout SECONDS] [--only SERVICE]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sqlite3
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

FAULTS = ("refused", "no answer", "5xx", "429", "bad credentials", "malformed body")
#: Tries each service makes for a transient failure, by default (first try included).
ATTEMPTS = {"Supabase": 4, "Notion": 3, "GitHub": 3, "Slack": 3, "SMTP": 3}
HTML = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>portal</body></html>"


@dataclass
class Cell:
    service: str
    fault: str
    status: str
    seconds: float
    message: str


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(folder: Path, text: str, command: str, pick: Callable[[dict], dict]) -> tuple[str, str]:
    """Run ``angles COMMAND`` on the pipeline text; the status and message ``pick`` finds."""
    from angles.testing.pipelines import run_cli

    path = folder / "angles.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    result = run_cli(command, path, "--format", "json")
    try:
        outcome = pick(result.json())
    except Exception:
        return "exit", result.output.strip().splitlines()[-1]
    return outcome.get("status", "?"), outcome.get("message") or ""


# -- one function per service: fault -> (status, message) ---------------------------------------


@contextlib.contextmanager
def supabase(folder: Path, timeout: float) -> Iterator[Callable[[str], tuple[str, str]]]:
    from angles.testing import postgres
    from angles.testing.postgrest import PostgrestServer

    admin = postgres.ensure_postgres()
    url = postgres.create_database(admin, prefix="angles_fault_matrix")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        postgres.ensure_supabase_roles(conn)
        conn.execute("CREATE TABLE decision_vault (id bigint PRIMARY KEY, decision text)")
    server = PostgrestServer(url)
    server.start()
    try:

        def cell(fault: str) -> tuple[str, str]:
            server.reset()
            base, key = server.url, server.service_role_key
            if fault == "refused":
                base = f"http://127.0.0.1:{closed_port()}"
            elif fault == "no answer":
                server.fail(method="HEAD", delay=10 * timeout + 60, times=100)
            elif fault == "5xx":
                server.fail_with_html(503, method="HEAD", times=100)
            elif fault == "429":
                server.fail(method="HEAD", status=429, headers={"Retry-After": "1"}, times=100)
            elif fault == "bad credentials":
                key = "sb_secret_" + "x" * 40
            elif fault == "malformed body":
                server.fail(method="HEAD", status=200, body=HTML, times=100)
            text = f"""\
                version: 1
                log_dir: logs
                state: state.db
                connections:
                  supabase: {{type: supabase, url: "{base}", key: "{key}"}}
                checks:
                  - {{name: vault, type: supabase, connection: supabase, tables: [decision_vault]}}
                defaults: {{timeout_seconds: {timeout}}}
                """
            return run(folder, text, "check", lambda doc: doc["checks"][0])

        yield cell
    finally:
        server.stop()
        postgres.drop_database(admin, url)


@contextlib.contextmanager
def notion(folder: Path, timeout: float) -> Iterator[Callable[[str], tuple[str, str]]]:
    from angles.testing.notion import NotionServer

    with NotionServer() as server:

        def cell(fault: str) -> tuple[str, str]:
            server.reset()
            database, _ = server.add_database(properties={"Name": "title"})
            base, token = server.url, server.token
            if fault == "refused":
                base = f"http://127.0.0.1:{closed_port()}"
            elif fault == "no answer":
                server.fail(delay=10 * timeout + 60, times=100)
            elif fault == "5xx":
                server.fail(status=502, body=HTML, headers={"Content-Type": "text/html"}, times=100)
            elif fault == "429":
                server.rate_limited(times=100, retry_after=1)
            elif fault == "bad credentials":
                token = "ntn_" + "0" * 46
            elif fault == "malformed body":
                server.fail(status=200, body=HTML, headers={"Content-Type": "text/html"}, times=100)
            text = f"""\
                version: 1
                log_dir: logs
                state: state.db
                connections:
                  notion: {{type: notion, token: "{token}", api_url: "{base}"}}
                checks:
                  - {{name: notion, type: notion, connection: notion, database_id: "{database}"}}
                defaults: {{timeout_seconds: {timeout}}}
                """
            return run(folder, text, "check", lambda doc: doc["checks"][0])

        yield cell


@contextlib.contextmanager
def github(folder: Path, timeout: float) -> Iterator[Callable[[str], tuple[str, str]]]:
    from angles.testing.github import GitHubServer

    with sqlite3.connect(folder / "vault.db") as db:
        db.execute("CREATE TABLE decision_vault (id INTEGER PRIMARY KEY, decision TEXT)")
        db.execute("INSERT INTO decision_vault VALUES (1, 'ship it')")
    with GitHubServer() as server:

        def cell(fault: str) -> tuple[str, str]:
            server.reset()
            server.create_repo("acme", "backups")
            base, token = server.url, server.token
            if fault == "refused":
                base = f"http://127.0.0.1:{closed_port()}"
            elif fault == "no answer":
                server.fail(delay=10 * timeout + 60, times=100)
            elif fault == "5xx":
                server.fail(status=502, body=HTML, headers={"Content-Type": "text/html"}, times=100)
            elif fault == "429":
                server.fail(
                    status=429,
                    headers={"Retry-After": "1"},
                    body={"message": "You have exceeded a secondary rate limit."},
                    times=100,
                )
            elif fault == "bad credentials":
                token = "ghp_" + "0" * 36
            elif fault == "malformed body":
                server.fail(status=200, body=HTML, headers={"Content-Type": "text/html"}, times=100)
            text = f"""\
                version: 1
                log_dir: logs
                state: state.db
                connections:
                  vault: {{type: sqlite, path: vault.db}}
                backups:
                  - {{name: vault, connection: vault, table: decision_vault, sinks: [github]}}
                sinks:
                  github: {{type: github, repository: acme/backups, token: "{token}",
                            api_url: "{base}", throttle: false}}
                defaults: {{timeout_seconds: {timeout}}}
                """
            return run(folder, text, "backup", lambda doc: doc["backups"][0])

        yield cell


@contextlib.contextmanager
def slack(folder: Path, timeout: float) -> Iterator[Callable[[str], tuple[str, str]]]:
    from angles.testing.slack import SlackWebhookServer

    with SlackWebhookServer() as server:

        def cell(fault: str) -> tuple[str, str]:
            server.reset()
            url = server.webhook_url
            if fault == "refused":
                url = url.replace(str(server.port), str(closed_port()))
            elif fault == "no answer":
                server.fail(delay=10 * timeout + 60, times=100)
            elif fault == "5xx":
                server.fail(status=500, body="rollup_error", times=100)
            elif fault == "429":
                server.rate_limited(times=100, retry_after=1)
            elif fault == "bad credentials":
                server.revoke()
            elif fault == "malformed body":
                server.fail(status=200, body=HTML, headers={"Content-Type": "text/html"}, times=100)
            return notify(folder, f"{{name: slack, type: slack, webhook_url: '{url}'}}", timeout)

        yield cell


@contextlib.contextmanager
def smtp(folder: Path, timeout: float) -> Iterator[Callable[[str], tuple[str, str]]]:
    from angles.testing.smtp import RawSMTPServer, SMTPServer

    replies = {
        "no answer": None,
        "5xx": "554 5.3.2 mx.angles.test Service not available\r\n",
        "429": "421 4.7.0 mx.angles.test Too many connections, try again later\r\n",
        "malformed body": "HTTP/1.1 400 Bad Request\r\n\r\n",
    }

    def cell(fault: str) -> tuple[str, str]:
        with contextlib.ExitStack() as stack:
            port, password = closed_port(), "s3cret"
            if fault in replies:
                port = stack.enter_context(RawSMTPServer(replies[fault])).port
            elif fault != "refused":
                port = stack.enter_context(SMTPServer("none", auth_required=True)).port
                password = "wrong" if fault == "bad credentials" else password
            entry = (
                f"{{name: mail, type: smtp, host: 127.0.0.1, port: {port}, tls: none, "
                f"username: alerts, password: '{password}', to: [ops@example.com]}}"
            )
            return notify(folder, entry, timeout)

    yield cell


def notify(folder: Path, entry: str, timeout: float) -> tuple[str, str]:
    """An ``angles run`` with one notifier told about every run."""
    on = entry.replace("}", ", on: [always]}")
    text = f"""\
        version: 1
        log_dir: logs
        state: state.db
        notifiers:
          - {on}
        defaults: {{timeout_seconds: {timeout}}}
        """
    return run(folder, text, "run", lambda doc: doc["notifications"][0])


SERVICES = {"Supabase": supabase, "Notion": notion, "GitHub": github, "Slack": slack, "SMTP": smtp}


def bound(service: str, timeout: float) -> float:
    """``timeout * attempts`` plus the documented pauses (1, 2, 4… s)."""
    attempts = ATTEMPTS[service]
    return attempts * timeout + sum(min(2 ** (n - 1), 30) for n in range(1, attempts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=30.0, help="defaults.timeout_seconds")
    parser.add_argument("--only", choices=list(SERVICES), action="append")
    options = parser.parse_args()
    os.environ.setdefault("NO_COLOR", "1")
    warnings.filterwarnings("ignore")  # aiosmtpd's notice about AUTH without TLS
    cells: list[Cell] = []
    print(f"{'service':9} {'fault':16} {'status':7} {'seconds':>8}  message")
    for service in options.only or SERVICES:
        with (
            tempfile.TemporaryDirectory() as tmp,
            SERVICES[service](Path(tmp), options.timeout) as cell,
        ):
            for fault in FAULTS:
                started = time.monotonic()
                status, message = cell(fault)
                found = Cell(service, fault, status, time.monotonic() - started, message)
                cells.append(found)
                print(
                    f"{service:9} {fault:16} {status:7} {found.seconds:8.1f}  {message}",
                    flush=True,
                )
    worst = max(cells, key=lambda c: c.seconds / bound(c.service, options.timeout))
    print(
        f"\nworst cell: {worst.service} / {worst.fault}: {worst.seconds:.1f} s, bound "
        f"{bound(worst.service, options.timeout):.0f} s (timeout {options.timeout:g} s * "
        f"{ATTEMPTS[worst.service]} tries + pauses)"
    )


if __name__ == "__main__":
    main()
