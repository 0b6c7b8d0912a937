"""The pipeline lock: one run at a time, the holder named, dead holders taken over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from angles.core.report import RunReport
from angles.state.lock import Holder, PipelineLock, PipelineLocked, new_owner
from angles.state.scheduler import Scheduler
from angles.state.store import StateStore

#: Now, to the second: a lock must not predate the process holding it (see the pid reuse test).
T0 = datetime.now(UTC).replace(microsecond=0)
STAMP = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
TTL = timedelta(minutes=15)
HOST = socket.gethostname()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def location(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "state.db")
    with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS angles CASCADE")
    return request.getfixturevalue("postgres_url")


def lock_at(location: str, owner: str | None = None, clock=lambda: T0) -> PipelineLock:
    return PipelineLock(
        lambda: StateStore.open(location), "prod", ttl=TTL, owner=owner, clock=clock
    )


def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_held_lock_names_its_process_host_and_time(location):
    first, second = lock_at(location), lock_at(location)
    assert first.try_acquire() is None
    holder = second.try_acquire()
    assert holder is not None
    assert holder.describe() == f"process {os.getpid()} on host {HOST} since {STAMP}"
    with pytest.raises(PipelineLocked) as raised, second.hold():
        pass
    assert raised.value.exit_code == 3
    assert str(raised.value).startswith(
        f"pipeline 'prod' is already running: process {os.getpid()} on host {HOST} "
        f"since {STAMP} holds its lock"
    )
    first.release()
    assert second.try_acquire() is None


def test_the_lock_of_a_process_that_died_on_this_host_is_taken_over(location):
    gone = f"{HOST}:{dead_pid()}:deadbeef"
    assert lock_at(location, owner=gone).try_acquire() is None
    mine = lock_at(location, clock=lambda: T0 + timedelta(minutes=1))
    assert mine.try_acquire() is None
    with StateStore.open(location) as store:
        record = store.lock_record(mine.name)
    assert record.owner == mine.owner
    assert record.acquired_at == T0 + timedelta(minutes=1)


def test_a_pid_reused_by_a_younger_process_does_not_keep_the_lock(location):
    # This very process is alive, but it started after the lock was taken: not the holder.
    an_hour_before_this_process = T0 - timedelta(hours=1)
    earlier = lock_at(
        location, owner=f"{HOST}:{os.getpid()}:0ld0ld00", clock=lambda: an_hour_before_this_process
    )
    assert earlier.try_acquire() is None
    unexpired = an_hour_before_this_process + timedelta(minutes=1)
    assert lock_at(location, clock=lambda: unexpired).try_acquire() is None


def test_another_hosts_lock_is_respected_until_it_expires(location):
    elsewhere = lock_at(location, owner="web-2:4242:cafe0123")
    assert elsewhere.try_acquire() is None
    holder = lock_at(location, clock=lambda: T0 + TTL - timedelta(seconds=1)).try_acquire()
    assert holder is not None and holder.describe().startswith("process 4242 on host web-2")
    assert lock_at(location, clock=lambda: T0 + TTL).try_acquire() is None


def test_renewal_keeps_the_lock_past_its_ttl(location):
    now = [T0]
    holder = lock_at(location, clock=lambda: now[0])
    holder_elsewhere = PipelineLock(
        lambda: StateStore.open(location), "prod", ttl=TTL, owner="web-2:1:x", clock=lambda: now[0]
    )
    assert holder_elsewhere.try_acquire() is None
    now[0] = T0 + TTL - timedelta(minutes=1)
    assert holder_elsewhere.renew()
    now[0] = T0 + TTL + timedelta(minutes=1)
    assert holder.try_acquire() is not None  # renewed: not expired
    now[0] = T0 + 2 * TTL
    assert holder.try_acquire() is None  # no renewal for a whole TTL: expired


def race(contenders: list[PipelineLock]) -> dict[str, Holder | None]:
    """Every contender tries to take the lock at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(contenders))
    results: dict[str, Holder | None] = {}

    def take(lock: PipelineLock) -> None:
        barrier.wait()
        results[lock.owner] = lock.try_acquire()

    threads = [threading.Thread(target=take, args=(lock,)) for lock in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_processes_taking_over_a_dead_lock_never_both_win(location):
    for _ in range(5):
        gone = f"{HOST}:{dead_pid()}:deadbeef"
        with StateStore.open(location) as store:
            previous = store.lock_record("run:prod")
            if previous is not None:  # the last round's winner
                store.release_lock("run:prod", previous.owner)
            assert store.acquire_lock("run:prod", gone, T0, TTL)
        results = race([lock_at(location) for _ in range(4)])
        winners = [owner for owner, holder in results.items() if holder is None]
        assert len(winners) == 1
        losers = [holder for holder in results.values() if holder is not None]
        assert all(holder.record.owner == winners[0] for holder in losers)


def test_the_scheduler_and_a_manual_run_share_the_lock(tmp_path):
    location = str(tmp_path / "state.db")
    ran: list[datetime] = []

    def run() -> RunReport:
        ran.append(T0)
        return RunReport("prod", T0)

    scheduler = Scheduler(
        "prod", "0 3 * * *", run, lambda: StateStore.open(location), clock=lambda: T0
    )
    manual = lock_at(location, owner=new_owner())
    assert manual.try_acquire() is None  # as `angles run` takes it
    assert scheduler.run_slot(T0) is False
    assert ran == []
    manual.release()
    assert scheduler.run_slot(T0 + timedelta(days=1)) is True
    assert ran == [T0]
    with StateStore.open(location) as store:
        assert store.lock_record("run:prod") is None  # released after the run
