"""Every hook an angles plugin can implement.

A plugin is a module (or object) with functions decorated by ``angles.hookimpl`` whose
names are the hooks below. Builtins and installed packages (entry-point group ``angles``)
are registered the same way. Hooks are always called with keyword arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from angles.core.plugins import Register

hookspec = pluggy.HookspecMarker("angles")
hookimpl = pluggy.HookimplMarker("angles")


@hookspec
def angles_register_connections(register: Register) -> None:
    """Register connection types.

    Fires once when the plugins are loaded. Call ``register(cls)`` with each
    :class:`angles.Connection` subclass the plugin provides; ``cls.type`` is the name used
    as ``type:`` under ``connections:`` in a pipeline. Returns nothing.
    """


@hookspec
def angles_register_checks(register: Register) -> None:
    """Register check types.

    Fires once when the plugins are loaded. Call ``register(cls)`` with each
    :class:`angles.Check` subclass; ``cls.type`` is the name used as ``type:`` in a
    ``checks:`` entry. Returns nothing.
    """


@hookspec
def angles_register_sinks(register: Register) -> None:
    """Register sink types (places that store backup files).

    Fires once when the plugins are loaded. Call ``register(cls)`` with each
    :class:`angles.Sink` subclass; ``cls.type`` is the name used as ``type:`` under
    ``sinks:``. Returns nothing.
    """


@hookspec
def angles_register_notifiers(register: Register) -> None:
    """Register notifier types (ways of telling people about a run).

    Fires once when the plugins are loaded. Call ``register(cls)`` with each
    :class:`angles.Notifier` subclass; ``cls.type`` is the name used as ``type:`` in a
    ``notifiers:`` entry. Returns nothing.
    """


@hookspec
def angles_register_commands(cli: click.Group) -> None:
    """Add commands to the ``angles`` command line.

    Fires when the command line is built, before arguments are parsed. Add
    :mod:`click` commands with ``cli.add_command(...)``. Returns nothing.
    """
