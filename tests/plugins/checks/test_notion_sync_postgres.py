"""The ``notion_sync`` check through the ``postgres`` and ``supabase`` connections: uuid page
ids, booleans, numerics and timestamptz compared with Notion's values."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres

CONNECTIONS = {
    "postgres": '{type: postgres, url: "${DATABASE_URL}"}',
    "supabase": '{type: supabase, url: "${SUPABASE_URL}", key: "${SUPABASE_KEY}", retries: 0}',
}
PIPELINE = """\
version: 1
log_dir: logs
connections:
  db: {connection}
  notion: {{type: notion, token: "${{NOTION_API_KEY}}", api_url: "{url}"}}
checks:
  - name: notion-sync
    type: notion_sync
    connection: db
    table: decision_vault
    notion: notion
    database_id: "${{NOTION_DATABASE_ID}}"
    synced: "notion_synced=is.true"
    compare: {{decision: Name, score: Score, decided_at: Decided, done: Done}}
"""


@pytest.mark.parametrize("connection", ["postgres", "supabase"])
def test_missing_orphaned_and_drifted_through_a_database(
    connection, postgres_db, postgrest, notion_server, angles_cli, pipeline_file, monkeypatch
):
    database_id, source_id = notion_server.add_database(
        "Decisions",
        properties={"Name": "title", "Score": "number", "Decided": "date", "Done": "checkbox"},
    )
    pages = notion_server.add_pages(
        source_id,
        [
            {"Name": f"Decision {n}", "Score": 1.5, "Decided": "2026-11-20T09:30:00Z", "Done": True}
            for n in range(5)
        ],
    )
    postgres_db.execute(
        "CREATE TABLE decision_vault (id integer PRIMARY KEY, decision text, score numeric(6,2),"
        " decided_at timestamptz, done boolean, notion_page_id uuid, notion_synced boolean)"
    )
    for n, page_id in enumerate(pages[:4]):
        postgres_db.execute(
            "INSERT INTO decision_vault VALUES (%s, %s, 1.50, %s, true, %s, true)",
            [n, f"Decision {n}", "2026-11-20 10:30:00+01", page_id],
        )
    postgres_db.execute("UPDATE decision_vault SET score = 1.25 WHERE id = 1")
    postgres_db.execute("UPDATE decision_vault SET done = false WHERE id = 2")
    notion_server.update_page(pages[3], in_trash=True)
    monkeypatch.setenv("DATABASE_URL", postgres_db.url)
    monkeypatch.setenv("SUPABASE_URL", postgrest.url)
    monkeypatch.setenv("SUPABASE_KEY", postgrest.service_role_key)
    monkeypatch.setenv("NOTION_API_KEY", notion_server.token)
    monkeypatch.setenv("NOTION_DATABASE_ID", database_id)

    text = PIPELINE.format(connection=CONNECTIONS[connection], url=notion_server.url)
    result = angles_cli("check", pipeline_file(text), "--format", "json")
    [check] = result.json()["checks"]
    assert (result.exit_code, check["status"]) == (1, "warning"), check
    details = check["details"]
    assert details["missing_in_notion"] == {"count": 1, "samples": [3], "in_trash": 1}
    assert details["orphans_in_notion"] == {"count": 1, "samples": [pages[4]]}
    assert details["drift"] == {"count": 2, "samples": [1, 2], "columns": {"score": 1, "done": 1}}
    for secret in (notion_server.token, postgrest.service_role_key):
        assert secret not in result.output
