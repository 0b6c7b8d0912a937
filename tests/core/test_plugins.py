"""Plugin discovery: builtins and installed packages alike, duplicates, disabling, bad hooks."""

from __future__ import annotations

import pytest

from angles import Check, CheckResult, Connection, Notifier, Sink, hookimpl
from angles.core.errors import PluginError
from angles.core.plugins import BUILTIN_PLUGINS, get_plugin_manager, load_plugins


class ShoutNotifier(Notifier):
    type = "console"  # the builtin console notifier's name

    def send(self, notification):
        pass


class DuplicatePlugin:
    @hookimpl
    def angles_register_notifiers(self, register):
        register(ShoutNotifier)


class MisnamedHookPlugin:
    @hookimpl
    def angles_register_chekcs(self, register):
        pass


class NotACheck:
    type = "nope"


class WrongClassPlugin:
    @hookimpl
    def angles_register_checks(self, register):
        register(NotACheck)


class PingCheck(Check):
    type = "ping"

    def run(self):
        return CheckResult.ok("pong")


class PingPlugin:
    @hookimpl
    def angles_register_checks(self, register):
        register(PingCheck)


def test_every_builtin_is_registered_under_its_module_name():
    manager = get_plugin_manager()
    names = {name for name, _ in manager.list_name_plugin()}
    assert set(BUILTIN_PLUGINS) <= names


def test_builtin_types_are_in_their_registries():
    plugins = load_plugins()
    assert "sqlite" in plugins.connections
    assert "sync_backlog" in plugins.checks
    assert "local" in plugins.sinks
    assert "console" in plugins.notifiers


def test_the_entry_point_plugin_package_is_loaded():
    plugins = load_plugins()
    assert plugins.checks.owners["static"] == "example"
    assert plugins.notifiers.owners["jsonl"] == "example"
    row = next(r for r in plugins.describe() if r["name"] == "example")
    assert row == {
        "name": "example",
        "package": "angles-example-plugin",
        "version": "1.2.0",
        "types": {"check": ["static"], "notifier": ["jsonl"]},
    }


def test_builtins_are_described_as_part_of_angles():
    row = next(
        r for r in load_plugins().describe() if r["name"] == "angles.plugins.checks.sync_backlog"
    )
    assert row["package"] == "angles-monitor"
    assert row["types"] == {"check": ["sync_backlog"]}


def test_two_plugins_claiming_one_type_name_are_refused_naming_both():
    manager = get_plugin_manager()
    manager.register(DuplicatePlugin(), name="shouty")
    with pytest.raises(PluginError) as caught:
        load_plugins(manager)
    message = str(caught.value)
    assert "two plugins register the notifier type 'console'" in message
    assert "angles.plugins.notifiers.console (angles-monitor " in message and "shouty" in message


class EntryPointDuplicate:
    @hookimpl
    def angles_register_checks(self, register):
        register(type("Static", (Check,), {"type": "static", "run": lambda self: None}))


def test_a_duplicate_names_the_distribution_of_an_installed_plugin():
    manager = get_plugin_manager()
    manager.register(EntryPointDuplicate(), name="copycat")
    with pytest.raises(PluginError) as caught:
        load_plugins(manager)
    message = str(caught.value)
    assert "example (angles-example-plugin 1.2.0)" in message and "copycat" in message


class FewerArguments:
    """An implementation may take fewer arguments than the hook offers (pluggy's rule)."""

    @hookimpl
    def angles_register_checks(self):
        self.called = True


class Wrapper:
    """A wrapper sees the registrations of its own plugin go through."""

    def __init__(self):
        self.seen = []

    @hookimpl(wrapper=True)
    def angles_register_checks(self, register):
        self.seen.append("before")
        result = yield
        self.seen.append("after")
        return result

    @hookimpl
    def angles_register_notifiers(self, register):
        register(QuietNotifier)


class QuietNotifier(Notifier):
    type = "quiet"


def test_hooks_are_called_through_pluggy():
    manager = get_plugin_manager()
    fewer, wrapper = FewerArguments(), Wrapper()
    manager.register(fewer, name="fewer")
    manager.register(wrapper, name="wrapper")
    plugins = load_plugins(manager)
    assert fewer.called
    assert wrapper.seen == ["before", "after"]
    assert plugins.notifiers.owners["quiet"] == "wrapper"


def test_plugin_tracing_prints_every_hook_call(monkeypatch, capsys):
    monkeypatch.setenv("ANGLES_TRACE_PLUGINS", "1")
    load_plugins(get_plugin_manager())
    traced = capsys.readouterr().err
    assert "angles_register_checks" in traced and "angles_register_sinks" in traced


def test_a_registered_class_of_the_wrong_kind_is_refused():
    manager = get_plugin_manager()
    manager.register(WrongClassPlugin(), name="wrong")
    with pytest.raises(PluginError, match=r"not a subclass of angles\.Check"):
        load_plugins(manager)


