"""Cutting files into parts that repeat from one backup to the next."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import subprocess
import zlib
from collections.abc import Iterator

import pytest

from angles.plugins.sinks.parts import PartRule, stored_parts


def backup(rows: int, *, stamp: str = "2026-11-26", edited: set[int] = frozenset()) -> bytes:
    """A file laid out as a backup: the metadata line, then one row per line."""
    lines = [
        json.dumps(
            {
                "id": f"{i:08}",
                "decision": f"Décision {i} 🚀" + (" (edited)" if i in edited else ""),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for i in range(rows)
    ]
    head = f'{{"metadata": {{"timestamp": "{stamp}"}}, "data": [\n'
    return (head + ",\n".join(lines) + "\n]}\n").encode()


def chunked(data: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


PLAIN = PartRule.for_part_size(16384, compress=False)  # parts of about 2 KiB
PACKED = PartRule.for_part_size(16384, compress=True)


def parts_of(data: bytes, rule: PartRule, chunk: int = 4096) -> list[bytes]:
    return list(stored_parts(chunked(data, chunk), rule))


def test_plain_parts_put_together_are_the_file_and_end_between_rows() -> None:
    data = backup(3000)
    parts = parts_of(data, PLAIN)
    assert b"".join(parts) == data
    assert parts[0] == data[: data.index(b"\n") + 1]  # the metadata line alone
    assert all(part.endswith(b"\n") for part in parts)
    assert all(len(part) <= PLAIN.maximum for part in parts)
    average = len(data) / len(parts)
    assert PLAIN.average / 2 < average < PLAIN.average * 2


def test_compressed_parts_are_gzip_members_that_gunzip_together() -> None:
    data = backup(3000)
    parts = parts_of(data, PACKED)
    assert len(parts) > 3 and all(part[:2] == b"\x1f\x8b" for part in parts)
    assert all(gzip.decompress(part).endswith(b"\n") for part in parts)
    assert gzip.decompress(b"".join(parts)) == data
    if shutil.which("gunzip"):  # `cat NAME.part-* | gunzip`
        out = subprocess.run(["gunzip", "-c"], input=b"".join(parts), capture_output=True)
        assert out.returncode == 0 and out.stdout == data


def test_the_same_rows_give_the_same_parts_however_they_are_chunked() -> None:
    data = backup(2000)
    for rule in (PLAIN, PACKED):
        assert parts_of(data, rule, 100) == parts_of(data, rule, 65536) == parts_of(data, rule, 7)


@pytest.mark.parametrize("rule", [PLAIN, PACKED], ids=["plain", "gzip"])
def test_a_changed_row_changes_only_the_parts_around_it(rule: PartRule) -> None:
    before = set(parts_of(backup(4000), rule))
    for edited in ({1234}, {10, 2000, 3990}):
        after = parts_of(backup(4000, stamp="2026-11-27", edited=edited), rule)
        new = [p for p in after if p not in before]
        # the metadata part, and at most two parts per edited row
        assert 1 + len(edited) <= len(new) <= 1 + 2 * len(edited), len(after)


def test_inserted_and_appended_rows_do_not_shift_the_other_parts() -> None:
    rows = [json.dumps({"id": i}) for i in range(0, 8000, 2)]
    base = ("{}\n" + ",\n".join(rows) + "\n]}\n").encode()
    grown = [*rows[:1000], json.dumps({"id": 2001}), *rows[1000:], json.dumps({"id": 9999})]
    after = ("{}\n" + ",\n".join(grown) + "\n]}\n").encode()
    before = set(parts_of(base, PLAIN))
    parts = parts_of(after, PLAIN)
    new = [p for p in parts if p not in before]
    assert len(new) <= 4 and len(parts) > 15


def test_a_small_file_is_one_part() -> None:
    assert parts_of(b'{"a": 1}\n', PLAIN) == [b'{"a": 1}\n']
    (only,) = parts_of(b'{"a": 1}\n', PACKED)
    assert gzip.decompress(only) == b'{"a": 1}\n'
    assert parts_of(b"", PLAIN) == [b""]
    assert gzip.decompress(parts_of(b"", PACKED)[0]) == b""


def test_a_line_longer_than_a_part_is_cut_by_size() -> None:
    line = bytes(random.Random(1).choices(b"abcdefghij", k=50_000))
    data = b"head\n" + line + b"\nshort\n" * 3000
    parts = parts_of(data, PLAIN, 3000)
    assert b"".join(parts) == data
    assert max(len(p) for p in parts) == PLAIN.maximum
    packed = parts_of(data, PACKED, 3000)
    assert gzip.decompress(b"".join(packed)) == data
    assert max(len(p) for p in packed) <= 16384  # the stored part stays within part_size


def test_incompressible_content_stays_within_the_part_size() -> None:
    noise = random.Random(2).randbytes(400_000).replace(b"\n", b" ")
    data = b"\n".join(noise[i : i + 900] for i in range(0, len(noise), 900)) + b"\n"
    parts = parts_of(data, PACKED)
    assert max(len(p) for p in parts) <= 16384
    assert zlib.decompress(b"".join(parts[:1]), 31) == data[: len(gzip.decompress(parts[0]))]


def test_gzip_headers_name_no_time_and_no_system() -> None:
    (part,) = parts_of(b"{}\n", PACKED)
    assert part[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
