"""The builtin plugins use only what a third-party plugin has: ``angles`` and ``angles.helpers``."""

from __future__ import annotations

import ast
from pathlib import Path

import angles
import angles.helpers

PLUGINS = Path(angles.__file__).parent / "plugins"
ALLOWED = {"angles", "angles.helpers"}


def angles_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """Every ``import angles…`` / ``from angles… import …`` in a file, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("angles"):
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("angles")]
    return found


def test_builtin_plugins_import_only_the_public_api():
    offenders = []
    for path in sorted(PLUGINS.rglob("*.py")):
        for line, module, _names in angles_imports(path):
            if module in ALLOWED or module.startswith("angles.plugins"):
                continue
            offenders.append(f"{path.relative_to(PLUGINS.parent)}:{line}: {module}")
    assert offenders == []


def test_every_name_a_plugin_imports_is_exported():
    for path in sorted(PLUGINS.rglob("*.py")):
        for line, module, names in angles_imports(path):
            source = angles if module == "angles" else angles.helpers
            if module in ALLOWED:
                missing = [n for n in names if n not in source.__all__]
                assert missing == [], f"{path.name}:{line} imports {missing} from {module}"


def test_every_helper_is_importable():
    for name in angles.helpers.__all__:
        assert getattr(angles.helpers, name) is not None
