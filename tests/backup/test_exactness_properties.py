"""Generated rows of every built-in kind, backed up and restored through ``postgres``.

Each example fills a table, takes ``pg_dump --data-only`` of it, backs it up, damages
the table (empties it, or deletes, changes and adds rows) and restores: the dump must
come back identical, and a second dry run must find nothing to do. Values are written
as PostgreSQL literals, so what the database holds is whatever PostgreSQL made of them
(the scale of ``1.500``, ``json`` text with its whitespace and duplicate keys, array
bounds, BC timestamps), and the dump judges what came back.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from .conftest import postgres_pipeline

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très bien');
CREATE DOMAIN positive AS numeric CHECK (VALUE > 0);
CREATE TABLE kinds (
    id int PRIMARY KEY,
    n numeric, n2 numeric(14, 2), f8 double precision, f4 real, i2 smallint, i8 bigint,
    flag boolean, t text, c char(5), vc varchar(12),
    j json, jb jsonb, ints int[], nums numeric[], texts text[],
    b bytea, m mood, d positive, r int4range, nr numrange, tr tsrange,
    iv interval, ts timestamp, tstz timestamptz, dt date, tm time, tmtz timetz,
    tsv tsvector, x xml, bits varbit, addr inet, net cidr, mac macaddr, pt point,
    u uuid, mo money
);
"""

# -- PostgreSQL literals, one strategy per column ------------------------------------------------

text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)


def maybe(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), strategy)


def float_literal(width: int) -> st.SearchStrategy[str]:
    names = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
    return st.floats(width=width).map(lambda x: names.get(repr(x), repr(x)))


numeric = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.tuples(st.integers(-(10**12), 10**12), st.integers(0, 10**6), st.integers(0, 8)).map(
        lambda p: f"{p[0]}.{str(p[1]).zfill(p[2])}" if p[2] else str(p[0])
    ),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1.500", "-0.000", "1e-20", "1E+5"]),
)
positive = st.decimals(min_value="0.0001", max_value="1e15", allow_nan=False, places=4).map(str)


def json_values(nul: bool) -> st.SearchStrategy[Any]:
    strings = text | st.just("\x00") if nul else text
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**25), 10**25),
        st.floats(allow_nan=False, allow_infinity=False),
        strings,
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=6,
    )


@st.composite
def json_text(draw: st.DrawFn) -> str:
    """``json`` as someone wrote it: spacing, key order and duplicate keys kept."""
    value = draw(json_values(nul=True))
    spacing = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :  ")]))
    written = json.dumps(value, separators=spacing, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        written = f'{{"k": {written}, "k": 1e400, "z": 0.10}}'
    return draw(st.sampled_from(["", " ", "\n"])) + written


jsonb = json_values(nul=False).map(json.dumps) | st.sampled_from(
    ["12345678901234567890.50", "-0", "1e-7", '{"a": 1.0}', '"\\ud83d\\ude00"']
)


def quoted(element: str) -> str:
    return '"' + element.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def array(draw: st.DrawFn, elements: st.SearchStrategy[str | None]) -> str:
    items = draw(st.lists(elements, max_size=4))
    body = "{" + ",".join("NULL" if e is None else quoted(e) for e in items) + "}"
    if items and draw(st.booleans()):  # a lower bound other than 1
        lower = draw(st.integers(-5, 5))
        body = f"[{lower}:{lower + len(items) - 1}]={body}"
    return body


@st.composite
def range_literal(draw: st.DrawFn, bounds: st.SearchStrategy[Any]) -> str:
    if draw(st.booleans()) and draw(st.booleans()):
        return "empty"
    low, high = sorted(draw(st.lists(bounds, min_size=2, max_size=2)))
    low = "" if draw(st.booleans()) and draw(st.booleans()) else f'"{low}"'  # unbounded
    opening, closing = draw(st.sampled_from("[(")), draw(st.sampled_from("])"))
    return f'{opening}{low},"{high}"{closing}'


@st.composite
def timestamp(draw: st.DrawFn, zone: bool = False, clock: bool = True) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["infinity", "-infinity"]))
    bc = draw(st.booleans())
    year = draw(st.integers(1, 4713 if bc else 294275))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 28))
    value = f"{year:04d}-{month:02d}-{day:02d}"
    if clock:
        value += " " + draw(clock_time())
    if zone:
        value += draw(st.sampled_from(["+00", "-03:30", "+14", "Z"]))
    return value + (" BC" if bc else "")


@st.composite
def clock_time(draw: st.DrawFn) -> str:
    hour, minute, second = (
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
    )
    fraction = draw(st.sampled_from(["", ".5", f".{draw(st.integers(0, 999999)):06d}"]))
    return f"{hour:02d}:{minute:02d}:{second:02d}{fraction}"


interval = st.tuples(
    st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6), st.integers(-(10**12), 10**12)
).map(lambda p: f"{p[0]} mons {p[1]} days {p[2]} microseconds")

