"""Loading pipeline files: YAML 1.2, variables, .env, extends, and every error path."""

from __future__ import annotations

from pathlib import Path

import pytest

from angles.core.config import deep_merge, format_path, load_pipeline, read_dotenv
from angles.core.errors import PipelineError
from angles.core.plugins import get_plugin_manager, load_plugins


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(get_plugin_manager())


def write(tmp_path: Path, text: str, name: str = "angles.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, plugins, environ=None) -> list[str]:
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path, plugins, environ or {})
    return [str(p) for p in caught.value.problems]


MINIMAL = """\
version: 1
name: demo
notifiers:
  - {name: console, type: console}
"""


def test_a_minimal_pipeline_loads(tmp_path, plugins):
    pipeline = load_pipeline(write(tmp_path, MINIMAL), plugins, {})
    assert pipeline.name == "demo"
    assert pipeline.notifiers == [{"name": "console", "type": "console"}]
    assert pipeline.timeout_seconds == 30


def test_yaml_1_2_keeps_on_yes_and_no_as_strings(tmp_path, plugins):
    text = (
        MINIMAL.replace("type: console}", "type: console, on: [error]}")
        + "restore: {auto_migrate: no}\n"
    )
    with pytest.raises(PipelineError) as caught:
        load_pipeline(write(tmp_path, text), plugins, {})
    # `no` is the string "no" in YAML 1.2, so a boolean key rejects it; `on` stays a key.
    assert [p.key for p in caught.value.problems] == ["restore.auto_migrate"]
    assert "expected true or false, got 'no'" in caught.value.problems[0].message


def test_variables_are_substituted_with_defaults(tmp_path, plugins):
    text = """\
version: 1
name: "${PIPELINE_NAME}"
defaults:
  timeout_seconds: ${TIMEOUT:-12}
log_dir: "${LOGS:-var/log}"
"""
    pipeline = load_pipeline(write(tmp_path, text), plugins, {"PIPELINE_NAME": "prod"})
    assert pipeline.name == "prod"
    assert pipeline.timeout_seconds == 12  # an unquoted placeholder is typed like YAML
    assert pipeline.log_dir == tmp_path / "var/log"


def test_a_quoted_placeholder_stays_a_string(tmp_path, plugins):
    text = 'version: 1\nname: "${N:-007}"\n'
    assert load_pipeline(write(tmp_path, text), plugins, {}).document["name"] == "007"


def test_an_unquoted_variable_in_a_flow_mapping_gets_a_hint(tmp_path, plugins):
    found = problems(write(tmp_path, "version: 1\ndefaults: {timeout_seconds: ${T}}\n"), plugins)
    assert len(found) == 1
    assert found[0].endswith('(inside { } or [ ], quote values that use variables: "${VAR}")')


def test_dollar_dollar_is_a_literal_dollar(tmp_path, plugins):
    text = 'version: 1\nname: "cost $${HOME}"\n'
    assert load_pipeline(write(tmp_path, text), plugins, {}).name == "cost ${HOME}"


def test_missing_variable_names_file_line_key_and_variable(tmp_path, plugins):
    text = 'version: 1\nname: demo\nstate: "${STATE_URL}"\n'
    assert problems(write(tmp_path, text), plugins) == [
        f"{tmp_path / 'angles.yaml'}:3: state: variable STATE_URL is not set: export it, "
        "add it to .env beside the pipeline, or write ${STATE_URL:-default}"
    ]


def test_dotenv_beside_the_file_is_read_and_the_environment_wins(tmp_path, plugins):
    (tmp_path / ".env").write_text(
        "# comment\nexport NAME_A='from dotenv'\nNAME_B=dotenv # trailing\nTIMEOUT=\"9\"\n"
    )
    text = 'version: 1\nname: "${NAME_A}/${NAME_B}"\ndefaults:\n  timeout_seconds: ${TIMEOUT}\n'
    pipeline = load_pipeline(write(tmp_path, text), plugins, {"NAME_B": "env"})
    assert pipeline.name == "from dotenv/env"
    assert pipeline.timeout_seconds == 9


def test_read_dotenv_of_a_missing_file_is_empty(tmp_path):
    assert read_dotenv(tmp_path / ".env") == {}


def test_dotenv_comment_after_an_unfilled_key_leaves_it_empty(tmp_path):
    (tmp_path / ".env").write_text(
        "SUPABASE_KEY=   # the service_role key\nQUOTED='a # b'\nPLAIN=value # note\n"
    )
    assert read_dotenv(tmp_path / ".env") == {
        "SUPABASE_KEY": "",
        "QUOTED": "a # b",
        "PLAIN": "value",
    }


