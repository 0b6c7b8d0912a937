"""The metrics file: the contract's metrics in the Prometheus text format.

Built with the official ``prometheus_client`` (a registry of its own, never the global
one) and written for node_exporter's textfile collector, which reads ``*.prom`` files.
"""

from __future__ import annotations

from typing import Any

from angles.core.results import Status
from angles.status.summary import Summary, is_number

NOTIFICATION_STATUS = {Status.OK: 0, Status.ERROR: 2}


def render_metrics(summary: Summary) -> bytes:
    """The metrics of ``summary`` in the Prometheus text exposition format."""
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    registry = CollectorRegistry(auto_describe=True)
    pipeline = summary.pipeline

    def gauge(name: str, documentation: str, *labels: str) -> Any:
        return Gauge(name, documentation, ["pipeline", *labels], registry=registry)

    run_status = gauge("angles_run_status", "The exit code of the newest run (0, 1, 2).")
    run_time = gauge("angles_run_timestamp_seconds", "When the newest run started (Unix time).")
    run_duration = gauge("angles_run_duration_seconds", "How long the newest run took.")
    check_status = gauge(
        "angles_check_status",
        "Each check's newest status: 0 ok, 1 warning, 2 error.",
        "check",
        "type",
    )
    check_duration = gauge(
        "angles_check_duration_seconds", "How long each check took when it last ran.", "check"
    )
    unsynced = gauge(
        "angles_sync_unsynced_records", "A sync_backlog check's count of unsynced records.", "check"
    )
    records = gauge(
        "angles_backup_records", "Rows in the newest backup of each table.", "backup", "table"
    )
    size = gauge(
        "angles_backup_bytes",
        "Size of the newest stored backup file of each table in each sink.",
        "backup",
        "table",
        "sink",
    )
    last_success = gauge(
        "angles_backup_last_success_timestamp_seconds",
        "When the newest backup stored in each sink was taken (Unix time).",
        "backup",
        "table",
        "sink",
    )
    notification = gauge(
        "angles_notification_status",
        "Each notifier's newest delivery: 0 sent, 2 error.",
        "notifier",
    )

    if summary.latest is not None and summary.latest_at is not None:
        run_status.labels(pipeline).set(Status(summary.latest["status"]).exit_code)
        run_time.labels(pipeline).set(summary.latest_at.timestamp())
        run_duration.labels(pipeline).set(float(summary.latest["duration_seconds"]))
    for check in summary.checks:
        if check.status is None:
            continue
        check_status.labels(pipeline, check.name, check.type).set(check.status.severity)
        if check.duration_seconds is not None:
            check_duration.labels(pipeline, check.name).set(check.duration_seconds)
        if check.type == "sync_backlog" and is_number(check.details.get("unsynced")):
            unsynced.labels(pipeline, check.name).set(check.details["unsynced"])
    newest_records: dict[tuple[str, str], tuple[Any, int]] = {}
    for stored in summary.newest_backups:
        if stored.size is not None:
            size.labels(pipeline, stored.backup, stored.table, stored.sink).set(stored.size)
        last_success.labels(pipeline, stored.backup, stored.table, stored.sink).set(
            stored.at.timestamp()
        )
        key = (stored.backup, stored.table)
        if stored.records is not None and (
            key not in newest_records or stored.at > newest_records[key][0]
        ):
            newest_records[key] = (stored.at, stored.records)
    for (backup, table), (_, count) in sorted(newest_records.items()):
        records.labels(pipeline, backup, table).set(count)
    for delivery in summary.notifications:
        notification.labels(pipeline, delivery.notifier).set(NOTIFICATION_STATUS[delivery.status])
    return generate_latest(registry)
