"""The ``github`` sink against the GitHub imitation, through the real PyGithub."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from angles.core.config import load_pipeline
from angles.core.context import Context
from angles.core.errors import BackupError, ServiceError
from angles.core.plugins import load_plugins
from angles.plugins.sinks.github import DEFAULT_PART_SIZE, GitHubSink, _Pacer
from angles.testing.github import GitHubServer
from angles.testing.server import RecordedRequest, Response

REPO = "acme/backups"
NAME = "decision_vault_2026-11-26_03-00-00.json"
OTHER = "users_2026-11-26_03-00-00.json"

MakeSink = Callable[..., GitHubSink]


def backup_file(rows: int, table: str = "decision_vault") -> bytes:
    """A small file in the backup layout (the sink only needs its first line)."""
    head = json.dumps({"metadata": {"record_count": rows, "source": table}})[:-1]
    body = ",\n".join(json.dumps({"id": i}) for i in range(rows))
    return f'{head}, "data": [\n{body}\n]}}\n'.encode()


def chunked(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture
def make_sink(github_server: GitHubServer, tmp_path: Path) -> MakeSink:
    """A ``github`` sink built from a pipeline file, as angles builds it."""

    def make(server: GitHubServer | None = None, timeout: float = 30, **config: Any) -> GitHubSink:
        server = server or github_server
        settings = {
            "type": "github",
            "repository": REPO,
            "token": server.token,
            "api_url": server.url,
            "throttle": False,
            **config,
        }
        path = tmp_path / "angles.yaml"
        text = (
            f"version: 1\nname: test\ndefaults: {{timeout_seconds: {timeout}}}\n"
            f"sinks:\n  github: {json.dumps(settings)}\n"
        )
        path.write_text(text, encoding="utf-8")
        plugins = load_plugins()
        context = Context(load_pipeline(path, plugins), plugins)
        sink = context.sink("github")
        assert isinstance(sink, GitHubSink)
        return sink

    return make


@pytest.fixture
def repo(github_server: GitHubServer) -> GitHubServer:
    github_server.create_repo("acme", "backups")
    return github_server


def files(server: GitHubServer, prefix: str = "backups/") -> dict[str, bytes]:
    return server.list_files(REPO, prefix=prefix)


def messages(server: GitHubServer) -> list[str]:
    return [c.message.split("\n", 1)[0] for c in server.list_commits(REPO)]


# -- configuration ---------------------------------------------------------------------------


def test_registered_with_a_documented_schema() -> None:
    assert load_plugins().registries["sink"].get("github") is GitHubSink
    properties = GitHubSink.config_schema["properties"]
    assert GitHubSink.config_schema["additionalProperties"] is False
    assert all(spec.get("description") for spec in properties.values())
    assert GitHubSink.secret_options() == ["token"]


def test_repository_and_path_are_checked_before_anything_runs() -> None:
    assert GitHubSink.validate_config({"repository": "acme/backups", "path": "a/b"}) == []
    problems = dict(
        GitHubSink.validate_config({"repository": "https://github.com/acme/x", "path": "../x"})
    )
    assert problems["repository"] == "'https://github.com/acme/x' is not owner/name (acme/backups)"
    assert "inside the repository" in problems["path"]


def test_pyGithub_is_imported_only_when_used() -> None:
    code = "import sys, angles.plugins.sinks.github; print('github' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compresses_when_asked_or_above_50_mib(repo, make_sink) -> None:
    sink = make_sink()
    assert not sink.compresses(1000)
    assert sink.compresses(50 * 1024 * 1024 + 1)
    assert make_sink(compress=True).compresses(10)


# -- one commit per run --------------------------------------------------------------------


def test_a_run_is_one_commit_on_top_of_the_head(repo, make_sink) -> None:
    sink = make_sink()
    head = repo.branch_head(REPO)
    with sink.transaction("angles backup of decision_vault, users (production)") as batch:
        stored = batch.store(NAME, chunked(backup_file(3)), record_count=3)
        assert stored == len(backup_file(3))
        batch.store(OTHER, [backup_file(2, "users")], record_count=2)
        assert repo.branch_head(REPO) == head  # nothing visible before the end
    assert files(repo) == {
        f"backups/{NAME}": backup_file(3),
        f"backups/{OTHER}": backup_file(2, "users"),
    }
    latest, previous = repo.list_commits(REPO)[:2]
    assert latest.parents == [head] and previous.sha == head
    assert latest.message.startswith("angles backup of decision_vault, users (production)\n")
    assert f"- {NAME}: 3 records" in latest.message
    assert "2 files, 5 records" in latest.message
    counts = repo.request_counts()
    assert counts["POST git/commits"] == counts["PATCH git/refs"] == counts["POST git/trees"] == 1
    assert counts["POST git/blobs"] == 2
    assert repo.count_requests("contents") == 0
    tree = repo.requests_to(r"/git/trees$", "POST")[0].json()
    assert tree["base_tree"] == next(c.tree for c in repo.list_commits(REPO) if c.sha == head)
    assert not any("force" in r.json() for r in repo.requests_to(r"/git/refs", "PATCH"))


def test_a_failed_run_moves_no_branch(repo, make_sink) -> None:
    sink = make_sink()
    head = repo.branch_head(REPO)
    with pytest.raises(RuntimeError), sink.transaction("backup") as batch:
        batch.store(NAME, [backup_file(3)])
        raise RuntimeError("the database went away")
    assert repo.branch_head(REPO) == head
    assert files(repo) == {}


def test_a_failed_file_leaves_the_others_to_commit(repo, make_sink) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * 5000
        raise OSError("read error")

    sink = make_sink(part_size=1024)
    with sink.transaction("backup") as batch:
        with pytest.raises(OSError):
            batch.store(OTHER, broken())
        batch.store(NAME, [backup_file(3)])
    assert list(files(repo)) == [f"backups/{NAME}"]


def test_an_empty_transaction_makes_no_commit(repo, make_sink) -> None:
    head = repo.branch_head(REPO)
    with make_sink().transaction("backup"):
        pass
    assert repo.branch_head(REPO) == head


def test_files_go_to_the_configured_branch_created_from_the_default(repo, make_sink) -> None:
    main = repo.branch_head(REPO)
    sink = make_sink(branch="backups", path="nightly/db")
    with sink.transaction("backup") as batch:
        batch.store(NAME, [b"{}"])
    assert repo.branch_head(REPO) == main
    assert repo.read_file(REPO, f"nightly/db/{NAME}", ref="backups") == b"{}"
    assert repo.list_commits(REPO, "backups")[0].parents == [main]
    with sink.transaction("backup") as batch:  # the branch exists now
        batch.store(OTHER, [b"{}"])
    assert [f.name for f in sink.list()] == [NAME, OTHER]


def test_files_at_the_repository_root(repo, make_sink) -> None:
    sink = make_sink(path="")
    with sink.transaction("backup") as batch:
        batch.store(NAME, [b"{}"])
    assert repo.read_file(REPO, NAME) == b"{}"
    assert [f.name for f in sink.list()] == [NAME]  # README.md is not a backup


# -- large files ---------------------------------------------------------------------------------


def test_a_large_file_is_split_between_rows_and_read_back(repo, make_sink) -> None:
    data = backup_file(400)
    sink = make_sink(part_size=2048)
    with sink.transaction("backup") as batch:
        batch.store(NAME, chunked(data, 700))
    stored = files(repo)
    parts = sorted(p for p in stored if ".part-" in p)
    assert len(parts) > 5 and f"backups/{NAME}" not in stored
    assert all(stored[p].endswith(b"\n") and len(stored[p]) <= 2048 for p in parts)
    assert stored[parts[0]] == data[: data.index(b"\n") + 1]  # the metadata line alone
    assert b"".join(stored[p] for p in parts) == data  # cat NAME.part-* > NAME
    manifest = json.loads(stored[f"backups/{NAME}.manifest.json"])
    assert manifest["format"] == "angles-parts/1"  # older versions read it too
    assert manifest["name"] == NAME and manifest["size"] == len(data)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert [p["name"] for p in manifest["parts"]] == [p.split("/")[-1] for p in parts]
    assert f"{len(parts)} parts ({len(parts)} new, " in repo.list_commits(REPO)[0].message

    assert [(f.name, f.size) for f in sink.list()] == [(NAME, len(data))]
    repo.clear()
    assert sink.head(NAME, 60) == data[:60]
    assert repo.request_counts()["GET git/blobs"] == 2  # the manifest and the first part only
    with sink.open(NAME) as stream:
        assert stream.read() == data


def test_a_compressed_file_is_stored_in_gzip_members_that_gunzip_together(repo, make_sink) -> None:
    data = backup_file(3000)
    sink = make_sink(part_size=4096)
    with sink.transaction("backup") as batch:
        size = batch.store(NAME + ".gz", chunked(data, 1000))  # the JSON: the sink compresses
    stored = files(repo)
    parts = [stored[p] for p in sorted(stored) if ".part-" in p]
    assert len(parts) > 3 and all(p[:2] == b"\x1f\x8b" and len(p) <= 4096 for p in parts)
    assert size == sum(map(len, parts)) < len(data) // 2
    assert gzip.decompress(b"".join(parts)) == data
    if shutil.which("gunzip"):  # what the README tells users: cat NAME.part-* | gunzip
        out = subprocess.run(["gunzip", "-c"], input=b"".join(parts), capture_output=True)
        assert out.returncode == 0 and out.stdout == data
    with sink.open(NAME + ".gz") as stream:
        assert gzip.decompress(stream.read()) == data


def test_rewriting_a_name_removes_its_old_parts(repo, make_sink) -> None:
    with make_sink(part_size=1024).transaction("split") as batch:
        batch.store(NAME, [backup_file(300)])
    assert len(files(repo)) > 3
    with make_sink().transaction("whole") as batch:
        batch.store(NAME, [b"{}"])
    assert files(repo) == {f"backups/{NAME}": b"{}"}


def test_a_damaged_part_is_detected(repo, make_sink) -> None:
    data = backup_file(300)
    sink = make_sink(part_size=1024)
    with sink.transaction("backup") as batch:
        batch.store(NAME, [data])
    repo.move_branch(REPO, files={f"backups/{NAME}.part-002": b'{"id": -1},\n'})
    with pytest.raises(BackupError, match=r"part 2 .* was replaced after it was written"):
        sink.open(NAME)
    repo.move_branch(REPO, files={f"backups/{NAME}.part-002": None})
    sink.list()  # open() reads files as the last listing found them
    with pytest.raises(BackupError, match=r"part 2 .* is missing"):
        sink.open(NAME)


@pytest.mark.slow
def test_a_120_mb_backup_is_split_and_read_back(repo, make_sink) -> None:
    """The slow one: 120 MB of incompressible data (an encrypted file: cut every part_size
    bytes, since nothing repeats) with the default part size."""
    name = NAME + ".gz.age"
    block = os.urandom(1 << 20)
    blocks = [hashlib.sha256(block + bytes([i])).digest() * 32768 for i in range(120)]
    expected = hashlib.sha256(b"".join(blocks)).hexdigest()
    sink = make_sink()
    with sink.transaction("backup") as batch:
        batch.store(name, iter(blocks))
    del blocks
    posts = repo.requests_to(r"/git/blobs$", "POST")
    assert len(posts) == -(-120 * (1 << 20) // DEFAULT_PART_SIZE) == 15
    assert max(len(r.body) for r in posts) < DEFAULT_PART_SIZE * 4 // 3 + 200
    repo.clear()
    (listed,) = sink.list()
    assert (listed.name, listed.size) == (name, 120 * (1 << 20))
    digest = hashlib.sha256()
    for chunk in sink.iter_chunks(listed.name, 1 << 20):
        digest.update(chunk)
    assert digest.hexdigest() == expected
    assert repo.count_requests("contents") == 0


# -- growth with the rows that changed ---------------------------------------------------------

DAY2 = "decision_vault_2026-11-27_03-00-00.json"


def vault_file(rows: range, stamp: str, edited: set[int] = frozenset()) -> bytes:
    """A backup-like file of decision rows (ids in key order), some of them edited."""
    lines = [
        json.dumps(
            {
                "id": f"{i:08}",
                "decision": f"Décision n° {i}: ship the sync worker, étape {i % 97}"
                + (" (revised)" if i in edited else ""),
                "type": ("Architecture", "Product", "Process", "Hiring")[i % 4],
                "notion_page_id": hashlib.md5(str(i).encode()).hexdigest(),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for i in rows
    ]
    head = json.dumps({"metadata": {"timestamp": stamp, "record_count": len(lines)}})[:-1]
    return f'{head}, "data": [\n'.encode() + ",\n".join(lines).encode() + b"\n]}\n"


def growth(server: GitHubServer, store: Callable[[], None]) -> Any:
    """What ``store()`` adds to the repository's git objects."""
    before = server.git_objects(REPO)
    server.clear()
    store()
    return server.object_sizes(REPO, server.git_objects(REPO) - before)


