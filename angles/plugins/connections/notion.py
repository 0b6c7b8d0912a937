"""The ``notion`` connection: the Notion API through notion-client 3 (API version 2025-09-03).

.. code-block:: yaml

    connections:
      notion: {type: notion, token: "${NOTION_API_KEY}"}
      # api_url: the base URL without /v1 (notion-client's base_url), e.g. for a test server

Under API version 2025-09-03 a database is a container of data sources, and the rows and
the schema belong to a data source: :meth:`NotionConnection.data_source_id` finds the one
a database holds, :meth:`~NotionConnection.query` pages through its rows.

Requests are paced to about three a second (Notion's average limit, bursts allowed). A
429 (after its ``Retry-After``), a 5xx, a timeout and a refused connection are retried by
angles' retry policy, within the run's budget; notion-client's own retries are switched
off so that the two never multiply. Every failure becomes a :class:`ServiceError` that
says what to check.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from angles import Connection, ServiceError, hookimpl

if TYPE_CHECKING:
    import httpx
    from notion_client import Client

API_VERSION = "2025-09-03"
DEFAULT_API_URL = "https://api.notion.com"
PAGE_SIZE = 100

# notion-client adds a console handler to its logger each time it makes one itself; a
# logger of our own, silent, avoids that (failures are reported as ServiceErrors).
_LOGGER = logging.getLogger("angles.notion_client")
_LOGGER.addHandler(logging.NullHandler())
_LOGGER.propagate = False

_SHARE_HINT = (
    "share the database with the integration (in Notion: ••• → Connections → add it) "
    "and check NOTION_DATABASE_ID"
)


class RateLimiter:
    """A token bucket: ``rate`` requests a second on average, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until a request may go; returns the seconds waited."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            delay = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if delay:
            time.sleep(delay)
        return delay


