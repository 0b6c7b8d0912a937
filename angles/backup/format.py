"""The backup file: one JSON document per table and run, one row per line.

A file written by angles looks like this (rows in primary-key order)::

    {"metadata": {"timestamp": "…", "record_count": 2, …, "checksum": "sha256:…"}, "data": [
    {"decision":"…","id":"…"},
    {"decision":"…","id":"…"}
    ]}

Each row line is the row's canonical form (compact JSON, sorted keys, UTF-8), the very bytes
the checksum covers, so a row is serialised once. Files laid out otherwise (the older
system's indented files) are read with a full parse, which is fine because they are small.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO

import orjson

from angles.backup import numbers
from angles.core.connection import Row, TableSchema
from angles.core.errors import BackupError
from angles.core.progress import Advance

__all__ = [
    "BACKUP_SUFFIXES",
    "BACKUP_VERSION",
    "BackupFile",
    "BackupName",
    "BackupWriter",
    "ChecksumMismatch",
    "canonical",
    "format_stamp",
    "metadata_from_head",
    "parse_stamp",
    "parse_timestamp",
]

BACKUP_VERSION = "1.3.0"
SCHEMA_VERSION = "1.0"
CHECKSUM_PREFIX = "sha256:"
PRE_RESTORE = "pre-restore"
#: Rows kept in memory before the spool moves to a temporary file.
SPOOL_MEMORY = 1 << 20
_CHUNK = 1 << 20
_MAX_HEADER = 16 << 20
#: Bytes read to judge whether a file can be a backup at all.
_OPENING_BYTES = 256
_BLANK = b" \t\r\n"
_GZIP_MAGIC = b"\x1f\x8b"
_FOOTER = b"]}"
_NAME = re.compile(
    r"^(?P<table>.+?)(?P<pre>_pre-restore)?_(?P<stamp>\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})"
    r"\.json(?P<gz>\.gz)?(?P<age>\.age)?$"
)
#: How stored backup files end: plain, gzip-compressed, and each encrypted with age.
BACKUP_SUFFIXES = (".json", ".json.gz", ".json.age", ".json.gz.age")
_HEADER = re.compile(rb'^\{\s*"metadata"\s*:\s*(\{.*\})\s*,\s*"data"\s*:\s*\[\s*$', re.DOTALL)
_STAMP_FORMAT = "%Y-%m-%d_%H-%M-%S"


# One encoder for every row: json.dumps with options builds a new encoder on each call.
_CANONICAL = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
)


#: Value types orjson writes exactly as the standard library's encoder does. Floats are
#: not among them (orjson writes ``1e16`` where Python writes ``1e+16``).
_FLAT = frozenset({str, int, bool, type(None)})


def canonical(row: Mapping[str, Any]) -> bytes:
    """A row as the checksum covers it: compact JSON, sorted keys, UTF-8.

    Numbers wider than a float (Decimals) keep every digit. A row of strings, integers,
    booleans and nulls (what the Data API's pages hold) is written by orjson, five times
    faster, to the same bytes; any other row, or one orjson refuses (an integer wider
    than 64 bits), by the standard library.
    """
    if type(row) is dict and _FLAT.issuperset(map(type, row.values())):
        try:
            return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    try:
        return _CANONICAL.encode(row).encode("utf-8")
    except TypeError:
        return numbers.dumps(
            row, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
        ).encode("utf-8")


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 timestamp as an aware datetime (a naive one is taken as UTC)."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_metadata_timestamp(moment: datetime) -> str:
    """``2026-11-26T03:00:00.000Z``: UTC with milliseconds, as the contract shows."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_stamp(moment: datetime) -> str:
    """A moment as backup file names write it: ``2026-11-26_03-00-00`` (UTC)."""
    return moment.astimezone(UTC).strftime(_STAMP_FORMAT)


def parse_stamp(text: str) -> datetime | None:
    """The moment a file name's ``2026-11-26_03-00-00`` says (UTC), or None."""
    try:
        return datetime.strptime(text, _STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class BackupName:
    """The parts of a backup file name: ``{table}_{YYYY-MM-DD_HH-MM-SS}.json[.gz][.age]``.

    A backup saved before a live restore is named ``{table}_pre-restore_{timestamp}.json``:
    it still ends in the contract's ``_{timestamp}.json``, so tools that only know that
    pattern read it as a backup of a table called ``{table}_pre-restore``, while angles
    knows it belongs to ``{table}`` and never picks it as "the newest backup" by itself.
    A file encrypted with age has ``.age`` appended (``encrypted``).
    """

    table: str
    timestamp: datetime
    pre_restore: bool = False
    compressed: bool = False
    encrypted: bool = False

    @classmethod
    def parse(cls, name: str) -> BackupName | None:
        """The parts of ``name``, or None when it is not a backup file name."""
        match = _NAME.match(name)
        if not match:
            return None
        moment = parse_stamp(match["stamp"])
        if moment is None:
            return None
        return cls(
            match["table"], moment, bool(match["pre"]), bool(match["gz"]), bool(match["age"])
        )

    @property
    def stamp(self) -> str:
        """The timestamp as file names write it (``2026-11-26_03-00-00``, UTC)."""
        return format_stamp(self.timestamp)

    def __str__(self) -> str:
        middle = f"_{PRE_RESTORE}" if self.pre_restore else ""
        suffix = (".json.gz" if self.compressed else ".json") + (".age" if self.encrypted else "")
        return f"{self.table}{middle}_{self.stamp}{suffix}"


class BackupWriter:
    """Builds one backup file from a stream of rows, in constant memory.

    The metadata (count, checksum) comes first in the file but is known only at the end,
    so rows are spooled (in memory up to :data:`SPOOL_MEMORY`, then in a temporary file)
    and :meth:`chunks` emits the file, as many times as there are sinks.
    """

    def __init__(
        self, schema: TableSchema, timestamp: datetime, *, snapshot: bool | None = None
    ) -> None:
        self.schema = schema
        self.timestamp = timestamp
        #: Whether the file was read in one snapshot with the other files of its set.
        self.snapshot = snapshot
        #: The last value of each sequence the table's columns draw from, when read.
        self.sequence_values: dict[str, int | None] = {}
        self.record_count = 0
        self._spooled = 0
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        self._hash = hashlib.sha256()

    def write(self, rows: Iterable[Row], batch: int = 1000) -> int:
        """Append rows (in primary-key order); returns how many were added."""
        added = 0
        lines: list[bytes] = []
        for row in rows:
            try:
                lines.append(canonical(row))
            except (TypeError, ValueError) as exc:
                raise BackupError(
                    f"{self.schema.name}: a row cannot be written as JSON ({exc})",
                    hint="the connection must return JSON values (text for timestamps)",
                ) from exc
            if len(lines) >= batch:
                added += self._flush(lines)
        return added + self._flush(lines)

    def write_lines(self, blocks: Iterable[bytes], advance: Advance | None = None) -> int:
        """Append rows already in their canonical form, in blocks of lines joined by
        ``b"\\n"`` (:meth:`Database.stream_lines`); returns how many were added.
        ``advance`` is told the rows written so far after each block."""
        added = 0
        for block in blocks:
            if block:
                added += self._append(block, block.count(b"\n") + 1)
                if advance is not None:
                    advance(self.record_count)
        return added

    def _flush(self, lines: list[bytes]) -> int:
        if not lines:
            return 0
        count = self._append(b"\n".join(lines), len(lines))
        lines.clear()
        return count

    def _append(self, block: bytes, count: int) -> int:
        """Spool and hash ``count`` lines joined by ``\\n``, after the rows before them."""
        data = b"\n" + block if self.record_count else block
        self._spool.write(data)
        self._spooled += len(data)
        self._hash.update(data)
        self.record_count += count
        return count

    @property
    def checksum(self) -> str:
        return CHECKSUM_PREFIX + self._hash.hexdigest()

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata object of the file."""
        return {
            "timestamp": format_metadata_timestamp(self.timestamp),
            "record_count": self.record_count,
            "backup_version": BACKUP_VERSION,
            "source": self.schema.name,
            "schema_version": SCHEMA_VERSION,
            "primary_key": list(self.schema.primary_key),
            "columns": dict(self.schema.columns),
            "checksum": self.checksum,
            **self._restore_metadata(),
        } | ({} if self.snapshot is None else {"snapshot": self.snapshot})

    def _restore_metadata(self) -> dict[str, Any]:
        """What a whole-database restore needs: foreign keys, computed columns, sequences."""
        schema = self.schema
        sequences: dict[str, dict[str, Any]] = {}
        for column, sequence in schema.sequences.items():
            entry = sequences.setdefault(
                sequence, {"columns": [], "last_value": self.sequence_values.get(sequence)}
            )
            entry["columns"].append(column)
        return {
            "foreign_keys": [key.to_dict() for key in schema.foreign_keys],
            "generated": sorted(schema.generated),
            "identity": dict(schema.identity),
            "sequences": sequences,
            "text_columns": sorted(schema.text_columns),
        }

    @property
    def size(self) -> int:
        """The size in bytes of the uncompressed file :meth:`chunks` emits."""
        commas = max(0, self.record_count - 1)
        footer = len(_FOOTER) + 1 + (1 if self.record_count else 0)
        return len(self._header()) + self._spooled + commas + footer

    def _header(self) -> bytes:
        header = json.dumps({"metadata": self.metadata}, ensure_ascii=False)[:-1]
        return f'{header}, "data": [\n'.encode()

    def chunks(self, *, compress: bool = False) -> Iterator[bytes]:
        """The whole file, chunk by chunk (gzip-compressed when ``compress``)."""
        plain = self._plain_chunks()
        if not compress:
            yield from plain
            return
        # wbits=31 writes a gzip stream; with no file name or mtime it is reproducible.
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        for chunk in plain:
            if out := compressor.compress(chunk):
                yield out
        yield compressor.flush()

    def _plain_chunks(self) -> Iterator[bytes]:
        yield self._header()
        self._spool.seek(0)
        # Canonical JSON never holds a raw newline, so each one separates two rows.
        while chunk := self._spool.read(_CHUNK):
            yield chunk.replace(b"\n", b",\n")
        yield (b"\n" if self.record_count else b"") + _FOOTER + b"\n"

    def close(self) -> None:
        """Drop the spooled rows."""
        self._spool.close()

    def __enter__(self) -> BackupWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def metadata_from_head(head: bytes) -> dict[str, Any] | None:
    """The metadata from the first bytes of a file, or None if they do not hold it.

    Works on a prefix of a gzip file too; None means "read the whole file" (files laid
    out by others, or a first line longer than ``head``).
    """
    if head.startswith(_GZIP_MAGIC):
        try:
            head = zlib.decompressobj(31).decompress(head)
        except zlib.error:
            return None
    line, newline, _ = head.partition(b"\n")
    match = _HEADER.match(line) if newline else None
    if not match:
        return None
    try:
        metadata = json.loads(match[1])
    except ValueError:
        return None
    return metadata if isinstance(metadata, dict) else None


class BackupFile:
    """A backup file being read: its metadata at once, its rows as a stream.

    Files in angles' layout stream in constant memory; any other layout of the same
    document (indented, as the older system wrote) is parsed whole. :meth:`rows` checks
    the structure as it goes and, after the last row, the record count and checksum:
    damage raises :class:`BackupError`. ``verified`` is then True (the checksum matched)
    or False (the file has no checksum, e.g. from the older system).
    """

    def __init__(self, stream: BinaryIO, name: str = "backup") -> None:
        self.name = name
        self.verified: bool | None = None
        self._stream = _decompressed(stream)
        self._data: list[Any] | None = None
        self._line = 1
        self._read = False
        self.metadata = self._guard(self._read_metadata)
        self.timestamp = self._timestamp()

    @property
    def checksum(self) -> str | None:
        value = self.metadata.get("checksum")
        return value if isinstance(value, str) else None

    @property
    def sequence_values(self) -> dict[str, int | None]:
        """The last value of each sequence recorded with the table (files from 1.2.0 on)."""
        sequences = self.metadata.get("sequences")
        if not isinstance(sequences, dict):
            return {}
        return {
            str(name): value.get("last_value") if isinstance(value, dict) else None
            for name, value in sequences.items()
        }

    @property
    def text_columns(self) -> frozenset[str]:
        """The columns whose values are PostgreSQL's text output (files from 1.3.0 on;
        older files hold every value in its JSON form)."""
        value = self.metadata.get("text_columns")
        if not isinstance(value, list):
            return frozenset()
        return frozenset(c for c in value if isinstance(c, str))

    @property
    def record_count(self) -> int | None:
        value = self.metadata.get("record_count")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def primary_key(self) -> tuple[str, ...] | None:
        value = self.metadata.get("primary_key")
        return tuple(value) if isinstance(value, list) else None

    @property
    def columns(self) -> dict[str, str] | None:
        value = self.metadata.get("columns")
        return dict(value) if isinstance(value, dict) else None

    def parsed_columns(self) -> list[str] | None:
        """Every column any row has, for a file parsed whole; None for a streamed one."""
        if self._data is None:
            return None
        rows = (row for row in self._data if isinstance(row, dict))
        return list(dict.fromkeys(column for row in rows for column in row))

    @property
    def streaming(self) -> bool:
        """Whether rows are read line by line (angles' layout) rather than parsed whole."""
        return self._data is None

    def rows(self) -> Iterator[Row]:
        """Every row, in file order; verifies count and checksum after the last one."""
        if self._read:
            raise BackupError(f"backup {self.name} was already read; open it again")
        self._read = True
        rows = self._stream_rows() if self._data is None else self._parsed_rows()
        yield from self._verified(rows)

    def verify(self) -> int:
        """Read every row and check the file; returns the number of rows."""
        return sum(1 for _ in self.rows())

    def _damaged(self, reason: str) -> BackupError:
        return BackupError(
            f"backup {self.name} is damaged: {reason}",
            hint="restore another backup (angles backups list shows them)",
        )

    def _guard(self, function: Any) -> Any:
        try:
            return function()
        except (OSError, EOFError, zlib.error) as exc:
            raise self._damaged(f"it cannot be decompressed or read ({exc})") from exc

    def _read_metadata(self) -> dict[str, Any]:
        # Judge the first bytes before reading a line, let alone the whole file: junk is
        # rejected at once, in constant memory, however large it is.
        problem = _opening_problem(_peek(self._stream, _OPENING_BYTES))
        if problem:
            raise self._damaged(problem)
        first = self._stream.readline(_MAX_HEADER)
        if not first.strip():
            raise self._damaged("the file is empty")
        match = _HEADER.match(first.rstrip(b"\r\n"))
        if match:
            metadata = self._load(match[1], "the metadata")
        else:
            document = self._load(first + self._stream.read(), "the file")
            if not isinstance(document, dict) or not isinstance(document.get("data"), list):
                raise self._damaged('it is not a backup document ({"metadata": …, "data": […]})')
            metadata = document.get("metadata")
            self._data = document["data"]
        if not isinstance(metadata, dict):
            raise self._damaged("it has no metadata")
        return metadata

    def _timestamp(self) -> datetime:
        value = self.metadata.get("timestamp")
        try:
            return parse_timestamp(value)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise self._damaged(f"its metadata has no valid timestamp ({value!r})") from exc

    def _load(self, text: bytes, what: str) -> Any:
        try:
            return numbers.loads(text)
        except ValueError as exc:  # UnicodeDecodeError included
            line = self._line + getattr(exc, "lineno", 1) - 1
            raise self._damaged(f"{what} is not valid JSON (line {line}: {exc})") from exc

    def _stream_rows(self) -> Iterator[Row]:
        try:
            yield from self._lines()
        except (OSError, EOFError, zlib.error) as exc:
            raise self._damaged(f"it cannot be decompressed or read ({exc})") from exc

    def lines(self) -> Iterator[bytes]:
        """Every row as the bytes the file holds (without the comma between rows), in
        file order; verifies count and checksum after the last one, over those bytes.

        No row is parsed: this is how a database that reads JSON itself is given a backup.
        A row spelled otherwise than canonically (hand-edited, or from another writer)
        fails the checksum here even when :meth:`rows` would pass; read it with
        :meth:`rows` then. A file parsed whole gives each row's canonical form.
        """
        if self._read:
            raise BackupError(f"backup {self.name} was already read; open it again")
        self._read = True
        if self._data is not None:
            rows = self._verified(self._parsed_rows())
            yield from (canonical(row) for row in rows)
            return
        expected = self.checksum
        digest = hashlib.sha256() if expected else None
        count = 0
        try:
            for line in self._raw_lines():
                if digest is not None:
                    if count:
                        digest.update(b"\n")
                    digest.update(line)
                count += 1
                yield line
        except (OSError, EOFError, zlib.error) as exc:
            raise self._damaged(f"it cannot be decompressed or read ({exc})") from exc
        self._judge(count, digest)

    def _lines(self) -> Iterator[Row]:
        for line in self._raw_lines():
            yield self._load(line, f"line {self._line}")

    def _raw_lines(self) -> Iterator[bytes]:
        stream, comma, closed = self._stream, None, False
        for raw in stream:
            self._line += 1
            line = raw.strip()
            if not line:
                continue
            if line == _FOOTER:
                if comma:
                    raise self._damaged(f"line {self._line - 1} ends with a comma before the end")
                closed = True
                break
            if comma is False:
                raise self._damaged(f"line {self._line - 1} lacks the comma between two rows")
            comma = line.endswith(b",")
            yield line[:-1] if comma else line
        if not closed:
            raise self._damaged(
                f"it is truncated (it ends at line {self._line} without the closing ]}})"
            )
        if stream.read().strip():
            raise self._damaged(f"there is content after the end (line {self._line})")

    def _parsed_rows(self) -> Iterator[Row]:
        assert self._data is not None
        yield from self._data
        self._data = []

    def _verified(self, rows: Iterator[Any]) -> Iterator[Row]:
        digest = hashlib.sha256() if self.checksum else None
        count = 0
        for row in rows:
            if not isinstance(row, dict):
                raise self._damaged(f"row {count + 1} is not a JSON object")
            if digest is not None:
                if count:
                    digest.update(b"\n")
                digest.update(canonical(row))
            count += 1
            yield row
        self._judge(count, digest)

    def _judge(self, count: int, digest: Any) -> None:
        """After the last row: the record count, then the checksum (``digest`` of the rows)."""
        expected = self.checksum
        if self.record_count is not None and self.record_count != count:
            raise self._damaged(f"its metadata says {self.record_count} rows but it holds {count}")
        if digest is None or expected is None:
            self.verified = False
            return
        if not expected.startswith(CHECKSUM_PREFIX):
            raise self._damaged(f"its checksum {expected!r} is not a sha256: checksum")
        actual = CHECKSUM_PREFIX + digest.hexdigest()
        if actual != expected:
            raise ChecksumMismatch(
                f"backup {self.name} does not match its checksum "
                f"(the file says {expected}, its rows hash to {actual})",
                hint="the file was changed or damaged after it was written; restore another backup",
            )
        self.verified = True


class ChecksumMismatch(BackupError):
    """A file whose rows do not hash to its checksum."""


def _peek(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes from the start of ``stream``, leaving it where it was (it has
    ``peek`` or is seekable: see :func:`_decompressed`)."""
    if hasattr(stream, "peek"):
        return stream.peek(size)[:size]
    position = stream.tell()
    head = stream.read(size)
    stream.seek(position)
    return head


def _opening_problem(head: bytes) -> str | None:
    """Why a file starting with ``head`` cannot be a backup document; None if it can."""
    text = head.lstrip(_BLANK)
    if not text:
        return "it holds nothing but blank space" if len(head) >= _OPENING_BYTES else None
    if not text.startswith(b"{"):
        return f"it is not a backup document (it starts with byte {text[0]:#04x}, not {{)"
    rest = text[1:].lstrip(_BLANK)
    if rest and not rest.startswith(b'"'):
        return "it is not a backup document (no key follows its opening {)"
    key = re.match(rb'"([^"\\]*)"', rest)
    if key and key[1] not in (b"metadata", b"data"):
        shown = key[1][:40].decode("utf-8", "replace")
        return f'it is not a backup document (its first key is "{shown}", not "metadata")'
    return None


def _decompressed(stream: BinaryIO) -> BinaryIO:
    """``stream``, through gzip when it starts like a gzip file."""
    if hasattr(stream, "peek"):
        magic = stream.peek(2)[:2]
    elif stream.seekable():
        position = stream.tell()
        magic = stream.read(2)
        stream.seek(position)
    else:
        spool = tempfile.TemporaryFile()  # noqa: SIM115
        while chunk := stream.read(_CHUNK):
            spool.write(chunk)
        spool.seek(0)
        stream, magic = spool, spool.read(2)
        spool.seek(0)
    if magic == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream
