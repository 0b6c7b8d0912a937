"""Running a pipeline on its cron ``schedule:``, in UTC, until stopped.

Every scheduled time is claimed in the state store before it runs, and each run holds a
lock there, so several schedulers sharing one store (PostgreSQL) never run the same
pipeline twice for one time nor two runs at once. After downtime, at most one missed
run is caught up. The clock and the sleep are injectable so tests control time.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from croniter import croniter

from angles.core.errors import AnglesError
from angles.core.logging import Logs
from angles.core.redact import Redactor
from angles.core.report import RunReport, format_timestamp
from angles.core.text import one_line
from angles.state.lock import DEFAULT_RUN_BUDGET, PipelineLock, new_owner, run_budget
from angles.state.store import StateStore

if TYPE_CHECKING:
    from angles.core.pipeline import Pipeline
    from angles.core.plugins import Plugins

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]

#: How long a run's lock lasts without renewal (a running scheduler renews it);
#: :func:`scheduler_for` uses the pipeline's run budget.
LOCK_TTL = DEFAULT_RUN_BUDGET
#: The longest single wait, so a clock that jumps (suspend, NTP) is noticed.
MAX_WAIT_SECONDS = 60.0


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def next_time(schedule: str, after: datetime) -> datetime:
    """The first time the cron expression matches strictly after ``after`` (UTC)."""
    return croniter(schedule, after.astimezone(UTC)).get_next(datetime)


def latest_time(schedule: str, at: datetime) -> datetime:
    """The last time the cron expression matches at or before ``at`` (UTC)."""
    return croniter(schedule, at.astimezone(UTC) + timedelta(microseconds=1)).get_prev(datetime)


class Scheduler:
    """Runs ``run`` at each time of ``schedule``; :meth:`stop` ends it after the current run.

    ``run`` performs one run and returns its report. ``open_store`` opens the state store
    (a new connection per call). ``clock`` returns the time (aware, UTC); ``sleep`` waits
    some seconds and may return early (default: until :meth:`stop`); no single wait is
    longer than ``max_wait`` seconds, so a clock that jumps is noticed.
    """

    def __init__(
        self,
        pipeline: str,
        schedule: str,
        run: Callable[[], RunReport],
        open_store: Callable[[], StateStore],
        *,
        clock: Clock = utc_now,
        sleep: Sleep | None = None,
        owner: str | None = None,
        lock_ttl: timedelta = LOCK_TTL,
        max_wait: float = MAX_WAIT_SECONDS,
        logs: Logs | None = None,
    ) -> None:
        if not croniter.is_valid(schedule):
            raise AnglesError(f"{schedule!r} is not a cron expression", hint='e.g. "0 3 * * *"')
        self.pipeline = pipeline
        self.schedule = schedule
        self.run = run
        self.open_store = open_store
        self.clock = clock
        self.sleep = sleep or self._wait
        self.owner = owner or new_owner()
        self.lock_ttl = lock_ttl
        self.max_wait = max_wait
        #: The lock ``angles run`` takes too, so a manual run and a scheduled one never overlap.
        self.lock = PipelineLock(open_store, pipeline, ttl=lock_ttl, owner=self.owner, clock=clock)
        self.lock_name = self.lock.name
        self.runs = 0
        self._stopping = threading.Event()
        self._started_at: datetime | None = None
        self.logs = logs or Logs(None, Redactor())
        self.log = self.logs.logger("scheduler", pipeline=pipeline)

    # -- control -----------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Stop after the current run (or at once, when waiting)."""
        self._stopping.set()

    @contextmanager
    def stop_on_signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop the scheduler after the current run; a second one aborts.

        Only in the main thread (where Python delivers signals).
        """

        def handle(number: int, frame: Any) -> None:
            if self.stopping:
                raise KeyboardInterrupt
            self.log.info("stopping after the current run", signal=signal.Signals(number).name)
            self.stop()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- the loop ----------------------------------------------------------------------

    def run_forever(self) -> None:
        """Wait for each scheduled time and run, until :meth:`stop`."""
        self._started_at = self.clock()
        with self.open_store() as store:
            last = store.last_scheduled(self.pipeline)
        self.log.info(
            "scheduler started",
            schedule=self.schedule,
            owner=self.owner,
            last_scheduled=format_timestamp(last) if last else None,
            next_run=format_timestamp(self.next_due(last)),
        )
        while not self.stopping:
            try:
                self.step()
            except Exception as exc:  # e.g. the state store is down: try again later
                self.log.error("scheduler step failed", error=one_line(exc))
                self.sleep(self.max_wait)
        self.log.info("scheduler stopped", runs=self.runs)

    def next_due(self, last: datetime | None) -> datetime:
        """The next time to run, given the last time claimed (None: never)."""
        base = last if last is not None else (self._started_at or self.clock())
        return next_time(self.schedule, base)

    def step(self) -> datetime | None:
        """Run if a time is due (the latest one: missed ones are not all replayed), else
        wait towards the next. Returns the time run, if any."""
        now = self.clock()
        with self.open_store() as store:
            last = store.last_scheduled(self.pipeline)
        due = self.next_due(last)
        if due > now:
            self.sleep(min((due - now).total_seconds(), self.max_wait))
            return None
        slot = latest_time(self.schedule, now)
        if slot != due:
            self.log.info(
                "catching up one missed run",
                missed_since=format_timestamp(due),
                scheduled=format_timestamp(slot),
            )
        self.run_slot(slot)
        return slot

    def run_slot(self, slot: datetime) -> bool:
        """Claim the scheduled time ``slot``, take the pipeline lock and run. False if skipped."""
        with self.open_store() as store:
            if not store.claim_slot(self.pipeline, slot):
                self.log.info("skipped: another scheduler ran it", scheduled=format_timestamp(slot))
                return False
        holder = self.lock.try_acquire()
        if holder is not None:
            self.log.warning(
                "skipped: a run is still in progress",
                scheduled=format_timestamp(slot),
                holder=holder.describe(),
            )
            return False
        try:
            with self.lock.renewing(lambda problem: self.log.warning(problem, owner=self.owner)):
                self._run(slot)
        finally:
            self.lock.release()
        return True

    def _run(self, slot: datetime) -> None:
        runs_log = self.logs.logger(
            "runs", pipeline=self.pipeline, scheduled=format_timestamp(slot)
        )
        self.log.info("run started", scheduled=format_timestamp(slot))
        self.runs += 1
        try:
            report = self.run()
        except Exception as exc:
            self.log.error("run failed", scheduled=format_timestamp(slot), error=one_line(exc))
            runs_log.error("automated run failed", error=one_line(exc), exit_code=3)
            return
        self.log.info("run finished", scheduled=format_timestamp(slot), status=report.status.value)
        runs_log.info(
            "automated run finished",
            status=report.status.value,
            exit_code=int(report.status.exit_code),
            duration_seconds=round(report.duration_seconds, 3),
            failing=[c.name for c in report.failing_checks],
        )

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(max(seconds, 0.0))


def scheduler_for(
    pipeline: Pipeline,
    plugins: Plugins,
    *,
    make_logs: Callable[[], Logs] | None = None,
    **options: Any,
) -> Scheduler:
    """A scheduler that runs the pipeline as ``angles run`` does (checks, backups, alerts).

    ``make_logs`` gives each run's logs (and the scheduler's own): by default the
    pipeline's log files, without a console.
    """
    if make_logs is None:

        def make_logs() -> Logs:
            return Logs(pipeline.log_dir, Redactor(pipeline.secrets))

    from angles.core.context import Context
    from angles.run import run_pipeline

    if not pipeline.schedule:
        raise AnglesError(
            f"{pipeline.path} has no schedule",
            hint='add schedule: "0 3 * * *" (cron, in UTC) to the pipeline',
        )

    def run() -> RunReport:
        with Context(pipeline, plugins, logs=make_logs()) as context:
            report = run_pipeline(context)
        return report

    def open_store() -> StateStore:
        return StateStore.open(pipeline.state, connect_timeout=pipeline.timeout_seconds)

    options.setdefault("lock_ttl", run_budget(pipeline))
    return Scheduler(pipeline.name, pipeline.schedule, run, open_store, logs=make_logs(), **options)
