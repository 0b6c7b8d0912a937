"""An imitation of the Notion API (version 2025-09-03) for notion-client 3.1.0.

It serves what angles reads: ``GET /v1/users/me``, ``GET /v1/databases/{id}`` (with
``data_sources`` and no ``properties``), ``GET /v1/data_sources/{id}`` (the schema),
``POST /v1/data_sources/{id}/query`` (cursor paging, filters, sorts, ``filter_properties``,
the trash through ``in_trash`` or its older alias ``archived``) and
``GET /v1/pages/{id}``. Like the real API it insists on ``Notion-Version`` and a bearer
token, answers with the documented error bodies (each with a ``request_id``), hides
databases that are not shared with the integration and can rate-limit with a 429 and
``Retry-After``. See ``/work/shared/reference/services.md`` §1.

Test data is added with :meth:`NotionServer.add_database` and
:meth:`NotionServer.add_pages`, using plain Python values::

    db, ds = notion_server.add_database(
        "Tasks", properties={"Name": "title", "Done": "checkbox", "Due": "date"},
        pages=[{"Name": "Bug bash", "Done": False, "Due": "2024-01-31"}],
    )
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, unquote

from angles.testing.server import Fault, RateLimiter, RecordedRequest, Response, ServiceServer

__all__ = [
    "API_VERSION",
    "ERROR_STATUS",
    "NotionServer",
]

API_VERSION = "2025-09-03"
# Versions the real API accepts; only 2025-09-03 knows about data sources.
KNOWN_VERSIONS = frozenset(
    {"2021-05-11", "2021-05-13", "2021-08-16", "2022-02-22", "2022-06-28", API_VERSION}
)

#: HTTP status of each error code. The first twelve are the codes notion-client turns
#: into ``APIResponseError``; the others become ``UnknownHTTPResponseError``.
ERROR_STATUS: dict[str, int] = {
    "unauthorized": 401,
    "restricted_resource": 403,
    "object_not_found": 404,
    "rate_limited": 429,
    "invalid_json": 400,
    "invalid_request_url": 400,
    "invalid_request": 400,
    "validation_error": 400,
    "conflict_error": 409,
    "internal_server_error": 500,
    "service_unavailable": 503,
    "gateway_timeout": 504,
    "missing_version": 400,
    "database_connection_unavailable": 503,
    "service_overload": 529,
}

_DEFAULT_MESSAGES = {
    "unauthorized": "API token is invalid.",
    "restricted_resource": "Insufficient permissions for this endpoint.",
    "object_not_found": "Could not find object.",
    "rate_limited": "You have been rate limited. Please try again in a few minutes.",
    "invalid_json": "Error parsing JSON body.",
    "invalid_request_url": "Invalid request URL.",
    "invalid_request": "Unsupported request.",
    "validation_error": "body failed validation.",
    "conflict_error": "Conflict occurred while saving. Please try again.",
    "internal_server_error": "Unexpected error occurred.",
    "service_unavailable": "Notion is unavailable, please try again later.",
    "gateway_timeout": "Gateway timeout.",
    "missing_version": (
        "Notion-Version header failed validation: Notion-Version header should be defined, "
        "instead was `undefined`."
    ),
    "database_connection_unavailable": "Database connection unavailable.",
    "service_overload": "Service overloaded, please try again later.",
}

_ANNOTATIONS = {
    "bold": False,
    "italic": False,
    "strikethrough": False,
    "underline": False,
    "code": False,
    "color": "default",
}
_TEXT_TYPES = ("title", "rich_text")
_STRING_TYPES = ("url", "email", "phone_number")
_OPTION_TYPES = ("select", "status", "multi_select")
_TIMESTAMP_TYPES = ("created_time", "last_edited_time")
_PROPERTY_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789;<=>?@[]^_`{|}~"


class NotionAPIError(Exception):
    """Raised inside the imitation to answer with a Notion error body."""

    def __init__(
        self, code: str, message: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message or _DEFAULT_MESSAGES.get(code, code))
        self.code = code
        self.message = message or _DEFAULT_MESSAGES.get(code, code)
        self.headers = headers or {}


def error_body(code: str, message: str | None = None, status: int | None = None) -> dict[str, Any]:
    """The JSON body Notion sends for an error ``code`` (with a fresh ``request_id``)."""
    return {
        "object": "error",
        "status": status or ERROR_STATUS.get(code, 400),
        "code": code,
        "message": message or _DEFAULT_MESSAGES.get(code, code),
        "request_id": str(uuid.uuid4()),
    }


def rich_text(content: str) -> list[dict[str, Any]]:
    """A rich text array holding one plain text item (empty for an empty string)."""
    if not content:
        return []
    return [
        {
            "type": "text",
            "text": {"content": content, "link": None},
            "annotations": dict(_ANNOTATIONS),
            "plain_text": content,
            "href": None,
        }
    ]


def format_time(value: datetime | date | str) -> str:
    """Notion's timestamp format (``2022-10-24T22:54:00.000Z``); strings pass through."""
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _now() -> str:
    # Notion rounds created/last edited times down to the minute.
    return format_time(datetime.now(UTC).replace(second=0, microsecond=0))


