"""The pipeline as the core uses it, once loaded and validated."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from angles.core.errors import AnglesError

DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_RUN_TIMEOUT = "15m"


@dataclass
class Pipeline:
    """A validated pipeline file: its document and where it came from.

    ``secrets`` holds every secret value found while loading (secret properties and
    secret-looking environment variables), which logs and reports redact.
    ``lines`` maps a key path (``checks.0.table``) to its line in ``path``, for messages.
    """

    path: Path
    document: dict[str, Any]
    secrets: frozenset[str] = frozenset()
    lines: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.document.get("name") or self.path.stem)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the pipeline are taken from."""
        return self.path.parent

    @property
    def schedule(self) -> str | None:
        return self.document.get("schedule")

    @property
    def connections(self) -> dict[str, dict[str, Any]]:
        return self.document.get("connections") or {}

    @property
    def checks(self) -> list[dict[str, Any]]:
        return self.document.get("checks") or []

    @property
    def backups(self) -> list[dict[str, Any]]:
        return self.document.get("backups") or []

    @property
    def sinks(self) -> dict[str, dict[str, Any]]:
        return self.document.get("sinks") or {}

    @property
    def notifiers(self) -> list[dict[str, Any]]:
        return self.document.get("notifiers") or []

    @property
    def restore(self) -> dict[str, Any]:
        return self.document.get("restore") or {}

    @property
    def defaults(self) -> dict[str, Any]:
        return self.document.get("defaults") or {}

    @property
    def timeout_seconds(self) -> float:
        return float(self.defaults.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))

    @property
    def run_timeout(self) -> float:
        """Seconds the whole run may take (``defaults.run_timeout``, default 15m)."""
        from angles.core.durations import parse_duration

        return parse_duration(self.defaults.get("run_timeout", DEFAULT_RUN_TIMEOUT)).total_seconds()

    def select(self, section: str, names: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The entries of a list section (``checks``, ``backups``…) named, all when
        ``names`` is empty; an unknown name is an error listing the defined ones."""
        entries: list[dict[str, Any]] = self.document.get(section) or []
        if not names:
            return entries
        known = {entry["name"] for entry in entries}
        unknown = [name for name in names if name not in known]
        if unknown:
            what = section.removesuffix("s")
            raise AnglesError(
                f"no {what} named {', '.join(map(repr, unknown))}",
                hint=f"the pipeline defines: {', '.join(sorted(known)) or 'none'}",
            )
        return [entry for entry in entries if entry["name"] in names]

    def resolve(self, path: str | Path) -> Path:
        """A path from the pipeline, relative to the pipeline file's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def log_dir(self) -> Path:
        return self.resolve(self.document.get("log_dir", "logs"))

    @property
    def report(self) -> Path | None:
        """The status page written after each run (``report:``), if any."""
        value = self.document.get("report")
        return self.resolve(value) if value else None

    @property
    def metrics(self) -> Path | None:
        """The Prometheus metrics file written after each run (``metrics:``), if any."""
        value = self.document.get("metrics")
        return self.resolve(value) if value else None

    @property
    def state(self) -> str:
        """The state store: a file path (resolved) or a ``postgresql://`` URL."""
        value = str(self.document.get("state", ".angles/state.db"))
        if "://" in value:
            return value
        return str(self.resolve(value))
