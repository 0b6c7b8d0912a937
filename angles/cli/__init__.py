"""The ``angles`` command: a thin layer that turns arguments into calls of the core.

Each command lives in its own module (``angles.cli.<command>``) exposing ``command``;
modules are imported only when their command runs, so ``angles --help`` starts fast.
Plugins add commands through the ``angles_register_commands`` hook.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Sequence

import click

from angles.core.errors import AnglesError, ExitCode
from angles.core.version import DISTRIBUTION

#: command name -> module under angles.cli
COMMANDS = {
    "run": "run",
    "check": "check",
    "backup": "backup",
    "backups": "backups",
    "restore": "restore",
    "validate": "validate",
    "schedule": "schedule",
    "history": "history",
    "plugins": "plugins",
    "schema": "schema",
    "init": "init",
}


class AnglesGroup(click.Group):
    """A group whose builtin commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = {name for name in COMMANDS if _module_exists(COMMANDS[name])}
        return sorted(names | set(self.commands) | set(_plugin_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and _module_exists(COMMANDS[cmd_name]):
            return importlib.import_module(f"angles.cli.{COMMANDS[cmd_name]}").command
        return self.commands.get(cmd_name) or _plugin_commands(ctx).get(cmd_name)


def _module_exists(module: str) -> bool:
    return importlib.util.find_spec(f"angles.cli.{module}") is not None


def _plugin_commands(ctx: click.Context) -> dict[str, click.Command]:
    """Commands added by plugins, collected once per invocation (never kept globally)."""
    if "angles.plugin_commands" not in ctx.meta:
        from angles.core.plugins import get_plugin_manager

        collector = click.Group()
        get_plugin_manager().hook.angles_register_commands(cli=collector)
        ctx.meta["angles.plugin_commands"] = collector.commands
    return ctx.meta["angles.plugin_commands"]


@click.group(cls=AnglesGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=DISTRIBUTION)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Health checks, off-site backups and alerts for Supabase and Notion.

    PIPELINE defaults to ./angles.yaml. Exit codes: 0 ok, 1 warnings, 2 errors,
    3 angles could not run.
    """
    ctx.obj = {"debug": debug}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (usable in-process by tests)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="angles", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        _error("aborted")
        return ExitCode.ERROR
    except click.ClickException as exc:
        exc.show()
        return ExitCode.INTERNAL
    except AnglesError as exc:
        if debug:
            traceback.print_exc()
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return ExitCode.INTERNAL
    except Exception as exc:  # an internal error: one line unless --debug
        if debug:
            traceback.print_exc()
        _error(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return ExitCode.INTERNAL
    return int(result or 0)


def _error(message: str) -> None:
    lines = message.splitlines() or [""]
    click.secho(f"ERROR: {lines[0]}", fg="red", err=True)
    for line in lines[1:]:
        click.secho(f"ERROR: {line}", fg="red", err=True)
