"""The ``github`` sink: backup files committed to a GitHub repository.

.. code-block:: yaml

    sinks:
      github:
        type: github
        repository: "${GITHUB_REPOSITORY}"   # owner/name
        token: "${GITHUB_TOKEN}"
        path: backups                        # the folder in the repository
        # branch: backups                    # default: the repository's default branch
        # api_url: https://ghe.example.com/api/v3
        retention_days: 30

Every run is one commit through the Git Data API: each file is uploaded as blobs while it
streams in, then one tree on top of the branch head, one commit and a fast-forward of the
branch. A branch that moved meanwhile is rebased onto (never forced); a failed run moves no
branch, so the repository stays as it was. An empty repository first gets a README through
the Contents API, because the Git Data API refuses to work on a repository without commits.

Large files: a file larger than :attr:`GitHubSink.compress_above` is gzip-compressed (and
named ``.json.gz`` by the backup engine, see :meth:`GitHubSink.compresses`). A file of more
than about a part is stored as ``NAME.part-001``, ``NAME.part-002``… beside a small
``NAME.manifest.json``, cut between rows where the rows say (:mod:`.parts`), each part of a
compressed file a gzip member of its own: a part whose rows did not change since the last
backup has the same bytes, so the same blob SHA, and is neither uploaded nor stored again;
the repository grows with the rows that changed, not with the table. :meth:`GitHubSink.list`
and :meth:`GitHubSink.open` show such a file as the one file ``NAME``;
``cat NAME.part-* > NAME`` rebuilds it by hand (and ``cat NAME.part-* | gunzip`` gives the
JSON of a compressed one). Files stored by older versions (one blob, or one gzip stream cut
every ``part_size`` bytes) read the same way. An encrypted file (``.age``) shares nothing
from one run to the next, so it is cut every ``part_size`` bytes.

Pacing: requests go out as fast as GitHub's documented limits allow (80 content-creating
requests a minute and 500 an hour, 900 points a minute per endpoint, none while the primary
limit is used up), waiting only when the next one would pass a limit; a rate limit GitHub
reports anyway is waited for as its ``Retry-After`` or ``x-ratelimit-reset`` says, through
the one retry policy.

Listing reads the folder with the Git Trees API (the Contents API stops at 1,000 entries)
and reading always goes through blobs (the Contents API sends no content above 1 MB).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from angles import BackupError, ServiceError, Sink, StoredFile, hookimpl
from angles.helpers import BACKUP_SUFFIXES, parse_retry_after, plural
from angles.plugins.sinks.parts import PartRule, stored_parts

if TYPE_CHECKING:
    from github import Github
    from github.GitCommit import GitCommit
    from github.GitRef import GitRef
    from github.Repository import Repository

SERVICE = "GitHub"
MiB = 1024 * 1024
#: seconds to wait on a secondary rate limit that names no Retry-After (GitHub's advice)
SECONDARY_WAIT = 60.0
#: The largest part. Parts stay well below the 40 MiB at which GitHub's blob API has been
#: seen to refuse uploads (services.md 2.4); base64 makes the request a third larger still.
#: Parts average an eighth of it (a compressed file's: half of it before compression).
DEFAULT_PART_SIZE = 8 * MiB
MAX_PART_SIZE = 25 * MiB
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = "angles-parts/1"
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_PART = re.compile(r"^(?P<name>.+)\.part-(?P<number>\d{3,})$")
_README = """\
# Backups

