"""The ``notion_sync`` check: does Notion hold what the table says was synced?

.. code-block:: yaml

    checks:
      - name: notion-sync
        type: notion_sync
        connection: supabase             # or a postgres or sqlite connection
        table: decision_vault
        notion: notion                   # a notion connection
        database_id: "${NOTION_DATABASE_ID}"
        page_id_column: notion_page_id   # the row's Notion page id
        synced: "notion_synced=is.true"  # rows that claim to be in Notion (default: a page id)
        compare: {decision: Name}        # column -> Notion property whose values must agree
        warn_above: 0
        error_above: 10

It reads the data source's pages first, 100 a request (only the compared properties),
and keeps a small index of them; then it streams the table by primary key and looks
each synced row's page up. Three findings, each a count with up to ten sample ids:
``missing_in_notion`` (rows whose page is absent, archived or in the trash),
``orphans_in_notion`` (pages no row points to: created twice, or left behind) and
``drift`` (rows whose compared values differ from their page's, by meaning).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from angles import (
    Check,
    CheckResult,
    Database,
    FilterSyntaxError,
    ServiceError,
    hookimpl,
    parse_filter,
)
from angles.helpers import plural
from angles.plugins.checks.notion_values import COMPARABLE_TYPES, page_value, same
from angles.plugins.connections.notion import NotionConnection

SAMPLES = 10
#: Page ids looked up in one query when the table is asked which pages it points to.
LOOKUP_BATCH = 100
_ID = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$")
_PAGE_KEY = re.compile(r"[0-9a-f]{32}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def page_key(value: Any) -> bytes | None:
    """A page id as 16 bytes, from its dashed or compact form or a page URL; None if
    the value holds no page id."""
    if value is None:
        return None
    text = str(value).strip().lower().split("?", 1)[0].split("#", 1)[0].replace("-", "")
    found = _PAGE_KEY.search(text)
    return bytes.fromhex(found.group()) if found else None


def dashed(key: bytes) -> str:
    """The page id as Notion writes it (8-4-4-4-12 hex digits)."""
    h = key.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class Compared:
    """One ``compare:`` pair: a column and the Notion property whose value must agree."""

    column: str
    property: str
    kind: str
    property_id: str


@dataclass
class Finding:
    """How many of one kind of problem, and the first few ids."""

    count: int = 0
    samples: list[Any] = field(default_factory=list)

    def add(self, sample: Any) -> None:
        self.count += 1
        if len(self.samples) < SAMPLES:
            self.samples.append(sample)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "samples": self.samples}


@dataclass
class Findings:
    """What one run of the check found."""

    synced_rows: int = 0
    pages: int = 0
    missing: Finding = field(default_factory=Finding)
    #: Of the missing, how many point to a page in the trash.
    in_trash: int = 0
    orphans: Finding = field(default_factory=Finding)
    drift: Finding = field(default_factory=Finding)
    #: Column -> rows whose value differs from their page's.
    drifted_columns: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.missing.count + self.orphans.count + self.drift.count

    def details(self) -> dict[str, Any]:
        return {
            "missing_in_notion": {**self.missing.to_dict(), "in_trash": self.in_trash},
            "orphans_in_notion": self.orphans.to_dict(),
            "drift": {**self.drift.to_dict(), "columns": self.drifted_columns},
            "synced_rows": self.synced_rows,
            "pages": self.pages,
        }

    def problems(self) -> list[str]:
        """One phrase per kind of problem found, for the check's message."""
        problems = []
        if self.missing.count:
            trash = f", {self.in_trash} of them in the trash" if self.in_trash else ""
            problems.append(
                f"{plural(self.missing.count, 'synced row')} with no page in Notion{trash}"
            )
        if self.orphans.count:
            problems.append(f"{plural(self.orphans.count, 'Notion page')} no row points to")
        if self.drift.count:
            columns = ", ".join(sorted(self.drifted_columns))
            problems.append(f"{plural(self.drift.count, 'row')} differing from Notion ({columns})")
        return problems


