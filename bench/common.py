"""What the benchmarks share: a decision_vault-like table, a run context, peak memory."""

from __future__ import annotations

import contextlib
import json
import resource
import sqlite3
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MB.

    ``VmHWM`` rather than ``getrusage``: Linux carries ``ru_maxrss`` over ``exec``, so a
    child would inherit the high-water mark of the process that started it.
    """
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_vault(folder: Path, pipeline: dict[str, Any], rows: int) -> None:
    """Write ``angles.yaml`` and ``vault.db`` with a decision_vault table of ``rows`` rows."""
    (folder / "angles.yaml").write_text(json.dumps(pipeline), encoding="utf-8")
    with closing(sqlite3.connect(folder / "vault.db")) as db, db:
        db.execute(
            "CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT, type TEXT,"
            " date TEXT, notion_synced BOOLEAN, notion_page_id TEXT, created_at TEXT,"
            " updated_at TEXT)"
        )
        db.executemany(
            "INSERT INTO decision_vault VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    str(uuid.UUID(int=i * 7919 + 1)),
                    f"Décision n° {i}: ship the sync worker — étape {i % 97} 🚀",
                    ("Architecture", "Product", "Process", "Hiring")[i % 4],
                    "2025-08-01",
                    i % 3 != 0,
                    None if i % 5 == 0 else uuid.UUID(int=i).hex,
                    "2025-08-01T09:20:00+00:00",
                    "2025-08-01T09:25:00+00:00",
                )
                for i in range(rows)
            ),
        )


def timed_backup(folder: Path) -> tuple[Any, float]:
    """Run the pipeline's one backup; its result and the seconds it took."""
    from angles.backup.engine import run_backups

    with open_context(folder) as context:
        started = time.perf_counter()
        (run,) = run_backups(context)
        seconds = time.perf_counter() - started
    assert run.status.value == "ok", run.message
    return run, seconds


def open_context(folder: Path):
    """A run context for ``folder/angles.yaml``."""
    from angles.core.config import load_pipeline
    from angles.core.context import Context
    from angles.core.plugins import load_plugins

    plugins = load_plugins()
    return Context(load_pipeline(folder / "angles.yaml", plugins, environ={}), plugins)
