"""angles: health checks, off-site backups and alerts for a Supabase database synced into Notion.

The public API for plugin authors is what ``__all__`` lists; everything else may change.
Names are imported on first use, so that importing angles (as pytest does for its plugin)
costs next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from angles.core.check import Check
    from angles.core.connection import (
        Connection,
        Database,
        ForeignKey,
        Row,
        StagedBackup,
        TableSchema,
    )
    from angles.core.context import Context
    from angles.core.errors import (
        AnglesError,
        BackupError,
        ExitCode,
        PipelineError,
        PluginError,
        RestoreRefused,
        ServiceError,
    )
    from angles.core.filters import Filter, FilterSyntaxError, parse_filter
    from angles.core.hookspecs import hookimpl
    from angles.core.notifier import Notification, Notifier, Recovery
    from angles.core.report import RunReport
    from angles.core.results import CheckResult, Status
    from angles.core.sink import Sink, SinkWriter, StoredFile
    from angles.sql import SqlDatabase

#: Where each public name is defined.
_SOURCES = {
    "AnglesError": "angles.core.errors",
    "BackupError": "angles.core.errors",
    "Check": "angles.core.check",
    "CheckResult": "angles.core.results",
    "Connection": "angles.core.connection",
    "Context": "angles.core.context",
    "Database": "angles.core.connection",
    "ExitCode": "angles.core.errors",
    "Filter": "angles.core.filters",
    "ForeignKey": "angles.core.connection",
    "FilterSyntaxError": "angles.core.filters",
    "Notification": "angles.core.notifier",
    "Notifier": "angles.core.notifier",
    "PipelineError": "angles.core.errors",
    "PluginError": "angles.core.errors",
    "Recovery": "angles.core.notifier",
    "RestoreRefused": "angles.core.errors",
    "RunReport": "angles.core.report",
    "Row": "angles.core.connection",
    "ServiceError": "angles.core.errors",
    "Sink": "angles.core.sink",
    "SinkWriter": "angles.core.sink",
    "SqlDatabase": "angles.sql",
    "Status": "angles.core.results",
    "StoredFile": "angles.core.sink",
    "StagedBackup": "angles.core.connection",
    "TableSchema": "angles.core.connection",
    "hookimpl": "angles.core.hookspecs",
    "parse_filter": "angles.core.filters",
}

__all__ = [
    "AnglesError",
    "BackupError",
    "Check",
    "CheckResult",
    "Connection",
    "Context",
    "Database",
    "ExitCode",
    "Filter",
    "FilterSyntaxError",
    "ForeignKey",
    "Notification",
    "Notifier",
    "PipelineError",
    "PluginError",
    "Recovery",
    "RestoreRefused",
    "Row",
    "RunReport",
    "ServiceError",
    "Sink",
    "SinkWriter",
    "SqlDatabase",
    "StagedBackup",
    "Status",
    "StoredFile",
    "TableSchema",
    "hookimpl",
    "parse_filter",
]


def __getattr__(name: str) -> Any:
    try:
        module = _SOURCES[name]
    except KeyError:
        raise AttributeError(f"module 'angles' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
