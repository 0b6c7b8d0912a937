"""One retry policy for every service, bounded by the run's time budget.

A service client calls :func:`with_retries` around one request. The client says which
failures are worth another try (a 429, a 5xx, a timeout, a refused connection) by
raising a :class:`~angles.ServiceError` with ``transient=True`` (and ``retry_after`` when
the service asked for a wait); the policy says how often and how long to wait between
tries; the :class:`Budget` says whether a wait still fits in what is left of the run.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from angles.core.errors import ServiceError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often a transient failure is tried again, and how long to wait in between.

    ``attempts`` counts the first try; the pause before try *n + 1* is
    ``backoff * 2 ** (n - 1)``, at most ``cap`` seconds, unless the service named a wait
    (``Retry-After``), which is honoured when it fits in the run's budget.
    """

    attempts: int = 3
    backoff: float = 1.0
    cap: float = 30.0

    @classmethod
    def with_retries(cls, retries: int, **options: float) -> RetryPolicy:
        """The policy for a plugin's ``retries:`` (tries after the first)."""
        return cls(attempts=1 + max(0, int(retries)), **options)  # type: ignore[arg-type]

    def pause(self, failed_attempts: int) -> float:
        """Seconds to wait after ``failed_attempts`` failed tries."""
        return min(self.backoff * 2 ** (failed_attempts - 1), self.cap)

    def worst_case(self, timeout: float) -> float:
        """The longest one call can take when every try times out (waits included)."""
        return self.attempts * timeout + sum(self.pause(n) for n in range(1, self.attempts))


class Budget:
    """What is left of the run's time: a deadline on the monotonic clock.

    ``Budget(None)`` never runs out. :meth:`until` gives an earlier deadline, so that
    checks and backups stop in time to leave the notifications their slice.
    """

    def __init__(self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self.deadline = math.inf if seconds is None else clock() + seconds

    def remaining(self) -> float:
        """Seconds left (``inf`` without a limit, never below 0)."""
        return max(0.0, self.deadline - self._clock())

    @property
    def spent(self) -> bool:
        return self.remaining() <= 0

    def until(self, reserve: float) -> Budget:
        """A budget that ends ``reserve`` seconds before this one."""
        earlier = Budget(None, clock=self._clock)
        earlier.seconds = self.seconds
        earlier.deadline = self.deadline - reserve
        return earlier

    def require(self, service: str, operation: str) -> None:
        """Raise a :class:`ServiceError` when nothing is left: a call is not even tried."""
        if self.spent:
            raise ServiceError(
                service,
                f"{operation}: not tried: {self.spent_text()}",
                hint="raise defaults.run_timeout, or find what took the time in the log",
            )

    def bound(self, timeout: float) -> float:
        """``timeout`` cut to what is left (at least a moment, so a call can still fail
        with its own message)."""
        return max(0.05, min(timeout, self.remaining()))

    def spent_text(self) -> str:
        """How a message says this budget ran out: ``the run's time limit
        (defaults.run_timeout: 15m) was spent``."""
        from angles.core.durations import format_seconds

        limit = f": {format_seconds(self.seconds)}" if self.seconds is not None else ""
        return f"the run's time limit (defaults.run_timeout{limit}) was spent"


#: A budget that never runs out, for calls made outside a run.
UNLIMITED = Budget(None)


class Activity:
    """What each thread is waiting for right now: ``(service, operation)``.

    The runner reads it when a check or backup runs out of time, so the message can say
    ``Supabase: counting the rows of 'decision_vault'`` rather than only "timed out".
    """

    def __init__(self) -> None:
        self._doing: dict[int, tuple[str, str]] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def doing(self, service: str, operation: str) -> Iterator[None]:
        """Mark the calling thread busy with ``operation`` on ``service`` inside the block."""
        thread = threading.get_ident()
        with self._lock:
            before = self._doing.get(thread)
            self._doing[thread] = (service, operation)
        try:
            yield
        finally:
            with self._lock:
                if before is None:
                    self._doing.pop(thread, None)
                else:
                    self._doing[thread] = before

    def of(self, thread: int | None) -> tuple[str, str] | None:
        """What ``thread`` waits for, or None when it waits for no service."""
        with self._lock:
            return self._doing.get(thread) if thread is not None else None

    def any(self) -> tuple[str, str] | None:
        """What some thread waits for (the oldest call still under way), or None."""
        with self._lock:
            return next(iter(self._doing.values()), None)


def with_retries(
    send: Callable[[], T],
    *,
    policy: RetryPolicy,
    budget: Budget = UNLIMITED,
    failure: Callable[[Exception], ServiceError] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``send()`` until it succeeds, the policy's attempts are used up, or the next
    wait would not fit in ``budget``; raise the last failure.

    ``failure`` turns what ``send`` raised into a :class:`ServiceError` (by default only
    ServiceErrors are considered; anything else propagates at once). A ServiceError is
    retried only when it is ``transient``; its ``retry_after`` (the service's requested
    wait) replaces the backoff pause.
    """
    failed = 0
    while True:
        try:
            return send()
        except Exception as exc:
            error = exc if isinstance(exc, ServiceError) else (failure(exc) if failure else None)
            if error is None:
                raise
            failed += 1
            wait = error.retry_after if error.retry_after is not None else policy.pause(failed)
            if not error.transient:
                _raise(error, exc)
            if failed >= policy.attempts:
                if failed > 1:
                    error.note(f"tried {failed} times")
                _raise(error, exc)
            if wait >= budget.remaining():
                asked = "asked for" if error.retry_after is not None else "needs"
                error.note(
                    f"not retried: the next try {asked} a {wait:g}s wait and "
                    f"{budget.remaining():.0f}s are left of the run's time limit"
                )
                _raise(error, exc)
            sleep(wait)


def _raise(error: ServiceError, cause: Exception) -> None:
    if error is cause:
        raise error
    raise error from cause


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None
