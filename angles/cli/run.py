"""``angles run``: checks, then backups, then notifications — the daily job."""

from __future__ import annotations

from pathlib import Path

import click

from angles.cli.common import echo_json, examples, format_option, open_context, pipeline_argument
from angles.cli.output import print_report

EXAMPLES = examples(
    "angles run                        # ./angles.yaml: checks, backups, notifications",
    "angles run angles.prod.yaml --format json",
    "angles run --test                 # prove that alerts arrive",
)


@click.command("run", epilog=EXAMPLES)
@pipeline_argument
@click.option("--test", is_flag=True, help="Simulate failing checks and really send notifications.")
@format_option
def command(pipeline: Path, test: bool, output_format: str) -> int:
    """Run checks, then backups, then notifications."""
    from angles.run import run_pipeline
    from angles.state.store import record_run

    with open_context(pipeline, test=test, output_format=output_format) as context:
        report = run_pipeline(context)
        record_run(context, report)
    echo_json(report.to_dict()) if output_format == "json" else print_report(report)
    raise click.exceptions.Exit(report.status.exit_code)
