"""Deciding who to tell about a run, and telling them.

Each notifier has a policy: ``on`` (which statuses and events it hears about),
``failure_threshold`` (how many failing runs in a row before it alerts) and
``remind_every`` (how often a still-failing check is repeated). The decision reads the
state store (each check's failing streak and each notifier's last alert); deliveries are
remembered there afterwards. A ``--test`` run goes to every notifier and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from angles.core.context import Context
from angles.core.durations import parse_duration
from angles.core.errors import AnglesError
from angles.core.notifier import Notification, Notifier, Recovery
from angles.core.report import CheckRun, NotificationRun, RunReport
from angles.core.results import Status
from angles.core.text import one_line
from angles.state.store import AlertMark, CheckState, advance, describe, open_store

DEFAULT_ON = Notifier.default_on
SENT = "sent"
FAILED = "error"


@dataclass(frozen=True)
class AlertPolicy:
    """When one notifier speaks: its ``on`` list, threshold and reminder interval."""

    on: frozenset[str]
    failure_threshold: int = 1
    remind_every: timedelta | None = None

    @classmethod
    def from_entry(
        cls, entry: Mapping[str, Any], default_on: tuple[str, ...] = DEFAULT_ON
    ) -> AlertPolicy:
        """The policy a ``notifiers:`` entry configures (``default_on`` when it has no ``on``)."""
        remind = entry.get("remind_every")
        return cls(
            on=frozenset(entry.get("on") or default_on),
            failure_threshold=int(entry.get("failure_threshold") or 1),
            remind_every=parse_duration(remind) if remind else None,
        )

    @property
    def always(self) -> bool:
        return "always" in self.on

    def hears(self, status: Status) -> bool:
        """Whether failures of this status are for this notifier."""
        return self.always or status.value in self.on


def decide(
    name: str,
    policy: AlertPolicy,
    report: RunReport,
    previous: Mapping[str, CheckState],
    marks: Mapping[tuple[str, str], AlertMark],
) -> Notification | None:
    """What the notifier ``name`` should be told about this run, or None for nothing.

    A failing check is an alert once it has failed ``failure_threshold`` runs in a row,
    then again when its status gets worse, and otherwise every run or, with
    ``remind_every``, when that long has passed since this notifier's last alert. A
    check that passes again is a recovery for a notifier that alerted about it. With
    ``always`` every run is sent, with every failing check and recovery.
    """
    now = report.started_at
    alerts: list[CheckRun] = []
    recoveries: list[Recovery] = []
    for check in report.checks:
        before = previous.get(check.name)
        mark = marks.get((check.name, name))
        if check.status is Status.OK:
            if before is None or not before.failing or before.failing_since is None:
                continue
            alerted = mark is not None and mark.alerted_at >= before.failing_since
            if not policy.hears(before.status):
                # A notifier that never alerts about this status still hears it recover.
                alerted = before.consecutive_failures >= policy.failure_threshold
            if policy.always or ("recovery" in policy.on and alerted):
                recoveries.append(Recovery(check, now - before.failing_since))
            continue
        if not policy.hears(check.status):
            continue
        state = advance(before, check, now)
        reached = state.consecutive_failures >= policy.failure_threshold
        if policy.always or (reached and _due(check, state, mark, policy, now)):
            alerts.append(check)
    failed_backups = [b for b in report.backups if b.status is not Status.OK]
    backup_news = any(policy.hears(b.status) for b in failed_backups)
    if not (alerts or recoveries or backup_news or policy.always):
        return None
    return Notification(report, alerts=alerts, recoveries=recoveries)


def _due(
    check: CheckRun,
    state: CheckState,
    mark: AlertMark | None,
    policy: AlertPolicy,
    now: datetime,
) -> bool:
    assert state.failing_since is not None
    if mark is None or mark.alerted_at < state.failing_since:
        return True  # not yet told about this streak
    if check.status.severity > mark.status.severity:
        return True  # it got worse since the last alert
    if policy.remind_every is None:
        return True
    return now - mark.alerted_at >= policy.remind_every


def send_notifications(context: Context, report: RunReport) -> list[NotificationRun]:
    """Tell every notifier whose policy asks for this run, concurrently.

    Reads the state store before deciding and remembers the alerts delivered; the
    checks' own states are written by :func:`angles.state.store.record_run`. A test
    run goes to every notifier, marked as a test, and leaves the store alone. A notifier
    that fails is reported in the result and the log; it never stops the others and
    never changes the run's status. An unreachable state store is logged, and the run
    is then treated as the first one.
    """
    entries = context.pipeline.notifiers
    if not entries:
        return []
    log = context.logger("runs")
    if report.test:
        plans = [(entry, Notification(report, alerts=report.failing_checks)) for entry in entries]
        return _deliver_all(context, plans)
    previous: dict[str, CheckState] = {}
    marks: dict[tuple[str, str], AlertMark] = {}
    try:
        with open_store(context) as store:
            previous = store.check_states(report.pipeline)
            marks = store.alert_marks(report.pipeline)
    except Exception as exc:
        log.error("state store unavailable", state=describe(context.pipeline.state), error=str(exc))
    plans = []
    for entry in entries:
        cls = context.plugins.notifiers.get(entry["type"])
        policy = AlertPolicy.from_entry(entry, getattr(cls, "default_on", DEFAULT_ON))
        notification = decide(entry["name"], policy, report, previous, marks)
        if notification is None:
            log.info("notification not needed", notifier=entry["name"])
        else:
            plans.append((entry, notification))
    results = _deliver_all(context, plans)
    delivered = [
        AlertMark(check.name, entry["name"], report.started_at, check.status)
        for (entry, notification), result in zip(plans, results, strict=True)
        if result.status == SENT
        for check in notification.alerts
    ]
    if delivered:
        try:
            with open_store(context) as store:
                store.mark_alerted(report.pipeline, delivered)
        except Exception as exc:
            log.error("alerts not remembered", error=str(exc))
    return results


def announce_start(context: Context, report: RunReport) -> None:
    """Tell the notifiers that hear every run (all of them in a test run) that it began.

    Only those are told because only they are sure to hear how it ends: a service that
    times runs would otherwise see one that never finished. A notifier that cannot be
    told is logged; it never stops the run.
    """
    entries = []
    for entry in context.pipeline.notifiers:
        cls = context.plugins.notifiers.get(entry["type"])
        policy = AlertPolicy.from_entry(entry, getattr(cls, "default_on", DEFAULT_ON))
        if report.test or policy.always:
            entries.append(entry)
    if entries:
        with ThreadPoolExecutor(max_workers=len(entries), thread_name_prefix="notify") as pool:
            list(pool.map(lambda entry: _start(context, entry, report), entries))


def _start(context: Context, entry: dict[str, Any], report: RunReport) -> None:
    log = context.logger("runs", notifier=entry["name"])
    try:
        notifier: Notifier = context.create("notifier", entry["name"], entry)  # type: ignore[assignment]
        notifier.start(report)
    except Exception as exc:
        message = _failure(context, exc)
        log.warning("start not announced", error=message)


def _deliver_all(
    context: Context, plans: list[tuple[dict[str, Any], Notification]]
) -> list[NotificationRun]:
    if not plans:
        return []
    with ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="notify") as pool:
        return list(pool.map(lambda plan: _deliver(context, *plan), plans))


def _deliver(
    context: Context, entry: dict[str, Any], notification: Notification
) -> NotificationRun:

    log = context.logger("runs", notifier=entry["name"])
    try:
        notifier: Notifier = context.create("notifier", entry["name"], entry)  # type: ignore[assignment]
        notifier.send(notification)
    except Exception as exc:
        message = _failure(context, exc)
        log.warning("notification failed", error=message)
        return NotificationRun(entry["name"], FAILED, message)
    log.info(
        "notification sent",
        test=notification.test,
        alerts=[c.name for c in notification.alerts],
        recoveries=[r.check.name for r in notification.recoveries],
    )
    return NotificationRun(entry["name"], SENT)


def _failure(context: Context, exc: Exception) -> str:
    """Why a notifier failed, redacted: an angles error whole (its hint says what to
    check), anything else as one line."""
    return context.redact(str(exc) if isinstance(exc, AnglesError) else one_line(exc))
