"""The plugin kinds: one entry each, from which the registries, the pipeline's sections,
validation and the schema are derived. Adding a kind is adding an entry here (and its hook
in :mod:`angles.core.hookspecs`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from angles.backup.encryption import ENCRYPT_SCHEMA
from angles.core.check import Check
from angles.core.connection import Connection
from angles.core.notifier import Notifier
from angles.core.plugin import Plugin
from angles.core.sink import Sink

DURATION_PATTERN = r"^\s*\d+\s*(s|m|h|d|w)\s*$"
#: A duration that is not zero (``defaults.run_timeout``).
POSITIVE_DURATION_PATTERN = r"^\s*0*[1-9]\d*\s*(s|m|h|d|w)\s*$"


@dataclass(frozen=True)
class Kind:
    """One kind of plugin and where its entries live in a pipeline file.

    ``named`` kinds are a list of entries, each with a ``name:`` (checks run in order);
    the others are a map from name to entry (``connections:``, ``sinks:``).
    """

    name: str
    base: type[Plugin]
    section: str
    hook: str
    named: bool
    common_keys: dict[str, dict[str, Any]]
    #: Checks of the common keys beyond their schema: ``(key path, message)`` pairs.
    validate_common: Callable[[Mapping[str, Any]], list[tuple[tuple[Any, ...], str]]] | None = None

    def validate(self, entry: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
        """Problems with an entry's common keys (the entry has passed the schema)."""
        return self.validate_common(entry) if self.validate_common else []

    @property
    def required_keys(self) -> set[str]:
        """The keys every entry of the kind must have."""
        return {"name", "type"} if self.named else {"type"}


_CONNECTION_KEYS: dict[str, dict[str, Any]] = {
    "type": {"type": "string", "description": "The connection type (see `angles plugins`)."},
}

_CHECK_KEYS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "minLength": 1, "description": "A unique name for the check."},
    "type": {"type": "string", "description": "The check type (see `angles plugins`)."},
    "timeout_seconds": {
        "type": "number",
        "exclusiveMinimum": 0,
        "description": "Seconds the check may take (default: defaults.timeout_seconds).",
    },
}

_SINK_KEYS: dict[str, dict[str, Any]] = {
    "type": {"type": "string", "description": "The sink type (see `angles plugins`)."},
    "retention_days": {
        "type": "integer",
        "minimum": 1,
        "description": "Delete backups older than this many days (after a new one is stored).",
    },
    "keep_daily": {
        "type": "integer",
        "minimum": 0,
        "description": "Keep the newest backup of each of the last N days, whatever their age.",
    },
    "keep_weekly": {
        "type": "integer",
        "minimum": 0,
        "description": "Keep the newest backup of each of the last N weeks.",
    },
    "keep_monthly": {
        "type": "integer",
        "minimum": 0,
        "description": "Keep the newest backup of each of the last N months.",
    },
    "encrypt": ENCRYPT_SCHEMA,
}


def _validate_sink_keys(entry: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    from angles.backup.encryption import validate_encrypt

    return validate_encrypt(entry.get("encrypt"))


_NOTIFIER_KEYS: dict[str, dict[str, Any]] = {
    "name": {
        "type": "string",
        "minLength": 1,
        "description": "A unique name for the notifier.",
    },
    "type": {"type": "string", "description": "The notifier type (see `angles plugins`)."},
    "on": {
        "type": "array",
        "items": {"enum": ["warning", "error", "recovery", "always"]},
        "uniqueItems": True,
        "description": "When to notify: warning, error, recovery, always (default: warning, error, recovery).",
    },
    "failure_threshold": {
        "type": "integer",
        "minimum": 1,
        "description": "Alert after this many failing runs in a row (default 1).",
    },
    "remind_every": {
        "type": ["string", "null"],
        "pattern": DURATION_PATTERN,
        "description": "Repeat a still-failing alert at most this often, e.g. 6h or 1d (default: every run).",
    },
    "timeout_seconds": {
        "type": "number",
        "exclusiveMinimum": 0,
        "description": "Seconds a delivery may take (default: defaults.timeout_seconds).",
    },
    "retries": {
        "type": "integer",
        "minimum": 0,
        "maximum": 5,
        "description": "Attempts after a temporary failure: a 429 or 5xx answer, a timeout, "
        "a 4xx mail reply (default 2).",
    },
}

#: Every plugin kind, in the order ``angles plugins`` and the schema show them.
KINDS: tuple[Kind, ...] = (
    Kind(
        "connection",
        Connection,
        "connections",
        "angles_register_connections",
        False,
        _CONNECTION_KEYS,
    ),
    Kind("check", Check, "checks", "angles_register_checks", True, _CHECK_KEYS),
    Kind("sink", Sink, "sinks", "angles_register_sinks", False, _SINK_KEYS, _validate_sink_keys),
    Kind("notifier", Notifier, "notifiers", "angles_register_notifiers", True, _NOTIFIER_KEYS),
)
KIND = {kind.name: kind for kind in KINDS}
