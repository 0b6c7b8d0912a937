"""Encrypted backups: the ``encrypt:`` key of every sink, with age (through pyrage).

.. code-block:: yaml

    sinks:
      github:
        type: github
        encrypt:
          recipients: ["age1…"]          # or ssh-ed25519 public keys; or passphrase: …
          identity: "${AGE_IDENTITY}"    # needed to read; or identity_file: key.txt

A sink with ``encrypt:`` stores the ordinary backup file encrypted as a whole, named with
``.age`` appended, so ``age -d -i key.txt FILE`` gives it back. Encryption and decryption
happen here and nowhere else, for every sink alike: the backup engine wraps the chunks a
sink stores (:meth:`Encryption.encrypt`), and every reader goes through
:func:`open_backup`, which decrypts a whole ``.age`` file into a temporary file before
anything parses it, so no unauthenticated byte is ever read as a backup.

Files encrypted to recipients stream through pyrage's ``encrypt_io``/``decrypt_io`` in
constant memory. pyrage offers no streaming API for passphrases, so a passphrase file is
encrypted and decrypted in memory: recipients suit large tables better.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from angles.core.errors import AnglesError, BackupError

if TYPE_CHECKING:
    from angles.core.context import Context
    from angles.core.sink import Sink

__all__ = [
    "AGE_SUFFIX",
    "ENCRYPT_SCHEMA",
    "Encryption",
    "encrypted_name",
    "open_backup",
    "open_backup_file",
    "validate_encrypt",
]

AGE_SUFFIX = ".age"
_CHUNK = 1 << 20
_X25519_RECIPIENT = "age1"
_SSH_RECIPIENTS = ("ssh-ed25519 ", "ssh-rsa ")
_SSH_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----"
_IDENTITY_HINT = (
    'set encrypt.identity (e.g. "${AGE_IDENTITY}", the AGE-SECRET-KEY-1… line of the key '
    "file) or encrypt.identity_file of the sink"
)

ENCRYPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "Encrypt every file this sink stores with age (named FILE.age); "
    "recipients or a passphrase to write, an identity to read.",
    "properties": {
        "recipients": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
            "description": "age public keys (age1…) or SSH public keys (ssh-ed25519 …) that "
            "can decrypt the files; `angles keygen` makes a key.",
        },
        "passphrase": {
            "type": "string",
            "minLength": 1,
            "secret": True,
            "description": "Encrypt with a passphrase instead of recipients (age -p); it also "
            "decrypts. Files are encrypted in memory: use recipients for large tables.",
        },
        "identity": {
            "type": "string",
            "minLength": 1,
            "secret": True,
            "description": "The secret key that reads the files (AGE-SECRET-KEY-1…, one per "
            "line for several, or an unencrypted OpenSSH private key), e.g. ${AGE_IDENTITY}.",
        },
        "identity_file": {
            "type": "string",
            "minLength": 1,
            "description": "A file holding the identity (as age-keygen writes it), relative "
            "to the pipeline file.",
        },
    },
}

#: The keys of ``encrypt:`` whose values are secrets (the redactor removes them everywhere).
SECRET_KEYS = ("passphrase", "identity")


def validate_encrypt(settings: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems with a sink's ``encrypt:`` mapping (which has passed the schema), each with
    its key path below the sink. Nothing is read or contacted."""
    if not isinstance(settings, Mapping):
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    has_recipients, has_passphrase = "recipients" in settings, "passphrase" in settings
    if has_recipients == has_passphrase:
        problems.append(
            (
                ("encrypt",),
                "give either recipients (age public keys) or a passphrase"
                + (", not both" if has_recipients else ""),
            )
        )
    for index, recipient in enumerate(settings.get("recipients") or ()):
        if not _looks_like_recipient(str(recipient)):
            problems.append(
                (
                    ("encrypt", "recipients", index),
                    f"{_shown(str(recipient))} is not an age recipient: expected an age public "
                    "key (age1…, printed by `angles keygen`) or an SSH public key (ssh-ed25519 …)",
                )
            )
    if "identity" in settings and "identity_file" in settings:
        problems.append((("encrypt", "identity_file"), "give identity or identity_file, not both"))
    if has_passphrase and ("identity" in settings or "identity_file" in settings):
        problems.append(
            (("encrypt",), "a passphrase both encrypts and decrypts: drop identity/identity_file")
        )
    return problems


def _looks_like_recipient(text: str) -> bool:
    text = text.strip()
    if text.startswith(_X25519_RECIPIENT):
        return len(text) == 62 and text.isalnum() and text == text.lower()
    return text.startswith(_SSH_RECIPIENTS) and len(text.split()) >= 2


