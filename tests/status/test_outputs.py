"""``report:`` and ``metrics:`` written after each run, and ``angles report``."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOKEN = "tok-5e3cr3t-9d1f"

PIPELINE = """\
version: 1
name: local
state: .angles/state.db
report: site/status.html
metrics: metrics/angles.prom
connections:
  vault: {type: sqlite, path: vault.db}
checks:
  - name: sync
    type: sync_backlog
    connection: vault
    table: decision_vault
    unsynced: "notion_synced=is.false"
  - {name: upstream, type: static, status: warning, message: "token ${SERVICE_TOKEN} refused"}
backups:
  - {name: decision_vault, connection: vault, table: decision_vault, sinks: [local]}
sinks:
  local: {type: local, path: backups}
notifiers:
  - {name: log, type: jsonl, path: notes.jsonl}
"""


@pytest.fixture
def vault(tmp_path, monkeypatch) -> Path:
    """The demo vault beside the pipeline, and the secret the pipeline reads."""
    monkeypatch.setenv("SERVICE_TOKEN", TOKEN)
    with closing(sqlite3.connect(tmp_path / "vault.db")) as db:
        db.executescript((EXAMPLES / "vault.sql").read_text(encoding="utf-8"))
    return tmp_path / "vault.db"


def metrics(path: Path) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(path.read_text(encoding="utf-8"))
        for sample in family.samples
    }


def test_a_run_writes_the_page_and_the_metrics(angles_cli, pipeline_file, vault, tmp_path):
    path = pipeline_file(PIPELINE)
    result = angles_cli("run", path, "--format", "json")
    assert result.exit_code == 1, result.output
    report = result.json()
    page = (tmp_path / "site" / "status.html").read_text(encoding="utf-8")
    assert "sync" in page and "upstream" in page
    assert "token *** refused" in page
    found = metrics(tmp_path / "metrics" / "angles.prom")
    pipeline = ("pipeline", "local")
    assert found[("angles_run_status", frozenset({pipeline}))] == 1
    upstream = frozenset({pipeline, ("check", "upstream"), ("type", "static")})
    assert found[("angles_check_status", upstream)] == 1
    unsynced = report["checks"][0]["details"]["unsynced"]
    assert found[("angles_sync_unsynced_records", frozenset({pipeline, ("check", "sync")}))] == (
        unsynced
    )
    [stored] = report["backups"][0]["files"]
    on_disk = (tmp_path / "backups" / stored["name"]).stat().st_size
    assert stored["size"] == on_disk
    labels = {pipeline, ("backup", "decision_vault"), ("table", "decision_vault")}
    assert found[("angles_backup_bytes", frozenset({*labels, ("sink", "local")}))] == on_disk
    assert found[("angles_backup_records", frozenset(labels))] == 40
    assert found[("angles_notification_status", frozenset({pipeline, ("notifier", "log")}))] == 0
    # Nothing of the secret, no temporary file left beside either output.
    for written in (tmp_path / "site" / "status.html", tmp_path / "metrics" / "angles.prom"):
        assert TOKEN not in written.read_text(encoding="utf-8")
        assert [p.name for p in written.parent.iterdir()] == [written.name]
    assert "status page written" in (tmp_path / "logs" / "automated_runs.log").read_text()


def test_each_run_replaces_them(angles_cli, pipeline_file, vault, tmp_path):
    path = pipeline_file(PIPELINE)
    angles_cli("run", path)
    angles_cli("check", path, "sync")
    page = (tmp_path / "site" / "status.html").read_text(encoding="utf-8")
    assert "The last 2 runs" in page
    angles_cli("backup", path)
    assert "The last 3 runs" in (tmp_path / "site" / "status.html").read_text(encoding="utf-8")


def test_a_test_run_writes_neither(angles_cli, pipeline_file, vault, tmp_path):
    path = pipeline_file(PIPELINE)
    assert angles_cli("run", path, "--test").exit_code == 2
    assert not (tmp_path / "site").exists()
    assert not (tmp_path / "metrics").exists()


def test_a_page_that_cannot_be_written_is_one_line(angles_cli, pipeline_file, vault, tmp_path):
    (tmp_path / "site").write_text("a file where the folder should be")
    path = pipeline_file(PIPELINE)
    result = angles_cli("run", path)
    assert result.exit_code == 1  # the checks' verdict, unchanged
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"ERROR: status page not written to {tmp_path / 'site'}")
    assert (tmp_path / "metrics" / "angles.prom").exists()  # the other output still written
    history = angles_cli("history", path, "--format", "json").json()
    assert len(history["runs"]) == 1  # and the run is in the history
    log = (tmp_path / "logs" / "automated_runs.log").read_text()
    assert "status page not written" in log and TOKEN not in log


def test_angles_report_on_the_embedded_default(angles_cli, tmp_path):
    for name in ("local.yaml", "vault.sql"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    with closing(sqlite3.connect(tmp_path / "vault.db")) as db:
        db.executescript((tmp_path / "vault.sql").read_text(encoding="utf-8"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert angles_cli("run", tmp_path / "local.yaml").exit_code == 0
    result = angles_cli("report", tmp_path / "local.yaml")
    assert result.exit_code == 0, result.output
    page = tmp_path / "status.html"  # beside the pipeline, the pipeline having no report:
    assert result.stdout.strip() == f"status page written to {page} (1 run in the last 30 days)"
    assert "decision_vault" in page.read_text(encoding="utf-8")

    chosen = elsewhere / "week.html"
    result = angles_cli("report", tmp_path / "local.yaml", "--output", chosen, "--days", "7")
    assert result.exit_code == 0, result.output
    assert "Runs over the last 7 days" in chosen.read_text(encoding="utf-8")
    document = angles_cli("report", tmp_path / "local.yaml", "--format", "json").json()
    assert document == {"report": str(page), "runs": 1, "days": 30}


def test_angles_report_writes_to_the_report_key(angles_cli, pipeline_file, vault, tmp_path):
    path = pipeline_file(PIPELINE)
    result = angles_cli("report", path)
    assert result.exit_code == 0, result.output
    assert "No runs yet" in (tmp_path / "site" / "status.html").read_text(encoding="utf-8")


def test_angles_report_to_an_unwritable_place(angles_cli, pipeline_file, vault, tmp_path):
    (tmp_path / "taken").write_text("a file")
    result = angles_cli(
        "report", pipeline_file(PIPELINE), "--output", tmp_path / "taken" / "x.html"
    )
    assert result.exit_code == 3
    assert result.stderr.startswith("ERROR: cannot write the status page ")
    assert len(result.stderr.splitlines()) == 1
