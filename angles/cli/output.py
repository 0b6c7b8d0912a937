"""Rendering reports for people."""

from __future__ import annotations

from angles.cli.common import echo, echo_json, quiet, styled_status
from angles.core.errors import ExitCode
from angles.core.report import RunReport


def show_report(report: RunReport, output_format: str) -> ExitCode:
    """The run's report as JSON or for people; returns the run's exit code."""
    if output_format == "json":
        echo_json(report.to_dict())
    else:
        print_report(report)
    return report.status.exit_code


def print_report(report: RunReport) -> None:
    """The run as a short table: checks, backups, notifications, then the verdict
    (the verdict alone with ``--quiet``)."""
    verdict = (
        f"{report.pipeline}: {styled_status(report.status.value)} in {report.duration_seconds:.2f}s"
    )
    if quiet():
        echo(verdict)
        return
    if report.test:
        echo("TEST RUN: failures are simulated; notifications are really sent.", fg="yellow")
    if report.checks:
        width = max(len(c.name) for c in report.checks)
        echo("Checks:")
        for check in report.checks:
            echo(
                f"  {styled_status(check.status.value, 7)} {check.name:<{width}}  {check.message}"
                f"  ({check.duration_seconds:.2f}s)"
            )
    if report.backups:
        echo("Backups:")
        for backup in report.backups:
            files = ", ".join(f"{f['sink']}:{f['name']}" for f in backup.files) or "-"
            detail = f"  {backup.message}" if backup.message else ""
            echo(
                f"  {styled_status(backup.status.value, 7)} {backup.name}  {backup.rows}  {files}{detail}"
            )
    if report.notifications:
        echo("Notifications:")
        for note in report.notifications:
            colour = "green" if note.status == "sent" else "red"
            detail = f"  {note.message}" if note.message else ""
            echo(f"  {note.status:<7} {note.notifier}{detail}", fg=colour)
    echo(verdict)
