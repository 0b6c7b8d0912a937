"""What angles costs per table and per run, against ``pg_dump --data-only`` of the same schema.

A throw-away database of the local PostgreSQL gets 46 small tables (a schema like a real
app's: serial and uuid keys, foreign keys, a few dozen rows each). In the same run, each
several times (the median is printed, so the ratio holds on a noisy machine):

* ``pg_dump --data-only`` of the schema into a file;
* ``angles backup`` of a ``tables: all`` entry through ``postgres`` to a local sink, as a
  user runs it (a new process: start-up included);
* the same backup in this process (``run_backups``), which leaves out the start-up: what
  each table costs;
* ``angles --help`` and ``python -c pass``, the start-up alone.

It prints ms per table and the ratio to pg_dump. Target: ``angles --help`` under 0.3 s.
With ``--profile`` it also prints the top of a cProfile of the in-process backup.

    .venv/bin/python bench/bench_fixed_costs.py [--tables 46] [--rows 30] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from angles.testing.postgres import create_database, drop_database, ensure_postgres

RUNS = 5
HELP_TARGET_SECONDS = 0.3
PIPELINE = {
    "version": 1,
    "name": "bench",
    "log_dir": "logs",
    "connections": {"db": {"type": "postgres", "url": "${DATABASE_URL}"}},
    "sinks": {"local": {"type": "local", "path": "backups"}},
    "backups": [{"name": "app", "connection": "db", "tables": "all", "sinks": ["local"]}],
}


def create_schema(url: str, tables: int, rows: int) -> None:
    """``tables`` small tables: every third one refers to the one before it, every other
    one has a uuid key instead of a serial one."""
    with psycopg.connect(url, autocommit=True) as conn:
        for n in range(tables):
            key = "id bigserial PRIMARY KEY" if n % 2 else "id uuid PRIMARY KEY"
            parent = f", parent_id {'bigint' if (n - 1) % 2 else 'uuid'}" if n % 3 == 2 else ""
            conn.execute(
                f"CREATE TABLE t{n:02d} ({key}, name text NOT NULL, amount numeric(10, 2),"
                f" tags text[], created_at timestamptz NOT NULL DEFAULT now(){parent})"
            )
            key_value = "md5(g::text)::uuid" if n % 2 == 0 else "g"
            parent_value = ", NULL" if parent else ""
            conn.execute(
                f"INSERT INTO t{n:02d} (id, name, amount, tags, created_at"
                f"{', parent_id' if parent else ''}) "
                f"SELECT {key_value}, 'row ' || g, g * 1.5, ARRAY['a', g::text],"
                f" timestamptz '2025-01-01 00:00+00' + g * interval '1 hour'{parent_value}"
                f" FROM generate_series(1, {rows}) g"
            )
            if n % 2 == 1:  # keep the serial's sequence in step, as an app's would be
                conn.execute(f"SELECT setval('t{n:02d}_id_seq', {rows})")
        for n in range(tables):
            if n % 3 == 2:
                conn.execute(
                    f"ALTER TABLE t{n:02d} ADD FOREIGN KEY (parent_id) REFERENCES t{n - 1:02d}"
                )
        conn.execute("VACUUM ANALYZE")


def median_seconds(action, runs: int = RUNS) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def pg_dump(url: str, target: Path) -> None:
    subprocess.run(
        ["pg_dump", "--data-only", "--schema=public", "--file", str(target), url],
        check=True,
        capture_output=True,
    )


def angles_backup(folder: Path, env: dict[str, str], tables: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "angles", "backup", "--format", "json", "angles.yaml"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"angles backup failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    [run] = json.loads(done.stdout)["backups"]
    assert len(run["files"]) == tables, run
    shutil.rmtree(folder / "backups")


def in_process_backup(folder: Path, tables: int) -> None:
    from angles.backup.engine import run_backups
    from angles.core.config import load_pipeline
    from angles.core.context import Context
    from angles.core.plugins import load_plugins

    plugins = load_plugins()
    with Context(load_pipeline(folder / "angles.yaml", plugins), plugins) as context:
        [run] = run_backups(context)
    assert run.status.value == "ok" and len(run.files) == tables, run.message
    shutil.rmtree(folder / "backups")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, default=46)
    parser.add_argument("--rows", type=int, default=30, help="rows per table")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process backup")
    options = parser.parse_args(argv)
    admin = ensure_postgres()
    url = create_database(admin, prefix="angles_bench_fixed")
    try:
        create_schema(url, options.tables, options.rows)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "angles.yaml").write_text(json.dumps(PIPELINE), encoding="utf-8")
            # As installed: pip compiles the modules; PYTHONDONTWRITEBYTECODE would make
            # every run compile angles again (about 120 ms) and measure that instead.
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env["DATABASE_URL"] = url
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", "angles"],
                env=env,
                check=False,
                cwd=Path(__file__).resolve().parent.parent,
            )
            os.environ["DATABASE_URL"] = url  # for the in-process backup
            tables = options.tables
            dump = median_seconds(lambda: pg_dump(url, folder / "dump.sql"))
            command = median_seconds(lambda: angles_backup(folder, env, tables))
            inside = median_seconds(lambda: in_process_backup(folder, tables))
            python = median_seconds(
                lambda: subprocess.run([sys.executable, "-c", "pass"], env=env, check=True),
                RUNS * 2,
            )
            helped = median_seconds(
                lambda: subprocess.run(
                    [sys.executable, "-m", "angles", "--help"],
                    env=env,
                    check=True,
                    capture_output=True,
                ),
                RUNS * 2,
            )
            if options.profile:
                profile = cProfile.Profile()
                profile.runcall(in_process_backup, folder, tables)
        per = 1000 / tables
        print(f"{tables} tables of {options.rows} rows; median of {RUNS} runs each")
        print(f"pg_dump --data-only     : {dump * 1000:7.0f} ms  ({dump * per:5.1f} ms a table)")
        print(
            f"angles backup (command) : {command * 1000:7.0f} ms  ({command * per:5.1f} ms a "
            f"table)  {command / dump:4.1f}x pg_dump"
        )
        print(
            f"angles backup (in-proc) : {inside * 1000:7.0f} ms  ({inside * per:5.1f} ms a "
            f"table)  {inside / dump:4.1f}x pg_dump"
        )
        verdict = "within" if helped < HELP_TARGET_SECONDS else "OVER"
        print(
            f"angles --help           : {helped * 1000:7.0f} ms  (python -c pass "
            f"{python * 1000:.0f} ms: {(helped - python) * 1000:.0f} ms of angles; {verdict} "
            f"the {HELP_TARGET_SECONDS:g} s target)"
        )
        if options.profile:
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("cumulative").print_stats(45)
            print(out.getvalue())
        return 0
    finally:
        drop_database(admin, url)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
