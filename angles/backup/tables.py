"""Which tables a backup entry covers: one ``table:``, or ``tables:`` (``all``, or names and
globs) less ``exclude:``, resolved against what the connection holds at each run.

A bare name is a table of the connection's own schema (``public`` on PostgreSQL, ``main``
on SQLite); ``schema.table`` names one elsewhere. ``all`` means the connection's own schema.
The schemas the names and globs name are handed to :meth:`Database.list_tables_of`, so a
backend that describes one schema per request (the Data API) lists those too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from angles.core.connection import BACKED_UP_KINDS, Database
from angles.core.errors import BackupError


@dataclass(frozen=True)
class TableSelection:
    """The tables one backup entry names."""

    patterns: tuple[str, ...] | None  # None: every table of the connection's schema
    exclude: tuple[str, ...] = ()

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> TableSelection:
        if "table" in entry:
            return cls((entry["table"],))
        tables = entry.get("tables", "all")
        patterns = None if tables == "all" else tuple(tables)
        return cls(patterns, tuple(entry.get("exclude") or ()))

    @property
    def single(self) -> str | None:
        """The one table of a ``table:`` entry (or of a list of one plain name)."""
        if self.patterns and len(self.patterns) == 1 and not _is_glob(self.patterns[0]):
            return self.patterns[0]
        return None

    @property
    def schemas(self) -> tuple[str, ...]:
        """The schemas the names and globs name (``audit`` of ``audit.*``), in order."""
        named = (p.partition(".") for p in self.patterns or ())
        return tuple(dict.fromkeys(schema for schema, dot, _ in named if dot))

    def covers(self, table: str) -> bool:
        """Whether ``table`` is one this entry backs up (by its name alone)."""
        if any(fnmatchcase(table, pattern) for pattern in self.exclude):
            return False
        if self.patterns is None:
            return "." not in table
        return any(fnmatchcase(table, pattern) for pattern in self.patterns)

    def resolve(self, database: Database) -> tuple[list[str], list[str]]:
        """The tables to back up now, in name order, and the relations left out (views),
        each as ``name (kind)``.

        A plain name is backed up as given (its absence is the read's error to report);
        globs and ``all`` are matched against the connection's catalog.
        """
        plain = [p for p in self.patterns or () if not _is_glob(p)]
        schemas = self.schemas
        if self.patterns is not None and len(plain) == len(self.patterns):
            catalog = _catalog_or_none(database, schemas)
            for name in plain:
                kind = (catalog or {}).get(name)
                if kind is not None and kind not in BACKED_UP_KINDS:
                    raise BackupError(
                        f"{name!r} is a {kind}, not a table",
                        hint="back up the tables it reads from; a view holds no rows of its own",
                    )
            return [n for n in dict.fromkeys(plain) if self.covers(n)], []
        catalog = _catalog(database, schemas)
        tables, skipped = [], []
        for name, kind in sorted(catalog.items()):
            wanted = self.covers(name) or name in plain
            if not wanted:
                continue
            if kind in BACKED_UP_KINDS:
                tables.append(name)
            elif name in plain:
                raise BackupError(f"{name!r} is a {kind}, not a table")
            else:
                skipped.append(f"{name} ({kind})")
        tables += [n for n in plain if n not in catalog and n not in tables]
        if not tables:
            raise BackupError(
                "no table matches " + ", ".join(self.patterns or ("all",)),
                hint="check `tables:` and `exclude:` of the backup entry",
            )
        return tables, skipped


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def _catalog(database: Database, schemas: tuple[str, ...] = ()) -> dict[str, str]:
    try:
        return database.list_tables_of(schemas) if schemas else database.list_tables()
    except NotImplementedError:
        raise BackupError(
            f"the {database.type} connection {database.name!r} cannot list its tables",
            hint="name the tables under `tables:` without globs",
        ) from None


def _catalog_or_none(database: Database, schemas: tuple[str, ...] = ()) -> dict[str, str] | None:
    try:
        return database.list_tables_of(schemas) if schemas else database.list_tables()
    except NotImplementedError:
        return None


__all__ = ["TableSelection"]
