"""The scheduler with a controllable clock: run times, catch-up, locks, signals, races."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from angles.core.logging import Logs
from angles.core.redact import Redactor
from angles.core.report import RunReport
from angles.state.scheduler import Scheduler, latest_time, next_time
from angles.state.store import StateStore

DAY1 = datetime(2026, 11, 26, tzinfo=UTC)


class FakeTime:
    """A clock and a sleep that moves it; stops the scheduler once ``until`` is passed."""

    def __init__(self, start: datetime, until: datetime | None = None) -> None:
        self.now = start
        self.until = until
        self.sleeps: list[float] = []
        self.scheduler: Scheduler | None = None
        self.lock = threading.Lock()

    def clock(self) -> datetime:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += timedelta(seconds=seconds)
            passed = self.until is not None and self.now >= self.until
        if passed and self.scheduler:
            self.scheduler.stop()

    def advance(self, **delta: float) -> None:
        with self.lock:
            self.now += timedelta(**delta)


@pytest.fixture
def logs(tmp_path):
    """The scheduler's log folder; ``make`` writes there."""
    return tmp_path / "logs"


@pytest.fixture
def store_at(tmp_path):
    return str(tmp_path / "state.db")


def make(location: str, fake: FakeTime, run=None, schedule="0 3 * * *", **options) -> Scheduler:
    ran: list[datetime] = []

    def default_run() -> RunReport:
        ran.append(fake.clock())
        return RunReport("prod", fake.clock())

    # Beside the state file: the folder the ``logs`` fixture names.
    options.setdefault("logs", Logs(Path(location).parent / "logs", Redactor()))

    scheduler = Scheduler(
        "prod",
        schedule,
        run or default_run,
        lambda: StateStore.open(location),
        clock=fake.clock,
        sleep=fake.sleep,
        max_wait=86400,
        **options,
    )
    scheduler.ran = ran  # type: ignore[attr-defined]
    fake.scheduler = scheduler
    return scheduler


def test_cron_times_are_utc():
    assert next_time("0 3 * * *", DAY1) == DAY1 + timedelta(hours=3)
    assert next_time("0 3 * * *", DAY1 + timedelta(hours=3)) == DAY1 + timedelta(days=1, hours=3)
    assert latest_time("0 3 * * *", DAY1 + timedelta(hours=3)) == DAY1 + timedelta(hours=3)
    assert latest_time("*/15 * * * *", DAY1 + timedelta(minutes=44)) == DAY1 + timedelta(minutes=30)


def test_runs_at_each_scheduled_time_and_never_early(store_at, logs):
    fake = FakeTime(DAY1 + timedelta(hours=2, minutes=30), until=DAY1 + timedelta(days=2, hours=4))
    scheduler = make(store_at, fake)
    scheduler.run_forever()
    assert scheduler.ran == [
        DAY1 + timedelta(hours=3),
        DAY1 + timedelta(days=1, hours=3),
        DAY1 + timedelta(days=2, hours=3),
    ]
    assert fake.sleeps[0] == 30 * 60
    with StateStore.open(store_at) as store:
        assert store.last_scheduled("prod") == DAY1 + timedelta(days=2, hours=3)
    scheduler_log = (logs / "scheduler.log").read_text()
    assert '"event": "scheduler started"' in scheduler_log
    assert '"next_run": "2026-11-26T03:00:00Z"' in scheduler_log
    assert scheduler_log.count('"event": "run finished"') == 3
    assert '"event": "scheduler stopped"' in scheduler_log
    runs_log = (logs / "automated_runs.log").read_text()
    assert runs_log.count('"event": "automated run finished"') == 3
    assert '"exit_code": 0' in runs_log


def test_after_downtime_one_missed_run_is_caught_up(store_at, logs):
    with StateStore.open(store_at) as store:
        store.claim_slot("prod", DAY1 + timedelta(hours=3))
    # Down for three days: the runs of the 27th, 28th and 29th were missed.
    start = DAY1 + timedelta(days=3, hours=10)
    fake = FakeTime(start, until=DAY1 + timedelta(days=4, hours=4))
    scheduler = make(store_at, fake)
    scheduler.run_forever()
    assert scheduler.ran == [start, DAY1 + timedelta(days=4, hours=3)]
    log = (logs / "scheduler.log").read_text()
    assert '"event": "catching up one missed run"' in log
    assert '"missed_since": "2026-11-27T03:00:00Z"' in log
    assert '"scheduled": "2026-11-29T03:00:00Z"' in log


def test_a_first_start_catches_nothing_up(store_at):
    fake = FakeTime(DAY1 + timedelta(hours=10), until=DAY1 + timedelta(days=1, hours=4))
    scheduler = make(store_at, fake)
    scheduler.run_forever()
    assert scheduler.ran == [DAY1 + timedelta(days=1, hours=3)]


