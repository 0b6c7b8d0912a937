"""Backups to GitHub: memory, requests, time with pacing, and how much the repository grows
each day.

The GitHub imitation runs in this process; each backup runs in a child process that
reports its own peak RSS (``VmHWM``), so the server's copy of the data is not counted. For
100,000 and 1,000,000 rows of a decision_vault-like SQLite table:

* ``backup``: ``run_backups`` to the ``github`` sink, paced as GitHub's documented limits
  require (the default): the file is larger than 50 MiB at 1M rows, so gzip-compressed;
  it is stored in parts cut between rows;
* ``verify``: ``verify_backups``: list the folder, read the parts back, check the checksum;
* ``pacing``: the same first backup with PyGithub's spacing (every request 0.25 s apart,
  writes 1 s apart), which the sink used before, reproduced by handing PyGithub its own
  defaults; the rows up to ``--pacing-rows`` (default 100,000) only, it takes minutes;
* ``growth``: the days after: each runs one backup after changing the table, and prints
  what the repository grew by (new git objects, zlib-compressed as git stores them: the
  part blobs, the manifest, trees and the commit) against the stored file, beside what the
  older layout (one gzip stream or JSON cut every 8 MiB) would have added.

The requests of each case are counted by kind: every kind but blob uploads/downloads must
stay the same whatever the row count. Target: peak RSS under 150 MB.

    .venv/bin/python bench/bench_github.py [ROWS ...] [--pacing-rows N]
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from contextlib import closing
from pathlib import Path

from common import open_context, peak_rss_mb, timed_backup, write_vault

SIZES = (100_000, 1_000_000)
OLD_PART = 8 * 1024 * 1024
REPO = "acme/backups"


def pipeline(url: str, token: str) -> dict:
    sink = {"type": "github", "repository": REPO, "token": token, "api_url": url}
    return {
        "version": 1,
        "name": "bench",
        "connections": {"vault": {"type": "sqlite", "path": "vault.db"}},
        "sinks": {"github": sink},
        "backups": [
            {"name": "vault", "connection": "vault", "table": "decision_vault", "sinks": ["github"]}
        ],
        "log_dir": "logs",
    }


def case_backup(folder: Path) -> dict:
    run, seconds = timed_backup(folder)
    return {"seconds": seconds, "rows": run.record_count, "file": run.files[0]["name"]}


def case_pyGithub_spacing(folder: Path) -> dict:
    """The backup as the sink paced it before: PyGithub's default spacing, which the sink
    left on (it now hands PyGithub None and paces itself), and no pacing of angles'."""
    import github

    spaced = github.Github

    class Spaced(spaced):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            kwargs.update(seconds_between_requests=0.25, seconds_between_writes=1.0)
            super().__init__(*args, **kwargs)

    github.Github = Spaced
    config = json.loads((folder / "angles.yaml").read_text(encoding="utf-8"))
    config["sinks"]["github"]["throttle"] = False
    (folder / "angles.yaml").write_text(json.dumps(config), encoding="utf-8")
    return case_backup(folder)


def case_verify(folder: Path) -> dict:
    from angles.backup.inventory import verify_backups

    with open_context(folder) as ctx:
        started = time.perf_counter()
        results = verify_backups(ctx)
        seconds = time.perf_counter() - started
        stored = ctx.sink("github").list()
    assert all(r.status.value == "ok" for r in results), [r.message for r in results]
    return {
        "seconds": seconds,
        "rows": results[-1].record_count,
        "stored_mb": stored[-1].size / 2**20,
    }


CASES = {"backup": case_backup, "verify": case_verify, "pacing": case_pyGithub_spacing}


