"""The sink interface: a place that stores backup files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

from angles.core.plugin import Plugin


@dataclass(frozen=True)
class StoredFile:
    """A file as a sink lists it."""

    name: str
    size: int | None = None
    modified: datetime | None = None


class SinkWriter(Protocol):
    """What :meth:`Sink.transaction` yields: stores files that appear all at once.

    A writer whose class sets ``gzips_itself = True`` compresses ``.gz`` files itself: the
    backup engine gives its :meth:`store` the uncompressed file (a git sink cuts it into
    parts first, each its own gzip member), and it stores gzip data that decompresses to
    that file. Other writers get ``.gz`` files compressed already.
    """

    def store(self, name: str, chunks: Iterable[bytes], *, record_count: int | None = None) -> int:
        """Write one file from a stream of byte chunks; returns its size in bytes.

        ``record_count`` is the number of rows the file holds, for a sink that describes
        what it stores (a commit message); the file's bytes are never parsed for it. A
        store that raises leaves nothing behind, and the transaction may go on with other
        files (the backup engine stores every table of a run in one).
        """
        ...


class Sink(Plugin):
    """One entry under ``sinks:``: stores, lists, reads and deletes backup files.

    A sink never shows a half-written file: files stored in a :meth:`transaction` become
    visible together when it ends without an exception (a rename for a folder, one commit
    for a git repository), and nothing changes when it fails.
    """

    kind = "sink"

    def transaction(self, message: str) -> AbstractContextManager[SinkWriter]:
        """A batch of files to store; ``message`` describes it (a commit message)."""
        raise NotImplementedError

    def list(self) -> list[StoredFile]:
        """Every backup file in the sink."""
        raise NotImplementedError

    def open(self, name: str) -> BinaryIO:
        """A binary stream of one stored file; the caller closes it."""
        raise NotImplementedError

    def delete(self, names: Sequence[str], message: str) -> None:
        """Remove files (retention); a sink with commits removes them in one."""
        raise NotImplementedError

    def compresses(self, size: int) -> bool:
        """Whether a file of ``size`` uncompressed bytes is stored gzip-compressed (and so
        named ``.json.gz``): the ``compress`` key by default; a sink may add a size limit."""
        return bool(self.config.get("compress"))

    def head(self, name: str, size: int = 1 << 16) -> bytes:
        """The first ``size`` bytes of a stored file (to read its metadata line).

        A remote sink can override this with a ranged request instead of a download.
        """
        with self.open(name) as stream:
            return stream.read(size)

    def iter_chunks(self, name: str, size: int = 1 << 16) -> Iterator[bytes]:
        """The content of a stored file, chunk by chunk."""
        with self.open(name) as stream:
            while chunk := stream.read(size):
                yield chunk
