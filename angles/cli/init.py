"""``angles init``: write a starter ``angles.yaml`` and ``.env.example``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from angles.cli.common import echo
from angles.core.errors import AnglesError


@click.command("init")
@click.option(
    "--from-config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Convert the older config.json layout.",
)
@click.option(
    "--directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    help="Where to write the files.",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def command(config_path: Path | None, directory: Path, force: bool) -> None:
    """Write a starter angles.yaml and .env.example."""
    from angles.core.starter import ENV_EXAMPLE, StarterSettings, from_old_config, starter_pipeline

    settings = StarterSettings()
    if config_path is not None:
        try:
            settings = from_old_config(json.loads(config_path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise AnglesError(f"cannot read {config_path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise AnglesError(f"{config_path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    targets = {
        directory / "angles.yaml": starter_pipeline(settings),
        directory / ".env.example": ENV_EXAMPLE,
    }
    existing = [str(path) for path in targets if path.exists()]
    if existing and not force:
        raise AnglesError(f"{', '.join(existing)} already exist", hint="pass --force to overwrite")
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in targets.items():
        path.write_text(text, encoding="utf-8")
        echo(f"wrote {path}")
    for note in settings.notes:
        echo(f"note: {note}", fg="yellow")
    echo("next: copy .env.example to .env, fill it in, then run `angles validate`")