def test_an_empty_variable_is_reported_like_a_missing_one(tmp_path, plugins):
    (tmp_path / ".env").write_text("SUPABASE_KEY=   # fill me in\n")
    text = 'version: 1\nname: "${SUPABASE_KEY}"\nlog_dir: "logs${SUFFIX:-}"\n'
    with pytest.raises(PipelineError) as caught:
        load_pipeline(write(tmp_path, text), plugins, {})
    [problem] = caught.value.problems
    assert (problem.line, problem.key) == (2, "name")
    assert "variable SUPABASE_KEY is empty" in problem.message


def test_extends_merges_maps_and_replaces_lists(tmp_path, plugins):
    write(
        tmp_path,
        """\
version: 1
name: base
defaults: {timeout_seconds: 5}
sinks:
  local: {type: local, path: backups, retention_days: 30}
notifiers:
  - {name: console, type: console}
  - {name: loud, type: console, on: [always]}
""",
        "base.yaml",
    )
    text = """\
extends: base.yaml
name: prod
sinks:
  local: {retention_days: 7}
notifiers:
  - {name: only, type: console}
"""
    pipeline = load_pipeline(write(tmp_path, text, "angles.prod.yaml"), plugins, {})
    assert pipeline.name == "prod"
    assert pipeline.timeout_seconds == 5  # kept from the base
    assert pipeline.sinks == {"local": {"type": "local", "path": "backups", "retention_days": 7}}
    assert [n["name"] for n in pipeline.notifiers] == ["only"]  # the list was replaced
    assert "extends" not in pipeline.document


def test_extends_errors_point_into_the_file_that_holds_the_key(tmp_path, plugins):
    write(tmp_path, "version: 1\ndefaults: {timeout_seconds: -1}\n", "base.yaml")
    found = problems(write(tmp_path, "extends: base.yaml\nname: prod\n"), plugins)
    assert found == [
        f"{tmp_path / 'base.yaml'}:2: defaults.timeout_seconds: -1 is too small (exclusiveMinimum 0)"
    ]


def test_extends_loop_is_reported(tmp_path, plugins):
    write(tmp_path, "extends: b.yaml\nversion: 1\n", "a.yaml")
    write(tmp_path, "extends: a.yaml\nversion: 1\n", "b.yaml")
    found = problems(tmp_path / "a.yaml", plugins)
    assert len(found) == 1 and "extends itself in a loop" in found[0]


def test_missing_base_file_is_reported_at_its_extends_key(tmp_path, plugins):
    found = problems(write(tmp_path, "version: 1\nextends: nowhere.yaml\n"), plugins)
    assert found == [
        f"{tmp_path / 'angles.yaml'}:2: extends: no such file {tmp_path / 'nowhere.yaml'}"
        " (a path relative to this file)"
    ]


def test_deep_merge():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    assert deep_merge(base, {"a": {"y": [3]}, "c": 2}) == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}


def test_missing_file(tmp_path, plugins):
    assert problems(tmp_path / "nope.yaml", plugins) == [
        f"{tmp_path / 'nope.yaml'}: no such pipeline file (write one with `angles init`)"
    ]


def test_a_file_that_is_not_utf8_names_the_line(tmp_path, plugins):
    path = tmp_path / "angles.yaml"
    path.write_bytes(b"version: 1\n# Latin-1 below\nname: caf\xe9\n")
    assert problems(path, plugins) == [f"{path}:3: byte 0xe9 is not UTF-8: save the file as UTF-8"]


def test_a_nul_byte_names_the_line(tmp_path, plugins):
    path = tmp_path / "angles.yaml"
    path.write_bytes(b"version: 1\n\nname: a\x00b\n")
    assert problems(path, plugins) == [
        f"{path}:3: invalid YAML: character 0x00 is not allowed in YAML (remove it)"
    ]


def test_malformed_yaml_names_the_line(tmp_path, plugins):
    found = problems(write(tmp_path, "version: 1\nchecks: [a\nname: x\n"), plugins)
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'angles.yaml'}:3: invalid YAML")


def test_duplicate_key_is_malformed_yaml(tmp_path, plugins):
    found = problems(write(tmp_path, "version: 1\nname: a\nname: b\n"), plugins)
    assert len(found) == 1 and ":3: invalid YAML" in found[0] and "duplicate" in found[0]


def test_not_a_mapping(tmp_path, plugins):
    assert problems(write(tmp_path, "- a\n- b\n"), plugins) == [
        f"{tmp_path / 'angles.yaml'}:1: a pipeline file is a mapping of keys (version:, checks:, …)"
    ]


