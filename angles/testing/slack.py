"""An imitation of Slack incoming webhooks (``POST /services/T…/B…/…``).

A valid message gets ``200 ok`` (text/plain); errors are a status plus a bare error string,
as Slack sends them: ``400 invalid_payload``, ``400 no_text``, ``400 invalid_blocks``,
``404 no_service``, ``410 channel_is_archived``, ``429`` with ``Retry-After``. The block
checks follow the documented Block Kit limits (50 blocks, section text 3000 characters,
header 150, ...). See ``/work/shared/reference/services.md`` §3.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from angles.testing.server import Fault, RateLimiter, RecordedRequest, Response, ServiceServer

__all__ = ["SlackDelivery", "SlackWebhookServer"]

MAX_BLOCKS = 50
MAX_ATTACHMENTS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID = 255
_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)
_TEXT_OBJECT_TYPES = frozenset({"plain_text", "mrkdwn"})


@dataclass
class SlackDelivery:
    """A message the webhook accepted: the hook URL it was posted to and the payload."""

    webhook_url: str
    payload: dict[str, Any]

    @property
    def text(self) -> str | None:
        """The top-level ``text`` (the notification and fallback text)."""
        return self.payload.get("text")


class _SlackError(Exception):
    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers or {}


class SlackWebhookServer(ServiceServer):
    """Slack incoming webhooks on 127.0.0.1.

    ``webhook_url`` is a valid hook; :meth:`add_webhook` makes more. Accepted payloads are
    in ``messages`` (parsed dicts, in order) and ``deliveries`` (with the hook URL).
    :meth:`archive`, :meth:`revoke`, :meth:`limit_rate` and :meth:`rate_limited` reproduce
    the failures a sender must handle; ``fail()`` from :class:`ServiceServer` does the rest
    (e.g. ``fail(status=500, body="rollup_error")``).
    """

    name = "slack"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.messages: list[dict[str, Any]] = []
        self.deliveries: list[SlackDelivery] = []
        self._hooks: dict[str, str] = {}  # path -> "active" | "archived" | "revoked"
        self._hook_lock = threading.Lock()
        self._limiter: RateLimiter | None = None
        self._limiter_retry_after: int | None = None
        self.webhook_path = self._new_hook_path()

    @property
    def webhook_url(self) -> str:
        """The URL of the default webhook (valid until archived or revoked)."""
        return self.url + self.webhook_path

    # -- test helpers ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget messages, log and faults; only the default hook, active; no rate limit."""
        self.clear()
        with self._hook_lock:
            self.messages.clear()
            self.deliveries.clear()
            self._hooks = {self.webhook_path: "active"}
        self.limit_rate(None)

    def add_webhook(self) -> str:
        """Create another valid webhook and return its URL."""
        return self.url + self._new_hook_path()

    def archive(self, webhook_url: str | None = None) -> None:
        """Archive the hook's channel: posts get ``410 channel_is_archived``."""
        self._set_state(webhook_url, "archived")

    def revoke(self, webhook_url: str | None = None) -> None:
        """Revoke or disable the hook: posts get ``404 no_service``."""
        self._set_state(webhook_url, "revoked")

    def restore(self, webhook_url: str | None = None) -> None:
        """Make an archived or revoked hook valid again."""
        self._set_state(webhook_url, "active")

    def limit_rate(
        self, rate: float | None = 1.0, burst: int = 3, retry_after: int | None = None
    ) -> None:
        """Switch the built-in limit on (``rate`` messages/s, bursts of ``burst``) or off.

        Over the limit the answer is 429 with ``Retry-After``: whole seconds until a
        message would pass (at least 1), or ``retry_after`` when given.
        """
        self._limiter = RateLimiter(rate, burst) if rate else None
        self._limiter_retry_after = retry_after

    def rate_limited(self, times: int = 1, retry_after: int = 1) -> Fault:
        """Answer the next ``times`` posts with 429 and ``Retry-After: retry_after``."""
        return self.fail(
            method="POST",
            times=times,
            status=429,
            body="rate_limited",
            headers={"Retry-After": str(retry_after), "Content-Type": "text/plain"},
        )

    def messages_to(self, webhook_url: str) -> list[dict[str, Any]]:
        """The payloads accepted on one hook."""
        return [d.payload for d in list(self.deliveries) if d.webhook_url == webhook_url]

    # -- the service -----------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Response:
        """Validate and accept (or refuse) one webhook post."""
        try:
            payload = self._accept(request)
        except _SlackError as exc:
            headers = {"Content-Type": "text/plain; charset=utf-8", **exc.headers}
            return Response(exc.status, exc.error, headers)
        with self._hook_lock:
            self.messages.append(payload)
            self.deliveries.append(SlackDelivery(self.url + request.path, payload))
        return Response(200, "ok", {"Content-Type": "text/plain; charset=utf-8"})

    def _accept(self, request: RecordedRequest) -> dict[str, Any]:
        with self._hook_lock:
            state = self._hooks.get(request.path)
        if state is None or state == "revoked":
            raise _SlackError(404, "no_service")
        if request.method != "POST":
            raise _SlackError(400, "invalid_payload")
        if self._limiter is not None:
            wait = self._limiter.acquire()
            if wait:
                after = self._limiter_retry_after
                if after is None:
                    after = max(1, math.ceil(wait))
                raise _SlackError(429, "rate_limited", {"Retry-After": str(after)})
        payload = _parse_payload(request)
        _validate(payload)
        if state == "archived":
            raise _SlackError(410, "channel_is_archived")
        return payload

    def _new_hook_path(self) -> str:
        team = "T" + secrets.token_hex(5).upper()
        bot = "B" + secrets.token_hex(5).upper()
        path = f"/services/{team}/{bot}/{secrets.token_urlsafe(18)}"
        with self._hook_lock:
            self._hooks[path] = "active"
        return path

    def _set_state(self, webhook_url: str | None, state: str) -> None:
        url = webhook_url or self.webhook_url
        if not url.startswith(self.url + "/"):
            raise ValueError(f"{url} is not a hook of this server")
        path = url[len(self.url) :]
        with self._hook_lock:
            if path not in self._hooks:
                raise KeyError(url)
            self._hooks[path] = state


