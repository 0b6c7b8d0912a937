"""angles' HTTP client: one per service per run, retries within the budget, clear failures."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from angles import ServiceError
from angles.core.context import Context
from angles.core.pipeline import Pipeline
from angles.core.plugins import load_plugins
from angles.core.retry import Budget
from angles.helpers import network_failure, request


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def context(tmp_path: Path):
    def make(**defaults) -> Context:
        document = {"version": 1, "defaults": {"timeout_seconds": 2, **defaults}}
        return Context(Pipeline(tmp_path / "angles.yaml", document), load_plugins())

    return make


def post(context: Context, url: str, **options) -> httpx.Response:
    client = context.http_client("Webhook")
    return request(
        client, "POST", url, service="Webhook", redact=context.redact, what="posting", **options
    )


def test_one_client_per_service_closed_with_the_run(context):
    run = context()
    client = run.http_client("Slack")
    with client:  # a plugin closing it does not take it from the others
        pass
    assert run.http_client("Slack") is client
    assert run.http_client("Webhook") is not client
    assert not client.is_closed
    run.close()
    assert client.is_closed


def test_a_429_is_retried_after_its_retry_after(context, webhook_server):
    webhook_server.fail(status=429, headers={"Retry-After": "1"}, body="slow down")
    started = time.monotonic()
    assert post(context(), webhook_server.url).status_code == 200
    assert 0.9 < time.monotonic() - started < 3
    assert len(webhook_server.requests) == 2


def test_a_retry_after_beyond_the_run_budget_is_not_waited_for(context, webhook_server):
    webhook_server.fail(status=429, headers={"Retry-After": "60"}, body="slow down")
    run = context()
    run.budget = Budget(10)  # as the runner sets it: 10 s left of the run
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        post(run, webhook_server.url)
    assert time.monotonic() - started < 2
    assert len(webhook_server.requests) == 1
    assert str(caught.value).startswith(
        "Webhook: posting: HTTP 429: slow down; not retried: the next try asked for a 60s wait"
    )


def test_a_stalled_service_costs_attempts_times_the_timeout(context, webhook_server):
    webhook_server.fail(delay=3, times=10)
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        post(context(), webhook_server.url, retries=1, backoff=0.1, timeout=0.3)
    elapsed = time.monotonic() - started
    assert str(caught.value).startswith("Webhook: posting: no answer within 0.3s; tried 2 times")
    assert 0.6 < elapsed < 1.5
    assert len(webhook_server.requests) == 2


def test_an_html_error_page_is_one_readable_line(context, webhook_server):
    page = "<!DOCTYPE html><html><head><style>p{}</style><title>502</title></head>"
    page += "<body><h1>Bad   Gateway</h1>\n<p>nginx</p></body></html>"
    webhook_server.fail(status=502, body=page, headers={"Content-Type": "text/html"}, times=3)
    with pytest.raises(ServiceError) as caught:
        post(context(), webhook_server.url, retries=0)
    assert str(caught.value) == "Webhook: posting: HTTP 502: 502 Bad Gateway nginx"


def test_refused_tls_and_dns_failures_are_told_apart(context, webhook_server):
    with pytest.raises(ServiceError) as refused:
        post(context(), f"http://127.0.0.1:{closed_port()}/", retries=0)
    assert "posting: connection refused" in str(refused.value)
    with pytest.raises(ServiceError) as tls:  # TLS spoken to a plain HTTP server
        post(context(), webhook_server.url.replace("http:", "https:"), retries=0)
    assert "posting: TLS error" in str(tls.value)
    assert "refused" not in str(tls.value)


def test_a_spent_budget_sends_nothing(context, webhook_server):
    run = context()
    run.budget = Budget(0)
    with pytest.raises(ServiceError) as caught:
        post(run, webhook_server.url)
    assert str(caught.value).startswith(
        "Webhook: posting: not tried: the run's time limit (defaults.run_timeout: 0s) was spent"
    )
    assert webhook_server.requests == []


def test_a_request_in_flight_ends_with_the_budget(context, webhook_server):
    webhook_server.fail(delay=10, times=10)
    run = context()
    run.budget = Budget(1)
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        post(run, webhook_server.url, timeout=30)
    assert time.monotonic() - started < 2
    # nothing is left for another try: not retried, and the message says why it ended
    assert len(webhook_server.requests) == 1
    assert str(caught.value).startswith(
        "Webhook: posting: no answer before the run's time limit (defaults.run_timeout: 1s) "
        "was spent"
    )


def test_a_name_that_does_not_resolve_is_called_dns():
    # the error httpx raises for an unknown host (no lookup is made here: no network)
    try:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError(str(exc)) from exc
    except httpx.ConnectError as error:
        message, hint, transient = network_failure(error, 30)
    assert message == "the host name does not resolve (DNS)"
    assert not transient and "host name" in hint


def test_a_dropped_connection_is_not_a_refusal(context, webhook_server):
    webhook_server.fail(drop=True)
    with pytest.raises(ServiceError) as caught:
        post(context(), webhook_server.url, retries=0)
    assert "posting: the connection was closed without an answer" in str(caught.value)
