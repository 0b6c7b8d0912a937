"""The ``http`` check: an HTTP endpoint answers with the expected status (and JSON field).

.. code-block:: yaml

    checks:
      - name: api
        type: http
        url: https://api.example.com/health
        expect_status: [200, 204]          # default 200
        headers: {Authorization: "Bearer ${API_TOKEN}"}   # values are kept secret
        json_path: status                  # optional: a field of the JSON body…
        expect: ok                         # …and the value it must have
        warn_latency_ms: 1500

One request, no retries: a health check reports what a user would have met. ``json_path``
is dot-separated (``checks.0.state``; a number indexes a list); with ``expect`` the field
must equal it, without ``expect`` it only has to exist.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from angles import Check, CheckResult, hookimpl

_MISSING = object()


class HttpCheck(Check):
    """One request to ``url``: status, optionally a JSON field, and latency."""

    type = "http"
    description = "An HTTP endpoint answers with the expected status (and JSON field value)."
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "The URL to request.",
            },
            "method": {
                "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                "description": "The HTTP method (default GET).",
            },
            "expect_status": {
                "oneOf": [
                    {"type": "integer", "minimum": 100, "maximum": 599},
                    {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 100, "maximum": 599},
                        "minItems": 1,
                    },
                ],
                "description": "The status code, or a list of them, that means healthy (default 200).",
            },
            "headers": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "secret": True,
                "description": "Request headers; their values are kept out of logs and reports.",
            },
            "json_path": {
                "type": "string",
                "minLength": 1,
                "description": "A dot-separated path to a field of the JSON body, e.g. status.",
            },
            "expect": {
                "type": ["string", "number", "boolean", "null"],
                "description": "The value the json_path field must have (default: it must exist).",
            },
            "warn_latency_ms": {
                "type": "integer",
                "minimum": 1,
                "description": "A warning when the answer takes longer than this.",
            },
        },
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        if "expect" in config and "json_path" not in config:
            return [("expect", "needs json_path: the JSON field to compare")]
        return []

    def run(self) -> CheckResult:
        import httpx

        from angles.helpers import excerpt, network_failure

        url, method = self.config["url"], self.config.get("method", "GET")
        expected = self.config.get("expect_status", 200)
        expected = [expected] if isinstance(expected, int) else list(expected)
        details: dict[str, Any] = {"url": url, "method": method}
        started = time.perf_counter()
        client = self.context.http_client("HTTP", timeout=self.timeout)
        allowed = self.context.budget.bound(self.timeout)
        try:
            with self.context.activity.doing("HTTP", f"{method} {url}"):
                response = client.request(
                    method, url, headers=self.config.get("headers") or {}, timeout=allowed
                )
        except httpx.HTTPError as exc:
            message = network_failure(exc, self.timeout)[0]
            if allowed < self.timeout and isinstance(exc, httpx.TimeoutException):
                message = f"no answer before {self.context.budget.spent_text()}"
            return CheckResult.error(f"{method} {url}: {message}", **details)
        latency_ms = round((time.perf_counter() - started) * 1000)
        details.update(status_code=response.status_code, latency_ms=latency_ms)
        if response.status_code not in expected:
            wanted = " or ".join(map(str, expected))
            body = excerpt(response.text)
            return CheckResult.error(
                f"{method} {url}: HTTP {response.status_code} (expected {wanted})"
                + (f": {body}" if body else ""),
                **details,
            )
        if "json_path" in self.config:
            problem = self._check_json(response.text, details)
            if problem:
                return CheckResult.error(f"{method} {url}: {problem}", **details)
        warn = self.config.get("warn_latency_ms")
        if warn and latency_ms > warn:
            return CheckResult.warning(
                f"{method} {url}: HTTP {response.status_code} in {latency_ms} ms "
                f"(warning above {warn} ms)",
                **details,
            )
        return CheckResult.ok(
            f"{method} {url}: HTTP {response.status_code} in {latency_ms} ms", **details
        )

    def _check_json(self, text: str, details: dict[str, Any]) -> str | None:
        """Why the JSON condition fails, or None when it holds."""
        path = self.config["json_path"]
        try:
            document = json.loads(text)
        except ValueError:
            return f"the body is not JSON, so {path!r} cannot be read"
        value = json_field(document, path)
        if value is _MISSING:
            return f"the JSON body has no field {path!r}"
        details["value"] = value
        if "expect" not in self.config:
            return None
        wanted = self.config["expect"]
        if not same_value(value, wanted):
            return f"{path} is {json.dumps(value, ensure_ascii=False)}, expected {json.dumps(wanted, ensure_ascii=False)}"
        return None


def json_field(document: Any, path: str) -> Any:
    """The value at a dot-separated ``path`` (``$.`` prefix allowed), or a sentinel when
    there is none."""
    value = document
    for part in path.removeprefix("$").removeprefix(".").split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def same_value(value: Any, wanted: Any) -> bool:
    """Equal as JSON values; a string ``wanted`` also matches a number or boolean written
    the same way (``"200"`` matches 200, ``"true"`` matches true)."""
    if isinstance(value, bool) == isinstance(wanted, bool) and value == wanted:
        return True
    return isinstance(wanted, str) and not isinstance(value, str) and json.dumps(value) == wanted


@hookimpl
def angles_register_checks(register: Any) -> None:
    register(HttpCheck)