def _parse_payload(request: RecordedRequest) -> dict[str, Any]:
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    raw: bytes | str = request.body
    if content_type == "application/x-www-form-urlencoded":
        # Slack also takes the JSON in a form field named "payload".
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        if "payload" not in form:
            raise _SlackError(400, "invalid_payload")
        raw = form["payload"]
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise _SlackError(400, "invalid_payload") from exc
    if not isinstance(payload, dict):
        raise _SlackError(400, "invalid_payload")
    return payload


def _validate(payload: Mapping[str, Any]) -> None:
    text = payload.get("text")
    blocks = payload.get("blocks")
    attachments = payload.get("attachments")
    if text is not None and not isinstance(text, str):
        raise _SlackError(400, "invalid_payload")
    if attachments is not None:
        if not isinstance(attachments, list):
            raise _SlackError(400, "invalid_payload")
        if len(attachments) > MAX_ATTACHMENTS:
            raise _SlackError(400, "too_many_attachments")
    if blocks is not None:
        if not isinstance(blocks, list):
            raise _SlackError(400, "invalid_blocks_format")
        if len(blocks) > MAX_BLOCKS or not all(_valid_block(b) for b in blocks):
            raise _SlackError(400, "invalid_blocks")
    if not text and not blocks and not attachments:
        raise _SlackError(400, "no_text")


def _valid_text(obj: Any, limit: int, types: frozenset[str] = _TEXT_OBJECT_TYPES) -> bool:
    return (
        isinstance(obj, Mapping)
        and obj.get("type") in types
        and isinstance(obj.get("text"), str)
        and 1 <= len(obj["text"]) <= limit
    )


def _valid_block(block: Any) -> bool:
    """Block Kit limits for the blocks angles sends; unknown types are refused."""
    if not isinstance(block, Mapping) or block.get("type") not in _BLOCK_TYPES:
        return False
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID):
        return False
    kind = block["type"]
    if kind == "header":
        return _valid_text(block.get("text"), MAX_HEADER_TEXT, frozenset({"plain_text"}))
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            return False
        if text is not None and not _valid_text(text, MAX_SECTION_TEXT):
            return False
        if fields is not None:
            if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
                return False
            return all(_valid_text(f, MAX_FIELD_TEXT) for f in fields)
        return True
    if kind == "context":
        elements = block.get("elements")
        return isinstance(elements, list) and 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS
    if kind in ("actions", "rich_text"):
        return isinstance(block.get("elements"), list) and bool(block["elements"])
    return True
