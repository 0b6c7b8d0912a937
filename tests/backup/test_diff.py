"""The streaming diff agrees with a plain in-memory comparison."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from angles.backup.diff import Kind, OutOfOrder, merge, same_value, sort_key

BACKUP_TIME = datetime(2026, 1, 1, tzinfo=UTC)
OLD, NEW = "2025-12-31T00:00:00+00:00", "2026-01-02T00:00:00Z"

keys = st.one_of(
    st.tuples(st.integers(-50, 50)),
    st.tuples(st.text(max_size=3)),
    st.tuples(st.integers(0, 5), st.text(alphabet="abé", max_size=2)),
    st.tuples(st.one_of(st.integers(0, 9), st.text(max_size=2))),  # SQLite mixes types
)
values = st.one_of(st.none(), st.integers(0, 2), st.sampled_from(["a", "b", "é"]))


@st.composite
def tables(draw):
    shape = draw(keys)
    width = len(shape)
    columns = [f"k{i}" for i in range(width)]
    key_strategy = st.tuples(*[keys_for(shape[i]) for i in range(width)])
    all_keys = draw(st.lists(key_strategy, unique_by=sort_key, max_size=25))

    def row(key):
        return {
            **dict(zip(columns, key, strict=True)),
            "v": draw(values),
            "updated_at": draw(st.sampled_from([OLD, NEW, None])),
        }

    backup = {k: row(k) for k in all_keys if draw(st.booleans())}
    database = {k: row(k) for k in all_keys if draw(st.booleans())}
    for key in list(database):
        if key in backup and draw(st.booleans()):
            database[key] = dict(backup[key])  # many unchanged rows
    return columns, backup, database


def keys_for(sample):
    if isinstance(sample, int):
        return st.one_of(st.integers(-50, 50), st.text(max_size=2))
    return st.text(alphabet="abcé🚀", max_size=3)


def reference(backup, database):
    verdicts = {}
    for key in backup.keys() | database.keys():
        if key not in database:
            verdicts[key] = (Kind.INSERT, ())
        elif key not in backup:
            verdicts[key] = (Kind.ONLY_IN_DATABASE, ())
        else:
            differ = tuple(c for c in ("v", "updated_at") if backup[key][c] != database[key][c])
            updated = database[key]["updated_at"]
            if not differ:
                verdicts[key] = (Kind.UNCHANGED, ())
            elif updated is not None and datetime.fromisoformat(updated) > BACKUP_TIME:
                verdicts[key] = (Kind.NEWER_IN_DATABASE, differ)
            else:
                verdicts[key] = (Kind.UPDATE, differ)
    return verdicts


@settings(max_examples=400, deadline=None)
@given(tables())
def test_streaming_merge_agrees_with_in_memory_reference(case):
    columns, backup, database = case
    ordered = sorted(backup, key=sort_key)
    changes = list(
        merge(
            [backup[k] for k in ordered],
            [database[k] for k in sorted(database, key=sort_key)],
            columns,
            ["v", "updated_at"],
            updated_at="updated_at",
            backup_time=BACKUP_TIME,
        )
    )
    got = {c.key: (c.kind, c.columns) for c in changes}
    assert len(got) == len(changes)  # every key once
    assert got == reference(backup, database)
    keys_in_order = [sort_key(c.key) for c in changes]
    assert keys_in_order == sorted(keys_in_order)


def test_out_of_order_and_duplicate_keys_are_detected():
    rows = [{"id": 2}, {"id": 1}]
    with pytest.raises(OutOfOrder, match="out of primary-key order") as info:
        list(merge(rows, [], ["id"], []))
    assert info.value.side == "backup" and not info.value.duplicate
    with pytest.raises(OutOfOrder, match="repeats the key") as info:
        list(merge([], [{"id": 1}, {"id": 1}], ["id"], []))
    assert info.value.side == "database" and info.value.duplicate


def test_timestamps_written_differently_are_the_same_value():
    assert same_value("2025-08-01T09:20:00+00:00", "2025-08-01T09:20:00Z")
    assert same_value("2025-08-01T09:20:00.000+00:00", "2025-08-01 09:20:00+00:00")
    assert not same_value("2025-08-01T09:20:00+00:00", "2025-08-01T09:20:01+00:00")
    assert not same_value("2025-08-01", "2025-08-01T00:00:00")
    # By type: JSON true is not 1, and 1.0 (a scale) is not 1.
    assert not same_value(True, 1) and not same_value(1, 1.0)
    assert not same_value({"a": True}, {"a": 1}) and same_value({"a": [1]}, {"a": [1]})
    assert not same_value(None, "")
