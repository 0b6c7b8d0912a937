"""Start-up time of the command line, and how concurrent checks are.

Prints, for each command, the median wall time of several runs next to a baseline
measured in the same run (a bare ``python -c pass``), so the ratio holds on noisy
machines. Then runs ten builtin ``http`` checks of a local endpoint that answers after
one second, and compares the run's duration with the sum of the checks' (nothing but
angles itself needs to be installed).

    .venv/bin/python bench/bench_cli.py
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RUNS = 7
PIPELINE = """\
version: 1
name: bench
connections:
  vault: {type: sqlite, path: vault.db}
checks:
  - {name: sync, type: sync_backlog, connection: vault, table: t, unsynced: "a=is.false"}
notifiers:
  - {name: console, type: console}
"""
#: Ten builtin ``http`` checks of an endpoint on 127.0.0.1 that answers after one second.
SLOW_CHECKS = "version: 1\nchecks:\n" + "".join(
    f"  - {{name: c{i}, type: http, url: '%(url)s/slow/{i}'}}\n" for i in range(10)
)


class _SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(1)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def slow_endpoint() -> Iterator[str]:
    """The base URL of a threaded server on 127.0.0.1 whose every answer takes a second."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def timed(command: list[str], cwd: Path) -> float:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, capture_output=True, check=False)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        (cwd / "angles.yaml").write_text(PIPELINE)
        baseline = timed([sys.executable, "-c", "pass"], cwd)
        print(f"{'python -c pass (baseline)':<32} {baseline * 1000:7.0f} ms")
        for label, args in [
            ("angles --help", ["--help"]),
            ("angles validate", ["validate"]),
            ("angles plugins", ["plugins"]),
        ]:
            elapsed = timed([sys.executable, "-m", "angles", *args], cwd)
            print(
                f"{label:<32} {elapsed * 1000:7.0f} ms"
                f"  ({elapsed / baseline:4.1f}x baseline, {(elapsed - baseline) * 1000:5.0f} ms of angles)"
            )
        heavy = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "angles", "validate"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        ).stderr
        loaded = [
            m for m in ("supabase", "notion_client", "github", "psycopg") if f" {m}\n" in heavy
        ]
        print(f"heavy clients imported by `angles validate`: {', '.join(loaded) or 'none'}")

        with slow_endpoint() as url:
            (cwd / "slow.yaml").write_text(SLOW_CHECKS % {"url": url})
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "angles", "check", "slow.yaml", "--format", "json"],
                cwd=cwd,
                capture_output=True,
                text=True,
                check=False,
            )
            elapsed = time.perf_counter() - started
        report = json.loads(done.stdout)
        failing = [c["message"] for c in report["checks"] if c["status"] != "ok"]
        if failing:
            raise SystemExit(f"the slow checks did not pass: {failing}")
        total = sum(c["duration_seconds"] for c in report["checks"])
        print(
            f"ten 1-second checks: run took {report['duration_seconds']:.2f}s "
            f"(process {elapsed:.2f}s); the checks add up to {total:.2f}s"
        )


if __name__ == "__main__":
    main()