def store_one(sink: GitHubSink, name: str, data: bytes) -> Callable[[], None]:
    def store() -> None:
        with sink.transaction("backup") as batch:
            batch.store(name, chunked(data, 65536))

    return store


@pytest.mark.parametrize("suffix", [".gz", ""], ids=["compressed", "plain"])
def test_an_unchanged_table_backed_up_again_adds_no_blob_but_its_metadata(
    repo, make_sink, suffix
) -> None:
    sink = make_sink(part_size=65536)
    day1 = growth(repo, store_one(sink, NAME + suffix, vault_file(range(6000), "day 1")))
    assert day1.blobs > 8
    day2 = growth(repo, store_one(sink, DAY2 + suffix, vault_file(range(6000), "day 2")))
    # the metadata part (its timestamp changed) and the manifest; every row part is shared
    assert (day2.blobs, repo.count_requests("POST git/blobs")) == (2, 1)
    assert day2.stored < day1.stored * 0.05
    (first, second) = sink.list()
    assert first.size == second.size
    with sink.open(DAY2 + suffix) as stream:
        back = stream.read()
    assert (gzip.decompress(back) if suffix else back) == vault_file(range(6000), "day 2")


def test_one_percent_of_rows_changed_grows_the_repository_by_a_small_fraction(
    repo, make_sink
) -> None:
    sink = make_sink(part_size=65536)
    day1 = growth(repo, store_one(sink, NAME + ".gz", vault_file(range(10_000), "day 1")))
    # the usual day: 50 new rows (at the end of the key order) and 50 recent ones revised
    changed = vault_file(range(10_050), "day 2", edited=set(range(9_900, 9_950)))
    day2 = growth(repo, store_one(sink, DAY2 + ".gz", changed))
    assert day2.blobs <= 5 and day2.stored < day1.stored * 0.15
    # three rows revised here and there: at most two parts each, and the metadata
    third = "decision_vault_2026-11-28_03-00-00.json.gz"
    scattered = vault_file(range(10_050), "day 3", edited={17, 5_000, 9_000})
    day3 = growth(repo, store_one(sink, third, scattered))
    assert day3.blobs <= 1 + 2 * 3 + 1 and day3.stored < day1.stored * 0.25
    with sink.open(third) as stream:
        assert gzip.decompress(stream.read()) == scattered


