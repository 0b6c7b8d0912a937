"""The SMTP test servers, exercised with the real smtplib (never mocked)."""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage

import pytest

from angles.testing.smtp import RawSMTPServer, SMTPServer


def message(*to: str, subject: str = "Backup failed ✗") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "angles@example.com"
    msg["To"] = ", ".join(to or ["ops@example.com"])
    msg["Subject"] = subject
    msg.set_content("The backup failed.")
    msg.add_alternative("<p>The backup <b>failed</b>.</p>", subtype="html")
    return msg


def starttls_login(server: SMTPServer, password: str | None = None) -> smtplib.SMTP:
    smtp = smtplib.SMTP(server.host, server.port, timeout=5)
    smtp.starttls(context=ssl.create_default_context(cafile=server.ca_file))
    smtp.login(server.username, password or server.password)
    return smtp


def test_starttls_login_and_send(smtp_server: SMTPServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls") and not smtp.has_extn("auth")
        smtp.starttls(context=ssl.create_default_context(cafile=smtp_server.ca_file))
        smtp.ehlo()
        assert set(smtp.esmtp_features["auth"].split()) == {"LOGIN", "PLAIN"}
        smtp.login(smtp_server.username, smtp_server.password)
        refused = smtp.send_message(message("ops@example.com"))

    assert refused == {}
    (mail,) = smtp_server.received
    assert mail.mail_from == "angles@example.com"
    assert mail.rcpt_tos == ["ops@example.com"]
    assert mail.login == smtp_server.username
    received = smtp_server.messages[0]
    assert received["Subject"] == "Backup failed ✗"
    assert received.get_content_type() == "multipart/alternative"
    assert received.get_body(("plain",)).get_content().strip() == "The backup failed."


def test_auth_login_mechanism(smtp_server: SMTPServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as smtp:
        smtp.starttls(context=smtp_server.client_context())
        smtp.ehlo()
        smtp.user, smtp.password = smtp_server.username, smtp_server.password
        code, _ = smtp.auth("LOGIN", smtp.auth_login)
    assert code == 235
    assert smtp_server.auth_attempts == [("LOGIN", smtp_server.username, True)]


def test_certificate_is_self_signed_for_localhost(smtp_server: SMTPServer) -> None:
    with (
        smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as smtp,
        pytest.raises(ssl.SSLCertVerificationError, match="self-signed certificate"),
    ):
        smtp.starttls(context=ssl.create_default_context())
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as smtp:
        smtp.starttls(context=smtp_server.client_context())
        cert = smtp.sock.getpeercert()
    assert ("DNS", "localhost") in cert["subjectAltName"]
    assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]


def test_wrong_password(smtp_server: SMTPServer) -> None:
    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        starttls_login(smtp_server, password="wrong")
    assert caught.value.smtp_code == 535
    assert caught.value.smtp_error == b"5.7.8 Authentication credentials invalid"


def test_mail_before_starttls_or_auth_is_refused(smtp_server: SMTPServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as smtp:
        with pytest.raises(smtplib.SMTPSenderRefused) as caught:
            smtp.send_message(message())
        assert caught.value.smtp_code == 530
        assert b"STARTTLS" in caught.value.smtp_error
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as smtp:
        smtp.starttls(context=smtp_server.client_context())
        with pytest.raises(smtplib.SMTPSenderRefused) as caught:
            smtp.send_message(message())
        assert (caught.value.smtp_code, caught.value.smtp_error) == (
            530,
            b"5.7.0 Authentication required",
        )
    assert smtp_server.received == []


def test_one_refused_recipient_is_in_the_return_value(smtp_server: SMTPServer) -> None:
    with starttls_login(smtp_server) as smtp:
        refused = smtp.send_message(message("ops@example.com", "nobody@example.com"))
    assert list(refused) == ["nobody@example.com"]
    assert refused["nobody@example.com"][0] == 550
    assert refused["nobody@example.com"][1].startswith(b"5.1.1")
    assert smtp_server.received[0].rcpt_tos == ["ops@example.com"]


def test_all_recipients_refused(smtp_server: SMTPServer) -> None:
    with (
        starttls_login(smtp_server) as smtp,
        pytest.raises(smtplib.SMTPRecipientsRefused) as caught,
    ):
        smtp.send_message(message("nobody@example.com", "Nobody@example.org"))
    assert set(caught.value.recipients) == {"nobody@example.com", "Nobody@example.org"}
    assert smtp_server.received == []


def test_programmed_reply(smtp_server: SMTPServer) -> None:
    smtp_server.fail("DATA", "451 4.3.0 Try again later")
    with starttls_login(smtp_server) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as caught:
            smtp.send_message(message())
        assert caught.value.smtp_code == 451
        smtp.send_message(message())
    assert len(smtp_server.received) == 1


def test_implicit_tls(smtp_server_factory: Callable[..., SMTPServer]) -> None:
    server = smtp_server_factory("ssl")
    context = ssl.create_default_context(cafile=server.ca_file)
    with smtplib.SMTP_SSL(server.host, server.port, timeout=5, context=context) as smtp:
        smtp.login(server.username, server.password)
        smtp.send_message(message())
    assert server.messages[0]["To"] == "ops@example.com"


def test_starttls_against_an_implicit_tls_port_times_out(
    smtp_server_factory: Callable[..., SMTPServer],
) -> None:
    server = smtp_server_factory("ssl")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        smtplib.SMTP(server.host, server.port, timeout=0.5)


def test_implicit_tls_against_a_starttls_port_fails(smtp_server: SMTPServer) -> None:
    with pytest.raises(ssl.SSLError):
        smtplib.SMTP_SSL(
            smtp_server.host, smtp_server.port, timeout=5, context=smtp_server.client_context()
        )


@pytest.mark.parametrize("smtp_server", ["none"], indirect=True)
def test_plain_mode_with_optional_auth(smtp_server: SMTPServer) -> None:
    assert smtp_server.mode == "none"
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as smtp:
        smtp.send_message(message())
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as smtp:
        smtp.login(smtp_server.username, smtp_server.password)
        smtp.send_message(message())
    assert [m.login for m in smtp_server.received] == [None, smtp_server.username]


def test_silent_server_times_out(silent_smtp_server: RawSMTPServer) -> None:
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        smtplib.SMTP(silent_smtp_server.host, silent_smtp_server.port, timeout=1)
    assert 0.9 < time.monotonic() - started < 3
    assert silent_smtp_server.connections == 1


def test_421_greeting(unavailable_smtp_server: RawSMTPServer) -> None:
    with pytest.raises(smtplib.SMTPConnectError) as caught:
        smtplib.SMTP(unavailable_smtp_server.host, unavailable_smtp_server.port, timeout=5)
    assert caught.value.smtp_code == 421


def test_each_test_starts_empty(smtp_server: SMTPServer) -> None:
    assert smtp_server.received == [] and smtp_server.auth_attempts == []
