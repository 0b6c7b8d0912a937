"""The Notion imitation, exercised with the real notion-client 3.1.0 (never mocked)."""

from __future__ import annotations

import logging

import httpx
import pytest
from notion_client import Client
from notion_client.client import RetryOptions
from notion_client.errors import APIResponseError, UnknownHTTPResponseError
from notion_client.helpers import collect_paginated_api

from angles.testing.notion import API_VERSION, NotionServer

# One logger for every client: each Client() without logger= adds a handler (services.md §1.1).
LOG = logging.getLogger("tests.notion")

TASKS = {"Name": "title", "Done": "checkbox", "Note": "rich_text", "Prio": "select", "Due": "date"}


def client(server: NotionServer, **options: object) -> Client:
    return Client(auth=server.token, base_url=server.url, logger=LOG, **options)


@pytest.fixture
def tasks(notion_server: NotionServer) -> tuple[str, str]:
    return notion_server.add_database(
        "Tasks",
        properties=TASKS,
        pages=[
            {
                "Name": "Bug bash",
                "Done": False,
                "Note": "urgent",
                "Prio": "High",
                "Due": "2024-02-01",
            },
            {"Name": "Release", "Done": True, "Note": "", "Prio": "Low", "Due": "2024-01-15"},
            {"Name": "Retro", "Done": False, "Note": "urgent", "Prio": None, "Due": None},
        ],
    )


def names(response: dict) -> list[str]:
    return [p["properties"]["Name"]["title"][0]["plain_text"] for p in response["results"]]


def test_users_me_and_the_headers_the_client_sends(notion_server: NotionServer) -> None:
    me = client(notion_server).users.me()

    assert me["object"] == "user" and me["type"] == "bot"
    assert me["bot"]["owner"] == {"type": "workspace", "workspace": True}
    assert me["request_id"]
    (request,) = notion_server.requests_to("^/v1/users/me$", "GET")
    assert request.header("Notion-Version") == API_VERSION == "2025-09-03"
    assert request.header("Authorization") == f"Bearer {notion_server.token}"
    assert request.header("User-Agent") == "ramnes/notion-sdk-py@3.1.0"


def test_database_lists_its_data_sources_and_the_data_source_has_the_schema(
    notion_server: NotionServer, tasks: tuple[str, str]
) -> None:
    database_id, data_source_id = tasks
    notion = client(notion_server)

    database = notion.databases.retrieve(database_id=database_id)
    assert database["object"] == "database"
    assert database["data_sources"] == [{"id": data_source_id, "name": "Tasks"}]
    assert "properties" not in database
    assert database["title"][0]["plain_text"] == "Tasks"

    source = notion.data_sources.retrieve(data_source_id=data_source_id)
    assert source["object"] == "data_source"
    assert source["parent"] == {"type": "database_id", "database_id": database_id}
    assert {name: p["type"] for name, p in source["properties"].items()} == TASKS
    assert source["properties"]["Name"]["id"] == "title"
    options = source["properties"]["Prio"]["select"]["options"]
    assert [o["name"] for o in options] == ["High", "Low"]


def test_ids_are_accepted_with_or_without_dashes(
    notion_server: NotionServer, tasks: tuple[str, str]
) -> None:
    database_id, _ = tasks
    compact = database_id.replace("-", "")
    assert client(notion_server).databases.retrieve(database_id=compact)["id"] == database_id


