"""``angles restore --all``: every table of a set, as one plan, one confirmation, one
pre-restore backup set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from angles.backup.format import format_stamp
from angles.cli.common import confirm_live_restore, echo, echo_json, open_context
from angles.core.errors import ExitCode, RestoreRefused
from angles.core.text import plural

if TYPE_CHECKING:
    from angles.backup.restore_set import SetRestore

_COLUMNS = (
    ("insert", "insert"),
    ("update", "update"),
    ("unchanged", "unchanged"),
    ("only_in_database", "only in db"),
    ("newer_in_database", "newer in db"),
)


def restore_set(
    pipeline: Path,
    at: str | None,
    sink: str | None,
    live: bool,
    yes: bool,
    overwrite_newer: bool,
    output_format: str,
) -> ExitCode:
    from angles.backup.restore_set import (
        apply_set_restore,
        close_set_restore,
        prepare_set_restore,
    )

    as_json = output_format == "json"
    with open_context(pipeline, output_format=output_format) as context:
        restore = prepare_set_restore(context, at=at, sink=sink, overwrite_newer=overwrite_newer)
        try:
            reason = restore.refusal()
            if not live:
                _show(restore, as_json)
                return ExitCode.WARNING if reason else ExitCode.OK
            if reason:
                _show(restore, as_json)
                raise RestoreRefused(f"live restore refused: {reason}")
            if restore.to_write and not yes:
                _confirm(restore)
            apply_set_restore(context, restore)
            _show(restore, as_json)
            return ExitCode.OK
        finally:
            close_set_restore(restore)


def _confirm(restore: SetRestore) -> None:
    tables = sum(1 for plan in restore.plans if plan.to_write)
    question = (
        f"Write {restore.to_write} rows into {plural(tables, 'table')} "
        "(after saving a pre-restore backup of each)?"
    )
    confirm_live_restore(question, lambda: _print(restore, err=True))


def _show(restore: SetRestore, as_json: bool) -> None:
    if as_json:
        echo_json(restore.to_dict())
    else:
        _print(restore)


def _print(restore: SetRestore, *, err: bool = False) -> None:
    def say(text: str = "", **style: Any) -> None:
        echo(text, err=err, **style)

    for one in restore.sets:
        trust = (
            click.style("verified", fg="green")
            if all(plan.verified for plan in one.plans)
            else click.style("NOT ALL VERIFIED", fg="yellow")
        )
        stamp = format_stamp(one.timestamp)
        say(
            f"Restore of {plural(len(one.plans), 'table')} of {one.entry!r}, set {stamp} "
            f"from {one.sink} ({trust}), parents first:"
        )
        width = max(len(plan.table) for plan in one.plans)
        header = "".join(f"{label:>12}" for _, label in _COLUMNS)
        say(f"  {'table':<{width}}{header}")
        for plan in one.plans:
            counts = "".join(f"{plan.counts[kind]:>12}" for kind, _ in _COLUMNS)
            note = ""
            reason = plan.refusal()
            if reason:
                note = click.style(f"  refused: {reason}", fg="yellow")
            say(f"  {plan.table:<{width}}{counts}{note}")
        totals = "".join(f"{sum(p.counts[kind] for p in one.plans):>12}" for kind, _ in _COLUMNS)
        say(f"  {'total':<{width}}{totals}")
        if one.cycles:
            say(f"  foreign keys in a circle: {', '.join(one.cycles)} (written in one transaction)")
        for warning in one.warnings:
            say(f"  {warning}", fg="yellow")
        if one.sequences:
            say("  sequences set: " + ", ".join(f"{k} = {v}" for k, v in one.sequences.items()))
    if restore.live:
        applied = [plan.applied or {} for plan in restore.plans]
        inserted = sum(a.get("insert", 0) for a in applied)
        updated = sum(a.get("update", 0) + a.get("newer_in_database", 0) for a in applied)
        say(f"Restored: {inserted} inserted, {updated} updated.", fg="green")
        files = [f"{f['sink']}:{f['name']}" for p in restore.plans for f in p.pre_restore_files]
        if files:
            say(
                f"Pre-restore backup set: {plural(len(files), 'file')} "
                f"({files[0]}{', …' if len(files) > 1 else ''})"
            )
    elif not restore.to_write:
        say("Nothing to write: every table holds every row of its backup, as it is or newer.")
    elif not err:
        say("Dry run: nothing was changed. Add --live to apply.")
