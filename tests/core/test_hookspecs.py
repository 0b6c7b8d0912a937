"""Every hook is documented and exercised by a test."""

from __future__ import annotations

import inspect
from pathlib import Path

from angles.core import hookspecs

HOOKS = [
    name
    for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("angles_")
]


def test_hooks_are_named_angles_verb_object():
    assert HOOKS
    for name in HOOKS:
        assert name.count("_") >= 2, name


def test_every_hook_has_a_docstring_that_says_when_and_what():
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and "Fires" in doc and "Returns" in doc, name


def test_every_hook_is_used_by_a_test():
    tests = Path(__file__).parents[1]
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for path in tests.rglob("*.py")
        if path.name != Path(__file__).name
    )
    for name in HOOKS:
        assert f"def {name}(" in sources, f"no test implements {name}"


def test_every_hook_is_documented_for_plugin_authors():
    docs = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text(encoding="utf-8")
    for name in HOOKS:
        assert f"`{name}" in docs, name
