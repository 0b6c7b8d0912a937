"""The HTTP client angles hands to plugins: timeouts, a user agent, retries, clear errors."""

from __future__ import annotations

import time
from typing import Any

import httpx

from angles.core.errors import ServiceError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 522, 524})
MAX_RETRY_AFTER_SECONDS = 60.0


def user_agent() -> str:
    from importlib import metadata

    try:
        version = metadata.version("angles")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"angles/{version}"


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
    retries: int = 2,
    backoff: float = 1.0,
    hint: str | None = None,
    **options: Any,
) -> httpx.Response:
    """Send a request, retrying 429 and 5xx (honouring ``Retry-After``) and timeouts.

    Returns the successful response; raises :class:`ServiceError` naming the service,
    the HTTP status and a short excerpt of the body (or the network failure).
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
                service, f"timed out after {_timeout_of(client)}s", hint=hint or "is it up?"
            ) from exc
        except httpx.TransportError as exc:
            raise ServiceError(
                service,
                f"could not connect ({type(exc).__name__})",
                hint=hint or "check the URL and that the service is reachable",
            ) from exc
        if response.status_code in RETRY_STATUSES and attempt < retries:
            attempt += 1
            time.sleep(retry_delay(response, backoff * 2 ** (attempt - 1)))
            continue
        if response.is_error:
            raise ServiceError(service, describe_failure(response), hint=hint)
        return response


def retry_delay(response: httpx.Response, default: float) -> float:
    """Seconds to wait before retrying: ``Retry-After`` when the server gave it."""
    value = response.headers.get("Retry-After")
    try:
        return min(float(value), MAX_RETRY_AFTER_SECONDS) if value is not None else default
    except ValueError:
        return default


def describe_failure(response: httpx.Response) -> str:
    """``HTTP 404: channel_not_found`` — the status and a short excerpt of the body."""
    return f"HTTP {response.status_code}: {excerpt(response.text) or response.reason_phrase}"


def excerpt(text: str, limit: int = 200) -> str:
    """The start of a response body on one line, for an error message."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _timeout_of(client: httpx.Client) -> float | None:
    return client.timeout.read
