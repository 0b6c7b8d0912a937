"""Statuses and the results that checks return."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from angles.core.errors import ExitCode


class Status(StrEnum):
    """The outcome of a check, a backup, a notification or a whole run."""

    OK = "ok"
    WARNING = "warning"
    ERROR = "error"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode(self.severity)

    @property
    def log_level(self) -> str:
        """The level an outcome is logged at: a failure is never mere information."""
        return "info" if self is Status.OK else self.value

    @classmethod
    def worst(cls, statuses: Any) -> Status:
        """The most severe of some statuses; ``ok`` when there are none."""
        return max(statuses, key=lambda s: s.severity, default=cls.OK)


_SEVERITY = {Status.OK: 0, Status.WARNING: 1, Status.ERROR: 2}


@dataclass
class CheckResult:
    """What a check returns: a status, a one-line message and details for programs."""

    status: Status
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, message: str, **details: Any) -> CheckResult:
        return cls(Status.OK, message, details)

    @classmethod
    def warning(cls, message: str, **details: Any) -> CheckResult:
        return cls(Status.WARNING, message, details)

    @classmethod
    def error(cls, message: str, **details: Any) -> CheckResult:
        return cls(Status.ERROR, message, details)
