"""``angles run``: checks, then backups, then notifications — the daily job."""

from __future__ import annotations

from pathlib import Path

import click

from angles.cli.common import (
    examples,
    format_option,
    open_context,
    pipeline_argument,
    pipeline_locked,
)
from angles.cli.output import show_report
from angles.core.errors import ExitCode

EXAMPLES = examples(
    "angles run                        # ./angles.yaml: checks, backups, notifications",
    "angles run angles.prod.yaml --format json",
    "angles run --test                 # prove that alerts arrive",
)


@click.command("run", epilog=EXAMPLES)
@pipeline_argument
@click.option("--test", is_flag=True, help="Simulate failing checks and really send notifications.")
@format_option
def command(pipeline: Path, test: bool, output_format: str) -> ExitCode:
    """Run checks, then backups, then notifications."""
    from angles.run import run_pipeline

    with (
        open_context(pipeline, test=test, output_format=output_format) as context,
        pipeline_locked(context),
    ):
        report = run_pipeline(context)
    return show_report(report, output_format)
