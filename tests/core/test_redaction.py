"""No secret value reaches a log file, a report, a notification or an error message."""

from __future__ import annotations

import json

from angles.core.redact import Redactor, is_secret_name

SECRET_PIPELINE = """\
version: 1
name: demo
checks:
  - {name: leak, type: static, status: error, message: "token ${API_TOKEN} and ${SLACK_WEBHOOK_URL}"}
notifiers:
  - {name: log, type: jsonl, path: notes.jsonl}
"""
ENVIRONMENT = {
    "API_TOKEN": "tok-0123456789",
    "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/services/T000/B000/secretpart",
}


def test_secret_names():
    assert all(
        map(
            is_secret_name,
            ["SUPABASE_KEY", "GITHUB_TOKEN", "SMTP_PASSWORD", "SLACK_WEBHOOK_URL", "x_secret"],
        )
    )
    assert not any(map(is_secret_name, ["SUPABASE_URL", "SMTP_SERVER", "EMAIL_RECIPIENT"]))


def test_redactor_replaces_values_in_structures():
    redact = Redactor(["s3cret-value", "ab"])  # two characters is too short to be a secret
    assert redact({"a": ["x s3cret-value y", ("s3cret-value",)], "b": 1, "c": "ab"}) == {
        "a": ["x *** y", ("***",)],
        "b": 1,
        "c": "ab",
    }
    assert not Redactor([]) and Redactor([]).text("s3cret-value") == "s3cret-value"


def test_the_longest_secret_wins():
    assert Redactor(["abcd", "abcdefgh"]).text("abcdefgh") == "***"


def test_secrets_stay_out_of_logs_reports_and_notifications(
    angles_cli, pipeline_file, monkeypatch, tmp_path
):
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    path = pipeline_file(SECRET_PIPELINE)
    result = angles_cli("run", path, "--format", "json")
    assert result.exit_code == 2
    report = result.json()
    assert report["checks"][0]["message"] == "token *** and ***"
    text_result = angles_cli("run", path)
    history = angles_cli("history", path, "--format", "json") if _has_history() else None
    written = [
        result.output,
        text_result.output,
        (tmp_path / "notes.jsonl").read_text(),
        *(p.read_text() for p in (tmp_path / "logs").iterdir()),
        *([history.output] if history else []),
    ]
    for value in ENVIRONMENT.values():
        for blob in written:
            assert value not in blob
    assert "secretpart" not in "".join(written)
    log_lines = [
        json.loads(line)
        for line in (tmp_path / "logs" / "health_check.log").read_text().splitlines()
    ]
    assert log_lines[0]["message"] == "token *** and ***"


def _has_history() -> bool:
    import importlib.util

    return importlib.util.find_spec("angles.cli.history") is not None


def test_a_secret_learned_during_the_run_is_redacted_from_then_on():
    redact = Redactor(["tok-0123456789"])
    assert redact.text("AGE-SECRET-KEY-1ABCDEF read") == "AGE-SECRET-KEY-1ABCDEF read"
    redact.add("AGE-SECRET-KEY-1ABCDEF\n", "ab")  # read from a key file; too short is ignored
    assert redact.text("AGE-SECRET-KEY-1ABCDEF and tok-0123456789 ab") == "*** and *** ab"
    assert Redactor().text("x") == "x" and not Redactor(["ab"])


def test_passphrases_and_encrypt_secrets_are_secrets(tmp_path):
    from angles.core.config import load_pipeline
    from angles.core.plugins import load_plugins

    assert is_secret_name("BACKUP_PASSPHRASE")
    (tmp_path / "angles.yaml").write_text(
        "version: 1\nsinks:\n  a: {type: local, encrypt: {passphrase: '${PHRASE}'}}\n"
        "  b: {type: local, encrypt: {recipients: [ssh-ed25519 AAAA], identity: '${ID}'}}\n"
    )
    environ = {"PHRASE": "open sesame!", "ID": "# key\nAGE-SECRET-KEY-1XYZ\n"}
    pipeline = load_pipeline(tmp_path / "angles.yaml", load_plugins(), environ=environ)
    assert {"open sesame!", "AGE-SECRET-KEY-1XYZ"} <= pipeline.secrets


def test_the_editor_schema_leaves_the_encrypt_schema_alone():
    from angles.backup.encryption import ENCRYPT_SCHEMA
    from angles.core.plugins import load_plugins
    from angles.core.schema import build_schema

    schema = build_schema(load_plugins())
    passphrase = schema["$defs"]["sink.local"]["properties"]["encrypt"]["properties"]["passphrase"]
    assert "anyOf" in passphrase  # ${VAR} accepted by editors
    assert "anyOf" not in ENCRYPT_SCHEMA["properties"]["passphrase"]
