"""Encrypted backups (``encrypt:`` on a sink), end to end through the command line.

Files are encrypted with age through pyrage; the ``age`` command-line tool (Debian package
``age``) reads what angles writes and writes what angles reads.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

from angles import Sink, StoredFile, hookimpl
from angles.backup.format import BackupFile

AGE = shutil.which("age")
needs_age = pytest.mark.skipif(AGE is None, reason="the age tool is missing (apt-get install age)")
SECRET_ROW = "the board approved the merger"

PIPELINE = """\
version: 1
name: vault
connections:
  vault: {{type: sqlite, path: vault.db}}
sinks:
  {sink}
backups:
  - {{name: decision_vault, connection: vault, table: decision_vault, sinks: [{names}]}}
"""


def sql(path: Path, statement: str, params: Any = ()) -> None:
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(statement, params)


def rows(path: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute("SELECT id, decision FROM decision_vault ORDER BY id").fetchall()


class Key:
    """An age key pair, and its identity file as age-keygen writes it."""

    def __init__(self, folder: Path, name: str = "key.txt") -> None:
        self.identity = x25519.Identity.generate()
        self.secret = str(self.identity)
        self.public = str(self.identity.to_public())
        self.file = folder / name
        self.file.write_text(
            f"# created: 2026-12-01T00:00:00Z\n# public key: {self.public}\n{self.secret}\n"
        )


@pytest.fixture
def key(tmp_path: Path) -> Key:
    return Key(tmp_path)


@pytest.fixture
def project(tmp_path: Path, pipeline_file):
    """A vault with three rows; ``write(sink_yaml)`` writes the pipeline around a sink."""
    db = tmp_path / "vault.db"
    sql(db, "CREATE TABLE decision_vault (id TEXT PRIMARY KEY, decision TEXT, updated_at TEXT)")
    for i, text in enumerate([SECRET_ROW, "hire two engineers", "move to Frankfurt"]):
        sql(
            db, "INSERT INTO decision_vault VALUES (?, ?, '2025-01-01T00:00:00Z')", (f"id{i}", text)
        )

    def write(sink: str, names: str = "local") -> Path:
        return pipeline_file(PIPELINE.format(sink=sink, names=names))

    return write, db


def local_sink(encrypt: str, extra: str = "") -> str:
    return f"local: {{type: local, path: backups{extra}, encrypt: {encrypt}}}"


def backup(angles_cli, path: Path) -> str:
    result = angles_cli("backup", path, "--format", "json")
    assert result.exit_code == 0, result.output
    (entry,) = result.json()["backups"]
    (stored,) = entry["files"]
    return stored["name"]


def assert_ciphertext(data: bytes) -> None:
    """An age file, with nothing of the backup in the clear."""
    assert data.startswith(b"age-encryption.org/v1\n")
    for clear in (SECRET_ROW.encode(), b"metadata", b"record_count", b"decision_vault", b"id0"):
        assert clear not in data


def test_round_trip_through_the_local_sink(angles_cli, project, key, tmp_path):
    write, db = project
    path = write(local_sink(f'{{recipients: ["{key.public}"], identity_file: key.txt}}'))
    name = backup(angles_cli, path)
    assert name.endswith(".json.age") and name.startswith("decision_vault_")
    stored = tmp_path / "backups" / name
    assert_ciphertext(stored.read_bytes())

    listed = angles_cli("backups", "list", path, "--format", "json").json()["local"]
    assert [(r["name"], r["encrypted"], r["record_count"]) for r in listed] == [(name, True, None)]
    assert listed[0]["size"] == stored.stat().st_size
    assert "(encrypted)" in angles_cli("backups", "list", path).stdout

    verified = angles_cli("backups", "verify", path, "--format", "json")
    assert verified.exit_code == 0, verified.output
    (result,) = verified.json()["backups"]
    assert (result["verified"], result["record_count"]) == (True, 3)

    sql(db, "UPDATE decision_vault SET decision = 'changed' WHERE id = 'id0'")
    sql(db, "DELETE FROM decision_vault WHERE id = 'id2'")
    restored = angles_cli("restore", path, "--live", "--yes", "--format", "json")
    assert restored.exit_code == 0, restored.output
    plan = restored.json()
    assert (plan["backup"], plan["verified"]) == (name, True)
    assert plan["counts"]["insert"] == 1 and plan["counts"]["update"] == 1
    assert rows(db)[0] == ("id0", SECRET_ROW) and len(rows(db)) == 3

    # The pre-restore backup is encrypted like the others.
    (pre,) = plan["pre_restore_files"]
    assert "_pre-restore_" in pre["name"] and pre["name"].endswith(".json.age")
    assert_ciphertext((tmp_path / "backups" / pre["name"]).read_bytes())


def test_compressed_and_encrypted(angles_cli, project, key, tmp_path):
    write, _ = project
    path = write(
        local_sink(f'{{recipients: ["{key.public}"], identity_file: key.txt}}', ", compress: true")
    )
    name = backup(angles_cli, path)
    assert name.endswith(".json.gz.age")
    assert angles_cli("backups", "verify", path).exit_code == 0


@needs_age
def test_the_age_tool_decrypts_what_angles_writes(angles_cli, project, key, tmp_path):
    write, _ = project
    path = write(local_sink(f'{{recipients: ["{key.public}"]}}', ", compress: true"))
    name = backup(angles_cli, path)
    done = subprocess.run(
        [AGE, "-d", "-i", str(key.file), str(tmp_path / "backups" / name)],
        capture_output=True,
        check=True,
    )
    document = json.loads(gzip.decompress(done.stdout))
    assert document["metadata"]["record_count"] == 3
    assert document["data"][0] == {
        "id": "id0",
        "decision": SECRET_ROW,
        "updated_at": "2025-01-01T00:00:00Z",
    }
    assert BackupFile(io.BytesIO(done.stdout)).verify() == 3


@needs_age
def test_angles_restores_what_the_age_tool_encrypted(angles_cli, project, key, tmp_path):
    write, db = project
    plain_path = write("local: {type: local, path: backups}")
    plain = tmp_path / "backups" / backup(angles_cli, plain_path)
    encrypted = plain.with_name(plain.name + ".age")
    subprocess.run([AGE, "-r", key.public, "-o", str(encrypted), str(plain)], check=True)
    plain.unlink()
    path = write(local_sink(f'{{recipients: ["{key.public}"], identity_file: key.txt}}'))
    sql(db, "DELETE FROM decision_vault")
    restored = angles_cli("restore", path, "--live", "--yes", "--format", "json")
    assert restored.exit_code == 0, restored.output
    assert restored.json()["backup"] == encrypted.name
    assert len(rows(db)) == 3


@needs_age
def test_ssh_ed25519_keys_encrypt_and_decrypt(angles_cli, project, tmp_path):
    write, _ = project
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "ops@acme",
            "-f",
            str(tmp_path / "id"),
        ],
        check=True,
    )
    public = (tmp_path / "id.pub").read_text().strip()
    path = write(local_sink(f'{{recipients: ["{public}"], identity_file: id}}'))
    name = backup(angles_cli, path)
    assert angles_cli("backups", "verify", path).exit_code == 0
    done = subprocess.run(
        [AGE, "-d", "-i", str(tmp_path / "id"), str(tmp_path / "backups" / name)],
        capture_output=True,
        check=True,
    )
    assert BackupFile(io.BytesIO(done.stdout)).verify() == 3


def test_several_recipients_each_decrypt(angles_cli, project, tmp_path):
    write, _ = project
    first, second = Key(tmp_path, "first.txt"), Key(tmp_path, "second.txt")
    recipients = f'["{first.public}", "{second.public}"]'
    for identity in ("first.txt", "second.txt"):
        path = write(local_sink(f"{{recipients: {recipients}, identity_file: {identity}}}"))
        if identity == "first.txt":
            backup(angles_cli, path)
        assert angles_cli("backups", "verify", path).exit_code == 0


def test_passphrase_round_trip(angles_cli, project, tmp_path, monkeypatch):
    write, db = project
    monkeypatch.setenv("BACKUP_PASSPHRASE", "correct horse battery staple")
    path = write(local_sink('{passphrase: "${BACKUP_PASSPHRASE}"}'))
    name = backup(angles_cli, path)
    data = (tmp_path / "backups" / name).read_bytes()
    assert_ciphertext(data)
    assert b"\n-> scrypt " in data
    sql(db, "DELETE FROM decision_vault WHERE id = 'id1'")
    assert angles_cli("restore", path, "--live", "--yes").exit_code == 0
    assert len(rows(db)) == 3

    monkeypatch.setenv("BACKUP_PASSPHRASE", "a wrong passphrase")
    wrong = angles_cli("backups", "verify", path)
    assert wrong.exit_code == 2
    assert f"sink 'local': the passphrase does not decrypt {name}" in wrong.stdout


def test_a_missing_identity_is_exit_2_naming_sink_and_file(angles_cli, project, key, tmp_path):
    write, _ = project
    name = backup(angles_cli, write(local_sink(f'{{recipients: ["{key.public}"]}}')))
    path = write(local_sink(f'{{recipients: ["{key.public}"]}}'))
    # Listing needs no identity.
    assert angles_cli("backups", "list", path).exit_code == 0

    verify = angles_cli("backups", "verify", path)
    assert verify.exit_code == 2
    assert f"sink 'local': {name} is encrypted and the sink has no identity to read it" in (
        verify.stdout
    )
    assert "encrypt.identity" in verify.stdout

    restore = angles_cli("restore", path)
    assert restore.exit_code == 2
    assert f"sink 'local': {name} is encrypted and the sink has no identity" in restore.stderr
    assert "Traceback" not in restore.output

    missing_file = write(local_sink(f'{{recipients: ["{key.public}"], identity_file: gone.txt}}'))
    restore = angles_cli("restore", missing_file, "--format", "json")
    assert restore.exit_code == 2
    message = restore.json()["error"]["message"]
    assert "sink 'local'" in message and name in message and "gone.txt" in message


def test_a_wrong_identity_is_refused(angles_cli, project, key, tmp_path, monkeypatch):
    write, _ = project
    name = backup(angles_cli, write(local_sink(f'{{recipients: ["{key.public}"]}}')))
    other = Key(tmp_path, "other.txt")
    monkeypatch.setenv("AGE_IDENTITY", other.secret)
    path = write(local_sink(f'{{recipients: ["{key.public}"], identity: "${{AGE_IDENTITY}}"}}'))
    verify = angles_cli("backups", "verify", path)
    assert verify.exit_code == 2
    assert f"sink 'local': the identity does not decrypt {name}" in verify.stdout
    restore = angles_cli("restore", path)
    assert restore.exit_code == 2 and "the identity does not decrypt" in restore.stderr

    monkeypatch.setenv("AGE_IDENTITY", "AGE-SECRET-KEY-1NOTAKEY")
    garbled = angles_cli("backups", "verify", path)
    assert garbled.exit_code == 2
    assert "encrypt.identity holds no valid age identity" in garbled.stdout
    assert "AGE-SECRET-KEY-1NOTAKEY" not in garbled.output


def test_rotated_recipients_read_old_and_new_files(angles_cli, project, tmp_path):
    write, _ = project
    old, new = Key(tmp_path, "old.txt"), Key(tmp_path, "new.txt")
    first = backup(angles_cli, write(local_sink(f'{{recipients: ["{old.public}"]}}')))
    (tmp_path / "backups" / first).rename(tmp_path / "backups" / first.replace("_20", "_19", 1))
    backup(angles_cli, write(local_sink(f'{{recipients: ["{new.public}"]}}')))
    (tmp_path / "both.txt").write_text(f"{old.secret}\n{new.secret}\n")
    path = write(local_sink(f'{{recipients: ["{new.public}"], identity_file: both.txt}}'))
    verified = angles_cli("backups", "verify", path, "--format", "json").json()
    assert [b["verified"] for b in verified["backups"]] == [True, True]


def test_tampered_ciphertext_is_refused(angles_cli, project, key, tmp_path):
    write, db = project
    path = write(local_sink(f'{{recipients: ["{key.public}"], identity_file: key.txt}}'))
    name = backup(angles_cli, path)
    stored = tmp_path / "backups" / name
    data = bytearray(stored.read_bytes())
    data[-20] ^= 0x01
    stored.write_bytes(bytes(data))
    verify = angles_cli("backups", "verify", path, "--format", "json")
    assert verify.exit_code == 2
    (result,) = verify.json()["backups"]
    assert "is damaged or was altered after it was encrypted" in result["message"]
    assert "sink 'local'" in result["message"] and name in result["message"]

    sql(db, "DELETE FROM decision_vault")
    restore = angles_cli("restore", path, "--live", "--yes")
    assert restore.exit_code == 2 and "was altered" in restore.stderr
    assert rows(db) == []

    stored.write_bytes(bytes(data[: len(data) // 2]))  # cut short
    assert angles_cli("backups", "verify", path).exit_code == 2


def test_plain_and_encrypted_files_side_by_side(angles_cli, project, key, tmp_path):
    write, db = project
    plain = backup(angles_cli, write("local: {type: local, path: backups}"))
    older = plain.replace("_20", "_19", 1)
    (tmp_path / "backups" / plain).rename(tmp_path / "backups" / older)
    path = write(local_sink(f'{{recipients: ["{key.public}"], identity_file: key.txt}}'))
    encrypted = backup(angles_cli, path)
    listed = angles_cli("backups", "list", path, "--format", "json").json()["local"]
    assert [(r["name"], r["encrypted"], r["record_count"]) for r in listed] == [
        (encrypted, True, None),
        (older, False, 3),
    ]
    assert angles_cli("backups", "verify", path).exit_code == 0
    for name in (older, encrypted):
        sql(db, "DELETE FROM decision_vault")
        restored = angles_cli("restore", path, "--backup", name, "--live", "--yes")
        assert restored.exit_code == 0, restored.output
        assert len(rows(db)) == 3


def test_restore_from_an_encrypted_file_on_disk(angles_cli, project, key, tmp_path):
    write, db = project
    path = write(local_sink(f'{{recipients: ["{key.public}"], identity_file: key.txt}}'))
    name = backup(angles_cli, path)
    copy = tmp_path / name
    shutil.copy(tmp_path / "backups" / name, copy)
    sql(db, "DELETE FROM decision_vault")
    restored = angles_cli("restore", path, "--file", copy, "--live", "--yes")
    assert restored.exit_code == 0, restored.output
    assert len(rows(db)) == 3


def test_retention_deletes_old_encrypted_backups(angles_cli, project, key, tmp_path):
    write, _ = project
    path = write(local_sink(f'{{recipients: ["{key.public}"]}}', ", retention_days: 7"))
    folder = tmp_path / "backups"
    folder.mkdir()
    for name in (
        "decision_vault_2020-01-01_03-00-00.json.age",
        "decision_vault_2020-01-02_03-00-00.json.gz.age",
        "decision_vault_2020-01-03_03-00-00.json",
    ):
        (folder / name).write_bytes(b"old")
    kept = backup(angles_cli, path)
    assert sorted(p.name for p in folder.iterdir()) == [kept]


def test_secrets_never_reach_logs_reports_or_files(angles_cli, project, tmp_path, monkeypatch):
    write, _ = project
    key = Key(tmp_path, "vault-key.txt")
    passphrase = "tr0ub4dor&3-passphrase"
    monkeypatch.setenv("AGE_IDENTITY", f"# my key\n{key.secret}\n")
    monkeypatch.setenv("BACKUP_PASSPHRASE", passphrase)
    sinks = (
        f'identity: {{type: local, path: a, encrypt: {{recipients: ["{key.public}"], '
        'identity: "${AGE_IDENTITY}"}}\n'
        f'  file: {{type: local, path: b, encrypt: {{recipients: ["{key.public}"], '
        "identity_file: vault-key.txt}}\n"
        '  phrase: {type: local, path: c, encrypt: {passphrase: "${BACKUP_PASSPHRASE}"}}'
    )
    path = write(sinks, names="identity, file, phrase")
    (tmp_path / "angles.yaml").write_text(
        path.read_text() + "state: state.db\nlog_dir: logs\nreport: status.html\n"
    )
    outputs = [angles_cli("-v", "run", path, "--format", "json")]
    outputs.append(angles_cli("-v", "backups", "verify", path, "--format", "json"))
    assert outputs[-1].exit_code == 0, outputs[-1].output
    outputs.append(angles_cli("-v", "restore", path, "--sink", "file", "--live", "--yes"))
    outputs.append(angles_cli("-v", "restore", path, "--sink", "identity", "--live", "--yes"))
    outputs.append(angles_cli("-v", "history", path))
    # A broken identity's error must not echo it either.
    monkeypatch.setenv("AGE_IDENTITY", key.secret[:-3] + "QQQ")
    outputs.append(angles_cli("-v", "backups", "verify", path))
    assert outputs[-1].exit_code == 2

    secrets = [passphrase, key.secret, key.secret[len("AGE-SECRET-KEY-") :]]
    for output in outputs:
        for secret in secrets:
            assert secret not in output.output
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "vault-key.txt"]
    assert any(p.suffix == ".log" for p in files) and (tmp_path / "status.html").exists()
    for file in files:
        data = file.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, file


# -- the GitHub sink ----------------------------------------------------------------------------


def test_round_trip_through_the_github_sink(angles_cli, project, key, github_server, monkeypatch):
    write, db = project
    github_server.create_repo("acme", "vault-backups")
    monkeypatch.setenv("GITHUB_TOKEN", github_server.token)
    monkeypatch.setenv("AGE_IDENTITY", key.secret)
    sink = (
        f'github: {{type: github, repository: acme/vault-backups, token: "${{GITHUB_TOKEN}}", '
        f'api_url: "{github_server.url}", throttle: false, part_size: 1024, '
        f'encrypt: {{recipients: ["{key.public}"], identity: "${{AGE_IDENTITY}}"}}}}'
    )
    path = write(sink, names="github")
    for i in range(3, 40):  # enough rows for a file stored in parts
        sql(db, "INSERT INTO decision_vault VALUES (?, ?, NULL)", (f"id{i:02d}", "x" * 40))
    name = backup(angles_cli, path)
    assert name.endswith(".json.age")
    files = github_server.list_files("acme/vault-backups", prefix="backups/")
    assert f"backups/{name}.manifest.json" in files
    ciphertext = b"".join(
        data for file, data in sorted(files.items()) if file.startswith(f"backups/{name}.part-")
    )
    assert_ciphertext(ciphertext)
    # An encrypted file's commit must not reveal how many rows it holds; the
    # file's name (a timestamp) is taken out so its digits cannot match.
    message = github_server.list_commits("acme/vault-backups")[0].message.replace(name, "")
    assert "record" not in message and "40" not in message

    listed = angles_cli("backups", "list", path, "--format", "json").json()["github"]
    assert [(r["name"], r["encrypted"]) for r in listed] == [(name, True)]
    assert angles_cli("backups", "verify", path).exit_code == 0

    before = len(rows(db))
    sql(db, "DELETE FROM decision_vault WHERE id LIKE 'id1%'")
    restored = angles_cli("restore", path, "--live", "--yes", "--format", "json")
    assert restored.exit_code == 0, restored.output
    assert restored.json()["counts"]["insert"] == 11 and len(rows(db)) == before
    (pre,) = restored.json()["pre_restore_files"]
    assert pre["name"].endswith(".json.age")
    stored = github_server.list_files("acme/vault-backups", prefix=f"backups/{pre['name']}")
    first_part = stored.get(f"backups/{pre['name']}.part-001") or stored[f"backups/{pre['name']}"]
    assert first_part.startswith(b"age-encryption.org/v1\n")


# -- a third-party sink -------------------------------------------------------------------------


class MemorySink(Sink):
    """A sink of a third-party package: files in a dict, nothing about encryption."""

    type = "memory"
    files: dict[str, bytes] = {}
    config_schema = {"type": "object", "properties": {}, "additionalProperties": False}

    def transaction(self, message):
        sink = self

        class Writer:
            def store(self, name, chunks, *, record_count=None):
                sink.files[name] = b"".join(chunks)
                return len(sink.files[name])

        from contextlib import nullcontext

        return nullcontext(Writer())

    def list(self):
        return [StoredFile(name, len(data)) for name, data in sorted(self.files.items())]

    def open(self, name):
        return io.BytesIO(self.files[name])

    def delete(self, names, message):
        for name in names:
            self.files.pop(name, None)


class MemoryPlugin:
    @hookimpl
    def angles_register_sinks(self, register):
        register(MemorySink)


def test_a_third_party_sink_encrypts_through_the_interface(
    angles_cli, project, key, register_plugin
):
    write, db = project
    MemorySink.files = {}
    register_plugin(MemoryPlugin())
    path = write(
        f'memory: {{type: memory, encrypt: {{recipients: ["{key.public}"], identity_file: key.txt}}}}',
        names="memory",
    )
    name = backup(angles_cli, path)
    assert list(MemorySink.files) == [name] and name.endswith(".json.age")
    assert_ciphertext(MemorySink.files[name])
    sql(db, "DELETE FROM decision_vault")
    assert angles_cli("restore", path, "--live", "--yes").exit_code == 0
    assert len(rows(db)) == 3


# -- configuration and keygen -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encrypt", "message"),
    [
        ('{recipients: ["age1abc"]}', "is not an age recipient"),
        ('{recipients: ["AGE-SECRET-KEY-1QQQQ"]}', "a secret key (never put it in recipients)"),
        ("{identity_file: key.txt}", "give either recipients (age public keys) or a passphrase"),
        ("{passphrase: xyzzy-long, recipients: [x]}", "not both"),
        ("{passphrase: xyzzy-long, identity_file: key.txt}", "a passphrase both encrypts"),
        ("{recipients: []}", "too small"),
        ("{recipient: [x]}", "unknown key 'recipient'"),
    ],
)
def test_a_bad_encrypt_key_is_a_pipeline_error(angles_cli, project, encrypt, message):
    write, _ = project
    path = write(local_sink(encrypt))
    result = angles_cli("validate", path)
    assert result.exit_code == 3
    assert f"{path}:6: sinks.local.encrypt" in result.stderr
    assert message in result.stderr
    assert "AGE-SECRET-KEY-1QQQQ" not in result.output


def test_keygen_makes_a_key_that_encrypts_and_decrypts(angles_cli, project, tmp_path):
    write, _ = project
    made = angles_cli("keygen", "--output", tmp_path / "new.txt", "--format", "json")
    assert made.exit_code == 0, made.output
    public = made.json()["public_key"]
    assert public.startswith("age1")
    assert (tmp_path / "new.txt").stat().st_mode & 0o077 == 0
    assert f"# public key: {public}" in (tmp_path / "new.txt").read_text()
    again = angles_cli("keygen", "--output", tmp_path / "new.txt")
    assert again.exit_code == 3 and "already exists" in again.stderr

    path = write(local_sink(f'{{recipients: ["{public}"], identity_file: new.txt}}'))
    backup(angles_cli, path)
    assert angles_cli("backups", "verify", path).exit_code == 0
    if AGE:
        name = next((tmp_path / "backups").iterdir())
        subprocess.run(
            [AGE, "-d", "-i", str(tmp_path / "new.txt"), str(name)], check=True, capture_output=True
        )


def test_the_restore_drill_reads_encrypted_backups(angles_cli, project, key, tmp_path):
    write, _ = project
    drill = "\nchecks:\n  - {name: drill, type: restore_drill, backup: decision_vault}\n"
    with_identity = write(local_sink(f'{{recipients: ["{key.public}"], identity_file: key.txt}}'))
    name = backup(angles_cli, with_identity)
    with_identity.write_text(with_identity.read_text() + drill)
    result = angles_cli("check", with_identity, "--format", "json")
    assert result.exit_code == 0, result.output
    (check,) = result.json()["checks"]
    assert check["details"]["tables"]["decision_vault"]["backup"] == name

    without = write(local_sink(f'{{recipients: ["{key.public}"]}}'))
    without.write_text(without.read_text() + drill)
    result = angles_cli("check", without, "--format", "json")
    assert result.exit_code == 2
    (check,) = result.json()["checks"]
    assert "sink 'local'" in check["message"] and name in check["message"]
    assert "no identity" in check["message"]
