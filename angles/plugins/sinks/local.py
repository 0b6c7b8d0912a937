"""The ``local`` sink: backup files in a folder.

.. code-block:: yaml

    sinks:
      local: {type: local, path: backups, retention_days: 30, compress: false}

A file is written under a hidden temporary name and renamed into place when the
transaction ends, so a reader never sees half a file and a failed run leaves the
folder as it was. The temporary name carries the writer's host and pid, so the next
run removes what a killed run left (and anything older than a day). Retention
(``retention_days``, ``keep_daily``…) is a key of every sink, applied by the backup engine.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from angles import BackupError, Sink, StoredFile, hookimpl
from angles.helpers import BACKUP_SUFFIXES

_TEMP_SUFFIX = ".tmp"
#: Separates a temporary name's parts: ``.{name}~{host}~{pid}~{tag}.tmp``.
_TEMP_SEPARATOR = "~"
#: A temporary file this old was left by a run that died, whoever wrote it.
_STALE_SECONDS = 24 * 3600


class LocalSink(Sink):
    """A folder, relative to the pipeline file's folder."""

    type = "local"
    description = "Backup files in a local folder."
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "The folder, relative to the pipeline file (default: backups).",
            },
            "compress": {
                "type": "boolean",
                "description": "Write gzip-compressed files (.json.gz).",
            },
        },
        "additionalProperties": False,
    }

    def __init__(self, name: str, config: Any, context: Any) -> None:
        super().__init__(name, config, context)
        self.folder: Path = context.pipeline.resolve(config.get("path") or "backups")

    @contextlib.contextmanager
    def transaction(self, message: str) -> Iterator[_FolderWriter]:
        """Files stored inside appear (renamed into place) when the block ends well."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        writer = _FolderWriter(self)
        try:
            yield writer
        except BaseException:
            writer.discard()
            raise
        writer.commit()

    def list(self) -> list[StoredFile]:
        """The backup files (``*.json``, ``*.json.gz``, and those with ``.age``) in the folder."""
        if not self.folder.is_dir():
            return []
        files = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.name.endswith(BACKUP_SUFFIXES):
                    continue
                if not entry.is_file():
                    continue
                stat = entry.stat()
                modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                files.append(StoredFile(entry.name, stat.st_size, modified))
        return sorted(files, key=lambda f: f.name)

    def open(self, name: str) -> BinaryIO:
        """The file, opened for reading."""
        try:
            return open(self._path(name), "rb")
        except FileNotFoundError:
            raise BackupError(
                f"sink {self.name!r} has no backup {name!r} (in {self.folder})",
                hint="`angles backups list` shows the backups",
            ) from None

    def delete(self, names: Sequence[str], message: str) -> None:
        """Remove files; a file already gone is not an error."""
        for name in names:
            self._path(name).unlink(missing_ok=True)

    def _path(self, name: str) -> Path:
        if not name or name.startswith(".") or "/" in name or "\\" in name:
            raise BackupError(f"{name!r} is not a backup file name")
        return self.folder / name

    def _remove_stale(self) -> None:
        """Remove temporary files of writers that died: a process of this host that is
        gone, or anyone a day ago."""
        limit = time.time() - _STALE_SECONDS
        host = socket.gethostname()
        for path in self.folder.glob(f".*{_TEMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                writer = _temporary_writer(path.name)
                dead = writer is not None and writer[0] == host and not _process_exists(writer[1])
                if dead or path.stat().st_mtime < limit:
                    path.unlink()


class _FolderWriter:
    """Stores files under temporary names; :meth:`commit` renames them into place."""

    def __init__(self, sink: LocalSink) -> None:
        self.sink = sink
        self.pending: list[tuple[Path, Path]] = []

    def store(self, name: str, chunks: Iterable[bytes], *, record_count: int | None = None) -> int:
        """Write one file; on failure nothing is left and the transaction can go on."""
        final = self.sink._path(name)
        temporary = final.with_name(_temporary_name(name))
        size = 0
        try:
            with open(temporary, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self.pending.append((temporary, final))
        return size

    def commit(self) -> None:
        for temporary, final in self.pending:
            os.replace(temporary, final)
        self.pending.clear()
        _sync_folder(self.sink.folder)

    def discard(self) -> None:
        for temporary, _ in self.pending:
            temporary.unlink(missing_ok=True)
        self.pending.clear()


def _temporary_name(name: str) -> str:
    """The hidden name a file is written under: ``.{name}~{host}~{pid}~{tag}.tmp``."""
    parts = (name, socket.gethostname(), str(os.getpid()), uuid.uuid4().hex[:12])
    return f".{_TEMP_SEPARATOR.join(parts)}{_TEMP_SUFFIX}"


def _temporary_writer(temporary: str) -> tuple[str, int] | None:
    """The host and pid that wrote a temporary file (None for names without them)."""
    parts = temporary.removesuffix(_TEMP_SUFFIX).rsplit(_TEMP_SEPARATOR, 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])


def _process_exists(pid: int) -> bool:
    """Whether a process with this pid runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _sync_folder(folder: Path) -> None:
    """Make the renames durable (where the platform allows opening a folder)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@hookimpl
def angles_register_sinks(register: Any) -> None:
    register(LocalSink)