def test_a_part_is_uploaded_once_per_transaction(repo, make_sink) -> None:
    data = vault_file(range(3000), "same")
    with make_sink(part_size=16384).transaction("backup") as batch:
        batch.store(NAME + ".gz", chunked(data))
        batch.store(OTHER + ".gz", chunked(data))
    stored = files(repo)
    parts = [p for p in stored if ".part-" in p]
    assert repo.count_requests("POST git/blobs") == len(parts) // 2
    assert gzip.decompress(b"".join(stored[p] for p in sorted(parts) if OTHER in p)) == data


def test_a_backup_in_the_older_layout_still_verifies_and_restores(
    repo, angles_cli, pipeline_file, tmp_path, monkeypatch
) -> None:
    """Before parts were cut between rows, a large file was one gzip stream cut every
    part_size bytes; backups stored that way stay readable."""
    monkeypatch.setenv("GITHUB_TOKEN", repo.token)
    path = pipeline_file(
        PIPELINE.format(url=repo.url).replace("throttle", "compress: true\n    throttle")
    )
    with closing(sqlite3.connect(tmp_path / "vault.db")) as db, db:
        db.execute("CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT)")
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany(
            "INSERT INTO decision_vault VALUES (?, ?)",
            [(f"id{i:04}", f"décision {i} " + "x" * (i % 50)) for i in range(2000)],
        )
    assert angles_cli("backup", path).exit_code == 0
    new = next(p for p in files(repo) if p.endswith(".manifest.json") and "decision" in p)
    name = new.removeprefix("backups/").removesuffix(".manifest.json")
    with make_sink_from(path).open(name) as stream:
        plain = gzip.decompress(stream.read())
    old = "decision_vault_2020-01-01_00-00-00.json.gz"
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # as the older versions wrote it
    stream = compressor.compress(plain) + compressor.flush()
    pieces = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    layout: dict[str, bytes | str | None] = {
        f"backups/{old}.part-{i:03}": piece for i, piece in enumerate(pieces, 1)
    }
    manifest = {
        "format": "angles-parts/1",
        "name": old,
        "size": len(stream),
        "sha256": hashlib.sha256(stream).hexdigest(),
        "parts": [
            {"name": f"{old}.part-{i:03}", "sha": git_sha(piece), "size": len(piece)}
            for i, piece in enumerate(pieces, 1)
        ],
    }
    layout[f"backups/{old}.manifest.json"] = json.dumps(manifest)
    repo.move_branch(REPO, files=layout)

    verified = angles_cli("backups", "verify", path, old, "--format", "json")
    assert verified.exit_code == 0, verified.output
    assert verified.json()["backups"][0]["verified"] is True
    restore = angles_cli(
        "restore", path, "--table", "decision_vault", "--backup", old, "--format", "json"
    )
    assert restore.exit_code == 0, restore.output
    assert restore.json()["counts"]["unchanged"] == 2000


