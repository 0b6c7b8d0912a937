"""The HTTP client angles hands to plugins: timeouts, a user agent, retries, clear errors."""

from __future__ import annotations

import functools
import re
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from angles.core.errors import ServiceError
from angles.core.retry import UNLIMITED, Budget, RetryPolicy, parse_retry_after, with_retries
from angles.core.text import excerpt

if TYPE_CHECKING:
    from angles.core.context import Context

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 522, 524})

#: A fixed hint, or one chosen from the failed response (None when there was none).
Hint = str | Callable[[httpx.Response | None], str | None] | None


def user_agent() -> str:
    from angles.core.version import version

    return f"angles/{version()}"


def http_client(
    service: str,
    *,
    timeout: float = 30.0,
    client_class: type[httpx.Client] = httpx.Client,
    **options: Any,
) -> httpx.Client:
    """An :class:`httpx.Client` for ``service`` with angles' user agent and a timeout."""
    headers = {"User-Agent": user_agent(), **options.pop("headers", {})}
    return client_class(timeout=timeout, headers=headers, **options)


@functools.cache
def shared_client_class() -> type[httpx.Client]:
    """The client a :class:`~angles.Context` shares for one service during a run.

    Closing it (or leaving a ``with`` block) does nothing: the context closes it, with
    the run. It knows its context, so :func:`request` bounds retries by the run's budget.
    """

    class SharedClient(httpx.Client):
        angles_context: Context | None = None

        def __enter__(self) -> SharedClient:
            return self

        def __exit__(self, *exc_info: object) -> None:
            pass

        def close(self) -> None:
            pass

        def release(self) -> None:
            httpx.Client.close(self)

    return SharedClient


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
    what: str | None = None,
    budget: Budget | None = None,
    **options: Any,
) -> httpx.Response:
    """Send a request, retrying 429 and 5xx (honouring ``Retry-After``), timeouts and
    refused connections, as the run's :class:`~angles.core.retry.RetryPolicy` says.

    Returns the successful response; raises :class:`ServiceError` naming the service,
    what was being done (``what``, default the method and host: a URL may hold a
    secret), and the HTTP status with a short, secret-free excerpt of the body, or the
    network failure. ``hint`` is a string or a function of the failed response (None for
    a network failure) that says what to check; ``redact`` (the plugin's
    ``context.redact``) removes secret values from the excerpt. With a client from
    ``context.http_client`` every wait and timeout fits in what is left of the run.
    """
    context = getattr(client, "angles_context", None)
    budget = budget or (context.budget if context is not None else UNLIMITED)
    operation = what or f"{method} {urlsplit(url).netloc or url}"
    timeout = float(options.pop("timeout", None) or _timeout_of(client))
    policy = RetryPolicy.with_retries(retries, backoff=backoff)

    def send() -> httpx.Response:
        budget.require(service, operation)
        allowed = budget.bound(timeout)
        try:
            response = client.request(method, url, timeout=allowed, **options)
        except httpx.TransportError as exc:
            message, default_hint, transient = network_failure(exc, allowed)
            if allowed < timeout and isinstance(exc, httpx.TimeoutException):
                # cut by the run's budget: nothing is left for another try
                message, transient = f"no answer before {budget.spent_text()}", False
            raise ServiceError(
                service,
                f"{operation}: {message}",
                hint=_hint(hint, None) or default_hint,
                transient=transient,
            ) from exc
        if response.is_error:
            raise ServiceError(
                service,
                f"{operation}: {describe_failure(response, redact)}",
                hint=_hint(hint, response),
                transient=response.status_code in RETRY_STATUSES,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return response

    if context is None:
        return with_retries(send, policy=policy, budget=budget)
    with context.activity.doing(service, operation):
        return with_retries(send, policy=policy, budget=budget)


def _hint(hint: Hint, response: httpx.Response | None) -> str | None:
    return hint(response) if callable(hint) else hint


def network_failure(exc: BaseException, timeout: float) -> tuple[str, str, bool]:
    """What went wrong below HTTP, told apart for people: ``(message, hint, transient)``.

    No answer in time, a name that does not resolve, a TLS failure, a refused
    connection and a connection closed without an answer each read differently, for
    any client library (the causes are walked down to the socket error).
    """
    causes = _causes(exc)
    text = " ".join(str(cause) for cause in causes)
    if any(isinstance(c, socket.gaierror) for c in causes) or _DNS_WORDS.search(text):
        return (
            "the host name does not resolve (DNS)",
            "check the host name in the URL, and the machine's DNS",
            False,
        )
    if any(isinstance(c, ssl.SSLError | ssl.CertificateError) for c in causes) or (
        "SSL" in text or "certificate" in text
    ):
        reason = next((c for c in causes if isinstance(c, ssl.SSLError)), None)
        detail = getattr(reason, "reason", None) or "the TLS handshake failed"
        return (
            f"TLS error ({str(detail).replace('_', ' ').lower()})",
            "check that the URL's scheme (https) and port are right and the certificate valid",
            False,
        )
    if any(_is_timeout(c) for c in causes):
        return f"no answer within {timeout:g}s", "is the service up? raise timeout_seconds", True
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text:
        return (
            "connection refused",
            "is the service running? check the URL and port",
            True,
        )
    return (
        "the connection was closed without an answer",
        "the service or a proxy in between dropped the request; try again later",
        False,
    )


_DNS = r"Name or service not known|nodename nor servname|Temporary failure in name resolution"
_DNS_WORDS = re.compile(f"{_DNS}|getaddrinfo failed|No address associated")


def _is_timeout(exc: BaseException) -> bool:
    name = type(exc).__name__
    return isinstance(exc, TimeoutError | socket.timeout) or "Timeout" in name


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it (causes, contexts, urllib3's ``reason``)."""
    seen: list[BaseException] = []
    pending: list[Any] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
    return seen


def describe_failure(response: httpx.Response, redact: Callable[[str], str]) -> str:
    """``HTTP 404: channel_not_found`` — the status and a short excerpt of the body.

    ``redact`` (a plugin's ``context.redact``) removes known secret values from the
    excerpt: a server may echo the request. An HTML page is reduced to its text.
    """
    body = redact(readable_body(response.text, response.headers.get("Content-Type", "")))
    return f"HTTP {response.status_code}: {excerpt(body) or response.reason_phrase}"


def readable_body(text: str, content_type: str = "") -> str:
    """A response body as a person would read it: an HTML page's title and text."""
    import html

    if "html" not in content_type.lower() and not text.lstrip()[:15].lower().startswith(
        ("<!doctype", "<html")
    ):
        return text
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
    return html.unescape(re.sub(r"(?s)<[^>]*>", " ", text))


def _timeout_of(client: httpx.Client) -> float:
    return client.timeout.read or 30.0