def test_an_implementation_of_an_unknown_hook_is_refused(register_plugin):
    register_plugin(MisnamedHookPlugin())
    with pytest.raises(PluginError, match="implements a hook that does not exist"):
        get_plugin_manager()


def test_disabled_plugins_are_not_loaded(monkeypatch):
    monkeypatch.setenv("ANGLES_DISABLE_PLUGINS", "example, angles.plugins.notifiers.console")
    plugins = load_plugins()
    assert "console" not in plugins.notifiers
    assert "static" not in plugins.checks
    assert "sync_backlog" in plugins.checks


def test_a_plugin_registered_for_one_test_is_loaded(register_plugin):
    name = register_plugin(PingPlugin())
    plugins = load_plugins()
    assert plugins.checks.owners["ping"] == name


def test_an_unimportable_extra_plugin_names_the_variable(monkeypatch):
    monkeypatch.setenv("ANGLES_PLUGINS", "no_such_module_here")
    with pytest.raises(PluginError, match="cannot import plugin 'no_such_module_here'") as caught:
        get_plugin_manager()
    assert "ANGLES_PLUGINS" in str(caught.value)


def test_each_call_builds_a_fresh_manager():
    assert get_plugin_manager() is not get_plugin_manager()


def test_every_builtin_schema_forbids_unknown_keys_and_describes_every_property():
    plugins = load_plugins()
    for registry in plugins.registries.values():
        for type_name, cls in registry.types.items():
            if registry.owners[type_name] not in BUILTIN_PLUGINS:
                continue
            schema = cls.config_schema
            assert schema.get("additionalProperties") is False, (registry.kind, type_name)
            for key, spec in schema.get("properties", {}).items():
                assert spec.get("description"), (registry.kind, type_name, key)
            assert cls.description, (registry.kind, type_name)


class MemoryConnection(Connection):
    """A connection that holds no tables."""

    type = "memory"


class NullSink(Sink):
    type = "null"


class KindsPlugin:
    @hookimpl
    def angles_register_connections(self, register):
        register(MemoryConnection)

    @hookimpl
    def angles_register_sinks(self, register):
        register(NullSink)


def test_connection_and_sink_types_from_a_plugin(register_plugin, pipeline_file, angles_plugins):
    name = register_plugin(KindsPlugin())
    plugins = angles_plugins()
    assert plugins.connections.owners["memory"] == name
    assert plugins.sinks.owners["null"] == name


def test_a_check_refuses_a_connection_of_the_wrong_kind(register_plugin, pipeline_file, angles_cli):
    register_plugin(KindsPlugin())
    path = pipeline_file(
        """\
        version: 1
        connections:
          mem: {type: memory}
        checks:
          - {name: sync, type: sync_backlog, connection: mem, table: t, unsynced: "a=is.false"}
        sinks:
          nothing: {type: "null"}
        backups:
          - {name: b, connection: mem, table: t, sinks: [nothing]}
        """
    )
    result = angles_cli("validate", path)
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"ERROR: {path}:5: checks[0].connection: a sync_backlog check needs a database connection; "
        "'mem' is a memory connection",
        f"ERROR: {path}:9: backups[0].connection: 'mem' is a memory connection, which holds no tables",
    ]


@pytest.fixture
def half_removed_plugin(tmp_path):
    """An installed distribution whose plugin module is gone (``pip`` interrupted, or a
    package removed by hand): its metadata still names an ``angles`` entry point."""
    site = tmp_path / "site"
    info = site / "angles_gone-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: angles-gone\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[angles]\ngone = angles_gone_plugin\n")
    return site


def test_a_plugin_that_cannot_be_loaded_is_skipped_and_named(half_removed_plugin, monkeypatch):
    monkeypatch.syspath_prepend(str(half_removed_plugin))
    plugins = load_plugins()
    assert "console" in plugins.notifiers  # angles still works, with every builtin
    (row,) = [r for r in plugins.describe() if r["name"] == "gone"]
    assert row["package"] == "angles-gone" and row["types"] == {}
    assert "No module named 'angles_gone_plugin'" in row["error"]
    assert "ANGLES_DISABLE_PLUGINS=gone" in row["error"]


def test_commands_run_beside_a_plugin_that_cannot_be_loaded(half_removed_plugin, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "angles" / "examples" / "local.yaml"
    environment = {**os.environ, "PYTHONPATH": str(half_removed_plugin)}

    def angles(*args):
        command = [sys.executable, "-m", "angles", *args]
        return subprocess.run(
            command, capture_output=True, text=True, env=environment, cwd=tmp_path
        )

    shown = angles("--help")
    assert shown.returncode == 0, shown.stderr
    assert "Usage: angles" in shown.stdout
    assert "plugin 'gone' (angles-gone 1.0) is skipped" in shown.stderr
    assert "internal error" not in shown.stderr
    listed = angles("plugins")
    assert listed.returncode == 0 and "BROKEN" in listed.stdout
    assert angles("validate", str(example)).returncode == 0
    assert angles("schema").returncode == 0
