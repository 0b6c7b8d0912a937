"""Memory and API requests of a backup to GitHub, and of verifying it, as the table grows.

The GitHub imitation runs in this process; each case runs in a child process that reports
its own peak RSS (``VmHWM``), so the server's copy of the data is not counted. For 100,000 and 1,000,000 rows of a decision_vault-like SQLite table:

* ``backup``: ``run_backups`` to the ``github`` sink (throttling off): the file is larger
  than 50 MiB at 1M rows, so it is gzip-compressed, and split into 8 MiB parts if needed;
* ``verify``: ``verify_backups``: list the folder, read the parts back, check the checksum.

The requests of each case are counted by kind: every kind but blob uploads/downloads must
stay the same whatever the row count. Target: peak RSS under 150 MB.

    .venv/bin/python bench/bench_github.py [ROWS ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import open_context, peak_rss_mb, timed_backup, write_vault

SIZES = (100_000, 1_000_000)


def pipeline(url: str, token: str) -> dict:
    sink = {
        "type": "github",
        "repository": "acme/backups",
        "token": token,
        "api_url": url,
        "throttle": False,
    }
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


def case_verify(folder: Path) -> dict:
    from angles.backup.inventory import verify_backups

    with open_context(folder) as ctx:
        started = time.perf_counter()
        (result,) = verify_backups(ctx)
        seconds = time.perf_counter() - started
        (stored,) = ctx.sink("github").list()
    assert result.status.value == "ok", result.message
    return {"seconds": seconds, "rows": result.record_count, "stored_mb": stored.size / 2**20}


CASES = {"backup": case_backup, "verify": case_verify}


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


def main(sizes: tuple[int, ...]) -> None:
    from angles.testing.github import GitHubServer

    print(f"{'rows':>10} {'case':<7} {'seconds':>8} {'peak RSS':>9}  stored / requests")
    with GitHubServer() as server:
        for rows in sizes:
            server.reset()
            server.create_repo("acme", "backups")
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                write_vault(folder, pipeline(server.url, server.token), rows)
                for name in ("backup", "verify"):
                    server.clear()
                    result = run_case(name, folder)
                    counts = server.request_counts()
                    what = result.get("file") or f"{result['stored_mb']:.1f} MB stored"
                    print(
                        f"{rows:>10,} {name:<7} {result['seconds']:>8.2f} "
                        f"{result['peak_rss_mb']:>6.1f} MB  {what}\n{'':>38}{describe(counts)}"
                    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
