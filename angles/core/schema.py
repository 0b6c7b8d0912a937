"""The JSON Schema of the pipeline file: the core's keys merged with every plugin's own."""

from __future__ import annotations

import copy
from typing import Any

from angles.core.kinds import KIND, KINDS
from angles.core.plugins import Plugins, Registry

CONNECTION_KEY = {
    "type": "string",
    "description": "The name of a connection under `connections:`.",
}

BACKUP_ENTRY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "connection", "sinks"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "A unique name for the backup."},
        "connection": CONNECTION_KEY,
        "table": {"type": "string", "minLength": 1, "description": "The table to back up."},
        "tables": {
            "description": "The tables to back up: `all` (every table, found at each run) or "
            'names and globs ("audit.*" for another schema). Instead of `table:`.',
            "oneOf": [
                {"const": "all"},
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
            ],
        },
        "exclude": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "Names and globs of tables that `tables:` leaves out.",
        },
        "sinks": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string"},
            "description": "Names of the sinks (under `sinks:`) that store the backup.",
        },
    },
}

CORE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "angles pipeline",
    "type": "object",
    "additionalProperties": False,
    "required": ["version"],
    "properties": {
        "version": {"const": 1, "description": "The pipeline format version: 1."},
        "extends": {
            "type": "string",
            "description": "A pipeline file this one builds on (maps merge, lists replace).",
        },
        "name": {
            "type": "string",
            "description": "The pipeline's name, used in reports and alerts.",
        },
        "schedule": {
            "type": "string",
            "description": "When `angles schedule` runs the pipeline: a cron expression, in UTC.",
        },
        "state": {
            "type": "string",
            "description": "The state store (run history): a SQLite path or a postgresql:// URL.",
        },
        "log_dir": {"type": "string", "description": "The folder of the log files."},
        "report": {
            "type": "string",
            "minLength": 1,
            "description": "The status page (one HTML file) written after every run, "
            "relative to the pipeline file.",
        },
        "metrics": {
            "type": "string",
            "minLength": 1,
            "description": "The Prometheus metrics file (text format) written after every run, "
            "relative to the pipeline file.",
        },
        "connections": {
            "type": "object",
            "description": "Named connections that checks, backups and restores use.",
            "additionalProperties": {"type": "object", "required": ["type"]},
        },
        "checks": {
            "type": "array",
            "description": "The health checks, run concurrently.",
            "items": {"type": "object", "required": ["name", "type"]},
        },
        "backups": {
            "type": "array",
            "description": "The tables to back up, and where to.",
            "items": BACKUP_ENTRY,
        },
        "sinks": {
            "type": "object",
            "description": "Named places that store backup files.",
            "additionalProperties": {"type": "object", "required": ["type"]},
        },
        "notifiers": {
            "type": "array",
            "description": "Who to tell about a run, and when.",
            "items": {"type": "object", "required": ["name", "type"]},
        },
        "restore": {
            "type": "object",
            "additionalProperties": False,
            "description": "How restores behave.",
            "properties": {
                "auto_migrate": {
                    "type": "boolean",
                    "description": "Let a live restore proceed when the backup's columns differ from the table's.",
                },
                "batch_size": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Rows written per batch by a live restore (default 500).",
                },
            },
        },
        "defaults": {
            "type": "object",
            "additionalProperties": False,
            "description": "Defaults for every entry.",
            "properties": {
                "timeout_seconds": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": "Seconds a check or notification may take (default 30).",
                },
            },
        },
    },
}


def entry_schema(kind: str, cls: type) -> dict[str, Any]:
    """The full schema of one entry of ``kind`` whose type is ``cls``."""
    own = copy.deepcopy(dict(cls.config_schema))
    properties = {**KIND[kind].common_keys, **own.get("properties", {})}
    required = list(own.get("required", []))
    if kind == "check" and getattr(cls, "connection_type", None) is not None:
        properties.setdefault("connection", CONNECTION_KEY)
        required.append("connection")
    own.update(
        type="object",
        additionalProperties=False,
        properties=properties,
        required=sorted(set(required) | KIND[kind].required_keys),
    )
    if cls.description:
        own.setdefault("description", cls.description)
    properties["type"] = {**properties["type"], "const": cls.type}
    return own


#: A value written as a variable (``"${SUPABASE_URL}"``), substituted before validation.
VARIABLE_VALUE = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}


def accept_variables(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every scalar property also accepting a ``${VAR}`` placeholder.

    The file an editor checks still holds the placeholders that angles substitutes
    before it validates, so the editor's schema must let them through.
    """
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for key, spec in properties.items():
            if key == "type" or not isinstance(spec, dict):
                continue
            if spec.get("type") in ("object", "array") or "properties" in spec:
                accept_variables(spec)
                if isinstance(spec.get("items"), dict):
                    accept_variables(spec["items"])
                continue
            inner = {k: v for k, v in spec.items() if k != "description"}
            properties[key] = {
                **({"description": spec["description"]} if "description" in spec else {}),
                "anyOf": [inner, VARIABLE_VALUE],
            }
    return schema


def build_schema(plugins: Plugins) -> dict[str, Any]:
    """The pipeline schema with every installed plugin type, for editors.

    Scalars also accept ``${VAR}`` placeholders; ``angles validate`` checks the values
    after substitution, type by type.
    """
    schema = accept_variables(copy.deepcopy(CORE_SCHEMA))
    defs: dict[str, Any] = {}
    for kind in KINDS:
        place = schema["properties"][kind.section]
        registry: Registry = plugins.registries[kind.name]
        branches = []
        for type_name in registry:
            ref = f"{kind.name}.{type_name}"
            defs[ref] = accept_variables(entry_schema(kind.name, registry.types[type_name]))
            branches.append(
                {
                    "if": {"properties": {"type": {"const": type_name}}},
                    "then": {"$ref": f"#/$defs/{ref}"},
                }
            )
        entry = {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": list(registry)}},
            "allOf": branches,
        }
        if "items" in place:
            place["items"] = entry
        else:
            place["additionalProperties"] = entry
    schema["$defs"] = defs
    return schema
