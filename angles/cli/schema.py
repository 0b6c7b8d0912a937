"""``angles schema``: the JSON Schema of the pipeline file, with every installed plugin."""

from __future__ import annotations

import json

import click

from angles.cli.common import examples

EXAMPLES = examples(
    "angles schema > angles.schema.json",
)


@click.command("schema", epilog=EXAMPLES)
def command() -> None:
    """Print the pipeline's JSON Schema (for editors and CI linting)."""
    from angles.core.plugins import load_plugins
    from angles.core.schema import build_schema

    click.echo(json.dumps(build_schema(load_plugins()), indent=2))
