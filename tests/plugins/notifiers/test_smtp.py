"""The smtp notifier against real aiosmtpd servers (STARTTLS, implicit TLS, plain)."""

from __future__ import annotations

import time

import pytest

from angles import ServiceError
from angles.plugins.notifiers.smtp import SMTPNotifier


@pytest.fixture
def email(smtp_server, notifier):
    """An smtp notifier configured for a server (default: the STARTTLS one)."""

    def make(server=None, *, timeout=5, **options):
        server = server or smtp_server
        entry = {
            "type": "smtp",
            "host": server.host,
            "port": str(server.port),  # as "${SMTP_PORT:-587}" gives it
            "username": getattr(server, "username", None),
            "password": getattr(server, "password", None),
            "from": "angles@example.com",
            "to": ["ops@example.com"],
            "ca_file": getattr(server, "ca_file", None),
            **options,
        }
        entry = {k: v for k, v in entry.items() if v is not None}
        return notifier(entry, secrets=[entry.get("password", "")], timeout=timeout)

    return make


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(SMTPNotifier, "retry_backoff", 0.0)


def test_starttls_sends_text_and_html_with_date_and_message_id(smtp_server, email, notification):
    email().send(notification([("sync", "error", "12 unsynced <records>")]))

    [mail] = smtp_server.received
    assert mail.login == "alerts"
    assert mail.rcpt_tos == ["ops@example.com"]
    message = mail.message
    assert message["Subject"] == "angles production: error (1 check failing)"
    assert message["From"] == "angles@example.com" and message["To"] == "ops@example.com"
    assert message["Date"] and message["Message-ID"].endswith("@example.com>")
    assert message["X-Angles-Test"] is None
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "- sync [error]: 12 unsynced <records>" in text
    assert "12 unsynced &lt;records&gt;" in html


@pytest.mark.parametrize("mode", ["ssl", "none"])
def test_implicit_tls_and_plain(smtp_server_factory, email, notification, mode):
    server = smtp_server_factory(mode)
    email(server, tls=mode, port=server.port).send(notification())  # an integer port works too
    [mail] = server.received
    assert mail.login == "alerts"


def test_several_recipients_and_comma_separated_items(smtp_server, email, notification):
    email(to=["a@example.com, b@example.com", "c@example.com"]).send(notification())
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["a@example.com", "b@example.com", "c@example.com"]


def test_a_test_run_is_marked_in_the_subject_and_a_header(smtp_server, email, notification):
    email().send(notification([("sync", "error", "[TEST] simulated")], test=True))
    [message] = smtp_server.messages
    assert message["Subject"].startswith("[TEST] angles production")
    assert message["X-Angles-Test"] == "true"
    assert "This is a test" in message.get_body(("plain",)).get_content()


def test_a_wrong_password(smtp_server, email, notification):
    with pytest.raises(ServiceError) as raised:
        email(password="wrong-password").send(notification())
    message = str(raised.value)
    assert message.startswith(f"SMTP: {smtp_server.host}:{smtp_server.port} refused the login (535")
    assert "check SMTP_USERNAME and SMTP_PASSWORD" in message
    assert "wrong-password" not in message
    assert smtp_server.received == []


def test_one_refused_recipient_of_two_is_an_error_naming_it(smtp_server, email, notification):
    with pytest.raises(ServiceError) as raised:
        email(to=["ops@example.com", "nobody@example.com"]).send(notification())
    message = str(raised.value)
    assert "refused the recipient nobody@example.com (550 5.1.1" in message
    assert "the other recipients got the message" in message
    assert "check the addresses in to: (EMAIL_RECIPIENT)" in message
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["ops@example.com"]


def test_every_recipient_refused(smtp_server, email, notification):
    with pytest.raises(ServiceError, match=r"refused the recipient nobody@example\.com"):
        email(to=["nobody@example.com"]).send(notification())
    assert smtp_server.received == []


def test_an_untrusted_certificate_is_refused(smtp_server, email, notification):
    with pytest.raises(ServiceError) as raised:
        email(ca_file=None).send(notification())
    message = str(raised.value)
    assert "is not trusted" in message and "set ca_file:" in message
    assert smtp_server.auth_attempts == []  # the password never left


