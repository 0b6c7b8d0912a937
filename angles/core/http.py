"""The HTTP client angles hands to plugins: timeouts, a user agent, retries, clear errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from angles.core.errors import ServiceError
from angles.core.text import excerpt

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 522, 524})
MAX_RETRY_AFTER_SECONDS = 60.0

#: A fixed hint, or one chosen from the failed response (None when there was none).
Hint = str | Callable[[httpx.Response | None], str | None] | None


def user_agent() -> str:
    from angles.core.version import version

    return f"angles/{version()}"


def http_client(service: str, *, timeout: float = 30.0, **options: Any) -> httpx.Client:
    """An :class:`httpx.Client` for ``service`` with angles' user agent and a timeout."""
    headers = {"User-Agent": user_agent(), **options.pop("headers", {})}
    return httpx.Client(timeout=timeout, headers=headers, **options)


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    service: str,
    redact: Callable[[str], str],
    retries: int = 2,
    backoff: float = 1.0,
    hint: Hint = None,
    **options: Any,
) -> httpx.Response:
    """Send a request, retrying 429 and 5xx (honouring ``Retry-After``), timeouts and
    refused connections.

    Returns the successful response; raises :class:`ServiceError` naming the service,
    the HTTP status and a short, secret-free excerpt of the body (or the network
    failure). ``hint`` is a string or a function of the failed response (None for a
    network failure) that says what to check. ``redact`` (the plugin's ``context.redact``)
    removes secret values from the excerpt.
    """
    attempt = 0
    while True:
        try:
            response = client.request(method, url, **options)
        except httpx.TimeoutException as exc:
            if attempt < retries:
                attempt += 1
                time.sleep(backoff * 2 ** (attempt - 1))
                continue
            raise ServiceError(
                service,
                f"timed out after {_timeout_of(client):g}s",
                hint=_hint(hint, None) or "is it up?",
            ) from exc
        except httpx.TransportError as exc:
            # A refused connection sent nothing, so trying again cannot duplicate anything.
            if isinstance(exc, httpx.ConnectError) and attempt < retries:
                attempt += 1
                time.sleep(backoff * 2 ** (attempt - 1))
                continue
            raise ServiceError(
                service,
                f"could not connect ({type(exc).__name__})",
                hint=_hint(hint, None) or "check the URL and that the service is reachable",
            ) from exc
        if response.status_code in RETRY_STATUSES and attempt < retries:
            attempt += 1
            time.sleep(retry_delay(response, backoff * 2 ** (attempt - 1)))
            continue
        if response.is_error:
            raise ServiceError(
                service, describe_failure(response, redact), hint=_hint(hint, response)
            )
        return response


def _hint(hint: Hint, response: httpx.Response | None) -> str | None:
    return hint(response) if callable(hint) else hint


def retry_delay(response: httpx.Response, default: float) -> float:
    """Seconds to wait before retrying: ``Retry-After`` (seconds or an HTTP date) when the
    server gave it, at most :data:`MAX_RETRY_AFTER_SECONDS`."""
    value = response.headers.get("Retry-After")
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def describe_failure(response: httpx.Response, redact: Callable[[str], str]) -> str:
    """``HTTP 404: channel_not_found`` — the status and a short excerpt of the body.

    ``redact`` (a plugin's ``context.redact``) removes known secret values from the
    excerpt: a server may echo the request.
    """
    body = redact(response.text)
    return f"HTTP {response.status_code}: {excerpt(body) or response.reason_phrase}"


def _timeout_of(client: httpx.Client) -> float:
    return client.timeout.read or 0.0
