"""Finding plugins: the plugin manager factory and one registry per plugin kind."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pluggy

from angles.core import hookspecs
from angles.core.errors import PluginError
from angles.core.kinds import KINDS
from angles.core.plugin import Plugin
from angles.core.version import DISTRIBUTION, version

ENTRY_POINT_GROUP = "angles"
DISABLE_VARIABLE = "ANGLES_DISABLE_PLUGINS"
EXTRA_VARIABLE = "ANGLES_PLUGINS"
TRACE_VARIABLE = "ANGLES_TRACE_PLUGINS"

#: The builtin plugins, registered exactly like installed ones.
BUILTIN_PLUGINS = (
    "angles.plugins.connections.sqlite",
    "angles.plugins.connections.supabase",
    "angles.plugins.connections.postgres",
    "angles.plugins.connections.notion",
    "angles.plugins.checks.sync_backlog",
    "angles.plugins.checks.supabase",
    "angles.plugins.checks.notion",
    "angles.plugins.checks.backup_freshness",
    "angles.plugins.checks.http",
    "angles.plugins.checks.notion_sync",
    "angles.plugins.checks.restore_drill",
    "angles.plugins.sinks.local",
    "angles.plugins.sinks.github",
    "angles.plugins.notifiers.console",
    "angles.plugins.notifiers.slack",
    "angles.plugins.notifiers.smtp",
    "angles.plugins.notifiers.webhook",
    "angles.plugins.notifiers.heartbeat",
    "angles.plugins.notifiers.apprise",
)

Register = Callable[[type[Plugin]], None]


def _names(variable: str) -> list[str]:
    return [name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()]


def disabled_plugins() -> set[str]:
    """Plugin names listed in ``ANGLES_DISABLE_PLUGINS`` (comma-separated)."""
    return set(_names(DISABLE_VARIABLE))


@dataclass(frozen=True)
class BrokenPlugin:
    """An installed plugin whose entry point cannot be loaded (a package half removed,
    metadata left behind): registered in its place, with no hooks, so that angles runs
    without it and says why."""

    name: str
    distribution: str
    version: str
    error: str

    @property
    def message(self) -> str:
        return (
            f"plugin {self.name!r} ({self.distribution} {self.version}) is skipped: it "
            f"cannot be loaded ({self.error}); reinstall or uninstall {self.distribution}, "
            f"or set {DISABLE_VARIABLE}={self.name}"
        )


def broken_plugins(manager: pluggy.PluginManager) -> list[BrokenPlugin]:
    """The installed plugins that could not be loaded into ``manager``."""
    return [plugin for plugin in manager.get_plugins() if isinstance(plugin, BrokenPlugin)]


def _set_aside_broken_entry_points(manager: pluggy.PluginManager) -> None:
    """Register a :class:`BrokenPlugin` under the name of every entry point that fails to
    load, so that pluggy's loader, which stops at the first failure, skips it."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if manager.is_blocked(entry.name) or manager.get_plugin(entry.name) is not None:
            continue
        try:
            entry.load()
        except Exception as exc:
            dist = entry.dist
            broken = BrokenPlugin(
                entry.name,
                dist.name if dist else entry.value,
                dist.version if dist else "?",
                f"{type(exc).__name__}: {exc}",
            )
            manager.register(broken, name=entry.name)


def get_plugin_manager(*, entry_points: bool = True) -> pluggy.PluginManager:
    """A new plugin manager with the hook specs, installed plugins and builtins.

    With ``ANGLES_TRACE_PLUGINS`` set, every hook call is printed on standard error.

    Nothing is registered at import time; each call builds a fresh manager, which is
    what tests do too. Plugins named in ``ANGLES_DISABLE_PLUGINS`` are blocked, and an
    implementation of a hook that does not exist is rejected. Modules named in
    ``ANGLES_PLUGINS`` (comma-separated) are registered too, which is how a plugin is
    tried without packaging it.
    """
    manager = pluggy.PluginManager("angles")
    manager.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_VARIABLE):
        # pluggy's own tracing: every hook call and its result, on standard error.
        manager.trace.root.setwriter(sys.stderr.write)
        manager.enable_tracing()
    for name in disabled_plugins():
        manager.set_blocked(name)
    if entry_points:
        _set_aside_broken_entry_points(manager)
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for module_name in (*_names(EXTRA_VARIABLE), *BUILTIN_PLUGINS):
        if not manager.is_blocked(module_name) and manager.get_plugin(module_name) is None:
            manager.register(_import(module_name), name=module_name)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin {manager.get_name(exc.plugin)!r} implements a hook that does not exist: {exc}",
            hint="check the hook names against `angles.core.hookspecs`",
        ) from exc
    return manager


