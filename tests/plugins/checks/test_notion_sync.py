"""The ``notion_sync`` check on a SQLite table against the Notion imitation: pages deleted,
archived, trashed, duplicated and edited, values compared by meaning, paging and 429s."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

COLUMNS = (
    "id TEXT PRIMARY KEY, decision TEXT, type TEXT, score REAL, decided_at TEXT,"
    " done INTEGER, link TEXT, notes TEXT, notion_page_id TEXT, notion_synced INTEGER"
)
PROPERTIES = {
    "Name": "title",
    "Type": "select",
    "Score": "number",
    "Decided": "date",
    "Done": "checkbox",
    "Link": "url",
    "Notes": "rich_text",
}
COMPARE = (
    "{decision: Name, type: Type, score: Score, decided_at: Decided, done: Done,"
    " link: Link, notes: Notes}"
)
PIPELINE = """\
version: 1
log_dir: logs
connections:
  db: {{type: sqlite, path: vault.db}}
  notion: {{type: notion, token: "${{NOTION_API_KEY}}", api_url: "{url}"}}
checks:
  - name: notion-sync
    type: notion_sync
    connection: db
    table: {table}
    notion: notion
    database_id: "${{NOTION_DATABASE_ID}}"
{extra}
"""


def row(number: int, page: str | None, **values) -> dict:
    """A row of the table as a sync would have written it (SQLite's shapes)."""
    return {
        "id": f"d{number:04d}",
        "decision": f"Decision {number}",
        "type": "Hiring",
        "score": 2.5,
        "decided_at": "2026-11-20T09:30:00Z",
        "done": 1,
        "link": None,
        "notes": None,
        "notion_page_id": page,
        "notion_synced": 1,
        **values,
    }


def page(number: int, **values) -> dict:
    """The page the sync made of ``row(number)`` (Notion's shapes)."""
    return {
        "Name": f"Decision {number}",
        "Type": "Hiring",
        "Score": 2.50,
        "Decided": "2026-11-20T09:30:00.000+00:00",
        "Done": True,
        "Link": None,
        "Notes": "",
        **values,
    }


@pytest.fixture
def synced(notion_server, tmp_path, monkeypatch):
    """``synced(count)``: a table of ``count`` rows and a Notion database holding their
    pages; returns (database id, data source id, page ids)."""
    monkeypatch.setenv("NOTION_API_KEY", notion_server.token)

    def make(count: int = 5, *, properties=PROPERTIES):
        database_id, source_id = notion_server.add_database("Decisions", properties=properties)
        ids = notion_server.add_pages(source_id, [page(n) for n in range(count)])
        insert(tmp_path, [row(n, ids[n]) for n in range(count)])
        monkeypatch.setenv("NOTION_DATABASE_ID", database_id)
        return database_id, source_id, ids

    return make


def insert(folder: Path, rows: list[dict]) -> None:
    with sqlite3.connect(folder / "vault.db") as db:
        db.execute(f"CREATE TABLE IF NOT EXISTS decision_vault ({COLUMNS})")
        for values in rows:
            marks = ", ".join("?" * len(values))
            db.execute(
                f"INSERT INTO decision_vault ({', '.join(values)}) VALUES ({marks})",
                list(values.values()),
            )


@pytest.fixture
def run_check(notion_server, angles_cli, pipeline_file, tmp_path):
    def run(extra: str = f"    compare: {COMPARE}", table: str = "decision_vault"):
        path = pipeline_file(PIPELINE.format(url=notion_server.url, extra=extra, table=table))
        result = angles_cli("check", path, "--format", "json")
        assert notion_server.token not in result.output + logs(tmp_path)
        [check] = result.json()["checks"]
        return result.exit_code, check

    return run


def logs(tmp_path: Path) -> str:
    folder = tmp_path / "logs"
    return "".join(p.read_text() for p in folder.iterdir()) if folder.is_dir() else ""


def test_a_table_notion_agrees_with_is_ok(synced, run_check, notion_server):
    _, source_id, _ = synced(5)
    code, check = run_check()
    assert (code, check["status"]) == (0, "ok"), check
    assert check["message"] == "Notion matches decision_vault: 5 synced rows, 5 pages"
    details = check["details"]
    assert details["missing_in_notion"] == {"count": 0, "samples": [], "in_trash": 0}
    assert details["orphans_in_notion"] == {"count": 0, "samples": []}
    assert details["drift"] == {"count": 0, "samples": [], "columns": {}}
    assert (details["synced_rows"], details["pages"]) == (5, 5)
    queries = notion_server.requests_to(f"/v1/data_sources/{source_id}/query")
    assert [q.json().get("in_trash") for q in queries] == [None, True]
    assert sorted(v for k, v in queries[0].query if k == "filter_properties") == sorted(
        s["id"] for s in notion_server.pages(source_id)[0]["properties"].values()
    )


def test_deleted_archived_trashed_duplicated_and_edited_pages(
    synced, run_check, notion_server, tmp_path
):
    _, source_id, ids = synced(8)
    notion_server.delete_page(ids[0])
    notion_server.update_page(ids[1], archived=True)
    notion_server.update_page(ids[2], in_trash=True)
    [twice] = notion_server.add_pages(source_id, [page(3)])  # the sync created it again
    notion_server.update_page(ids[4], {"Name": "Decision 4 (edited in Notion)"})
    notion_server.update_page(ids[5], {"Type": "Budget", "Done": False})
    code, check = run_check()
    assert (code, check["status"]) == (1, "warning"), check
    assert check["message"] == (
        "decision_vault: 3 synced rows with no page in Notion, 2 of them in the trash; "
        "1 Notion page no row points to; 2 rows differing from Notion (decision, done, type) "
        "(warning above 0)"
    )
    details = check["details"]
    assert details["missing_in_notion"] == {
        "count": 3,
        "samples": ["d0000", "d0001", "d0002"],
        "in_trash": 2,
    }
    assert details["orphans_in_notion"] == {"count": 1, "samples": [twice]}
    assert details["drift"] == {
        "count": 2,
        "samples": ["d0004", "d0005"],
        "columns": {"decision": 1, "type": 1, "done": 1},
    }


def test_values_are_compared_by_meaning_not_by_shape(synced, run_check, notion_server, tmp_path):
    properties = {**PROPERTIES, "Tags": "multi_select", "Due": "date"}
    _, source_id, _ = synced(0, properties=properties)
    agreeing = [
        # (row values, page values): each pair means the same
        ({"score": 3}, {"Score": 3.0}),
        ({"score": "1.50"}, {"Score": 1.5}),
        ({"done": 0}, {"Done": False}),
        ({"done": None}, {"Done": False}),
        ({"done": "true"}, {"Done": True}),
        ({"notes": None}, {"Notes": ""}),
        ({"link": ""}, {"Link": None}),
        ({"type": None}, {"Type": None}),
        ({"decided_at": "2026-11-20T10:30:00+01:00"}, {"Decided": "2026-11-20T09:30:00Z"}),
        ({"decided_at": "2026-11-20 09:30:00.000400+00:00"}, {}),
        ({"decided_at": "2026-11-20"}, {"Decided": "2026-11-20"}),
        ({"decided_at": "2026-11-20T23:00:00-05:00"}, {"Decided": "2026-11-20"}),
        ({"decision": "line one\r\nline two"}, {"Name": "line one\nline two"}),
        ({"decision": "x" * 500}, {"Name": "x" * 500}),
    ]
    differing = [
        ({"score": 2.51}, {}),
        ({"done": 0}, {}),
        ({"decided_at": "2026-11-20T09:31:00Z"}, {}),
        ({"decided_at": "2026-11-21"}, {"Decided": "2026-11-20"}),
        ({"type": "hiring"}, {}),
        ({"notes": " "}, {}),
        ({"decision": "x" * 500}, {"Name": "x" * 499 + "y"}),
    ]
    rows = []
    for number, (values, page_values) in enumerate(agreeing + differing):
        [page_id] = notion_server.add_pages(source_id, [page(number, **page_values)])
        rows.append(row(number, page_id, **values))
    insert(tmp_path, rows)
    code, check = run_check()
    assert code == 1
    drift = check["details"]["drift"]
    assert drift["count"] == len(differing), check
    assert drift["samples"] == [f"d{n:04d}" for n in range(len(agreeing), len(rows))]


def test_multi_select_compares_sets(synced, run_check, notion_server, tmp_path):
    _, source_id, _ = synced(0, properties={"Name": "title", "Tags": "multi_select"})
    pages = notion_server.add_pages(
        source_id, [{"Name": "a", "Tags": ["x", "y"]}, {"Name": "b", "Tags": ["x"]}]
    )
    with sqlite3.connect(tmp_path / "vault.db") as db:
        db.execute("CREATE TABLE tagged (id INTEGER PRIMARY KEY, tags TEXT, notion_page_id TEXT)")
        db.execute("INSERT INTO tagged VALUES (1, '[\"y\", \"x\"]', ?), (2, 'x, z', ?)", pages)
    code, check = run_check("    compare: {tags: Tags}", table="tagged")
    assert code == 1
    assert check["details"]["drift"]["samples"] == [2]


def test_thresholds_count_every_kind_of_problem(synced, run_check, notion_server):
    _, _, ids = synced(12)
    for page_id in ids[:11]:
        notion_server.update_page(page_id, in_trash=True)
    code, check = run_check()
    assert (code, check["status"]) == (2, "error")
    assert check["message"].endswith("(error above 10)")
    assert len(check["details"]["missing_in_notion"]["samples"]) == 10
    code, check = run_check("    warn_above: 20\n    error_above: 30")
    assert (code, check["status"]) == (0, "ok")
    assert check["message"] == (
        "decision_vault: 11 synced rows with no page in Notion, 11 of them in the trash"
    )


def test_synced_names_the_rows_that_claim_to_be_in_notion(
    synced, run_check, notion_server, tmp_path
):
    _, source_id, _ = synced(3)
    [draft] = notion_server.add_pages(source_id, [page(3)])
    insert(
        tmp_path,
        [
            row(3, draft, notion_synced=0),  # points to its page, does not claim to be synced
            row(4, None),  # claims to be synced, has no page id
            row(5, None, notion_synced=0),  # not synced yet
        ],
    )
    code, check = run_check('    synced: "notion_synced=eq.1"')
    assert code == 1
    details = check["details"]
    assert details["synced_rows"] == 4
    assert details["missing_in_notion"]["samples"] == ["d0004"]
    assert details["orphans_in_notion"]["count"] == 0
    code, check = run_check()  # by default, the rows with a page id
    assert code == 0
    assert check["details"]["synced_rows"] == 4
    assert check["details"]["missing_in_notion"]["count"] == 0


def test_page_ids_are_read_in_any_form(synced, run_check, notion_server, tmp_path):
    _, source_id, _ = synced(0)
    ids = notion_server.add_pages(source_id, [page(n) for n in range(3)])
    forms = [
        ids[0].replace("-", ""),
        ids[1].upper(),
        f"https://www.notion.so/Decision-2-{ids[2].replace('-', '')}?pvs=4",
    ]
    insert(tmp_path, [row(n, form) for n, form in enumerate(forms)])
    code, check = run_check()
    assert (code, check["message"]) == (0, "Notion matches decision_vault: 3 synced rows, 3 pages")


def test_notion_is_read_100_pages_a_request(synced, run_check, notion_server):
    _, source_id, _ = synced(250)
    code, check = run_check()
    assert code == 0
    assert check["message"] == "Notion matches decision_vault: 250 synced rows, 250 pages"
    queries = [q.json() for q in notion_server.requests_to(f"/v1/data_sources/{source_id}/query")]
    assert [q.get("page_size") for q in queries] == [100, 100, 100, 100]
    assert ["start_cursor" in q for q in queries] == [False, True, True, False]
    assert len(notion_server.requests) == 2 + len(queries)


def test_a_429_is_waited_for_as_retry_after_says(synced, run_check, notion_server):
    synced(3)
    notion_server.rate_limited(times=1, retry_after=1, path="/query$")
    started = time.monotonic()
    code, check = run_check()
    assert time.monotonic() - started >= 1
    assert (code, check["status"]) == (0, "ok"), check
    assert len(notion_server.requests_to("/query$")) == 3


def test_a_property_it_cannot_compare_is_named(synced, run_check):
    synced(1)
    code, check = run_check("    compare: {decision: Title}")
    assert (code, check["status"]) == (2, "error")
    assert check["message"].startswith("Notion: database ")
    assert (
        "has no property 'Title' (it has Decided, Done, Link, Name, Notes, Score, Type)"
        in (check["message"])
    )
    code, check = run_check("    compare: {nope: Name}")
    assert check["message"] == (
        "SQLite: table 'decision_vault' has no column 'nope' "
        "(check page_id_column: and compare: of the check)"
    )


def test_the_notion_key_must_name_a_notion_connection(angles_cli, pipeline_file, notion_server):
    text = PIPELINE.format(url=notion_server.url, extra="", table="decision_vault")
    text = text.replace("notion: notion", "notion: db")
    text = text.replace('"${NOTION_API_KEY}"', "x").replace('"${NOTION_DATABASE_ID}"', "0" * 32)
    result = angles_cli("validate", pipeline_file(text))
    assert result.exit_code == 3
    assert "checks[0].notion: a notion_sync check needs a notion connection; 'db' is a sqlite" in (
        result.stderr
    )