Backup files written by [angles](https://pypi.org/project/angles/): one JSON document per
table and run, named `{table}_{YYYY-MM-DD_HH-MM-SS}.json` (`.json.gz` when compressed;
`.age` appended when encrypted: `age -d -i key.txt FILE` decrypts it).
A file of more than a megabyte or so is stored as `NAME.part-001`, `NAME.part-002`, … with
`NAME.manifest.json` (the parts in order, their sizes and the file's SHA-256);
`cat NAME.part-* > NAME` puts it back together. Each part of a compressed file is a gzip
member of its own, so `cat NAME.part-* | gunzip > FILE.json` gives the JSON directly.
Parts end between rows, so a backup shares every part whose rows did not change with the
one before it, and git stores such a part once.
"""


@dataclass(frozen=True)
class _Blob:
    """A blob entry of the backup folder."""

    sha: str
    size: int


@dataclass
class _Stored:
    """A backup file in the folder: one blob, or parts listed by a manifest."""

    name: str
    size: int
    sha: str  # the file's blob, or its manifest's
    split: bool = False
    parts: dict[str, _Blob] = field(default_factory=dict)  # a split file's parts, by name


@dataclass
class _Staged:
    """A file uploaded during a transaction, waiting for the commit."""

    name: str
    size: int
    records: int | None
    blobs: dict[str, str]  # path in the folder -> blob SHA
    inline: dict[str, str] = field(default_factory=dict)  # path -> text (the manifest)
    new: tuple[int, int] = (0, 0)  # parts uploaded (not already in the repository), bytes


@dataclass
class _Head:
    """Where a commit goes: the branch (None when it does not exist yet) and its commit."""

    ref: GitRef | None
    commit: GitCommit


class GitHubSink(Sink):
    """A folder of a GitHub repository (or GitHub Enterprise), written one commit per run."""

    type = "github"
    description = "Backup files committed to a GitHub repository (one commit per run)."
    #: an uncompressed file above this size is stored gzip-compressed (GitHub warns at 50 MiB)
    compress_above: ClassVar[int] = 50 * MiB
    #: how often a commit is rebuilt when the branch moved under it
    commit_attempts: ClassVar[int] = 5
    #: first pause (seconds, doubling) before rebuilding a commit on a moved branch
    retry_backoff: ClassVar[float] = 0.25
    #: tries after the first for a 5xx, a timeout or a refused connection
    default_retries: ClassVar[int] = 2
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "repository": {
                "type": "string",
                "description": "The repository, as owner/name.",
            },
            "token": {
                "type": "string",
                "minLength": 1,
                "secret": True,
                "description": "A token that may read and write the repository's contents "
                "(usually ${GITHUB_TOKEN}).",
            },
            "path": {
                "type": "string",
                "description": "The folder in the repository (default: backups; empty for the "
                "root).",
            },
            "branch": {
                "type": "string",
                "minLength": 1,
                "description": "The branch to commit to (default: the repository's default "
                "branch); created from the default branch if missing.",
            },
            "api_url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "The API root (default: https://api.github.com); for GitHub "
                "Enterprise, https://HOST/api/v3.",
            },
            "compress": {
                "type": "boolean",
                "description": "Store every file gzip-compressed (.json.gz); files above 50 MiB "
                "are compressed anyway.",
            },
            "part_size": {
                "type": "integer",
                "minimum": 1024,
                "maximum": MAX_PART_SIZE,
                "description": "The largest part a file is stored in, in bytes (default "
                f"{DEFAULT_PART_SIZE}, 8 MiB). Files are cut between rows into parts of about "
                "an eighth of this (compressed files: half of it before compression), so that "
                "a backup shares its unchanged parts with the one before.",
            },
            "throttle": {
                "type": "boolean",
                "description": "Keep to GitHub's documented rate limits by waiting when the "
                "next request would pass one (80 writes a minute, 500 an hour; default true).",
            },
            "max_rate_limit_wait": {
                "type": "number",
                "minimum": 0,
                "description": "The longest wait, in seconds, for a rate limit to lift before "
                "giving up (default 600).",
            },
        },
        "required": ["repository", "token"],
        "additionalProperties": False,
    }

    @classmethod
    def validate_config(cls, config: Any) -> list[tuple[str, str]]:
        """``repository`` must be owner/name and ``path`` a folder inside it."""
        problems = []
        if not _REPOSITORY.match(str(config.get("repository", ""))):
            problems.append(
                ("repository", f"{config.get('repository')!r} is not owner/name (acme/backups)")
            )
        parts = str(config.get("path", "backups")).strip("/").split("/")
        if "\\" in str(config.get("path", "")) or any(p in (".", "..") for p in parts):
            problems.append(("path", "must be a folder inside the repository, like backups/db"))
        return problems

    def __init__(self, name: str, config: Any, context: Any) -> None:
        super().__init__(name, config, context)
        self.repository: str = config["repository"]
        self.folder: str = str(config.get("path", "backups")).strip("/")
        self.part_size: int = int(config.get("part_size") or DEFAULT_PART_SIZE)
        self.max_wait: float = float(config.get("max_rate_limit_wait", 600))
        self._repo: Repository | None = None
        self._client: Github | None = None
        self._branch: str | None = config.get("branch")
        self._listing: dict[str, _Stored] | None = None
        self._pacer = _Pacer() if config.get("throttle", True) else None

    # -- the Sink interface ----------------------------------------------------------------

    def compresses(self, size: int) -> bool:
        """Whether a file of ``size`` bytes is stored gzip-compressed (named ``.json.gz``)."""
        return bool(self.config.get("compress")) or size > self.compress_above

    @contextlib.contextmanager
    def transaction(self, message: str) -> Iterator[_Writer]:
        """Files stored inside are committed together when the block ends without error."""
        writer = _Writer(self)
        yield writer
        if writer.staged:
            self._commit(_commit_message(message, writer.staged), writer.changes, writer.inline)

    def list(self) -> list[StoredFile]:
        """Every backup file in the folder, split files as one, sorted by name."""
        self._listing = self._files(self._folder_at(self._head()))
        return [
            StoredFile(s.name, s.size) for s in sorted(self._listing.values(), key=lambda s: s.name)
        ]

    def open(self, name: str) -> BinaryIO:
        """A stream of the file's bytes, fetched blob by blob as it is read.

        A file is read as the last :meth:`list` found it (blobs never change, and
        ``backups list``/``verify`` then cost one listing, not one per file); a name that
        listing lacks is looked up afresh.
        """
        stored = (self._listing or {}).get(name)
        if stored is None:
            self._listing = self._files(self._folder_at(self._head()))
            stored = self._listing.get(name)
        if stored is None:
            raise BackupError(
                f"sink {self.name!r} has no backup {name!r} (in {self._where()})",
                hint="`angles backups list` shows the backups",
            )
        if not stored.split:
            parts, digest = [(stored.sha, stored.size)], None
        else:
            parts, digest = self._manifest(stored)
        return io.BufferedReader(_BlobStream(self, name, parts, digest), 1 << 16)

    def delete(self, names: Sequence[str], message: str) -> None:
        """Remove files (every part of a split one) in one commit; absent files are skipped."""
        doomed = set(names)
        for name in doomed:
            _check_name(name)

        def changes(folder: dict[str, _Blob]) -> dict[str, str | None]:
            return {path: None for path in folder if _owner(path) in doomed}

        self._commit(message, changes)

    # -- GitHub ----------------------------------------------------------------------------

    def repo(self) -> Repository:
        """The repository (fetched once), after checking the token can see it."""
        if self._repo is None:
            from github import Auth, Github

            from angles.helpers import user_agent

            client = Github(
                auth=Auth.Token(self.config["token"]),
                base_url=self.config.get("api_url") or "https://api.github.com",
                timeout=max(1, math.ceil(self.timeout)),  # PyGithub takes whole seconds
                user_agent=user_agent(),
                retry=None,  # angles retries, within the run's budget (PyGithub's multiply)
                per_page=100,
                # PyGithub's spacing (0.25 s, writes 1 s) tripled a backup's time: _Pacer
                # waits only when a documented limit needs it
                seconds_between_requests=None,
                seconds_between_writes=None,
            )
            self._client = client
            self._repo = self.call(
                "opening the repository", _open_repository, client, self.repository
            )
            self._branch = self._branch or self._repo.default_branch
        return self._repo

    @property
    def branch(self) -> str:
        """The branch backups are committed to."""
        self.repo()
        assert self._branch is not None
        return self._branch

    def call(self, action: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call PyGithub with angles' retries (a 5xx, a timeout, a refused connection, a
        rate limit that lifts within ``max_rate_limit_wait`` and the run's budget); a
        failure becomes a :class:`ServiceError` that names GitHub, the action and what to
        check."""

        def send() -> Any:
            self._pace(action, function.__name__)
            return function(*args, **kwargs)

        return self.context.call(
            SERVICE,
            action,
            send,
            policy=self.retry_policy,
            failure=lambda exc: self._failure(action, exc),
        )

    def _pace(self, action: str, endpoint: str) -> None:
        """Wait as long as GitHub's documented limits require before the next request (or
        say why not, when that wait would not fit)."""
        if self._pacer is None:
            return
        write = endpoint in _WRITES
        wait, reason = self._pacer.delay(endpoint, write)
        # "If x-ratelimit-remaining is 0, do not make another request until
        # x-ratelimit-reset" (GitHub's best practices); the last answer's headers, as
        # PyGithub's requester kept them (no request of its own)
        requester = getattr(self._client, "requester", None)
        if requester is not None:
            remaining, limit = requester.rate_limiting
            reset = requester.rate_limiting_resettime
            if limit > 0 and remaining == 0 and reset + 1 - time.time() > wait:
                wait = reset + 1 - time.time()
                reason = f"the API rate limit is used up until {_utc(reset)} UTC"
        if wait > 0:
            left = self.context.budget.remaining()
            if wait > self.max_wait or wait >= left:
                bound = "`max_rate_limit_wait:`" if wait > self.max_wait else "the run's time limit"
                raise ServiceError(
                    SERVICE,
                    f"{action}: not sent: {reason}, and waiting {wait:.0f} s would pass {bound}",
                    hint="run again later, or raise `max_rate_limit_wait:` of the sink",
                )
            time.sleep(wait)
        self._pacer.record(endpoint, write)

    def _failure(self, action: str, exc: Exception) -> ServiceError | None:
        from github import GithubException
        from requests import RequestException

        from angles.helpers import network_failure

        if isinstance(exc, GithubException):
            error = self._error(action, exc)
            wait = _rate_limit_wait(exc)
            if wait is not None:
                error.transient = wait <= self.max_wait
                error.retry_after = wait
            else:
                error.transient = (exc.status or 0) >= 500
            return error
        if isinstance(exc, RequestException):
            message, _hint, transient = network_failure(exc, self.timeout)
            return ServiceError(
                SERVICE,
                f"{action}: {message}",
                hint=f"check `api_url:` of sink {self.name!r} and the network",
                transient=transient,
            )
        if isinstance(exc, AssertionError | ValueError | KeyError | TypeError | AttributeError):
            # PyGithub read an answer that is not the API's JSON (an HTML page, a proxy)
            seen = f": {exc}" if isinstance(exc, _NotTheApi) else f" ({type(exc).__name__})"
            return ServiceError(
                SERVICE,
                f"{action}: the answer was not GitHub's API{seen}",
                hint=f"check `api_url:` of sink {self.name!r}: the API root, such as "
                "https://api.github.com or https://HOST/api/v3",
            )
        return None

    def _error(self, action: str, exc: Any) -> ServiceError:
        status, message = exc.status, _github_message(exc)
        if status == 401:
            return ServiceError(SERVICE, "bad credentials: check GITHUB_TOKEN")
        if _is_rate_limit(exc):
            return _rate_limit_error(exc)
        if status == 404 and self._repo is None:
            return ServiceError(
                SERVICE,
                f"repository {self.repository} not found, or the token cannot see it",
                hint=f"check `repository:` of sink {self.name!r} and that the token may read it",
            )
        if status == 403:
            return ServiceError(
                SERVICE,
                f"{action}: the token may not do this in {self.repository} ({message})",
                hint="the token needs Contents read and write permission (classic tokens: the "
                "repo scope), and the repository must not be archived",
            )
        hint = "GitHub is failing; see https://www.githubstatus.com" if status >= 500 else None
        return ServiceError(SERVICE, f"{action}: HTTP {status}: {message}", hint=hint)

    def _where(self) -> str:
        folder = f"/{self.folder}" if self.folder else ""
        return f"{self.repository}{folder}@{self._branch or 'default branch'}"

    def _head(self, *, create: bool = False) -> _Head | None:
        """The branch and its commit; None when the repository is empty. With ``create``, a
        missing branch starts at the default branch's head."""
        repo = self.repo()
        for branch in dict.fromkeys((self.branch, repo.default_branch)):
            try:
                ref = self.call("reading the branch", repo.get_git_ref, f"heads/{branch}")
            except ServiceError as exc:
                if _status(exc) == 409:
                    return None  # "Git Repository is empty."
                if _status(exc) == 404:
                    if not create or branch == repo.default_branch:
                        return None
                    continue
                raise
            commit = self.call("reading the branch head", repo.get_git_commit, ref.object.sha)
            return _Head(ref if branch == self.branch else None, commit)
        return None

    def _folder_at(self, head: _Head | None) -> dict[str, _Blob]:
        """The blobs directly in the backup folder at ``head``, by file name."""
        if head is None:
            return {}
        repo = self.repo()
        sha = head.commit.tree.sha
        for part in [p for p in self.folder.split("/") if p]:
            tree = self.call("listing the repository", repo.get_git_tree, sha)
            found = [e for e in tree.tree if e.path == part and e.type == "tree"]
            if not found:
                return {}
            sha = found[0].sha
        tree = self.call("listing the backup folder", repo.get_git_tree, sha)
        if tree.truncated:
            raise ServiceError(
                SERVICE,
                f"the folder {self._where()} holds more files than GitHub lists at once",
                hint="set retention_days (or keep_*) so old backups are deleted",
            )
        return {e.path: _Blob(e.sha, e.size or 0) for e in tree.tree if e.type == "blob"}

    @staticmethod
    def _files(folder: dict[str, _Blob]) -> dict[str, _Stored]:
        files: dict[str, _Stored] = {}
        parts: dict[str, dict[str, _Blob]] = {}
        for path, blob in folder.items():
            if path.endswith(MANIFEST_SUFFIX):
                name = path[: -len(MANIFEST_SUFFIX)]
                files.setdefault(name, _Stored(name, 0, blob.sha, split=True))
            elif match := _PART.match(path):
                parts.setdefault(match["name"], {})[path] = blob
            elif path.endswith(BACKUP_SUFFIXES):
                files[path] = _Stored(path, blob.size, blob.sha)
        for stored in files.values():
            if stored.split:
                stored.parts = parts.get(stored.name, {})
                stored.size = sum(blob.size for blob in stored.parts.values())
        return files

    def _manifest(self, stored: _Stored) -> tuple[list[tuple[str, int]], str | None]:
        """The blobs of a split file's parts, as its manifest lists them and the folder
        holds them (a part replaced or missing since is damage)."""
        try:
            manifest = json.loads(self.read_blob(stored.sha))
            listed = [(str(p["name"]), str(p["sha"]), int(p["size"])) for p in manifest["parts"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(
                f"backup {stored.name} is damaged: its manifest is unreadable ({exc})"
            ) from exc
        parts = []
        for number, (name, sha, size) in enumerate(listed, 1):
            found = stored.parts.get(name)
            if found is None or found.sha != sha:
                change = "is missing" if found is None else "was replaced after it was written"
                raise BackupError(
                    f"backup {stored.name} is damaged: part {number} ({name}) {change}",
                    hint="restore another backup (angles backups list shows them)",
                )
            parts.append((sha, size))
        return parts, manifest.get("sha256")

    def read_blob(self, sha: str) -> bytes:
        """The content of one blob."""
        blob = self.call("reading a backup", self.repo().get_git_blob, sha)
        return base64.b64decode(blob.content)

    def upload(self, encoded: str) -> str:
        """Create a blob from its base64 text; returns its SHA."""
        return self.call("uploading a backup", self.repo().create_git_blob, encoded, "base64").sha

    def initialise(self) -> None:
        """Make the first commit of an empty repository (through the Contents API)."""
        path = f"{self.folder}/README.md" if self.folder else "README.md"
        repo = self.repo()
        try:
            self.call(
                "starting the empty repository",
                repo.create_file,
                path,
                "angles: start the backup repository",
                _README,
                branch=self.branch,
            )
        except ServiceError as exc:
            # a retried PUT whose first attempt went through answers 409/422
            if _status(exc) not in (409, 422) or self._head() is None:
                raise

    def _commit(
        self,
        message: str,
        changes: Callable[[dict[str, _Blob]], dict[str, str | None]],
        inline: dict[str, str] | None = None,
    ) -> None:
        """Commit ``changes(folder)`` (path → blob SHA, None deletes; ``inline`` gives the
        text of small new files) on the branch head, rebuilding on the new head while other
        writers move the branch."""
        from github import InputGitTreeElement
        from requests import RequestException

        self._listing = None
        from angles.helpers import RetryPolicy

        repo, problem = self.repo(), ""
        ref_name = f"refs/heads/{self.branch}"
        rebuild = RetryPolicy(self.commit_attempts, backoff=self.retry_backoff, cap=5.0)
        for attempt in range(self.commit_attempts):
            if attempt:
                time.sleep(rebuild.pause(attempt))
            head = self._head(create=True)
            folder = self._folder_at(head)
            wanted = changes(folder)
            pending = {
                p: s for p, s in wanted.items() if (folder[p].sha if p in folder else None) != s
            }
            if not pending:
                return  # already there: nothing to delete, or a write that went through
            if head is None:
                raise ServiceError(SERVICE, f"the repository {self.repository} is empty")
            inline = inline or {}
            elements = [
                InputGitTreeElement(
                    self._path(path),
                    "100644",
                    "blob",
                    **({"content": inline[path]} if path in inline else {"sha": sha}),
                )
                for path, sha in sorted(pending.items())
            ]
            tree = self.call("writing the tree", repo.create_git_tree, elements, head.commit.tree)
            commit = self.call(
                "writing the commit", repo.create_git_commit, message, tree, [head.commit]
            )
            try:
                if head.ref is None:
                    self.call("creating the branch", repo.create_git_ref, ref_name, commit.sha)
                else:
                    self.call("moving the branch", head.ref.edit, commit.sha)
                return
            except ServiceError as exc:
                status = _status(exc)
                unsure = isinstance(exc.__cause__, RequestException) or (status or 0) >= 500
                if status != 422 and not unsure:
                    raise
                problem = exc.message.removeprefix(f"{SERVICE}: ")
            # the branch moved (422), or the update may have gone through: look again
        raise ServiceError(
            SERVICE,
            f"could not move {self.branch} of {self.repository} after "
            f"{self.commit_attempts} attempts ({problem})",
            hint="another process keeps committing to the branch; run again, or give angles "
            "its own `branch:`",
        )

    def _path(self, name: str) -> str:
        return f"{self.folder}/{name}" if self.folder else name


class _Writer:
    """What :meth:`GitHubSink.transaction` yields: uploads each file's parts as it streams.

    It compresses ``.gz`` files itself (``gzips_itself``): the backup engine hands it the
    JSON, which it cuts into parts before compressing each one.
    """

    gzips_itself = True

    def __init__(self, sink: GitHubSink) -> None:
        self.sink = sink
        self.staged: list[_Staged] = []
        self._known: set[str] | None = None  # blob SHAs the repository holds already

    def store(self, name: str, chunks: Iterable[bytes], *, record_count: int | None = None) -> int:
        """Upload one file (in parts when large); it is committed when the transaction ends.

        A part whose blob the backup folder already holds (yesterday's backup had the same
        rows) is not uploaded again.
        """
        _check_name(name)
        part_size = self.sink.part_size
        if name.endswith(".age"):
            pieces = _fixed_parts(chunks, part_size)  # ciphertext never repeats
        else:
            rule = PartRule.for_part_size(part_size, compress=name.endswith(".gz"))
            pieces = stored_parts(chunks, rule)
        digest, size, parts = hashlib.sha256(), 0, []
        new = [0, 0]
        for piece in pieces:
            digest.update(piece)
            size += len(piece)
            sha, uploaded = self._upload(piece)
            parts.append((sha, len(piece)))
            if uploaded:
                new[0] += 1
                new[1] += len(piece)
        if len(parts) == 1:
            staged = _Staged(name, size, record_count, {name: parts[0][0]}, new=(new[0], new[1]))
        else:
            width = max(3, len(str(len(parts))))
            blobs = {f"{name}.part-{i:0{width}}": sha for i, (sha, _) in enumerate(parts, 1)}
            manifest = {
                "format": MANIFEST_FORMAT,
                "name": name,
                "size": size,
                "sha256": digest.hexdigest(),
                "parts": [
                    {"name": path, "sha": sha, "size": part}
                    for path, (sha, part) in zip(blobs, parts, strict=True)
                ],
            }
            text = json.dumps(manifest, indent=1) + "\n"
            blobs[name + MANIFEST_SUFFIX] = _git_blob_sha(text.encode())
            inline = {name + MANIFEST_SUFFIX: text}
            staged = _Staged(name, size, record_count, blobs, inline, (new[0], new[1]))
        self.staged = [s for s in self.staged if s.name != name] + [staged]
        return size

    def _upload(self, data: bytes) -> tuple[str, bool]:
        """The blob SHA of ``data``, uploaded unless the repository holds it already; and
        whether it was uploaded."""
        sha = _git_blob_sha(data)
        if sha in self._existing():
            return sha, False
        encoded = base64.b64encode(data).decode("ascii")
        del data  # the upload holds several copies of the text
        try:
            uploaded = self.sink.upload(encoded)
        except ServiceError as exc:
            if _status(exc) != 409:  # "Git Repository is empty."
                raise
            self.sink.initialise()
            uploaded = self.sink.upload(encoded)
        assert self._known is not None
        self._known.add(uploaded)
        return uploaded, True

    def _existing(self) -> set[str]:
        """The blobs of the backup folder at the branch head, read at the first upload."""
        if self._known is None:
            folder = self.sink._folder_at(self.sink._head())
            self._known = {blob.sha for blob in folder.values()}
        return self._known

    def changes(self, folder: dict[str, _Blob]) -> dict[str, str | None]:
        """The staged files, and deletions of what their names held before (other parts)."""
        names = {s.name for s in self.staged}
        wanted: dict[str, str | None] = {p: None for p in folder if _owner(p) in names}
        for staged in self.staged:
            wanted.update(staged.blobs)
        return wanted

    @property
    def inline(self) -> dict[str, str]:
        return {path: text for s in self.staged for path, text in s.inline.items()}


def _fixed_parts(chunks: Iterable[bytes], part_size: int) -> Iterator[bytes]:
    """The file in parts of ``part_size`` bytes (at least one part, maybe empty)."""
    buffer = bytearray()
    sent = False
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= part_size:
            yield bytes(buffer[:part_size])
            del buffer[:part_size]
            sent = True
    if buffer or not sent:
        yield bytes(buffer)


#: The PyGithub calls that create content (POST, PATCH, PUT, DELETE), as GitHub counts them.
_WRITES = frozenset(
    {"create_git_blob", "create_git_tree", "create_git_commit", "create_git_ref", "edit"}
    | {"create_file", "update_file", "delete_file"}
)


class _Pacer:
    """GitHub's documented secondary rate limits, kept by waiting only when needed.

    GitHub allows 80 content-creating requests a minute and 500 an hour, and 900 points a
    minute per endpoint (a GET costs 1, a write 5); requests are made one at a time, so the
    concurrency limit (100) is never near. PyGithub's own spacing (every request 0.25 s
    apart, every write 1 s) waited whether or not a limit was close.
    """

    #: (requests, seconds): content-creating requests allowed in any such window
    content_limits: ClassVar[tuple[tuple[int, float], ...]] = ((80, 60.0), (500, 3600.0))
    #: (points, seconds) per endpoint
    endpoint_limit: ClassVar[tuple[int, float]] = (900, 60.0)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._writes: deque[float] = deque()
        self._points: dict[str, deque[tuple[float, int]]] = {}

    def delay(self, endpoint: str, write: bool) -> tuple[float, str]:
        """Seconds to wait before a request to ``endpoint`` (0: none), and which limit."""
        now = self._clock()
        wait, reason = 0.0, ""
        with self._lock:
            if write:
                for limit, window in self.content_limits:
                    recent = [t for t in self._writes if t > now - window]
                    if len(recent) < limit:
                        continue
                    # a second a minute to spare: GitHub counts when requests arrive
                    until = recent[-limit] + window * (1 + 1 / 60) - now
                    if until > wait:
                        wait = until
                        reason = (
                            f"GitHub allows {limit} content-creating requests per {_window(window)}"
                        )
            points, window = self.endpoint_limit
            cost = 5 if write else 1
            spent = [(t, p) for t, p in self._points.get(endpoint, ()) if t > now - window]
            total = sum(p for _, p in spent)
            for t, p in spent:  # the wait until enough of the window's points expire
                if total + cost <= points:
                    break
                total -= p
                until = t + window * (1 + 1 / 60) - now
                if until > wait:
                    wait, reason = until, f"GitHub allows {points} points a minute per endpoint"
        return wait, reason

    def record(self, endpoint: str, write: bool) -> None:
        """Count a request that is being sent now."""
        now = self._clock()
        longest = max(window for _, window in self.content_limits)
        with self._lock:
            if write:
                self._writes.append(now)
                while self._writes and self._writes[0] <= now - longest:
                    self._writes.popleft()
            spent = self._points.setdefault(endpoint, deque())
            spent.append((now, 5 if write else 1))
            while spent and spent[0][0] <= now - self.endpoint_limit[1]:
                spent.popleft()


def _window(seconds: float) -> str:
    return {60.0: "minute", 3600.0: "hour"}.get(seconds, f"{seconds:g} s")


def _utc(stamp: float) -> str:
    return f"{datetime.fromtimestamp(stamp, UTC):%Y-%m-%d %H:%M:%S}"


class _BlobStream(io.RawIOBase):
    """The concatenation of blobs, each fetched when reading reaches it (one in memory)."""

    def __init__(
        self, sink: GitHubSink, name: str, parts: list[tuple[str, int]], sha256: str | None
    ) -> None:
        super().__init__()
        self.sink, self.name, self.parts, self.sha256 = sink, name, parts, sha256
        self._data = b""
        self._offset = 0
        self._next = 0
        self._digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while self._offset >= len(self._data):
            if self._next >= len(self.parts):
                self._finish()
                return 0
            sha, size = self.parts[self._next]
            self._data, self._offset = b"", 0
            data = self.sink.read_blob(sha)
            if len(data) != size:
                raise BackupError(
                    f"backup {self.name} is damaged: part {self._next + 1} has {len(data)} "
                    f"bytes instead of {size}"
                )
            if self.sha256:
                self._digest.update(data)
            self._data, self._next = data, self._next + 1
        count = min(len(target), len(self._data) - self._offset)
        with memoryview(self._data) as view:
            target[:count] = view[self._offset : self._offset + count]
        self._offset += count
        return count

    def _finish(self) -> None:
        if self.sha256 and self._digest.hexdigest() != self.sha256:
            raise BackupError(
                f"backup {self.name} is damaged: its parts do not add up to the file the "
                "manifest describes (sha256 differs)"
            )
        self.sha256 = None  # checked once


# -- helpers ---------------------------------------------------------------------------------


class _NotTheApi(ValueError):
    """An answer with HTTP 200 that is not what the GitHub API sends (a login page)."""


def _open_repository(client: Any, repository: str) -> Repository:
    """The repository object, checked to be one: PyGithub takes any 200 answer."""
    from angles.helpers import excerpt, readable_body

    repo = client.get_repo(repository)
    if not isinstance(repo.raw_data.get("default_branch"), str):
        body = repo.raw_data.get("data", repo.raw_data)
        raise _NotTheApi(excerpt(readable_body(str(body)), 120) or "an empty answer")
    return repo


def _check_name(name: str) -> None:
    if (
        not name
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or name.endswith(MANIFEST_SUFFIX)
        or _PART.match(name)
    ):
        raise BackupError(f"{name!r} is not a backup file name")


def _status(exc: ServiceError) -> int | None:
    """The HTTP status of the GitHub answer behind a :class:`ServiceError`, if any."""
    return getattr(exc.__cause__, "status", None)


def _owner(path: str) -> str:
    """The backup file name a folder entry belongs to (itself, or a split file's name)."""
    if path.endswith(MANIFEST_SUFFIX):
        return path[: -len(MANIFEST_SUFFIX)]
    match = _PART.match(path)
    return match["name"] if match else path


def _git_blob_sha(data: bytes) -> str:
    """The SHA git gives a blob of ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _commit_message(subject: str, staged: list[_Staged]) -> str:
    lines = []
    for s in staged:
        records = "" if s.records is None else f"{s.records} records, "
        parts = len(s.blobs) - 1 if s.inline else 0
        split = f" in {parts} parts ({s.new[0]} new, {_human(s.new[1])})" if parts else ""
        lines.append(f"- {s.name}: {records}{_human(s.size)}{split}")
    counts = [s.records for s in staged if s.records is not None]
    total = f", {plural(sum(counts), 'record')}" if counts else ""
    return f"{subject}\n\n{plural(len(staged), 'file')}{total}:\n" + "\n".join(lines) + "\n"


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _github_message(exc: Any) -> str:
    from angles.helpers import excerpt, readable_body

    data = getattr(exc, "data", None)
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, str):
        message = str(data.get("data", "")) if isinstance(data, dict) else str(data or "")
    return excerpt(readable_body(message)) or "no message"


def _header(exc: Any, name: str) -> str | None:
    for key, value in (getattr(exc, "headers", None) or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _is_rate_limit(exc: Any) -> bool:
    from github import RateLimitExceededException

    if isinstance(exc, RateLimitExceededException):
        return True
    if exc.status not in (403, 429):
        return False
    message = _github_message(exc).lower()
    return "rate limit" in message or _header(exc, "x-ratelimit-remaining") == "0"


def _rate_limit_wait(exc: Any) -> float | None:
    """Seconds until a rate limit lifts (None: not a rate limit)."""
    if not _is_rate_limit(exc):
        return None
    after = parse_retry_after(_header(exc, "retry-after"))
    if after is not None:
        return after
    reset = _header(exc, "x-ratelimit-reset")
    if _header(exc, "x-ratelimit-remaining") == "0" and reset and reset.isdigit():
        return max(0.0, int(reset) - time.time()) + 1
    if "secondary" in _github_message(exc).lower():
        return SECONDARY_WAIT  # GitHub: "wait at least one minute"
    return None


def _rate_limit_error(exc: Any) -> ServiceError:
    reset = _header(exc, "x-ratelimit-reset")
    after = getattr(exc, "wait", None) or _header(exc, "retry-after")
    if "secondary" not in _github_message(exc).lower() and reset and reset.isdigit():
        moment = datetime.fromtimestamp(int(reset), UTC)
        minutes = max(0, round((moment - datetime.now(UTC)).total_seconds() / 60))
        return ServiceError(
            SERVICE,
            f"API rate limit exceeded; it resets at {moment:%Y-%m-%d %H:%M:%S} UTC "
            f"(in {minutes} min)",
            hint="run again after the reset, or raise `max_rate_limit_wait:` of the sink",
        )
    wait = f"; it asks to wait {float(after):.0f} s" if after else ""
    return ServiceError(
        SERVICE,
        f"secondary rate limit exceeded (too many requests or writes in a short time){wait}",
        hint="run again in a few minutes",
    )


@hookimpl
def angles_register_sinks(register: Any) -> None:
    register(GitHubSink)
