"""Restores: the plan, applying it, refusals, old files, interrupted runs, round trips."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from angles.backup.engine import run_backups
from angles.backup.format import BackupName
from angles.backup.restore import RestoreRequest, apply_restore, close_plan, prepare_restore
from angles.core.errors import AnglesError, RestoreRefused
from angles.core.progress import no_progress

OLD_FILE = Path(__file__).parents[1] / "data" / "decision_vault_2025-08-07_15-30-00.json"
LATER = "2099-01-01T00:00:00Z"


def live_rows(context, table="decision_vault"):
    database = context.connection("vault")
    return list(database.stream(table, database.describe(table)))


def plan_for(context, **request):
    plan = prepare_restore(context, RestoreRequest(**request))
    close_plan_later.append(plan)
    return plan


close_plan_later: list = []


@pytest.fixture(autouse=True)
def _close_plans():
    yield
    while close_plan_later:
        close_plan(close_plan_later.pop())


def restore_live(context, **request):
    plan = plan_for(context, **request)
    return apply_restore(context, plan)


@pytest.fixture
def backed_up(vault, make_context):
    """A vault of 30 rows, backed up once; then changed in every way a restore sees."""
    vault.insert([vault.row(i) for i in range(30)])
    context = make_context()
    (run,) = run_backups(context)
    assert run.status.value == "ok"
    original = live_rows(context)
    vault.execute("DELETE FROM decision_vault WHERE id IN ('id-00003', 'id-00004')")
    vault.execute("UPDATE decision_vault SET decision = 'edited' WHERE id = 'id-00005'")
    vault.execute("UPDATE decision_vault SET type = NULL, payload = '[1]' WHERE id = 'id-00006'")
    vault.execute(
        "UPDATE decision_vault SET decision = 'today', updated_at = ? WHERE id = 'id-00007'",
        (LATER,),
    )
    vault.insert([vault.row(99)])
    return context, run.files[0]["name"], original


def test_dry_run_plan(backed_up):
    context, name, _ = backed_up
    before = live_rows(context)
    plan = plan_for(context)
    assert plan.to_dict() == {
        "table": "decision_vault",
        "backup": name,
        "sink": "local",
        "verified": True,
        "live": False,
        "counts": {
            "insert": 2,
            "update": 2,
            "unchanged": 25,
            "only_in_database": 1,
            "newer_in_database": 1,
        },
        "samples": {
            "insert": ["id-00003", "id-00004"],
            "update": [
                {"id": "id-00005", "columns": ["decision"]},
                {"id": "id-00006", "columns": ["type", "payload"]},
            ],
            "only_in_database": ["id-00099"],
            "newer_in_database": [{"id": "id-00007", "columns": ["decision", "updated_at"]}],
        },
        "pre_restore_backup": None,
        "columns": {"missing_in_table": [], "new_in_table": []},
        "auto_migrate": False,
        "overwrite_newer": False,
        "updated_at_column": "updated_at",
        "unwritable_columns": {},
        "warnings": [],
    }
    assert live_rows(context) == before


def test_live_restore_applies_keeps_and_skips_then_is_idempotent(backed_up, tmp_path):
    context, name, original = backed_up
    plan = restore_live(context)
    assert plan.live and plan.applied == {
        "insert": 2,
        "update": 2,
        "newer_in_database": 0,
        "written": 4,
    }
    rows = {r["id"]: r for r in live_rows(context)}
    expected = {r["id"]: r for r in original}
    assert rows["id-00099"]["decision"] == "décision 99 — ✓"  # never deleted
    assert rows["id-00007"]["decision"] == "today"  # newer: skipped
    for key in set(expected) - {"id-00007"}:
        assert rows[key] == expected[key]
    # The table as it was before is saved beside the backup, under a recognisable name.
    pre = BackupName.parse(plan.pre_restore_backup)
    assert pre.pre_restore and pre.table == "decision_vault"
    assert (tmp_path / "backups" / plan.pre_restore_backup).exists()
    undo = plan_for(context, backup=plan.pre_restore_backup)
    # Restoring it would put back the two edits; the two re-inserted rows are kept.
    assert undo.counts["update"] == 2 and undo.counts["only_in_database"] == 2
    assert undo.verified
    # Newest backup is still the regular one, and running again changes nothing.
    again = restore_live(context)
    assert again.backup == name
    assert again.applied["written"] == 0
    assert again.counts["unchanged"] == 29 and again.counts["newer_in_database"] == 1


def test_overwrite_newer(backed_up):
    context, _, original = backed_up
    plan = restore_live(context, overwrite_newer=True)
    assert plan.applied["newer_in_database"] == 1
    rows = {r["id"]: r for r in live_rows(context)}
    assert rows["id-00007"] == next(r for r in original if r["id"] == "id-00007")


def test_an_interrupted_live_restore_converges_when_run_again(vault, make_context):
    vault.insert([vault.row(i) for i in range(100)])
    context = make_context(restore={"batch_size": 7})
    run_backups(context)
    original = live_rows(context)
    vault.execute("DELETE FROM decision_vault")
    plan = plan_for(context)
    assert plan.counts["insert"] == 100

    @contextmanager
    def crash_after_21_rows(label, total):
        def advance(done):
            if label.startswith("Restoring") and done >= 21:
                raise KeyboardInterrupt

        yield advance

    context.progress = crash_after_21_rows
    with pytest.raises(KeyboardInterrupt):
        apply_restore(context, plan)
    context.progress = no_progress
    assert len(live_rows(context)) == 21
    assert plan.applied["written"] == 21
    second = restore_live(context)
    assert second.counts["insert"] == 79 and second.counts["unchanged"] == 21
    assert live_rows(context) == original
    assert restore_live(context).applied["written"] == 0


def test_a_damaged_backup_refuses_the_restore(backed_up, tmp_path):
    context, name, _ = backed_up
    path = tmp_path / "backups" / name
    path.write_bytes(path.read_bytes().replace(b"cision 12", b"cision 13"))
    before = live_rows(context)
    with pytest.raises(RestoreRefused, match="does not match its checksum") as info:
        plan_for(context)
    assert info.value.exit_code == 2
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(RestoreRefused, match="damaged"):
        plan_for(context)
    assert live_rows(context) == before


def test_column_differences_refuse_a_live_restore_unless_auto_migrate(vault, make_context):
    vault.insert([vault.row(i) for i in range(5)])
    run_backups(make_context())
    vault.execute("ALTER TABLE decision_vault DROP COLUMN type")
    vault.execute("ALTER TABLE decision_vault ADD COLUMN score INTEGER DEFAULT 7")
    vault.execute("DELETE FROM decision_vault WHERE id = 'id-00002'")
    context = make_context()
    plan = plan_for(context)
    assert plan.missing_in_table == ["type"] and plan.new_in_table == ["score"]
    assert plan.counts["insert"] == 1 and plan.counts["unchanged"] == 4
    assert "set restore.auto_migrate: true" in plan.refusal()
    with pytest.raises(RestoreRefused, match="columns differ"):
        apply_restore(context, plan)
    assert len(live_rows(context)) == 4

    migrating = make_context(restore={"auto_migrate": True})
    plan = restore_live(migrating)
    assert plan.applied["insert"] == 1
    restored = {r["id"]: r for r in live_rows(migrating)}["id-00002"]
    assert restored["score"] == 7 and "type" not in restored


def test_a_new_required_column_blocks_inserts(vault, make_context):
    vault.insert([vault.row(i) for i in range(2)])
    run_backups(make_context())
    vault.execute("DELETE FROM decision_vault")
    vault.execute("ALTER TABLE decision_vault ADD COLUMN owner TEXT NOT NULL DEFAULT 'x'")
    vault.execute("CREATE TABLE strict_copy AS SELECT * FROM decision_vault")
    context = make_context(restore={"auto_migrate": True})
    assert plan_for(context).refusal() is None  # a default fills it
    vault.execute("DROP TABLE decision_vault")
    vault.execute(
        "CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT, type TEXT,"
        " notion_synced BOOLEAN, payload JSON, created_at TEXT, updated_at TEXT,"
        " owner TEXT NOT NULL)"
    )
    context = make_context(restore={"auto_migrate": True})
    assert "requires owner" in plan_for(context).refusal()


OLD_SCHEMA = """CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT, type TEXT,
    date TEXT, notion_synced BOOLEAN, notion_page_id TEXT, created_at TEXT, updated_at TEXT)"""


def test_old_format_file_lists_and_restores_unverified(vault, make_context, tmp_path):
    vault.execute("DROP TABLE decision_vault")
    vault.execute(OLD_SCHEMA)
    (tmp_path / "backups").mkdir()
    shutil.copy(OLD_FILE, tmp_path / "backups" / OLD_FILE.name)
    context = make_context()
    plan = plan_for(context)
    assert plan.backup == OLD_FILE.name and plan.verified is False
    assert plan.counts["insert"] == 12
    assert plan.sorted_in_memory or plan.samples["insert"] == sorted(plan.samples["insert"])
    apply_restore(context, plan)
    rows = {r["id"]: r for r in live_rows(context)}
    assert len(rows) == 12
    assert rows["ae2eb154-7f15-4524-b4b9-b5df9e7769b1"]["decision"] == (
        "Résumé parsing stays manual — für jetzt"
    )
    assert rows["f9ebdacc-0cb1-429c-a58c-da1495e60af5"]["notion_page_id"] is None
    assert plan_for(context).counts["unchanged"] == 12  # booleans stored as 1/0 compare equal


def test_old_format_file_from_disk(vault, make_context):
    plan = plan_for(make_context(), file=OLD_FILE)
    assert plan.sink is None and plan.verified is False and plan.counts["insert"] == 12


def test_requests_that_name_nothing_restorable(vault, make_context, tmp_path):
    vault.insert([vault.row(1)])
    context = make_context()
    with pytest.raises(RestoreRefused, match="holds no backup of 'decision_vault'"):
        plan_for(context)
    with pytest.raises(AnglesError, match="no backup entry for the table 'other'"):
        plan_for(context, table="other")
    with pytest.raises(AnglesError, match="no sink named 'elsewhere'"):
        plan_for(context, sink="elsewhere")
    with pytest.raises(RestoreRefused, match="has no backup 'decision_vault_2020"):
        plan_for(context, backup="decision_vault_2020-01-01_00-00-00.json")
    other = tmp_path / "other_2025-01-01_00-00-00.json"
    other.write_text(OLD_FILE.read_text(encoding="utf-8").replace('"decision_vault"', '"other"'))
    with pytest.raises(RestoreRefused, match="is a backup of 'other'"):
        plan_for(context, file=other, table="decision_vault")


def test_a_backup_out_of_key_order_is_sorted(vault, make_context, tmp_path):
    """A file in angles' layout whose rows are not in key order (e.g. written by others)."""
    vault.execute("CREATE TABLE n (id INTEGER PRIMARY KEY, v TEXT)")
    vault.insert([{"id": i, "v": str(i)} for i in range(10)], "n")
    context = make_context(
        backups=[{"name": "n", "connection": "vault", "table": "n", "sinks": ["local"]}]
    )
    (run,) = run_backups(context)
    path = tmp_path / "backups" / run.files[0]["name"]
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]  # checksum covers file order: swap both rows
    path.write_bytes(b"".join(lines))
    vault.execute("DELETE FROM n WHERE id = 4")
    with pytest.raises(RestoreRefused, match="checksum"):
        plan_for(context)


# ---- round trips through SQLite -----------------------------------------------------------

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
cells = {
    "t": st.none() | text,
    "n": st.none() | st.integers(-(2**63), 2**63 - 1),
    "r": st.none() | st.floats(allow_nan=False, allow_infinity=False),
    # A JSON-declared SQLite column has NUMERIC affinity: a top-level number is stored as a
    # number (beyond 64 bits, a REAL), whoever writes it; inside arrays and objects it is text.
    "j": st.none()
    | st.recursive(
        st.none() | st.booleans() | st.integers(-(10**20), 10**20) | text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    ).filter(lambda value: type(value) is not int or -(2**63) <= value < 2**63),
    "ts": st.none() | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
}


@st.composite
def tables(draw):
    keys = draw(st.lists(st.tuples(st.integers(0, 3), text), unique=True, max_size=25))
    return [{"k1": a, "k2": b, **{c: draw(s) for c, s in cells.items()}} for a, b in keys]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=tables())
def test_round_trip_backup_wipe_restore(vault, make_context, tmp_path, rows):
    with closing(sqlite3.connect(vault.path)) as connection, connection:
        connection.execute("DROP TABLE IF EXISTS mixed")
        connection.execute(
            "CREATE TABLE mixed (k1 INTEGER, k2 TEXT, t TEXT, n INTEGER, r REAL, j JSON,"
            " ts TEXT, PRIMARY KEY (k1, k2))"
        )
    shutil.rmtree(tmp_path / "backups", ignore_errors=True)
    context = make_context(
        backups=[{"name": "mixed", "connection": "vault", "table": "mixed", "sinks": ["local"]}]
    )
    database = context.connection("vault")
    schema = database.describe("mixed")
    database.upsert("mixed", schema, rows)
    before = live_rows(context, "mixed")
    (run,) = run_backups(context)
    assert run.record_count == len(rows)
    vault.execute("DELETE FROM mixed")
    plan = restore_live(context, table="mixed")
    assert plan.applied["insert"] == len(rows) and plan.verified
    assert live_rows(context, "mixed") == before
    expected = sorted(rows, key=lambda r: (r["k1"], r["k2"]))
    assert before == expected


def test_restore_from_a_compressed_sink(vault, make_context, tmp_path):
    vault.insert([vault.row(i) for i in range(5)])
    context = make_context(sinks={"local": {"type": "local", "path": "backups", "compress": True}})
    (run,) = run_backups(context)
    assert run.files[0]["name"].endswith(".json.gz")
    vault.execute("DELETE FROM decision_vault WHERE id = 'id-00001'")
    plan = restore_live(context)
    assert plan.verified and plan.applied["insert"] == 1
    assert plan.pre_restore_backup.endswith(".json.gz")
