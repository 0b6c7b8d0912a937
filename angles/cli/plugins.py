"""``angles plugins``: installed plugins, their kinds, type names and packages."""

from __future__ import annotations

import click

from angles.cli.common import echo, echo_json, examples, format_option

EXAMPLES = examples(
    "angles plugins",
    "angles plugins --format json",
)


@click.command("plugins", epilog=EXAMPLES)
@format_option
def command(output_format: str) -> None:
    """List installed plugins (builtins included) and the types they add."""
    from angles.core.plugins import load_plugins

    rows = load_plugins().describe()
    if output_format == "json":
        echo_json(rows)
        return
    for row in rows:
        echo(f"{row['name']}  ({row['package']} {row['version']})", bold=True)
        if "error" in row:
            echo(f"    BROKEN: {row['error']}", fg="red")
        for kind, types in row["types"].items():
            echo(f"    {kind}: {', '.join(types)}")