def child(name: str, folder: str) -> None:
    result = CASES[name](Path(folder))
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def run_case(name: str, folder: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def describe(counts: Counter[str]) -> str:
    data = {k: n for k, n in counts.items() if k.endswith("git/blobs")}
    other = {k: n for k, n in counts.items() if k not in data}
    blobs = ", ".join(f"{k} {n}" for k, n in sorted(data.items()))
    rest = ", ".join(f"{k} {n}" for k, n in sorted(other.items()))
    return f"{sum(counts.values())} requests: {blobs} | other ({sum(other.values())}): {rest}"


# -- the days after ------------------------------------------------------------------------


def change(folder: Path, rows: int, how: str, seed: int) -> str:
    """Change the table as a day would; what changed."""
    rng = random.Random(seed)
    with closing(sqlite3.connect(folder / "vault.db")) as db, db:
        count = db.execute("SELECT count(*) FROM decision_vault").fetchone()[0]
        ids = [r[0] for r in db.execute("SELECT id FROM decision_vault ORDER BY id")]
        if how == "unchanged":
            return "nothing changed"
        if how == "usual":  # 0.5% new rows (keys after the others), 0.5% recent ones revised
            new = max(1, rows // 200)
            db.executemany(
                "INSERT INTO decision_vault (id, decision, type, date, notion_synced, "
                "created_at, updated_at) VALUES (?, ?, 'Product', '2025-08-02', 0, "
                "'2025-08-02T09:00:00+00:00', '2025-08-02T09:00:00+00:00')",
                [
                    (str(uuid.UUID(int=(count + i) * 7919 + 1)), f"New decision {count + i}")
                    for i in range(new)
                ],
            )
            edited = rng.sample(ids[-rows // 20 :], max(1, rows // 200))
            text = f"1%: {new} rows added, {len(edited)} of the newest 5% revised"
        elif how == "few":
            edited = rng.sample(ids, 10)
            text = "10 rows revised at random"
        else:  # the worst case: one row in a hundred, anywhere
            edited = rng.sample(ids, rows // 100)
            text = "1% of rows revised at random (worst case)"
        db.executemany(
            "UPDATE decision_vault SET decision = decision || ' (revised)', "
            "updated_at = '2025-08-02T10:00:00+00:00' WHERE id = ?",
            [(i,) for i in edited],
        )
        return text


def stored_files(server, prefix: str = "backups/") -> dict[str, bytes]:
    """Each stored backup file's bytes (parts put together), by name."""
    found = server.list_files(REPO, prefix=prefix)
    whole: dict[str, list[tuple[str, bytes]]] = {}
    for path, data in found.items():
        name = path.removeprefix(prefix)
        if name.endswith(".manifest.json") or name == "README.md":
            continue
        base = name.split(".part-")[0]
        whole.setdefault(base, []).append((name, data))
    return {base: b"".join(d for _, d in sorted(parts)) for base, parts in whole.items()}


def old_layout(data: bytes, compressed: bool) -> list[bytes]:
    """The parts the older layout stored: one gzip stream (or the JSON) cut every 8 MiB."""
    if compressed:
        stream = zlib.compressobj(6, zlib.DEFLATED, 31)
        data = stream.compress(gzip.decompress(data)) + stream.flush()
    return [data[i : i + OLD_PART] for i in range(0, len(data), OLD_PART)]


def old_growth(before: bytes, after: bytes, compressed: bool) -> int:
    """What the older layout added: its parts not stored the day before, as git stores them."""
    known = {hashlib.sha1(p).digest() for p in old_layout(before, compressed)}
    new = [p for p in old_layout(after, compressed) if hashlib.sha1(p).digest() not in known]
    return sum(len(zlib.compress(p)) for p in new)


def growth_days(server, folder: Path, rows: int) -> None:
    previous = stored_files(server)
    (name,) = previous
    for day, how in enumerate(("unchanged", "usual", "few", "worst"), 2):
        text = change(folder, rows, how, seed=day)
        time.sleep(1.1)  # a new second: a new file name
        server.forget_writes()  # a day later: the hour's writes are far behind
        before = server.git_objects(REPO)
        server.clear()
        result = run_case("backup", folder)
        assert server.rate_limited == [], server.rate_limited
        grown = server.object_sizes(REPO, server.git_objects(REPO) - before)
        blobs = server.object_sizes(
            REPO, [s for s in server.git_objects(REPO) - before if _is_blob(server, s)]
        )
        files = stored_files(server)
        new_name = result["file"]
        # what the file costs stored anew, sharing nothing (as git compresses a blob)
        whole = len(zlib.compress(files[new_name]))
        old = old_growth(previous[name], files[new_name], new_name.endswith(".gz"))
        mb = 2**20
        print(
            f"{rows:>10,} day {day}  {text}\n"
            f"{'':>16}+{grown.stored / mb:6.2f} MB ({grown.stored / whole:6.1%} of storing the "
            f"{len(files[new_name]) / mb:.1f} MB file anew, {whole / mb:.2f} MB; "
            f"{blobs.blobs} new blobs {blobs.stored / mb:.2f} MB, trees and commit "
            f"{(grown.stored - blobs.stored) / 1024:.0f} KB)\n"
            f"{'':>16}older layout +{old / mb:.2f} MB ({old / whole:.0%}); backup "
            f"{result['seconds']:.1f} s, {server.count_requests('POST git/blobs')} blobs uploaded"
        )
        previous, name = files, new_name


def _is_blob(server, sha: str) -> bool:
    return server.object_sizes(REPO, [sha]).blobs == 1


def main(sizes: tuple[int, ...], pacing_rows: int) -> None:
    from angles.testing.github import GitHubServer

    print(f"{'rows':>10} {'case':<7} {'seconds':>8} {'peak RSS':>9}  stored / requests")
    with GitHubServer() as server:
        # GitHub's documented secondary limits, enforced: pacing must keep to them
        server.content_writes_per_minute, server.content_writes_per_hour = 80, 500
        for rows in sizes:
            server.reset()
            server.create_repo("acme", "backups")
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                write_vault(folder, pipeline(server.url, server.token), rows)
                cases = ["backup", "verify"] + (["pacing"] if rows <= pacing_rows else [])
                for name in cases:
                    if name == "pacing":  # a first backup too, into an empty folder
                        server.reset()
                        server.create_repo("acme", "backups")
                        config = pipeline(server.url, server.token)
                        (folder / "angles.yaml").write_text(json.dumps(config), encoding="utf-8")
                    server.clear()
                    server.forget_writes()
                    result = run_case(name, folder)
                    assert server.rate_limited == [], server.rate_limited
                    counts = server.request_counts()
                    what = result.get("file") or f"{result['stored_mb']:.1f} MB stored"
                    print(
                        f"{rows:>10,} {name:<7} {result['seconds']:>8.2f} "
                        f"{result['peak_rss_mb']:>6.1f} MB  {what}\n{'':>38}{describe(counts)}"
                    )
                    if name == "pacing":
                        print(f"{'':>38}(PyGithub's spacing; 'backup' above: paced as required)")
                # the days after start from the first backup alone
                server.reset()
                server.create_repo("acme", "backups")
                config = pipeline(server.url, server.token)
                (folder / "angles.yaml").write_text(json.dumps(config), encoding="utf-8")
                server.forget_writes()
                run_case("backup", folder)
                growth_days(server, folder, rows)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        args = sys.argv[1:]
        limit = 100_000
        if "--pacing-rows" in args:
            at = args.index("--pacing-rows")
            limit = int(args[at + 1])
            del args[at : at + 2]
        os.environ.setdefault("NO_COLOR", "1")
        main(tuple(int(a) for a in args) or SIZES, limit)
