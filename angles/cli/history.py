"""``angles history``: past runs from the state store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from angles.cli.common import (
    echo,
    echo_json,
    examples,
    format_option,
    pipeline_argument,
    styled_status,
)
from angles.core.text import plural

EXAMPLES = examples(
    "angles history",
    "angles history --format json",
)


@click.command("history", epilog=EXAMPLES)
@pipeline_argument
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many runs to show, newest first.",
)
@click.option("--check", "check_name", metavar="NAME", help="Only runs of this check.")
@format_option
def command(pipeline: Path, limit: int, check_name: str | None, output_format: str) -> int:
    """Show past runs: when, their status, duration and failing checks."""
    from angles.cli.common import load
    from angles.core.errors import AnglesError
    from angles.state.preflight import prepare
    from angles.state.store import StateStore

    loaded, _ = load(pipeline, offline=True)
    prepare(loaded, logs=False)
    with StateStore.open(loaded.state, connect_timeout=loaded.timeout_seconds) as store:
        # Checks removed from the pipeline keep their rows; they are no longer news.
        current = {c["name"] for c in loaded.checks}
        states = {k: v for k, v in store.check_states(loaded.name).items() if k in current}
        if check_name is not None:
            known = current | {
                c["name"] for run in store.runs(loaded.name, None) for c in run["checks"]
            }
            if check_name not in known:
                raise AnglesError(
                    f"no check named {check_name!r}",
                    hint=f"the pipeline defines: {', '.join(sorted(known)) or 'none'}",
                )
            states = {k: v for k, v in states.items() if k == check_name}
        runs = store.runs(loaded.name, limit, check=check_name)
    if output_format == "json":
        echo_json(
            {
                "pipeline": loaded.name,
                "runs": runs,
                "checks": [states[name].to_dict() for name in sorted(states)],
            }
        )
        return 0
    if not runs:
        echo(f"{loaded.name}: no runs recorded yet (angles run records them)")
    elif check_name is None:
        _print_runs(loaded.name, runs)
    else:
        _print_check_runs(check_name, runs)
    if states:
        _print_states(states)
    return 0


def _print_runs(pipeline: str, runs: list[dict[str, Any]]) -> None:
    echo(f"{pipeline}: the last {plural(len(runs), 'run')}, newest first")
    for run in runs:
        failing = [c for c in run["checks"] if c["status"] != "ok"]
        failing += [b for b in run.get("backups", []) if b["status"] != "ok"]
        names = ", ".join(f"{c['name']} ({c['status']})" for c in failing) or "-"
        echo(
            f"  {run['started_at']}  {styled_status(run['status'], 7)} "
            f"{run['duration_seconds']:>7.2f}s  {names}"
        )


def _print_check_runs(name: str, runs: list[dict[str, Any]]) -> None:
    echo(f"{name}: the last {plural(len(runs), 'run')}, newest first")
    for run in runs:
        [check] = [c for c in run["checks"] if c["name"] == name]
        echo(
            f"  {run['started_at']}  {styled_status(check['status'], 7)} "
            f"{check['duration_seconds']:>7.2f}s  {check['message']}"
        )


def _print_states(states: dict[str, Any]) -> None:
    from angles.core.report import format_timestamp

    echo("Checks now:")
    width = max(len(name) for name in states)
    for name in sorted(states):
        state = states[name]
        line = f"  {styled_status(state.status.value, 7)} {name:<{width}}"
        if state.failing and state.failing_since is not None:
            runs = state.consecutive_failures
            line += (
                f"  failing since {format_timestamp(state.failing_since)}"
                f" ({plural(runs, 'run')} in a row)"
            )
        echo(line)
