"""The OpenAPI (Swagger 2.0) root of PostgREST, after its own code.

The rules, and where they come from (PostgREST v13.0.7 / v14, ``src/PostgREST/``):

* Columns come from the schema cache query ``tablesSqlQuery`` (``SchemaCache.hs``), ported
  as :data:`_COLUMNS`: ``column_default`` is the column's default, else a domain's default;
  identity columns get ``nextval('seq')`` and stored generated columns none; ``is_nullable``
  is false for NOT NULL columns and for NOT NULL domains; ``data_type`` is the base type of a
  domain over a ``pg_catalog`` type, the type name without modifiers for ``pg_catalog`` types
  and ``format_type`` with modifiers otherwise; enum labels come from the base type;
  ``maxLength`` is ``information_schema._pg_char_max_length``. Partitions are left out and,
  in the default ``openapi-mode`` (follow-privileges), so are tables the role has no
  privilege on (``accessibleTables``).
* ``makeTableDef``/``makeProperty`` (``Response/OpenAPI.hs``): ``required`` is every
  non-nullable column, with or without a default; ``format`` is ``data_type`` (from v14.8,
  ``toSwaggerFormat`` turns smallint and integer into ``int32`` and bigint into ``int64``);
  ``type`` is ``toSwaggerType``; arrays get ``items``; ``default`` is ``parseDefault``'s text
  decoded as JSON and left out when that fails (:func:`openapi_default`).
* Paths (``makePathItem``): GET for every table and view, POST/PATCH/DELETE when the relation
  is insertable, updatable or deletable; the table comment's first line is the operations'
  ``summary``, the rest their ``description``. Row filter parameters (``makeRowFilter``) carry
  the column comment and no ``format`` (removed in v12.2.3).

Not reproduced: functions (``/rpc/...`` paths), primary and foreign keys of views (derived
by PostgREST from the view definitions), and the key order of the JSON objects.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

__all__ = ["openapi_default", "openapi_document", "swagger_format", "swagger_type"]

# tablesSqlQuery (SchemaCache.hs), for one schema, with the privilege filter of
# accessibleTables and the first single-column foreign key of each column.
_COLUMNS = """
WITH RECURSIVE recurse AS (
    SELECT oid, typbasetype, typnamespace AS base_namespace,
           COALESCE(NULLIF(typbasetype, 0), oid) AS base_type
    FROM pg_type
    UNION
    SELECT t.oid, b.typbasetype, b.typnamespace, COALESCE(NULLIF(b.typbasetype, 0), b.oid)
    FROM recurse t JOIN pg_type b ON t.typbasetype = b.oid
), base_types AS (
    SELECT oid, base_namespace, base_type FROM recurse WHERE typbasetype = 0
)
SELECT
    c.relname,
    obj_description(c.oid, 'pg_class'),
    c.relkind IN ('r', 'p') OR (c.relkind IN ('v', 'f')
        AND (pg_relation_is_updatable(c.oid::regclass, TRUE) & 28) <> 0) AS writable,
    a.attname,
    col_description(c.oid, a.attnum),
    CASE
        WHEN t.typbasetype != 0 AND ad.adbin IS NULL THEN pg_get_expr(t.typdefaultbin, 0)
        WHEN a.attidentity = 'd' THEN format('nextval(%%L)', seq.objid::regclass)
        WHEN a.attgenerated = 's' THEN NULL
        ELSE pg_get_expr(ad.adbin, ad.adrelid)::text
    END AS column_default,
    NOT (a.attnotnull OR t.typtype = 'd' AND t.typnotnull) AS is_nullable,
    CASE
        WHEN t.typtype = 'd' THEN CASE
            WHEN bt.base_namespace = 'pg_catalog'::regnamespace
                THEN format_type(bt.base_type, NULL::integer)
            ELSE format_type(a.atttypid, a.atttypmod) END
        ELSE CASE
            WHEN t.typnamespace = 'pg_catalog'::regnamespace
                THEN format_type(a.atttypid, NULL::integer)
            ELSE format_type(a.atttypid, a.atttypmod) END
    END::text AS data_type,
    information_schema._pg_char_max_length(
        information_schema._pg_truetypid(a.*, t.*),
        information_schema._pg_truetypmod(a.*, t.*)
    )::integer AS character_maximum_length,
    (SELECT array_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum
      WHERE enumtypid = bt.base_type) AS enum_labels,
    coalesce(a.attnum = ANY(pk.conkey), false) AS is_pk,
    fk.table_name,
    fk.column_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN base_types bt ON bt.oid = t.oid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_depend seq
    ON seq.refobjid = a.attrelid AND seq.refobjsubid = a.attnum AND seq.deptype = 'i'
LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p' AND c.relkind IN ('r', 'p')
LEFT JOIN LATERAL (
    SELECT fc.relname AS table_name, fa.attname AS column_name
    FROM pg_constraint f
    JOIN pg_class fc ON fc.oid = f.confrelid
    JOIN pg_attribute fa ON fa.attrelid = f.confrelid AND fa.attnum = f.confkey[1]
    WHERE f.conrelid = c.oid AND f.contype = 'f' AND f.conparentid = 0
      AND cardinality(f.conkey) = 1 AND f.conkey[1] = a.attnum
    ORDER BY f.conname
    LIMIT 1
) fk ON true
WHERE n.nspname = %s
  AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
  AND NOT c.relispartition
  AND (pg_has_role(c.relowner, 'USAGE')
       OR has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
       OR has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
ORDER BY c.relname, a.attnum
"""

_COLUMN_NAMES = (
    "relname", "table_comment", "writable", "attname", "column_comment", "column_default",
    "is_nullable", "data_type", "character_maximum_length", "enum_labels", "is_pk",
    "table_name", "column_name",
)  # fmt: skip
_STRING_TYPES = {"character varying", "character", "text"}
_INTEGER_TYPES = {"smallint", "integer", "bigint"}
_NUMBER_TYPES = {"numeric", "real", "double precision"}
_INTEGER_FORMATS = {"smallint": "int32", "integer": "int32", "bigint": "int64"}


def swagger_type(column_type: str) -> str | None:
    """``toSwaggerType``: json and jsonb get no type, ``...[]`` is an array, the rest string."""
    if column_type in _STRING_TYPES:
        return "string"
    if column_type in _INTEGER_TYPES:
        return "integer"
    if column_type in _NUMBER_TYPES:
        return "number"
    if column_type == "boolean":
        return "boolean"
    if column_type in ("json", "jsonb"):
        return None
    return "array" if column_type.endswith("[]") else "string"


def swagger_format(column_type: str, integer_formats: bool) -> str:
    """The ``format``: the type name, or ``toSwaggerFormat`` (v14.8+) for integer types."""
    return _INTEGER_FORMATS.get(column_type, column_type) if integer_formats else column_type


def _decode_json(text: str) -> Any:
    """Aeson's ``decode``: any JSON value, and nothing else (no NaN or Infinity)."""

    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError:
        return None


def openapi_default(column_type: str, default: str | None) -> Any:
    """``parseDefault`` then ``JSON.decode``: the ``default`` PostgREST shows, or None.

    For a string-typed column (``toSwaggerType`` gives string: text, varchar, but also
    timestamps, uuid, enums...) a trailing ``::<type>`` is cut, the quotes around are
    dropped (``T.dropAround (== '\\'')``, so ``''`` inside stays doubled) and the text is
    wrapped in double quotes without escaping. Any other type keeps the expression as is.
    Whatever is not then valid JSON is left out: ``'{}'::jsonb``, ``'{a}'::text[]``,
    ``'-1'::integer``, ``nextval(...)``, ``(1 + 1)``, ``now()`` on a json column... but
    ``now()`` on a timestamp column shows as the string ``"now()"``.
    """
    if default is None:
        return None
    if swagger_type(column_type) == "string":
        suffix = f"::{column_type}"
        if default.endswith(suffix):
            default = default[: -len(suffix)].strip("'")
        default = f'"{default}"'
    return _decode_json(default)


def _description(comment: str | None, notes: list[str]) -> str | None:
    if not notes:
        return comment
    prefix = f"{comment}\n\n" if comment else ""
    return prefix + "\n".join(["Note:", *notes])


def _property(row: dict[str, Any], integer_formats: bool) -> dict[str, Any]:
    column_type = row["data_type"]
    prop: dict[str, Any] = {}
    value = openapi_default(column_type, row["column_default"])
    if value is not None:
        prop["default"] = value
    notes = []
    if row["is_pk"]:
        notes.append("This is a Primary Key.<pk/>")
    if row["table_name"]:
        table, column = row["table_name"], row["column_name"]
        notes.append(
            f"This is a Foreign Key to `{table}.{column}`.<fk table='{table}' column='{column}'/>"
        )
    description = _description(row["column_comment"], notes)
    if description is not None:
        prop["description"] = description
    if row["enum_labels"]:
        prop["enum"] = list(row["enum_labels"])
    prop["format"] = swagger_format(column_type, integer_formats)
    if row["character_maximum_length"] is not None:
        prop["maxLength"] = row["character_maximum_length"]
    kind = swagger_type(column_type)
    if kind is not None:
        prop["type"] = kind
    if kind == "array":
        element = swagger_type(column_type[:-2])
        prop["items"] = {"type": element} if element else {}
    return dict(sorted(prop.items()))


def _split_comment(comment: str) -> tuple[str, str]:
    """``T.breakOn "\\n"``: the first line, and the rest without its leading newlines."""
    first, newline, rest = comment.partition("\n")
    return first, (newline + rest).lstrip("\n")


def openapi_document(
    conn: psycopg.Connection[Any],
    schema: str,
    host: str,
    version: str,
    integer_formats: bool,
) -> dict[str, Any]:
    """The document PostgREST serves at ``/`` for ``schema``, read as the current role."""
    row = conn.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
        [schema],
    ).fetchone()
    comment = row[0] if row else None
    title, description = (
        _split_comment(comment)
        if comment is not None
        else ("PostgREST API", "This is a dynamic API generated by PostgREST")
    )
    tables: dict[str, dict[str, Any]] = {}
    # The schema cache is read on PostgREST's own connection, whose search_path is the
    # default one: type names outside it come schema-qualified from format_type.
    conn.execute("""SELECT set_config('search_path', '"$user", public', true)""")
    for values in conn.execute(_COLUMNS, [schema]):
        column = dict(zip(_COLUMN_NAMES, values, strict=True))
        table = tables.setdefault(
            column["relname"],
            {"comment": column["table_comment"], "writable": column["writable"], "columns": []},
        )
        table["columns"].append(column)
    definitions: dict[str, Any] = {}
    parameters = _parameters()
    paths: dict[str, Any] = {"/": _ROOT_PATH}
    for name, table in tables.items():
        columns = table["columns"]
        definition: dict[str, Any] = {}
        if table["comment"] is not None:
            definition["description"] = table["comment"]
        required = [c["attname"] for c in columns if not c["is_nullable"]]
        if required:
            definition["required"] = required
        definition["properties"] = {c["attname"]: _property(c, integer_formats) for c in columns}
        definition["type"] = "object"
        definitions[name] = definition
        filters = []
        for column in columns:
            key = f"rowFilter.{name}.{column['attname']}"
            parameter: dict[str, Any] = {"name": column["attname"], "required": False}
            if column["column_comment"] is not None:
                parameter["description"] = column["column_comment"]
            parameters[key] = {**parameter, "in": "query", "type": "string"}
            filters.append({"$ref": f"#/parameters/{key}"})
        parameters[f"body.{name}"] = {
            "name": name,
            "description": name,
            "required": False,
            "in": "body",
            "schema": {"$ref": f"#/definitions/{name}"},
        }
        paths[f"/{name}"] = _path_item(name, table, filters)
    docs = version.split(".")[0]
    return {
        "swagger": "2.0",
        "info": {"description": description, "title": title, "version": f"{version} (angles-test)"},
        "host": host,
        "basePath": "/",
        "schemes": ["http"],
        "consumes": _MEDIA,
        "produces": _MEDIA,
        "paths": paths,
        "definitions": definitions,
        "parameters": parameters,
        "externalDocs": {
            "description": "PostgREST Documentation",
            "url": f"https://postgrest.org/en/v{docs}/references/api.html",
        },
    }