def git_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def make_sink_from(path: Path) -> GitHubSink:
    plugins = load_plugins()
    sink = Context(load_pipeline(path, plugins), plugins).sink("github")
    assert isinstance(sink, GitHubSink)
    return sink


# -- pacing -------------------------------------------------------------------------------------


def test_requests_go_out_unspaced_while_far_from_githubs_limits(repo, make_sink) -> None:
    repo.content_writes_per_minute = 80  # GitHub's documented limits, enforced
    repo.content_writes_per_hour = 500
    sink = make_sink(throttle=True, part_size=65536)
    started = time.monotonic()
    with sink.transaction("backup") as batch:
        batch.store(NAME, chunked(vault_file(range(3000), "day 1")))
    seconds = time.monotonic() - started
    writes = sum(n for k, n in repo.request_counts().items() if not k.startswith("GET"))
    assert 30 < writes < 80 and repo.rate_limited == []
    assert seconds < 5  # PyGithub's spacing (a write a second) took more than 30 s


def test_writes_wait_only_when_the_next_would_pass_the_limit(repo, make_sink, monkeypatch):
    # GitHub's 80 writes a minute, scaled down to 6 writes in 1.5 s
    repo.content_writes_per_minute, repo.content_write_window = 6, 1.5
    monkeypatch.setattr(_Pacer, "content_limits", ((6, 1.5),))
    data = vault_file(range(800), "day 1")
    started = time.monotonic()
    with make_sink(throttle=True, part_size=65536).transaction("backup") as batch:
        batch.store(NAME, chunked(data))
    seconds = time.monotonic() - started
    writes = sum(n for k, n in repo.request_counts().items() if not k.startswith("GET"))
    assert 12 < writes < 30 and repo.rate_limited == []
    windows = (writes - 1) // 6  # full windows waited out
    assert 1.5 * windows - 0.5 < seconds < 1.5 * windows + 3
    assert b"".join(v for k, v in sorted(files(repo).items()) if ".part-" in k) == data

    repo.reset()  # without pacing, GitHub refuses the seventh write
    repo.create_repo("acme", "backups")
    repo.content_writes_per_minute, repo.content_write_window = 6, 1.5
    with (
        pytest.raises(ServiceError, match="secondary rate limit exceeded"),
        make_sink(throttle=False, part_size=65536, max_rate_limit_wait=5).transaction("b") as batch,
    ):
        batch.store(NAME, chunked(data))
    assert repo.rate_limited