def test_every_problem_is_reported_at_once_with_line_and_key(tmp_path, plugins):
    text = """\
version: 1
nme: x
checks:
  - {name: a, type: nope}
  - {name: b, type: sync_backlog, connection: db, table: t, unsynced: "x=is.false", warn_above: ten}
  - {name: c, type: sync_backlog, connection: missing, table: t, unsynced: "x=zz.1"}
notifiers:
  - {name: n, type: console, on: [sometimes], extra: 1}
  - {name: n, type: console, remind_every: 6 hours}
connections:
  db: {type: sqlite, path: vault.db}
"""
    found = problems(write(tmp_path, text), plugins)
    prefix = str(tmp_path / "angles.yaml")
    assert found == [
        f"{prefix}:2: nme: unknown key 'nme' (did you mean 'name'?); allowed: version, extends, name, "
        "schedule, state, log_dir, report, metrics, connections, checks, backups, sinks, notifiers, restore, defaults",
        f"{prefix}:4: checks[0].type: unknown check type 'nope'; installed: {', '.join(plugins.checks)} "
        "(see `angles plugins`)",
        f"{prefix}:5: checks[1].warn_above: expected an integer, got 'ten'",
        f"{prefix}:6: checks[2].unsynced: 'x=zz.1' has no known operator: use one of "
        "eq, neq, gt, gte, lt, lte, like, ilike, in, is",
        f"{prefix}:6: checks[2].connection: unknown connection 'missing'; defined: db",
        f"{prefix}:8: notifiers[0].extra: unknown key 'extra'; allowed: name, type, on, "
        "failure_threshold, remind_every, timeout_seconds, retries",
        f"{prefix}:8: notifiers[0].on[0]: must be one of warning, error, recovery, always, got 'sometimes'",
        f"{prefix}:9: notifiers[1].remind_every: expected a duration such as 30m, 6h or 1d, got '6 hours'",
        f"{prefix}:9: notifiers[1].name: the name 'n' is used twice in notifiers",
    ]


def test_missing_required_keys_and_version(tmp_path, plugins):
    text = "name: x\nchecks:\n  - {name: s, type: sync_backlog}\n"
    found = problems(write(tmp_path, text), plugins)
    prefix = str(tmp_path / "angles.yaml")
    assert f"{prefix}:1: missing required key 'version'" in found
    assert f"{prefix}:3: checks[0]: missing required key 'table'" in found
    assert f"{prefix}:3: checks[0]: missing required key 'connection'" in found


def test_backup_references_are_checked(tmp_path, plugins):
    text = """\
version: 1
connections:
  db: {type: sqlite, path: vault.db}
backups:
  - {name: b, connection: dbb, table: t, sinks: [locl]}
"""
    found = problems(write(tmp_path, text), plugins)
    prefix = str(tmp_path / "angles.yaml")
    assert found == [
        f"{prefix}:5: backups[0].connection: unknown connection 'dbb' (did you mean 'db'?); defined: db",
        f"{prefix}:5: backups[0].sinks[0]: unknown sink 'locl'; defined: none",
    ]


def test_a_bad_cron_schedule(tmp_path, plugins):
    found = problems(write(tmp_path, 'version: 1\nschedule: "every night"\n'), plugins)
    assert found == [
        f"{tmp_path / 'angles.yaml'}:2: schedule: 'every night' is not a cron expression (e.g. \"0 3 * * *\")"
    ]


def test_secret_values_never_appear_in_problems(tmp_path, plugins):
    text = 'version: 1\nname: demo\ndefaults: {timeout_seconds: "${API_TOKEN}"}\n'
    found = problems(write(tmp_path, text), plugins, {"API_TOKEN": "tok-very-secret"})
    assert found == [
        f"{tmp_path / 'angles.yaml'}:3: defaults.timeout_seconds: expected a number, got '***'"
    ]


def test_secrets_are_collected_from_secret_variables(tmp_path, plugins):
    text = 'version: 1\nname: "${SERVICE_KEY}-${PLAIN}"\n'
    pipeline = load_pipeline(
        write(tmp_path, text), plugins, {"SERVICE_KEY": "k-123456", "PLAIN": "visible"}
    )
    assert pipeline.secrets == {"k-123456"}


@pytest.mark.parametrize(
    ("path", "text"),
    [(("checks", 2, "warn_above"), "checks[2].warn_above"), (("a",), "a"), ((), "")],
)
def test_format_path(path, text):
    assert format_path(path) == text
