"""The pytest plugin every environment with angles loads: it must cost nothing."""

from __future__ import annotations

import subprocess
import sys


def test_the_pytest_plugin_imports_nothing_but_pytest():
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import angles.testing.plugin\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import pytest\n" + code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    heavy = [
        name
        for name in loaded
        if name.split(".")[0] in {"aiosmtpd", "trustme", "cryptography", "psycopg", "httpx"}
        or (name.startswith("angles.") and name not in {"angles.testing", "angles.testing.plugin"})
    ]
    assert heavy == []


def test_every_public_name_is_importable_from_angles():
    import importlib

    import angles

    for name in angles.__all__:
        source = importlib.import_module(angles._SOURCES[name])
        assert getattr(angles, name) is getattr(source, name)
    assert sorted(angles.__all__) == sorted(angles._SOURCES)