def test_query_returns_pages_shaped_like_notion(
    notion_server: NotionServer, tasks: tuple[str, str]
) -> None:
    database_id, data_source_id = tasks
    result = client(notion_server).data_sources.query(data_source_id=data_source_id)

    assert result["object"] == "list" and result["type"] == "page_or_data_source"
    assert result["has_more"] is False and result["next_cursor"] is None
    assert result["request_id"]
    page = result["results"][0]
    assert page["object"] == "page"
    assert page["parent"] == {
        "type": "data_source_id",
        "data_source_id": data_source_id,
        "database_id": database_id,
    }
    assert page["created_time"].endswith(":00.000Z")
    props = page["properties"]
    assert props["Done"] == {"id": props["Done"]["id"], "type": "checkbox", "checkbox": False}
    assert props["Due"]["date"] == {"start": "2024-02-01", "end": None, "time_zone": None}
    assert props["Prio"]["select"]["name"] == "High"
    assert result["results"][1]["properties"]["Note"]["rich_text"] == []
    assert result["results"][2]["properties"]["Prio"]["select"] is None
    assert result["results"][2]["properties"]["Due"]["date"] is None


def test_collect_paginated_api_reads_250_rows_in_three_requests(
    notion_server: NotionServer,
) -> None:
    rows = [{"Name": f"row {i}", "Done": i % 2 == 0} for i in range(250)]
    _, data_source_id = notion_server.add_database(
        "Big", {"Name": "title", "Done": "checkbox"}, rows
    )

    pages = collect_paginated_api(
        client(notion_server).data_sources.query, data_source_id=data_source_id
    )

    assert [p["properties"]["Name"]["title"][0]["plain_text"] for p in pages] == [
        f"row {i}" for i in range(250)
    ]
    bodies = [r.json() for r in notion_server.requests_to("/query$", "POST")]
    assert len(bodies) == 3
    assert "start_cursor" not in bodies[0]
    assert all(isinstance(b["start_cursor"], str) for b in bodies[1:])


def test_page_size_and_cursor_paging(notion_server: NotionServer) -> None:
    _, source = notion_server.add_database("Rows", pages=[{"Name": str(i)} for i in range(5)])
    notion = client(notion_server)

    first = notion.data_sources.query(data_source_id=source, page_size=2)
    assert names(first) == ["0", "1"] and first["has_more"] is True
    second = notion.data_sources.query(
        data_source_id=source, page_size=2, start_cursor=first["next_cursor"]
    )
    assert names(second) == ["2", "3"]
    last = notion.data_sources.query(
        data_source_id=source, page_size=2, start_cursor=second["next_cursor"]
    )
    assert names(last) == ["4"] and last["has_more"] is False and last["next_cursor"] is None


@pytest.mark.parametrize(
    ("query_filter", "expected"),
    [
        ({"property": "Done", "checkbox": {"equals": False}}, ["Bug bash", "Retro"]),
        ({"property": "Done", "checkbox": {"does_not_equal": False}}, ["Release"]),
        ({"property": "Name", "title": {"equals": "Retro"}}, ["Retro"]),
        ({"property": "Name", "rich_text": {"contains": "e"}}, ["Release", "Retro"]),
        ({"property": "Note", "rich_text": {"equals": "urgent"}}, ["Bug bash", "Retro"]),
        ({"property": "Note", "rich_text": {"is_empty": True}}, ["Release"]),
        ({"property": "Prio", "select": {"equals": "High"}}, ["Bug bash"]),
        ({"property": "Due", "date": {"before": "2024-01-20"}}, ["Release"]),
        ({"property": "Due", "date": {"is_empty": True}}, ["Retro"]),
        (
            {
                "and": [
                    {"property": "Done", "checkbox": {"equals": False}},
                    {"property": "Note", "rich_text": {"equals": "urgent"}},
                    {"or": [{"property": "Prio", "select": {"is_empty": True}}]},
                ]
            },
            ["Retro"],
        ),
    ],
)
def test_filters(
    notion_server: NotionServer, tasks: tuple[str, str], query_filter: dict, expected: list[str]
) -> None:
    result = client(notion_server).data_sources.query(data_source_id=tasks[1], filter=query_filter)
    assert names(result) == expected


