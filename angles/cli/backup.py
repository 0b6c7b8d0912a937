"""``angles backup``: backups only (and notifications when one fails)."""

from __future__ import annotations

from pathlib import Path

import click

from angles.cli.common import examples, format_option, open_context, pipeline_locked, split_names
from angles.cli.output import show_report
from angles.core.errors import ExitCode

EXAMPLES = examples(
    "angles backup                     # every backup entry of ./angles.yaml",
    "angles backup angles.prod.yaml decision_vault",
    "angles backup --format json | jq '.backups[].files'",
)


@click.command("backup", epilog=EXAMPLES)
@click.argument("args", nargs=-1, metavar="[PIPELINE] [NAME]...")
@format_option
def command(args: tuple[str, ...], output_format: str) -> ExitCode:
    """Back up the tables (all, or the backup entries NAMEd) to their sinks.

    Exit code 0 when every backup was stored, 1 when a table changed while it was read
    or old backups could not be pruned, 2 when a backup failed.
    """
    from angles.run import Notify, run_pipeline

    pipeline, names = split_names(args)
    with (
        open_context(Path(pipeline), output_format=output_format) as context,
        pipeline_locked(context),
    ):
        report = run_pipeline(context, checks=False, backup_names=names, notify=Notify.ON_FAILURE)
    return show_report(report, output_format)
