"""A backup and a restore dry run of a large table through the ``supabase`` connection.

The table lives in a throw-away database of the local PostgreSQL, filled with
``INSERT … SELECT generate_series``; the PostgREST gateway of ``angles.testing`` serves it
in this process (its CPU is not counted). Each case runs as ``angles`` in a child process;
its user + system CPU come from ``os.wait4``, its peak RSS from its own ``VmHWM`` (see
``common.run_measured``: ``ru_maxrss`` would include what this process holds).

* ``backup``: ``angles backup`` to a local sink; the gateway's request log gives the number
  of HTTP requests (target ≤ ceil(N/1000) + 5) and the child's peak RSS should stay under
  100 MB.
* ``baseline``: a raw httpx loop fetching the same keyset pages (``limit=1000``) and
  parsing them, then discarding them: the floor of any client. The backup's wall time
  should be within 1.3 times of it; its CPU beyond the loop's (start-up, the canonical
  encoding of each row, the file) is printed too.
* ``restore``: ``angles restore`` (a dry run) of that backup against the unchanged table:
  memory should stay flat, as for the backup.

    .venv/bin/python bench/bench_supabase.py [ROWS]      # default 1,000,000
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import run_measured

#: A backup's wall time against the bare loop's (the Data API's pages are the cost).
TARGET = 1.3

PIPELINE = """\
version: 1
name: bench
log_dir: logs
connections:
  supabase: {type: supabase, url: "%(url)s", key: "${SUPABASE_KEY}"}
sinks:
  local: {type: local, path: backups}
backups:
  - {name: decision_vault, connection: supabase, table: decision_vault, sinks: [local]}
"""

TABLE = """
CREATE TABLE decision_vault (
    id uuid PRIMARY KEY, decision text NOT NULL, type text, date date,
    notion_synced boolean NOT NULL DEFAULT false, notion_page_id text,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz);
INSERT INTO decision_vault
SELECT md5(g::text)::uuid,
       'Décision n° ' || g || ': ship the sync worker — étape ' || g % 97 || ' 🚀',
       (ARRAY['Architecture', 'Product', 'Process', 'Hiring'])[g % 4 + 1],
       date '2025-08-01', g % 3 <> 0,
       CASE WHEN g % 5 = 0 THEN NULL ELSE md5('page' || g) END,
       timestamptz '2025-08-01 09:20+00', timestamptz '2025-08-01 09:25+00'
FROM generate_series(1, {rows}) g;
ANALYZE decision_vault;
"""

#: The floor: the same pages fetched with httpx and parsed, nothing else.
BASELINE = """
import json, sys, httpx
url, key, rows = sys.argv[1], sys.argv[2], 0
headers = {"apikey": key, "Authorization": "Bearer " + key, "Accept-Profile": "public"}
with httpx.Client(headers=headers, timeout=60) as client:
    params = {"select": "*", "order": "id.asc", "limit": "1000"}
    while True:
        page = client.get(url + "/rest/v1/decision_vault", params=params).json()
        if not page:
            break
        rows += len(page)
        params["id"] = "gt." + page[-1]["id"]
print(rows)
"""


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[str, dict[str, float]]:
    """Run ``python COMMAND``; return its stdout and its own peak RSS (MB), CPU and wall seconds."""
    done = run_measured(command, env=env, cwd=cwd)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command[:3]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout, {"wall": done.wall, "cpu": done.cpu, "rss_mb": done.rss_mb}


def report(name: str, rows: int, figures: dict[str, float], note: str = "") -> None:
    print(
        f"{name:<9} {figures['wall']:>8.1f} s {figures['cpu']:>8.1f} s "
        f"{figures['cpu'] / rows * 1e6:>7.1f} µs {figures['rss_mb']:>7.1f} MB  {note}"
    )


def main(rows: int) -> None:
    from angles.testing.postgres import create_database, drop_database, ensure_postgres
    from angles.testing.postgrest import PostgrestServer

    admin = ensure_postgres()
    url = create_database(admin, prefix="angles_bench")
    try:
        started = time.perf_counter()
        with _db(url) as db:
            db.execute(TABLE.replace("{rows}", str(int(rows))))
        print(f"{rows:,} rows inserted in {time.perf_counter() - started:.1f} s", flush=True)
        server = PostgrestServer(url).start()
        with tempfile.TemporaryDirectory() as tmp, _stopping(server):
            folder = Path(tmp)
            path = folder / "angles.yaml"
            path.write_text(PIPELINE % {"url": server.url}, encoding="utf-8")
            env = {**os.environ, "SUPABASE_KEY": server.service_role_key}
            angles = ["-m", "angles"]
            print(f"{'case':<9} {'wall':>10} {'CPU':>10} {'CPU/row':>10} {'peak RSS':>10}")

            server.clear()
            output, backup = run([*angles, "backup", str(path), "--format", "json"], env, folder)
            [result] = json.loads(output[output.index("{") :])["backups"]
            assert result["record_count"] == rows, result
            requests = len(server.requests)
            target = math.ceil(rows / 1000) + 5
            verdict = "ok" if requests <= target else "OVER TARGET"
            report("backup", rows, backup, f"{requests} requests (target ≤ {target}: {verdict})")

            server.clear()
            output, baseline = run(
                ["-c", BASELINE, server.url, server.service_role_key], env, folder
            )
            assert int(output.split()[-1]) == rows, output
            report("baseline", rows, baseline, f"{len(server.requests)} requests (raw httpx)")

            output, restore = run([*angles, "restore", str(path), "--format", "json"], env, folder)
            plan = json.loads(output[output.index("{") :])
            assert plan["counts"]["unchanged"] == rows, plan["counts"]
            report("restore", rows, restore, "dry run against the unchanged table")

            ratio = backup["wall"] / baseline["wall"]
            verdict = "ok" if ratio <= TARGET else "OVER TARGET"
            print(f"backup / baseline, wall: {ratio:.2f}x (target {TARGET}x: {verdict})")
            extra = (backup["cpu"] - baseline["cpu"]) / rows * 1e6
            print(
                f"angles' own CPU beyond fetching and parsing: {extra:.1f} µs/row "
                f"({backup['cpu'] / max(baseline['cpu'], 1e-9):.1f} times the baseline)"
            )
            for name, figures in (("backup", backup), ("restore", restore)):
                flag = "ok" if figures["rss_mb"] < 100 else "OVER 100 MB"
                print(f"{name} peak RSS {figures['rss_mb']:.1f} MB: {flag}")
    finally:
        drop_database(admin, url)


@contextlib.contextmanager
def _stopping(server: Any) -> Iterator[None]:
    try:
        yield
    finally:
        server.stop()


def _db(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


if __name__ == "__main__":
    main(int(sys.argv[1].replace("_", "")) if len(sys.argv) > 1 else 1_000_000)