def test_number_and_url_filters(notion_server: NotionServer) -> None:
    _, source = notion_server.add_database(
        "Links",
        {"Name": "title", "Count": "number", "Link": "url"},
        [
            {"Name": "a", "Count": 1, "Link": "https://a.example"},
            {"Name": "b", "Count": 5, "Link": None},
            {"Name": "c", "Count": None, "Link": "https://c.example"},
        ],
    )
    notion = client(notion_server)
    result = notion.data_sources.query(
        data_source_id=source, filter={"property": "Count", "number": {"greater_than": 2}}
    )
    assert names(result) == ["b"]
    result = notion.data_sources.query(
        data_source_id=source, filter={"property": "Link", "rich_text": {"contains": "c.ex"}}
    )
    assert names(result) == ["c"]
    result = notion.data_sources.query(
        data_source_id=source, filter={"property": "Link", "url": {"is_empty": True}}
    )
    assert names(result) == ["b"]


def test_filter_and_sorts_are_applied_before_paging(
    notion_server: NotionServer, tasks: tuple[str, str]
) -> None:
    notion = client(notion_server)
    result = notion.data_sources.query(
        data_source_id=tasks[1], sorts=[{"property": "Due", "direction": "ascending"}]
    )
    assert names(result) == ["Release", "Bug bash", "Retro"]  # empty dates sort last
    result = notion.data_sources.query(
        data_source_id=tasks[1],
        filter={"property": "Done", "checkbox": {"equals": False}},
        sorts=[{"property": "Name", "direction": "descending"}],
        page_size=1,
    )
    assert names(result) == ["Retro"] and result["has_more"] is True


def test_timestamp_filter_and_trashed_pages(notion_server: NotionServer) -> None:
    _, source = notion_server.add_database("Log")
    old, _new, gone = notion_server.add_pages(
        source, [{"Name": "old"}, {"Name": "new"}, {"Name": "gone"}]
    )
    notion_server.update_page(old, last_edited_time="2020-01-01T00:00:00.000Z")
    notion_server.update_page(gone, in_trash=True)

    result = client(notion_server).data_sources.query(
        data_source_id=source,
        filter={"timestamp": "last_edited_time", "last_edited_time": {"after": "2021-01-01"}},
    )
    assert names(result) == ["new"]
    assert client(notion_server).pages.retrieve(page_id=old)["last_edited_time"].startswith("2020")


def test_filter_properties_limits_the_returned_properties(
    notion_server: NotionServer, tasks: tuple[str, str]
) -> None:
    result = client(notion_server).data_sources.query(
        data_source_id=tasks[1], filter_properties=["title", "Done"]
    )
    assert set(result["results"][0]["properties"]) == {"Name", "Done"}


def test_bad_token_is_unauthorized(notion_server: NotionServer) -> None:
    notion = Client(auth="ntn_wrong", base_url=notion_server.url, logger=LOG)
    with pytest.raises(APIResponseError) as caught:
        notion.users.me()
    assert caught.value.code == "unauthorized"
    assert caught.value.status == 401
    assert str(caught.value) == "API token is invalid."
    assert caught.value.request_id
    assert len(notion_server.requests) == 1  # a 401 is not retried


def test_unshared_database_is_not_found(
    notion_server: NotionServer, tasks: tuple[str, str]
) -> None:
    database_id, data_source_id = tasks
    notion_server.share(database_id, False)
    notion = client(notion_server)

    with pytest.raises(APIResponseError) as caught:
        notion.databases.retrieve(database_id=database_id)
    assert caught.value.code == "object_not_found" and caught.value.status == 404
    assert str(caught.value) == (
        f"Could not find database with ID: {database_id}. Make sure the relevant pages and "
        "databases are shared with your integration."
    )
    with pytest.raises(APIResponseError) as caught:
        notion.data_sources.query(data_source_id=data_source_id)
    assert caught.value.code == "object_not_found"

    notion_server.share(database_id)
    assert notion.databases.retrieve(database_id=database_id)["id"] == database_id