def test_a_silent_server_times_out(silent_smtp_server, email, notification):
    server = silent_smtp_server
    started = time.monotonic()
    with pytest.raises(ServiceError) as raised:
        email(server, timeout=0.5).send(notification())
    assert time.monotonic() - started < 3
    assert f"{server.host}:{server.port} did not answer within 0.5s" in str(raised.value)


def test_a_service_unavailable_greeting_is_retried_then_reported(
    unavailable_smtp_server, email, notification
):
    server = unavailable_smtp_server
    with pytest.raises(ServiceError, match=r"answered 421 4\.3\.2 .*try later"):
        email(host=server.host, port=server.port, username=None, password=None).send(notification())
    assert server.connections == 3


def test_a_temporary_failure_is_retried(smtp_server, email, notification):
    smtp_server.fail("MAIL", "451 4.3.0 Try again later")
    email().send(notification())
    assert len(smtp_server.received) == 1


def test_a_permanent_failure_is_not_retried(smtp_server, email, notification):
    smtp_server.fail("DATA", "554 5.6.0 Message rejected", times=3)
    with pytest.raises(ServiceError, match=r"answered 554 5\.6\.0 Message rejected"):
        email().send(notification())
    assert smtp_server.received == []


def test_tls_ssl_against_a_starttls_port(smtp_server, email, notification):
    with pytest.raises(ServiceError, match=r"TLS with .* failed .*tls: ssl is for implicit TLS"):
        email(tls="ssl").send(notification())


def test_no_tls_against_a_server_that_requires_it(smtp_server, email, notification):
    with pytest.raises(ServiceError, match="does not offer SMTP AUTH extension"):
        email(tls="none").send(notification())


def test_nothing_listening(email, notification):
    with pytest.raises(
        ServiceError, match=r"could not connect to 127.0.0.1:9 \(Connection refused\)"
    ):
        email(host="127.0.0.1", port=9).send(notification())


PIPELINE = """\
version: 1
name: production
checks:
  - {name: sync, type: static, status: error, message: "12 unsynced"}
notifiers:
  - name: email
    type: smtp
    host: "${SMTP_SERVER}"
    port: "${SMTP_PORT:-587}"
    username: "${SMTP_USERNAME}"
    password: "${SMTP_PASSWORD}"
    to: ["${EMAIL_RECIPIENT}"]
    tls: starttls
    ca_file: "${CA_FILE}"
"""


def test_the_contract_pipeline_and_no_password_anywhere(
    angles_cli, pipeline_file, smtp_server, monkeypatch, tmp_path
):
    smtp_server.password = "hunter2-long-password"
    for name, value in {
        "SMTP_SERVER": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_USERNAME": "alerts@example.com",
        "SMTP_PASSWORD": "hunter2-wrong",
        "EMAIL_RECIPIENT": "ops@example.com",
        "CA_FILE": smtp_server.ca_file,
    }.items():
        monkeypatch.setenv(name, value)
    path = pipeline_file(PIPELINE)
    assert angles_cli("validate", path).exit_code == 0
    failed = angles_cli("run", path, "--format", "json")
    [note] = failed.json()["notifications"]
    assert note["status"] == "error" and "refused the login" in note["message"]
    smtp_server.username = "alerts@example.com"
    monkeypatch.setenv("SMTP_PASSWORD", smtp_server.password)
    sent = angles_cli("run", path, "--format", "json")
    assert sent.json()["notifications"] == [{"notifier": "email", "status": "sent"}]
    [message] = smtp_server.messages
    assert message["From"] == "alerts@example.com"
    for blob in [
        failed.output,
        sent.output,
        *(p.read_text() for p in (tmp_path / "logs").iterdir()),
        message.as_string(),
    ]:
        assert "hunter2" not in blob


def test_a_port_must_be_a_number(angles_cli, pipeline_file):
    path = pipeline_file(
        """\
        version: 1
        notifiers:
          - {name: email, type: smtp, host: mx, port: "smtp", to: [a@b.c]}
          - {name: email2, type: smtp, host: mx, port: 70000, to: [a@b.c]}
        """
    )
    result = angles_cli("validate", path)
    assert result.exit_code == 3
    assert "notifiers[0].port: 'smtp' does not match" in result.stderr
    assert "notifiers[1].port: 70000 is not a port number (1-65535)" in result.stderr
