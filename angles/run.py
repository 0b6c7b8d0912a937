"""Running a pipeline: the one place that knows the phases of a run.

Checks run concurrently, then backups, then notifications (each notifier's policy
decides against the state store), then the run is recorded in the state store.

The run has a budget, ``defaults.run_timeout``. Checks and backups get it less a slice
reserved for the notifications, so that a run out of time still tells people. Checks and
backups run in daemon threads: one given up on is reported, never waited for, and never
holds the process's exit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from enum import StrEnum

from angles.backup.engine import run_backups
from angles.core.check import Check
from angles.core.context import Context
from angles.core.durations import format_seconds
from angles.core.errors import AnglesError
from angles.core.report import BackupRun, CheckRun, RunReport
from angles.core.results import CheckResult, Status
from angles.core.retry import Budget, RetryPolicy
from angles.core.text import one_line
from angles.state.alerting import announce_start, send_notifications
from angles.state.store import record_run

MAX_CONCURRENT_CHECKS = 16
#: Seconds a check may run past its connection's worst case, so that the connection's
#: own message (which names the operation) arrives before the runner gives up.
GRACE_SECONDS = 5.0
#: At most this share of the run's budget is kept back for the notifications.
NOTIFY_SHARE = 0.25
#: Seconds the runner still waits for a check or the backups once the budget is spent:
#: their requests end with the budget, and their own message names the operation.
LATE_SECONDS = 1.0


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
    context.run_budget = Budget(context.pipeline.run_timeout)
    context.budget = context.run_budget.until(notification_reserve(context))
    if notify is Notify.ALWAYS:
        announce_start(context, report)
    if checks:
        report.checks = run_checks(context, check_names)
    if backups and context.pipeline.backups and not context.test:
        report.backups = _run_backups_in_time(context, backup_names)
        for backup in report.backups:
            backup.message = context.redact(backup.message)
    context.budget = context.run_budget  # the slice kept back, and whatever is left
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


def notification_reserve(context: Context) -> float:
    """Seconds kept back from checks and backups for the notifications: what the slowest
    notifier may take, at most a quarter of the run's budget."""
    total = context.run_budget.seconds
    if not context.pipeline.notifiers or total is None:
        return 0.0
    slowest = 0.0
    for entry in context.pipeline.notifiers:
        cls = context.plugins.notifiers.get(entry["type"])
        retries = entry.get("retries", getattr(cls, "default_retries", 0))
        timeout = float(entry.get("timeout_seconds") or context.default_timeout)
        slowest = max(slowest, RetryPolicy.with_retries(retries).worst_case(timeout))
    return min(slowest, total * NOTIFY_SHARE)


def run_checks(context: Context, names: Sequence[str] = ()) -> list[CheckRun]:
    """Run the checks concurrently, each within its time limit; results in pipeline order.

    A check that raises or overruns becomes an error result; it never stops the others.
    """
    entries = context.pipeline.select("checks", names)
    log = context.logger("health")
    if not entries:
        return []
    slots = threading.BoundedSemaphore(MAX_CONCURRENT_CHECKS)
    workers = [_Worker(lambda entry=entry: _run_one(context, entry), slots) for entry in entries]
    late = context.budget.until(-LATE_SECONDS)  # one moment for all, not one each
    results = [
        _collect(context, entry, worker, late)
        for entry, worker in zip(entries, workers, strict=True)
    ]
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


class _Worker:
    """``work()`` in a daemon thread (at most ``slots`` at once): a worker that overruns
    is abandoned and never joined, so it cannot hold the process's exit."""

    def __init__(self, work: Callable[[], object], slots: threading.BoundedSemaphore) -> None:
        self.future: Future = Future()
        self.thread_id: int | None = None
        self.started = time.perf_counter()
        self._work, self._slots = work, slots
        threading.Thread(target=self._run, name="angles-worker", daemon=True).start()

    def _run(self) -> None:
        with self._slots:
            self.thread_id = threading.get_ident()
            self.started = time.perf_counter()
            try:
                self.future.set_result(self._work())
            except BaseException as exc:
                self.future.set_exception(exc)


def check_limit(context: Context, entry: dict) -> float:
    """The seconds a check is given: its ``timeout_seconds``, else the pipeline default."""
    return float(entry.get("timeout_seconds") or context.default_timeout)


def check_deadline(context: Context, entry: dict) -> float:
    """Seconds the runner waits for a check: its limit, and always more than its
    connection's worst case (every try timing out, waits included), plus a grace so
    that the check's or connection's own message, which names the operation, wins."""
    limit = check_limit(context, entry)
    name = entry.get("connection")
    if isinstance(name, str) and name in context.pipeline.connections:
        # a connection that cannot be made fails in the check, with its own message
        with contextlib.suppress(Exception):
            limit = max(limit, context.connection(name).time_bound())
    return limit + min(GRACE_SECONDS, limit / 2)


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


def _collect(context: Context, entry: dict, worker: _Worker, late: Budget) -> CheckRun:
    deadline = check_deadline(context, entry)
    while True:
        # a check waiting for a free slot has not started: its own time has not either
        started = worker.started if worker.thread_id is not None else time.perf_counter()
        left = min(started + deadline - time.perf_counter(), late.remaining())
        try:
            result, duration = worker.future.result(timeout=max(0.0, left))
            break
        except TimeoutError:
            if worker.thread_id is None and not context.budget.spent:
                continue
            out_of_run = context.budget.remaining() <= 0
            limit = check_limit(context, entry)
            result = CheckResult.error(_overran(context, worker.thread_id, limit, out_of_run))
            duration = time.perf_counter() - worker.started
            break
        except Exception as exc:  # raised while creating the check
            result, duration = (
                CheckResult.error(one_line(exc)),
                time.perf_counter() - worker.started,
            )
            break
    # Secrets are removed here, at the source, so no report or notifier ever sees them.
    return CheckRun(
        name=entry["name"],
        type=entry["type"],
        status=Status(result.status),
        message=context.redact(result.message),
        duration_seconds=duration,
        details=context.redact(result.details),
    )


def _overran(context: Context, thread_id: int | None, deadline: float, out_of_run: bool) -> str:
    """Why a check or backup was given up on, naming the service it was waiting on."""
    if out_of_run:
        limit = format_seconds(context.run_budget.seconds or 0)
        why = f"the run's time limit (defaults.run_timeout: {limit}) was spent"
    else:
        why = f"no result within {deadline:g}s (the check's time limit)"
    waiting = context.activity.of(thread_id)
    if waiting is None:
        return f"{why}; it was not waiting on any service"
    service, operation = waiting
    return f"{service}: {operation}: {why} while waiting for an answer"


def _run_backups_in_time(context: Context, names: Sequence[str]) -> list[BackupRun]:
    """The backups, given up on (each reported as an error) when the run's budget ends."""
    worker = _Worker(lambda: run_backups(context, names), threading.BoundedSemaphore(1))
    try:
        left = context.budget.remaining()
        return worker.future.result(timeout=None if left == float("inf") else left + LATE_SECONDS)
    except TimeoutError:
        message = _overran(context, worker.thread_id, 0, out_of_run=True)
        context.logger("backup").error("backups given up", error=message)
        entries = context.pipeline.select("backups", names)
        return [BackupRun(entry["name"], Status.ERROR, message=message) for entry in entries]