_MEDIA = [
    "application/json",
    "application/vnd.pgrst.object+json;nulls=stripped",
    "application/vnd.pgrst.object+json",
    "text/csv",
]
_ROOT_PATH = {
    "get": {
        "produces": ["application/openapi+json", "application/json"],
        "responses": {"200": {"description": "OK"}},
        "summary": "OpenAPI description (this document)",
        "tags": ["Introspection"],
    }
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/parameters/{name}"}


def _path_item(name: str, table: dict[str, Any], filters: list[dict[str, str]]) -> dict[str, Any]:
    base: dict[str, Any] = {"tags": [name]}
    if table["comment"] is not None:
        summary, description = _split_comment(table["comment"])
        base["summary"] = summary
        if description:
            base["description"] = description
    item: dict[str, Any] = {
        "get": {
            **base,
            "parameters": [
                *filters,
                *map(_ref, ["select", "order", "range", "rangeUnit", "offset", "limit"]),
                _ref("preferCount"),
            ],
            "responses": {
                "200": {
                    "description": "OK",
                    "schema": {"items": {"$ref": f"#/definitions/{name}"}, "type": "array"},
                },
                "206": {"description": "Partial Content"},
            },
        }
    }
    if table["writable"]:
        body = _ref(f"body.{name}")
        item["post"] = {
            **base,
            "parameters": [body, _ref("select"), _ref("preferPost")],
            "responses": {"201": {"description": "Created"}},
        }
        item["patch"] = {
            **base,
            "parameters": [*filters, body, _ref("preferReturn")],
            "responses": {"204": {"description": "No Content"}},
        }
        item["delete"] = {
            **base,
            "parameters": [*filters, _ref("preferReturn")],
            "responses": {"204": {"description": "No Content"}},
        }
    return item


def _parameters() -> dict[str, Any]:
    """``makeParamDefs``; ``preferParams`` has no ``enum`` (fixed in v13.0.6)."""

    def prefer(values: list[str]) -> dict[str, Any]:
        parameter: dict[str, Any] = {"name": "Prefer", "description": "Preference"}
        parameter |= {"required": False, "in": "header", "type": "string"}
        return parameter | ({"enum": values} if values else {})

    def parameter(name: str, description: str, where: str = "query") -> dict[str, Any]:
        return {
            "name": name,
            "description": description,
            "required": False,
            "in": where,
            "type": "string",
        }

    returns = ["return=representation", "return=minimal", "return=none"]
    return {
        "preferParams": prefer([]),
        "preferReturn": prefer(returns),
        "preferCount": prefer(["count=none"]),
        "preferPost": prefer(
            [*returns, "resolution=ignore-duplicates", "resolution=merge-duplicates"]
        ),
        "select": parameter("select", "Filtering Columns"),
        "on_conflict": parameter("on_conflict", "On Conflict"),
        "order": parameter("order", "Ordering"),
        "range": parameter("Range", "Limiting and Pagination", "header"),
        "rangeUnit": {
            **parameter("Range-Unit", "Limiting and Pagination", "header"),
            "default": "items",
        },
        "offset": parameter("offset", "Limiting and Pagination"),
        "limit": parameter("limit", "Limiting and Pagination"),
    }