def test_a_used_up_rate_limit_is_waited_out_before_the_next_request(repo, make_sink) -> None:
    sink = make_sink(throttle=True)
    repo.set_rate_limit(3, reset_in=1.5)  # the repository, the branch, its commit
    started = time.monotonic()
    assert sink.list() == []
    assert 1 < time.monotonic() - started < 5
    assert repo.rate_limited == []  # waited for the reset instead of being refused


def test_a_rate_limit_that_resets_too_late_is_reported_without_a_request(repo, make_sink):
    sink = make_sink(throttle=True, max_rate_limit_wait=5)
    repo.set_rate_limit(3, reset_in=1800)
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        sink.list()
    assert time.monotonic() - started < 3
    assert "not sent: the API rate limit is used up until " in str(caught.value)
    assert re.search(r"waiting 18\d\d s would pass `max_rate_limit_wait:`", str(caught.value))
    assert repo.rate_limited == []


# -- listing and reading at scale -------------------------------------------------------------


def test_1500_files_are_listed_completely(github_server: GitHubServer, make_sink) -> None:
    names = [f"t{i:04}_2026-01-01_00-00-00.json" for i in range(1500)]
    github_server.create_repo(
        "acme", "backups", files={f"backups/{n}": b"{}" for n in names} | {"README.md": b"r"}
    )
    assert len(names) > github_server.contents_dir_limit
    assert [f.name for f in make_sink().list()] == names
    assert github_server.count_requests("contents") == 0


def test_a_file_over_1_mb_is_read_through_its_blob(github_server, make_sink) -> None:
    big = os.urandom(3 * 1024 * 1024)
    github_server.create_repo("acme", "backups", files={f"backups/{NAME}": big})
    with make_sink().open(NAME) as stream:
        assert stream.read() == big
    assert github_server.count_requests("contents") == 0


def test_a_missing_file_is_a_backup_error(repo, make_sink) -> None:
    with pytest.raises(BackupError, match="has no backup"):
        make_sink().open(NAME)


