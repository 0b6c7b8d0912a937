"""The alerting policy: on, failure_threshold, remind_every, recoveries and test runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from angles import Notifier, ServiceError, Status, hookimpl
from angles.core.context import Context
from angles.core.pipeline import Pipeline
from angles.core.plugins import load_plugins
from angles.core.report import BackupRun, CheckRun, RunReport
from angles.state.alerting import AlertPolicy, send_notifications
from angles.state.store import StateStore, record_run

T0 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
SENT: list = []
BROKEN = {"on": False}


class RecordingNotifier(Notifier):
    type = "recording"

    def send(self, notification):
        if BROKEN["on"] and self.name == "flaky":
            raise ServiceError("Chat", "HTTP 503: unavailable")
        SENT.append((self.name, notification))


class Plugin:
    @hookimpl
    def angles_register_notifiers(self, register):
        register(RecordingNotifier)


@pytest.fixture
def pipeline(register_plugin, tmp_path):
    """``pipeline(notifiers)`` -> run(statuses, at) sends and records one run."""
    register_plugin(Plugin())
    plugins = load_plugins()
    SENT.clear()
    BROKEN["on"] = False

    def make(*notifiers: dict, state: str | None = None):
        entries = [{"type": "recording", **n} for n in notifiers]
        document = {"version": 1, "name": "prod", "notifiers": entries}
        if state:
            document["state"] = state
        context = Context(Pipeline(tmp_path / "angles.yaml", document), plugins)

        def run(at: datetime, test: bool = False, backups=(), **statuses: str):
            SENT.clear()
            report = RunReport(
                "prod",
                at,
                test=test,
                checks=[
                    CheckRun(n, "static", Status(s), f"{n} is {s}", 0.1)
                    for n, s in statuses.items()
                ],
                backups=list(backups),
            )
            report.notifications = send_notifications(context, report)
            record_run(context, report)
            return {name: note for name, note in SENT}, report

        run.context = context
        return run

    return make


def alerts(sent, name):
    return [c.name for c in sent[name].alerts]


def test_fail_then_still_failing_within_remind_every_then_recover(pipeline):
    run = pipeline({"name": "chat", "remind_every": "6h"})
    sent, _ = run(T0, sync="error", other="ok")
    assert alerts(sent, "chat") == ["sync"]
    sent, _ = run(T0 + timedelta(hours=1), sync="error", other="ok")
    assert sent == {}  # within remind_every: no message
    sent, _ = run(T0 + timedelta(hours=6), sync="error", other="ok")
    assert alerts(sent, "chat") == ["sync"]  # the reminder
    sent, _ = run(T0 + timedelta(hours=8, minutes=30), sync="ok", other="ok")
    [recovery] = sent["chat"].recoveries
    assert (recovery.check.name, recovery.failing_for) == ("sync", timedelta(hours=8, minutes=30))
    assert "- sync recovered after 8h 30m" in sent["chat"].text()
    assert sent["chat"].title == "angles prod: ok (recovered)"
    sent, _ = run(T0 + timedelta(hours=9), sync="ok", other="ok")
    assert sent == {}  # nothing new


def test_without_remind_every_every_failing_run_alerts(pipeline):
    run = pipeline({"name": "chat"})
    for hour in range(3):
        sent, _ = run(T0 + timedelta(hours=hour), sync="warning")
        assert alerts(sent, "chat") == ["sync"]


def test_failure_threshold(pipeline):
    run = pipeline({"name": "chat", "failure_threshold": 3, "remind_every": "1d"})
    assert run(T0, sync="error")[0] == {}
    assert run(T0 + timedelta(hours=1), sync="error")[0] == {}
    sent, _ = run(T0 + timedelta(hours=2), sync="error")
    assert alerts(sent, "chat") == ["sync"]
    assert run(T0 + timedelta(hours=3), sync="error")[0] == {}
    # A streak below the threshold that recovers is no news either.
    assert run(T0 + timedelta(hours=4), sync="ok")[0]["chat"].recoveries  # this one alerted
    assert run(T0 + timedelta(hours=5), sync="error")[0] == {}
    assert run(T0 + timedelta(hours=6), sync="ok")[0] == {}


def test_getting_worse_alerts_within_remind_every(pipeline):
    run = pipeline({"name": "chat", "remind_every": "1d"})
    assert alerts(run(T0, sync="warning")[0], "chat") == ["sync"]
    assert run(T0 + timedelta(hours=1), sync="warning")[0] == {}
    assert alerts(run(T0 + timedelta(hours=2), sync="error")[0], "chat") == ["sync"]
    assert run(T0 + timedelta(hours=3), sync="warning")[0] == {}  # better is not news


def test_on_selects_statuses_and_recoveries(pipeline):
    run = pipeline(
        {"name": "errors", "on": ["error"]},
        {"name": "no-recovery", "on": ["warning", "error"]},
        {"name": "only-recovery", "on": ["recovery"]},
        {"name": "always", "on": ["always"]},
    )
    sent, _ = run(T0, sync="warning", other="ok")
    assert set(sent) == {"no-recovery", "always"}
    sent, _ = run(T0 + timedelta(hours=1), sync="ok", other="ok")
    assert set(sent) == {"only-recovery", "always"}
    assert [r.check.name for r in sent["only-recovery"].recoveries] == ["sync"]
    sent, _ = run(T0 + timedelta(hours=2), sync="ok", other="ok")
    assert set(sent) == {"always"}  # every run, even with nothing to say
    assert sent["always"].alerts == [] and sent["always"].recoveries == []


def test_each_notifier_has_its_own_memory(pipeline):
    run = pipeline({"name": "chat", "remind_every": "1d"}, {"name": "flaky", "remind_every": "1d"})
    BROKEN["on"] = True
    sent, report = run(T0, sync="error")
    assert set(sent) == {"chat"}
    assert {n.notifier: n.status for n in report.notifications} == {
        "chat": "sent",
        "flaky": "error",
    }
    BROKEN["on"] = False
    sent, _ = run(T0 + timedelta(hours=1), sync="error")
    assert set(sent) == {"flaky"}  # its alert never arrived, so it is still due


def test_a_failed_backup_is_news(pipeline):
    run = pipeline({"name": "chat", "on": ["error"]})
    failed = [BackupRun("vault", Status.ERROR, message="GitHub: HTTP 403")]
    sent, _ = run(T0, backups=failed, sync="ok")
    assert sent["chat"].alerts == []
    assert "Backup vault: error, no rows read (GitHub: HTTP 403)" in sent["chat"].text()


def test_a_test_run_goes_to_everyone_and_changes_nothing(pipeline, tmp_path):
    run = pipeline({"name": "errors", "on": ["error"]}, {"name": "late", "failure_threshold": 5})
    run(T0, sync="error")
    with StateStore.open(str(tmp_path / ".angles" / "state.db")) as store:
        before = (store.runs("prod"), store.check_states("prod"), store.alert_marks("prod"))
    sent, _ = run(T0 + timedelta(minutes=1), test=True, sync="error", other="error")
    assert set(sent) == {"errors", "late"}
    assert all(note.test and note.title.startswith("[TEST] ") for note in sent.values())
    assert alerts(sent, "late") == ["sync", "other"]
    with StateStore.open(str(tmp_path / ".angles" / "state.db")) as store:
        after = (store.runs("prod"), store.check_states("prod"), store.alert_marks("prod"))
    assert after == before


def test_an_unreachable_state_store_stops_the_run_before_anything_is_contacted(
    angles_cli, pipeline_file, tmp_path
):
    path = pipeline_file(
        """\
        version: 1
        state: postgresql://angles:pw-9876@127.0.0.1:9/nowhere
        checks:
          - {name: sync, type: static, status: error}
        notifiers:
          - {name: log, type: jsonl, path: notes.jsonl}
        """
    )
    result = angles_cli("run", path, "--format", "json")
    assert result.exit_code == 3
    message = result.json()["error"]["message"]
    assert message.startswith(f"{path}:2: state: cannot connect to the state store ")
    assert "postgresql://angles:***@127.0.0.1:9/nowhere" in message
    assert not (tmp_path / "notes.jsonl").exists()  # no notifier was asked
    assert "pw-9876" not in result.output


def test_policy_defaults():
    policy = AlertPolicy.from_entry({"name": "x", "type": "y"})
    assert policy == AlertPolicy(frozenset({"warning", "error", "recovery"}), 1, None)
    assert AlertPolicy.from_entry({"remind_every": "6h"}).remind_every == timedelta(hours=6)
    heartbeat = load_plugins().notifiers.get("heartbeat")
    assert AlertPolicy.from_entry({}, heartbeat.default_on).always


def test_a_test_run_really_sends_marked_as_a_test(
    angles_cli, pipeline_file, slack_server, smtp_server, monkeypatch, tmp_path
):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", slack_server.webhook_url)
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    path = pipeline_file(
        f"""\
        version: 1
        name: production
        checks:
          - {{name: sync, type: static, status: ok}}
        notifiers:
          - {{name: slack, type: slack, webhook_url: "${{SLACK_WEBHOOK_URL}}", on: [error]}}
          - name: email
            type: smtp
            host: {smtp_server.host}
            port: {smtp_server.port}
            username: {smtp_server.username}
            password: "${{SMTP_PASSWORD}}"
            from: angles@example.com
            to: [ops@example.com]
            ca_file: {smtp_server.ca_file}
            on: [recovery]
        """
    )
    result = angles_cli("run", path, "--test", "--format", "json")
    assert result.exit_code == 2
    assert result.json()["notifications"] == [
        {"notifier": "slack", "status": "sent"},
        {"notifier": "email", "status": "sent"},
    ]
    [message] = slack_server.messages
    assert message["blocks"][0]["text"]["text"].startswith("🔴 [TEST] angles production")
    [mail] = smtp_server.messages
    assert mail["Subject"] == "[TEST] angles production: error (1 check failing)"
    assert mail["X-Angles-Test"] == "true"
    assert "[TEST]" in mail.get_body(("plain",)).get_content()
    assert angles_cli("history", path, "--format", "json").json()["runs"] == []
