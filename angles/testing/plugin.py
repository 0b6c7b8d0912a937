"""The pytest plugin (entry point ``pytest11``) that exposes the angles test fixtures.

pytest loads this module in every project of an environment where angles is installed, so it
imports nothing but pytest: each fixture imports its server when a test first asks for it.
The servers' dependencies are the ``testing`` extra (``pip install 'angles-monitor[testing]'``);
a fixture used without them fails with that hint, and a project that uses none never notices.
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from angles.core.plugins import Plugins
    from angles.testing.github import GitHubServer
    from angles.testing.notion import NotionServer
    from angles.testing.pipelines import CliResult
    from angles.testing.postgres import PostgresDatabase
    from angles.testing.postgrest import PostgrestServer
    from angles.testing.slack import SlackWebhookServer
    from angles.testing.smtp import Certificate, RawSMTPServer, SMTPServer
    from angles.testing.webhook import WebhookReceiver

TESTING_EXTRA = "pip install 'angles-monitor[testing]'"


def _server_module(name: str) -> types.ModuleType:
    """``angles.testing.<name>``, or a test failure saying how to install what it needs."""
    try:
        return importlib.import_module(f"angles.testing.{name}")
    except ImportError as exc:
        pytest.fail(
            f"the angles {name} test server needs {exc.name or exc}: {TESTING_EXTRA}",
            pytrace=False,
        )


# -- running angles ------------------------------------------------------------------------------


@pytest.fixture
def angles_cli() -> Callable[..., CliResult]:
    """Run ``angles`` commands in-process: ``angles_cli("run", path, "--format", "json")``."""
    return _server_module("pipelines").run_cli


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a pipeline from YAML text: ``pipeline_file(text, name="angles.yaml")``.

    The text is dedented; the file lies in the test's temporary folder.
    """

    def write(text: str, name: str = "angles.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def angles_plugins() -> Callable[[], Plugins]:
    """Build a fresh plugin manager and registries, as ``angles`` does at start-up."""
    from angles.core.plugins import get_plugin_manager, load_plugins

    return lambda: load_plugins(get_plugin_manager())


@pytest.fixture
def register_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Register a plugin (an object with ``@hookimpl`` functions) for one test.

    Returns the name it is registered under; every plugin manager built during the
    test, the command line's included, loads it.
    """
    from angles.core.plugins import EXTRA_VARIABLE

    added: list[str] = []

    def register(plugin: Any, name: str | None = None) -> str:
        module_name = name or f"angles_test_plugin_{len(added)}_{id(plugin):x}"
        module = types.ModuleType(module_name)
        for attribute in dir(plugin):
            if attribute.startswith("angles_"):
                setattr(module, attribute, getattr(plugin, attribute))
        sys.modules[module_name] = module
        added.append(module_name)
        monkeypatch.setenv(EXTRA_VARIABLE, ",".join(added))
        return module_name

    yield register
    for module_name in added:
        sys.modules.pop(module_name, None)


# -- PostgreSQL and the Supabase Data API ---------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A superuser URL for the local server (database ``postgres``).

    Skips the test when PostgreSQL is not installed, unless ``CI`` is set: then it fails.
    """
    postgres = _server_module("postgres")
    try:
        return postgres.ensure_postgres()
    except postgres.PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required when CI is set: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL is not available: {exc}")


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """The URL of a fresh database (random name, superuser login), dropped after the session."""
    postgres = _server_module("postgres")
    import psycopg

    url = postgres.create_database(postgres_admin_url)
    with psycopg.connect(url, autocommit=True) as conn:
        postgres.ensure_supabase_roles(conn)
    try:
        yield url
    finally:
        postgres.drop_database(postgres_admin_url, url)


@pytest.fixture
def postgres_db(postgres_url: str) -> PostgresDatabase:
    """The session database as new for each test: an empty ``public`` schema and no
    schema another test created."""
    postgres = _server_module("postgres")
    database = postgres.PostgresDatabase(postgres_url)
    postgres.drop_test_schemas(postgres_url)
    database.reset()
    return database


@pytest.fixture(scope="session")
def _postgrest_session_server(postgres_url: str) -> Iterator[PostgrestServer]:
    server = _server_module("postgrest").PostgrestServer(postgres_url)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgrest(
    _postgrest_session_server: PostgrestServer, postgres_db: PostgresDatabase
) -> PostgrestServer:
    """A running :class:`PostgrestServer` over ``postgres_db`` (empty ``public`` schema).

    One server serves the session; each test gets it with its requests, faults and options
    reset. ``postgrest.url`` goes to ``supabase.create_client(url, key)`` with
    ``postgrest.service_role_key`` or ``postgrest.anon_key``.
    """
    _postgrest_session_server.reset()
    return _postgrest_session_server


@pytest.fixture
def postgrest_factory(postgres_db: PostgresDatabase) -> Iterator[Callable[..., PostgrestServer]]:
    """Start extra servers over ``postgres_db`` with other options; they stop after the test.

    ``postgrest_factory(max_rows=2, schemas=["public", "private"], jwt_secret="...")``
    takes the keyword arguments of :class:`PostgrestServer`.
    """
    server_class = _server_module("postgrest").PostgrestServer
    servers: list[PostgrestServer] = []

    def make(**options: Any) -> PostgrestServer:
        server = server_class(postgres_db.url, **options)
        server.start()
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


# -- GitHub, Notion, Slack and webhooks -----------------------------------------------------------


@pytest.fixture
def github_server() -> Iterator[GitHubServer]:
    """A fresh :class:`GitHubServer` for one test (starting one takes milliseconds).

    Give PyGithub ``base_url=github_server.url`` and ``auth=Auth.Token(github_server.token)``.
    """
    with _server_module("github").GitHubServer() as server:
        yield server


@pytest.fixture(scope="session")
def _angles_notion_server() -> Iterator[NotionServer]:
    with _server_module("notion").NotionServer() as server:
        yield server


@pytest.fixture
def notion_server(_angles_notion_server: NotionServer) -> NotionServer:
    """A Notion API imitation, emptied (data, log, faults, rate limit) for each test."""
    _angles_notion_server.reset()
    return _angles_notion_server


@pytest.fixture(scope="session")
def _angles_slack_server() -> Iterator[SlackWebhookServer]:
    with _server_module("slack").SlackWebhookServer() as server:
        yield server


@pytest.fixture
def slack_server(_angles_slack_server: SlackWebhookServer) -> SlackWebhookServer:
    """A Slack incoming-webhook imitation, emptied (messages, hooks, faults) for each test."""
    _angles_slack_server.reset()
    return _angles_slack_server


@pytest.fixture(scope="session")
def _angles_webhook_server() -> Iterator[WebhookReceiver]:
    with _server_module("webhook").WebhookReceiver() as server:
        yield server


@pytest.fixture
def webhook_server(_angles_webhook_server: WebhookReceiver) -> WebhookReceiver:
    """An HTTP receiver on 127.0.0.1 answering 200 to everything, emptied for each test."""
    _angles_webhook_server.reset()
    return _angles_webhook_server


# -- mail -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _angles_smtp_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return _server_module("smtp").make_certificate(tmp_path_factory.mktemp("angles-smtp-cert"))


@pytest.fixture(scope="session")
def _angles_smtp_server(_angles_smtp_certificate: Certificate) -> Iterator[SMTPServer]:
    smtp = _server_module("smtp")
    with smtp.SMTPServer("starttls", certificate=_angles_smtp_certificate) as server:
        yield server


@pytest.fixture
def smtp_server_factory(
    _angles_smtp_certificate: Certificate,
) -> Iterator[Callable[..., SMTPServer]]:
    """Start more servers: ``smtp_server_factory("ssl", password="x")`` returns a started one.

    They share the session's certificate and are stopped after the test.
    """
    server_class = _server_module("smtp").SMTPServer
    started: list[SMTPServer] = []

    def factory(mode: str = "starttls", **options: Any) -> SMTPServer:
        options.setdefault("certificate", _angles_smtp_certificate)
        server = server_class(mode, **options).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def smtp_server(
    request: pytest.FixtureRequest,
    _angles_smtp_server: SMTPServer,
    smtp_server_factory: Callable[..., SMTPServer],
) -> SMTPServer:
    """A STARTTLS + AUTH mail server, emptied for each test.

    Parametrise indirectly for another mode:
    ``@pytest.mark.parametrize("smtp_server", ["ssl", "none"], indirect=True)``.
    """
    mode = getattr(request, "param", "starttls")
    if mode != "starttls":
        return smtp_server_factory(mode)
    _angles_smtp_server.reset()
    return _angles_smtp_server


@pytest.fixture
def silent_smtp_server() -> Iterator[RawSMTPServer]:
    """A server that accepts connections and never sends a greeting."""
    with _server_module("smtp").RawSMTPServer() as server:
        yield server


@pytest.fixture
def unavailable_smtp_server() -> Iterator[RawSMTPServer]:
    """A server that greets with ``421 4.3.2 Service not available`` and hangs up."""
    with _server_module("smtp").RawSMTPServer(
        "421 4.3.2 mx.angles.test Service not available, closing transmission channel\r\n"
    ) as server:
        yield server
