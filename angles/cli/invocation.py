"""What one ``angles`` command line carries from start to end (kept light: ``main()``
imports it before any command)."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from angles.core.redact import Redactor

__all__ = ["Invocation", "invocation"]


@dataclass
class Invocation:
    """One ``angles`` command line: its global options, and the redactor of the pipeline
    it loaded (so that two commands run in one process never share secrets).

    ``main()`` makes one and hands it to click as the context object.
    """

    debug: bool = False
    quiet: bool = False
    verbose: bool = False
    redact: Redactor = field(default_factory=Redactor)


def invocation() -> Invocation:
    """The invocation being run (a fresh default outside a command line)."""
    context = click.get_current_context(silent=True)
    found = context.find_root().obj if context is not None else None
    return found if isinstance(found, Invocation) else Invocation()
