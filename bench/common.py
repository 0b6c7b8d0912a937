"""What the benchmarks share: a decision_vault-like table, a run context, peak memory
(this process's, or a child's own)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
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


#: Runs ``-m MODULE ARGS`` or ``SCRIPT ARGS`` (or ``-c CODE ARGS``) as ``python`` would, and
#: at exit writes this process's own peak RSS (VmHWM, kB) to the file named first.
_MEASURED = """\
import atexit, runpy, sys
report, how, target, *rest = sys.argv[1:]

def peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(report, "w") as out:
        out.write(kib)

atexit.register(peak)
sys.argv = [target, *rest]
if how == "-m":
    runpy.run_module(target, run_name="__main__", alter_sys=True)
elif how == "-c":
    sys.argv[0] = "-c"
    exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
else:
    runpy.run_path(target, run_name="__main__")
"""


@dataclass
class Measured:
    """What a child process did: its exit code, output, wall and CPU seconds, own peak RSS."""

    returncode: int
    stdout: str
    stderr: str
    wall: float
    cpu: float
    rss_mb: float


def run_measured(python_args: list[str], **options: Any) -> Measured:
    """Run ``python PYTHON_ARGS`` (``["-m", "angles", "backup", …]``, ``["-c", code, …]`` or
    ``[script, …]``) and measure the child alone.

    The peak RSS is the child's own ``VmHWM``, written by the child as it exits. Neither
    ``getrusage(RUSAGE_CHILDREN)`` nor ``wait4`` can give it: Linux starts a child's
    ``ru_maxrss`` from the memory of the process that forked it and keeps it across
    ``execve``, so a bench holding 200 MB reported 200 MB for a 47 MB child. CPU (user +
    system) does come from ``wait4``: it is the child's own.
    """
    if python_args[0] in ("-m", "-c"):
        how, target, rest = python_args[0], python_args[1], python_args[2:]
    else:
        how, target, rest = "script", python_args[0], python_args[1:]
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "peak"
        out, err = Path(folder) / "out", Path(folder) / "err"
        command = [sys.executable, "-c", _MEASURED, str(report), how, target, *rest]
        started = time.perf_counter()
        with out.open("wb") as stdout, err.open("wb") as stderr:
            child = subprocess.Popen(command, stdout=stdout, stderr=stderr, **options)
            _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        peak = int(report.read_text()) / 1024 if report.exists() else float("nan")
        return Measured(
            child.returncode,
            out.read_text(encoding="utf-8", errors="replace"),
            err.read_text(encoding="utf-8", errors="replace"),
            wall,
            usage.ru_utime + usage.ru_stime,
            peak,
        )


def angles_against(folder: Path, url: str, *arguments: str) -> Measured:
    """``angles ARGUMENTS`` measured in ``folder`` with ``DATABASE_URL`` set to ``url``;
    the bench stops with its output if it fails."""
    measured = run_measured(
        ["-m", "angles", *arguments], cwd=folder, env={**os.environ, "DATABASE_URL": url}
    )
    if measured.returncode != 0:
        raise SystemExit(
            f"angles {' '.join(arguments)} failed:\n{measured.stdout}{measured.stderr}"
        )
    return measured


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