class NotionConnection(Connection):
    """A Notion integration, by its token."""

    type = "notion"
    service = "Notion"
    description = "The Notion API (notion-client, API version 2025-09-03)."
    #: Notion allows about three requests a second per integration, with bursts.
    requests_per_second: ClassVar[float] = 3.0
    burst: ClassVar[int] = 5
    default_retries: ClassVar[int] = 2
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "token": {
                "type": "string",
                "minLength": 1,
                "secret": True,
                "description": "The integration's internal secret (NOTION_API_KEY).",
            },
            "api_url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "The API base URL without /v1 (default: https://api.notion.com).",
            },
            "timeout_seconds": {
                "type": "number",
                "exclusiveMinimum": 0,
                "description": "Seconds each request may take (default: defaults.timeout_seconds).",
            },
            "retries": {
                "type": "integer",
                "minimum": 0,
                "maximum": 5,
                "description": "Times a request failing on a 429, a 5xx, a timeout or a refused "
                "connection is tried again, after Retry-After or 1, 2, 4… s (default 2).",
            },
        },
        "required": ["token"],
        "additionalProperties": False,
    }

    def __init__(self, name: str, config: Any, context: Any) -> None:
        super().__init__(name, config, context)
        self.api_url: str = (config.get("api_url") or DEFAULT_API_URL).rstrip("/")
        self.limiter = RateLimiter(self.requests_per_second, self.burst)
        self._client: Client | None = None
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        """The notion-client ``Client``, made on first use."""
        with self._lock:
            if self._client is None:
                from notion_client import Client
                from notion_client.client import ClientOptions

                self._http = self.context.http_client(
                    self.service, event_hooks={"request": [self._pace]}
                )
                options = ClientOptions(
                    auth=self.config["token"],
                    base_url=self.api_url,
                    timeout_ms=round(self.timeout * 1000),
                    notion_version=API_VERSION,
                    logger=_LOGGER,
                    retry=False,  # angles retries, within the run's budget
                )
                self._client = Client(options, client=self._http)
            return self._client

    def _pace(self, request: httpx.Request) -> None:
        self.limiter.wait()

    # -- calls -------------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """The integration's bot user (``users.me``): proves the token is valid."""
        return self._call("checking the token", lambda: self.client.users.me())

    def retrieve_database(self, database_id: str) -> dict[str, Any]:
        """The database object, with its ``data_sources`` (no properties under 2025-09-03)."""
        return self._call(
            f"reading database {database_id}",
            lambda: self.client.databases.retrieve(database_id=database_id),
            not_found=_SHARE_HINT,
        )

    def data_source_id(self, database_id: str, data_source: str | None = None) -> str:
        """The id of the database's data source: its only one, or the one named or given.

        A database with several data sources needs ``data_source`` (a name or an id).
        """
        return choose_data_source(self.retrieve_database(database_id), database_id, data_source)

    def retrieve_data_source(self, data_source_id: str) -> dict[str, Any]:
        """The data source object, with its schema (``properties``)."""
        return self._call(
            f"reading data source {data_source_id}",
            lambda: self.client.data_sources.retrieve(data_source_id=data_source_id),
            not_found=_SHARE_HINT,
        )

    def query(
        self,
        data_source_id: str,
        *,
        filter: Mapping[str, Any] | None = None,
        sorts: list[Mapping[str, Any]] | None = None,
        page_size: int = PAGE_SIZE,
        limit: int | None = None,
        filter_properties: Sequence[str] | None = None,
        in_trash: bool | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The pages of a data source, following ``next_cursor`` (``page_size`` at most 100).

        Results that are not pages (a query may also return data sources) are skipped;
        ``limit`` stops after that many pages. ``filter_properties`` (property ids, as the
        data source's schema gives them) limits the properties each page carries;
        ``in_trash=True`` reads the pages in the trash instead of the others.
        """
        body: dict[str, Any] = {"page_size": min(page_size, PAGE_SIZE)}
        if filter is not None:
            body["filter"] = filter
        if sorts is not None:
            body["sorts"] = sorts
        if filter_properties is not None:
            body["filter_properties"] = list(filter_properties)
        if in_trash is not None:
            body["in_trash"] = in_trash
        yielded = 0
        cursor: str | None = None
        while True:
            kwargs = dict(body, start_cursor=cursor) if cursor else body
            response = self._call(
                f"querying data source {data_source_id}",
                lambda kwargs=kwargs: self.client.data_sources.query(
                    data_source_id=data_source_id, **kwargs
                ),
                not_found=_SHARE_HINT,
            )
            for result in response.get("results") or []:
                if result.get("object") != "page":
                    continue
                yield result
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            cursor = response.get("next_cursor")
            if not response.get("has_more") or not cursor:
                return

    def close(self) -> None:
        """Close the HTTP connection pool."""
        with self._lock:
            if self._http is not None:
                self._http.close()
            self._client = self._http = None

    # -- errors ------------------------------------------------------------------------------

    def _call(self, what: str, send: Any, *, not_found: str | None = None) -> Any:
        return self.context.call(
            self.service,
            what,
            send,
            policy=self.retry_policy,
            failure=lambda exc: self._failure(exc, what, not_found),
        )

    def _failure(self, exc: Exception, what: str, not_found: str | None) -> ServiceError | None:
        """What notion-client (or httpx below it) raised, as one line saying what to check;
        a 429, a 5xx, a timeout and a refused connection are worth another try."""
        import httpx
        from notion_client.errors import (
            APIResponseError,
            RequestTimeoutError,
            UnknownHTTPResponseError,
        )

        from angles.helpers import network_failure, parse_retry_after, readable_body

        if isinstance(exc, APIResponseError):
            error = self._api_error(exc, what, not_found)
        elif isinstance(exc, RequestTimeoutError):
            return ServiceError(
                self.service,
                f"{what}: no answer within {self.timeout:g}s",
                hint="is Notion reachable? raise timeout_seconds of the connection",
                transient=True,
            )
        elif isinstance(exc, UnknownHTTPResponseError):
            body = readable_body(str(exc.body or ""), _header(exc, "content-type"))
            error = ServiceError(
                self.service,
                f"{what}: HTTP {exc.status} ({_excerpt(body) or 'no body'})",
                hint="Notion may be having trouble; see https://status.notion.so",
            )
        elif isinstance(exc, httpx.TransportError):
            message, _hint, transient = network_failure(exc, self.timeout)
            return ServiceError(
                self.service,
                f"{what}: {message} at {self.api_url}",
                hint="check the network, and api_url of the connection if set",
                transient=transient,
            )
        elif isinstance(exc, json.JSONDecodeError):
            return ServiceError(
                self.service,
                f"{what}: the answer was not JSON",
                hint=f"is {self.api_url} the Notion API? check api_url of the connection",
            )
        else:
            return None
        status = int(getattr(exc, "status", 0) or 0)
        error.transient = status == 429 or status >= 500
        error.retry_after = parse_retry_after(_header(exc, "retry-after"))
        return error

    def _api_error(self, exc: Any, what: str, not_found: str | None) -> ServiceError:
        code = str(getattr(exc.code, "value", exc.code))  # APIErrorCode is a str enum
        detail = f"HTTP {exc.status} {code}: {_excerpt(str(exc))}"
        if code == "unauthorized":
            hint = (
                "check NOTION_API_KEY: the integration's internal secret, starting ntn_ or secret_"
            )
        elif code == "object_not_found":
            hint = not_found or _SHARE_HINT
        elif code == "restricted_resource":
            hint = "give the integration the capability to read content (integration settings)"
        elif code == "rate_limited":
            return ServiceError(
                self.service,
                f"{what}: rate limited (HTTP 429)",
                hint="Notion allows about 3 requests a second; run less often or try later",
            )
        elif code == "validation_error" and "path" in str(exc):
            hint = "check the id (NOTION_DATABASE_ID): 32 hex digits, with or without dashes"
        else:
            hint = None
        return ServiceError(self.service, f"{what}: {detail}", hint=hint)


def _header(exc: Any, name: str) -> str:
    headers = getattr(exc, "headers", None) or {}
    return str(httpx_header(headers, name) or "")


def httpx_header(headers: Any, name: str) -> str | None:
    """A header of an httpx ``Headers`` (or a plain mapping), looked up case-insensitively."""
    for key, value in dict(headers).items():
        if str(key).lower() == name:
            return str(value)
    return None


def choose_data_source(
    database: Mapping[str, Any], database_id: str, wanted: str | None = None
) -> str:
    """The id of one data source of ``database``: the only one, or the one ``wanted``
    names (by name or id). Raises :class:`ServiceError` when that is ambiguous."""
    sources = [s for s in database.get("data_sources") or [] if isinstance(s, Mapping)]
    names = ", ".join(repr(s.get("name")) for s in sources)
    if wanted:
        compact = wanted.replace("-", "").lower()
        for source in sources:
            if wanted == source.get("name") or compact == str(source.get("id")).replace("-", ""):
                return str(source["id"])
        raise ServiceError(
            "Notion",
            f"database {database_id} has no data source {wanted!r} (it has {names or 'none'})",
            hint="check `data_source:` of the check",
        )
    if not sources:
        raise ServiceError(
            "Notion",
            f"database {database_id} has no data source",
            hint="is it a linked database? use the id of the source database",
        )
    if len(sources) > 1:
        raise ServiceError(
            "Notion",
            f"database {database_id} has {len(sources)} data sources ({names})",
            hint="name the one to read with `data_source:` (its name or id)",
        )
    return str(sources[0]["id"])


def _excerpt(text: str | None, limit: int = 200) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@hookimpl
def angles_register_connections(register: Any) -> None:
    register(NotionConnection)
