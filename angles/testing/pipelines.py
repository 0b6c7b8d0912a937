"""Fixtures for running angles in a test: a fresh plugin manager, a plugin registered for
one test, a pipeline written from YAML text, and the command line run in-process."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class CliResult:
    """What one ``angles`` command did: its exit code and what it printed."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """Standard output parsed as JSON (for ``--format json``)."""
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str | Path) -> CliResult:
    """Run ``angles ARGS…`` in this process and capture its exit code and output."""
    from angles.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(arg) for arg in args])
    return CliResult(code, stdout.getvalue(), stderr.getvalue())
