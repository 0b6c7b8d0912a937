"""docs/architecture.md stays true to the tree: every path it names exists, and every module of
the package is named in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
# A path in backticks (or in the tree drawing), relative to the repository's root.
NAMED_PATH = re.compile(r"(?<![\w./-])((?:angles|tests|docs|bench|scripts)/[\w./-]*)")


def named_paths() -> set[str]:
    return {match.rstrip("./") for match in NAMED_PATH.findall(DOC.read_text())}


def test_every_path_the_architecture_names_exists():
    missing = sorted(path for path in named_paths() if not (ROOT / path).exists())
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_module_of_the_package_is_named():
    named = named_paths()
    modules = {
        str(path.relative_to(ROOT))
        for pattern in ("*.py", "*.j2")
        for path in (ROOT / "angles").rglob(pattern)
        if path.name != "__init__.py" or path.parent == ROOT / "angles"
    }
    unnamed = sorted(modules - named)
    assert not unnamed, f"docs/architecture.md does not name: {unnamed}"


def test_the_architecture_links_nowhere_outside_the_repository():
    text = DOC.read_text()
    assert "](http" not in text and "../" not in text
