"""``angles restore``: show what restoring a backup would change, and apply it with --live."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from angles.cli.common import (
    confirm_live_restore,
    echo,
    echo_json,
    examples,
    format_option,
    open_context,
    pipeline_argument,
    pipeline_locked,
)
from angles.core.errors import ExitCode

if TYPE_CHECKING:
    from angles.backup.restore import RestorePlan

_LABELS = {
    "insert": ("insert", "missing from the table"),
    "update": ("update", "differ from the backup"),
    "unchanged": ("unchanged", ""),
    "only_in_database": ("only in database", "kept: a restore never deletes"),
    "newer_in_database": ("newer in database", "changed after the backup"),
}


EXAMPLES = examples(
    "angles restore --table decision_vault         # a dry run: what would change",
    "angles restore --table decision_vault --live  # asks, saves the table, applies",
    "angles restore --backup decision_vault_2026-11-26_03-00-00.json --live --yes",
    "angles restore --file old_backup.json",
    "angles restore --all                          # every table of the newest set",
    "angles restore --all --at 2026-11-26_03-00-00 --live --yes",
)


@click.command("restore", epilog=EXAMPLES)
@pipeline_argument
@click.option("--table", help="The table to restore (default: the only one backed up).")
@click.option(
    "--backup", "backup_name", metavar="NAME", help="A backup file name (default: the newest)."
)
@click.option(
    "--file",
    "file_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Restore from a backup file on disk instead of a sink.",
)
@click.option(
    "--all",
    "whole_set",
    is_flag=True,
    help="Every table of the newest set (all tables of one backup run), parents first.",
)
@click.option("--at", metavar="STAMP", help="With --all: the set taken then (2026-11-26_03-00-00).")
@click.option("--sink", help="The sink to read (default: the first of the table's backup entry).")
@click.option("--live", is_flag=True, help="Apply the changes (default: a dry run).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--overwrite-newer",
    is_flag=True,
    help="Also overwrite rows changed in the database after the backup was taken.",
)
@format_option
def command(
    pipeline: Path,
    table: str | None,
    backup_name: str | None,
    file_path: Path | None,
    whole_set: bool,
    at: str | None,
    sink: str | None,
    live: bool,
    yes: bool,
    overwrite_newer: bool,
    output_format: str,
) -> ExitCode:
    """Restore a table (or with --all every table of a set) from a backup: a dry run
    unless --live.

    Rows missing from the table are inserted and rows that differ are updated; rows
    only in the table are kept. Before a live restore the table is backed up to its
    sinks. Exit code 0 on success, 1 when a dry run finds that a live restore would
    be refused (columns differ), 2 when the restore is refused.
    """
    from angles.backup.restore import (
        RestoreRequest,
        apply_restore,
        close_plan,
        prepare_restore,
    )
    from angles.core.errors import RestoreRefused

    if backup_name and file_path:
        raise click.UsageError("give --backup or --file, not both")
    if whole_set and (table or backup_name or file_path):
        raise click.UsageError(
            "--all restores every table of a set: drop --table, --backup, --file"
        )
    if at and not whole_set:
        raise click.UsageError("--at goes with --all")
    if whole_set:
        from angles.cli.restore_set import restore_set

        return restore_set(pipeline, at, sink, live, yes, overwrite_newer, output_format)
    request = RestoreRequest(table, backup_name, file_path, sink, overwrite_newer)
    as_json = output_format == "json"
    with (
        open_context(pipeline, output_format=output_format) as context,
        pipeline_locked(context) if live else contextlib.nullcontext(),
    ):
        plan = prepare_restore(context, request)
        try:
            if not live:
                _show(plan, as_json)
                return ExitCode.WARNING if plan.refusal() else ExitCode.OK
            reason = plan.refusal()
            if reason:
                _show(plan, as_json)
                raise RestoreRefused(f"live restore of {plan.table!r} refused: {reason}")
            if plan.to_write and not yes:
                _confirm(plan)
            apply_restore(context, plan)
            _show(plan, as_json)
        finally:
            close_plan(plan)


def _confirm(plan: RestorePlan) -> None:
    question = (
        f"Write {plan.to_write} rows into {plan.table!r} (after saving a pre-restore backup of it)?"
    )
    confirm_live_restore(question, lambda: _print_plan(plan, err=True))


def _show(plan: RestorePlan, as_json: bool) -> None:
    if as_json:
        echo_json(plan.to_dict())
    else:
        _print_plan(plan)


def _print_plan(plan: RestorePlan, *, err: bool = False) -> None:
    def say(text: str = "", **style: Any) -> None:
        echo(text, err=err, **style)

    where = f"{plan.sink}:{plan.backup}" if plan.sink else plan.backup
    trust = (
        click.style("verified", fg="green")
        if plan.verified
        else click.style("UNVERIFIED: it has no checksum", fg="yellow")
    )
    say(f"Restore of {plan.table!r} from {where} ({trust})")
    for kind, (label, note) in _LABELS.items():
        count = plan.counts[kind]
        if kind == "newer_in_database" and count:
            note += (
                "; written" if plan.overwrite_newer else "; skipped (--overwrite-newer writes them)"
            )
        samples = ", ".join(_sample_text(s) for s in plan.samples.get(kind, [])[:3])
        extra = "  ".join(
            p
            for p in (f"({note})" if note and count else "", f"e.g. {samples}" if samples else "")
            if p
        )
        say(f"  {label:<18} {count:>9}  {extra}".rstrip())
    if plan.schema_differs:
        action = (
            "restoring the common columns" if plan.auto_migrate else "a live restore is refused"
        )
        say(f"  columns differ ({plan.describe_columns()}): {action}", fg="yellow")
    generated = [c for c, why in plan.unwritable.items() if why == "generated"]
    if generated:
        say(f"  generated columns, never written: {', '.join(generated)}")
    for warning in plan.warnings:
        say(f"  warning: {warning}", fg="yellow")
    reason = plan.refusal()
    if reason and plan.applied is None and not plan.schema_differs:
        say(f"  a live restore is refused: {reason}", fg="yellow")
    if not plan.to_write:
        say("Nothing to write: the table holds every row of the backup, as it is or newer.")
    elif plan.applied is not None:
        applied = plan.applied
        say(
            f"Restored: {applied['insert']} inserted, {applied['update'] + applied['newer_in_database']} "
            f"updated ({applied['written']} rows written).",
            fg="green",
        )
        files = ", ".join(f"{f['sink']}:{f['name']}" for f in plan.pre_restore_files)
        if files:
            say(f"Pre-restore backup: {files}")
    elif not err:
        say("Dry run: nothing was changed. Add --live to apply.")


def _sample_text(sample: Any) -> str:
    if isinstance(sample, dict):
        columns = sample.get("columns")
        key = {k: v for k, v in sample.items() if k != "columns"}
        text = str(next(iter(key.values()))) if len(key) == 1 else str(key)
        return f"{text} ({', '.join(columns)})" if columns else text
    return str(sample)
