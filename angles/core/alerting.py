"""Deciding who to tell about a run, and telling them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from angles.core.context import Context
from angles.core.errors import AnglesError
from angles.core.logging import get_logger
from angles.core.notifier import Notification, Notifier
from angles.core.report import NotificationRun, RunReport

DEFAULT_ON = ("warning", "error", "recovery")
SENT = "sent"
FAILED = "error"


def wants(entry: dict[str, Any], report: RunReport) -> bool:
    """Whether a notifier's ``on`` list asks to hear about this run."""
    if report.test:
        return True  # a test run proves that alerts arrive
    on = entry.get("on") or DEFAULT_ON
    return "always" in on or report.status.value in on


def send_notifications(context: Context, report: RunReport) -> list[NotificationRun]:
    """Send the run to every notifier that wants it, concurrently.

    A notifier that fails is reported in the result and the log; it never stops the
    others and never changes the run's status.
    """
    chosen = [entry for entry in context.pipeline.notifiers if wants(entry, report)]
    if not chosen:
        return []
    notification = Notification(report, alerts=report.failing_checks)
    with ThreadPoolExecutor(max_workers=len(chosen), thread_name_prefix="notify") as pool:
        return list(pool.map(lambda entry: _deliver(context, entry, notification), chosen))


def _deliver(
    context: Context, entry: dict[str, Any], notification: Notification
) -> NotificationRun:
    from angles.core.runner import one_line

    log = get_logger("runs", pipeline=context.pipeline.name, notifier=entry["name"])
    try:
        notifier: Notifier = context.create("notifier", entry["name"], entry)  # type: ignore[assignment]
        notifier.send(notification)
    except AnglesError as exc:
        log.warning("notification failed", error=str(exc))
        return NotificationRun(entry["name"], FAILED, str(exc))
    except Exception as exc:
        log.warning("notification failed", error=one_line(exc))
        return NotificationRun(entry["name"], FAILED, one_line(exc))
    log.info("notification sent", test=notification.test)
    return NotificationRun(entry["name"], SENT)