@pytest.mark.parametrize("page_size", [101, 0])
def test_page_size_out_of_range_is_a_validation_error(
    notion_server: NotionServer, tasks: tuple[str, str], page_size: int
) -> None:
    with pytest.raises(APIResponseError) as caught:
        client(notion_server).data_sources.query(data_source_id=tasks[1], page_size=page_size)
    assert caught.value.code == "validation_error" and caught.value.status == 400
    assert f"instead was `{page_size}`" in str(caught.value)


def test_other_request_errors(notion_server: NotionServer, tasks: tuple[str, str]) -> None:
    notion = client(notion_server)
    with pytest.raises(APIResponseError) as caught:
        notion.databases.retrieve(database_id="not-an-id")
    assert caught.value.code == "validation_error"
    with pytest.raises(APIResponseError) as caught:
        notion.data_sources.query(data_source_id=tasks[1], start_cursor="nonsense")
    assert caught.value.code == "validation_error"
    with pytest.raises(APIResponseError) as caught:
        notion.data_sources.query(
            data_source_id=tasks[1], filter={"property": "Nope", "checkbox": {"equals": True}}
        )
    assert caught.value.code == "validation_error"
    with pytest.raises(APIResponseError) as caught:
        notion.data_sources.query(
            data_source_id=tasks[1], filter={"property": "Done", "rich_text": {"equals": "x"}}
        )
    assert caught.value.code == "validation_error"
    for bad in ({"and": "nope"}, {"property": "Due", "date": {"after": "not a date"}}):
        with pytest.raises(APIResponseError) as caught:
            notion.data_sources.query(data_source_id=tasks[1], filter=bad)
        assert caught.value.code == "validation_error"
    with pytest.raises(APIResponseError) as caught:
        notion.data_sources.query(data_source_id=tasks[1], sorts=["Due"])
    assert caught.value.code == "validation_error"
    with pytest.raises(AttributeError):
        notion.databases.query  # noqa: B018  (this client version has no databases.query)


