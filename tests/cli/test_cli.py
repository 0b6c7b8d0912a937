"""The command line, in-process and as a real subprocess: output, JSON and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINE = """\
version: 1
name: demo
checks:
  - {name: fine, type: static, status: ok, message: all good}
  - {name: meh, type: static, status: warning, message: 12 unsynced records}
notifiers:
  - {name: log, type: jsonl, path: notes.jsonl, on: [warning, error]}
"""


def test_run_prints_the_contract_report_as_json(angles_cli, pipeline_file):
    path = pipeline_file(PIPELINE)
    result = angles_cli("run", path, "--format", "json")
    assert result.exit_code == 1
    report = result.json()
    assert report["pipeline"] == "demo"
    assert report["status"] == "warning"
    assert report["test"] is False
    assert set(report) == {
        "pipeline",
        "status",
        "started_at",
        "duration_seconds",
        "test",
        "checks",
        "backups",
        "notifications",
    }
    assert [(c["name"], c["type"], c["status"], c["message"]) for c in report["checks"]] == [
        ("fine", "static", "ok", "all good"),
        ("meh", "static", "warning", "12 unsynced records"),
    ]
    assert report["notifications"] == [{"notifier": "log", "status": "sent"}]
    assert report["started_at"].endswith("Z")
    [note] = [json.loads(line) for line in (path.parent / "notes.jsonl").read_text().splitlines()]
    assert note["alerts"] == ["meh"]


def test_run_text_output_names_each_check(angles_cli, pipeline_file):
    result = angles_cli("run", pipeline_file(PIPELINE))
    assert result.exit_code == 1
    assert "fine" in result.stdout and "12 unsynced records" in result.stdout
    assert "demo: WARNING" in result.stdout


def test_check_runs_only_named_checks(angles_cli, pipeline_file):
    pipeline_file(PIPELINE)  # ./angles.yaml, the default
    result = angles_cli("check", "fine", "--format", "json")
    assert result.exit_code == 0
    assert [c["name"] for c in result.json()["checks"]] == ["fine"]


def test_check_with_an_unknown_name_exits_3(angles_cli, pipeline_file):
    result = angles_cli("check", pipeline_file(PIPELINE), "nope")
    assert result.exit_code == 3
    assert result.stderr.strip() == "ERROR: no check named 'nope' (the pipeline defines: fine, meh)"


def test_test_mode_simulates_failures_and_exits_2(angles_cli, pipeline_file):
    path = pipeline_file(PIPELINE)
    result = angles_cli("run", path, "--test", "--format", "json")
    assert result.exit_code == 2
    report = result.json()
    assert report["test"] is True
    assert all(
        c["status"] == "error" and c["message"].startswith("[TEST]") for c in report["checks"]
    )
    note = json.loads((path.parent / "notes.jsonl").read_text())
    assert note["title"].startswith("[TEST] ")


def test_validate_ok_and_json(angles_cli, pipeline_file):
    path = pipeline_file(PIPELINE)
    assert angles_cli("validate", path).exit_code == 0
    result = angles_cli("validate", path, "--format", "json")
    assert result.json()["valid"] is True and result.json()["checks"] == 2


def test_validate_reports_problems_as_json(angles_cli, pipeline_file):
    path = pipeline_file("version: 1\nchecks:\n  - {name: a, type: statik, status: ok}\n")
    result = angles_cli("validate", path, "--format", "json")
    assert result.exit_code == 3
    [problem] = result.json()["problems"]
    assert problem["line"] == 3 and problem["key"] == "checks[0].type"
    assert problem["message"].startswith("unknown check type 'statik' (did you mean 'static'?)")


def test_a_bad_pipeline_is_one_error_line_per_problem_and_exit_3(angles_cli, pipeline_file):
    path = pipeline_file("version: 1\nchecks: {}\nnotifiers:\n  - {name: x}\n")
    result = angles_cli("run", path)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"ERROR: {path}:2: checks: expected a list, got a mapping",
        f"ERROR: {path}:4: notifiers[0]: missing required key 'type'",
    ]
    assert "Traceback" not in result.stderr


def test_a_missing_pipeline_file(angles_cli, tmp_path):
    result = angles_cli("validate")
    assert result.exit_code == 3
    assert (
        result.stderr.strip()
        == "ERROR: angles.yaml: no such pipeline file (write one with `angles init`)"
    )


def test_plugins_lists_builtins_and_installed_packages(angles_cli):
    result = angles_cli("plugins", "--format", "json")
    assert result.exit_code == 0
    rows = {row["name"]: row for row in result.json()}
    assert rows["example"]["package"] == "angles-example-plugin"
    assert rows["angles.plugins.connections.sqlite"]["types"] == {"connection": ["sqlite"]}
    text = angles_cli("plugins").stdout
    assert "example  (angles-example-plugin 1.2.0)" in text


def test_schema_includes_plugin_types(angles_cli):
    schema = json.loads(angles_cli("schema").stdout)
    assert "check.static" in schema["$defs"] and "check.sync_backlog" in schema["$defs"]
    static = schema["$defs"]["check.static"]
    assert static["additionalProperties"] is False
    assert static["properties"]["status"]["anyOf"][0]["enum"] == ["ok", "warning", "error"]


def test_the_editor_schema_accepts_placeholders_but_not_wrong_values(angles_cli):
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(angles_cli("schema").stdout))
    entry = {"name": "s", "type": "static", "status": "${STATUS:-ok}"}
    assert list(validator.iter_errors({"version": 1, "checks": [entry]})) == []
    wrong = {**entry, "status": "fine"}
    assert list(validator.iter_errors({"version": 1, "checks": [wrong]}))


def test_schema_validates_the_example_pipelines():
    from jsonschema import Draft202012Validator

    from angles.core.plugins import load_plugins
    from angles.core.schema import build_schema

    validator = Draft202012Validator(build_schema(load_plugins()))
    from ruamel.yaml import YAML

    root = Path(__file__).parents[2]
    for name in ("angles.yaml", "examples/local.yaml"):
        document = YAML(typ="safe").load((root / name).read_text())
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == [], name


def test_an_internal_error_is_one_line_without_debug(angles_cli, pipeline_file, register_plugin):
    from angles import Notifier, hookimpl

    class Exploding(Notifier):
        type = "exploding"

        def __init__(self, *args):
            raise RuntimeError("kaput")

    class Plugin:
        @hookimpl
        def angles_register_notifiers(self, register):
            register(Exploding)

    register_plugin(Plugin())
    path = pipeline_file("version: 1\nnotifiers:\n  - {name: x, type: exploding, on: [always]}\n")
    result = angles_cli("run", path, "--format", "json")
    assert result.exit_code == 0  # a notifier failure never changes the exit code
    assert result.json()["notifications"] == [
        {"notifier": "x", "status": "error", "message": "RuntimeError: kaput"}
    ]


def test_usage_errors_exit_3(angles_cli):
    assert angles_cli("run", "--format", "yaml").exit_code == 3
    assert angles_cli("no-such-command").exit_code == 3


def run_angles(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "angles", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_subprocess_run_and_exit_codes(tmp_path):
    (tmp_path / "angles.yaml").write_text(PIPELINE.replace("status: warning", "status: error"))
    done = run_angles("run", "--format", "json", cwd=tmp_path)
    assert done.returncode == 2
    assert json.loads(done.stdout)["status"] == "error"
    assert (tmp_path / "logs" / "health_check.log").exists()


def test_subprocess_bad_pipeline_has_no_traceback_unless_debug(tmp_path):
    (tmp_path / "angles.yaml").write_text("version: 1\nchecks: [a\n")
    done = run_angles("validate", cwd=tmp_path)
    assert done.returncode == 3
    assert done.stderr.startswith("ERROR: angles.yaml:3: invalid YAML")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["--version"]])
def test_subprocess_help(tmp_path, args):
    done = run_angles(*args, cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout


def test_plugins_can_add_commands(angles_cli, register_plugin):
    import click

    from angles import hookimpl

    @click.command("hello")
    @click.argument("who")
    def hello(who):
        """Say hello."""
        click.echo(f"hello {who}")

    class Plugin:
        @hookimpl
        def angles_register_commands(self, cli):
            cli.add_command(hello)

    register_plugin(Plugin())
    assert angles_cli("hello", "world").stdout == "hello world\n"
    assert "hello" in angles_cli("--help").stdout


def test_the_runtime_never_imports_test_servers_or_heavy_clients(tmp_path):
    (tmp_path / "angles.yaml").write_text(PIPELINE)
    code = (
        "import sys\n"
        "from angles.cli import main\n"
        "code = main(['validate'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'supabase', 'notion_client', 'github', 'psycopg', 'pyrage'} or m.startswith('angles.testing'))\n"
        "print('loaded=' + ','.join(loaded))\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "loaded="
