"""Backups, dry runs and restores through ``postgres`` against PostgreSQL's own tools.

Fills a ``decision_vault``-like table (with a jsonb column) with N rows (default
1,000,000) in a throw-away database and times, in the same run, each piece of work
beside its floor:

=============================  ======================================================
angles                         floor
=============================  ======================================================
``angles backup``              ``copy (select row_to_json(t) … order by id) to stdout``
                               (the floor of any JSON backup); ``pg_dump --data-only``
``angles restore`` (dry run)   the same diff as SQL: the backup's rows ``COPY``-ed into
of 10 % deleted, 10 % changed  a table, counted against the live one by one query
``angles restore --live``      the same load, then one ``INSERT … ON CONFLICT`` merge
``--live`` into an empty table ``psql -f`` of ``pg_dump --data-only`` (``COPY FROM``)
=============================  ======================================================

Every angles figure is a subprocess with its own peak RSS (``VmHWM``). A live restore
first saves a pre-restore backup of the table, which its floor does not do.

    .venv/bin/python bench/bench_speed.py [ROWS]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from common import angles_against as angles

from angles.testing.postgres import create_database, drop_database, ensure_postgres

TABLE = """
CREATE TABLE decision_vault (
    id uuid PRIMARY KEY,
    decision text NOT NULL,
    type text,
    amount numeric(12, 2),
    payload jsonb,
    notion_synced boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
)"""
FILL = """
INSERT INTO decision_vault
SELECT md5(i::text)::uuid,
       'Decision ' || i || ': adopt the ' || (ARRAY['queue','cache','schema','review'])[1 + i %% 4]
           || ' proposal — après revue ✓',
       (ARRAY['Architecture','Product','Process','Hiring'])[1 + i %% 4],
       (i %% 100000) / 100.0,
       jsonb_build_object('n', i, 'tags', jsonb_build_array('a', i %% 7), 'ok', i %% 2 = 0),
       i %% 7 <> 0,
       timestamptz '2025-01-01 00:00:00+00' + i * interval '17 seconds',
       timestamptz '2025-01-01 00:05:00+00' + i * interval '17 seconds'
FROM generate_series(1, %s) AS i
"""
DAMAGE = """
DELETE FROM decision_vault WHERE ('x' || substr(id::text, 1, 8))::bit(32)::int % 10 = 0;
UPDATE decision_vault SET decision = decision || ' (edited)'
 WHERE ('x' || substr(id::text, 1, 8))::bit(32)::int % 10 = 1;
