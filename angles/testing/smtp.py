"""Real SMTP servers on 127.0.0.1 for testing mail delivery with :mod:`smtplib`.

:class:`SMTPServer` runs aiosmtpd with a freshly generated self-signed certificate
(CN localhost, SAN DNS:localhost and IP:127.0.0.1; trust it with
``ssl.create_default_context(cafile=server.ca_file)``) in one of three modes:

- ``"starttls"`` (port 587 style): STARTTLS required before MAIL, AUTH required;
- ``"ssl"`` (port 465 style): implicit TLS from the first byte, AUTH required;
- ``"none"``: plain text, AUTH offered but optional.

AUTH LOGIN and PLAIN accept ``username``/``password``. Recipients starting with
``nobody@`` are refused with ``550 5.1.1``. :class:`RawSMTPServer` is a socket that never
greets (for timeouts) or greets with ``421`` (service unavailable). See
``/work/shared/reference/services.md`` §4.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "Certificate",
    "RawSMTPServer",
    "ReceivedMail",
    "SMTPServer",
    "free_port",
    "make_certificate",
]

Mode = Literal["starttls", "ssl", "none"]
MODES: tuple[Mode, ...] = ("starttls", "ssl", "none")


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (aiosmtpd's Controller cannot use port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate and its key, as PEM files."""

    cert_file: Path
    key_file: Path

    @property
    def ca_file(self) -> Path:
        """The file to trust (the certificate is its own CA)."""
        return self.cert_file

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context that presents this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this certificate."""
        return ssl.create_default_context(cafile=str(self.cert_file))


def make_certificate(directory: str | Path, common_name: str = "localhost") -> Certificate:
    """Write ``cert.pem`` and ``key.pem`` (self-signed, valid for localhost and 127.0.0.1)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())  # fast to generate, unlike RSA
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@dataclass
class ReceivedMail:
    """One message the server accepted: the envelope, the raw bytes and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    message: EmailMessage
    login: str | None = None  # the user that authenticated, if any


@dataclass
class _Fault:
    command: str
    reply: str
    times: int


@dataclass
class _Handler:
    server: SMTPServer
    refused_prefixes: tuple[str, ...] = ("nobody@",)
    faults: list[_Fault] = field(default_factory=list)

    def _fault(self, command: str) -> str | None:
        with self.server._lock:
            for fault in self.faults:
                if fault.command == command:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault.reply
        return None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self._fault("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self._fault("RCPT")
        if reply:
            return reply
        if address.lower().startswith(self.refused_prefixes):
            return f"550 5.1.1 <{address}>: Recipient address rejected: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._fault("DATA")
        if reply:
            return reply
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        message = email.message_from_bytes(content, policy=email.policy.default)
        login = session.login_data
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            content=content,
            message=message,  # type: ignore[arg-type]
            login=login.decode() if isinstance(login, bytes) else login,
        )
        with self.server._lock:
            self.server.received.append(mail)
        return "250 2.0.0 Message accepted for delivery"


class SMTPServer:
    """An aiosmtpd mail server on 127.0.0.1 with TLS, AUTH and a store of received mail.

    Attributes: ``host``, ``port``, ``mode``, ``username``, ``password``, ``ca_file``
    (trust this), ``certificate``, ``received`` (:class:`ReceivedMail` list),
    ``messages`` (the parsed messages), ``auth_attempts`` ((mechanism, login, success)).
    """

    def __init__(
        self,
        mode: Mode = "starttls",
        *,
        username: str = "alerts",
        password: str = "s3cret",
        auth_required: bool | None = None,
        certificate: Certificate | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        server_hostname: str = "mx.angles.test",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.username = username
        self.password = password
        self.auth_required = mode != "none" if auth_required is None else auth_required
        self.host = host
        self.port = port or free_port(host)
        self.server_hostname = server_hostname
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if certificate is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="angles-smtp-")
            certificate = make_certificate(self._tmpdir.name)
        self.certificate = certificate
        self.received: list[ReceivedMail] = []
        self.auth_attempts: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()
        self._handler = _Handler(self)
        self._controller: Controller | None = None

    @property
    def ca_file(self) -> str:
        """Path of the PEM file that clients must trust to verify the server."""
        return str(self.certificate.ca_file)

    @property
    def messages(self) -> list[EmailMessage]:
        """The accepted messages, parsed (``email.policy.default``), in order."""
        with self._lock:
            return [mail.message for mail in self.received]

    def client_context(self) -> ssl.SSLContext:
        """``ssl.create_default_context(cafile=self.ca_file)``."""
        return self.certificate.client_context()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.username.encode(),
            self.password.encode(),
        )
        login = data.login.decode(errors="replace") if isinstance(data, LoginPassword) else ""
        with self._lock:
            self.auth_attempts.append((mechanism, login, ok))
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> SMTPServer:
        """Start serving (in aiosmtpd's thread)."""
        context = self.certificate.server_context()
        options: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "server_hostname": self.server_hostname,
            "authenticator": self._authenticate,
            "auth_required": self.auth_required,
        }
        if self.mode == "starttls":
            options.update(tls_context=context, require_starttls=True)
        elif self.mode == "ssl":
            # aiosmtpd only counts TLS from STARTTLS: without this it never offers AUTH.
            options.update(ssl_context=context, auth_require_tls=False)
        else:
            options.update(auth_require_tls=False)
        if self.mode != "starttls":
            # Expected here (services.md §4.2); aiosmtpd would repeat it on every connection.
            warnings.filterwarnings(
                "ignore", message="Requiring AUTH while not requiring TLS", category=UserWarning
            )
        self._controller = Controller(self._handler, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving and delete a generated certificate."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test tools ------------------------------------------------------------------------

    def fail(self, command: Literal["MAIL", "RCPT", "DATA"], reply: str, times: int = 1) -> None:
        """Answer the next ``times`` uses of ``command`` with ``reply`` (``"451 4.3.0 Later"``)."""
        with self._lock:
            self._handler.faults.append(_Fault(command.upper(), reply, times))

    def reset(self) -> None:
        """Forget received mail, AUTH attempts and pending faults."""
        with self._lock:
            self.received.clear()
            self.auth_attempts.clear()
            self._handler.faults.clear()


class RawSMTPServer:
    """A TCP server that speaks no SMTP: it never greets, or greets with ``greeting``.

    ``RawSMTPServer()`` accepts and stays silent (smtplib times out);
    ``RawSMTPServer("421 4.3.2 Service not available\\r\\n")`` sends that and hangs up.
    ``connections`` counts accepted connections.
    """

    def __init__(self, greeting: str | bytes | None = None, host: str = "127.0.0.1") -> None:
        self.greeting = greeting.encode() if isinstance(greeting, str) else greeting
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)  # so the accept loop notices stop() quickly
        self.host, self.port = self._sock.getsockname()[:2]
        self.connections = 0
        self._open: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="raw-smtp", daemon=True)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self.greeting is None:
                self._open.append(conn)  # held open, silent, until stop()
                continue
            try:
                conn.sendall(self.greeting)
            except OSError:
                pass
            finally:
                conn.close()

    def start(self) -> RawSMTPServer:
        """Start accepting connections."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and close every held connection."""
        self._stopping.set()
        self._thread.join(timeout=2)
        self._sock.close()
        for conn in self._open:
            conn.close()
        self._open.clear()

    def __enter__(self) -> RawSMTPServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
