"""Structured logs: JSON lines in the pipeline's ``log_dir``, readable lines on a terminal.

Each part of angles logs to its own file (``health_check.log``, ``backup.log``,
``restore.log``, ``scheduler.log``, ``automated_runs.log``). A :class:`Logs` belongs to
one loaded pipeline (its run context owns it): every event passes through that
pipeline's redactor first, so no secret value reaches a file or the console.
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


class Logs:
    """Where one pipeline's log events go: ``log_dir`` (None: no files) and, when given,
    a console stream that shows events of ``console_level`` and above.

    Files are opened on the first event of their channel and kept open until
    :meth:`close`. Safe to use from the threads checks run in.
    """

    def __init__(
        self,
        log_dir: Path | None,
        redact: Redactor,
        *,
        console: TextIO | None = None,
        console_level: str = "warning",
    ) -> None:
        self.log_dir = log_dir
        self.redact = redact
        self.console = console
        self.console_level = console_level
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()

    def logger(self, channel: str, **bound: Any) -> structlog.typing.FilteringBoundLogger:
        """A logger writing to the file of ``channel`` (a key of :data:`LOG_FILES`)."""
        import structlog  # imported on first use: it costs start-up time

        return structlog.wrap_logger(
            _Discard(),
            processors=[structlog.processors.add_log_level, self._emit],
            wrapper_class=structlog.make_filtering_bound_logger(0),
            context_class=dict,
            channel=channel,
            **bound,
        )

    def close(self) -> None:
        """Close the log files."""
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()

    def _emit(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        from structlog import DropEvent

        event = self.redact(event)
        event["timestamp"] = (
            datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        channel = event.pop("channel", "runs")
        line = json.dumps(event, default=str, ensure_ascii=False)
        with self._lock:
            if self.log_dir is not None:
                self._file(channel).write(line + "\n")
            if self.console is not None and _rank(event.get("level")) >= _rank(self.console_level):
                self.console.write(_console_line(event) + "\n")
        raise DropEvent

    def _file(self, channel: str) -> TextIO:
        handle = self._files.get(channel)
        if handle is None:
            assert self.log_dir is not None
            self.log_dir.mkdir(parents=True, exist_ok=True)
            name = LOG_FILES.get(channel, f"{channel}.log")
            # Line-buffered: each event reaches the file as it happens.
            handle = open(self.log_dir / name, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            self._files[channel] = handle
        return handle


class _Discard:
    """The logger behind structlog's chain: :meth:`Logs._emit` has written the event."""

    def msg(self, **event: Any) -> None:
        pass

    debug = info = warning = warn = error = critical = exception = msg


def _rank(level: str | None) -> int:
    return LEVELS.index(level) if level in LEVELS else 1


def _console_line(event: dict[str, Any]) -> str:
    level = event.get("level", "info")
    message = event.get("event", "")
    extras = " ".join(
        f"{k}={v}" for k, v in event.items() if k not in {"level", "event", "timestamp"}
    )
    return f"{event['timestamp'][11:19]} {level:<7} {message} {extras}".rstrip()


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
