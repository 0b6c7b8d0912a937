"""Memory and time of a backup and a restore dry run, against a naive json.dump.

For 100,000 and 1,000,000 rows of a decision_vault-like SQLite table, each case runs in
its own process, which reports its peak RSS (``VmHWM``) so cases do not
share a high-water mark:

* ``backup``: ``run_backups`` to a local sink (count, stream, serialise, checksum, store);
* ``restore``: ``prepare_restore`` of that backup against the unchanged table (read,
  verify, merge with the table's stream);
* ``naive``: every row loaded into a list of dicts, then ``json.dump`` — the reference.

The per-row cost of serialise + checksum is measured on the first 100,000 rows, already
in memory, so it excludes reading SQLite. Target: backup and restore under 100 MB of
peak RSS, and flat between 100k and 1M rows.

    .venv/bin/python bench/bench_backup.py [ROWS ...]
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from common import open_context, peak_rss_mb, timed_backup, write_vault

SIZES = (100_000, 1_000_000)
PIPELINE = {
    "version": 1,
    "name": "bench",
    "connections": {"vault": {"type": "sqlite", "path": "vault.db"}},
    "sinks": {"local": {"type": "local", "path": "backups"}},
    "backups": [
        {"name": "vault", "connection": "vault", "table": "decision_vault", "sinks": ["local"]}
    ],
    "log_dir": "logs",
}


def case_backup(folder: Path) -> dict:
    run, seconds = timed_backup(folder)
    size = (folder / "backups" / run.files[0]["name"]).stat().st_size
    return {"seconds": seconds, "rows": run.record_count, "file_mb": size / 2**20}


def case_restore(folder: Path) -> dict:
    from angles.backup.restore import RestoreRequest, close_plan, prepare_restore

    with open_context(folder) as ctx:
        started = time.perf_counter()
        plan = prepare_restore(ctx, RestoreRequest())
        seconds = time.perf_counter() - started
        close_plan(plan)
    assert plan.verified and plan.counts["unchanged"] > 0
    return {"seconds": seconds, "rows": plan.counts["unchanged"]}


def case_naive(folder: Path) -> dict:
    started = time.perf_counter()
    with closing(sqlite3.connect(folder / "vault.db")) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM decision_vault ORDER BY id")]
    with open(folder / "naive.json", "w", encoding="utf-8") as handle:
        json.dump({"metadata": {"record_count": len(rows)}, "data": rows}, handle, indent=2)
    return {"seconds": time.perf_counter() - started, "rows": len(rows)}


def case_serialise(folder: Path) -> dict:
    """Per-row cost of angles' serialise + checksum vs json.dumps alone, rows in memory."""
    from datetime import UTC, datetime

    from angles.backup.format import BackupWriter
    from angles.core.connection import TableSchema

    with closing(sqlite3.connect(folder / "vault.db")) as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM decision_vault LIMIT 100000")]
    schema = TableSchema("decision_vault", dict.fromkeys(rows[0], "text"), ("id",))
    started = time.perf_counter()
    with BackupWriter(schema, datetime.now(UTC)) as writer:
        writer.write(rows)
        for _ in writer.chunks():
            pass
    ours = (time.perf_counter() - started) / len(rows)
    started = time.perf_counter()
    for row in rows:
        json.dumps(row)
    plain = (time.perf_counter() - started) / len(rows)
    return {"ours_us": ours * 1e6, "json_dumps_us": plain * 1e6}


CASES = {
    "backup": case_backup,
    "restore": case_restore,
    "naive": case_naive,
    "serialise": case_serialise,
}


def child(name: str, folder: str) -> None:
    result = CASES[name](Path(folder))
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def run_case(name: str, folder: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"case {name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(sizes: tuple[int, ...]) -> None:
    baseline = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import angles.backup, resource, json;"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    print(f"interpreter + angles imported: {baseline:.1f} MB peak RSS")
    print(f"{'rows':>10} {'case':<9} {'seconds':>8} {'µs/row':>7} {'peak RSS':>9}  notes")
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_vault(folder, PIPELINE, rows)
            for name in ("backup", "restore", "naive"):
                result = run_case(name, folder)
                note = f"file {result['file_mb']:.0f} MB" if "file_mb" in result else ""
                print(
                    f"{rows:>10,} {name:<9} {result['seconds']:>8.2f} "
                    f"{result['seconds'] / rows * 1e6:>7.2f} {result['peak_rss_mb']:>6.1f} MB  {note}"
                )
            if rows == sizes[0]:
                cost = run_case("serialise", folder)
                print(
                    f"serialise + checksum: {cost['ours_us']:.2f} µs/row "
                    f"(json.dumps alone: {cost['json_dumps_us']:.2f} µs/row)"
                )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
