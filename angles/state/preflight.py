"""Before a run contacts any service: can it keep its history and write its logs?

:func:`find_problems` looks at the state store and the log folder without changing anything
(``validate``); :func:`prepare` also creates the log folder and opens the state store
(creating or migrating it), so a command stops at once, naming the key, when either is
unusable, instead of running and losing its history or crashing at its first log line.
"""

from __future__ import annotations

import os
from pathlib import Path

from angles.core.errors import PipelineError, Problem
from angles.core.pipeline import Pipeline
from angles.state.store import StateError, StateStore, describe, is_postgres

_SQLITE_MAGIC = b"SQLite format 3\x00"


def find_problems(pipeline: Pipeline, *, logs: bool = True) -> list[Problem]:
    """Problems with ``state:`` (and ``log_dir:`` when ``logs``), found without changing
    anything; a PostgreSQL state store is not contacted."""
    found = [_problem(pipeline, "state", message) for message in _state_problems(pipeline)]
    if logs:
        found += [_problem(pipeline, "log_dir", m) for m in _folder_problems(pipeline.log_dir)]
    return found


def prepare(pipeline: Pipeline, *, logs: bool = True) -> None:
    """Check, then create the log folder and open the state store (creating or migrating
    it). Raises :class:`PipelineError` naming ``state`` or ``log_dir``."""
    problems = find_problems(pipeline, logs=logs)
    if not problems and logs:
        try:
            pipeline.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problems.append(
                _problem(pipeline, "log_dir", f"cannot create {pipeline.log_dir}: {_reason(exc)}")
            )
    if not problems:
        try:
            StateStore.open(pipeline.state, connect_timeout=pipeline.timeout_seconds).close()
        except StateError as exc:
            problems.append(_problem(pipeline, "state", str(exc)))
    if problems:
        raise PipelineError(problems)


def _state_problems(pipeline: Pipeline) -> list[str]:
    location = pipeline.state
    if is_postgres(location):
        return []
    if "://" in location:
        return [
            f"unsupported state store {describe(location)!r} "
            "(a SQLite file path or a postgresql:// URL)"
        ]
    path = Path(location)
    if path.is_dir():
        return [
            f"{path} is a directory (state: is a SQLite file, e.g. {path / 'state.db'}, "
            "or a postgresql:// URL)"
        ]
    if path.exists():
        problems = _access_problems(path, os.R_OK | os.W_OK, "read and written")
        if problems:
            return problems
        try:
            with open(path, "rb") as handle:
                head = handle.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            return [f"cannot read {path}: {_reason(exc)}"]
        if head and head != _SQLITE_MAGIC:
            return [f"{path} is not a SQLite database (give another path, or remove the file)"]
        # The folder holds SQLite's journal beside the file.
        return _access_problems(path.parent, os.W_OK | os.X_OK, "written")
    return _folder_problems(path.parent)


def _folder_problems(folder: Path) -> list[str]:
    """Why ``folder`` cannot be used (or created) for writing files, if it cannot."""
    if folder.exists() and not folder.is_dir():
        return [f"{folder} is a file, not a folder"]
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return [f"{folder} cannot be created: {existing} is a file"]
    verb = "written" if existing == folder else f"written, to create {folder}"
    return _access_problems(existing, os.W_OK | os.X_OK, verb)


def _access_problems(path: Path, mode: int, verb: str) -> list[str]:
    if os.access(path, mode):
        return []
    return [f"{path} cannot be {verb} by this user"]


def _problem(pipeline: Pipeline, key: str, message: str) -> Problem:
    file, line = pipeline.lines.get(key, (str(pipeline.path), None))
    return Problem(file, line, key, message)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