def test_missing_version_and_unknown_url(notion_server: NotionServer) -> None:
    auth = {"Authorization": f"Bearer {notion_server.token}"}
    response = httpx.get(f"{notion_server.url}/v1/users/me", headers=auth)
    assert response.status_code == 400
    body = response.json()
    assert body["object"] == "error" and body["code"] == "missing_version"
    assert body["request_id"]

    # notion-client does not know missing_version: it is an UnknownHTTPResponseError.
    no_version = client(notion_server, notion_version="")
    with pytest.raises(UnknownHTTPResponseError) as caught:
        no_version.users.me()
    assert caught.value.status == 400

    response = httpx.get(
        f"{notion_server.url}/v1/nothing", headers={**auth, "Notion-Version": API_VERSION}
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_request_url")


def test_data_sources_need_the_2025_version(
    notion_server: NotionServer, tasks: tuple[str, str]
) -> None:
    old = client(notion_server, notion_version="2022-06-28")
    with pytest.raises(APIResponseError) as caught:
        old.data_sources.retrieve(data_source_id=tasks[1])
    assert caught.value.code == "invalid_request_url"
    assert "properties" in old.databases.retrieve(database_id=tasks[0])


def test_429_with_retry_after_0_is_retried_by_the_client(
    notion_server: NotionServer, tasks: tuple[str, str]
) -> None:
    notion_server.rate_limited(times=2, retry_after=0)
    result = client(notion_server).data_sources.query(data_source_id=tasks[1])

    assert len(result["results"]) == 3
    assert len(notion_server.requests_to("/query$")) == 3


def test_429_three_times_gives_up(notion_server: NotionServer) -> None:
    notion_server.rate_limited(times=3, retry_after=0)
    with pytest.raises(APIResponseError) as caught:
        client(notion_server).users.me()
    assert caught.value.code == "rate_limited" and caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "0"
    assert len(notion_server.requests) == 3


def test_server_errors_are_retried_on_get_only(
    notion_server: NotionServer, tasks: tuple[str, str]
) -> None:
    notion = client(notion_server, retry=RetryOptions(initial_retry_delay_ms=1))
    notion_server.fail_with("internal_server_error", method="POST", times=5)
    with pytest.raises(APIResponseError) as caught:
        notion.data_sources.query(data_source_id=tasks[1])
    assert caught.value.code == "internal_server_error" and caught.value.status == 500
    assert len(notion_server.requests) == 1

    notion_server.clear()
    notion_server.fail_with("service_unavailable", method="GET", times=2)
    assert notion.databases.retrieve(database_id=tasks[0])["object"] == "database"
    assert len(notion_server.requests) == 3


def test_unknown_codes_become_unknown_http_response_errors(notion_server: NotionServer) -> None:
    notion_server.fail_with("service_overload")
    with pytest.raises(UnknownHTTPResponseError) as caught:
        client(notion_server).users.me()
    assert caught.value.status == 529


def test_builtin_rate_limiter(notion_server: NotionServer) -> None:
    notion_server.limit_rate(3.0, burst=3)
    headers = {"Authorization": f"Bearer {notion_server.token}", "Notion-Version": API_VERSION}
    with httpx.Client(base_url=notion_server.url, headers=headers) as http:
        statuses = [http.get("/v1/users/me") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[-1].json()["code"] == "rate_limited"
    assert statuses[-1].headers["Retry-After"] == "1"

    notion_server.limit_rate(None)
    assert httpx.get(f"{notion_server.url}/v1/users/me", headers=headers).status_code == 200


def test_builtin_rate_limiter_with_a_notion_client(notion_server: NotionServer) -> None:
    # With Retry-After: 0 the client's three attempts all land inside the same empty bucket.
    notion_server.limit_rate(0.5, burst=1, retry_after=0)
    notion = client(notion_server)
    notion.users.me()
    with pytest.raises(APIResponseError) as caught:
        notion.users.me()
    assert caught.value.code == "rate_limited"
    assert len(notion_server.requests) == 4


def test_each_test_starts_empty(notion_server: NotionServer) -> None:
    assert notion_server.requests == []
    with pytest.raises(APIResponseError):
        client(notion_server, retry=False).data_sources.query(
            data_source_id="00000000-0000-0000-0000-000000000000"
        )


def test_the_trash_is_queried_apart_and_archived_is_its_older_name(
    notion_server: NotionServer,
) -> None:
    _, source = notion_server.add_database("Log")
    _, trashed, archived = notion_server.add_pages(
        source, [{"Name": "kept"}, {"Name": "trashed"}, {"Name": "archived"}]
    )
    notion_server.update_page(trashed, in_trash=True)
    notion_server.update_page(archived, archived=True)
    notion = client(notion_server)

    assert names(notion.data_sources.query(data_source_id=source)) == ["kept"]
    for flag in ("in_trash", "archived"):
        trash = notion.data_sources.query(data_source_id=source, **{flag: True})
        assert names(trash) == ["trashed", "archived"]
        assert all(p["in_trash"] and p["archived"] for p in trash["results"])
    assert names(notion.data_sources.query(data_source_id=source, in_trash=False)) == ["kept"]
    page = notion.pages.retrieve(page_id=archived)
    assert (page["in_trash"], page["archived"]) == (True, True)
    with pytest.raises(APIResponseError) as caught:
        notion.data_sources.query(data_source_id=source, in_trash="yes")
    assert caught.value.code == "validation_error"


def test_a_page_emptied_from_the_trash_is_gone(notion_server: NotionServer) -> None:
    _, source = notion_server.add_database("Log")
    gone, _ = notion_server.add_pages(source, [{"Name": "gone"}, {"Name": "kept"}])
    notion_server.delete_page(gone)
    notion = client(notion_server, retry=False)
    assert names(notion.data_sources.query(data_source_id=source)) == ["kept"]
    assert names(notion.data_sources.query(data_source_id=source, in_trash=True)) == []
    with pytest.raises(APIResponseError) as caught:
        notion.pages.retrieve(page_id=gone)
    assert caught.value.code == "object_not_found"
