"""``angles report``: writes the status page from the state store."""

from __future__ import annotations

from pathlib import Path

import click

from angles.cli.common import echo, echo_json, examples, format_option, pipeline_argument
from angles.core.text import plural

DEFAULT_REPORT = "status.html"
EXAMPLES = examples(
    "angles report                     # the pipeline's report:, else ./status.html",
    "angles report --output site/index.html --days 90",
)


@click.command("report", epilog=EXAMPLES)
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
    from angles.cli.common import open_context
    from angles.core.errors import AnglesError
    from angles.status.outputs import read_summary, replace_file
    from angles.status.page import render_page

    with open_context(pipeline, output_format=output_format, offline=True) as context:
        loaded = context.pipeline
        target = output or loaded.report or loaded.resolve(DEFAULT_REPORT)
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
        echo(
            f"status page written to {target} "
            f"({plural(len(summary.runs), 'run')} in the last {plural(days, 'day')})"
        )
    return 0
