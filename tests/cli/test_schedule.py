"""``angles schedule``: printed definitions, and the scheduler as a real process."""

from __future__ import annotations

import io
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from angles.cli.definitions import on_calendar
from angles.core.version import version

ROOT_PIPELINE = Path(__file__).parents[2] / "angles.yaml"


@pytest.fixture
def production(tmp_path):
    """The repository's production pipeline, with none of its variables set."""
    return Path(shutil.copy(ROOT_PIPELINE, tmp_path / "angles.yaml"))


def yaml_documents(text: str) -> list:
    return list(YAML(typ="safe").load_all(io.StringIO(text)))


def test_print_cron(angles_cli, production):
    result = angles_cli("schedule", production, "--print", "cron")
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith("#")]
    assert lines[0] == "CRON_TZ=UTC"
    assert lines[1].startswith(f"0 3 * * * cd {production.parent} && ")
    assert f"angles run {production.name}" in lines[1] and "flock -n" in lines[1]


def test_print_systemd_timer(angles_cli, production):
    result = angles_cli("schedule", production, "--print", "systemd")
    assert result.exit_code == 0, result.stderr
    assert "# /etc/systemd/system/angles-production.service" in result.stdout
    assert "# /etc/systemd/system/angles-production.timer" in result.stdout
    assert "OnCalendar=*-*-* 03:00:00 UTC" in result.stdout
    assert "Persistent=true" in result.stdout
    assert f"ExecStart={sys.executable.rsplit('/', 1)[0]}/angles run angles.yaml" in result.stdout


def test_print_systemd_falls_back_to_the_scheduler(angles_cli, production):
    text = production.read_text().replace('"0 3 * * *"', '"0 3 1 * 1"')
    production.write_text(text)
    result = angles_cli("schedule", production, "--print", "systemd")
    assert result.exit_code == 0
    assert "no systemd calendar equivalent" in result.stdout
    assert "angles schedule angles.yaml" in result.stdout and "OnCalendar" not in result.stdout


def test_print_github_actions(angles_cli, production):
    result = angles_cli("schedule", production, "--print", "github-actions")
    assert result.exit_code == 0, result.stderr
    [workflow] = yaml_documents(result.stdout)
    assert workflow["on"]["schedule"] == [{"cron": "0 3 * * *"}]
    [step] = [s for s in workflow["jobs"]["run"]["steps"] if s.get("name") == "angles run"]
    assert step["run"] == "angles run angles.yaml"
    env = step["env"]
    for name in (
        "SUPABASE_URL",
        "SUPABASE_KEY",
        "NOTION_API_KEY",
        "NOTION_DATABASE_ID",
        "SLACK_WEBHOOK_URL",
        "SMTP_SERVER",
        "SMTP_PORT",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "EMAIL_RECIPIENT",
    ):
        assert env[name] == f"${{{{ secrets.{name} }}}}"
    assert env["GITHUB_TOKEN"] == "${{ secrets.BACKUP_GITHUB_TOKEN }}"
    assert "GITHUB_REPOSITORY" not in env
    assert "Actions refuses secret names starting with GITHUB_" in result.stdout
    assert "GITHUB_REPOSITORY is set by Actions" in result.stdout
    assert any(
        s.get("uses", "").startswith("actions/cache@") for s in workflow["jobs"]["run"]["steps"]
    )
    installs = [s["run"] for s in workflow["jobs"]["run"]["steps"] if "pip" in s.get("run", "")]
    assert installs == [f"pip install angles-monitor=={version()}"]


def test_print_kubernetes(angles_cli, production):
    result = angles_cli("schedule", production, "--print", "kubernetes")
    assert result.exit_code == 0, result.stderr
    secret, cronjob = yaml_documents(result.stdout)
    assert secret["kind"] == "Secret" and "SMTP_PASSWORD" in secret["stringData"]
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == (
        "0 3 * * *",
        "Etc/UTC",
        "Forbid",
    )
    [container] = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "angles-production"}}]
    assert "angles run /var/lib/angles/angles.yaml" in container["args"][0]
    # An image that exists, with the running release installed into it.
    assert container["image"].startswith("python:3.")
    assert (
        f"pip install --quiet --no-cache-dir --root-user-action=ignore 'angles-monitor=={version()}'"
        in container["args"][0]
    )


