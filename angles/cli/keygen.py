"""``angles keygen``: a new age key for encrypted backups (as ``age-keygen`` makes one)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from angles.cli.common import echo, echo_json, examples, format_option

EXAMPLES = examples(
    "angles keygen --output key.txt     # the identity to keep secret; prints the public key",
    "angles keygen | gh secret set AGE_IDENTITY   # straight into a GitHub Actions secret",
)


@click.command("keygen", epilog=EXAMPLES)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the key file here (readable by you only); it must not exist yet. "
    "Default: standard output.",
)
@format_option
def command(output: Path | None, output_format: str) -> int:
    """Make an age key: the public key goes under encrypt.recipients, the secret key file
    (the identity) reads the backups. The file is what `age-keygen` writes, so
    `age -d -i key.txt FILE` decrypts a backup too."""
    from pyrage import x25519

    from angles.core.errors import AnglesError

    identity = x25519.Identity.generate()
    public = str(identity.to_public())
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    text = f"# created: {created}\n# public key: {public}\n{identity}\n"
    if output is None:
        click.echo(text, nl=False)
        click.echo(f"Public key: {public}", err=True)
        return 0
    try:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AnglesError(
            f"{output} already exists", hint="a key file is never overwritten: choose another name"
        ) from None
    except OSError as exc:
        raise AnglesError(f"cannot write {output}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    if output_format == "json":
        echo_json({"public_key": public, "identity_file": str(output)})
    else:
        echo(f"Public key: {public}")
        echo(f"Identity written to {output}: keep it secret, and keep a copy off this machine.")
    return 0
