"""What a plugin may use besides ``angles`` itself: the helpers the builtin plugins use.

Every builtin plugin imports only from ``angles`` and ``angles.helpers`` (a test holds
them to it), so a third-party plugin can do whatever a builtin does. Names are imported
on first use: a plugin that imports one helper does not load HTTP or the backup engine.

- HTTP: :func:`request` (angles' retries and one-line errors), :func:`describe_failure`,
  :func:`readable_body`, :func:`network_failure` (DNS, TLS, refused, no answer told
  apart, for any client library), :func:`user_agent`.
- Retries for other client libraries: :class:`RetryPolicy`, :func:`parse_retry_after`
  (and ``context.call``, which bounds them by the run's budget); :class:`Budget`.
- Text: :func:`one_line`, :func:`excerpt`, :func:`plural`, :func:`format_duration`,
  :func:`format_timestamp`, :func:`parse_duration`, :func:`parse_timestamp`.
- Exact JSON numbers (a numeric wider than a float keeps every digit):
  :func:`loads_exact`, :func:`dumps_exact`, :func:`number_from_text`, :func:`jsonable`;
  :data:`JSON_TYPES` (PostgreSQL types whose values are not carried as text).
- Backup files: :class:`BackupName` (``{table}_{YYYY-MM-DD_HH-MM-SS}.json``),
  :data:`BACKUP_SUFFIXES` (how stored backup files end, encrypted ones included),
  :func:`open_backup` (a stored file's plain bytes, decrypted when it is ``.age``),
  :func:`metadata_from_head` (the metadata in a file's first bytes), :func:`sort_key`
  (the order backups and restores put primary keys in), :func:`drill_backup` (restore
  a stored backup into a scratch database and read it back), :class:`TableSelection` (the
  tables a backup entry covers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from angles.backup.diff import sort_key
    from angles.backup.drill import drill_backup
    from angles.backup.encryption import open_backup
    from angles.backup.format import BACKUP_SUFFIXES, BackupName, metadata_from_head
    from angles.backup.numbers import JSON_TYPES, jsonable, number_from_text
    from angles.backup.numbers import dumps as dumps_exact
    from angles.backup.numbers import loads as loads_exact
    from angles.backup.tables import TableSelection
    from angles.core.durations import parse_duration, parse_timestamp
    from angles.core.http import (
        describe_failure,
        network_failure,
        readable_body,
        request,
        user_agent,
    )
    from angles.core.notifier import format_duration
    from angles.core.report import format_timestamp
    from angles.core.retry import Budget, RetryPolicy, parse_retry_after
    from angles.core.text import excerpt, one_line, plural

#: Each helper: the module it lives in, and its name there.
_SOURCES = {
    "BACKUP_SUFFIXES": ("angles.backup.format", "BACKUP_SUFFIXES"),
    "JSON_TYPES": ("angles.backup.numbers", "JSON_TYPES"),
    "BackupName": ("angles.backup.format", "BackupName"),
    "Budget": ("angles.core.retry", "Budget"),
    "RetryPolicy": ("angles.core.retry", "RetryPolicy"),
    "network_failure": ("angles.core.http", "network_failure"),
    "parse_retry_after": ("angles.core.retry", "parse_retry_after"),
    "readable_body": ("angles.core.http", "readable_body"),
    "TableSelection": ("angles.backup.tables", "TableSelection"),
    "describe_failure": ("angles.core.http", "describe_failure"),
    "drill_backup": ("angles.backup.drill", "drill_backup"),
    "dumps_exact": ("angles.backup.numbers", "dumps"),
    "excerpt": ("angles.core.text", "excerpt"),
    "format_duration": ("angles.core.notifier", "format_duration"),
    "format_timestamp": ("angles.core.report", "format_timestamp"),
    "jsonable": ("angles.backup.numbers", "jsonable"),
    "loads_exact": ("angles.backup.numbers", "loads"),
    "metadata_from_head": ("angles.backup.format", "metadata_from_head"),
    "number_from_text": ("angles.backup.numbers", "number_from_text"),
    "one_line": ("angles.core.text", "one_line"),
    "open_backup": ("angles.backup.encryption", "open_backup"),
    "parse_duration": ("angles.core.durations", "parse_duration"),
    "parse_timestamp": ("angles.core.durations", "parse_timestamp"),
    "plural": ("angles.core.text", "plural"),
    "request": ("angles.core.http", "request"),
    "sort_key": ("angles.backup.diff", "sort_key"),
    "user_agent": ("angles.core.http", "user_agent"),
}

__all__ = [
    "BACKUP_SUFFIXES",
    "JSON_TYPES",
    "BackupName",
    "Budget",
    "RetryPolicy",
    "TableSelection",
    "describe_failure",
    "drill_backup",
    "dumps_exact",
    "excerpt",
    "format_duration",
    "format_timestamp",
    "jsonable",
    "loads_exact",
    "metadata_from_head",
    "network_failure",
    "number_from_text",
    "one_line",
    "open_backup",
    "parse_duration",
    "parse_retry_after",
    "parse_timestamp",
    "plural",
    "readable_body",
    "request",
    "sort_key",
    "user_agent",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module 'angles.helpers' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
