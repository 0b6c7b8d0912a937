"""The runner: concurrent checks, timeouts, exceptions, test mode, notifications."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from angles import Check, CheckResult, Notifier, ServiceError, hookimpl
from angles.core.context import Context
from angles.core.errors import AnglesError
from angles.core.pipeline import Pipeline
from angles.core.plugins import load_plugins
from angles.run import run_checks, run_pipeline

BARRIER = threading.Barrier(10, timeout=5)
RELEASE = threading.Event()


class RendezvousCheck(Check):
    """Passes only if all ten checks are running at the same time."""

    type = "rendezvous"

    def run(self):
        BARRIER.wait()
        return CheckResult.ok("met")


class HangingCheck(Check):
    type = "hang"

    def run(self):
        RELEASE.wait(10)
        return CheckResult.ok("too late")


class CrashingCheck(Check):
    type = "crash"

    def run(self):
        raise ValueError("missing\nsecond line")


class FailingServiceCheck(Check):
    type = "service_down"

    def run(self):
        raise ServiceError("Supabase", "HTTP 401: Invalid API key", hint="check SUPABASE_KEY")


class WrongReturnCheck(Check):
    type = "wrong_return"

    def run(self):
        return "ok"


SENT: list = []


class RecordingNotifier(Notifier):
    type = "recording"

    def send(self, notification):
        SENT.append((self.name, notification))


class BrokenNotifier(Notifier):
    type = "broken"

    def send(self, notification):
        raise ServiceError("Slack", "HTTP 404: no_service", hint="the webhook was revoked")


class TestPlugin:
    @hookimpl
    def angles_register_checks(self, register):
        for cls in (
            RendezvousCheck,
            HangingCheck,
            CrashingCheck,
            FailingServiceCheck,
            WrongReturnCheck,
        ):
            register(cls)

    @hookimpl
    def angles_register_notifiers(self, register):
        register(RecordingNotifier)
        register(BrokenNotifier)


@pytest.fixture
def context_for(register_plugin, tmp_path):
    register_plugin(TestPlugin())
    plugins = load_plugins()
    SENT.clear()

    def make(document: dict, test: bool = False) -> Context:
        return Context(
            Pipeline(tmp_path / "angles.yaml", {"version": 1, **document}), plugins, test=test
        )

    return make


def test_checks_run_concurrently(context_for):
    BARRIER.reset()
    checks = [{"name": f"c{i}", "type": "rendezvous"} for i in range(10)]
    results = run_checks(context_for({"checks": checks}))
    assert [r.status.value for r in results] == ["ok"] * 10
    assert [r.name for r in results] == [f"c{i}" for i in range(10)]  # pipeline order


def test_a_check_over_its_timeout_is_an_error_and_does_not_hold_the_run(context_for):
    RELEASE.clear()
    checks = [
        {"name": "slow", "type": "hang", "timeout_seconds": 0.2},
        {"name": "fine", "type": "static", "status": "ok"},
    ]
    started = time.perf_counter()
    results = run_checks(context_for({"checks": checks, "defaults": {"timeout_seconds": 5}}))
    elapsed = time.perf_counter() - started
    RELEASE.set()
    assert results[0].status.value == "error"
    assert results[0].message == (
        "no result within 0.2s (the check's time limit); it was not waiting on any service"
    )
    assert results[1].status.value == "ok"
    assert elapsed < 5  # the default timeout did not apply to the slow check


def test_the_pipeline_default_timeout_applies(context_for):
    RELEASE.clear()
    results = run_checks(
        context_for(
            {"checks": [{"name": "slow", "type": "hang"}], "defaults": {"timeout_seconds": 0.1}}
        )
    )
    RELEASE.set()
    assert results[0].message.startswith("no result within 0.1s (the check's time limit)")


def test_an_exception_becomes_a_one_line_error(context_for):
    checks = [
        {"name": "boom", "type": "crash"},
        {"name": "down", "type": "service_down"},
        {"name": "odd", "type": "wrong_return"},
    ]
    results = run_checks(context_for({"checks": checks}))
    assert [r.status.value for r in results] == ["error"] * 3
    assert results[0].message == "ValueError: missing"
    assert results[1].message == "Supabase: HTTP 401: Invalid API key (check SUPABASE_KEY)"
    assert results[2].message == "the wrong_return check returned str, not a CheckResult"


def test_unknown_check_names_are_refused(context_for):
    with pytest.raises(AnglesError, match="no check named 'nope'"):
        run_checks(context_for({"checks": [{"name": "a", "type": "crash"}]}), ["nope"])


def test_named_checks_only(context_for):
    checks = [{"name": "a", "type": "crash"}, {"name": "b", "type": "static", "status": "warning"}]
    results = run_checks(context_for({"checks": checks}), ["b"])
    assert [r.name for r in results] == ["b"]


def test_test_mode_contacts_nothing_and_reports_test_errors(context_for):
    RELEASE.clear()
    checks = [{"name": "slow", "type": "hang"}, {"name": "ok", "type": "static", "status": "ok"}]
    notifiers = [{"name": "rec", "type": "recording", "on": ["error"]}]
    started = time.perf_counter()
    report = run_pipeline(context_for({"checks": checks, "notifiers": notifiers}, test=True))
    assert time.perf_counter() - started < 5  # the hanging check was never run
    RELEASE.set()
    assert [c.status.value for c in report.checks] == ["error", "error"]
    assert all(c.message.startswith("[TEST] ") for c in report.checks)
    assert report.status.exit_code == 2
    assert report.test is True
    [(_name, notification)] = SENT
    assert notification.test and notification.title.startswith("[TEST] ")


def test_run_status_is_the_worst_check(context_for):
    checks = [
        {"name": "a", "type": "static", "status": "ok"},
        {"name": "b", "type": "static", "status": "warning"},
    ]
    report = run_pipeline(context_for({"checks": checks}))
    assert report.status.value == "warning"
    assert report.status.exit_code == 1
    document = report.to_dict()
    assert document["status"] == "warning"
    assert [c["status"] for c in document["checks"]] == ["ok", "warning"]


def test_notifiers_follow_their_on_list(context_for):
    checks = [{"name": "b", "type": "static", "status": "warning", "message": "12 unsynced"}]
    notifiers = [
        {"name": "errors-only", "type": "recording", "on": ["error"]},
        {"name": "warnings", "type": "recording", "on": ["warning"]},
        {"name": "always", "type": "recording", "on": ["always"]},
    ]
    report = run_pipeline(context_for({"checks": checks, "notifiers": notifiers}))
    assert sorted(name for name, _ in SENT) == ["always", "warnings"]
    assert [n.notifier for n in report.notifications] == ["warnings", "always"]
    notification = SENT[0][1]
    assert [c.name for c in notification.alerts] == ["b"]
    assert "- b [warning]: 12 unsynced" in notification.text()


def test_a_failing_notifier_is_reported_and_others_still_send(context_for):
    checks = [{"name": "a", "type": "static", "status": "error"}]
    notifiers = [
        {"name": "slack", "type": "broken"},
        {"name": "rec", "type": "recording"},
    ]
    report = run_pipeline(context_for({"checks": checks, "notifiers": notifiers}))
    statuses = {n.notifier: (n.status, n.message) for n in report.notifications}
    assert statuses == {
        "slack": ("error", "Slack: HTTP 404: no_service (the webhook was revoked)"),
        "rec": ("sent", None),
    }
    assert report.status.exit_code == 2  # from the check, not the notifier
    assert [name for name, _ in SENT] == ["rec"]


def test_connections_are_created_once_and_closed(context_for, tmp_path: Path):
    context = context_for({"connections": {"db": {"type": "sqlite", "path": "v.db"}}})
    first = context.connection("db")
    assert context.connection("db") is first
    context.close()
