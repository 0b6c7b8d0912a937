"""Starter files written by ``angles init``, and the conversion of the older config.json."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from angles.core.errors import AnglesError

#: What each variable of a starter pipeline holds, for ``.env.example``.
VARIABLE_NOTES = {
    "SUPABASE_URL": "The project URL, https://<project>.supabase.co",
    "SUPABASE_KEY": "The service_role key: backups read every row",
    "NOTION_API_KEY": "An internal integration's secret, shared with the database",
    "NOTION_DATABASE_ID": "The id of the Notion database the table is synced into",
    "GITHUB_REPOSITORY": "owner/name of the repository that keeps the backups",
    "GITHUB_OWNER": "The owner of the backup repository",
    "GITHUB_TOKEN": "A token allowed to write the contents of that repository",
    "SLACK_WEBHOOK_URL": "A Slack incoming webhook URL",
    "SMTP_SERVER": "The mail relay's host name",
    "SMTP_PORT": "587 for STARTTLS, 465 for implicit TLS",
    "SMTP_USERNAME": "The mail relay login",
    "SMTP_PASSWORD": "The mail relay password",
    "EMAIL_RECIPIENT": "Who receives the alerts",
}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

GITIGNORE = """\
# Written by angles init: secrets and what angles writes while it runs.
.env
logs/
.angles/
"""


def example_pipeline() -> str:
    """The embedded default pipeline (a SQLite vault, a local sink, the console)."""
    return _example_file("local.yaml")


def write_example_vault(path: Path) -> None:
    """Create the example vault, a SQLite file with a ``decision_vault`` table."""
    import sqlite3

    path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as database:
        database.executescript(_example_file("vault.sql"))
        database.commit()


def extend_gitignore(path: Path) -> bool:
    """Add what must not be committed (``.env``, logs, state) to ``.gitignore``.

    Lines already there are kept; returns whether the file changed.
    """
    present = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    wanted = GITIGNORE.splitlines()
    missing = [line for line in wanted[1:] if line not in present]
    if not missing:
        return False
    text = "\n".join([*present, *(wanted[:1] if not present else []), *missing]) + "\n"
    path.write_text(text, encoding="utf-8")
    return True


def _example_file(name: str) -> str:
    from importlib.resources import files

    return files("angles").joinpath("examples", name).read_text(encoding="utf-8")


def env_example(pipeline_text: str) -> str:
    """A ``.env.example`` listing every variable ``pipeline_text`` uses, each with a note.

    Notes stand on lines of their own: ``KEY=  # note`` would make the note the value for
    readers that do not strip comments (systemd's ``EnvironmentFile=``).
    """
    lines = ["# Copy to .env beside angles.yaml (never commit it) and fill in."]
    seen: set[str] = set()
    for match in _VARIABLE.finditer(pipeline_text):
        name, default = match.group(1), match.group(2)
        if name in seen:
            continue
        seen.add(name)
        lines += ["", f"# {VARIABLE_NOTES.get(name, 'Used by the pipeline')}"]
        lines.append(f"{name}={default or _EXAMPLE_VALUES.get(name, '')}")
    return "\n".join(lines) + "\n"


_EXAMPLE_VALUES = {
    "SUPABASE_URL": "https://your-project.supabase.co",
    "GITHUB_REPOSITORY": "owner/angles-backup",
}


@dataclass
class StarterSettings:
    """What a starter pipeline is made of; the defaults are the production layout."""

    schedule: str = "0 3 * * *"
    repository: str = "${GITHUB_REPOSITORY}"
    retention_days: int = 30
    slack: bool = True
    email: bool = True
    auto_migrate: bool = False
    timeout_seconds: int = 30
    warn_above: int = 10
    error_above: int = 50
    notes: list[str] = field(default_factory=list)


def from_old_config(config: dict[str, Any]) -> StarterSettings:
    """Settings from the older ``config.json`` layout; ``notes`` say what was adapted."""
    if not isinstance(config, dict):
        raise AnglesError("config.json must hold a JSON object")
    settings = StarterSettings()
    section = _section(config, "scheduler")
    run_time = section.get("run_time")
    if run_time is not None:
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", str(run_time))
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise AnglesError(f"scheduler.run_time {run_time!r} is not a time such as 03:00")
        settings.schedule = f"{int(match.group(2))} {int(match.group(1))} * * *"
    zone = section.get("timezone", "UTC")
    if zone not in ("UTC", "Etc/UTC", "GMT"):
        settings.notes.append(
            f"scheduler.timezone was {zone}: angles schedules in UTC, adjust `schedule:`"
        )
    notifications = _section(config, "notifications")
    method = notifications.get("method")
    settings.slack = bool(notifications.get("slack_enabled", method in ("slack", "both")))
    settings.email = bool(notifications.get("email_enabled", method in ("email", "both")))
    backup = _section(config, "backup")
    if backup.get("repository"):
        name = str(backup["repository"])
        settings.repository = name if "/" in name else f"${{GITHUB_OWNER}}/{name}"
        if "/" not in name:
            settings.notes.append("backup.repository had no owner: set GITHUB_OWNER")
    settings.retention_days = int(backup.get("retention_days", settings.retention_days))
    restore = _section(config, "restore")
    settings.auto_migrate = bool(restore.get("auto_migrate", False))
    if restore.get("dry_run_default") is False:
        settings.notes.append(
            "restore.dry_run_default was false: angles always dry-runs unless --live"
        )
    health = _section(config, "health_check")
    settings.timeout_seconds = int(health.get("timeout_seconds", settings.timeout_seconds))
    settings.warn_above = int(health.get("max_unsynced_warning", settings.warn_above))
    settings.error_above = int(health.get("max_unsynced_error", settings.error_above))
    return settings


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key) or {}
    if not isinstance(value, dict):
        raise AnglesError(f"config.json: {key} must be an object")
    return value


def starter_pipeline(settings: StarterSettings) -> str:
    """The text of a production ``angles.yaml`` for these settings."""
    notifiers = []
    if settings.slack:
        notifiers.append(
            '  - {name: slack, type: slack, webhook_url: "${SLACK_WEBHOOK_URL}", '
            "on: [warning, error, recovery]}"
        )
    if settings.email:
        notifiers.append(
            """  - name: email
    type: smtp
    host: "${SMTP_SERVER}"
    port: "${SMTP_PORT:-587}"
    username: "${SMTP_USERNAME}"
    password: "${SMTP_PASSWORD}"
    to: ["${EMAIL_RECIPIENT}"]
    tls: starttls
    on: [error, recovery]"""
        )
    if not notifiers:
        notifiers.append("  - {name: console, type: console}")
    notes = "".join(f"# NOTE: {note}\n" for note in settings.notes)
    return f"""\
# angles pipeline: checks, backups and alerts. Variables come from the environment or .env.
{notes}version: 1
name: production
schedule: "{settings.schedule}"          # cron, in UTC
state: .angles/state.db
log_dir: logs

connections:
  supabase: {{type: supabase, url: "${{SUPABASE_URL}}", key: "${{SUPABASE_KEY}}"}}
  notion:   {{type: notion, token: "${{NOTION_API_KEY}}"}}

checks:
  - {{name: supabase, type: supabase, connection: supabase, tables: [decision_vault]}}
  - {{name: notion, type: notion, connection: notion, database_id: "${{NOTION_DATABASE_ID}}"}}
  - name: sync
    type: sync_backlog
    connection: supabase
    table: decision_vault
    unsynced: "notion_synced=is.false"
    warn_above: {settings.warn_above}
    error_above: {settings.error_above}
  - name: notion-sync
    type: notion_sync
    connection: supabase
    table: decision_vault
    notion: notion
    database_id: "${{NOTION_DATABASE_ID}}"
    page_id_column: notion_page_id
    synced: "notion_synced=is.true"
    compare: {{decision: Name}}
    warn_above: 0
    error_above: 10
    timeout_seconds: 300
  - name: drill
    type: restore_drill
    backup: decision_vault
    max_age: 26h
    shrink_warn: 10%

backups:
  - {{name: decision_vault, connection: supabase, table: decision_vault, sinks: [github]}}

sinks:
  github:
    type: github
    repository: "{settings.repository}"
    token: "${{GITHUB_TOKEN}}"
    path: backups
    retention_days: {settings.retention_days}

notifiers:
{chr(10).join(notifiers)}

restore:
  auto_migrate: {str(settings.auto_migrate).lower()}

defaults:
  timeout_seconds: {settings.timeout_seconds}
"""