@dataclass
class Registry:
    """The plugin types of one kind, by type name."""

    kind: str
    base: type[Plugin]
    types: dict[str, type[Plugin]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    #: How an error names a plugin: with its distribution when it was installed.
    labels: dict[str, str] = field(default_factory=dict)

    def add(self, cls: type[Plugin], plugin_name: str) -> None:
        """Register ``cls``; two plugins claiming one type name is an error naming both."""
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise PluginError(
                f"plugin {plugin_name!r} registered {cls!r} as a {self.kind}, "
                f"but it is not a subclass of angles.{self.base.__name__}"
            )
        if not cls.type:
            raise PluginError(f"plugin {plugin_name!r}: {cls.__name__} has no `type` name")
        if cls.type in self.types:
            raise PluginError(
                f"two plugins register the {self.kind} type {cls.type!r}: "
                f"{self._label(self.owners[cls.type])} and {self._label(plugin_name)}",
                hint=f"disable one with {DISABLE_VARIABLE}",
            )
        self.types[cls.type] = cls
        self.owners[cls.type] = plugin_name

    def get(self, type_name: str) -> type[Plugin] | None:
        return self.types.get(type_name)

    def _label(self, plugin_name: str) -> str:
        return self.labels.get(plugin_name, plugin_name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.types))

    def __contains__(self, type_name: object) -> bool:
        return type_name in self.types


@dataclass
class Plugins:
    """The loaded plugins: the manager and a registry per kind."""

    manager: pluggy.PluginManager
    registries: dict[str, Registry]

    @property
    def connections(self) -> Registry:
        return self.registries["connection"]

    @property
    def checks(self) -> Registry:
        return self.registries["check"]

    @property
    def sinks(self) -> Registry:
        return self.registries["sink"]

    @property
    def notifiers(self) -> Registry:
        return self.registries["notifier"]

    def describe(self) -> list[dict[str, Any]]:
        """Every plugin: name, package, version and the types it adds per kind."""
        distributions = {id(plugin): dist for plugin, dist in self.manager.list_plugin_distinfo()}
        angles_version = version()
        rows = []
        for name, plugin in sorted(self.manager.list_name_plugin(), key=lambda item: item[0]):
            if plugin is None:
                continue
            if isinstance(plugin, BrokenPlugin):
                rows.append(
                    {
                        "name": name,
                        "package": plugin.distribution,
                        "version": plugin.version,
                        "types": {},
                        "error": plugin.message,
                    }
                )
                continue
            dist = distributions.get(id(plugin))
            types = {
                kind: sorted(t for t, owner in registry.owners.items() if owner == name)
                for kind, registry in self.registries.items()
            }
            rows.append(
                {
                    "name": name,
                    "package": dist.project_name if dist else DISTRIBUTION,
                    "version": dist.version if dist else angles_version,
                    "types": {kind: t for kind, t in types.items() if t},
                }
            )
        return rows


def load_plugins(manager: pluggy.PluginManager | None = None) -> Plugins:
    """Ask every plugin for its types and fill one registry per kind.

    The hooks are called through pluggy, once per plugin (so that each registration is
    known to come from its plugin): implementations that take fewer arguments, wrappers
    and tracing behave as pluggy documents.
    """
    manager = manager or get_plugin_manager()
    labels = {name: _label(manager, name, plugin) for name, plugin in manager.list_name_plugin()}
    registries = {kind.name: Registry(kind.name, kind.base, labels=labels) for kind in KINDS}
    plugins = [(name, plugin) for name, plugin in manager.list_name_plugin() if plugin is not None]
    for kind in KINDS:
        for name, plugin in plugins:
            others = [other for _, other in plugins if other is not plugin]
            own_hook = manager.subset_hook_caller(kind.hook, remove_plugins=others)
            own_hook(register=_registrar(registries[kind.name], name))
    return Plugins(manager, registries)


def _label(manager: pluggy.PluginManager, name: str, plugin: object) -> str:
    """``angles_disk (angles-disk 1.0)`` for an installed plugin; builtins are angles'."""
    for registered, dist in manager.list_plugin_distinfo():
        if registered is plugin:
            return f"{name} ({dist.project_name} {dist.version})"
    if name.startswith("angles.plugins."):
        return f"{name} ({DISTRIBUTION} {version()})"
    return name


def _registrar(registry: Registry, plugin_name: str) -> Register:
    def register(cls: type[Plugin]) -> None:
        registry.add(cls, plugin_name)

    return register


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(
            f"cannot import plugin {module_name!r}: {exc}",
            hint=f"check {EXTRA_VARIABLE}, or disable it with {DISABLE_VARIABLE}",
        ) from exc
