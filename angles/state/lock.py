"""The pipeline lock: one run of a pipeline at a time, across processes and hosts.

``run``, ``check``, ``backup``, a live ``restore`` and each run of ``angles schedule``
hold it: a row of the state store's ``locks`` table, so it works wherever the store is
shared (a SQLite file on one host, PostgreSQL across hosts). The holder renews it while it
runs; it expires one run budget after the last renewal. A lock whose process is gone (its
pid no longer exists on this host) or that expired is taken over at once, with a
compare-and-swap on its owner so that of two processes taking it over only one wins.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from angles.core.errors import AnglesError
from angles.core.report import format_timestamp
from angles.state.store import LockRecord, StateStore

if TYPE_CHECKING:
    from angles.core.pipeline import Pipeline

Clock = Callable[[], datetime]

#: A run's budget when the pipeline sets no ``defaults.run_timeout``.
DEFAULT_RUN_BUDGET = timedelta(minutes=15)
#: Boot time is known to the second: a start this close to the lock's time may be its holder.
_CLOCK_SLACK = timedelta(seconds=2)
#: Attempts to take a lock that is freed or taken over while we look at it.
_ATTEMPTS = 3


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def lock_name(pipeline: str) -> str:
    """The name of a pipeline's lock in the ``locks`` table."""
    return f"run:{pipeline}"


def new_owner() -> str:
    """This process as a lock owner: ``host:pid:tag`` (the tag tells two locks of one
    process apart, and a reused pid from the process that held it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_budget(pipeline: Pipeline) -> timedelta:
    """How long a run of the pipeline may take: ``defaults.run_timeout`` or 15 minutes."""
    from angles.core.durations import parse_duration

    value = pipeline.defaults.get("run_timeout")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return parse_duration(value)
    return DEFAULT_RUN_BUDGET


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, read from its row."""

    record: LockRecord

    @property
    def host(self) -> str | None:
        parts = self.record.owner.rsplit(":", 2)
        return parts[0] if len(parts) == 3 and parts[1].isdigit() else None

    @property
    def pid(self) -> int | None:
        parts = self.record.owner.rsplit(":", 2)
        return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None

    def describe(self) -> str:
        """``process 4242 on host web-1 since 2026-12-03T03:00:00Z``."""
        who = (
            f"process {self.pid} on host {self.host}" if self.pid is not None else self.record.owner
        )
        since = self.record.acquired_at
        return f"{who} since {format_timestamp(since)}" if since else who

    def is_gone(self, now: datetime) -> bool:
        """Whether the holder can no longer be running: its lock expired, or it ran on
        this host and its process does not exist any more."""
        if self.record.expires_at <= now:
            return True
        if self.host != socket.gethostname() or self.pid is None:
            return False
        if not process_exists(self.pid):
            return True
        # A process that started after the lock was taken only reuses the holder's pid.
        started, acquired = process_started_at(self.pid), self.record.acquired_at
        return started is not None and acquired is not None and started > acquired + _CLOCK_SLACK


def process_exists(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        # The state follows the parenthesised command name: "Z" is a zombie.
        return stat.read_text().rpartition(")")[2].split()[0] != "Z"
    return True


def process_started_at(pid: int) -> datetime | None:
    """When a process of this host started (from Linux's /proc; None elsewhere)."""
    try:
        # Fields after the parenthesised command name start at the third, the state.
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = int(fields[19])  # field 22: start time, in clock ticks after boot
        return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC)
    except (OSError, StopIteration, ValueError, IndexError):
        return None


class PipelineLocked(AnglesError):
    """Another process is running the pipeline."""

    def __init__(self, pipeline: str, holder: Holder, budget: timedelta) -> None:
        super().__init__(
            f"pipeline {pipeline!r} is already running: {holder.describe()} holds its lock",
            hint="wait for that run to finish; if it died, its lock is taken over at once on "
            f"its host, elsewhere {_duration(budget)} after its last renewal",
        )
        self.holder = holder


class PipelineLock:
    """The lock of one pipeline, for one owner.

    ``open_store`` opens the state store (a new connection per call, so the renewing
    thread has its own). ``ttl`` is how long the lock lasts without renewal.
    """

    def __init__(
        self,
        open_store: Callable[[], StateStore],
        pipeline: str,
        *,
        ttl: timedelta = DEFAULT_RUN_BUDGET,
        owner: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.open_store = open_store
        self.pipeline = pipeline
        self.name = lock_name(pipeline)
        self.ttl = ttl
        self.owner = owner or new_owner()
        self.clock = clock

    def try_acquire(self) -> Holder | None:
        """Take the lock: None when taken, else who holds it."""
        holder: Holder | None = None
        with self.open_store() as store:
            for _ in range(_ATTEMPTS):
                now = self.clock()
                if store.acquire_lock(self.name, self.owner, now, self.ttl):
                    return None
                record = store.lock_record(self.name)
                if record is None:  # released meanwhile: try again
                    continue
                holder = Holder(record)
                if not holder.is_gone(now):
                    return holder
                if store.take_over_lock(self.name, record.owner, self.owner, now, self.ttl):
                    return None
                # Another process took it over first: look again at who holds it now.
        if holder is None:
            raise AnglesError(
                f"the lock of pipeline {self.pipeline!r} kept changing hands", hint="try again"
            )
        return holder

    def renew(self) -> bool:
        """Extend the lock; False when it was lost."""
        with self.open_store() as store:
            return store.renew_lock(self.name, self.owner, self.clock(), self.ttl)

    def release(self) -> None:
        """Give the lock back (nothing happens when it is no longer ours)."""
        with self.open_store() as store:
            store.release_lock(self.name, self.owner)

    @contextlib.contextmanager
    def renewing(self, on_problem: Callable[[str], None] = lambda message: None) -> Iterator[None]:
        """Renew the lock from another thread while the block runs; ``on_problem`` hears
        of a lost lock or a failed renewal."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.ttl.total_seconds() / 3):
                try:
                    if not self.renew():
                        on_problem("the run lock was lost")
                except Exception as exc:
                    on_problem(f"could not renew the run lock: {exc}")

        thread = threading.Thread(target=renew, name="angles-lock", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    @contextlib.contextmanager
    def hold(self, on_problem: Callable[[str], None] = lambda message: None) -> Iterator[None]:
        """Hold the lock for the block, or raise :class:`PipelineLocked` at once."""
        holder = self.try_acquire()
        if holder is not None:
            raise PipelineLocked(self.pipeline, holder, self.ttl)
        try:
            with self.renewing(on_problem):
                yield
        finally:
            self.release()


def pipeline_lock(pipeline: Pipeline) -> PipelineLock:
    """The lock of a loaded pipeline, lasting its run budget without renewal."""

    def open_store() -> StateStore:
        return StateStore.open(pipeline.state, connect_timeout=pipeline.timeout_seconds)

    return PipelineLock(open_store, pipeline.name, ttl=run_budget(pipeline))


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
