"""Time and peak memory of an encrypted backup against the same backup unencrypted.

For 100,000 and 1,000,000 rows of a decision_vault-like SQLite table, in the same run,
each case runs in its own process, measured from outside by ``/usr/bin/time -v`` (its
"Maximum resident set size"), so no case shares another's high-water mark:

* ``plain``: ``run_backups`` to a local sink, as every backup is stored;
* ``age``: the same backup to a local sink with ``encrypt: {recipients: [age1…]}``;
* ``verify plain`` / ``verify age``: ``angles backups verify`` of each file (the
  encrypted one is decrypted first).

Target: the encrypted cases' peak RSS flat between 100k and 1M rows, within a few MB of
the plain ones.

    .venv/bin/python bench/bench_encrypt.py [ROWS ...]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import open_context, write_vault

SIZES = (100_000, 1_000_000)
TIME = "/usr/bin/time"


def pipeline(recipient: str) -> dict:
    local = {"type": "local", "path": "plain"}
    encrypted = {"type": "local", "path": "age", "encrypt": {"recipients": [recipient]}}
    return {
        "version": 1,
        "name": "bench",
        "connections": {"vault": {"type": "sqlite", "path": "vault.db"}},
        "sinks": {"plain": local, "age": encrypted},
        "backups": [
            {"name": "vault", "connection": "vault", "table": "decision_vault", "sinks": ["plain"]}
        ],
        "log_dir": "logs",
    }


def with_sink(folder: Path, sink: str, identity: str | None = None) -> None:
    """Point the one backup entry at ``sink`` (and give the age sink its identity)."""
    path = folder / "angles.yaml"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["backups"][0]["sinks"] = [sink]
    if identity:
        document["sinks"]["age"]["encrypt"]["identity_file"] = identity
    path.write_text(json.dumps(document), encoding="utf-8")


def case_backup(folder: Path) -> dict:
    from angles.backup.engine import run_backups

    with open_context(folder) as context:
        started = time.perf_counter()
        (run,) = run_backups(context)
        seconds = time.perf_counter() - started
    assert run.status.value == "ok", run.message
    (stored,) = run.files
    return {"seconds": seconds, "rows": run.record_count, "bytes": stored["size"]}


def case_verify(folder: Path) -> dict:
    from angles.backup.inventory import verify_backups

    with open_context(folder) as context:
        started = time.perf_counter()
        results = verify_backups(context)
        seconds = time.perf_counter() - started
    assert results and all(r.status.value == "ok" for r in results), results
    return {"seconds": seconds, "rows": sum(r.record_count or 0 for r in results)}


CASES = {"backup": case_backup, "verify": case_verify}


def run_case(name: str, folder: Path) -> dict:
    """One case in a child process under ``/usr/bin/time -v``: its result and peak RSS."""
    done = subprocess.run(
        [TIME, "-v", sys.executable, __file__, "--child", name, str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"case {name} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    assert peak, done.stderr
    result["peak_rss_mb"] = int(peak[1]) / 1024
    return result


def main(sizes: tuple[int, ...]) -> None:
    from pyrage import x25519

    identity = x25519.Identity.generate()
    print(f"{'rows':>10} {'case':<13} {'seconds':>8} {'µs/row':>7} {'peak RSS':>9}  file")
    for rows in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_vault(folder, pipeline(str(identity.to_public())), rows)
            (folder / "key.txt").write_text(f"{identity}\n", encoding="utf-8")
            for label, sink, case in (
                ("backup plain", "plain", "backup"),
                ("backup age", "age", "backup"),
                ("verify plain", "plain", "verify"),
                ("verify age", "age", "verify"),
            ):
                if case == "verify":
                    # verify reads every sink: leave only the one measured
                    other = folder / ("age" if sink == "plain" else "plain")
                    hidden = other.with_name(other.name + ".hidden")
                    other.rename(hidden)
                with_sink(folder, sink, "key.txt" if sink == "age" else None)
                try:
                    result = run_case(case, folder)
                finally:
                    if case == "verify":
                        hidden.rename(other)
                size = f"{result['bytes'] / 2**20:.0f} MB" if "bytes" in result else ""
                print(
                    f"{rows:>10,} {label:<13} {result['seconds']:>8.2f} "
                    f"{result['seconds'] / rows * 1e6:>7.2f} {result['peak_rss_mb']:>6.1f} MB  "
                    f"{size}",
                    flush=True,
                )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(CASES[sys.argv[2]](Path(sys.argv[3]))))
    else:
        main(tuple(int(a) for a in sys.argv[1:]) or SIZES)
