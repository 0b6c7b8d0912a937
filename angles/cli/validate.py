"""``angles validate``: load and check the pipeline without contacting any service."""

from __future__ import annotations

from pathlib import Path

import click

from angles.cli.common import (
    echo,
    echo_json,
    examples,
    format_option,
    load,
    pipeline_argument,
)
from angles.core.errors import ExitCode, PipelineError
from angles.core.text import plural

EXAMPLES = examples(
    "angles validate",
    "angles validate angles.prod.yaml --format json",
)


@click.command("validate", epilog=EXAMPLES)
@pipeline_argument
@format_option
def command(pipeline: Path, output_format: str) -> ExitCode:
    """Validate the pipeline file: schema, plugin types, references, variables, and that
    the state store and log folder can be used (without creating either)."""
    from angles.state.preflight import find_problems

    try:
        loaded, _ = load(pipeline)
        problems = find_problems(loaded)
        if problems:
            raise PipelineError(problems)
    except PipelineError as exc:
        if output_format != "json":
            raise
        echo_json(
            {
                "pipeline": str(pipeline),
                "valid": False,
                "problems": [
                    {"file": p.file, "line": p.line, "key": p.key, "message": p.message}
                    for p in exc.problems
                ],
            }
        )
        return ExitCode.INTERNAL
    summary = {
        "checks": len(loaded.checks),
        "backups": len(loaded.backups),
        "sinks": len(loaded.sinks),
        "notifiers": len(loaded.notifiers),
        "connections": len(loaded.connections),
    }
    if output_format == "json":
        echo_json(
            {
                "pipeline": str(pipeline),
                "name": loaded.name,
                "valid": True,
                "problems": [],
                **summary,
            }
        )
    else:
        counts = ", ".join(plural(n, k.removesuffix("s")) for k, n in summary.items())
        echo(f"{pipeline}: valid ({counts})", fg="green")
    return ExitCode.OK
