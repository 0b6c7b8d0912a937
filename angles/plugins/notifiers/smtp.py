"""The ``smtp`` notifier: an e-mail (text and HTML) through a mail server, over verified TLS."""

from __future__ import annotations

import html
import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from angles import Notification, Notifier, ServiceError, hookimpl
from angles.helpers import RetryPolicy, format_duration, format_timestamp

if TYPE_CHECKING:
    import smtplib
    import ssl
    from email.message import EmailMessage

SERVICE = "SMTP"
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
#: Replies that mean "try again later" (RFC 5321 §4.2.1); angles does, a few times.
TRANSIENT_CODES = frozenset({421, 450, 451, 452, 454})


class SMTPNotifier(Notifier):
    """Sends the run as a ``multipart/alternative`` e-mail to every address in ``to``."""

    type = "smtp"
    description = "Sends the run by e-mail through an SMTP server (STARTTLS, SSL or plain)."
    #: Seconds before the first retry of a temporary failure; doubles each time.
    retry_backoff = 1.0
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["host", "to"],
        "properties": {
            "host": {"type": "string", "minLength": 1, "description": "The mail server's name."},
            "port": {
                "type": ["integer", "string"],
                "pattern": "^[0-9]+$",
                "description": "The server's port (default: 587 starttls, 465 ssl, 25 none).",
            },
            "username": {
                "type": "string",
                "description": "The login, when the server requires AUTH.",
            },
            "password": {
                "type": "string",
                "secret": True,
                "description": 'The password, e.g. "${SMTP_PASSWORD}".',
            },
            "from": {
                "type": "string",
                "description": "The sender address (default: the username if it is an address, "
                "else angles@<this host>).",
            },
            "to": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string"},
                "description": "Recipient addresses (an item may hold several, comma-separated).",
            },
            "tls": {
                "enum": ["starttls", "ssl", "none"],
                "description": "starttls (port 587), ssl (implicit TLS, port 465) or none; "
                "certificates are always verified.",
            },
            "ca_file": {
                "type": "string",
                "description": "A PEM file of extra CA certificates to trust (a private relay).",
            },
        },
    }

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = []
        if "port" in config and not 0 < int(config["port"]) < 65536:
            problems.append(("port", f"{config['port']} is not a port number (1-65535)"))
        if "password" in config and not config.get("username"):
            problems.append(("username", "a password needs a username"))
        if not recipients(config):
            problems.append(("to", "no recipient address"))
        return problems

    @property
    def tls(self) -> str:
        return self.config.get("tls", "starttls")

    @property
    def port(self) -> int:
        return int(self.config.get("port") or DEFAULT_PORTS[self.tls])

    @property
    def where(self) -> str:
        return f"{self.config['host']}:{self.port}"

    def send(self, notification: Notification) -> None:

        message = self.build(notification)
        refused = self.context.call(
            SERVICE,
            f"sending the e-mail through {self.where}",
            lambda: self._deliver(message),
            policy=RetryPolicy.with_retries(self.retries, backoff=self.retry_backoff),
            failure=self._failure,
        )
        if refused:
            raise self._refused(refused, everyone=False)

    def _failure(self, exc: Exception) -> ServiceError | None:
        """The delivery's failure; a "try again later" reply (4xx) is worth another try."""
        import smtplib

        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return self._refused(exc.recipients, everyone=True)
        if not isinstance(exc, smtplib.SMTPException | OSError):
            return None
        error = self._error(exc)
        error.transient = (
            isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code in TRANSIENT_CODES
        )
        return error

    def build(self, notification: Notification) -> EmailMessage:
        """The e-mail: subject, headers, a text part and an HTML part."""
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        redact = self.context.redact
        sender = _sender(self.config)
        message = EmailMessage()
        message["Subject"] = redact(notification.title)
        message["From"] = sender
        message["To"] = ", ".join(recipients(self.config))
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
        message["X-Angles-Pipeline"] = notification.report.pipeline
        message["X-Angles-Status"] = notification.status.value
        if notification.test:
            message["X-Angles-Test"] = "true"
        message.set_content(redact(notification.text()))
        message.add_alternative(redact(render_html(notification)), subtype="html")
        return message

    def _deliver(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        import smtplib

        timeout = self.timeout
        host = self.config["host"]
        ca_file = self.config.get("ca_file")
        context = tls_context(self.context.pipeline.resolve(ca_file) if ca_file else None)
        client: smtplib.SMTP
        if self.tls == "ssl":
            client = smtplib.SMTP_SSL(host, self.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, self.port, timeout=timeout)
        with client:
            client.ehlo()
            if self.tls == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if self.config.get("username"):
                client.login(self.config["username"], self.config.get("password", ""))
            return client.send_message(message, to_addrs=recipients(self.config))

    def _refused(self, refused: Mapping[str, tuple[int, bytes]], *, everyone: bool) -> ServiceError:
        names = ", ".join(
            f"{address} ({code} {_text(reply)})" for address, (code, reply) in refused.items()
        )
        noun = "recipient" if len(refused) == 1 else "recipients"
        others = "" if everyone else "; the other recipients got the message"
        return ServiceError(
            SERVICE,
            f"{self.where} refused the {noun} {names}{others}",
            hint="check the addresses in to: (EMAIL_RECIPIENT)",
        )

    def _error(self, exc: BaseException) -> ServiceError:
        import smtplib
        import ssl

        where = self.where
        timeout = self.timeout
        if isinstance(exc, ssl.SSLCertVerificationError):
            return ServiceError(
                SERVICE,
                f"the certificate of {where} is not trusted ({exc.verify_message})",
                hint="angles always verifies certificates: for a private CA set ca_file:",
            )
        if isinstance(exc, ssl.SSLError):
            return ServiceError(
                SERVICE,
                f"TLS with {where} failed ({exc.reason or type(exc).__name__})",
                hint="tls: ssl is for implicit TLS (port 465), tls: starttls for port 587",
            )
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return ServiceError(
                SERVICE,
                f"{where} refused the login ({exc.smtp_code} {_text(exc.smtp_error)})",
                hint="check SMTP_USERNAME and SMTP_PASSWORD",
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return ServiceError(
                SERVICE,
                f"{where} does not offer {exc}",
                hint="check tls: (most servers offer AUTH only after STARTTLS)",
            )
        if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code < 0:
            return ServiceError(  # smtplib could not read a reply code: not a mail server
                SERVICE,
                f"{where} did not answer as a mail server ({_text(exc.smtp_error)})",
                hint="check host and port: they should be the mail server's SMTP port",
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            hint = "the server asks to try later" if exc.smtp_code in TRANSIENT_CODES else None
            if exc.smtp_code == 530:
                hint = "check tls: and username:, the server requires TLS or a login"
            return ServiceError(
                SERVICE, f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}", hint=hint
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected | TimeoutError):
            return ServiceError(
                SERVICE,
                f"{where} did not answer within {timeout:g}s",
                hint="check host, port and tls: (an SSL port does not answer plain SMTP)",
            )
        if isinstance(exc, OSError):
            reason = exc.strerror or type(exc).__name__
            return ServiceError(
                SERVICE,
                f"could not connect to {where} ({reason})",
                hint="check host and port, and that the server is reachable",
            )
        return ServiceError(SERVICE, f"{where}: {type(exc).__name__}: {_text(str(exc))}")


def tls_context(ca_file: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A verifying client context: the system's CAs, plus ``ca_file`` when given."""
    import ssl

    context = ssl.create_default_context(cafile=ca_file)
    if ca_file is not None:
        context.load_default_certs()  # ca_file adds to the system's CAs, it does not replace them
    return context


def recipients(config: Mapping[str, Any]) -> list[str]:
    """The ``to`` addresses, an item holding several split at commas."""
    return [
        part.strip() for item in config.get("to", []) for part in item.split(",") if part.strip()
    ]


def _sender(config: Mapping[str, Any]) -> str:
    if config.get("from"):
        return config["from"]
    username = config.get("username") or ""
    return username if "@" in username else f"angles@{socket.getfqdn()}"


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def render_html(notification: Notification) -> str:
    """The message as a small HTML document (every value escaped)."""
    report = notification.report
    e = html.escape
    colours = {"ok": "#2e7d32", "warning": "#ed6c02", "error": "#d32f2f"}
    rows = [
        f"<tr><th align='left'>Pipeline</th><td>{e(report.pipeline)}</td></tr>",
        f"<tr><th align='left'>Status</th><td style='color:{colours[report.status.value]}'>"
        f"<b>{e(report.status.value.upper())}</b></td></tr>",
        f"<tr><th align='left'>Time</th><td>{e(format_timestamp(report.started_at))}</td></tr>",
        f"<tr><th align='left'>Duration</th><td>{report.duration_seconds:.1f}s</td></tr>",
    ]
    parts = [f"<h2>{e(notification.title)}</h2>"]
    if notification.test:
        parts.append("<p><b>This is a test:</b> the failures below are simulated.</p>")
    parts.append(f"<table>{''.join(rows)}</table>")
    if notification.alerts:
        items = "".join(
            f"<li><b>{e(c.name)}</b> <span style='color:{colours[c.status.value]}'>"
            f"[{e(c.status.value)}]</span>: {e(c.message)}</li>"
            for c in notification.alerts
        )
        parts.append(f"<h3>Failing checks</h3><ul>{items}</ul>")
    if notification.recoveries:
        items = "".join(
            f"<li><b>{e(r.check.name)}</b> recovered after {e(format_duration(r.failing_for))}</li>"
            for r in notification.recoveries
        )
        parts.append(f"<h3>Recovered</h3><ul>{items}</ul>")
    if report.backups:
        items = "".join(
            f"<li><b>{e(b.name)}</b>: {e(b.status.value)}, "
            f"{e(b.rows)}"
            f"{': ' + e(b.message) if b.message else ''}</li>"
            for b in report.backups
        )
        parts.append(f"<h3>Backups</h3><ul>{items}</ul>")
    body = "\n".join(parts)
    return f"<!DOCTYPE html><html><body style='font-family:sans-serif'>\n{body}\n</body></html>"


@hookimpl
def angles_register_notifiers(register):
    register(SMTPNotifier)
