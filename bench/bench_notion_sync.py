"""Requests and wall time of ``notion_sync`` on 10,000 rows and 10,000 pages.

Against the Notion imitation on 127.0.0.1, with a SQLite table: the check (one title
property compared) against paging the same data source alone through the same connection
(100 pages a request, the same properties). Both are paced to Notion's three requests a
second, which dominates; the difference is the check's own work (the table streamed,
the trash read, the comparison). Peak Python memory of the check is traced too.

    .venv/bin/python bench/bench_notion_sync.py [ROWS]

Measured (2 shared cores): paging alone 100 requests in 31.9 s; notion_sync 103 requests
(the database, its data source, 100 pages of results, the trash) in 34.9 s, with a peak
of 6.0 MiB of traced Python memory.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from angles.core.config import load_pipeline
from angles.core.context import Context
from angles.core.plugins import load_plugins
from angles.testing.notion import NotionServer

PIPELINE = """\
version: 1
name: bench
connections:
  db: {{type: sqlite, path: vault.db}}
  notion: {{type: notion, token: "{token}", api_url: "{url}"}}
checks:
  - name: notion-sync
    type: notion_sync
    connection: db
    table: decision_vault
    notion: notion
    database_id: "{database_id}"
    compare: {{decision: Name}}
    timeout_seconds: 600
"""


def main(rows: int) -> None:
    with NotionServer() as server, tempfile.TemporaryDirectory() as folder:
        database_id, source_id = server.add_database("Decisions", properties={"Name": "title"})
        pages = server.add_pages(source_id, [{"Name": f"Decision {n}"} for n in range(rows)])
        with sqlite3.connect(Path(folder) / "vault.db") as db:
            db.execute(
                "CREATE TABLE decision_vault (id INTEGER PRIMARY KEY, decision TEXT,"
                " notion_page_id TEXT)"
            )
            db.executemany(
                "INSERT INTO decision_vault VALUES (?, ?, ?)",
                [(n, f"Decision {n}", page) for n, page in enumerate(pages)],
            )
        path = Path(folder) / "angles.yaml"
        path.write_text(
            PIPELINE.format(token=server.token, url=server.url, database_id=database_id)
        )
        plugins = load_plugins()
        context = Context(load_pipeline(path, plugins), plugins)

        server.clear()
        started = time.perf_counter()
        notion = context.connection("notion")
        paged = sum(1 for _ in notion.query(source_id, filter_properties=["title"]))  # type: ignore[attr-defined]
        paging_seconds = time.perf_counter() - started
        paging_requests = len(server.requests)

        server.clear()
        entry = context.pipeline.checks[0]
        check = context.create("check", entry["name"], entry)
        tracemalloc.start()
        started = time.perf_counter()
        result = check.run()  # type: ignore[attr-defined]
        check_seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        context.close()

    print(f"{rows} rows, {rows} pages")
    print(f"  paging alone: {paged} pages, {paging_requests} requests, {paging_seconds:.1f}s")
    print(
        f"  notion_sync:  {len(server.requests)} requests, {check_seconds:.1f}s, "
        f"peak traced memory {peak:.1f} MiB"
    )
    print(f"  {result.status.value}: {result.message}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
