"""``angles init``: write a starter ``angles.yaml``, ``.env.example`` and ``.gitignore``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from angles.cli.common import echo
from angles.core.errors import AnglesError

if TYPE_CHECKING:
    from angles.cli.starter import StarterSettings

EXAMPLES = """
Examples:

\b
  angles init                            # the production layout: Supabase, Notion, GitHub
  angles init --from-config config.json  # convert the older scripts' config.json
  angles init --example                  # a SQLite vault to try angles on, no account needed
"""


@click.command("init", epilog=EXAMPLES)
@click.option(
    "--from-config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Convert the older config.json layout.",
)
@click.option(
    "--example",
    is_flag=True,
    help="Write the embedded default instead: a SQLite vault, backups in a folder.",
)
@click.option(
    "--directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    help="Where to write the files.",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def command(config_path: Path | None, example: bool, directory: Path, force: bool) -> None:
    """Write a starter angles.yaml and .env.example (and a .gitignore for .env)."""
    from angles.cli import starter

    if example and config_path is not None:
        raise AnglesError("--example and --from-config cannot be combined")
    if example:
        targets = {directory / "angles.yaml": starter.example_pipeline()}
        notes: list[str] = []
    else:
        settings = starter.StarterSettings()
        if config_path is not None:
            settings = _read_old_config(config_path)
        pipeline_text = starter.starter_pipeline(settings)
        targets = {
            directory / "angles.yaml": pipeline_text,
            directory / ".env.example": starter.env_example(pipeline_text),
        }
        notes = settings.notes
    vault = directory / "vault.db"
    written = [*targets, vault] if example else list(targets)
    existing = [str(path) for path in written if path.exists()]
    if existing and not force:
        raise AnglesError(f"{', '.join(existing)} already exist", hint="pass --force to overwrite")
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in targets.items():
        path.write_text(text, encoding="utf-8")
        echo(f"wrote {path}")
    if example:
        starter.write_example_vault(vault)
        echo(f"wrote {vault}")
    if starter.extend_gitignore(directory / ".gitignore"):
        echo(f"wrote {directory / '.gitignore'}")
    for note in notes:
        echo(f"note: {note}", fg="yellow")
    if example:
        echo("next: angles run   (checks the vault, backs it up into backups/)")
    else:
        echo("next: copy .env.example to .env, fill it in, then run `angles validate`")


def _read_old_config(path: Path) -> StarterSettings:
    from angles.cli.starter import from_old_config

    try:
        return from_old_config(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise AnglesError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise AnglesError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
