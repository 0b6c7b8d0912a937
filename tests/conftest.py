"""Shared test setup: every test runs in its own folder with a clean environment."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Work in the test's folder, without angles variables leaking in from outside."""
    monkeypatch.chdir(tmp_path)
    for name in ("ANGLES_PLUGINS", "ANGLES_DISABLE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