lexeme = st.text(st.sampled_from("ab'\\ :éZ9"), min_size=1, max_size=5)
tsvector = st.lists(
    st.tuples(lexeme, st.lists(st.integers(1, 16383), max_size=2, unique=True)), max_size=4
).map(
    lambda words: " ".join(
        "'"
        + w.replace("\\", "\\\\").replace("'", "''")
        + "'"
        + (":" + ",".join(map(str, p)) if p else "")
        for w, p in words
    )
)
xml_text = st.text(st.characters(categories=("L", "N", "P", "Zs", "S")), max_size=12).map(
    lambda s: s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
)
xml = st.one_of(
    xml_text,
    xml_text.map(lambda s: f"<a b='1'>{s}</a><c/>"),
    xml_text.map(lambda s: f'<?xml version="1.0"?><doc>{s}</doc>'),
)
point = st.tuples(float_literal(64), float_literal(64)).map(lambda p: f"({p[0]},{p[1]})")

COLUMNS: dict[str, st.SearchStrategy[str | None]] = {
    "n": maybe(numeric),
    "n2": maybe(st.integers(-(10**11), 10**11).map(lambda c: f"{c / 100:.2f}")),
    "f8": maybe(float_literal(64)),
    "f4": maybe(float_literal(32)),
    "i2": maybe(st.integers(-(2**15), 2**15 - 1).map(str)),
    "i8": maybe(st.integers(-(2**63), 2**63 - 1).map(str)),
    "flag": maybe(st.sampled_from(["true", "false"])),
    "t": maybe(text | st.sampled_from(["NULL", "\\N", "\t\n\r", "\x1e\x1f", '"'])),
    "c": maybe(st.text(st.characters(codec="latin-1", exclude_characters="\x00"), max_size=5)),
    "vc": maybe(text),
    "j": maybe(json_text()),
    "jb": maybe(jsonb),
    "ints": maybe(array(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1).map(str)))),
    "nums": maybe(array(maybe(numeric))),
    "texts": maybe(array(maybe(text | st.sampled_from(["NULL", "a,b", "{}", " x "])))),
    "b": maybe(st.binary(max_size=16).map(lambda b: "\\x" + b.hex())),
    "m": maybe(st.sampled_from(["sad", "ok", "happy", "très bien"])),
    "d": maybe(positive),
    "r": maybe(range_literal(st.integers(-(2**31), 2**31 - 2))),
    "nr": maybe(range_literal(st.decimals(-(10**6), 10**6, places=3))),
    "tr": maybe(range_literal(st.datetimes().map(lambda d: d.isoformat(" ")))),
    "iv": maybe(interval),
    "ts": maybe(timestamp()),
    "tstz": maybe(timestamp(zone=True)),
    "dt": maybe(timestamp(clock=False)),
    "tm": maybe(clock_time() | st.just("24:00:00")),
    "tmtz": maybe(st.tuples(clock_time(), st.sampled_from(["+00", "-05:30", "+13"])).map("".join)),
    "tsv": maybe(tsvector),
    "x": maybe(xml),
    "bits": maybe(st.text("01", max_size=20)),
    "addr": maybe(st.ip_addresses().map(str)),
    "net": maybe(st.ip_addresses(v=4).map(lambda a: f"{a}/32")),
    "mac": maybe(st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":"))),
    "pt": maybe(point),
    "u": maybe(st.uuids().map(str)),
    "mo": maybe(st.integers(-(10**13), 10**13).map(lambda c: f"{c / 100:.2f}")),
}

rows = st.lists(st.fixed_dictionaries(COLUMNS), min_size=1, max_size=6)

EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def kinds(postgres_db, pipeline_file):
    postgres_db.execute(SCHEMA)
    return pipeline_file(postgres_pipeline(postgres_db.url, "kinds", table="kinds"))


