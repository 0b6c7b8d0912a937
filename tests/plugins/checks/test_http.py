"""The ``http`` check against a small endpoint on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from angles.plugins.checks.http import json_field, same_value
from angles.testing.server import RecordedRequest, Response, ServiceServer


class Endpoint(ServiceServer):
    """Answers every request with ``self.answer`` (faults from ServiceServer apply first)."""

    name = "endpoint"

    def __init__(self) -> None:
        super().__init__()
        self.answer = Response.json({"status": "ok", "checks": [{"state": "up"}], "count": 3})

    def handle(self, request: RecordedRequest) -> Response:
        return self.answer


@pytest.fixture(scope="module")
def _endpoint() -> Iterator[Endpoint]:
    with Endpoint() as server:
        yield server


@pytest.fixture
def endpoint(_endpoint: Endpoint) -> Endpoint:
    _endpoint.clear()
    _endpoint.answer = Response.json({"status": "ok", "checks": [{"state": "up"}], "count": 3})
    return _endpoint


@pytest.fixture
def run_check(endpoint, angles_cli, pipeline_file):
    def run(extra: str = "", *args: str, url: str | None = None):
        text = (
            "version: 1\nlog_dir: logs\nchecks:\n  - name: api\n    type: http\n"
            f"    url: {url or endpoint.url + '/health'}\n"
            + "".join(f"    {line}\n" for line in extra.splitlines() if line)
        )
        result = angles_cli("check", pipeline_file(text), "--format", "json", *args)
        [check] = result.json()["checks"]
        return result, check

    return run


def test_a_healthy_endpoint_is_ok(endpoint, run_check):
    result, check = run_check()
    assert (result.exit_code, check["status"]) == (0, "ok"), check
    assert check["message"].startswith(f"GET {endpoint.url}/health: HTTP 200 in ")
    assert check["details"]["status_code"] == 200
    [request] = endpoint.requests
    assert (request.method, request.path) == ("GET", "/health")
    assert request.header("user-agent").startswith("angles/")


def test_an_unexpected_status_is_an_error_with_the_body(endpoint, run_check):
    endpoint.answer = Response(503, b"database unavailable")
    result, check = run_check()
    assert result.exit_code == 2
    assert check["message"].endswith("HTTP 503 (expected 200): database unavailable")
    assert len(endpoint.requests) == 1  # no retries: the check reports what users meet


def test_expect_status_takes_a_list(endpoint, run_check):
    endpoint.answer = Response(204)
    result, check = run_check("expect_status: [200, 204]\nmethod: HEAD")
    assert (result.exit_code, check["details"]["status_code"]) == (0, 204)
    assert endpoint.requests[0].method == "HEAD"


@pytest.mark.parametrize(
    ("extra", "status", "message"),
    [
        ("json_path: status\nexpect: ok", "ok", None),
        ("json_path: checks.0.state\nexpect: up", "ok", None),
        ('json_path: count\nexpect: "3"', "ok", None),
        ("json_path: count", "ok", None),
        ("json_path: status\nexpect: degraded", "error", 'status is "ok", expected "degraded"'),
        ("json_path: missing.field", "error", "the JSON body has no field 'missing.field'"),
    ],
)
def test_a_condition_on_a_json_field(run_check, extra, status, message):
    _, check = run_check(extra)
    assert check["status"] == status, check
    if message:
        assert check["message"].endswith(message)


def test_a_body_that_is_not_json_fails_a_json_condition(endpoint, run_check):
    endpoint.answer = Response(200, b"<html>ok</html>")
    _, check = run_check("json_path: status\nexpect: ok")
    assert check["message"].endswith("the body is not JSON, so 'status' cannot be read")


def test_slow_answers_warn_and_overruns_fail(endpoint, run_check):
    endpoint.fail(delay=0.15)
    result, check = run_check("warn_latency_ms: 50")
    assert (result.exit_code, check["status"]) == (1, "warning")
    assert "(warning above 50 ms)" in check["message"]
    endpoint.fail(delay=1.0)
    result, check = run_check("timeout_seconds: 0.3")
    assert result.exit_code == 2
    assert check["message"].endswith("no answer within 0.3s") or "timed out" in check["message"]


def test_an_unreachable_endpoint_is_an_error(run_check):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result, check = run_check(url=f"http://127.0.0.1:{port}/")
    assert result.exit_code == 2
    assert check["message"].endswith(": connection refused")


def test_header_values_are_sent_but_never_shown(endpoint, run_check, tmp_path, monkeypatch):
    monkeypatch.setenv("API_TOKEN", "tok-3f9a-very-secret")
    endpoint.answer = Response(401, b'{"error": "bad token tok-3f9a-very-secret"}')
    result, _ = run_check('headers: {Authorization: "Bearer ${API_TOKEN}"}')
    assert endpoint.requests[0].header("authorization") == "Bearer tok-3f9a-very-secret"
    assert result.exit_code == 2
    logs = "".join(p.read_text() for p in Path(tmp_path / "logs").iterdir())
    assert "tok-3f9a-very-secret" not in result.output + logs


def test_test_mode_contacts_nothing(endpoint, run_check):
    result, check = run_check("", "--test")
    assert result.exit_code == 2 and check["message"].startswith("[TEST]")
    assert endpoint.requests == []


def test_expect_without_json_path_is_a_pipeline_error(endpoint, angles_cli, pipeline_file):
    text = f"version: 1\nchecks:\n  - {{name: api, type: http, url: {endpoint.url}, expect: ok}}\n"
    result = angles_cli("validate", pipeline_file(text))
    assert result.exit_code == 3
    assert "checks[0].expect: needs json_path" in result.stderr


def test_json_fields_and_values():
    document = json.loads('{"a": {"b": [10, {"c": true}]}, "n": null}')
    assert json_field(document, "a.b.1.c") is True
    assert json_field(document, "$.a.b.-2") == 10
    assert json_field(document, "n") is None
    assert json_field(document, "a.b.5") is not None  # the missing sentinel
    assert same_value(True, "true") and same_value(200, "200") and same_value(None, None)
    assert not same_value(1, True) and not same_value("1", 1) and not same_value(True, 1)
