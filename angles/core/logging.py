"""Structured logs: JSON lines in the pipeline's ``log_dir``, readable lines on a terminal.

Each part of angles logs to its own file (``health_check.log``, ``backup.log``,
``restore.log``, ``scheduler.log``, ``automated_runs.log``). Every event passes through
the redaction step first, so no secret value reaches a file or the console.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from angles.core.redact import Redactor

if TYPE_CHECKING:
    import structlog

LOG_FILES = {
    "health": "health_check.log",
    "backup": "backup.log",
    "restore": "restore.log",
    "scheduler": "scheduler.log",
    "runs": "automated_runs.log",
}

LEVELS = ("debug", "info", "warning", "error", "critical")

_state: dict[str, Any] = {
    "log_dir": None,
    "redactor": Redactor(),
    "console": None,
    "console_level": "info",
}
_files: dict[str, TextIO] = {}
_lock = threading.Lock()


def configure(
    log_dir: Path | None,
    redactor: Redactor,
    *,
    console: TextIO | None = None,
    console_level: str = "info",
) -> None:
    """Send logs to ``log_dir`` (None: no files) and, when given, to a console stream,
    there only events of ``console_level`` and above.

    Called once a pipeline is loaded; before that nothing is written.
    """
    close()
    _state.update(log_dir=log_dir, redactor=redactor, console=console, console_level=console_level)


def redactor() -> Redactor:
    """The redaction step in force (the loaded pipeline's secrets)."""
    return _state["redactor"]


def close() -> None:
    """Close the log files."""
    with _lock:
        for handle in _files.values():
            handle.close()
        _files.clear()


def get_logger(channel: str, **context: Any) -> structlog.typing.FilteringBoundLogger:
    """A logger writing to the file of ``channel`` (a key of :data:`LOG_FILES`)."""
    import structlog  # imported on first use: it costs start-up time

    return structlog.wrap_logger(
        _ChannelLogger(channel),
        processors=[
            structlog.processors.add_log_level,
            _redact,
            _timestamp,
            _emit,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(0),
        context_class=dict,
        channel=channel,
        **context,
    )


class _ChannelLogger:
    def __init__(self, channel: str) -> None:
        self.channel = channel

    def msg(self, **event: Any) -> None:
        pass

    debug = info = warning = warn = error = critical = exception = msg


def _redact(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    return _state["redactor"](event)


def _timestamp(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    event["timestamp"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return event


def _emit(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    channel = event.pop("channel", "runs")
    log_dir: Path | None = _state["log_dir"]
    line = json.dumps(event, default=str, ensure_ascii=False)
    with _lock:
        if log_dir is not None:
            handle = _files.get(channel)
            if handle is None:
                log_dir.mkdir(parents=True, exist_ok=True)
                handle = open(  # noqa: SIM115 - kept open for the whole run
                    log_dir / LOG_FILES.get(channel, f"{channel}.log"), "a", encoding="utf-8"
                )
                _files[channel] = handle
            handle.write(line + "\n")
            handle.flush()
        console: TextIO | None = _state["console"]
        if console is not None and _rank(event.get("level")) >= _rank(_state["console_level"]):
            console.write(_console_line(event) + "\n")
    from structlog import DropEvent

    raise DropEvent


def _console_line(event: dict[str, Any]) -> str:
    level = event.get("level", "info")
    message = event.get("event", "")
    extras = " ".join(
        f"{k}={v}" for k, v in event.items() if k not in {"level", "event", "timestamp"}
    )
    return f"{event['timestamp'][11:19]} {level:<7} {message} {extras}".rstrip()


def _rank(level: str | None) -> int:
    return LEVELS.index(level) if level in LEVELS else 1


class StandardError:
    """Whatever ``sys.stderr`` is when a line is written: a progress bar redirects it to
    print log lines above itself."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def console_stream(*, always: bool = False) -> TextIO | None:
    """Standard error when it is a terminal (people watching get readable lines) or when
    ``always``; else None."""
    return StandardError() if always or sys.stderr.isatty() else None  # type: ignore[return-value]
