"""``angles schedule``: run the pipeline on its schedule, or print a definition for another scheduler."""

from __future__ import annotations

from pathlib import Path

import click

from angles.cli.common import echo, examples, pipeline_argument

EXAMPLES = examples(
    "angles schedule                   # run on schedule: until stopped",
    "angles schedule --print cron      # or systemd, github-actions, kubernetes",
)


@click.command("schedule", epilog=EXAMPLES)
@pipeline_argument
@click.option(
    "--print",
    "print_kind",
    type=click.Choice(["cron", "systemd", "github-actions", "kubernetes"]),
    help="Print a ready definition that runs `angles run` on the schedule, instead of running.",
)
def command(pipeline: Path, print_kind: str | None) -> int:
    """Run the pipeline at each time of its `schedule:` (cron, UTC) until stopped.

    One run at a time, even with several schedulers sharing a PostgreSQL state store;
    after downtime one missed run is caught up. SIGTERM or Ctrl-C stop it once the
    current run has finished (a second Ctrl-C aborts the run).
    """
    if print_kind:
        from angles.cli.definitions import read_pipeline, render

        click.echo(render(print_kind, read_pipeline(pipeline)), nl=False)
        return 0
    from angles.cli.common import load, make_logs
    from angles.core.report import format_timestamp
    from angles.state.preflight import prepare
    from angles.state.scheduler import next_time, scheduler_for, utc_now

    loaded, plugins = load(pipeline)
    prepare(loaded)
    scheduler = scheduler_for(loaded, plugins, make_logs=lambda: make_logs(loaded))
    echo(
        f"angles: scheduling {loaded.name} at {loaded.schedule!r} (UTC); "
        f"next run at the earliest {format_timestamp(next_time(loaded.schedule, utc_now()))}. "
        "Stop with Ctrl-C.",
        err=True,
    )
    with scheduler.stop_on_signals():
        try:
            scheduler.run_forever()
        finally:
            scheduler.logs.close()
    echo(f"angles: scheduler stopped after {scheduler.runs} run(s)", err=True)
    return 0