@pytest.mark.parametrize("kind", ["cron", "systemd"])
def test_print_names_the_running_release(angles_cli, production, kind):
    result = angles_cli("schedule", production, "--print", kind)
    assert result.exit_code == 0, result.stderr
    assert f"pipx install 'angles-monitor=={version()}'" in result.stdout


@pytest.mark.parametrize(
    ("cron", "calendar"),
    [
        ("0 3 * * *", "*-*-* 03:00:00 UTC"),
        ("*/15 * * * *", "*-*-* *:00,15,30,45:00 UTC"),
        ("30 8-10 * * 1-5", "Mon,Tue,Wed,Thu,Fri *-*-* 08,09,10:30:00 UTC"),
        ("0 0 1 */3 *", "*-01,04,07,10-01 00:00:00 UTC"),
        ("0 12 * * sun,sat", "Sun,Sat *-*-* 12:00:00 UTC"),
        ("0 12 * * 7", "Sun *-*-* 12:00:00 UTC"),
        ("0 6 * jan mon", "Mon *-01-* 06:00:00 UTC"),
        ("@daily", "*-*-* 00:00:00 UTC"),
        ("@weekly", "Sun *-*-* 00:00:00 UTC"),
        ("0 3 1 * 1", None),  # cron: the 1st OR a Monday; systemd cannot say "or"
        ("0 3 L * *", None),
    ],
)
def test_on_calendar(cron, calendar):
    assert on_calendar(cron) == calendar
    if calendar and shutil.which("systemd-analyze"):
        checked = subprocess.run(
            ["systemd-analyze", "calendar", calendar], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr


def test_a_pipeline_without_a_schedule(angles_cli, pipeline_file):
    path = pipeline_file("version: 1\n")
    for args in (("--print", "cron"), ()):
        result = angles_cli("schedule", path, *args)
        assert result.exit_code == 3
        assert "has no schedule" in result.stderr and 'add schedule: "0 3 * * *"' in result.stderr


def test_the_scheduler_process_stops_on_sigterm(tmp_path):
    (tmp_path / "angles.yaml").write_text(
        'version: 1\nname: demo\nschedule: "0 3 * * *"\n'
        "checks:\n  - {name: fine, type: static, status: ok}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "angles", "schedule", "angles.yaml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = tmp_path / "logs" / "scheduler.log"
    try:
        deadline = time.monotonic() + 20
        while not (log.exists() and "scheduler started" in log.read_text()):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "scheduling demo at '0 3 * * *' (UTC)" in stderr
    assert "scheduler stopped after 0 run(s)" in stderr
    assert '"event": "scheduler stopped"' in log.read_text()


def test_scheduled_runs_are_real_runs(pipeline_file, tmp_path):
    """scheduler_for runs the pipeline as `angles run` does: report, history, notifiers."""
    from datetime import UTC, datetime, timedelta

    from angles.core.config import load_pipeline
    from angles.core.plugins import load_plugins
    from angles.state.scheduler import scheduler_for
    from angles.state.store import StateStore

    path = pipeline_file(
        """\
        version: 1
        name: demo
        schedule: "0 * * * *"
        checks:
          - {name: meh, type: static, status: warning}
        notifiers:
          - {name: log, type: jsonl, path: notes.jsonl, remind_every: 2h}
        """
    )
    plugins = load_plugins()
    now = [datetime(2026, 11, 26, 2, 59, tzinfo=UTC)]
    scheduler = None

    def sleep(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)
        if now[0] > datetime(2026, 11, 26, 5, 30, tzinfo=UTC):
            scheduler.stop()

    scheduler = scheduler_for(
        load_pipeline(path, plugins), plugins, clock=lambda: now[0], sleep=sleep, max_wait=3600
    )
    scheduler.run_forever()
    assert scheduler.runs == 3
    with StateStore.open(str(tmp_path / ".angles" / "state.db")) as store:
        assert [r["status"] for r in store.runs("demo")] == ["warning"] * 3
    notes = (tmp_path / "notes.jsonl").read_text().splitlines()
    # Reports carry the real start time, so the other two runs fell within remind_every.
    assert len(notes) == 1
