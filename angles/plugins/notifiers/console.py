"""The ``console`` notifier: prints the run's message on standard error."""

from __future__ import annotations

import sys

import click

from angles import Notification, Notifier, hookimpl


class ConsoleNotifier(Notifier):
    """Writes the message to stderr, so stdout stays clean for ``--format json``."""

    type = "console"
    description = "Prints the run's message on the terminal (standard error)."
    config_schema = {"type": "object", "additionalProperties": False, "properties": {}}

    def send(self, notification: Notification) -> None:
        click.echo(self.context.redact.text(notification.text()), file=sys.stderr)


@hookimpl
def angles_register_notifiers(register):
    register(ConsoleNotifier)
