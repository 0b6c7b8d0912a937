"""``angles backups list`` and ``angles backups verify``: what the sinks hold."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from angles.cli.common import (
    DEFAULT_PIPELINE,
    echo,
    echo_json,
    examples,
    format_option,
    open_context,
    pipeline_argument,
    styled_status,
)
from angles.core.errors import ExitCode
from angles.core.text import plural

EXAMPLES = examples(
    "angles backups list",
    "angles backups verify",
    "angles backups verify decision_vault_2026-11-26_03-00-00.json",
)


@click.group("backups", epilog=EXAMPLES)
def command() -> None:
    """List and verify the backups stored in the sinks."""


@command.command("list")
@pipeline_argument
@format_option
def list_command(pipeline: Path, output_format: str) -> None:
    """The backups in each sink, newest first, with record counts and sizes."""
    from angles.backup.format import format_stamp
    from angles.backup.inventory import list_backups

    with open_context(pipeline) as context:
        listing = list_backups(context)
    if output_format == "json":
        echo_json({sink: [row.to_dict() for row in rows] for sink, rows in listing.items()})
        return
    for sink, rows in listing.items():
        echo(f"{sink}: {plural(len(rows), 'backup')}", bold=True)
        width = max((len(row.name) for row in rows), default=0)
        sets = Counter((row.timestamp, row.pre_restore) for row in rows if row.timestamp)
        shown = None
        for row in rows:
            key = (row.timestamp, row.pre_restore)
            if row.timestamp and sets[key] > 1 and key != shown:
                what = "pre-restore set" if row.pre_restore else "set"
                echo(f" {what} {format_stamp(row.timestamp)}: {plural(sets[key], 'table')}")
            shown = key
            if row.error:
                echo(f"  {row.name}  DAMAGED: {row.error}", fg="red")
                continue
            count = "?" if row.record_count is None else f"{row.record_count}"
            if row.encrypted:
                note = "  (encrypted)"
            else:
                note = "" if row.has_checksum else "  (no checksum: older format)"
            if row.pre_restore:
                note += "  (saved before a restore)"
            echo(f"  {row.name:<{width}}  {count:>9} rows  {_size(row.size):>9}{note}")


@command.command("verify")
@click.argument("args", nargs=-1, metavar="[PIPELINE] [BACKUP]")
@format_option
def verify_command(args: tuple[str, ...], output_format: str) -> ExitCode:
    """Re-read each backup (or the one named) and check its checksum.

    Exit code 0 when every checksum matches, 1 when some backups have no checksum
    (older format), 2 when a backup is damaged or does not match its checksum.
    """
    from angles.backup.inventory import verify_backups
    from angles.core.results import Status

    pipeline, backup = _pipeline_and_backup(args)
    with open_context(Path(pipeline)) as context:
        results = verify_backups(context, backup)
    status = Status.worst(result.status for result in results)
    if output_format == "json":
        echo_json({"status": status.value, "backups": [r.to_dict() for r in results]})
    else:
        for result in results:
            echo(
                f"{styled_status(result.status.value, 7)} {result.sink}:{result.name}  {result.message}"
            )
        echo(f"{plural(len(results), 'backup')} checked: {styled_status(status.value)}")
    return status.exit_code


def _pipeline_and_backup(args: tuple[str, ...]) -> tuple[str, str | None]:
    """``[PIPELINE] [BACKUP]``: a backup name is never taken for the pipeline."""
    from angles.backup.format import BackupName

    if len(args) > 2:
        raise click.UsageError("give at most a pipeline and a backup name")
    if len(args) == 2:
        return args[0], args[1]
    if args and BackupName.parse(Path(args[0]).name) is None:
        return args[0], None
    return DEFAULT_PIPELINE, args[0] if args else None


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
