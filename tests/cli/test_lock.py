"""Two runs of one pipeline never overlap: real ``angles`` processes racing for the lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from angles.state.lock import PipelineLock, new_owner
from angles.state.store import StateStore

HOST = socket.gethostname()

SLOW_PIPELINE = """\
version: 1
name: nightly
checks:
  - {{name: slow, type: http, url: "{url}/slow", timeout_seconds: 30}}
"""


def angles(path: Path, *args: str) -> subprocess.Popen:
    """``angles run PIPELINE`` as its own process (its pid is the holder's pid)."""
    return subprocess.Popen(
        [sys.executable, "-m", "angles", "run", str(path), "--format", "json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=path.parent,
    )


def lock_owner(path: Path) -> str | None:
    """Who holds the pipeline's lock, read without creating the store."""
    store = path.parent / ".angles" / "state.db"
    if not store.exists():
        return None
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
        try:
            row = db.execute("SELECT owner FROM locks WHERE name = 'run:nightly'").fetchone()
        except sqlite3.OperationalError:  # not created yet
            return None
    return row[0] if row else None


def wait_for_lock(path: Path, process: subprocess.Popen) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        owner = lock_owner(path)
        if owner:
            return owner
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the run never took the lock")


def test_two_concurrent_runs_never_both_run(pipeline_file, webhook_server):
    webhook_server.fail(path="/slow", delay=6, times=2)
    path = pipeline_file(SLOW_PIPELINE.format(url=webhook_server.url))
    first, second = angles(path), angles(path)
    finished: list[subprocess.Popen] = []
    while len(finished) < 2:
        finished += [p for p in (first, second) if p.poll() is not None and p not in finished]
        time.sleep(0.05)
    loser, winner = finished  # the one refused exits at once, while the other still runs
    assert (loser.returncode, winner.returncode) == (3, 0), winner.stderr.read()
    error = json.loads(loser.stdout.read())["error"]
    assert error["exit_code"] == 3
    assert error["message"].startswith(
        f"pipeline 'nightly' is already running: process {winner.pid} on host {HOST} since "
    )
    assert json.loads(winner.stdout.read())["checks"][0]["status"] == "ok"
    assert len(webhook_server.requests_to("/slow")) == 1  # only one run checked anything
    assert lock_owner(path) is None  # released when the run ended


def test_a_killed_runs_lock_is_taken_over_by_the_next_run(pipeline_file, webhook_server):
    webhook_server.fail(path="/slow", delay=60)
    path = pipeline_file(SLOW_PIPELINE.format(url=webhook_server.url))
    killed = angles(path)
    owner = wait_for_lock(path, killed)
    assert owner.startswith(f"{HOST}:{killed.pid}:")
    while not webhook_server.requests_to("/slow"):  # killed in the middle of its check
        assert killed.poll() is None
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert lock_owner(path) == owner  # a killed process releases nothing
    following = angles(path)
    out, err = following.communicate(timeout=60)
    assert following.returncode == 0, out + err
    assert json.loads(out)["status"] == "ok"
    assert lock_owner(path) is None


@pytest.fixture
def held(pipeline_file, tmp_path):
    """A pipeline with a sqlite vault, whose lock a live process (this one) holds."""
    with closing(sqlite3.connect(tmp_path / "vault.db")) as db, db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        db.execute("INSERT INTO t VALUES (1, 'a')")
    path = pipeline_file(
        """\
        version: 1
        name: nightly
        connections:
          vault: {type: sqlite, path: vault.db}
        checks:
          - {name: rows, type: static, status: ok}
        sinks:
          local: {type: local, path: backups}
        backups:
          - {name: t, connection: vault, table: t, sinks: [local]}
        """
    )
    lock = PipelineLock(
        lambda: StateStore.open(str(tmp_path / ".angles" / "state.db")),
        "nightly",
        owner=new_owner(),
    )
    return path, lock


def test_run_check_backup_and_live_restore_refuse_while_another_holds_the_lock(
    angles_cli, held, tmp_path
):
    path, lock = held
    assert angles_cli("backup", path).exit_code == 0  # a backup to restore from later
    assert lock.try_acquire() is None
    expected = f"pipeline 'nightly' is already running: process {os.getpid()} on host {HOST} since "
    for command in (
        ["run", path],
        ["check", path],
        ["backup", path],
        ["restore", path, "--table", "t", "--live", "--yes"],
    ):
        result = angles_cli(*command)
        assert result.exit_code == 3, command
        assert result.stderr.startswith(f"ERROR: {expected}"), result.output
        assert len(result.stderr.splitlines()) == 1
    assert [p.name for p in (tmp_path / "backups").iterdir()] != []
    assert len(list((tmp_path / "backups").iterdir())) == 1  # the refused backup wrote nothing
    # Neither a dry run nor a --test run writes anything: they do not wait for the lock.
    assert angles_cli("restore", path, "--table", "t").exit_code == 0
    assert angles_cli("run", path, "--test").exit_code == 2
    lock.release()
    assert angles_cli("run", path).exit_code == 0
