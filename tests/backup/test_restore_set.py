"""``angles restore --all``: a disaster recovery into a database recreated from its
migrations, judged by ``pg_dump --data-only``; parents first, a circle of foreign keys,
sequences advanced, one confirmation and one pre-restore set."""

from __future__ import annotations

import json

import pytest

from angles.backup.format import BackupName

SCHEMA = """
CREATE TABLE customers (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers,
    total numeric(10, 2),
    note text,
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple', coalesce(note, ''))) STORED
);
CREATE SEQUENCE invoice_numbers START 1000;
CREATE TABLE invoices (
    number bigint PRIMARY KEY DEFAULT nextval('invoice_numbers'),
    order_id int NOT NULL REFERENCES orders
);
CREATE TABLE team (id int PRIMARY KEY, lead_id int);
CREATE TABLE people (id int PRIMARY KEY, team_id int REFERENCES team);
ALTER TABLE team ADD FOREIGN KEY (lead_id) REFERENCES people;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
"""

DATA = """
INSERT INTO customers (name) VALUES ('Ada'), ('Grace'), ('Edsger');
INSERT INTO orders (customer_id, total, note) VALUES
    (1, 10.50, 'first'), (1, 200.00, 'big one'), (2, 0.10, NULL), (3, 5, 'x'), (3, 6, 'gone');
DELETE FROM orders WHERE id = 5;  -- the sequence stays ahead of the table's maximum
INSERT INTO invoices (order_id) VALUES (1), (2), (4);
INSERT INTO team VALUES (1, NULL);
INSERT INTO people VALUES (10, 1);
UPDATE team SET lead_id = 10;
"""

# What a project recreated from its migrations holds: the schema, no rows, fresh sequences.
RECREATE = """
TRUNCATE customers, orders, invoices, team, people RESTART IDENTITY;
ALTER SEQUENCE invoice_numbers RESTART;
"""


@pytest.fixture
def shop(postgres_db, pipeline_file):
    postgres_db.execute(SCHEMA)
    postgres_db.execute(DATA)
    path = pipeline_file(
        f"""
        version: 1
        name: shop
        connections:
          db: {{type: postgres, url: "{postgres_db.url}"}}
        sinks:
          local: {{type: local, path: backups}}
        backups:
          - {{name: shop, connection: db, tables: all, sinks: [local]}}
        """
    )
    return postgres_db, path


def test_disaster_recovery_into_a_recreated_database(shop, angles_cli, tmp_path):
    database, path = shop
    original = database.data_dump()
    backup = angles_cli("backup", path, "--format", "json")
    assert backup.exit_code == 0, backup.output
    assert json.loads(backup.stdout)["backups"][0]["skipped"] == ["big_orders (view)"]
    database.execute(RECREATE)

    dry = angles_cli("restore", path, "--all", "--format", "json")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    (one,) = plan["sets"]
    assert one["order"] == ["customers", "orders", "invoices", "people", "team"]
    assert one["cycles"] == ["people", "team"]
    assert plan["counts"]["insert"] == 3 + 4 + 3 + 1 + 1
    assert database.fetchval("SELECT count(*) FROM customers") == 0  # a dry run writes nothing

    live = angles_cli("restore", path, "--all", "--live", "--yes")
    assert live.exit_code == 0, live.output
    assert database.data_dump() == original  # every value, and every sequence, as it was

    # The application inserts again: every key its defaults draw is new.
    database.execute("INSERT INTO customers (name) VALUES ('Barbara')")
    database.execute("INSERT INTO orders (customer_id, total) VALUES (4, 1)")
    database.execute("INSERT INTO invoices (order_id) VALUES (6)")
    assert database.fetchval("SELECT max(id) FROM orders") == 6
    assert database.fetchval("SELECT max(number) FROM invoices") == 1003


def test_one_pre_restore_set_and_a_second_run_has_nothing_to_write(shop, angles_cli, tmp_path):
    database, path = shop
    assert angles_cli("backup", path).exit_code == 0
    database.execute("UPDATE customers SET name = 'changed'; DELETE FROM invoices")
    live = angles_cli("restore", path, "--all", "--live", "--yes", "--format", "json")
    assert live.exit_code == 0, live.output
    report = json.loads(live.stdout)
    written = [t for t in report["sets"][0]["tables"] if t["applied"]["written"]]
    assert sorted(t["table"] for t in written) == ["customers", "invoices"]
    saved = [BackupName.parse(p.name) for p in (tmp_path / "backups").iterdir()]
    pre = [n for n in saved if n and n.pre_restore]
    assert sorted(n.table for n in pre) == ["customers", "invoices"]
    assert len({n.timestamp for n in pre}) == 1  # one set
    again = json.loads(angles_cli("restore", path, "--all", "--format", "json").stdout)
    assert again["counts"]["insert"] == again["counts"]["update"] == 0


def test_at_chooses_an_older_set_and_names_the_sets_there_are(shop, angles_cli, tmp_path):
    _, path = shop
    first = json.loads(angles_cli("backup", path, "--format", "json").stdout)
    stamp = BackupName.parse(first["backups"][0]["files"][0]["name"]).stamp
    missing = angles_cli("restore", path, "--all", "--at", "2001-01-01_00-00-00")
    assert missing.exit_code == 2
    assert "no set of 'shop' taken at 2001-01-01_00-00-00" in missing.output
    assert stamp in missing.output
    found = angles_cli("restore", path, "--all", "--at", stamp, "--format", "json")
    assert found.exit_code == 0, found.output


def test_all_without_a_terminal_asks_for_yes(shop, angles_cli):
    database, path = shop
    assert angles_cli("backup", path).exit_code == 0
    database.execute(RECREATE)
    live = angles_cli("restore", path, "--all", "--live")
    assert live.exit_code == 2
    assert "add --yes" in live.output
    assert database.fetchval("SELECT count(*) FROM customers") == 0


def test_all_does_not_mix_with_one_table(shop, angles_cli):
    _, path = shop
    result = angles_cli("restore", path, "--all", "--table", "orders")
    assert result.exit_code == 2 or result.exit_code == 3
    assert "--all restores every table of a set" in result.output


def test_backups_list_groups_the_files_of_a_set(shop, angles_cli):
    _, path = shop
    assert angles_cli("backup", path).exit_code == 0
    listing = angles_cli("backups", "list", path)
    assert listing.exit_code == 0, listing.output
    assert "set " in listing.stdout and ": 5 tables" in listing.stdout
    rows = json.loads(angles_cli("backups", "list", path, "--format", "json").stdout)["local"]
    assert len({row["set"] for row in rows}) == 1 and len(rows) == 5
