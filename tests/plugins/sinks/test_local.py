"""The local sink: files appear whole on commit, failures leave nothing, list/open/delete."""

from __future__ import annotations

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
