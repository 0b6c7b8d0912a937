"""The one retry policy: attempts, backoff with a cap, Retry-After within the run's budget."""

from __future__ import annotations

import pytest

from angles import ServiceError
from angles.core.retry import Activity, Budget, RetryPolicy, parse_retry_after, with_retries


class Clock:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def failing(errors: list[Exception], result: str = "done"):
    """A call that raises each of ``errors`` in turn, then returns ``result``."""
    calls: list[int] = []

    def send() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    send.calls = calls  # type: ignore[attr-defined]
    return send


def transient(retry_after: float | None = None) -> ServiceError:
    return ServiceError("Slack", "HTTP 503: busy", transient=True, retry_after=retry_after)


def test_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(attempts=6, backoff=1.0, cap=5.0)
    assert [policy.pause(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.worst_case(timeout=30) == 6 * 30 + 17


def test_transient_failures_are_tried_again_after_the_backoff():
    clock = Clock()
    send = failing([transient(), transient()])
    result = with_retries(send, policy=RetryPolicy(attempts=3), sleep=clock.sleep)
    assert result == "done"
    assert clock.waits == [1.0, 2.0]


def test_attempts_are_counted_and_said():
    clock = Clock()
    send = failing([transient() for _ in range(5)])
    with pytest.raises(ServiceError) as caught:
        with_retries(send, policy=RetryPolicy(attempts=3), sleep=clock.sleep)
    assert len(send.calls) == 3
    assert str(caught.value) == "Slack: HTTP 503: busy; tried 3 times"


def test_a_lasting_failure_is_not_retried():
    send = failing([ServiceError("Slack", "HTTP 404: no_service")])
    with pytest.raises(ServiceError, match=r"no_service$"):
        with_retries(send, policy=RetryPolicy(attempts=3), sleep=Clock().sleep)
    assert len(send.calls) == 1


def test_retry_after_replaces_the_backoff_while_it_fits_in_the_budget():
    clock = Clock()
    budget = Budget(100, clock=clock)
    send = failing([transient(retry_after=7)])
    assert with_retries(send, policy=RetryPolicy(), budget=budget, sleep=clock.sleep) == "done"
    assert clock.waits == [7]


def test_a_retry_after_longer_than_what_is_left_is_not_waited_for():
    clock = Clock()
    budget = Budget(10, clock=clock)
    send = failing([transient(retry_after=60)])
    with pytest.raises(ServiceError) as caught:
        with_retries(send, policy=RetryPolicy(), budget=budget, sleep=clock.sleep)
    assert clock.waits == []
    assert len(send.calls) == 1
    assert str(caught.value) == (
        "Slack: HTTP 503: busy; not retried: the next try asked for a 60s wait and 10s are "
        "left of the run's time limit"
    )


def test_other_exceptions_go_through_a_failure_function():
    clock = Clock()
    send = failing([TimeoutError("slow"), KeyError("odd")])

    def failure(exc: Exception) -> ServiceError | None:
        if isinstance(exc, TimeoutError):
            return ServiceError("Notion", "reading: no answer within 1s", transient=True)
        return None  # not a service failure: a bug, raised as it is

    with pytest.raises(KeyError):
        with_retries(send, policy=RetryPolicy(), failure=failure, sleep=clock.sleep)
    assert clock.waits == [1.0]


def test_a_budget_narrowed_for_the_notifications():
    clock = Clock()
    run = Budget(60, clock=clock)
    work = run.until(15)
    clock.now = 50
    assert (work.remaining(), run.remaining()) == (0.0, 10.0)
    assert work.spent and not run.spent
    assert run.bound(30) == 10.0
    assert Budget(None).remaining() == float("inf")


def test_activity_says_what_a_thread_waits_for():
    import threading

    activity = Activity()
    with activity.doing("Supabase", "counting the rows of 'decision_vault'"):
        assert activity.of(threading.get_ident()) == (
            "Supabase",
            "counting the rows of 'decision_vault'",
        )
    assert activity.of(threading.get_ident()) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("30", 30.0), ("0", 0.0), ("-5", 0.0), ("soon", None), (None, None), ("inf", None)],
)
def test_retry_after_headers(header, seconds):
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 85 <= parse_retry_after(later) <= 90  # type: ignore[operator]
