"""Restoring whole sets (``angles restore --all``): every table of a backup entry's newest
set, or of the set taken at ``--at``, as one plan.

Each table is planned as a single-table restore is (:func:`prepare_restore`); the tables
are written parents first (foreign-key order), inside one transaction where the database
has them, after a pre-restore backup of every table to be written has been stored (one
set, one timestamp). Afterwards each sequence the tables draw from is set to at least the
larger of its recorded last value and the restored maximum, so that the application's next
insert gets a new key. This is how a database recreated from its migrations gets its data
back after a disaster.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from angles.backup.diff import Kind
from angles.backup.engine import database_for
from angles.backup.format import BackupName, format_stamp, parse_stamp
from angles.backup.restore import (
    RestorePlan,
    RestoreRequest,
    close_plan,
    prepare_restore,
    save_pre_restore,
    write_changes,
)
from angles.backup.tables import TableSelection
from angles.core.connection import Database
from angles.core.context import Context
from angles.core.errors import AnglesError, RestoreRefused

__all__ = ["SetRestore", "apply_set_restore", "close_set_restore", "prepare_set_restore"]


@dataclass
class SetPlan:
    """The restore of one backup entry's set: its tables' plans, parents first."""

    entry: str
    connection: str
    sink: str
    timestamp: datetime
    plans: list[RestorePlan]
    #: Tables whose foreign keys refer to each other in a circle (written in one
    #: transaction, where the order inside it does not matter).
    cycles: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup": self.entry,
            "sink": self.sink,
            "set": format_stamp(self.timestamp),
            "order": [plan.table for plan in self.plans],
            "cycles": self.cycles,
            "warnings": self.warnings,
            "sequences": self.sequences,
            "tables": [plan.to_dict() for plan in self.plans],
        }


@dataclass
class SetRestore:
    """What ``angles restore --all`` would change (or, once applied, changed)."""

    sets: list[SetPlan]
    live: bool = False

    @property
    def plans(self) -> list[RestorePlan]:
        return [plan for one in self.sets for plan in one.plans]

    @property
    def counts(self) -> dict[str, int]:
        total = {kind.value: 0 for kind in Kind}
        for plan in self.plans:
            for kind, count in plan.counts.items():
                total[kind] += count
        return total

    @property
    def to_write(self) -> int:
        return sum(plan.to_write for plan in self.plans)

    @property
    def verified(self) -> bool:
        return all(plan.verified for plan in self.plans)

    def refusal(self) -> str | None:
        """Why a live restore would be refused (the first table's reason), or None."""
        for plan in self.plans:
            reason = plan.refusal()
            if reason:
                return f"{plan.table!r}: {reason}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """The plan as ``angles restore --all --format json`` prints it."""
        return {
            "all": True,
            "live": self.live,
            "verified": self.verified,
            "counts": self.counts,
            "to_write": self.to_write,
            "sets": [one.to_dict() for one in self.sets],
        }


def prepare_set_restore(
    context: Context,
    *,
    at: str | None = None,
    sink: str | None = None,
    overwrite_newer: bool = False,
) -> SetRestore:
    """Plan the restore of every backup entry's newest set (or the set taken ``at``)."""
    moment = _parse_stamp(at) if at else None
    sets: list[SetPlan] = []
    try:
        for entry in context.pipeline.backups:
            sets.append(_plan_set(context, entry, moment, sink, overwrite_newer))
    except BaseException:
        close_set_restore(SetRestore(sets))
        raise
    return SetRestore(sets)


def apply_set_restore(context: Context, restore: SetRestore) -> SetRestore:
    """Apply a prepared plan: every pre-restore backup first, then the writes, then the
    sequences. Nothing is written when any table's restore would be refused."""
    reason = restore.refusal()
    if reason:
        raise RestoreRefused(f"live restore refused: {reason}")
    log = context.logger("restore")
    restore.live = True
    for one in restore.sets:
        started = time.perf_counter()
        database = database_for(context, one.connection)
        moment = datetime.now(UTC)
        for plan in one.plans:
            plan.live = True
            if plan.to_write:
                save_pre_restore(context, plan, database, moment)
        with database.transaction():
            for plan in one.plans:
                write_changes(context, plan, database)
        for plan in one.plans:
            assert plan.schema is not None, "a plan from prepare_restore"
            if plan.schema.sequences:
                advanced = database.advance_sequences(
                    plan.table, plan.schema, plan.recorded_sequences
                )
                one.sequences.update(advanced)
        log.info(
            "set restored",
            backup=one.entry,
            set=format_stamp(one.timestamp),
            tables=len(one.plans),
            written=sum((plan.applied or {}).get("written", 0) for plan in one.plans),
            sequences=one.sequences,
            duration_seconds=round(time.perf_counter() - started, 3),
        )
    return restore


def close_set_restore(restore: SetRestore) -> None:
    """Release the backup files the plans keep open."""
    for plan in restore.plans:
        close_plan(plan)


def _plan_set(
    context: Context,
    entry: Mapping[str, Any],
    moment: datetime | None,
    sink: str | None,
    overwrite_newer: bool,
) -> SetPlan:
    sink_name = sink or entry["sinks"][0]
    if sink_name not in context.pipeline.sinks:
        raise AnglesError(
            f"no sink named {sink_name!r}",
            hint=f"the pipeline defines: {', '.join(context.pipeline.sinks)}",
        )
    selection = TableSelection.of(entry)
    found: dict[datetime, dict[str, str]] = {}
    for stored in context.sink(sink_name).list():
        parsed = BackupName.parse(stored.name)
        if parsed and not parsed.pre_restore and selection.covers(parsed.table):
            found.setdefault(parsed.timestamp, {})[parsed.table] = stored.name
    if not found:
        raise RestoreRefused(
            f"sink {sink_name!r} holds no backup of the entry {entry['name']!r}",
            hint="run `angles backup` first, or choose another sink with --sink",
        )
    if moment is None:
        moment = max(found)
    elif moment not in found:
        stamps = ", ".join(format_stamp(m) for m in sorted(found, reverse=True)[:5])
        raise RestoreRefused(
            f"sink {sink_name!r} holds no set of {entry['name']!r} taken at {format_stamp(moment)}",
            hint=f"the newest sets: {stamps}",
        )
    files = found[moment]
    plans: list[RestorePlan] = []
    try:
        for table in sorted(files):
            request = RestoreRequest(
                table=table, backup=files[table], sink=sink_name, overwrite_newer=overwrite_newer
            )
            plans.append(prepare_restore(context, request))
    except BaseException:
        for plan in plans:
            close_plan(plan)
        raise
    database = database_for(context, entry["connection"])
    ordered, cycles = _parents_first(plans)
    one = SetPlan(
        entry=entry["name"],
        connection=entry["connection"],
        sink=sink_name,
        timestamp=moment,
        plans=ordered,
        cycles=cycles,
    )
    if any(p.recorded_sequences for p in plans) and not _sets_sequences(database):
        one.warnings.append(
            f"sequences cannot be set through the {database.type} connection: after the "
            "restore, set them to the tables' maxima (a postgres connection does it)"
        )
    return one


def _parents_first(plans: list[RestorePlan]) -> tuple[list[RestorePlan], list[str]]:
    """``plans`` ordered so that each table comes after the tables its foreign keys refer
    to (Kahn's algorithm, ties by name); tables in a circle come last, in name order."""
    by_table = {plan.table: plan for plan in plans}
    wanted = set(by_table)
    parents = {t: set(p.schema.parents if p.schema else ()) & wanted for t, p in by_table.items()}
    order: list[str] = []
    ready = sorted(t for t, p in parents.items() if not p)
    while ready:
        table = ready.pop(0)
        order.append(table)
        for child, needs in parents.items():
            if table in needs:
                needs.discard(table)
                if not needs and child not in order and child not in ready:
                    ready.append(child)
                    ready.sort()
    cycles = sorted(wanted - set(order))
    return [by_table[table] for table in order + cycles], cycles


def _sets_sequences(database: Database) -> bool:
    return type(database).advance_sequences is not Database.advance_sequences


def _parse_stamp(text: str) -> datetime:
    moment = parse_stamp(text)
    if moment is None:
        raise AnglesError(
            f"--at {text!r} is not a backup time",
            hint="write it as in file names: 2026-11-26_03-00-00",
        )
    return moment