def test_retention_deletes_in_one_commit(repo, make_sink) -> None:
    sink = make_sink(part_size=1024)
    with sink.transaction("backup") as batch:
        batch.store(NAME, [os.urandom(3000)])
        batch.store(OTHER, [b"{}"])
        batch.store("keep_2026-11-26_03-00-00.json", [b"{}"])
    doomed = [p for p in files(repo) if "keep_" not in p]
    assert len(doomed) > 3  # the split file's parts and manifest, and OTHER
    before = len(repo.list_commits(REPO))
    sink.delete([NAME, OTHER, "absent_2026-01-01_00-00-00.json"], "angles retention: 2 old")
    assert list(files(repo)) == ["backups/keep_2026-11-26_03-00-00.json"]
    assert len(repo.list_commits(REPO)) == before + 1
    deleted = repo.requests_to(r"/git/trees$", "POST")[-1].json()["tree"]
    assert all(entry["sha"] is None for entry in deleted)
    assert sorted(entry["path"] for entry in deleted) == sorted(doomed)
    sink.delete([NAME], "nothing left to delete")
    assert len(repo.list_commits(REPO)) == before + 1


# -- other writers, retried writes ------------------------------------------------------------


class MovingServer(GitHubServer):
    """Moves the branch (as another writer would) just before the next ``moves`` ref updates."""

    moves = 1

    def handle(self, request: RecordedRequest) -> Response:
        if request.method == "PATCH" and "/git/refs/" in request.path and self.moves:
            self.moves -= 1
            self.move_branch(REPO, files={f"backups/other_{self.moves}.json": b"{}"})
        return super().handle(request)


@pytest.fixture
def moving_server() -> Iterator[MovingServer]:
    with MovingServer() as server:
        server.create_repo("acme", "backups")
        yield server


def test_a_branch_moved_meanwhile_gets_the_commit_rebuilt_on_top(moving_server, make_sink):
    sink = make_sink(moving_server)
    with sink.transaction("backup") as batch:
        batch.store(NAME, [b"{}"])
    assert sorted(files(moving_server)) == [f"backups/{NAME}", "backups/other_0.json"]
    assert messages(moving_server) == ["backup", "Concurrent change", "Initial commit"]
    ours, theirs = moving_server.list_commits(REPO)[:2]
    assert ours.parents == [theirs.sha]
    assert moving_server.count_requests("POST git/blobs") == 1  # blobs are not sent again
    assert moving_server.count_requests("POST git/commits") == 2
    bodies = [r.json() for r in moving_server.requests_to(r"/git/refs", "PATCH")]
    assert bodies and not any(body.get("force") for body in bodies)


def test_a_branch_that_keeps_moving_is_given_up(moving_server, make_sink, monkeypatch):
    monkeypatch.setattr(GitHubSink, "retry_backoff", 0.0)
    moving_server.moves = 100
    with (
        pytest.raises(ServiceError, match="could not move main") as caught,
        make_sink(moving_server).transaction("backup") as batch,
    ):
        batch.store(NAME, [b"{}"])
    assert str(caught.value).startswith("GitHub: ")
    assert f"backups/{NAME}" not in files(moving_server)
    assert moving_server.count_requests("PATCH git/refs") == GitHubSink.commit_attempts


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", r"/git/refs/"), ("POST", r"/git/commits$"), ("POST", r"/git/blobs$")],
)
def test_a_write_that_went_through_but_answered_an_error(repo, make_sink, method, path):
    repo.fail_after_applying(method=method, path=path, status=502)
    sink = make_sink()
    with sink.transaction("backup") as batch:
        batch.store(NAME, [b"{}"])
    assert files(repo) == {f"backups/{NAME}": b"{}"}
    assert messages(repo) == ["backup", "Initial commit"]
    # angles tries the failed write again: a blob, a commit or a ref update to the same
    # commit applied twice is harmless
    kind = "git/refs" if "refs" in path else path[1:-1]
    assert repo.count_requests(f"{method} {kind}") == 2


def test_a_branch_creation_that_went_through_but_answered_an_error(repo, make_sink) -> None:
    repo.fail_after_applying(method="POST", path=r"/git/refs$", status=502)
    with make_sink(branch="backups").transaction("backup") as batch:
        batch.store(NAME, [b"{}"])
    assert repo.count_requests("POST git/refs") == 2  # the second: "Reference already exists"
    assert repo.read_file(REPO, f"backups/{NAME}", ref="backups") == b"{}"
    assert len(repo.list_commits(REPO, "backups")) == 2


def test_a_ref_update_that_timed_out_after_applying(repo, make_sink) -> None:
    repo.fail_after_applying(method="PATCH", path=r"/git/refs/", status=None, delay=2.5)
    sink = make_sink(timeout=1)
    with sink.transaction("backup") as batch:
        batch.store(NAME, [b"{}"])
    assert messages(repo) == ["backup", "Initial commit"]


# -- an empty repository ---------------------------------------------------------------------------