"""
COLUMNS = "id, decision, type, amount, payload, notion_synced, created_at, updated_at"
TYPED = ", ".join(
    f"(line->>'{c}')::{t} AS {c}"
    for c, t in [
        ("id", "uuid"),
        ("decision", "text"),
        ("type", "text"),
        ("amount", "numeric"),
        ("payload", "jsonb"),
        ("notion_synced", "boolean"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ]
)
SAME = " AND ".join(
    f"b.{c}::text IS NOT DISTINCT FROM t.{c}::text" for c in COLUMNS.split(", ")[1:]
)
LOAD = f"""
CREATE TEMP TABLE raw (line jsonb);
\\copy raw FROM '{{lines}}'
CREATE TEMP TABLE b AS SELECT {TYPED.replace("line", "raw.line")} FROM raw;
"""
# One list per column of the typed table: its name.
_NAMES = COLUMNS.split(", ")
MERGE_COUNT = (
    "SELECT count(*) FILTER (WHERE t.id IS NULL), count(*) FILTER (WHERE t.id IS NOT NULL"
    f" AND NOT ({SAME})) FROM b LEFT JOIN decision_vault t ON t.id = b.id;"
    " SELECT count(*) FROM decision_vault t WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.id = t.id);"
)
MERGE_WRITE = (
    f"INSERT INTO decision_vault ({COLUMNS}) SELECT b.* FROM b LEFT JOIN decision_vault t"
    f" ON t.id = b.id WHERE t.id IS NULL OR NOT ({SAME}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _NAMES[1:])
    + ";"
)
PIPELINE = {
    "version": 1,
    "name": "bench",
    "connections": {"db": {"type": "postgres", "url": "${DATABASE_URL}"}},
    "sinks": {"local": {"type": "local", "path": "backups"}},
    "backups": [{"name": "dv", "connection": "db", "table": "decision_vault", "sinks": ["local"]}],
    "log_dir": "logs",
}


def psql(url: str, *arguments: str, stdout: object = subprocess.DEVNULL, script: str = "") -> float:
    """Seconds ``psql`` takes to run ``arguments`` (and ``script`` on its standard input)."""
    command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, *arguments]
    if script:
        command += ["-f", "-"]
    started = time.perf_counter()
    subprocess.run(command, stdout=stdout, input=script.encode() or None, check=True)
    return time.perf_counter() - started


def backup_lines(backup: Path, target: Path) -> None:
    """The rows of a backup file, one per line, as COPY reads them (backslashes doubled)."""
    with backup.open("rb") as source, target.open("wb") as out:
        next(source)
        for line in source:
            line = line.rstrip(b"\n")
            if line == b"]}":
                break
            out.write(line.removesuffix(b",").replace(b"\\", b"\\\\") + b"\n")


def main(argv: list[str]) -> int:
    rows = int(argv[0].replace("_", "")) if argv else 1_000_000
    admin = ensure_postgres()
    url = create_database(admin, prefix="angles_bench_speed")
    table: list[tuple[str, float, float, str, float]] = []
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(TABLE)
            conn.execute(FILL, [rows])
            conn.execute("VACUUM ANALYZE decision_vault")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "angles.yaml").write_text(json.dumps(PIPELINE), encoding="utf-8")
            dump = folder / "dump.sql"
            copy = "copy (select row_to_json(t) from decision_vault t order by id) to stdout"
            with (folder / "export.json").open("wb") as out:
                export_s = psql(url, "-c", copy, stdout=out)
            started = time.perf_counter()
            subprocess.run(
                ["pg_dump", "--data-only", "-t", "decision_vault", "-f", str(dump), url], check=True
            )
            dump_s = time.perf_counter() - started

            backup = angles(folder, url, "backup", "--format", "json", "angles.yaml")
            [stored] = json.loads(backup.stdout)["backups"][0]["files"]
            backup_file = folder / "backups" / stored["name"]
            table.append(("backup", backup.wall, backup.rss_mb, "JSON export", export_s))
            table.append(("backup", backup.wall, backup.rss_mb, "pg_dump --data-only", dump_s))
            lines = folder / "lines"
            backup_lines(backup_file, lines)
            load = LOAD.format(lines=lines)

            psql(url, "-c", DAMAGE)
            psql(url, "-c", "VACUUM ANALYZE decision_vault")
            merge_count = psql(url, script=load + MERGE_COUNT)
            dry = angles(
                folder,
                url,
                "restore",
                "angles.yaml",
                "--file",
                str(backup_file),
                "--format",
                "json",
            )
            counts = json.loads(dry.stdout)["counts"]
            table.append(("dry run", dry.wall, dry.rss_mb, "SQL merge (count)", merge_count))

            merge_write = psql(url, script="BEGIN;\n" + load + MERGE_WRITE + "\nROLLBACK;\n")
            live = angles(
                folder,
                url,
                "restore",
                "angles.yaml",
                "--file",
                str(backup_file),
                "--live",
                "--yes",
                "--format",
                "json",
            )
            table.append(("live restore", live.wall, live.rss_mb, "SQL merge (write)", merge_write))

            psql(url, "-c", "TRUNCATE decision_vault")
            copy_from = psql(url, "-f", str(dump))
            psql(url, "-c", "TRUNCATE decision_vault")
            empty = angles(
                folder,
                url,
                "restore",
                "angles.yaml",
                "--file",
                str(backup_file),
                "--live",
                "--yes",
                "--format",
                "json",
            )
            table.append(
                ("into empty table", empty.wall, empty.rss_mb, "psql -f pg_dump (COPY)", copy_from)
            )
            with psycopg.connect(url) as conn:
                [(restored,)] = conn.execute("SELECT count(*) FROM decision_vault").fetchall()
        print(
            f"{rows:,} rows; dry run found {counts['insert']:,} to insert, "
            f"{counts['update']:,} to update"
        )
        print(f"{'work':<18} {'angles':>9} {'peak':>8}   {'floor':<24} {'floor s':>8} {'ratio':>7}")
        for work, seconds, peak, floor, floor_s in table:
            print(
                f"{work:<18} {seconds:8.2f}s {peak:6.0f}MB   {floor:<24} {floor_s:7.2f}s "
                f"{seconds / floor_s:6.2f}x"
            )
        return 0 if restored == rows else 1
    finally:
        drop_database(admin, url)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
