"""Options and helpers shared by the commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from angles.core import logging as angles_logging
from angles.core.context import Context
from angles.core.pipeline import Pipeline
from angles.core.plugins import Plugins, load_plugins
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
        type=click.Path(path_type=Path, dir_okay=False),
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


def options() -> dict[str, Any]:
    """The global options of this invocation (``--quiet``, ``--verbose``, ``--debug``)."""
    context = click.get_current_context(silent=True)
    found = context.find_root().obj if context is not None else None
    return found or {}


def load(path: Path, plugins: Plugins | None = None) -> tuple[Pipeline, Plugins]:
    """Load plugins and the pipeline (raising PipelineError), and start logging.

    Log lines reach the console at a terminal from warnings up; ``--verbose`` shows every
    line wherever stderr goes, ``--quiet`` none.
    """
    from angles.core.config import load_pipeline

    plugins = plugins or load_plugins()
    pipeline = load_pipeline(path, plugins)
    flags = options()
    console = (
        None
        if flags.get("quiet")
        else angles_logging.console_stream(always=flags.get("verbose", False))
    )
    angles_logging.configure(
        pipeline.log_dir,
        Redactor(pipeline.secrets),
        console=console,
        console_level="info" if flags.get("verbose") else "warning",
    )
    return pipeline, plugins


def open_context(path: Path, *, test: bool = False, output_format: str = "text") -> Context:
    """A run context for the pipeline at ``path``; close it when done.

    Long operations draw a progress bar when a person watches: standard error is a
    terminal, the output is text and not ``--quiet``.
    """
    pipeline, plugins = load(path)
    watched = output_format == "text" and not options().get("quiet") and sys.stderr.isatty()
    if watched:
        from angles.cli.progress import terminal_progress

        return Context(pipeline, plugins, test=test, progress=terminal_progress)
    return Context(pipeline, plugins, test=test)


def quiet() -> bool:
    """Whether ``--quiet`` asks for the result alone."""
    return bool(options().get("quiet"))


def echo_json(data: Any) -> None:
    """Print one JSON document on stdout, secrets redacted."""
    clean = angles_logging.redactor()(data)
    click.echo(json.dumps(clean, indent=2, ensure_ascii=False, default=str))


def echo(text: str = "", **style: Any) -> None:
    """Print text for people on stdout, secrets redacted."""
    click.secho(angles_logging.redactor().text(text), **style)


def is_terminal() -> bool:
    """Whether a person is at the keyboard (stdin and stdout are terminals)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


STATUS_COLOURS = {"ok": "green", "warning": "yellow", "error": "red"}


def styled_status(status: str, width: int = 0) -> str:
    """The status word padded to ``width``, coloured on a terminal."""
    return click.style(status.upper().ljust(width), fg=STATUS_COLOURS.get(status), bold=True)


def split_names(args: tuple[str, ...]) -> tuple[str, list[str]]:
    """``[PIPELINE] [NAME]...``: the first word is the pipeline when it names a YAML file."""
    if args and (args[0].endswith((".yaml", ".yml")) or Path(args[0]).is_file()):
        return args[0], list(args[1:])
    return DEFAULT_PIPELINE, list(args)