def test_an_empty_repository_gets_a_first_commit_then_the_backup(github_server, make_sink):
    github_server.create_repo("acme", "backups", empty=True)
    sink = make_sink()
    assert sink.list() == []
    with sink.transaction("backup") as batch:
        batch.store(NAME, [b"{}"])
    assert messages(github_server) == ["backup", "angles: start the backup repository"]
    assert sorted(files(github_server)) == ["backups/README.md", f"backups/{NAME}"]
    assert github_server.count_requests("PUT contents") == 1


def test_an_empty_repository_whose_first_put_is_retried(github_server, make_sink):
    github_server.create_repo("acme", "backups", empty=True)
    github_server.fail_after_applying(method="PUT", path=r"/contents/", status=502)
    with make_sink().transaction("backup") as batch:
        batch.store(NAME, [b"{}"])
    assert github_server.count_requests("PUT contents") == 2  # the second answered 422
    assert messages(github_server) == ["backup", "angles: start the backup repository"]


# -- errors and rate limits ----------------------------------------------------------------------


def test_bad_credentials(repo, make_sink) -> None:
    with pytest.raises(ServiceError) as caught:
        make_sink(token="ghp_wrong").list()
    assert str(caught.value) == "GitHub: bad credentials: check GITHUB_TOKEN"


def test_missing_repository_or_one_the_token_cannot_see(repo, make_sink) -> None:
    with pytest.raises(ServiceError, match="repository acme/nope not found") as caught:
        make_sink(repository="acme/nope").list()
    assert "check `repository:`" in str(caught.value)
    hidden = repo.add_token(repos=["acme/elsewhere"])
    with pytest.raises(ServiceError, match="acme/backups not found, or the token cannot see"):
        make_sink(token=hidden).list()


def test_a_read_only_token(repo, make_sink) -> None:
    head = repo.branch_head(REPO)
    sink = make_sink(token=repo.add_token(write=False))
    with (
        pytest.raises(ServiceError, match="may not") as caught,
        sink.transaction("backup") as batch,
    ):
        batch.store(NAME, [b"{}"])
    assert "Contents read and write" in str(caught.value)
    assert repo.branch_head(REPO) == head


def test_a_server_that_keeps_failing(repo, make_sink) -> None:
    repo.fail(method="POST", path=r"/git/blobs$", status=500, times=20)
    with (
        pytest.raises(ServiceError) as caught,
        make_sink().transaction("backup") as batch,
    ):
        batch.store(NAME, [b"{}"])
    assert str(caught.value) == (
        "GitHub: uploading a backup: HTTP 500: no message; tried 3 times "
        "(GitHub is failing; see https://www.githubstatus.com)"
    )
    assert repo.count_requests("POST git/blobs") == 3  # angles' tries only, none of urllib3's


@pytest.mark.parametrize("status", [403, 429])
def test_a_primary_rate_limit_that_lifts_soon_is_waited_for(repo, make_sink, status):
    sink = make_sink()
    repo.exhaust_rate_limit(reset_in=1, status=status)
    started = time.monotonic()
    assert sink.list() == []
    assert 0.5 < time.monotonic() - started < 5


@pytest.mark.parametrize("status", [403, 429])
def test_a_primary_rate_limit_beyond_the_wait_is_reported(repo, make_sink, status):
    repo.exhaust_rate_limit(reset_in=1800, status=status)
    started = time.monotonic()
    with pytest.raises(ServiceError) as caught:
        make_sink(max_rate_limit_wait=5).list()
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert message.startswith("GitHub: API rate limit exceeded; it resets at ")
    assert "UTC (in 30 min)" in message


def test_a_secondary_rate_limit_is_waited_for_as_told(repo, make_sink) -> None:
    repo.trigger_secondary_rate_limit(retry_after=1, method="POST")
    with make_sink().transaction("backup") as batch:
        batch.store(NAME, [b"{}"])
    assert repo.count_requests("POST git/blobs") == 2


@pytest.mark.parametrize("retry_after", [120, None])
def test_a_secondary_rate_limit_beyond_the_wait_is_reported(repo, make_sink, retry_after):
    repo.trigger_secondary_rate_limit(retry_after=retry_after, method="POST", times=3)
    started = time.monotonic()
    with (
        pytest.raises(ServiceError, match="GitHub: secondary rate limit exceeded"),
        make_sink(max_rate_limit_wait=5).transaction("backup") as batch,
    ):
        batch.store(NAME, [b"{}"])
    assert time.monotonic() - started < 3
    assert files(repo) == {}


# -- end to end through the command line ---------------------------------------------------------


