"""Exit codes and the exceptions angles reports to the user without a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of ``run``, ``check``, ``backup``, ``restore``, ``validate`` and
    ``backups verify`` (the Nagios convention)."""

    OK = 0
    WARNING = 1
    ERROR = 2
    INTERNAL = 3


class AnglesError(Exception):
    """An error angles reports as one line, with the exit code it implies.

    ``hint`` tells the user what to do about it.
    """

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a pipeline file, with where it is."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


#: Problems a message shows; the rest are counted (the JSON of ``validate`` lists all).
MAX_PROBLEMS_SHOWN = 20


class PipelineError(AnglesError):
    """The pipeline file cannot be used; carries every problem found at once.

    Its message shows the first :data:`MAX_PROBLEMS_SHOWN`, then how many more there are.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [str(p) for p in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            more = len(problems) - MAX_PROBLEMS_SHOWN
            lines.append(f"and {more:,} more problems: fix these, then `angles validate` again")
        super().__init__("\n".join(lines))


class PluginError(AnglesError):
    """A plugin is broken or two plugins claim the same name."""


class ServiceError(AnglesError):
    """A service (Supabase, Notion, GitHub, Slack, a mail server…) failed.

    The message names the service; the hint says what to check. ``transient`` marks a
    failure worth another try (a 429, a 5xx, a timeout, a refused connection), and
    ``retry_after`` the wait the service asked for (see :mod:`angles.core.retry`).
    """

    exit_code = ExitCode.ERROR

    def __init__(
        self,
        service: str,
        message: str,
        *,
        hint: str | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.service = service
        self.transient = transient
        self.retry_after = retry_after
        super().__init__(f"{service}: {message}", hint=hint)

    def note(self, text: str) -> None:
        """Add ``text`` to the message (how often it was tried, why not again)."""
        self.message = f"{self.message}; {text}"
        self.args = (self.message,)


class BackupError(AnglesError):
    """A backup could not be written, read or verified."""

    exit_code = ExitCode.ERROR


class RestoreRefused(AnglesError):
    """A restore was refused: bad checksum, schema difference, no confirmation."""

    exit_code = ExitCode.ERROR
