"""The metrics file: the contract's metrics, in the Prometheus text format, replaced whole."""

from __future__ import annotations

import os
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from angles.core.results import Status
from angles.state.store import StateStore
from angles.status.metrics import render_metrics
from angles.status.outputs import replace_file
from angles.status.summary import collect
from angles.testing.history import record_history


def samples(data: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(metric name, sorted labels) -> value, as Prometheus reads the file."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(data.decode("utf-8"))
        for sample in family.samples
    }


def value(found, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted({"pipeline": "production", **labels}.items())))]


def test_the_metrics_of_the_newest_run(month):
    summary, reports = month
    found = samples(render_metrics(summary))
    latest = reports[-1]
    assert value(found, "angles_run_status") == latest.status.exit_code == 1
    assert value(found, "angles_run_timestamp_seconds") == int(latest.started_at.timestamp())
    assert value(found, "angles_run_duration_seconds") == round(latest.duration_seconds, 3)
    for check in latest.checks:
        assert value(found, "angles_check_status", check=check.name, type=check.type) == (
            check.status.severity
        )
        assert value(found, "angles_check_duration_seconds", check=check.name) == round(
            check.duration_seconds, 3
        )
    sync = next(c for c in latest.checks if c.name == "sync")
    assert value(found, "angles_sync_unsynced_records", check="sync") == sync.details["unsynced"]
    backup = latest.backups[0]
    table = {"backup": "decision_vault", "table": "decision_vault"}
    assert value(found, "angles_backup_records", **table) == backup.record_count
    for stored in backup.files:
        where = {**table, "sink": stored["sink"]}
        assert value(found, "angles_backup_bytes", **where) == stored["size"]
        assert value(found, "angles_backup_last_success_timestamp_seconds", **where) == int(
            latest.started_at.timestamp()
        )
    # The newest slack delivery decides its status: 0 sent, 2 error.
    newest_slack = next(
        n for r in reversed(reports) for n in r.notifications if n.notifier == "slack"
    )
    assert value(found, "angles_notification_status", notifier="slack") == (
        2 if newest_slack.status == "error" else 0
    )
    assert {name for name, _ in found} == {
        "angles_run_status",
        "angles_run_timestamp_seconds",
        "angles_run_duration_seconds",
        "angles_check_status",
        "angles_check_duration_seconds",
        "angles_sync_unsynced_records",
        "angles_backup_records",
        "angles_backup_bytes",
        "angles_backup_last_success_timestamp_seconds",
        "angles_notification_status",
    }


def test_a_failed_backup_keeps_the_last_success(production, store, now, tmp_path):
    with StateStore.open(str(tmp_path / "scratch.db")) as scratch:
        reports = record_history(scratch, "production", runs=60, now=now)
    failed = next(i for i, r in enumerate(reports) if r.backups[0].status is Status.ERROR)
    for report in reports[: failed + 1]:  # the store as it was after the failed backup
        store.record_run(report, report.to_dict())
    found = samples(render_metrics(collect(production, store, now=reports[failed].started_at)))
    where = {"backup": "decision_vault", "table": "decision_vault", "sink": "local"}
    assert value(found, "angles_run_status") == 2
    assert value(found, "angles_backup_last_success_timestamp_seconds", **where) == int(
        reports[failed - 1].started_at.timestamp()
    )


def test_an_empty_store_has_no_samples(production, store, now):
    data = render_metrics(collect(production, store, now=now))
    assert samples(data) == {}
    assert b"# TYPE angles_run_status gauge" in data


def test_the_file_is_replaced_whole(tmp_path):
    """Readers see the old file or the new one, never a part; no temporary file stays."""
    path = tmp_path / "metrics" / "angles.prom"
    old, new = b"old 1\n" * 50_000, b"new 2\n" * 50_000
    replace_file(path, old)
    seen: list[bytes] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(path.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(20):
            replace_file(path, new)
            replace_file(path, old)
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) <= {old, new}
    assert os.listdir(path.parent) == ["angles.prom"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "angles.prom"
    replace_file(path, b"old 1\n")
    with pytest.raises(TypeError):
        replace_file(path, "not bytes")  # type: ignore[arg-type]  # fails mid-write
    assert path.read_bytes() == b"old 1\n"
    assert os.listdir(tmp_path) == ["angles.prom"]
