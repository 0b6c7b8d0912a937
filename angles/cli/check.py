"""``angles check``: checks only (and notifications)."""

from __future__ import annotations

from pathlib import Path

import click

from angles.cli.common import examples, format_option, open_context, pipeline_locked, split_names
from angles.cli.output import show_report
from angles.core.errors import ExitCode

EXAMPLES = examples(
    "angles check                      # every check, then notifications",
    "angles check sync notion          # only the checks named",
    "angles check --test               # simulated failures: do alerts arrive?",
)


@click.command("check", epilog=EXAMPLES)
@click.argument("args", nargs=-1, metavar="[PIPELINE] [NAME]...")
@click.option("--test", is_flag=True, help="Simulate failing checks and really send notifications.")
@format_option
def command(args: tuple[str, ...], test: bool, output_format: str) -> ExitCode:
    """Run the checks (all, or those NAMEd) and send notifications."""
    from angles.run import run_pipeline

    pipeline, names = split_names(args)
    with (
        open_context(Path(pipeline), test=test, output_format=output_format) as context,
        pipeline_locked(context),
    ):
        report = run_pipeline(context, backups=False, check_names=names)
    return show_report(report, output_format)
