"""The base class every plugin class derives from, whatever its kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from angles.core.retry import RetryPolicy

if TYPE_CHECKING:
    from angles.core.context import Context


class Plugin:
    """A configured instance of a plugin type, made from one entry of the pipeline file.

    Subclasses set ``type`` (the name users write as ``type:``), a one-line
    ``description``, and ``config_schema``: a JSON Schema object for the keys this type
    reads, with ``additionalProperties: false`` and a ``description`` on every property.
    A property holding a secret is marked ``"secret": true`` so that its value is kept out
    of every log, report and notification. The core adds the keys common to the kind
    (``name``, ``type``…), validates the entry, and passes it as ``config``.
    """

    kind: ClassVar[str] = ""
    type: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }
    #: Tries after the first for a transient failure, unless the entry sets ``retries``.
    default_retries: ClassVar[int] = 0

    def __init__(self, name: str, config: Mapping[str, Any], context: Context) -> None:
        self.name = name
        self.config = config
        self.context = context

    @property
    def timeout(self) -> float:
        """Seconds one operation may take: ``timeout_seconds``, else the pipeline default."""
        return float(self.config.get("timeout_seconds") or self.context.default_timeout)

    @property
    def retry_policy(self) -> RetryPolicy:
        """How this plugin's calls are retried (see :mod:`angles.core.retry`)."""
        return RetryPolicy.with_retries(int(self.config.get("retries", self.default_retries)))

    def time_bound(self) -> float:
        """The longest one call of this plugin can take: every try timing out, waits
        included. The runner gives a check longer than its connection's bound."""
        return self.retry_policy.worst_case(self.timeout)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Checks beyond the schema, run by ``angles validate``: ``(key, message)`` pairs.

        The config has passed the schema. Nothing may be contacted here.
        """
        return []

    @classmethod
    def secret_options(cls) -> list[str]:
        """The names of the properties marked ``"secret": true``."""
        properties = cls.config_schema.get("properties", {})
        return [key for key, spec in properties.items() if spec.get("secret")]
