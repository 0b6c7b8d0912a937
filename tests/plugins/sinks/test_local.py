"""The local sink: files appear whole on commit, failures leave nothing, list/open/delete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from angles.core.context import Context
from angles.core.errors import BackupError
from angles.core.pipeline import Pipeline
from angles.core.plugins import load_plugins
from angles.plugins.sinks.local import LocalSink


@pytest.fixture
def sink(tmp_path: Path) -> LocalSink:
    context = Context(Pipeline(tmp_path / "angles.yaml", {"version": 1}), load_plugins())
    return LocalSink("local", {"type": "local", "path": "store"}, context)


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_files_appear_only_when_the_transaction_ends(sink, tmp_path):
    folder = tmp_path / "store"
    with sink.transaction("test") as writer:
        assert writer.store("a_2026-01-01_00-00-00.json", [b"{", b"}"]) == 2
        writer.store("b_2026-01-01_00-00-00.json.gz", iter([b"xyz"]))
        assert not [n for n in visible(folder) if not n.startswith(".")]
    assert visible(folder) == ["a_2026-01-01_00-00-00.json", "b_2026-01-01_00-00-00.json.gz"]
    listed = sink.list()
    assert [(f.name, f.size) for f in listed] == [
        ("a_2026-01-01_00-00-00.json", 2),
        ("b_2026-01-01_00-00-00.json.gz", 3),
    ]
    assert listed[0].modified is not None
    with sink.open("a_2026-01-01_00-00-00.json") as stream:
        assert stream.read() == b"{}"
    assert sink.head("b_2026-01-01_00-00-00.json.gz", 2) == b"xy"
    assert b"".join(sink.iter_chunks("b_2026-01-01_00-00-00.json.gz", 1)) == b"xyz"


def test_a_failed_transaction_leaves_the_folder_as_it_was(sink, tmp_path):
    with sink.transaction("first") as writer:
        writer.store("t_2026-01-01_00-00-00.json", [b"old"])

    def broken():
        yield b"partial"
        raise OSError("disk full")

    with pytest.raises(RuntimeError), sink.transaction("second") as writer:
        writer.store("t_2026-01-02_00-00-00.json", [b"new"])
        with pytest.raises(OSError, match="disk full"):
            writer.store("t_2026-01-01_00-00-00.json", broken())
        raise RuntimeError("the run failed")
    assert visible(tmp_path / "store") == ["t_2026-01-01_00-00-00.json"]
    with sink.open("t_2026-01-01_00-00-00.json") as stream:
        assert stream.read() == b"old"


def test_a_failed_store_does_not_spoil_the_others(sink, tmp_path):
    with sink.transaction("run") as writer:
        with pytest.raises(ZeroDivisionError):
            writer.store("x_2026-01-01_00-00-00.json", (b"%d" % (1 // 0) for _ in [1]))
        writer.store("y_2026-01-01_00-00-00.json", [b"ok"])
    assert visible(tmp_path / "store") == ["y_2026-01-01_00-00-00.json"]


def test_list_ignores_other_files_and_delete(sink, tmp_path):
    folder = tmp_path / "store"
    assert sink.list() == []
    folder.mkdir()
    for name in ("a_2026-01-01_00-00-00.json", "notes.txt", ".hidden.json", ".x.tmp"):
        (folder / name).write_text("x")
    (folder / "sub.json").mkdir()
    assert [f.name for f in sink.list()] == ["a_2026-01-01_00-00-00.json"]
    sink.delete(["a_2026-01-01_00-00-00.json", "gone_2020-01-01_00-00-00.json"], "retention")
    assert sink.list() == []


def test_names_cannot_leave_the_folder(sink):
    for name in ("../escape.json", "a/b.json", ".hidden.json", ""):
        with pytest.raises(BackupError, match="not a backup file name"):
            sink.open(name)
    with pytest.raises(BackupError, match=r"has no backup 'missing\.json'"):
        sink.open("missing.json")


#: A backup run that writes part of a file and then hangs until it is killed.
HANGING_WRITER = """\
import sys, time
from pathlib import Path
from angles.core.context import Context
from angles.core.pipeline import Pipeline
from angles.core.plugins import load_plugins
from angles.plugins.sinks.local import LocalSink

folder = Path(sys.argv[1])
context = Context(Pipeline(folder / "angles.yaml", {"version": 1}), load_plugins())
sink = LocalSink("local", {"type": "local", "path": "store"}, context)

def chunks():
    yield b'{"metadata": '
    print("writing", flush=True)
    time.sleep(600)

with sink.transaction("run") as writer:
    writer.store(sys.argv[2], chunks())
"""


def hanging_writer(tmp_path: Path, name: str) -> subprocess.Popen:
    writer = subprocess.Popen(
        [sys.executable, "-c", HANGING_WRITER, str(tmp_path), name],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline() == "writing\n"
    return writer


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_the_next_run_removes_what_a_killed_run_left_but_not_a_live_ones(sink, tmp_path):
    folder = tmp_path / "store"
    killed = hanging_writer(tmp_path, "a_2026-01-01_00-00-00.json")
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    [left] = hidden(folder)
    assert left.startswith(".a_2026-01-01_00-00-00.json")
    alive = hanging_writer(tmp_path, "b_2026-01-01_00-00-00.json")
    try:
        [live] = [name for name in hidden(folder) if name != left]
        with sink.transaction("next run") as writer:
            writer.store("c_2026-01-01_00-00-00.json", [b"{}"])
        assert hidden(folder) == [live]  # the live writer's file is still being written
        assert visible(folder) == [live, "c_2026-01-01_00-00-00.json"]
    finally:
        alive.kill()
        alive.wait()


def test_old_temporary_files_of_anyone_are_removed_after_a_day(sink, tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    fresh = folder / ".x_2026-01-01_00-00-00.json~web-2~4242~0123456789ab.tmp"
    old = folder / ".y_2026-01-01_00-00-00.json.0123456789ab.tmp"  # an older angles' name
    for path in (fresh, old):
        path.write_bytes(b"{")
    day_ago = time.time() - 24 * 3600 - 60
    os.utime(old, (day_ago, day_ago))
    with sink.transaction("run") as writer:
        writer.store("z_2026-01-01_00-00-00.json", [b"{}"])
    assert hidden(folder) == [fresh.name]  # another host's writer may still be at work
