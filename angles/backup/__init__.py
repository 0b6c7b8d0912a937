"""Backups and restores: the file format, the backup engine, the diff and the restore.

The runner calls :func:`run_backups`; ``angles restore`` calls :func:`prepare_restore`
and, for ``--live``, :func:`apply_restore`.
"""

from angles.backup.engine import run_backups
from angles.backup.format import BackupFile, BackupName, BackupWriter, canonical
from angles.backup.inventory import list_backups, verify_backups
from angles.backup.restore import (
    RestorePlan,
    RestoreRequest,
    apply_restore,
    close_plan,
    prepare_restore,
)

__all__ = [
    "BackupFile",
    "BackupName",
    "BackupWriter",
    "RestorePlan",
    "RestoreRequest",
    "apply_restore",
    "canonical",
    "close_plan",
    "list_backups",
    "prepare_restore",
    "run_backups",
    "verify_backups",
]
