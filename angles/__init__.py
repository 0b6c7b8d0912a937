"""angles: health checks, off-site backups and alerts for a Supabase database synced into Notion.

The public API for plugin authors is what ``__all__`` lists; everything else may change.
"""

from angles.core.check import Check
from angles.core.connection import Connection, Database, Row, TableSchema
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
from angles.core.filters import Filter, parse_filter
from angles.core.hookspecs import hookimpl
from angles.core.notifier import Notification, Notifier, Recovery
from angles.core.results import CheckResult, Status
from angles.core.sink import Sink, SinkWriter, StoredFile

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
    "Notification",
    "Notifier",
    "PipelineError",
    "PluginError",
    "Recovery",
    "RestoreRefused",
    "Row",
    "ServiceError",
    "Sink",
    "SinkWriter",
    "Status",
    "StoredFile",
    "TableSchema",
    "hookimpl",
    "parse_filter",
]
