"""Hostile or broken pipeline files get one clear line each, bounded in time and memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from angles.core.config import MAX_PIPELINE_BYTES, MAX_PIPELINE_VALUES, load_pipeline
from angles.core.errors import MAX_PROBLEMS_SHOWN, PipelineError
from angles.core.plugins import get_plugin_manager, load_plugins


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(get_plugin_manager())


def problems(path: Path, plugins) -> list[str]:
    with pytest.raises(PipelineError) as caught:
        load_pipeline(path, plugins, {})
    return [str(p) for p in caught.value.problems]


def alias_bomb(levels: int = 12) -> str:
    """The "billion laughs": each anchor repeats the previous one nine times (~1.7 KB)."""
    lines = ["version: 1", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    lines.append(f"name: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_rejected_naming_where_it_expands(tmp_path, plugins):
    path = tmp_path / "angles.yaml"
    path.write_text(alias_bomb())
    assert len(path.read_bytes()) < 2000
    [problem] = problems(path, plugins)
    assert problem.startswith(f"{path}:")
    assert f"the file expands to more than {MAX_PIPELINE_VALUES:,} values (YAML aliases" in problem


def test_a_merge_key_bomb_is_rejected_too(tmp_path, plugins):
    lines = ["version: 1", "b0: &b0 {k0: 1}"]
    lines += [f"b{i}: &b{i} {{<<: [*b{i - 1}], x{i}: *b{i - 1}}}" for i in range(1, 30)]
    path = tmp_path / "angles.yaml"
    path.write_text("\n".join(lines) + "\n")
    [problem] = problems(path, plugins)
    assert "the file expands to more than" in problem


def test_ordinary_anchors_and_merge_keys_still_work(tmp_path, plugins):
    path = tmp_path / "angles.yaml"
    path.write_text(
        "version: 1\n"
        "defaults: {timeout_seconds: 5}\n"
        "notifiers:\n"
        "  - &console {name: first, type: console}\n"
        "  - {<<: *console, name: second}\n"
    )
    pipeline = load_pipeline(path, plugins, {})
    assert [n["name"] for n in pipeline.notifiers] == ["first", "second"]
    assert pipeline.notifiers[1]["type"] == "console"


def test_an_oversized_file_is_rejected_before_it_is_parsed(tmp_path, plugins):
    path = tmp_path / "angles.yaml"
    path.write_text("version: 1\n" + "# a comment that goes on and on\n" * 250_000)
    size = path.stat().st_size
    assert problems(path, plugins) == [
        f"{path}: the file is {size:,} bytes; a pipeline file may be at most "
        f"{MAX_PIPELINE_BYTES:,} bytes"
    ]


def test_an_oversized_base_file_is_reported_at_its_extends(tmp_path, plugins):
    (tmp_path / "base.yaml").write_text("version: 1\n" + "#" * MAX_PIPELINE_BYTES)
    path = tmp_path / "angles.yaml"
    path.write_text("name: prod\nextends: base.yaml\n")
    [problem] = problems(path, plugins)
    assert problem.startswith(f"{path}:2: extends: {tmp_path / 'base.yaml'} is ")


def test_at_most_twenty_problems_are_printed_then_a_count(angles_cli, pipeline_file):
    keys = "".join(f"  unknown_{i}: 1\n" for i in range(50))
    result = angles_cli("validate", pipeline_file(f"version: 1\ndefaults:\n{keys}"))
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert len(lines) == MAX_PROBLEMS_SHOWN + 1
    assert all("defaults.unknown_" in line for line in lines[:-1])
    assert lines[-1] == "ERROR: and 30 more problems: fix these, then `angles validate` again"
    listed = angles_cli(
        "validate", pipeline_file(f"version: 1\ndefaults:\n{keys}"), "--format", "json"
    )
    assert len(listed.json()["problems"]) == 50  # programs get every one


def test_sinks_written_as_a_string_is_one_problem(tmp_path, plugins):
    path = tmp_path / "angles.yaml"
    path.write_text(
        "version: 1\n"
        "connections: {db: {type: sqlite, path: vault.db}}\n"
        "sinks: {local: {type: local}}\n"
        "backups:\n"
        "  - {name: t, connection: db, table: t, sinks: local}\n"
    )
    assert problems(path, plugins) == [f"{path}:5: backups[0].sinks: expected a list, got 'local'"]


def test_a_check_without_a_name_is_reported_once(tmp_path, plugins):
    path = tmp_path / "angles.yaml"
    path.write_text("version: 1\nchecks:\n  - {type: http, url: 'http://127.0.0.1:9/'}\n")
    assert problems(path, plugins) == [f"{path}:3: checks[0]: missing required key 'name'"]


def test_a_folder_given_as_the_pipeline_is_one_line(angles_cli, tmp_path):
    (tmp_path / "conf").mkdir()
    for command in ("validate", "run", "check", "history"):
        result = angles_cli(command, tmp_path / "conf")
        assert result.exit_code == 3
        assert result.stderr == (
            f"ERROR: {tmp_path / 'conf'}: a folder, not a pipeline file "
            f"(give the file, e.g. {tmp_path / 'conf' / 'angles.yaml'})\n"
        ), command
