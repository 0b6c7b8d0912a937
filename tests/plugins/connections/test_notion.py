"""The ``notion`` connection: notion-client 3 against the Notion imitation on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from angles import ServiceError
from angles.core.config import load_pipeline
from angles.core.context import Context
from angles.core.plugins import load_plugins
from angles.plugins.connections.notion import RateLimiter


@pytest.fixture
def connect(tmp_path: Path, notion_server):
    """A ``notion`` connection to the imitation, made the way a run makes it."""
    contexts: list[Context] = []

    def make(**options: Any) -> Any:
        config = {"type": "notion", "token": notion_server.token, "api_url": notion_server.url}
        config.update(options)
        path = tmp_path / "angles.yaml"
        path.write_text(json.dumps({"version": 1, "connections": {"notion": config}}))
        plugins = load_plugins()
        context = Context(load_pipeline(path, plugins, environ={}), plugins)
        contexts.append(context)
        return context.connection("notion")

    yield make
    for context in contexts:
        context.close()


def pages(n: int) -> list[dict[str, Any]]:
    return [{"Name": f"Decision {i}", "Done": i % 2 == 0} for i in range(n)]


def test_reads_a_database_through_its_data_source(notion_server, connect):
    database_id, source_id = notion_server.add_database(
        "Decisions", properties={"Name": "title", "Done": "checkbox"}, pages=pages(250)
    )
    notion = connect()
    assert notion.me()["type"] == "bot"
    assert notion.data_source_id(database_id) == source_id
    assert set(notion.retrieve_data_source(source_id)["properties"]) == {"Name", "Done"}
    rows = list(notion.query(source_id))
    assert len(rows) == 250
    queries = notion_server.requests_to(r"/query$", "POST")
    assert [q.json().get("start_cursor") is None for q in queries] == [True, False, False]
    assert all(q.json()["page_size"] == 100 for q in queries)
    assert all(q.header("notion-version") == "2025-09-03" for q in notion_server.requests)


def test_query_passes_filters_and_stops_at_a_limit(notion_server, connect):
    _, source_id = notion_server.add_database(
        properties={"Name": "title", "Done": "checkbox"}, pages=pages(10)
    )
    notion = connect()
    undone = {"property": "Done", "checkbox": {"equals": False}}
    assert len(list(notion.query(source_id, filter=undone))) == 5
    assert len(list(notion.query(source_id, page_size=2, limit=3))) == 3
    assert len(notion_server.requests_to(r"/query$")) == 3


def test_several_data_sources_need_a_choice(notion_server, connect):
    database_id, first = notion_server.add_database("Hub", data_source_name="Decisions")
    second = notion_server.add_data_source(database_id, "Archive")
    notion = connect()
    with pytest.raises(ServiceError) as caught:
        notion.data_source_id(database_id)
    assert "has 2 data sources ('Decisions', 'Archive')" in str(caught.value)
    assert "data_source:" in str(caught.value)
    assert notion.data_source_id(database_id, "Archive") == second
    assert notion.data_source_id(database_id, first.replace("-", "")) == first
    with pytest.raises(ServiceError, match="no data source 'Nope'"):
        notion.data_source_id(database_id, "Nope")


def test_a_bad_token_says_to_check_notion_api_key(notion_server, connect):
    notion = connect(token="ntn_not-the-right-one")
    with pytest.raises(ServiceError) as caught:
        notion.me()
    message = str(caught.value)
    assert message.startswith("Notion: checking the token: HTTP 401 unauthorized")
    assert "check NOTION_API_KEY" in message
    assert len(notion_server.requests) == 1  # a 401 is not retried


def test_an_unshared_database_says_to_share_it(notion_server, connect):
    database_id, _ = notion_server.add_database("Private")
    notion_server.share(database_id, False)
    with pytest.raises(ServiceError) as caught:
        connect().retrieve_database(database_id)
    message = str(caught.value)
    assert "HTTP 404 object_not_found" in message
    assert "share the database with the integration" in message


def test_rate_limits_are_retried_after_retry_after(notion_server, connect):
    notion_server.rate_limited(times=2, retry_after=0)
    assert connect().me()["object"] == "user"
    assert [r.path for r in notion_server.requests] == ["/v1/users/me"] * 3


def test_retry_after_is_honoured(notion_server, connect):
    notion_server.rate_limited(times=1, retry_after=1)
    started = time.perf_counter()
    connect().me()
    assert time.perf_counter() - started >= 0.95


def test_rate_limits_that_last_are_a_clear_error(notion_server, connect):
    notion_server.rate_limited(times=3, retry_after=0)
    with pytest.raises(ServiceError) as caught:
        connect().me()
    assert "checking the token: rate limited (HTTP 429); tried 3 times" in str(caught.value)
    assert len(notion_server.requests) == 3


def test_requests_are_paced_under_notions_rate_limit(notion_server, connect):
    # The server allows 3 requests a second, like Notion (one token of slack for timer
    # jitter over our burst of 5); 10 requests must all pass without a single 429.
    notion_server.limit_rate(3.0, burst=6, retry_after=0)
    _, source_id = notion_server.add_database(
        properties={"Name": "title", "Done": "checkbox"}, pages=pages(10)
    )
    notion = connect()
    started = time.perf_counter()
    assert len(list(notion.query(source_id, page_size=1))) == 10
    assert time.perf_counter() - started >= 1.4
    assert len(notion_server.requests) == 10


def test_the_rate_limiter_allows_a_burst_then_paces():
    limiter = RateLimiter(rate=50.0, burst=3)
    started = time.perf_counter()
    waits = [limiter.wait() for _ in range(8)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert time.perf_counter() - started >= 0.09


def test_a_slow_answer_times_out_naming_the_operation(notion_server, connect):
    notion_server.fail(path="/v1/users/me", delay=1.0, times=2)
    with pytest.raises(ServiceError) as caught:
        connect(timeout_seconds=0.2, retries=1).me()
    assert str(caught.value).startswith(
        "Notion: checking the token: no answer within 0.2s; tried 2 times"
    )
    assert len(notion_server.requests_to("/v1/users/me")) == 2


def test_a_timeout_is_tried_again(notion_server, connect):
    notion_server.fail(path="/v1/users/me", delay=1.0)
    assert connect(timeout_seconds=0.2).me()["object"] == "user"


def test_an_unreachable_api_is_named(connect):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ServiceError) as caught:
        connect(api_url=f"http://127.0.0.1:{port}").me()
    assert f"checking the token: connection refused at http://127.0.0.1:{port}" in str(caught.value)


def test_an_html_error_page_is_reported_with_its_status(notion_server, connect):
    notion_server.fail(
        path="/v1/users/me", status=502, body="<html><body><h1>Bad Gateway</h1></body></html>"
    )
    with pytest.raises(ServiceError) as caught:
        connect(retries=0).me()
    assert str(caught.value).startswith("Notion: checking the token: HTTP 502 (Bad Gateway)")


def test_a_server_error_is_tried_again(notion_server, connect):
    notion_server.fail(path="/v1/users/me", status=503, body="<html>down</html>")
    assert connect().me()["object"] == "user"
    assert len(notion_server.requests_to("/v1/users/me")) == 2


def test_notion_client_logs_nothing_and_adds_no_handlers(notion_server, connect, capsys):
    before = list(logging.getLogger("notion_client").handlers)
    notion_server.rate_limited(times=1, retry_after=0)
    for _ in range(3):
        connect().me()
    assert logging.getLogger("notion_client").handlers == before
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""
