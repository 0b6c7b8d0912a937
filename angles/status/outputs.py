"""After a run: the pipeline's status page (``report:``) and metrics file (``metrics:``)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from angles.status.summary import DEFAULT_DAYS, Summary

if TYPE_CHECKING:
    from angles.core.context import Context


def write_outputs(context: Context) -> list[Path]:
    """Write the status page and the metrics file that the pipeline asks for, from the
    state store (which already holds the run). Returns the files written.

    Never raises: a file that cannot be written is one error line (in the log, and on
    stderr when no terminal shows the log), and the run's result and history stand.
    """
    from angles.status.metrics import render_metrics
    from angles.status.page import render_page

    pipeline = context.pipeline
    wanted: list[tuple[str, Path, Callable[[Summary], bytes]]] = [
        (what, path, render)
        for what, path, render in (
            ("status page", pipeline.report, render_page),
            ("metrics", pipeline.metrics, render_metrics),
        )
        if path is not None
    ]
    if not wanted:
        return []
    try:
        summary = read_summary(context, DEFAULT_DAYS)
    except Exception as exc:
        for what, path, _ in wanted:
            _not_written(context, what, path, exc)
        return []
    written = []
    for what, path, render in wanted:
        try:
            replace_file(path, render(summary))
        except Exception as exc:
            _not_written(context, what, path, exc)
            continue
        context.logger("runs").info(f"{what} written", path=str(path))
        written.append(path)
    return written


def read_summary(context: Context, days: int) -> Summary:
    """The summary of the context's pipeline, from its state store."""
    from angles.state.store import open_store
    from angles.status.summary import collect

    with open_store(context) as store:
        return collect(context, store, days)


def replace_file(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` through a temporary file in the same folder and a rename:
    a reader (a web server, node_exporter) sees the old file or the new one, never part.

    The temporary name starts with a dot and does not end in ``.prom``, so the textfile
    collector never reads it; it is removed when anything fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _not_written(context: Context, what: str, path: Path, exc: BaseException) -> None:
    from angles.core.text import one_line

    error = context.redact.text(one_line(exc))
    context.logger("runs").error(f"{what} not written", path=str(path), error=error)
    if context.logs.console is None:  # else the console already shows the log line
        print(f"ERROR: {what} not written to {path}: {error}", file=sys.stderr)