def _shown(text: str) -> str:
    """A value for a message, cut short (a misplaced secret key never shows whole)."""
    if text.startswith("AGE-SECRET-KEY-") or "PRIVATE KEY" in text:
        return "a secret key (never put it in recipients)"
    return repr(text if len(text) <= 24 else text[:20] + "…")


def encrypted_name(name: str) -> bool:
    """Whether a stored file name is an encrypted backup (``….json.age``)."""
    return name.endswith(AGE_SUFFIX)


@dataclass(frozen=True)
class Encryption:
    """A sink's ``encrypt:`` settings, and the age operations they allow."""

    sink: str
    recipients: tuple[str, ...] = ()
    passphrase: str | None = None
    identity: str | None = None
    identity_file: Path | None = None

    @classmethod
    def of(cls, sink: Sink) -> Encryption | None:
        """The sink's settings, or None when it does not encrypt."""
        settings = sink.config.get("encrypt")
        if not isinstance(settings, Mapping):
            return None
        identity_file = settings.get("identity_file")
        return cls(
            sink=sink.name,
            recipients=tuple(str(r).strip() for r in settings.get("recipients") or ()),
            passphrase=settings.get("passphrase"),
            identity=settings.get("identity"),
            identity_file=sink.context.pipeline.resolve(identity_file) if identity_file else None,
        )

    @property
    def can_decrypt(self) -> bool:
        return bool(self.passphrase or self.identity or self.identity_file)

    # -- writing ----------------------------------------------------------------------------

    def encrypt(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The age encryption of a stream of chunks, chunk by chunk.

        The ciphertext is spooled to a temporary file: pyrage writes it as it reads the
        plaintext, while a sink pulls chunks, so one of the two has to wait on disk.
        """
        import pyrage

        with tempfile.TemporaryFile() as spool:
            if self.passphrase is not None:
                spool.write(pyrage.passphrase.encrypt(b"".join(chunks), self.passphrase))
            else:
                reader = _ChunkReader(chunks)
                try:
                    pyrage.encrypt_io(reader, spool, self._recipients())
                except (pyrage.EncryptError, OSError) as exc:
                    reader.raise_error()
                    raise BackupError(f"sink {self.sink!r}: age encryption failed ({exc})") from exc
                reader.raise_error()
            spool.seek(0)
            while chunk := spool.read(_CHUNK):
                yield chunk

    def _recipients(self) -> list[Any]:
        from pyrage import RecipientError, ssh, x25519

        parsed = []
        for index, text in enumerate(self.recipients):
            kind = x25519 if text.startswith(_X25519_RECIPIENT) else ssh
            try:
                parsed.append(kind.Recipient.from_str(text))
            except RecipientError as exc:
                raise BackupError(
                    f"sink {self.sink!r}: encrypt.recipients[{index}] is not a valid public key "
                    f"({exc})",
                    hint="copy the public key that `angles keygen` (or age-keygen -y) prints",
                ) from exc
        return parsed

    # -- reading ----------------------------------------------------------------------------

    def decrypt(self, name: str, stream: BinaryIO, context: Context | None = None) -> BinaryIO:
        """The plain file behind an encrypted one, as a seekable temporary file.

        The whole file is decrypted (and so authenticated) before it is handed on.
        Raises :class:`BackupError` naming the sink and file when there is no identity,
        it is the wrong one, or the file was damaged or altered.
        """
        import pyrage

        spool = tempfile.TemporaryFile()  # noqa: SIM115 (handed to the caller)
        reader = _Reader(stream)
        try:
            if self.passphrase is not None:
                spool.write(pyrage.passphrase.decrypt(stream.read(), self.passphrase))
            else:
                pyrage.decrypt_io(reader, spool, self._identities(name, context))
        except pyrage.DecryptError as exc:
            spool.close()
            reader.raise_error()
            raise self._refusal(name, str(exc)) from None
        except OSError as exc:  # a payload chunk failed authentication, or the file is cut
            spool.close()
            reader.raise_error()
            raise BackupError(
                f"sink {self.sink!r}: {name} is damaged or was altered after it was encrypted "
                f"(age: {exc})",
                hint="restore another backup (angles backups list shows them)",
            ) from None
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool  # type: ignore[return-value]

    def _refusal(self, name: str, reason: str) -> BackupError:
        if "no matching keys" in reason.lower():
            return BackupError(
                f"sink {self.sink!r}: the identity does not decrypt {name} "
                "(the file was encrypted for other recipients)",
                hint="encrypt.identity must be the secret key of a recipient the file was "
                "written for; keep old identities (one per line) after rotating recipients",
            )
        if self.passphrase is not None and "decryption" in reason.lower():
            return BackupError(
                f"sink {self.sink!r}: the passphrase does not decrypt {name}",
                hint="check encrypt.passphrase of the sink",
            )
        return BackupError(
            f"sink {self.sink!r}: {name} is not a readable age file ({reason})",
            hint="restore another backup (angles backups list shows them)",
        )

    def _identities(self, name: str, context: Context | None) -> list[Any]:
        from pyrage import IdentityError, ssh, x25519

        if self.identity is not None:
            text, origin = self.identity, "encrypt.identity"
        elif self.identity_file is not None:
            try:
                text = self.identity_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise BackupError(
                    f"sink {self.sink!r}: cannot read {name}: the identity file "
                    f"{self.identity_file} cannot be read ({getattr(exc, 'strerror', exc)})",
                    hint=_IDENTITY_HINT,
                ) from None
            origin = f"the identity file {self.identity_file}"
        else:
            raise BackupError(
                f"sink {self.sink!r}: {name} is encrypted and the sink has no identity to read it",
                hint=_IDENTITY_HINT,
            )
        if context is not None:
            context.redact.add(text, *text.splitlines())
        try:
            if _SSH_PRIVATE_KEY in text:
                return [ssh.Identity.from_buffer(text.strip().encode() + b"\n")]
            keys = [line.strip() for line in text.splitlines()]
            identities = [x25519.Identity.from_str(k) for k in keys if k and not k.startswith("#")]
        except IdentityError:
            identities = []
        if not identities:
            raise BackupError(
                f"sink {self.sink!r}: cannot read {name}: {origin} holds no valid age identity",
                hint="expected the AGE-SECRET-KEY-1… line(s) of a key file made by "
                "`angles keygen`, or an unencrypted OpenSSH ed25519 private key",
            )
        return identities


def open_backup(sink: Sink, name: str) -> BinaryIO:
    """A binary stream of the plain backup file ``name`` of ``sink`` (the caller closes it).

    An encrypted file (``….age``) is decrypted with the sink's ``encrypt:`` identity or
    passphrase; any other file is the sink's own stream. This is the one way angles reads
    a stored backup.
    """
    stream = sink.open(name)
    if not encrypted_name(name):
        return stream
    with stream:
        encryption = Encryption.of(sink)
        if encryption is None or not encryption.can_decrypt:
            raise BackupError(
                f"sink {sink.name!r}: {name} is encrypted and the sink has no identity to read it",
                hint=_IDENTITY_HINT,
            )
        return encryption.decrypt(name, stream, sink.context)


def open_backup_file(context: Context, path: Path) -> BinaryIO:
    """A backup file on disk (``angles restore --file``); an encrypted one is decrypted
    with the identity or passphrase of whichever sink of the pipeline opens it."""
    try:
        stream = open(path, "rb")  # noqa: SIM115 (handed to the caller)
    except OSError as exc:
        raise AnglesError(f"cannot open {path}: {exc.strerror}") from exc
    if not encrypted_name(path.name):
        return stream
    with stream:
        readers = [
            e
            for name in context.pipeline.sinks
            if (e := Encryption.of(context.sink(name))) is not None and e.can_decrypt
        ]
        if not readers:
            raise BackupError(
                f"{path} is encrypted and no sink of the pipeline has an identity to read it",
                hint=_IDENTITY_HINT,
            )
        refusal: BackupError | None = None
        for encryption in readers:
            stream.seek(0)
            try:
                return encryption.decrypt(path.name, stream, context)
            except BackupError as exc:
                refusal = refusal or exc
        assert refusal is not None
        raise refusal


class _ChunkReader(io.RawIOBase):
    """A readable stream over an iterator of chunks, keeping any error it raised.

    pyrage reports an error of the stream it reads as a bare I/O error; the original
    (a database that stopped answering…) is re-raised instead.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        try:
            while not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    return 0
                self._pending = memoryview(chunk)
        except BaseException as exc:
            self.error = exc
            raise
        count = min(len(target), len(self._pending))
        target[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


class _Reader(io.RawIOBase):
    """A sink's stream as pyrage reads it, keeping any error the sink raised."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        try:
            data = self._stream.read(len(target))
        except BaseException as exc:
            self.error = exc
            raise
        target[: len(data)] = data
        return len(data)

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error
