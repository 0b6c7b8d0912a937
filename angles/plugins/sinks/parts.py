"""Cutting a stored file into parts that repeat from one day's backup to the next.

A git repository keeps every blob it was ever given, so a sink that stores a 300 MB table
every day as new bytes grows by the whole table every day, even when three rows changed.
Parts cut at fixed offsets do not help: one inserted row shifts every later part. Here a
part ends after a line (a backup file holds one row per line) whose CRC-32, scaled by the
line's length, falls below a threshold, so where parts end depends only on the rows
around the cut, and a row that changes, appears or goes away changes the one or two parts
around it; every other part has the same bytes, hence the same blob SHA, and git stores
it once (content-defined chunking, as restic and borg cut their packs, at row boundaries).

The first line (the backup's metadata: its timestamp and checksum change every run) is a
part of its own, so it never drags the first rows' part along.

Compressed files are cut the same way, on the JSON, and each part is a gzip member of its
own written with fixed settings (no name, no time, OS "unknown"), so the same rows give the
same bytes on any machine with the same zlib. Concatenated gzip members are one valid gzip
file: ``cat NAME.part-* | gunzip`` gives the JSON back.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

#: The gzip header of every member: no flags, mtime 0, no extra flags, OS 255 (unknown),
#: rather than zlib's own header, whose OS byte depends on the platform.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_LEVEL = 6


@dataclass(frozen=True)
class PartRule:
    """Where a file is cut: content bytes (before compression) per part.

    A cut may come after ``minimum`` bytes, comes on average ``average`` bytes after the
    previous one, and always before ``maximum`` (mid-line only for a line that long).
    """

    average: int
    minimum: int
    maximum: int
    compress: bool = False

    @classmethod
    def for_part_size(cls, part_size: int, *, compress: bool) -> PartRule:
        """The rule for a sink whose parts are at most ``part_size`` stored bytes.

        Plain parts average an eighth of that; compressed ones half of it in JSON (JSON
        compresses four to twenty times, so they are stored smaller still). A compressed
        part's JSON stays below ``part_size`` by more than deflate can ever add to it.
        """
        if compress:
            maximum = part_size - (part_size >> 10) - 64
            average = part_size // 2
        else:
            maximum, average = part_size, part_size // 8
        average = max(1, average)
        return cls(average, max(1, average // 4), max(2, maximum), compress)

    def cuts_after(self, line: memoryview | bytes) -> bool:
        """Whether a part may end after ``line`` (a whole line, newline included)."""
        # The row itself, without the ",\n" or "\n" that depends on whether it is last.
        end = len(line) - 1
        if end > 0 and line[end - 1 : end] == b",":
            end -= 1
        spread = self.average - self.minimum
        return spread <= 0 or zlib.crc32(line[:end]) * spread < len(line) << 32


def stored_parts(chunks: Iterable[bytes], rule: PartRule) -> Iterator[bytes]:
    """The stored bytes of each part of the file that ``chunks`` make up.

    A file of no more than ``rule.average`` bytes is one part (the whole file, compressed
    as one member when the rule compresses). Memory holds one part and one chunk.
    """
    chunks = iter(chunks)
    head: list[bytes] = []
    seen = 0
    for chunk in chunks:
        head.append(chunk)
        seen += len(chunk)
        if seen > rule.average:
            break
    else:
        yield _Part(rule).add(b"".join(head)).finish()
        return
    yield from _cut(_chained(head, chunks), rule)


def _chained(head: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    while head:
        yield head.pop(0)
    yield from rest


def _cut(chunks: Iterator[bytes], rule: PartRule) -> Iterator[bytes]:
    part = _Part(rule)
    first = True
    pending = bytearray()  # input not yet given to a part: at most one incomplete line
    for chunk in chunks:
        pending += chunk
        start = 0  # the first byte not given to the part yet
        scanned = 0  # the first byte not looked at yet
        size = part.size  # the part's size with the lines looked at
        with memoryview(pending) as view:
            while (newline := pending.find(b"\n", scanned)) >= 0:
                end = newline + 1
                if size + end - scanned > rule.maximum:
                    if size:  # end the part before this line
                        part.add(view[start:scanned])
                        start, size = scanned, 0
                        yield part.finish()
                    while end - scanned > rule.maximum:  # a line longer than a part
                        part.add(view[scanned : scanned + rule.maximum])
                        start = scanned = scanned + rule.maximum
                        yield part.finish()
                size += end - scanned
                cut = first or (size >= rule.minimum and rule.cuts_after(view[scanned:end]))
                scanned = end
                if cut:
                    first = False
                    part.add(view[start:scanned])
                    start, size = scanned, 0
                    yield part.finish()
            part.add(view[start:scanned])
            start = scanned
            # the incomplete last line: the part ends before it when it cannot fit
            if part.size and part.size + len(pending) - start > rule.maximum:
                yield part.finish()
            while len(pending) - start > rule.maximum:
                part.add(view[start : start + rule.maximum])
                start += rule.maximum
                yield part.finish()
        del pending[:start]
    if pending:
        part.add(pending)
    if part.size:
        yield part.finish()


class _Part:
    """One part being filled: its content bytes, and its stored bytes so far."""

    def __init__(self, rule: PartRule) -> None:
        self.rule = rule
        self.size = 0
        self._reset()

    def _reset(self) -> None:
        self.size = 0
        self._out: list[bytes] = []
        self._crc = 0
        self._deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15) if self.rule.compress else None

    def add(self, data: memoryview | bytes | bytearray) -> _Part:
        self.size += len(data)
        if self._deflate is None:
            self._out.append(bytes(data))
        else:
            self._crc = zlib.crc32(data, self._crc)
            if out := self._deflate.compress(data):
                self._out.append(out)
        return self

    def finish(self) -> bytes:
        """The part's stored bytes; the part starts again empty."""
        if self._deflate is None:
            data = b"".join(self._out)
        else:
            trailer = struct.pack("<II", self._crc, self.size & 0xFFFFFFFF)
            data = b"".join([_GZIP_HEADER, *self._out, self._deflate.flush(), trailer])
        self._reset()
        return data