def fill(postgres_db, generated: list[dict[str, str | None]], first_id: int = 1) -> None:
    columns = ["id", *COLUMNS]
    insert = sql.SQL("INSERT INTO kinds ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    with postgres_db.connect() as conn, conn.cursor() as cursor:
        cursor.executemany(
            insert, [[first_id + i, *(row[c] for c in COLUMNS)] for i, row in enumerate(generated)]
        )


def back_up(angles_cli, path) -> str:
    shutil.rmtree(path.parent / "backups", ignore_errors=True)
    result = angles_cli("backup", path)
    assert result.exit_code == 0, result.output
    [file] = (path.parent / "backups").iterdir()
    return str(file)


def plan(angles_cli, path, file: str) -> dict[str, int]:
    result = angles_cli("restore", path, "--file", file, "--format", "json")
    assert result.exit_code == 0, result.output
    return result.json()["counts"]


def restore(angles_cli, path, file: str) -> None:
    result = angles_cli("restore", path, "--file", file, "--live", "--yes")
    assert result.exit_code == 0, result.output


@EXAMPLES
@given(generated=rows)
def test_a_restore_into_an_empty_table_gives_back_what_pg_dump_saw(
    kinds, postgres_db, angles_cli, generated
):
    postgres_db.execute("TRUNCATE kinds")
    fill(postgres_db, generated)
    original = postgres_db.data_dump()
    file = back_up(angles_cli, kinds)

    postgres_db.execute("TRUNCATE kinds")
    assert plan(angles_cli, kinds, file)["insert"] == len(generated)
    restore(angles_cli, kinds, file)
    assert postgres_db.data_dump() == original
    assert plan(angles_cli, kinds, file)["unchanged"] == len(generated)


@EXAMPLES
@given(generated=rows, changes=rows, data=st.data())
def test_a_restore_into_a_damaged_table_converges_in_one_pass(
    kinds, postgres_db, angles_cli, generated, changes, data
):
    postgres_db.execute("TRUNCATE kinds")
    fill(postgres_db, generated)
    original = postgres_db.data_dump()
    file = back_up(angles_cli, kinds)

    ids = list(range(1, len(generated) + 1))
    deleted = data.draw(st.sets(st.sampled_from(ids)), label="deleted")
    changed = [i for i in ids if i not in deleted][: len(changes)]
    before = dict(postgres_db.fetchall("SELECT id, kinds::text FROM kinds"))
    postgres_db.execute("DELETE FROM kinds WHERE id = ANY(%s)", [list(deleted)])
    postgres_db.execute("DELETE FROM kinds WHERE id = ANY(%s)", [changed])
    for row_id, row in zip(changed, changes, strict=False):
        fill(postgres_db, [row], first_id=row_id)
    fill(postgres_db, changes[:1], first_id=1000)  # a row the backup does not have
    after = dict(postgres_db.fetchall("SELECT id, kinds::text FROM kinds"))
    updated = sum(after[i] != before[i] for i in changed)

    counts = plan(angles_cli, kinds, file)
    assert counts["insert"] == len(deleted)
    assert counts["update"] == updated
    assert counts["unchanged"] == len(generated) - len(deleted) - updated
    assert counts["only_in_database"] == 1
    restore(angles_cli, kinds, file)
    postgres_db.execute("DELETE FROM kinds WHERE id = 1000")  # a restore never deletes
    assert postgres_db.data_dump() == original
    assert plan(angles_cli, kinds, file)["unchanged"] == len(generated)


# -- Keys of any type PostgreSQL can order --------------------------------------------------------

KEY_TYPES: dict[str, st.SearchStrategy[str]] = {
    "date": timestamp(clock=False),
    "timestamp": timestamp(),
    "timestamptz": timestamp(zone=True),
    "double precision": float_literal(64),
    "numeric": numeric,
    "text": text,
    'text COLLATE "en-x-icu"': text | st.sampled_from(["a", "B", "é", "e", "_x", "Z"]),
    "mood": st.sampled_from(["sad", "ok", "happy", "très bien"]),
    "interval": interval | st.sampled_from(["1 day", "24 hours", "1 mon", "30 days"]),
    "bytea": st.binary(max_size=4).map(lambda b: "\\x" + b.hex()),
    "uuid": st.uuids().map(str),
    "int[]": array(st.integers(-3, 3).map(str)),
}


@pytest.mark.parametrize("key_type", KEY_TYPES)
@settings(EXAMPLES, max_examples=6)
@given(data=st.data())
def test_a_restore_converges_for_any_key_type(
    postgres_db, pipeline_file, angles_cli, key_type, data
):
    postgres_db.reset()
    postgres_db.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très bien');")
    postgres_db.execute(f"CREATE TABLE kinds (k {key_type}, n int, note text, PRIMARY KEY (k, n))")
    keys = data.draw(st.lists(KEY_TYPES[key_type], min_size=1, max_size=12), label="keys")
    with postgres_db.connect() as conn, conn.cursor() as cursor:
        # Keys equal to the database (1.5 and 1.50, '1 day' and '24 hours') are one key.
        cursor.executemany(
            "INSERT INTO kinds VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [(key, i % 2, f"note {i}") for i, key in enumerate(keys)],
        )
    path = pipeline_file(postgres_pipeline(postgres_db.url, "kinds", table="kinds"))
    original = postgres_db.data_dump()
    file = back_up(angles_cli, path)

    stored = postgres_db.fetchall("SELECT k::text, n FROM kinds ORDER BY k, n")
    deleted = data.draw(st.sets(st.sampled_from(stored)), label="deleted")
    kept = [key for key in stored if key not in deleted]
    changed = data.draw(st.sets(st.sampled_from(kept)) if kept else st.just(set()), label="changed")
    for key, n in deleted:
        postgres_db.execute("DELETE FROM kinds WHERE k::text = %s AND n = %s", [key, n])
    for key, n in changed:
        postgres_db.execute(
            "UPDATE kinds SET note = 'changed' WHERE k::text = %s AND n = %s", [key, n]
        )

    counts = plan(angles_cli, path, file)
    assert (counts["insert"], counts["update"]) == (len(deleted), len(changed)), counts
    assert counts["unchanged"] == len(stored) - len(deleted) - len(changed)
    restore(angles_cli, path, file)
    assert postgres_db.data_dump() == original
    assert plan(angles_cli, path, file)["unchanged"] == len(stored)
