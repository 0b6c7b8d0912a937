"""A backup file that is junk is rejected by its first bytes, in constant memory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Larger than the whole peak the check allows, so reading the file whole would fail it.
JUNK_BYTES = 512 << 20
PEAK_LIMIT_KIB = 200 << 10
#: Runs ``angles ARGS`` and reports the process's peak resident memory on the last line.
#: VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so a child of a large pytest
#: process would report the parent's peak.
MEASURED = (
    "import re, sys\n"
    "from angles.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "status = open('/proc/self/status').read()\n"
    "print(re.search(r'VmHWM:\\s+(\\d+)', status)[1], file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.mark.parametrize(
    ("opening", "reason"),
    [
        (b"PK\x03\x04", "it is not a backup document (it starts with byte 0x50, not {)"),
        (b"{\n  ,garbage", "it is not a backup document (no key follows its opening {)"),
        (b'{"rows": [', 'it is not a backup document (its first key is "rows", not "metadata")'),
        (b"\x1f\x8b\x08\x00junk", "it cannot be decompressed or read"),
    ],
)
def test_a_huge_junk_file_is_rejected_at_once(pipeline_file, tmp_path, opening, reason):
    path = pipeline_file("version: 1\nname: vault\nsinks:\n  local: {type: local, path: backups}\n")
    name = "decision_vault_2026-12-01_03-00-00.json"
    (tmp_path / "backups").mkdir()
    with open(tmp_path / "backups" / name, "wb") as junk:
        junk.write(opening)
        junk.truncate(JUNK_BYTES)  # sparse: costs no disk
    verify = subprocess.run(
        [sys.executable, "-c", MEASURED, "backups", "verify", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert verify.returncode == 2, verify.stderr
    [checked] = json.loads(verify.stdout)["backups"]
    assert checked["status"] == "error"
    assert checked["message"].startswith(f"backup {name} is damaged: {reason}")
    peak_kib = int(verify.stderr.splitlines()[-1])
    assert peak_kib < PEAK_LIMIT_KIB
