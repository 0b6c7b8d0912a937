"""The distribution angles is installed as, and its version."""

from __future__ import annotations

from functools import cache

#: The name on the package index (``angles`` there is an unrelated project).
DISTRIBUTION = "angles-monitor"


@cache
def version() -> str:
    """The installed version of :data:`DISTRIBUTION` (``unknown`` when not installed)."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def requirement() -> str:
    """``angles-monitor==1.2.0``: what a definition installs to run this very version."""
    return f"{DISTRIBUTION}=={version()}" if version() != "unknown" else DISTRIBUTION
