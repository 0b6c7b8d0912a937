"""Shared helpers for the notifier tests: a notification to send and a notifier to send it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from angles import Notification, Notifier, Recovery, Status
from angles.core.context import Context
from angles.core.pipeline import Pipeline
from angles.core.plugins import load_plugins
from angles.core.report import BackupRun, CheckRun, RunReport

STARTED = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)


def make_report(
    checks: Iterable[tuple[str, str, str]] = (("sync", "warning", "12 unsynced records"),),
    *,
    test: bool = False,
    backups: Iterable[BackupRun] = (),
    pipeline: str = "production",
) -> RunReport:
    """A report with checks given as (name, status, message)."""
    return RunReport(
        pipeline,
        STARTED,
        test=test,
        duration_seconds=1.84,
        checks=[CheckRun(n, "static", Status(s), m, 0.1) for n, s, m in checks],
        backups=list(backups),
    )


@pytest.fixture
def notification() -> Callable[..., Notification]:
    """``notification(checks, recovered=[(name, timedelta)], test=False)``: what a notifier sends."""

    def make(
        checks: Iterable[tuple[str, str, str]] = (("sync", "warning", "12 unsynced records"),),
        *,
        recovered: Iterable[tuple[str, timedelta]] = (),
        **options: Any,
    ) -> Notification:
        report = make_report([*checks, *((name, "ok", "fine") for name, _ in recovered)], **options)
        by_name = {c.name: c for c in report.checks}
        return Notification(
            report,
            alerts=report.failing_checks,
            recoveries=[Recovery(by_name[name], delta) for name, delta in recovered],
        )

    return make


@pytest.fixture
def notifier(tmp_path: Path) -> Callable[..., Notifier]:
    """``notifier({"type": "slack", ...}, secrets=[...])``: a configured notifier instance."""

    def make(entry: dict[str, Any], *, secrets: Iterable[str] = (), timeout: float = 5) -> Notifier:
        entry = {"name": entry["type"], **entry}
        document = {
            "version": 1,
            "name": "production",
            "notifiers": [entry],
            "defaults": {"timeout_seconds": timeout},
        }
        pipeline = Pipeline(tmp_path / "angles.yaml", document, frozenset(secrets))
        context = Context(pipeline, load_plugins())
        return context.create("notifier", entry["name"], entry)  # type: ignore[return-value]

    return make
