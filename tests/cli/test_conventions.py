"""Terminal and output conventions: quiet, verbose, debug, colour, JSON errors, help,
suggestions, and the progress bar (drawn on a real pseudo-terminal, never in a pipe)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import click
import pytest

from angles import hookimpl

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

PIPELINE = """\
version: 1
name: demo
checks:
  - {name: fine, type: static, status: ok, message: all good}
  - {name: broken, type: static, status: error, message: the vault is gone}
"""

BACKUP_PIPELINE = """\
version: 1
name: big
connections:
  vault: {type: sqlite, path: vault.db}
sinks:
  local: {type: local, path: backups, retention_days: 30}
backups:
  - {name: vault, connection: vault, table: decision_vault, sinks: [local]}
"""


def run_in_terminal(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``angles ARGS`` with stdin, stdout and stderr on a pseudo-terminal; its screen."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "angles", *args],
        cwd=cwd,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm", **(env or {})},
        close_fds=True,
    )
    os.close(follower)
    screen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            raise AssertionError(f"no output within 60 s: {screen!r}")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        screen += chunk
    process.wait(timeout=60)
    os.close(leader)
    return screen.decode("utf-8", "replace")


def run_piped(args: list[str], cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "angles", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture
def big_vault(tmp_path):
    """A SQLite vault with enough rows for a backup to take a moment."""
    (tmp_path / "angles.yaml").write_text(BACKUP_PIPELINE)
    with closing(sqlite3.connect(tmp_path / "vault.db")) as db, db:
        db.execute("CREATE TABLE decision_vault (id INTEGER PRIMARY KEY, decision TEXT)")
        db.executemany(
            "INSERT INTO decision_vault VALUES (?, ?)",
            ((i, f"decision number {i}") for i in range(60_000)),
        )
    return tmp_path


def test_a_backup_at_a_terminal_shows_a_progress_bar_with_counts(big_vault):
    screen = run_in_terminal(["backup"], big_vault)
    text = ANSI.sub("", screen)
    assert "Backing up decision_vault" in text
    assert re.search(r"\d+/60000", text), text[-2000:]
    assert "OK" in text and "60000 rows" in text


def test_no_progress_bar_in_a_pipe_or_as_json(big_vault):
    piped = run_piped(["backup"], big_vault)
    assert piped.returncode == 0, piped.stderr
    assert "Backing up" not in piped.stdout + piped.stderr
    as_json = run_in_terminal(["backup", "--format", "json"], big_vault)
    assert "Backing up" not in as_json
    assert json.loads(ANSI.sub("", as_json))["backups"][0]["record_count"] == 60000


def test_colour_follows_the_terminal_and_no_color(tmp_path):
    (tmp_path / "angles.yaml").write_text(PIPELINE)
    assert ANSI.search(run_in_terminal(["check"], tmp_path))
    assert not ANSI.search(run_in_terminal(["check"], tmp_path, env={"NO_COLOR": "1"}))
    assert not ANSI.search(run_piped(["check"], tmp_path).stdout)


def test_quiet_prints_only_the_verdict(angles_cli, pipeline_file):
    path = pipeline_file(PIPELINE)
    result = angles_cli("--quiet", "check", path)
    assert result.exit_code == 2
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith("demo: ERROR in ")
    assert "broken" not in result.stdout


def test_verbose_adds_the_log_lines_even_in_a_pipe(tmp_path):
    (tmp_path / "angles.yaml").write_text(PIPELINE)
    plain = run_piped(["check"], tmp_path)
    verbose = run_piped(["check", "--verbose"], tmp_path)
    assert "check finished" not in plain.stderr
    assert "check finished" in verbose.stderr and "run started" in verbose.stderr


def test_at_a_terminal_only_failures_are_logged_between_the_report_lines(tmp_path):
    (tmp_path / "angles.yaml").write_text(PIPELINE)
    text = ANSI.sub("", run_in_terminal(["check"], tmp_path))
    log_lines = [line for line in text.splitlines() if re.match(r"\d\d:\d\d:\d\d ", line)]
    assert log_lines, text
    assert all(" error " in line or " warning " in line for line in log_lines), log_lines
    assert any("check=broken" in line for line in log_lines)
    assert not any("check=fine" in line for line in log_lines)


def test_failed_checks_are_logged_as_errors(tmp_path):
    (tmp_path / "angles.yaml").write_text(PIPELINE)
    run_piped(["check"], tmp_path)
    events = [
        json.loads(line)
        for line in (tmp_path / "logs" / "health_check.log").read_text().splitlines()
    ]
    levels = {e["check"]: e["level"] for e in events if e["event"] == "check finished"}
    assert levels == {"fine": "info", "broken": "error"}


@pytest.mark.parametrize("command", [["run"], ["validate"], ["backups", "list"], ["restore"]])
def test_json_gets_an_error_document_when_there_is_no_result(angles_cli, tmp_path, command):
    result = angles_cli(*command, "missing.yaml", "--format", "json")
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    if "valid" in document:  # validate reports the problems themselves
        assert document["valid"] is False
        return
    assert document["error"]["exit_code"] == 3
    assert "missing.yaml" in document["error"]["message"]
    assert set(document["error"]) == {"message", "hint", "exit_code"}


def test_a_mistyped_command_suggests_the_right_one(angles_cli):
    result = angles_cli("rnu")
    assert result.exit_code == 3
    assert "Did you mean 'run'?" in result.stderr


def test_every_command_shows_examples_in_its_help(angles_cli):
    from angles.cli import COMMANDS

    for name in COMMANDS:
        result = angles_cli(name, "--help")
        assert result.exit_code == 0, name
        assert "Examples:" in result.stdout and f"angles {name}" in result.stdout, name


def test_shell_completion_lists_the_commands(tmp_path):
    done = run_piped(
        [],
        tmp_path,
        env={"_ANGLES_COMPLETE": "bash_complete", "COMP_WORDS": "angles re", "COMP_CWORD": "1"},
    )
    assert "restore" in done.stdout


class Failing:
    @hookimpl
    def angles_register_commands(self, cli):
        @click.command("explode")
        @click.option("--format", "output_format", default="text")
        def explode(output_format):
            """Fails as a bug would."""
            raise RuntimeError("kaput")

        cli.add_command(explode)


def test_an_internal_error_is_one_line_and_debug_shows_the_traceback(angles_cli, register_plugin):
    register_plugin(Failing())
    plain = angles_cli("explode")
    assert plain.exit_code == 3
    assert plain.stderr.splitlines() == [
        "ERROR: internal error: RuntimeError: kaput (run with --debug for details)"
    ]
    for args in (("--debug", "explode"), ("explode", "--debug")):
        debug = angles_cli(*args)
        assert debug.exit_code == 3
        assert "Traceback (most recent call last)" in debug.stderr
        assert 'raise RuntimeError("kaput")' in debug.stderr


def test_internal_errors_are_json_documents_too(angles_cli, register_plugin):
    register_plugin(Failing())
    result = angles_cli("explode", "--format=json")
    assert result.exit_code == 3
    assert json.loads(result.stdout) == {
        "error": {
            "message": "internal error: RuntimeError: kaput",
            "hint": "run with --debug for details",
            "exit_code": 3,
        }
    }