def test_a_run_that_raises_is_logged_and_the_scheduler_goes_on(store_at, logs):
    fake = FakeTime(DAY1, until=DAY1 + timedelta(days=1, hours=4))
    calls = []

    def run() -> RunReport:
        calls.append(fake.clock())
        if len(calls) == 1:
            raise RuntimeError("boom")
        return RunReport("prod", fake.clock())

    make(store_at, fake, run=run).run_forever()
    assert len(calls) == 2
    assert '"error": "RuntimeError: boom"' in (logs / "automated_runs.log").read_text()


def test_a_run_still_in_progress_elsewhere_is_skipped(store_at, logs):
    fake = FakeTime(DAY1 + timedelta(hours=2, minutes=59), until=DAY1 + timedelta(hours=4))
    with StateStore.open(store_at) as store:
        assert store.acquire_lock("run:prod", "other-host", fake.clock(), timedelta(hours=2))
    scheduler = make(store_at, fake)
    scheduler.run_forever()
    assert scheduler.ran == []
    assert '"holder": "other-host since ' in (logs / "scheduler.log").read_text()


def test_sigterm_finishes_the_current_run_then_stops(store_at):
    fake = FakeTime(DAY1 + timedelta(hours=3))
    finished = []

    def run() -> RunReport:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler has run by now; the run goes on
        finished.append(True)
        return RunReport("prod", fake.clock())

    before = signal.getsignal(signal.SIGTERM)
    scheduler = make(store_at, fake, run=run)
    with scheduler.stop_on_signals():
        scheduler.run_forever()
    assert finished == [True] and scheduler.runs == 1 and scheduler.stopping
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_signal_aborts(store_at):
    fake = FakeTime(DAY1 + timedelta(hours=3))

    def run() -> RunReport:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
        raise AssertionError("not interrupted")

    scheduler = make(store_at, fake, run=run)
    with pytest.raises(KeyboardInterrupt), scheduler.stop_on_signals():
        scheduler.run_forever()


def test_stop_while_waiting_returns_at_once(store_at):
    scheduler = Scheduler(
        "prod", "0 3 * * *", lambda: RunReport("prod", DAY1), lambda: StateStore.open(store_at)
    )
    threading.Timer(0.2, scheduler.stop).start()
    started = time.monotonic()
    scheduler.run_forever()  # the real clock and sleep: the next 03:00 is hours away
    assert time.monotonic() - started < 2 and scheduler.runs == 0


def test_the_lock_is_renewed_during_a_long_run(store_at):
    fake = FakeTime(DAY1 + timedelta(hours=3))
    seen = []

    def run() -> RunReport:
        for _ in range(4):
            fake.advance(seconds=1)  # past the 1-second TTL unless renewed
            time.sleep(0.15)
            with StateStore.open(store_at) as store:
                seen.append(store.lock_owner("run:prod", fake.clock()))
        scheduler.stop()
        return RunReport("prod", fake.clock())

    scheduler = make(store_at, fake, run=run, owner="me", lock_ttl=timedelta(seconds=0.3))
    scheduler.run_forever()
    assert seen[-1] == "me"
    with StateStore.open(store_at) as store:
        assert store.lock_owner("run:prod", fake.clock()) is None  # released


@pytest.fixture
def pg_state(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS angles CASCADE")
    return postgres_url


@pytest.mark.postgres
def test_two_schedulers_racing_on_one_postgres_state_run_once(pg_state):
    StateStore.open(pg_state).close()
    barrier = threading.Barrier(2)
    ran: list[str] = []
    schedulers = []
    for owner in ("a", "b"):
        fake = FakeTime(DAY1 + timedelta(hours=2, minutes=59), until=DAY1 + timedelta(hours=5))

        def run(owner=owner, fake=fake) -> RunReport:
            ran.append(owner)
            time.sleep(0.3)  # long enough for the other to try
            return RunReport("prod", fake.clock())

        original = fake.sleep

        def sleep(seconds, original=original):
            original(seconds)
            barrier.wait(timeout=5)  # both wake at 03:00 together

        fake.sleep = sleep
        schedulers.append(make(pg_state, fake, run=run, owner=owner))
    threads = [threading.Thread(target=s.run_forever) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(ran) == 1


@pytest.mark.postgres
def test_a_slow_run_blocks_the_next_time_on_another_scheduler(pg_state):
    StateStore.open(pg_state).close()
    started, release = threading.Event(), threading.Event()
    fake_a = FakeTime(DAY1 + timedelta(hours=3))
    fake_b = FakeTime(DAY1 + timedelta(hours=3, minutes=5))

    def slow() -> RunReport:
        started.set()
        release.wait(5)
        return RunReport("prod", fake_a.clock())

    a = make(pg_state, fake_a, run=slow, owner="a", schedule="0 * * * *")
    b = make(pg_state, fake_b, owner="b", schedule="0 * * * *")
    thread = threading.Thread(target=a.run_slot, args=(DAY1 + timedelta(hours=3),))
    thread.start()
    try:
        assert started.wait(5)
        assert b.run_slot(DAY1 + timedelta(hours=4)) is False  # a still holds the run lock
    finally:
        release.set()
        thread.join(5)
    assert b.run_slot(DAY1 + timedelta(hours=5)) is True
