"""Options and helpers shared by the commands."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from angles.cli.invocation import invocation
from angles.core.context import Context
from angles.core.logging import Logs, console_stream
from angles.core.pipeline import Pipeline
from angles.core.plugins import Plugins, broken_plugins, load_plugins
from angles.core.redact import Redactor

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_PIPELINE = "angles.yaml"


def examples(*lines: str) -> str:
    """A help epilog: ``Examples:`` and one command a line, kept as written."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def pipeline_argument(function: F) -> F:
    """The optional PIPELINE argument (default ./angles.yaml)."""
    return click.argument(
        "pipeline",
        required=False,
        default=DEFAULT_PIPELINE,
        # A folder is the loader's to report, as one line (not click's usage banner).
        type=click.Path(path_type=Path),
    )(function)


def format_option(function: F) -> F:
    """``--format text|json``."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="text for people, json for programs (one document on stdout).",
    )(function)


def load(
    path: Path, plugins: Plugins | None = None, *, offline: bool = False
) -> tuple[Pipeline, Plugins]:
    """Load plugins and the pipeline (raising PipelineError); from then on, output is
    redacted with the pipeline's secrets. ``offline`` commands contact no service, so
    variables unset in plugins' settings do not stop them."""
    from angles.core.config import load_pipeline

    plugins = plugins or load_plugins()
    pipeline = load_pipeline(path, plugins, plugin_variables=not offline)
    invocation().redact = Redactor(pipeline.secrets)
    return pipeline, plugins


def make_logs(pipeline: Pipeline) -> Logs:
    """The pipeline's log files, and log lines on the console: at a terminal from warnings
    up; with ``--verbose`` every line wherever stderr goes; with ``--quiet`` none."""
    flags = invocation()
    console = None if flags.quiet else console_stream(always=flags.verbose)
    return Logs(
        pipeline.log_dir,
        Redactor(pipeline.secrets),
        console=console,
        console_level="info" if flags.verbose else "warning",
    )


def open_context(
    path: Path, *, test: bool = False, output_format: str = "text", offline: bool = False
) -> Context:
    """A run context for the pipeline at ``path``; close it when done.

    The state store and the log folder are checked (and opened) first, so a command
    that cannot keep its history or logs stops before contacting any service. Long
    operations draw a progress bar when a person watches: standard error is a
    terminal, the output is text and not ``--quiet``.
    """
    from angles.state.preflight import prepare

    pipeline, plugins = load(path, offline=offline)
    prepare(pipeline)
    logs = make_logs(pipeline)
    watched = output_format == "text" and not quiet() and sys.stderr.isatty()
    if watched:
        from angles.cli.progress import terminal_progress

        context = Context(pipeline, plugins, test=test, progress=terminal_progress, logs=logs)
    else:
        context = Context(pipeline, plugins, test=test, logs=logs)
    # An unattended run says in its log which installed plugin it ran without.
    for broken in broken_plugins(plugins.manager):
        context.logger("plugins").warning(
            "plugin skipped", plugin=broken.name, error=broken.message
        )
    return context


@contextlib.contextmanager
def pipeline_locked(context: Context) -> Iterator[None]:
    """Hold the pipeline's lock in the state store for the block: another run, check,
    backup or live restore of the pipeline exits 3 at once, naming this process.

    A ``--test`` run takes no lock: it writes nothing, and proving that alerts arrive
    must work while the nightly run is under way.
    """
    from angles.state.lock import pipeline_lock

    if context.test:
        yield
        return
    log = context.logger("runs")
    with pipeline_lock(context.pipeline).hold(on_problem=lambda message: log.warning(message)):
        yield


def quiet() -> bool:
    """Whether ``--quiet`` asks for the result alone."""
    return invocation().quiet


def echo_json(data: Any) -> None:
    """Print one JSON document on stdout, secrets redacted."""
    clean = invocation().redact(data)
    click.echo(json.dumps(clean, indent=2, ensure_ascii=False, default=str))


def echo(text: str = "", *, err: bool = False, **style: Any) -> None:
    """Print text for people on stdout (``err``: on stderr), secrets redacted."""
    click.secho(invocation().redact.text(text), err=err, **style)


def is_terminal() -> bool:
    """Whether a person is at the keyboard (stdin and stdout are terminals)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirm_live_restore(question: str, show_plan: Callable[[], None]) -> None:
    """Show the plan on stderr and ask; no terminal to ask on, or a no, refuses the
    restore before anything is written."""
    from angles.core.errors import RestoreRefused

    if not is_terminal():
        raise RestoreRefused(
            "a live restore needs confirmation and there is no terminal to ask on",
            hint="add --yes to restore without asking",
        )
    show_plan()
    if not click.confirm(question, default=False, err=True):
        raise RestoreRefused("the live restore was not confirmed; nothing was changed")


STATUS_COLOURS = {"ok": "green", "warning": "yellow", "error": "red"}


def styled_status(status: str, width: int = 0) -> str:
    """The status word padded to ``width``, coloured on a terminal."""
    return click.style(status.upper().ljust(width), fg=STATUS_COLOURS.get(status), bold=True)


def split_names(args: tuple[str, ...]) -> tuple[str, list[str]]:
    """``[PIPELINE] [NAME]...``: the first word is the pipeline when it names a YAML file."""
    if args and (args[0].endswith((".yaml", ".yml")) or Path(args[0]).exists()):
        return args[0], list(args[1:])
    return DEFAULT_PIPELINE, list(args)
