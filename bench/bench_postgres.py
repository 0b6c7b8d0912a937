"""A backup through the ``postgres`` connection against psql's own JSON export.

Fills a ``decision_vault``-like table with N rows (default 1,000,000) in a throw-away
database, then times, in the same run:

* ``psql``: ``copy (select row_to_json(t) from decision_vault t order by id) to stdout``
  into a file — PostgreSQL writing the same JSON with no client work at all;
* ``angles backup``: the command line in a subprocess, through ``postgres`` to a local
  sink (count, COPY stream, parse, canonical JSON, checksum, file), with its own peak RSS
  (its ``VmHWM``, see ``common.run_measured``).

Target: the backup within 2.5x of psql. Needs a local PostgreSQL (as the tests find it) or
``ANGLES_TEST_POSTGRES_URL``.

    .venv/bin/python bench/bench_postgres.py [ROWS]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from common import run_measured

from angles.testing.postgres import create_database, drop_database, ensure_postgres

TARGET_RATIO = 2.5
COPY = "copy (select row_to_json(t) from decision_vault t order by id) to stdout"
TABLE = """
CREATE TABLE decision_vault (
    id uuid PRIMARY KEY,
    decision text NOT NULL,
    type text,
    date date,
    notion_synced boolean NOT NULL DEFAULT false,
    notion_page_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
)"""
FILL = """
INSERT INTO decision_vault
SELECT md5(i::text)::uuid,
       'Decision ' || i || ': adopt the ' || (ARRAY['queue','cache','schema','review'])[1 + i %% 4]
           || ' proposal — après revue ✓',
       (ARRAY['Architecture','Product','Process','Hiring'])[1 + i %% 4],
       date '2025-01-01' + i %% 365,
       i %% 7 <> 0,
       CASE WHEN i %% 7 <> 0 THEN md5('page' || i) END,
       timestamptz '2025-01-01 00:00:00+00' + i * interval '17 seconds' + i * interval '1 microsecond',
       timestamptz '2025-01-01 00:05:00+00' + i * interval '17 seconds'
FROM generate_series(1, %s) AS i
"""
PIPELINE = {
    "version": 1,
    "name": "bench",
    "connections": {"db": {"type": "postgres", "url": "${DATABASE_URL}"}},
    "sinks": {"local": {"type": "local", "path": "backups"}},
    "backups": [{"name": "dv", "connection": "db", "table": "decision_vault", "sinks": ["local"]}],
    "log_dir": "logs",
}


def fill(url: str, rows: int) -> None:
    """Create and fill the table, then vacuum it so both readers find it settled."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TABLE)
        conn.execute(FILL, [rows])
        conn.execute("VACUUM ANALYZE decision_vault")


def time_psql(url: str, target: Path) -> float:
    started = time.perf_counter()
    with target.open("wb") as out:
        subprocess.run(["psql", "-X", "-q", url, "-c", COPY], stdout=out, check=True)
    return time.perf_counter() - started


def time_backup(url: str, folder: Path) -> tuple[float, float, dict]:
    """Seconds, peak RSS (MB) and the JSON report of ``angles backup`` in a subprocess."""
    (folder / "angles.yaml").write_text(json.dumps(PIPELINE), encoding="utf-8")
    environment = {**os.environ, "DATABASE_URL": url}
    done = run_measured(
        ["-m", "angles", "backup", "--format", "json", "angles.yaml"], cwd=folder, env=environment
    )
    if done.returncode != 0:
        raise SystemExit(f"angles backup failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.wall, done.rss_mb, json.loads(done.stdout)


def main(argv: list[str]) -> int:
    rows = int(argv[0].replace("_", "")) if argv else 1_000_000
    admin = ensure_postgres()
    url = create_database(admin, prefix="angles_bench_postgres")
    try:
        started = time.perf_counter()
        fill(url, rows)
        print(f"{rows:,} rows created in {time.perf_counter() - started:.1f}s")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            backup_s, peak_mb, report = time_backup(url, folder)
            psql_s = time_psql(url, folder / "psql.json")
            [run] = report["backups"]
            [stored] = run["files"]
            size = (folder / "backups" / stored["name"]).stat().st_size
            psql_size = (folder / "psql.json").stat().st_size
        ratio = backup_s / psql_s
        print(f"psql copy row_to_json : {psql_s:7.2f}s  ({psql_size / 1e6:,.0f} MB)")
        print(
            f"angles backup         : {backup_s:7.2f}s  ({size / 1e6:,.0f} MB, "
            f"{run['record_count']:,} rows, peak RSS {peak_mb:.0f} MB)"
        )
        verdict = "within" if ratio <= TARGET_RATIO else "OVER"
        print(f"ratio                 : {ratio:7.2f}x  ({verdict} the {TARGET_RATIO}x target)")
        return 0 if ratio <= TARGET_RATIO and run["record_count"] == rows else 1
    finally:
        drop_database(admin, url)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