def _compact(object_id: str) -> str | None:
    """The 32 hex digits of an ID given with or without dashes, or None if it is not one."""
    compact = object_id.replace("-", "").lower()
    return compact if re.fullmatch(r"[0-9a-f]{32}", compact) else None


def _dashed(compact: str) -> str:
    return str(uuid.UUID(compact))


@dataclass
class _Page:
    id: str
    data_source_id: str
    values: dict[str, Any]  # property name -> Notion property value (without "id")
    created_time: str
    last_edited_time: str
    in_trash: bool = False


@dataclass
class _DataSource:
    id: str
    database_id: str
    name: str
    properties: dict[str, dict[str, Any]]  # name -> schema entry
    created_time: str
    pages: list[_Page] = field(default_factory=list)


@dataclass
class _Database:
    id: str
    title: str
    parent_page_id: str
    created_time: str
    shared: bool = True
    data_source_ids: list[str] = field(default_factory=list)


class NotionServer(ServiceServer):
    """The Notion API on 127.0.0.1 as notion-client 3.1.0 (API version 2025-09-03) uses it.

    Attributes: ``url`` (pass it as ``Client(base_url=...)``), ``token`` (the one valid
    integration token), ``bot`` (the ``users/me`` body), ``requests`` (the log) and
    ``fail()`` (faults) from :class:`ServiceServer`.
    """

    name = "notion"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        super().__init__(host, port)
        self.token = token or "ntn_" + secrets.token_hex(23)
        self._initial_token = self.token
        bot_id = str(uuid.uuid4())
        self.bot: dict[str, Any] = {
            "object": "user",
            "id": bot_id,
            "name": "angles-test",
            "avatar_url": None,
            "type": "bot",
            "bot": {
                "owner": {"type": "workspace", "workspace": True},
                "workspace_name": "Angles Test Workspace",
                "workspace_id": str(uuid.uuid4()),
                "workspace_limits": {"max_file_upload_size_in_bytes": 5242880},
            },
        }
        self._data_lock = threading.RLock()
        self._databases: dict[str, _Database] = {}
        self._data_sources: dict[str, _DataSource] = {}
        self._pages: dict[str, _Page] = {}
        self._limiter: RateLimiter | None = None
        self._limiter_retry_after: int | None = None

    # -- test helpers ------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh server: no data, no faults, no log, no rate limit, same token."""
        self.clear()
        with self._data_lock:
            self._databases.clear()
            self._data_sources.clear()
            self._pages.clear()
        self.token = self._initial_token
        self.limit_rate(None)

    def add_database(
        self,
        title: str = "Test Database",
        properties: Mapping[str, str | Mapping[str, Any]] | None = None,
        pages: Sequence[Mapping[str, Any]] = (),
        *,
        shared: bool = True,
        data_source_name: str | None = None,
        created_time: datetime | str | None = None,
        last_edited_time: datetime | str | None = None,
    ) -> tuple[str, str]:
        """Create a database with one data source and return ``(database_id, data_source_id)``.

        ``properties`` maps a property name to its type (``"title"``, ``"rich_text"``,
        ``"checkbox"``, ``"number"``, ``"date"``, ``"select"``, ``"status"``,
        ``"multi_select"``, ``"url"``, ``"email"``, ``"phone_number"``, ``"created_time"``,
        ``"last_edited_time"``, ...) or to a full schema entry (``{"type": "select",
        "select": {"options": [...]}}``). Without a title property a ``"Name"`` title is
        added. ``pages`` are rows as for :meth:`add_pages`.
        """
        schema = _build_schema(properties or {"Name": "title"})
        now = _now()
        with self._data_lock:
            database = _Database(
                id=str(uuid.uuid4()),
                title=title,
                parent_page_id=str(uuid.uuid4()),
                created_time=format_time(created_time) if created_time else now,
                shared=shared,
            )
            self._databases[_compact(database.id) or ""] = database
            source_id = self._new_data_source(database, data_source_name or title, schema)
        if pages:
            self.add_pages(
                source_id, pages, created_time=created_time, last_edited_time=last_edited_time
            )
        return database.id, source_id

    def add_data_source(
        self,
        database_id: str,
        name: str,
        properties: Mapping[str, str | Mapping[str, Any]] | None = None,
        pages: Sequence[Mapping[str, Any]] = (),
    ) -> str:
        """Add another data source to a database (2025-09-03 allows several); return its ID."""
        schema = _build_schema(properties or {"Name": "title"})
        with self._data_lock:
            source_id = self._new_data_source(self._database(database_id), name, schema)
        if pages:
            self.add_pages(source_id, pages)
        return source_id

    def add_pages(
        self,
        data_source_id: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        created_time: datetime | str | None = None,
        last_edited_time: datetime | str | None = None,
    ) -> list[str]:
        """Add rows to a data source and return the new page IDs, in order.

        A row maps property names to plain values: ``str`` for title/rich_text/url/email/
        phone_number/select/status, ``bool`` for checkbox, a number, a ``date``/``datetime``
        or ISO string (or a ``(start, end)`` tuple) for date, a list of names for
        multi_select, or ``None`` for empty. A ``dict`` with a ``"type"`` key is taken as a
        ready-made Notion property value. Missing properties are empty. Unknown names raise
        ``KeyError``. Timestamps default to now, rounded down to the minute as Notion does.
        """
        now = _now()
        created = format_time(created_time) if created_time else now
        edited = format_time(last_edited_time) if last_edited_time else created
        ids = []
        with self._data_lock:
            source = self._data_source(data_source_id)
            for row in rows:
                unknown = set(row) - set(source.properties)
                if unknown:
                    raise KeyError(f"unknown properties {sorted(unknown)} for {source.name!r}")
                values = {
                    name: _property_value(schema, row.get(name))
                    for name, schema in source.properties.items()
                }
                page = _Page(str(uuid.uuid4()), source.id, values, created, edited)
                _remember_options(source.properties, values)
                source.pages.append(page)
                self._pages[_compact(page.id) or ""] = page
                ids.append(page.id)
        return ids

    def update_page(
        self,
        page_id: str,
        properties: Mapping[str, Any] | None = None,
        *,
        last_edited_time: datetime | str | None = None,
        created_time: datetime | str | None = None,
        in_trash: bool | None = None,
        archived: bool | None = None,
    ) -> None:
        """Change some property values, the timestamps or the trash flag of a page.

        Changing properties without ``last_edited_time`` sets it to now (minute precision).
        A page in the trash is left out of query results unless the query asks for the
        trash (``in_trash: true``). ``archived`` is the older name of ``in_trash``: before
        API version 2026-03-11 the two are one flag, shown under both names.
        """
        if in_trash is None:
            in_trash = archived
        with self._data_lock:
            page = self._pages[_compact(page_id) or ""]
            source = self._data_sources[_compact(page.data_source_id) or ""]
            for name, value in (properties or {}).items():
                page.values[name] = _property_value(source.properties[name], value)
            _remember_options(source.properties, page.values)
            if created_time is not None:
                page.created_time = format_time(created_time)
            if last_edited_time is not None:
                page.last_edited_time = format_time(last_edited_time)
            elif properties:
                page.last_edited_time = _now()
            if in_trash is not None:
                page.in_trash = in_trash

    def delete_page(self, page_id: str) -> None:
        """Make a page vanish for good, as when someone empties it from the trash.

        The API cannot do this itself; afterwards the page is ``object_not_found``.
        """
        with self._data_lock:
            page = self._pages.pop(_compact(page_id) or "")
            source = self._data_sources[_compact(page.data_source_id) or ""]
            source.pages.remove(page)

    def remove_pages(self, data_source_id: str) -> None:
        """Delete every page of a data source (as if the sync emptied it)."""
        with self._data_lock:
            source = self._data_source(data_source_id)
            for page in source.pages:
                self._pages.pop(_compact(page.id) or "", None)
            source.pages.clear()

    def share(self, database_id: str, shared: bool = True) -> None:
        """Share a database with the integration, or (``shared=False``) take it away."""
        with self._data_lock:
            self._database(database_id).shared = shared

    def pages(self, data_source_id: str) -> list[dict[str, Any]]:
        """The page objects of a data source, as the API would return them."""
        with self._data_lock:
            return [self._page_json(p) for p in self._data_source(data_source_id).pages]

    def limit_rate(
        self, rate: float | None = 3.0, burst: int = 10, retry_after: int | None = None
    ) -> None:
        """Switch the built-in rate limit on (``rate`` requests/s, bursts of ``burst``) or off.

        Over the limit the answer is 429 ``rate_limited`` with ``Retry-After``: the whole
        seconds until a request would pass (at least 1), or ``retry_after`` when given (use
        0 to keep client retries fast).
        """
        self._limiter = RateLimiter(rate, burst) if rate else None
        self._limiter_retry_after = retry_after

    def fail_with(
        self,
        code: str,
        *,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        message: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        additional_data: Mapping[str, Any] | None = None,
        delay: float = 0.0,
    ) -> Fault:
        """Answer the next ``times`` matching requests with Notion error ``code``.

        ``code`` is one of :data:`ERROR_STATUS` (its status is used unless ``status`` is
        given); ``path`` is a regular expression searched in the request path.
        """
        body = error_body(code, message, status)
        if additional_data is not None:
            body["additional_data"] = dict(additional_data)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return self.fail(
            method=method,
            path=path,
            times=times,
            status=body["status"],
            body=json.dumps(body).encode(),
            headers=headers,
            delay=delay,
        )

    def rate_limited(
        self,
        times: int = 1,
        retry_after: int = 0,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests with 429 ``rate_limited``."""
        return self.fail_with(
            "rate_limited", times=times, retry_after=retry_after, method=method, path=path
        )

    # -- the service ---------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Response:
        """Check the headers, the token and the rate limit, then route the request."""
        try:
            version = request.header("notion-version")
            if not version:
                raise NotionAPIError("missing_version")
            if version not in KNOWN_VERSIONS:
                raise NotionAPIError(
                    "validation_error",
                    f"Notion-Version header failed validation: Notion-Version header should be "
                    f"a supported version, instead was `{version}`.",
                )
            if request.header("authorization") != f"Bearer {self.token}":
                raise NotionAPIError("unauthorized")
            if self._limiter is not None:
                wait = self._limiter.acquire()
                if wait:
                    after = self._limiter_retry_after
                    if after is None:
                        after = max(1, math.ceil(wait))
                    raise NotionAPIError("rate_limited", headers={"Retry-After": str(after)})
            return self._route(request, version)
        except NotionAPIError as exc:
            body = error_body(exc.code, exc.message)
            return Response.json(body, body["status"], exc.headers)

    def _route(self, request: RecordedRequest, version: str) -> Response:
        path = unquote(request.path)
        method = request.method
        if method == "GET" and path == "/v1/users/me":
            return self._ok(self.bot)
        match = re.fullmatch(r"/v1/(databases|data_sources|pages)/([^/]+)(/query)?", path)
        if match:
            kind, object_id, query = match.groups()
            new_api = version == API_VERSION
            if kind == "databases" and method == "GET" and not query:
                return self._ok(self._database_json(self._visible_database(object_id), new_api))
            if kind == "databases" and method == "POST" and query and not new_api:
                # Before 2025-09-03 the rows were queried through the database.
                database = self._visible_database(object_id)
                return self._query(request, database.data_source_ids[0])
            if kind == "data_sources" and new_api:
                if method == "GET" and not query:
                    return self._ok(self._data_source_json(self._visible_source(object_id)))
                if method == "POST" and query:
                    return self._query(request, self._visible_source(object_id).id)
            if kind == "pages" and method == "GET" and not query:
                return self._ok(self._page_json(self._visible_page(object_id)))
        raise NotionAPIError("invalid_request_url")

    @staticmethod
    def _ok(payload: Mapping[str, Any]) -> Response:
        return Response.json({**payload, "request_id": str(uuid.uuid4())})

    # -- lookups -------------------------------------------------------------------------------

    def _database(self, database_id: str) -> _Database:
        return self._databases[_compact(database_id) or ""]

    def _data_source(self, data_source_id: str) -> _DataSource:
        return self._data_sources[_compact(data_source_id) or ""]

    def _new_data_source(
        self, database: _Database, name: str, schema: dict[str, dict[str, Any]]
    ) -> str:
        source = _DataSource(str(uuid.uuid4()), database.id, name, schema, _now())
        self._data_sources[_compact(source.id) or ""] = source
        database.data_source_ids.append(source.id)
        return source.id

    def _visible_database(self, object_id: str) -> _Database:
        compact = _valid_id(object_id, "database_id")
        with self._data_lock:
            database = self._databases.get(compact)
            if database is None or not database.shared:
                raise NotionAPIError("object_not_found", _not_found("database", compact))
            return database

    def _visible_source(self, object_id: str) -> _DataSource:
        compact = _valid_id(object_id, "data_source_id")
        with self._data_lock:
            source = self._data_sources.get(compact)
            if source is None or not self._database(source.database_id).shared:
                raise NotionAPIError("object_not_found", _not_found("data_source", compact))
            return source

    def _visible_page(self, object_id: str) -> _Page:
        compact = _valid_id(object_id, "page_id")
        with self._data_lock:
            page = self._pages.get(compact)
            if page is not None:
                source = self._data_source(page.data_source_id)
                if self._database(source.database_id).shared:
                    return page
        raise NotionAPIError("object_not_found", _not_found("page", compact))

    # -- JSON shapes ---------------------------------------------------------------------------

    def _user_ref(self) -> dict[str, str]:
        return {"object": "user", "id": self.bot["id"]}

    def _database_json(self, database: _Database, new_api: bool = True) -> dict[str, Any]:
        compact = _compact(database.id)
        body: dict[str, Any] = {
            "object": "database",
            "id": database.id,
            "title": rich_text(database.title),
            "description": [],
            "parent": {"type": "page_id", "page_id": database.parent_page_id},
            "is_inline": False,
            "in_trash": False,
            "is_locked": False,
            "created_time": database.created_time,
            "last_edited_time": database.created_time,
            "created_by": self._user_ref(),
            "last_edited_by": self._user_ref(),
            "icon": None,
            "cover": None,
            "url": f"https://www.notion.so/{compact}",
            "public_url": None,
            "archived": False,
        }
        with self._data_lock:
            sources = [self._data_source(i) for i in database.data_source_ids]
        if new_api:
            body["data_sources"] = [{"id": s.id, "name": s.name} for s in sources]
        else:
            body["properties"] = _schema_json(sources[0].properties)
        return body

    def _data_source_json(self, source: _DataSource) -> dict[str, Any]:
        database = self._database(source.database_id)
        return {
            "object": "data_source",
            "id": source.id,
            "created_time": source.created_time,
            "last_edited_time": source.created_time,
            "created_by": self._user_ref(),
            "last_edited_by": self._user_ref(),
            "title": rich_text(source.name),
            "description": [],
            "is_inline": False,
            "properties": _schema_json(source.properties),
            "parent": {"type": "database_id", "database_id": database.id},
            "database_parent": {"type": "page_id", "page_id": database.parent_page_id},
            "url": f"https://www.notion.so/{_compact(source.id)}",
            "public_url": None,
            "icon": None,
            "cover": None,
            "in_trash": False,
            "archived": False,
        }

    def _page_json(self, page: _Page, only: set[str] | None = None) -> dict[str, Any]:
        source = self._data_source(page.data_source_id)
        properties = {}
        for name, schema in source.properties.items():
            if only is not None and name not in only and schema["id"] not in only:
                continue
            properties[name] = {"id": schema["id"], **self._resolved_value(page, schema, name)}
        title = _plain(page.values.get(_title_name(source.properties)) or {})
        slug = re.sub(r"[^A-Za-z0-9]+", "-", str(title or "")).strip("-")
        compact = _compact(page.id)
        return {
            "object": "page",
            "id": page.id,
            "created_time": page.created_time,
            "last_edited_time": page.last_edited_time,
            "created_by": self._user_ref(),
            "last_edited_by": self._user_ref(),
            "cover": None,
            "icon": None,
            "parent": {
                "type": "data_source_id",
                "data_source_id": source.id,
                "database_id": source.database_id,
            },
            "archived": page.in_trash,
            "in_trash": page.in_trash,
            "is_locked": False,
            "properties": properties,
            "url": f"https://www.notion.so/{slug + '-' if slug else ''}{compact}",
            "public_url": None,
        }

    def _resolved_value(self, page: _Page, schema: Mapping[str, Any], name: str) -> dict[str, Any]:
        kind = schema["type"]
        if kind == "created_time":
            return {"type": kind, kind: page.created_time}
        if kind == "last_edited_time":
            return {"type": kind, kind: page.last_edited_time}
        if kind in ("created_by", "last_edited_by"):
            return {"type": kind, kind: {**self._user_ref(), "type": "bot", "bot": {}}}
        return page.values[name]

    # -- query ---------------------------------------------------------------------------------

    def _query(self, request: RecordedRequest, data_source_id: str) -> Response:
        body = _json_body(request)
        page_size = body.get("page_size", 100)
        if isinstance(page_size, bool) or not isinstance(page_size, int):
            raise _validation("body.page_size should be a number", page_size)
        if page_size > 100:
            raise _validation("body.page_size should be ≤ `100`", page_size)
        if page_size < 1:
            raise _validation("body.page_size should be ≥ `1`", page_size)
        cursor = body.get("start_cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise _validation("body.start_cursor should be a string or `undefined`", cursor)
        for flag in ("in_trash", "archived"):
            if body.get(flag) is not None and not isinstance(body[flag], bool):
                raise _validation(f"body.{flag} should be a boolean or `undefined`", body[flag])
        # ``archived`` is the deprecated alias of ``in_trash`` (removed in 2026-03-11).
        trash = body.get("in_trash", body.get("archived"))
        only = {value for key, value in request.query if key == "filter_properties"} or None

        with self._data_lock:
            source = self._data_source(data_source_id)
            rows = [p for p in source.pages if p.in_trash == bool(trash)]
            values = {p.id: self._all_values(p, source) for p in rows}
            try:
                if body.get("filter") is not None:
                    predicate = _compile_filter(body["filter"], source.properties)
                    rows = [p for p in rows if predicate(values[p.id], p)]
                if body.get("sorts"):
                    rows = _sorted(rows, body["sorts"], source.properties, values)
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                # A malformed filter or sort is the client's fault, as on the real API.
                raise NotionAPIError(
                    "validation_error", f"body failed validation: {type(exc).__name__}: {exc}"
                ) from exc
            start = 0
            if cursor is not None:
                ids = [p.id for p in rows]
                compact_cursor = _compact(cursor)
                dashed = _dashed(compact_cursor) if compact_cursor else None
                if dashed not in ids:
                    raise NotionAPIError(
                        "validation_error", f"start_cursor provided is invalid: {cursor}"
                    )
                start = ids.index(dashed)
            chunk = rows[start : start + page_size]
            has_more = start + page_size < len(rows)
            # Like Notion, the cursor is the ID of the first result of the next page.
            next_cursor = rows[start + page_size].id if has_more else None
            results = [self._page_json(p, only) for p in chunk]
        return self._ok(
            {
                "object": "list",
                "results": results,
                "next_cursor": next_cursor,
                "has_more": has_more,
                "type": "page_or_data_source",
                "page_or_data_source": {},
            }
        )

    def _all_values(self, page: _Page, source: _DataSource) -> dict[str, Any]:
        """Plain values of a page keyed by property name and by property ID."""
        plain = {}
        for name, schema in source.properties.items():
            value = _plain(self._resolved_value(page, schema, name))
            plain[name] = value
            plain[schema["id"]] = value
        return plain


# -- schema and values ---------------------------------------------------------------------------


def _build_schema(properties: Mapping[str, str | Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    schema: dict[str, dict[str, Any]] = {}
    for name, spec in properties.items():
        entry = {"type": spec} if isinstance(spec, str) else dict(spec)
        kind = entry["type"]
        entry.setdefault(kind, {})
        if kind in _OPTION_TYPES:
            options = entry[kind].setdefault("options", [])
            for option in options:
                option.setdefault("id", _short_id(f"{name}/{option['name']}"))
                option.setdefault("color", "default")
                option.setdefault("description", None)
        entry["id"] = entry.get("id") or ("title" if kind == "title" else _short_id(name))
        entry["name"] = name
        entry.setdefault("description", None)
        schema[name] = entry
    titles = [n for n, e in schema.items() if e["type"] == "title"]
    if len(titles) > 1:
        raise ValueError(f"a data source has exactly one title property, got {titles}")
    if not titles:
        schema = {"Name": {"id": "title", "name": "Name", "type": "title", "title": {}}, **schema}
    return schema


def _schema_json(schema: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {
        name: {
            "id": e["id"],
            "name": name,
            "description": e.get("description"),
            "type": e["type"],
            e["type"]: e[e["type"]],
        }
        for name, e in schema.items()
    }


def _short_id(seed: str) -> str:
    rng = random.Random(seed)
    return quote("".join(rng.choice(_PROPERTY_ID_CHARS) for _ in range(4)), safe="")


def _title_name(schema: Mapping[str, Mapping[str, Any]]) -> str:
    return next(name for name, e in schema.items() if e["type"] == "title")


def _option(schema: Mapping[str, Any], name: str) -> dict[str, Any]:
    field_name = schema["name"]
    for known in schema[schema["type"]].get("options", []):
        if known["name"] == name:
            return {"id": known["id"], "name": name, "color": known.get("color", "default")}
    return {"id": _short_id(f"{field_name}/{name}"), "name": name, "color": "default"}


def _remember_options(schema: Mapping[str, dict[str, Any]], values: Mapping[str, Any]) -> None:
    """Add option values seen in rows to the select/status/multi_select schema."""
    for name, entry in schema.items():
        if entry["type"] not in _OPTION_TYPES:
            continue
        value = values.get(name, {}).get(entry["type"])
        chosen = value if isinstance(value, list) else [value] if value else []
        options = entry[entry["type"]].setdefault("options", [])
        known = {o["name"] for o in options}
        for option in chosen:
            if option["name"] not in known:
                options.append({**option, "description": None})
                known.add(option["name"])


def _date_value(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {"start": value["start"], "end": value.get("end"), "time_zone": None}
    start, end = value if isinstance(value, tuple) else (value, None)

    def iso(v: Any) -> str | None:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, datetime):
            return v.isoformat(timespec="milliseconds")
        return v.isoformat()

    return {"start": iso(start), "end": iso(end), "time_zone": None}


def _property_value(schema: Mapping[str, Any], value: Any) -> dict[str, Any]:
    """A Notion property value (without ``id``) from a plain Python value."""
    kind = schema["type"]
    if isinstance(value, Mapping) and "type" in value:
        return {k: v for k, v in value.items() if k != "id"}
    if kind in _TEXT_TYPES:
        converted: Any = rich_text("" if value is None else str(value))
    elif kind == "checkbox":
        converted = bool(value)
    elif kind == "number":
        converted = value
    elif kind == "date":
        converted = _date_value(value)
    elif kind in ("select", "status"):
        converted = None if value is None else _option(schema, str(value))
    elif kind == "multi_select":
        converted = [_option(schema, str(v)) for v in value or []]
    elif kind in _STRING_TYPES:
        converted = value
    elif kind in ("people", "relation", "files"):
        converted = list(value or [])
    elif kind == "unique_id":
        converted = {"prefix": None, "number": value}
    elif kind in (*_TIMESTAMP_TYPES, "created_by", "last_edited_by"):
        converted = None  # computed from the page when served
    else:
        converted = value
    return {"type": kind, kind: converted}


def _plain(value: Mapping[str, Any]) -> Any:
    """The plain Python value of a property value (used by filters and sorts)."""
    kind = value.get("type")
    content = value.get(kind) if kind else None
    if kind in _TEXT_TYPES:
        return "".join(item.get("plain_text", "") for item in content or [])
    if kind in ("select", "status"):
        return content["name"] if content else None
    if kind == "multi_select":
        return [o["name"] for o in content or []]
    if kind == "date":
        return content["start"] if content else None
    if kind == "unique_id":
        return content.get("number") if content else None
    if kind == "formula" and isinstance(content, Mapping):
        return content.get(content.get("type", ""))
    return content


# -- filters and sorts ---------------------------------------------------------------------------

_Predicate = Callable[[Mapping[str, Any], _Page], bool]


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date_condition(op: str, expected: Any) -> Callable[[Any], bool]:
    if op == "is_empty":
        return lambda v: v is None
    if op == "is_not_empty":
        return lambda v: v is not None
    try:
        bound = _as_datetime(expected)
    except (TypeError, ValueError) as exc:
        raise _validation(
            f"body.filter.date.{op} should be a valid ISO 8601 date", expected
        ) from exc
    day_only = isinstance(expected, str) and len(expected) == 10
    compare: dict[str, Callable[[datetime, datetime], bool]] = {
        "equals": lambda a, b: a.date() == b.date() if day_only else a == b,
        "before": lambda a, b: a < b,
        "after": lambda a, b: a > b,
        "on_or_before": lambda a, b: a <= b,
        "on_or_after": lambda a, b: a >= b,
    }
    if op not in compare:
        raise NotionAPIError("validation_error", f"Unsupported date filter condition: {op}.")
    return lambda v: v is not None and compare[op](_as_datetime(v), bound)


def _text_condition(op: str, expected: Any) -> Callable[[Any], bool]:
    conditions: dict[str, Callable[[str], bool]] = {
        "equals": lambda v: v == expected,
        "does_not_equal": lambda v: v != expected,
        "contains": lambda v: str(expected) in v,
        "does_not_contain": lambda v: str(expected) not in v,
        "starts_with": lambda v: v.startswith(str(expected)),
        "ends_with": lambda v: v.endswith(str(expected)),
        "is_empty": lambda v: v == "",
        "is_not_empty": lambda v: v != "",
    }
    if op not in conditions:
        raise NotionAPIError("validation_error", f"Unsupported text filter condition: {op}.")
    return lambda v: conditions[op]("" if v is None else str(v))


def _number_condition(op: str, expected: Any) -> Callable[[Any], bool]:
    conditions: dict[str, Callable[[Any], bool]] = {
        "equals": lambda v: v is not None and v == expected,
        "does_not_equal": lambda v: v != expected,
        "greater_than": lambda v: v is not None and v > expected,
        "less_than": lambda v: v is not None and v < expected,
        "greater_than_or_equal_to": lambda v: v is not None and v >= expected,
        "less_than_or_equal_to": lambda v: v is not None and v <= expected,
        "is_empty": lambda v: v is None,
        "is_not_empty": lambda v: v is not None,
    }
    if op not in conditions:
        raise NotionAPIError("validation_error", f"Unsupported number filter condition: {op}.")
    return conditions[op]


def _option_condition(op: str, expected: Any, multi: bool) -> Callable[[Any], bool]:
    if multi:
        conditions: dict[str, Callable[[Any], bool]] = {
            "contains": lambda v: expected in v,
            "does_not_contain": lambda v: expected not in v,
            "is_empty": lambda v: not v,
            "is_not_empty": lambda v: bool(v),
        }
    else:
        conditions = {
            "equals": lambda v: v == expected,
            "does_not_equal": lambda v: v != expected,
            "is_empty": lambda v: v is None,
            "is_not_empty": lambda v: v is not None,
        }
    if op not in conditions:
        raise NotionAPIError("validation_error", f"Unsupported option filter condition: {op}.")
    return conditions[op]


def _condition(kind: str, op: str, expected: Any) -> Callable[[Any], bool]:
    if kind == "checkbox":
        if op not in ("equals", "does_not_equal") or not isinstance(expected, bool):
            raise _validation(f"body.filter.checkbox.{op} should be a boolean", expected)
        return (lambda v: bool(v) == expected) if op == "equals" else lambda v: bool(v) != expected
    if kind in (*_TEXT_TYPES, *_STRING_TYPES):
        return _text_condition(op, expected)
    if kind in ("number", "unique_id"):
        return _number_condition(op, expected)
    if kind in ("select", "status", "multi_select"):
        return _option_condition(op, expected, kind == "multi_select")
    if kind in ("date", *_TIMESTAMP_TYPES):
        return _date_condition(op, expected)
    raise NotionAPIError("validation_error", f"Filtering on {kind} properties is not supported.")


def _compile_filter(
    spec: Any, schema: Mapping[str, Mapping[str, Any]], depth: int = 0
) -> _Predicate:
    if not isinstance(spec, Mapping):
        raise _validation("body.filter should be an object", spec)
    for compound in ("and", "or"):
        if compound in spec:
            if depth >= 2:
                raise NotionAPIError(
                    "validation_error", "Compound filters may be nested at most two levels deep."
                )
            if not isinstance(spec[compound], list):
                raise _validation(f"body.filter.{compound} should be an array", spec[compound])
            parts = [_compile_filter(s, schema, depth + 1) for s in spec[compound]]
            combine = all if compound == "and" else any
            return lambda values, page: combine(p(values, page) for p in parts)
    if "timestamp" in spec:
        stamp = spec["timestamp"]
        if stamp not in _TIMESTAMP_TYPES or not isinstance(spec.get(stamp), Mapping):
            raise _validation("body.filter.timestamp should be a supported timestamp", stamp)
        ((op, expected),) = spec[stamp].items()
        check = _date_condition(op, expected)
        return lambda values, page: check(getattr(page, stamp))
    target = spec.get("property")
    entry = next((e for n, e in schema.items() if target in (n, e["id"])), None)
    if entry is None:
        raise NotionAPIError(
            "validation_error", f"Could not find property with name or id: {target}"
        )
    given = [k for k in spec if k not in ("property", "type")]
    if len(given) != 1 or not isinstance(spec[given[0]], Mapping) or len(spec[given[0]]) != 1:
        raise _validation("body.filter should define exactly one condition", dict(spec))
    filter_kind = given[0]
    # The rich_text condition also applies to title, url, email and phone_number properties.
    text_like = entry["type"] in (*_TEXT_TYPES, *_STRING_TYPES)
    compatible = {entry["type"]} | ({"rich_text"} if text_like else set())
    if filter_kind not in compatible and not (
        filter_kind == "date" and entry["type"] in _TIMESTAMP_TYPES
    ):
        raise NotionAPIError(
            "validation_error",
            f"database property {entry['type']} does not match filter {filter_kind}",
        )
    ((op, expected),) = spec[filter_kind].items()
    check = _condition(entry["type"], op, expected)
    name = entry["name"]
    return lambda values, page: check(values[name])


def _sorted(
    rows: list[_Page],
    sorts: Any,
    schema: Mapping[str, Mapping[str, Any]],
    values: Mapping[str, Mapping[str, Any]],
) -> list[_Page]:
    if not isinstance(sorts, list):
        raise _validation("body.sorts should be an array", sorts)
    keys: list[tuple[Callable[[_Page], Any], bool]] = []
    for sort in sorts:
        descending = sort.get("direction", "ascending") == "descending"
        if "timestamp" in sort:
            stamp = sort["timestamp"]
            if stamp not in _TIMESTAMP_TYPES:
                raise _validation("body.sorts[0].timestamp should be a timestamp", stamp)
            keys.append((functools.partial(lambda s, p: getattr(p, s), stamp), descending))
            continue
        target = sort.get("property")
        if not any(target in (n, e["id"]) for n, e in schema.items()):
            raise NotionAPIError(
                "validation_error", f"Could not find sort property with name or id: {target}"
            )
        keys.append((functools.partial(lambda t, p: values[p.id][t], target), descending))

    def compare(a: _Page, b: _Page) -> int:
        for key, descending in keys:
            x, y = key(a), key(b)
            if x == y:
                continue
            if x is None or y is None:  # empty values sort last either way
                return 1 if x is None else -1
            result = -1 if x < y else 1
            return -result if descending else result
        return 0

    return sorted(rows, key=functools.cmp_to_key(compare))


# -- request helpers -----------------------------------------------------------------------------


def _valid_id(object_id: str, parameter: str) -> str:
    compact = _compact(object_id)
    if compact is None:
        raise NotionAPIError(
            "validation_error",
            f"path failed validation: path.{parameter} should be a valid uuid, "
            f"instead was `{json.dumps(object_id)}`.",
        )
    return compact


def _not_found(kind: str, compact: str) -> str:
    return (
        f"Could not find {kind} with ID: {_dashed(compact)}. Make sure the relevant pages "
        f"and databases are shared with your integration."
    )


def _validation(what: str, value: Any) -> NotionAPIError:
    return NotionAPIError(
        "validation_error", f"body failed validation: {what}, instead was `{json.dumps(value)}`."
    )


def _json_body(request: RecordedRequest) -> dict[str, Any]:
    if not request.body.strip():
        return {}
    try:
        body = json.loads(request.body)
    except ValueError as exc:
        raise NotionAPIError("invalid_json") from exc
    if not isinstance(body, dict):
        raise _validation("body should be an object", body)
    return body
