"""The backup file: round trips, the checksum as the contract defines it, damage refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from angles.backup.format import (
    BackupFile,
    BackupName,
    BackupWriter,
    canonical,
    metadata_from_head,
)
from angles.core.connection import TableSchema
from angles.core.errors import BackupError

DATA = Path(__file__).parents[1] / "data"
OLD_FILE = DATA / "decision_vault_2025-08-07_15-30-00.json"
MOMENT = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
SCHEMA = TableSchema("things", {"id": "integer", "value": "json"}, ("id",))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
rows_strategy = st.lists(
    st.fixed_dictionaries({"value": json_values, "note": st.text()}), max_size=30
).map(lambda rows: [{"id": i, **row} for i, row in enumerate(rows)])


def build(rows: list[dict], *, compress: bool = False, schema: TableSchema = SCHEMA) -> bytes:
    with BackupWriter(schema, MOMENT) as writer:
        writer.write(rows)
        return b"".join(writer.chunks(compress=compress))


def read(data: bytes, name: str = "things.json") -> tuple[BackupFile, list[dict]]:
    backup = BackupFile(io.BytesIO(data), name)
    return backup, list(backup.rows())


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(rows=rows_strategy, compress=st.booleans())
def test_rows_round_trip_and_the_file_is_one_json_document(rows, compress):
    data = build(rows, compress=compress)
    backup, read_rows = read(data)
    assert read_rows == rows
    assert backup.verified is True
    assert backup.streaming
    plain = gzip.decompress(data) if compress else data
    document = json.loads(plain)
    assert document["data"] == rows
    assert document["metadata"]["record_count"] == len(rows)


@settings(max_examples=60, deadline=None)
@given(rows=rows_strategy)
def test_checksum_is_sha256_of_canonical_rows_joined_by_newlines(rows):
    document = json.loads(build(rows))
    expected = hashlib.sha256(
        b"\n".join(
            json.dumps(r, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
            for r in document["data"]
        )
    ).hexdigest()
    assert document["metadata"]["checksum"] == f"sha256:{expected}"


flat_rows = st.dictionaries(
    st.text(),
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(),
    max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(row=flat_rows)
def test_a_flat_row_is_written_as_the_contract_s_json_dumps_writes_it(row):
    # Rows of strings, integers, booleans and nulls take the fast encoder: the same bytes,
    # control characters, non-ASCII, keys of any code point and wide integers included.
    expected = json.dumps(row, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    assert canonical(row) == expected.encode()


def test_layout_metadata_first_then_one_row_per_line():
    rows = [{"id": 1, "value": "é"}, {"id": 2, "value": None}]
    lines = build(rows).decode().splitlines()
    assert lines[0].startswith('{"metadata": {"timestamp": "2026-11-26T03:00:00.000Z"')
    assert lines[0].endswith('"data": [')
    assert lines[1:] == ['{"id":1,"value":"é"},', '{"id":2,"value":null}', "]}"]
    metadata = json.loads(build(rows))["metadata"]
    assert metadata["primary_key"] == ["id"]
    assert metadata["columns"] == {"id": "integer", "value": "json"}
    assert metadata["source"] == "things"
    assert metadata["backup_version"] == "1.3.0"


def test_an_empty_table_makes_a_valid_file():
    data = build([])
    assert json.loads(data)["data"] == []
    backup, rows = read(data)
    assert rows == [] and backup.verified


def test_spooling_to_disk_keeps_the_file_identical(monkeypatch):
    rows = [{"id": i, "value": "x" * 50} for i in range(3000)]
    small = build(rows)
    monkeypatch.setattr("angles.backup.format.SPOOL_MEMORY", 1024)
    assert build(rows) == small


def test_values_json_cannot_hold_are_refused():
    with pytest.raises(BackupError, match="cannot be written as JSON"):
        build([{"id": 1, "value": float("nan")}])
    with pytest.raises(BackupError, match="cannot be written as JSON"):
        build([{"id": 1, "value": object()}])


def test_old_format_file_reads_unverified_with_full_parse():
    backup, rows = read(OLD_FILE.read_bytes(), OLD_FILE.name)
    assert not backup.streaming
    assert backup.verified is False
    assert len(rows) == 12
    assert backup.timestamp == datetime(2025, 8, 7, 15, 30, 0, 412345, tzinfo=UTC)
    assert rows[8]["decision"] == "Résumé parsing stays manual — für jetzt"
    assert rows[11]["decision"].endswith("🚀")
    assert rows[4]["notion_page_id"] is None
    assert backup.columns is None and backup.checksum is None


# ---- damaged files ---------------------------------------------------------------------

ROWS = [{"id": i, "value": {"n": i, "text": f"ligne {i} ✓"}} for i in range(20)]


def refused(data: bytes, match: str) -> None:
    with pytest.raises(BackupError, match=match):
        read(data)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.99])
def test_truncated_files_are_refused(cut, compress):
    data = build(ROWS, compress=compress)
    with pytest.raises(BackupError, match="damaged"):
        read(data[: int(len(data) * cut)])


def test_truncation_at_a_line_end_is_refused():
    data = build(ROWS)
    lines = data.splitlines(keepends=True)
    refused(b"".join(lines[:-1]), "truncated")
    refused(b"".join(lines[:5]), "truncated")


def test_a_changed_byte_in_a_value_fails_the_checksum():
    data = build(ROWS).replace(b"ligne 7", b"ligne 8", 1)
    refused(data, "does not match its checksum")


def test_every_single_byte_change_in_the_rows_is_refused():
    data = build(ROWS[:3])
    start = data.index(b"\n") + 1
    for position in range(start, len(data)):
        for replacement in (b"0", b"x", b" "):
            if data[position : position + 1] == replacement:
                continue
            damaged = data[:position] + replacement + data[position + 1 :]
            try:
                _, rows = read(damaged)
            except BackupError:
                continue
            # Only whitespace or a leading-zero-free digit swap could survive parsing,
            # and the checksum must still match the original values then.
            assert rows == ROWS[:3], (position, replacement)


def test_a_changed_byte_in_gzip_is_refused():
    data = bytearray(build(ROWS, compress=True))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(BackupError, match=r"damaged|checksum"):
        read(bytes(data))


def test_wrong_checksum_is_refused():
    data = build(ROWS)
    checksum = json.loads(data)["metadata"]["checksum"]
    refused(data.replace(checksum.encode(), b"sha256:" + b"0" * 64), "does not match")


def test_wrong_record_count_is_refused():
    data = build(ROWS).replace(b'"record_count": 20', b'"record_count": 21')
    refused(data, "says 21 rows but it holds 20")


def test_invalid_json_row_is_refused_with_its_line():
    lines = build(ROWS).splitlines(keepends=True)
    lines[3] = b'{"id": 2, "value": },\n'
    refused(b"".join(lines), "line 4 is not valid JSON")


def test_missing_comma_and_trailing_comma_are_refused():
    lines = build(ROWS).splitlines(keepends=True)
    missing = lines.copy()
    missing[2] = missing[2].replace(b"},\n", b"}\n")
    refused(b"".join(missing), "lacks the comma")
    trailing = lines.copy()
    trailing[-2] = trailing[-2].replace(b"}\n", b"},\n")
    refused(b"".join(trailing), "ends with a comma")


def test_content_after_the_end_is_refused():
    refused(build(ROWS) + b"garbage\n", "content after the end")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"[1, 2, 3]", "not a backup document"),
        (b'{"data": []}', "no metadata"),
        (b'{"metadata": {"timestamp": "2026-01-01T00:00:00Z"}}', "not a backup document"),
        (b'{"metadata": {"record_count": 0}, "data": []}', "no valid timestamp"),
        (b'{"metadata": {"timestamp": "2026-01-01T00:00:00Z"}, "data": [1]}', "not a JSON object"),
        (b'{"metadata": {"timestamp": "2026-01-01T00:00:00Z"}, "data": [', "truncated"),
        (b"\xff\xfe garbage", "starts with byte 0xff"),
    ],
)
def test_files_that_are_not_backups_are_refused(data, match):
    refused(data, match)


def test_an_unknown_checksum_algorithm_is_refused():
    document = {
        "metadata": {"timestamp": "2026-01-01T00:00:00Z", "checksum": "md5:abc"},
        "data": [{"id": 1}],
    }
    refused(json.dumps(document).encode(), "not a sha256")


def test_a_checksummed_file_laid_out_by_others_verifies():
    rows = [{"id": 2, "value": "b"}, {"id": 1, "value": "ä"}]
    document = json.loads(build(rows))
    backup, read_rows = read(json.dumps(document, indent=4).encode())
    assert not backup.streaming
    assert read_rows == rows and backup.verified is True


def test_rows_are_read_once():
    backup, _ = read(build(ROWS))
    with pytest.raises(BackupError, match="already read"):
        list(backup.rows())


# ---- names and heads -------------------------------------------------------------------


def test_backup_names():
    name = BackupName("decision_vault", MOMENT)
    assert str(name) == "decision_vault_2026-11-26_03-00-00.json"
    assert BackupName.parse(str(name)) == name
    pre = BackupName("decision_vault", MOMENT, pre_restore=True, compressed=True)
    assert str(pre) == "decision_vault_pre-restore_2026-11-26_03-00-00.json.gz"
    assert BackupName.parse(str(pre)) == pre
    assert BackupName.parse("decision_vault_2026-13-40_03-00-00.json") is None
    assert BackupName.parse("notes.txt") is None
    assert BackupName.parse(OLD_FILE.name).table == "decision_vault"


@pytest.mark.parametrize("compress", [False, True])
def test_metadata_from_the_first_bytes(compress):
    data = build(ROWS * 50, compress=compress)
    metadata = metadata_from_head(data[:4096])
    assert metadata is not None and metadata["record_count"] == len(ROWS) * 50
    assert metadata_from_head(OLD_FILE.read_bytes()[:4096]) is None
    assert metadata_from_head(b'{"metadata": {"a"') is None


def test_canonical_form():
    assert canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
