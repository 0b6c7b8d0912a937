"""Fixtures for running angles in a test: a fresh plugin manager, a plugin registered for
one test, a pipeline written from YAML text, and the command line run in-process."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from angles.core import logging as angles_logging
from angles.core.plugins import EXTRA_VARIABLE, Plugins, get_plugin_manager, load_plugins


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
    angles_logging.close()
    return CliResult(code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture
def angles_cli() -> Callable[..., CliResult]:
    """Run ``angles`` commands in-process: ``angles_cli("run", path, "--format", "json")``."""
    return run_cli


@pytest.fixture
def pipeline_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a pipeline from YAML text: ``pipeline_file(text, name="angles.yaml")``.

    The text is dedented; the file lies in the test's temporary folder.
    """

    def write(text: str, name: str = "angles.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def angles_plugins() -> Callable[[], Plugins]:
    """Build a fresh plugin manager and registries, as ``angles`` does at start-up."""
    return lambda: load_plugins(get_plugin_manager())


@pytest.fixture
def register_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Register a plugin (an object with ``@hookimpl`` functions) for one test.

    Returns the name it is registered under; every plugin manager built during the
    test, the command line's included, loads it.
    """
    added: list[str] = []

    def register(plugin: Any, name: str | None = None) -> str:
        module_name = name or f"angles_test_plugin_{len(added)}_{id(plugin):x}"
        module = types.ModuleType(module_name)
        for attribute in dir(plugin):
            if attribute.startswith("angles_"):
                setattr(module, attribute, getattr(plugin, attribute))
        sys.modules[module_name] = module
        added.append(module_name)
        monkeypatch.setenv(EXTRA_VARIABLE, ",".join(added))
        return module_name

    yield register
    for module_name in added:
        sys.modules.pop(module_name, None)
