"""The check interface: looks at something and says ok, warning or error."""

from __future__ import annotations

from typing import ClassVar

from angles.core.connection import Connection
from angles.core.plugin import Plugin
from angles.core.results import CheckResult


class Check(Plugin):
    """One entry of ``checks:``.

    A check that reads through a connection sets ``connection_type`` to the connection
    class it needs (``Database`` for tables); the pipeline then requires a
    ``connection:`` key naming such a connection, and :attr:`connection` returns it.
    The runner times :meth:`run`, enforces ``timeout_seconds`` and turns an exception
    into an error result, so a check only has to look and report.
    """

    kind = "check"
    connection_type: ClassVar[type[Connection] | None] = None
    #: Config keys whose value names a sink (``sink: github``); validation checks they exist.
    sink_keys: ClassVar[tuple[str, ...]] = ()
    #: Config keys naming a further connection, with the class it must be
    #: (``notion: notion`` for a ``NotionConnection``); validation checks both.
    connection_keys: ClassVar[dict[str, type[Connection]]] = {}
    #: Config keys whose value names an entry of ``backups:``; validation checks it exists.
    backup_keys: ClassVar[tuple[str, ...]] = ()

    @property
    def connection(self) -> Connection:
        """The connection named by this check's ``connection:`` key."""
        return self.context.connection(self.config["connection"])

    def run(self) -> CheckResult:
        """Look, and return the result. Exceptions become error results."""
        raise NotImplementedError

    def simulate_failure(self) -> CheckResult:
        """The result of a ``--test`` run: an error, without contacting anything."""
        return CheckResult.error(
            f"[TEST] simulated failure of the {self.type} check {self.name!r}", test=True
        )
