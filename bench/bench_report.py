"""Time of ``angles report`` on a state store of 10,000 runs, beside just reading them.

Two stores of 10,000 runs recorded through the state store's API
(:func:`angles.testing.history.record_history`): one packed into the last 30 days (the
page charts every run), one spread hourly over 417 days (``--days 30`` reads only the
runs of the window, through the index on the start time). Each ``angles report`` is a
whole process, start-up included, median of several; the baseline is reading every run
of the store (``StateStore.runs``) in this process. Target: ``angles report`` under 2 s.

    .venv/bin/python bench/bench_report.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RUNS = 10_000
REPEAT = 5
PIPELINE = {
    "version": 1,
    "name": "production",
    "state": ".angles/state.db",
    "connections": {
        "supabase": {"type": "supabase", "url": "http://127.0.0.1:9", "key": "bench-key-0000"},
        "notion": {"type": "notion", "token": "bench-token-0000"},
    },
    "checks": [
        {
            "name": "supabase",
            "type": "supabase",
            "connection": "supabase",
            "tables": ["decision_vault"],
        },
        {
            "name": "notion",
            "type": "notion",
            "connection": "notion",
            "database_id": "0123456789abcdef0123456789abcdef",
        },
        {
            "name": "sync",
            "type": "sync_backlog",
            "connection": "supabase",
            "table": "decision_vault",
            "unsynced": "notion_synced=is.false",
        },
    ],
}


def fill(folder: Path, days: float) -> float:
    """Write the pipeline and record the runs; the seconds the recording took."""
    from angles.state.store import StateStore
    from angles.testing.history import record_history

    (folder / "angles.yaml").write_text(json.dumps(PIPELINE), encoding="utf-8")
    started = time.perf_counter()
    with StateStore.open(str(folder / ".angles" / "state.db")) as store:
        record_history(store, "production", runs=RUNS, days=days, now=datetime.now(UTC))
    return time.perf_counter() - started


def median_seconds(action, *args) -> float:
    samples = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        action(*args)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def read_runs(folder: Path, since: datetime | None = None) -> int:
    from angles.state.store import StateStore

    with StateStore.open(str(folder / ".angles" / "state.db")) as store:
        return len(store.runs("production", None, since=since))


def report(folder: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "angles", "report", "angles.yaml", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)


def measure(folder: Path, days: float) -> None:
    """Fill a store spread over ``days`` and print the times of reading and reporting."""
    from angles.status.summary import window_start

    recording = fill(folder, days)
    print(f"{RUNS:,} runs over {days} days (recorded in {recording:.1f} s)")
    every = median_seconds(read_runs, folder)
    print(f"  {'reading every run from the store':<44} {every:6.2f} s")
    since = window_start(datetime.now(UTC), 30)
    inside = read_runs(folder, since)
    window = median_seconds(read_runs, folder, since)
    print(f"  {f'reading the {inside:,} runs of the last 30 days':<44} {window:6.2f} s")
    start_up = median_seconds(subprocess.run, [sys.executable, "-c", "pass"])
    elapsed = median_seconds(report, folder, "--days", "30")
    size = (folder / "status.html").stat().st_size
    print(
        f"  {'angles report --days 30 (a process)':<44} {elapsed:6.2f} s"
        f"  ({elapsed / every:.1f}x reading every run; python start-up {start_up:.2f} s;"
        f" page {size / 1000:.0f} kB)"
    )


def main() -> None:
    for days in (30, 417):
        with tempfile.TemporaryDirectory() as name:
            measure(Path(name), days)


if __name__ == "__main__":
    main()
