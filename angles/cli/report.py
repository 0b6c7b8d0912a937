"""``angles report``: writes the status page from the state store."""

from __future__ import annotations

from pathlib import Path

import click

from angles.cli.common import echo, echo_json, format_option, pipeline_argument

DEFAULT_REPORT = "status.html"


@click.command("report")
@pipeline_argument
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The HTML file to write (default: the pipeline's report:, else status.html beside it).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1, max=3660),
    default=30,
    show_default=True,
    help="How many days of runs the timeline and charts show.",
)
@format_option
def command(pipeline: Path, output: Path | None, days: int, output_format: str) -> int:
    """Write the status page: one self-contained HTML file, from the run history."""
    from angles.cli.common import load
    from angles.core.context import Context
    from angles.core.errors import AnglesError
    from angles.status.outputs import read_summary, replace_file
    from angles.status.page import render_page

    loaded, plugins = load(pipeline)
    target = output or loaded.report or loaded.resolve(DEFAULT_REPORT)
    with Context(loaded, plugins) as context:
        summary = read_summary(context, days)
    try:
        replace_file(target, render_page(summary))
    except OSError as exc:
        raise AnglesError(
            f"cannot write the status page {target}: {exc.strerror or exc}",
            hint="check --output (or report: in the pipeline) and that its folder is writable",
        ) from exc
    if output_format == "json":
        echo_json({"report": str(target), "runs": len(summary.runs), "days": days})
    else:
        runs = len(summary.runs)
        echo(
            f"status page written to {target} "
            f"({runs} run{'s' if runs != 1 else ''} in the last {days} day{'s' if days != 1 else ''})"
        )
    return 0
