"""Running a pipeline: the one place that knows the phases of a run.

Checks run concurrently, then backups, then notifications (each notifier's policy
decides against the state store), then the run is recorded in the state store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from enum import StrEnum

from angles.backup.engine import run_backups
from angles.core.check import Check
from angles.core.context import Context
from angles.core.errors import AnglesError
from angles.core.report import CheckRun, RunReport
from angles.core.results import CheckResult, Status
from angles.core.text import one_line
from angles.state.alerting import announce_start, send_notifications
from angles.state.store import record_run

MAX_CONCURRENT_CHECKS = 16


class Notify(StrEnum):
    """When a run asks its notifiers."""

    #: Every run (``run``, ``check``): each notifier's own policy decides.
    ALWAYS = "always"
    #: Only a run that did not pass (``backup``: a good backup is no news).
    ON_FAILURE = "on_failure"
    NEVER = "never"


def run_pipeline(
    context: Context,
    *,
    checks: bool = True,
    backups: bool = True,
    check_names: Sequence[str] = (),
    backup_names: Sequence[str] = (),
    notify: Notify = Notify.ALWAYS,
    record: bool = True,
) -> RunReport:
    """The daily job: checks, then backups, then notifications, then the record in the
    state store (``--test`` runs are never recorded); returns the report."""
    report = RunReport(context.pipeline.name, datetime.now(UTC), test=context.test)
    started = time.perf_counter()
    log = context.logger("runs", test=context.test)
    log.info("run started")
    if notify is Notify.ALWAYS:
        announce_start(context, report)
    if checks:
        report.checks = run_checks(context, check_names)
    if backups and context.pipeline.backups and not context.test:
        report.backups = run_backups(context, backup_names)
        for backup in report.backups:
            backup.message = context.redact(backup.message)
    report.duration_seconds = time.perf_counter() - started
    if notify is Notify.ALWAYS or (notify is Notify.ON_FAILURE and report.status is not Status.OK):
        report.notifications = send_notifications(context, report)
    getattr(log, report.status.log_level)(
        "run finished",
        status=report.status.value,
        duration_seconds=round(report.duration_seconds, 3),
        failing=[c.name for c in report.failing_checks],
    )
    if record:
        record_run(context, report)
    return report


def run_checks(context: Context, names: Sequence[str] = ()) -> list[CheckRun]:
    """Run the checks concurrently, each within its timeout; results in pipeline order.

    A check that raises or overruns becomes an error result; it never stops the others.
    """
    entries = context.pipeline.select("checks", names)
    log = context.logger("health")
    if not entries:
        return []
    pool = ThreadPoolExecutor(
        max_workers=min(len(entries), MAX_CONCURRENT_CHECKS), thread_name_prefix="check"
    )
    try:
        futures = [
            (entry, pool.submit(_run_one, context, entry), time.perf_counter()) for entry in entries
        ]
        results = [
            _collect(context, entry, future, submitted) for entry, future, submitted in futures
        ]
    finally:
        # A check that overran keeps its thread; the run does not wait for it.
        pool.shutdown(wait=False, cancel_futures=True)
    for result in results:
        getattr(log, result.status.log_level)(
            "check finished",
            check=result.name,
            type=result.type,
            status=result.status.value,
            message=result.message,
            duration_seconds=round(result.duration_seconds, 3),
        )
    return results


def _timeout(context: Context, entry: dict) -> float:
    return float(entry.get("timeout_seconds") or context.default_timeout)


def _run_one(context: Context, entry: dict) -> tuple[CheckResult, float]:
    started = time.perf_counter()
    check: Check = context.create("check", entry["name"], entry)  # type: ignore[assignment]
    try:
        result = check.simulate_failure() if context.test else check.run()
    except AnglesError as exc:
        result = CheckResult.error(str(exc))
    except Exception as exc:
        result = CheckResult.error(one_line(exc))
    if not isinstance(result, CheckResult):
        result = CheckResult.error(
            f"the {check.type} check returned {type(result).__name__}, not a CheckResult"
        )
    return result, time.perf_counter() - started


def _collect(context: Context, entry: dict, future: Future, submitted: float) -> CheckRun:
    timeout = _timeout(context, entry)
    remaining = max(0.0, submitted + timeout - time.perf_counter())
    try:
        result, duration = future.result(timeout=remaining)
    except TimeoutError:
        future.cancel()
        result = CheckResult.error(f"timed out after {timeout:g}s")
        duration = time.perf_counter() - submitted
    except Exception as exc:  # raised while creating the check
        result, duration = CheckResult.error(one_line(exc)), time.perf_counter() - submitted
    # Secrets are removed here, at the source, so no report or notifier ever sees them.
    return CheckRun(
        name=entry["name"],
        type=entry["type"],
        status=Status(result.status),
        message=context.redact(result.message),
        duration_seconds=duration,
        details=context.redact(result.details),
    )
