"""The ``angles`` command: a thin layer that turns arguments into calls of the core.

Each command lives in its own module (``angles.cli.<command>``) exposing ``command``;
modules are imported only when their command runs, so ``angles --help`` starts fast.
Plugins add commands through the ``angles_register_commands`` hook.
"""

from __future__ import annotations

import difflib
import importlib
import itertools
import json
import os
import sys
import traceback
from collections.abc import Sequence

import click

from angles.cli.invocation import Invocation
from angles.core.errors import AnglesError, ExitCode
from angles.core.version import DISTRIBUTION

#: The builtin commands, each the module ``angles.cli.<name>``.
COMMANDS = (
    "run",
    "check",
    "backup",
    "backups",
    "restore",
    "validate",
    "schedule",
    "history",
    "report",
    "plugins",
    "schema",
    "init",
    "keygen",
)
#: Options every command accepts, before or after its name.
GLOBAL_FLAGS = ("--debug", "--quiet", "-q", "--verbose", "-v")

EXAMPLES = """
Examples:

\b
  angles init --example      # a pipeline to try, on a SQLite vault
  angles validate            # check ./angles.yaml without contacting anything
  angles run --test          # prove that alerts arrive
  angles run                 # the daily job
  angles restore --table decision_vault

Shell completion: eval "$(_ANGLES_COMPLETE=bash_source angles)" in ~/.bashrc
(zsh_source for zsh, fish_source for fish).
"""


class AnglesGroup(click.Group):
    """A group whose builtin commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands) | set(_plugin_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            return importlib.import_module(f"angles.cli.{cmd_name}").command
        return self.commands.get(cmd_name) or _plugin_commands(ctx).get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise click.UsageError(f"No such command {name!r}.{hint}", ctx)
        return super().resolve_command(ctx, args)


def _plugin_commands(ctx: click.Context) -> dict[str, click.Command]:
    """Commands added by plugins, collected once per invocation (never kept globally)."""
    if "angles.plugin_commands" not in ctx.meta:
        from angles.core.plugins import broken_plugins, get_plugin_manager

        manager = get_plugin_manager()
        # The first place every command line loads plugins: say once what was skipped.
        for broken in broken_plugins(manager):
            click.secho(f"angles: warning: {broken.message}", err=True, fg="yellow")
        collector = click.Group()
        manager.hook.angles_register_commands(cli=collector)
        ctx.meta["angles.plugin_commands"] = collector.commands
    return ctx.meta["angles.plugin_commands"]


@click.group(
    cls=AnglesGroup,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name=DISTRIBUTION)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the result.")
@click.option("-v", "--verbose", is_flag=True, help="Print the log lines too (on stderr).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, verbose: bool) -> None:
    """Health checks, off-site backups and alerts for Supabase and Notion.

    PIPELINE defaults to ./angles.yaml. Exit codes: 0 ok, 1 warnings, 2 errors,
    3 angles could not run. Colour follows the terminal and NO_COLOR.
    """
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose cannot be combined")
    if os.environ.get("NO_COLOR"):
        ctx.color = False
    if not isinstance(ctx.obj, Invocation):  # the group used without main()
        ctx.obj = Invocation()
    ctx.obj.debug, ctx.obj.quiet, ctx.obj.verbose = debug, quiet, verbose


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (usable in-process by tests)."""
    args = _global_flags_first(list(sys.argv[1:] if argv is None else argv))
    debug = "--debug" in args
    as_json = _wants_json(args)
    invocation = Invocation()
    try:
        result = cli.main(args=args, prog_name="angles", standalone_mode=False, obj=invocation)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        return _fail(invocation, "aborted", None, ExitCode.ERROR, as_json)
    except click.ClickException as exc:
        if as_json:
            return _fail(invocation, exc.format_message(), None, ExitCode.INTERNAL, True)
        exc.show()
        return ExitCode.INTERNAL
    except AnglesError as exc:
        if debug:
            traceback.print_exc()
        return _fail(invocation, exc.message, exc.hint, exc.exit_code, as_json, full=str(exc))
    except KeyboardInterrupt:
        return _fail(invocation, "interrupted", None, ExitCode.INTERNAL, as_json)
    except Exception as exc:  # an internal error: one line unless --debug
        if debug:
            traceback.print_exc()
        return _fail(
            invocation,
            f"internal error: {type(exc).__name__}: {exc}",
            "run with --debug for details",
            ExitCode.INTERNAL,
            as_json,
            full=f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
        )
    return int(result or 0)


def _global_flags_first(args: list[str]) -> list[str]:
    """Move ``--debug``, ``--quiet`` and ``--verbose`` in front of the command, so that
    ``angles run --debug`` means ``angles --debug run`` (never past a ``--``)."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in args[:end] if a not in GLOBAL_FLAGS]
    return [*flags, *rest, *args[end:]]


def _wants_json(args: list[str]) -> bool:
    pairs = itertools.pairwise(args)
    return "--format=json" in args or ("--format", "json") in pairs


def _fail(
    invocation: Invocation,
    message: str,
    hint: str | None,
    code: int,
    as_json: bool,
    *,
    full: str | None = None,
) -> int:
    """Report a failure that left no result: one JSON document, or ``ERROR:`` lines,
    redacted with the secrets of the pipeline the command loaded (if it got that far)."""
    redact = invocation.redact
    if as_json:
        error = {"message": message, "hint": hint, "exit_code": int(code)}
        click.echo(json.dumps({"error": redact(error)}, ensure_ascii=False))
    else:
        for line in redact.text(full or message).splitlines() or [""]:
            click.secho(f"ERROR: {line}", fg="red", err=True)
    return code