class NotionSyncCheck(Check):
    """Rows that claim to be in Notion against the pages of its data source."""

    type = "notion_sync"
    description = (
        "Notion holds what the table says was synced: no missing pages, no orphans, no drift."
    )
    connection_type = Database
    connection_keys = {"notion": NotionConnection}
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["table", "notion", "database_id"],
        "properties": {
            "table": {"type": "string", "minLength": 1, "description": "The synced table."},
            "notion": {
                "type": "string",
                "minLength": 1,
                "description": "The notion connection to read the database through.",
            },
            "database_id": {
                "type": "string",
                "minLength": 1,
                "description": "The Notion database the table is synced into (NOTION_DATABASE_ID).",
            },
            "data_source": {
                "type": "string",
                "minLength": 1,
                "description": "The data source to read (name or id) when the database has several.",
            },
            "page_id_column": {
                "type": "string",
                "pattern": _COLUMN.pattern,
                "description": "The column holding each row's Notion page id (default notion_page_id).",
            },
            "synced": {
                "type": "string",
                "description": "PostgREST filter matching the rows that claim to be in Notion, "
                "e.g. notion_synced=is.true (default: the page id is not null).",
            },
            "compare": {
                "type": "object",
                "additionalProperties": {"type": "string", "minLength": 1},
                "description": "Column -> Notion property whose values must agree, e.g. "
                "{decision: Name} (title, rich_text, select, status, multi_select, number, "
                "date, checkbox, url, email, phone_number).",
            },
            "warn_above": {
                "type": "integer",
                "minimum": 0,
                "description": "A warning when more problems than this are found (default 0).",
            },
            "error_above": {
                "type": "integer",
                "minimum": 0,
                "description": "An error when more problems than this are found (default 10).",
            },
        },
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = []
        if not _ID.match(config["database_id"].strip()):
            problems.append(
                ("database_id", "is not a Notion id: 32 hex digits, with or without dashes")
            )
        if "synced" in config:
            try:
                parse_filter(config["synced"])
            except FilterSyntaxError as exc:
                problems.append(("synced", str(exc)))
        for column in config.get("compare") or {}:
            if not _COLUMN.match(column):
                problems.append(("compare", f"{column!r} is not a column name"))
        if config.get("warn_above", 0) > config.get("error_above", 10):
            problems.append(("warn_above", "must not be above error_above"))
        return problems

    def run(self) -> CheckResult:
        database: Database = self.connection  # type: ignore[assignment]
        notion: NotionConnection = self.context.connection(self.config["notion"])  # type: ignore[assignment]
        table = self.config["table"]
        column = self.config.get("page_id_column", "notion_page_id")
        schema = database.describe(table)
        for needed in (column, *(self.config.get("compare") or {})):
            if needed not in schema.columns:
                raise ServiceError(
                    database.service,
                    f"table {table!r} has no column {needed!r}",
                    hint="check page_id_column: and compare: of the check",
                )
        database_id = self.config["database_id"].strip()
        source_id = notion.data_source_id(database_id, self.config.get("data_source"))
        compared = self._compared(notion.retrieve_data_source(source_id), database_id)

        pages = read_pages(notion, source_id, compared)
        trashed = {key for key, _ in _pages(notion, source_id, [], in_trash=True)}
        found = Findings(pages=len(pages))
        referenced: set[bytes] = set()
        # A row that claims to be synced without a page id has no page in Notion either.
        synced = self.config.get("synced")
        where = parse_filter(synced or f"{column}=not.is.null")
        for row in database.stream(table, schema, where):
            found.synced_rows += 1
            sample = _sample(row, schema.primary_key)
            key = page_key(row[column])
            values = pages.get(key) if key is not None else None
            if key is not None:
                referenced.add(key)
            if values is None:
                found.missing.add(sample)
                found.in_trash += key in trashed
                continue
            differing = [
                c.column
                for c, value in zip(compared, values, strict=True)
                if not same(c.kind, value, row[c.column])
            ]
            if differing:
                found.drift.add(sample)
                for name in differing:
                    found.drifted_columns[name] = found.drifted_columns.get(name, 0) + 1

        unreferenced = [key for key in pages if key not in referenced]
        if synced and unreferenced:
            # Rows outside ``synced`` may point to pages too: those are no orphans.
            unreferenced = self._unclaimed(database, table, column, unreferenced)
        for key in unreferenced:
            found.orphans.add(dashed(key))
        details = {**found.details(), "data_source_id": source_id}
        return self._judge(table, found, details)

    def _compared(self, source: Mapping[str, Any], database_id: str) -> list[Compared]:
        """The ``compare:`` pairs, checked against the data source's schema."""
        properties = source.get("properties") or {}
        compared = []
        for column, name in (self.config.get("compare") or {}).items():
            spec = properties.get(name)
            if not isinstance(spec, Mapping):
                known = ", ".join(sorted(properties)) or "none"
                raise ServiceError(
                    "Notion",
                    f"database {database_id} has no property {name!r} (it has {known})",
                    hint="check compare: of the check; property names are case-sensitive",
                )
            kind = str(spec.get("type"))
            if kind not in COMPARABLE_TYPES:
                raise ServiceError(
                    "Notion",
                    f"property {name!r} is a {kind} property, which notion_sync cannot compare",
                    hint="compare title, rich_text, select, status, multi_select, number, date, "
                    "checkbox, url, email or phone_number properties",
                )
            compared.append(Compared(column, name, kind, str(spec.get("id") or name)))
        return compared

    def _unclaimed(
        self, database: Database, table: str, column: str, keys: list[bytes]
    ) -> list[bytes]:
        """Those of ``keys`` that no row of the table points to, whatever it claims."""
        unclaimed = []
        for start in range(0, len(keys), LOOKUP_BATCH):
            batch = keys[start : start + LOOKUP_BATCH]
            forms = [form for key in batch for form in (dashed(key), key.hex())]
            rows = database.select(
                table, where=parse_filter(f"{column}=in.({','.join(forms)})"), limit=len(forms)
            )
            claimed = {page_key(row[column]) for row in rows}
            unclaimed += [key for key in batch if key not in claimed]
        return unclaimed

    def _judge(self, table: str, found: Findings, details: dict[str, Any]) -> CheckResult:
        """The status: the sum of the findings against ``warn_above`` and ``error_above``."""
        warn_above = self.config.get("warn_above", 0)
        error_above = self.config.get("error_above", 10)
        details.update(warn_above=warn_above, error_above=error_above)
        problems = found.problems()
        if not problems:
            return CheckResult.ok(
                f"Notion matches {table}: {plural(found.synced_rows, 'synced row')}, "
                f"{plural(found.pages, 'page')}",
                **details,
            )
        message = f"{table}: " + "; ".join(problems)
        if found.total > error_above:
            return CheckResult.error(f"{message} (error above {error_above})", **details)
        if found.total > warn_above:
            return CheckResult.warning(f"{message} (warning above {warn_above})", **details)
        return CheckResult.ok(message, **details)


def read_pages(
    notion: NotionConnection, source_id: str, compared: list[Compared]
) -> dict[bytes, tuple[Any, ...]]:
    """Every live page of the data source: its id and the meaning of each compared value."""
    pages: dict[bytes, tuple[Any, ...]] = {}
    for key, page in _pages(notion, source_id, compared):
        if page.get("in_trash") or page.get("archived"):
            continue
        properties = page.get("properties") or {}
        pages[key] = tuple(page_value(c.kind, properties.get(c.property)) for c in compared)
    return pages


def _pages(
    notion: NotionConnection, source_id: str, compared: list[Compared], *, in_trash: bool = False
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    # Only the compared properties travel (the title alone when there are none).
    only = [c.property_id for c in compared] or ["title"]
    query = notion.query(source_id, filter_properties=only, in_trash=True if in_trash else None)
    for page in query:
        key = page_key(page.get("id"))
        if key is not None:
            yield key, page


def _sample(row: Mapping[str, Any], primary_key: tuple[str, ...]) -> Any:
    values = [v if isinstance(v, str | int) else str(v) for v in (row[c] for c in primary_key)]
    return values[0] if len(values) == 1 else values


@hookimpl
def angles_register_checks(register: Any) -> None:
    register(NotionSyncCheck)
