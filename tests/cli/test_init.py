"""``angles init``: starter files, and the conversion of the older config.json."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from angles.cli.starter import from_old_config
from angles.core.config import load_pipeline
from angles.core.errors import AnglesError
from angles.core.plugins import load_plugins

EXAMPLE_CONFIG = Path(__file__).parents[1] / "data" / "config.json"
ENVIRONMENT = {
    "SUPABASE_URL": "https://project.supabase.co",
    "SUPABASE_KEY": "service-role-key",
    "NOTION_API_KEY": "ntn_token",
    "NOTION_DATABASE_ID": "0123456789abcdef0123456789abcdef",
    "GITHUB_REPOSITORY": "acme/angles-backup",
    "GITHUB_TOKEN": "ghp_token",
    "GITHUB_OWNER": "acme",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x",
    "SMTP_SERVER": "smtp.example.com",
    "SMTP_USERNAME": "alerts",
    "SMTP_PASSWORD": "smtp-password",
    "EMAIL_RECIPIENT": "ops@example.com",
}


def test_init_writes_a_pipeline_that_validates(angles_cli, tmp_path):
    result = angles_cli("init")
    assert result.exit_code == 0
    assert (tmp_path / ".env.example").read_text().count("=") >= 11
    pipeline = load_pipeline(tmp_path / "angles.yaml", load_plugins(), ENVIRONMENT)
    assert pipeline.schedule == "0 3 * * *"
    assert [n["type"] for n in pipeline.notifiers] == ["slack", "smtp"]


def test_init_refuses_to_overwrite(angles_cli, tmp_path):
    (tmp_path / "angles.yaml").write_text("mine")
    result = angles_cli("init")
    assert result.exit_code == 3
    assert "already exist" in result.stderr and "--force" in result.stderr
    assert (tmp_path / "angles.yaml").read_text() == "mine"


def test_from_config_converts_the_older_layout(angles_cli, tmp_path):
    shutil.copy(EXAMPLE_CONFIG, tmp_path / "config.json")
    result = angles_cli("init", "--from-config", "config.json")
    assert result.exit_code == 0, result.stderr
    pipeline = load_pipeline(tmp_path / "angles.yaml", load_plugins(), ENVIRONMENT)
    assert pipeline.schedule == "0 3 * * *"
    assert [n["type"] for n in pipeline.notifiers] == ["slack"]  # email_enabled: false
    assert pipeline.sinks["github"]["retention_days"] == 30
    assert pipeline.sinks["github"]["repository"] == "acme/angles-backup"
    assert pipeline.restore == {"auto_migrate": False}
    assert pipeline.timeout_seconds == 30
    [sync] = [c for c in pipeline.checks if c["type"] == "sync_backlog"]
    assert (sync["warn_above"], sync["error_above"]) == (10, 50)


def test_from_config_values_are_carried_over():
    settings = from_old_config(
        {
            "scheduler": {"run_time": "22:15", "timezone": "Europe/Paris"},
            "notifications": {"method": "email", "email_enabled": True, "slack_enabled": False},
            "backup": {"repository": "acme/vault-backups", "retention_days": 7},
            "restore": {"auto_migrate": True, "dry_run_default": False},
            "health_check": {
                "timeout_seconds": 5,
                "max_unsynced_warning": 1,
                "max_unsynced_error": 2,
            },
        }
    )
    assert settings.schedule == "15 22 * * *"
    assert (settings.slack, settings.email) == (False, True)
    assert settings.repository == "acme/vault-backups"
    assert (settings.retention_days, settings.auto_migrate, settings.timeout_seconds) == (
        7,
        True,
        5,
    )
    assert (settings.warn_above, settings.error_above) == (1, 2)
    assert any("Europe/Paris" in note for note in settings.notes)
    assert any("dry_run_default" in note for note in settings.notes)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"scheduler": {"run_time": "25:00"}}, "scheduler.run_time '25:00' is not a time"),
        ({"scheduler": "03:00"}, "scheduler must be an object"),
        ([], "must hold a JSON object"),
    ],
)
def test_from_config_bad_values(config, message):
    with pytest.raises(AnglesError, match=message):
        from_old_config(config)


def test_from_config_bad_json_names_the_line(angles_cli, tmp_path):
    (tmp_path / "config.json").write_text('{\n  "scheduler": {,\n}')
    result = angles_cli("init", "--from-config", "config.json")
    assert result.exit_code == 3
    assert result.stderr.startswith("ERROR: config.json:2: not valid JSON")


def test_example_config_is_the_shared_one():
    assert json.loads(EXAMPLE_CONFIG.read_text())["scheduler"]["run_time"] == "03:00"


def test_env_example_keeps_notes_on_lines_of_their_own(angles_cli, tmp_path):
    assert angles_cli("init").exit_code == 0
    assignments = [
        line for line in (tmp_path / ".env.example").read_text().splitlines() if "=" in line
    ]
    assert assignments and not [line for line in assignments if "#" in line]
    # Filled in as a user does, the file gives exactly the values written.
    filled = "\n".join(
        f"{line}value-{n}" if line.endswith("=") else line
        for n, line in enumerate((tmp_path / ".env.example").read_text().splitlines())
    )
    (tmp_path / ".env").write_text(filled + "\n")
    from angles.core.config import read_dotenv

    values = read_dotenv(tmp_path / ".env")
    assert values["SUPABASE_KEY"].startswith("value-") and values["GITHUB_TOKEN"].startswith(
        "value-"
    )


def test_env_example_lists_every_variable_of_the_pipeline(angles_cli, tmp_path):
    shutil.copy(EXAMPLE_CONFIG, tmp_path / "config.json")
    assert angles_cli("init", "--from-config", "config.json").exit_code == 0
    used = set(re.findall(r"\$\{([A-Z_]+)", (tmp_path / "angles.yaml").read_text()))
    listed = {
        line.split("=")[0]
        for line in (tmp_path / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert "GITHUB_OWNER" in used
    assert listed == used


def test_init_writes_a_gitignore_for_secrets_logs_and_state(angles_cli, tmp_path):
    (tmp_path / ".gitignore").write_text("node_modules/\n.env\n")
    assert angles_cli("init").exit_code == 0
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["node_modules/", ".env"]
    assert {".env", "logs/", ".angles/"} <= set(lines) and lines.count(".env") == 1


def test_init_example_gives_a_pipeline_that_runs_without_any_account(angles_cli, tmp_path):
    result = angles_cli("init", "--example")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "vault.db").exists()
    run = angles_cli("run", "--format", "json")
    assert run.exit_code == 0, run.output
    report = run.json()
    assert report["backups"][0]["record_count"] == 40
    assert list((tmp_path / "backups").glob("decision_vault_*.json"))
