"""``angles history``: past runs and the checks' current state, as text and JSON."""

from __future__ import annotations

PIPELINE = """\
version: 1
name: demo
checks:
  - {{name: sync, type: static, status: {sync}, message: "sync is {sync}"}}
  - {{name: notion, type: static, status: ok}}
"""


def run(angles_cli, pipeline_file, sync: str) -> None:
    path = pipeline_file(PIPELINE.format(sync=sync))
    angles_cli("run", path)
    return path


def test_history_lists_runs_newest_first(angles_cli, pipeline_file):
    for status in ("ok", "error", "warning"):
        path = run(angles_cli, pipeline_file, status)
    result = angles_cli("history", path, "--format", "json")
    assert result.exit_code == 0
    document = result.json()
    assert document["pipeline"] == "demo"
    assert [r["status"] for r in document["runs"]] == ["warning", "error", "ok"]
    assert {c["check"]: c["consecutive_failures"] for c in document["checks"]} == {
        "notion": 0,
        "sync": 2,
    }
    [sync] = [c for c in document["checks"] if c["check"] == "sync"]
    assert sync["failing_since"][:19] == document["runs"][1]["started_at"][:19]  # the error run

    text = angles_cli("history", path, "--limit", "2")
    lines = text.stdout.splitlines()
    assert lines[0] == "demo: the last 2 runs, newest first"
    assert "WARNING" in lines[1] and "sync (warning)" in lines[1]
    assert "ERROR" in lines[2] and "sync (error)" in lines[2]
    assert "Checks now:" in text.stdout
    assert "failing since" in text.stdout and "(2 runs in a row)" in text.stdout


def test_history_of_one_check(angles_cli, pipeline_file):
    for status in ("ok", "error"):
        path = run(angles_cli, pipeline_file, status)
    result = angles_cli("history", path, "--check", "sync")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "sync: the last 2 runs, newest first"
    assert "sync is error" in result.stdout and "sync is ok" in result.stdout
    document = angles_cli("history", path, "--check", "sync", "--format", "json").json()
    assert [c["check"] for c in document["checks"]] == ["sync"]


def test_an_unknown_check(angles_cli, pipeline_file):
    path = run(angles_cli, pipeline_file, "ok")
    result = angles_cli("history", path, "--check", "nope")
    assert result.exit_code == 3
    assert (
        result.stderr.strip() == "ERROR: no check named 'nope' (the pipeline defines: notion, sync)"
    )


def test_no_runs_yet_and_test_runs_are_not_recorded(angles_cli, pipeline_file):
    path = pipeline_file(PIPELINE.format(sync="ok"))
    assert angles_cli("run", path, "--test").exit_code == 2
    result = angles_cli("history", path)
    assert result.exit_code == 0
    assert result.stdout.strip() == "demo: no runs recorded yet (angles run records them)"
    assert angles_cli("history", path, "--format", "json").json()["runs"] == []


def test_history_on_a_postgres_state(angles_cli, pipeline_file, postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS angles CASCADE")
    path = pipeline_file(PIPELINE.format(sync="error") + f"state: {postgres_url}\n")
    assert angles_cli("run", path).exit_code == 2
    result = angles_cli("history", path, "--format", "json")
    assert [r["status"] for r in result.json()["runs"]] == ["error"]
    password = psycopg.conninfo.conninfo_to_dict(postgres_url)["password"]
    assert password not in result.output