PIPELINE = """\
version: 1
name: production
connections:
  vault: {{type: sqlite, path: vault.db}}
sinks:
  github:
    type: github
    repository: acme/backups
    token: "${{GITHUB_TOKEN}}"
    api_url: "{url}"
    throttle: false
    part_size: 4096
    retention_days: 30
backups:
  - {{name: decision_vault, connection: vault, table: decision_vault, sinks: [github]}}
  - {{name: users, connection: vault, table: users, sinks: [github]}}
"""


def test_backup_list_verify_and_restore_through_the_cli(
    repo, angles_cli, pipeline_file, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", repo.token)
    path = pipeline_file(PIPELINE.format(url=repo.url))
    with closing(sqlite3.connect(tmp_path / "vault.db")) as db, db:
        db.execute("CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT)")
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany(
            "INSERT INTO decision_vault VALUES (?, ?)",
            [(f"id{i:03}", f"décision {i}") for i in range(300)],
        )
        db.execute("INSERT INTO users VALUES (1, 'ada')")

    result = angles_cli("backup", path, "--format", "json")
    assert result.exit_code == 0, result.output
    report = result.json()
    assert [b["record_count"] for b in report["backups"]] == [300, 1]
    names = [b["files"][0]["name"] for b in report["backups"]]
    assert all(f["sink"] == "github" for b in report["backups"] for f in b["files"])
    (commit, _) = repo.list_commits(REPO)
    assert commit.message.startswith("angles backup of decision_vault, users (production)")
    assert "301 records" in commit.message
    assert any(".part-" in p for p in files(repo))  # the 300 rows were split
    assert repo.token not in json.dumps(files(repo), default=str)

    listed = angles_cli("backups", "list", path, "--format", "json")
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in listed.json()["github"]}
    assert set(rows) == set(names)
    assert rows[names[0]]["record_count"] == 300 and rows[names[0]]["checksum"] is True

    verified = angles_cli("backups", "verify", path, "--format", "json")
    assert verified.exit_code == 0, verified.output
    assert {b["name"]: b["verified"] for b in verified.json()["backups"]} == dict.fromkeys(
        names, True
    )

    restore = angles_cli("restore", path, "--table", "decision_vault", "--format", "json")
    assert restore.exit_code == 0, restore.output
    plan = restore.json()
    assert (plan["sink"], plan["backup"], plan["verified"], plan["live"]) == (
        "github",
        names[0],
        True,
        False,
    )
    assert plan["counts"]["unchanged"] == 300
    logs = list(tmp_path.rglob("*.log"))
    assert logs and not any(repo.token in log.read_text(encoding="utf-8") for log in logs)


def test_a_table_above_the_limit_is_stored_compressed(
    repo, angles_cli, pipeline_file, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", repo.token)
    monkeypatch.setattr(GitHubSink, "compress_above", 10_000)
    path = pipeline_file(PIPELINE.format(url=repo.url))
    with closing(sqlite3.connect(tmp_path / "vault.db")) as db, db:
        db.execute("CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT)")
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany(
            "INSERT INTO decision_vault VALUES (?, ?)",
            [(f"id{i:04}", f"décision {i} " + "x" * (i % 50)) for i in range(2000)],
        )
    result = angles_cli("backup", path, "--format", "json")
    assert result.exit_code == 0, result.output
    big, small = (b["files"][0]["name"] for b in result.json()["backups"])
    assert big.endswith(".json.gz") and small.endswith(".json")
    assert files(repo)[f"backups/{big}.part-001"][:2] == b"\x1f\x8b"
    verified = angles_cli("backups", "verify", path, "--format", "json")
    assert verified.exit_code == 0, verified.output
    assert [b["record_count"] for b in verified.json()["backups"]] == [2000, 0]


def test_verify_reports_an_unreadable_backup_and_checks_the_others(
    repo, angles_cli, pipeline_file, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", repo.token)
    path = pipeline_file(
        PIPELINE.format(url=repo.url).replace("part_size: 4096", "part_size: 1048576")
    )
    with closing(sqlite3.connect(tmp_path / "vault.db")) as db, db:
        db.execute("CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT)")
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO users VALUES (1, 'ada')")
    assert angles_cli("backup", path).exit_code == 0
    repo.fail(method="GET", path="/git/blobs/", status=401, body={"message": "Bad credentials"})
    verified = angles_cli("backups", "verify", path, "--format", "json")
    assert verified.exit_code == 2
    outcomes = sorted(b["verified"] for b in verified.json()["backups"])
    assert outcomes == [False, True]
    [failed] = [b for b in verified.json()["backups"] if not b["verified"]]
    assert "GitHub: bad credentials" in failed["message"]
