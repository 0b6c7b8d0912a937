"""An imitation of the GitHub REST API that the real PyGithub can talk to.

:class:`GitHubServer` keeps repositories in memory as real git objects (blob, tree and commit
SHA-1s are computed the way git computes them) and serves the parts of the REST API that a
backup sink uses: the repository, the Contents API, the Git Data API (blobs, trees, commits,
refs), branches and commits. It checks tokens, sends the ``X-RateLimit-*`` headers on every
answer and can be told to exhaust the primary rate limit or to raise a secondary one.

The behaviour follows what real GitHub does (status codes, messages, size limits):
``/work/shared/reference/services.md`` section 2 lists the sources.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import math
import re
import secrets
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlencode

from angles.testing.server import Fault, RecordedRequest, Response, ServiceServer

__all__ = ["GitCommitObject", "GitHubRepo", "GitHubServer", "GitHubToken", "ObjectSizes"]

DOCS = "https://docs.github.com/rest"
EMPTY_TREE_SHA = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_B64_LINE = re.compile(rb".{1,60}", re.DOTALL)
UNSIGNED = {
    "verified": False,
    "reason": "unsigned",
    "signature": None,
    "payload": None,
    "verified_at": None,
}
# Documented error texts (services.md section 2.4 and the sources it cites).
MSG_EMPTY = "Git Repository is empty."
MSG_BAD_OBJECT = "GitRPC::BadObjectState"
MSG_TOO_LARGE = (
    "Sorry, your input was too large to process. Consider creating the blob in a local "
    "clone of the repository and then pushing it to GitHub."
)
MSG_NO_SHA = 'Invalid request.\n\n"sha" wasn\'t supplied.'
MSG_PRIMARY = (
    "API rate limit exceeded for user ID {user_id}. If you reach out to GitHub Support for "
    "help, please include the request ID {request_id} and timestamp {stamp}."
)
MSG_SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)
TREE_MODES = {
    "100644": "blob",
    "100755": "blob",
    "120000": "blob",
    "040000": "tree",
    "160000": "commit",
}


# -- git objects -------------------------------------------------------------------------


@dataclass
class _Blob:
    data: bytes
    _escaped: bytes | None = None

    def b64_json(self) -> bytes:
        """The base64 of the data with a newline after every 60 characters, as GitHub sends
        it, already escaped for a JSON string (cached: a 100 MB blob takes a second)."""
        if self._escaped is None:
            lines = _B64_LINE.findall(base64.b64encode(self.data))
            self._escaped = b"\\n".join(lines) + b"\\n" if lines else b""
        return self._escaped

    def b64_lines(self) -> str:
        """The same base64 text, unescaped."""
        return self.b64_json().replace(b"\\n", b"\n").decode("ascii")


@dataclass(frozen=True)
class _Entry:
    """One entry of a tree: ``mode`` as the API writes it (``040000`` for trees)."""

    mode: str
    type: str
    sha: str


@dataclass
class _Tree:
    entries: dict[str, _Entry]


@dataclass
class GitCommitObject:
    """A commit as stored by the imitation (returned by the test helpers)."""

    sha: str
    tree: str
    parents: list[str]
    message: str
    author: dict[str, str]
    committer: dict[str, str]


def _git_sha(kind: str, payload: bytes) -> str:
    header = f"{kind} {len(payload)}\0".encode()
    digest = hashlib.sha1(header)
    digest.update(payload)
    return digest.hexdigest()


def _tree_sort_key(item: tuple[str, _Entry]) -> bytes:
    name, entry = item
    # git orders a subtree as if its name ended with "/"
    return (name + "/" if entry.type == "tree" else name).encode()


def _git_signature(person: Mapping[str, str]) -> str:
    stamp = int(_parse_date(person["date"]).timestamp())
    return f"{person['name']} <{person['email']}> {stamp} +0000"


def _parse_date(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ObjectSizes:
    """How much some git objects weigh: what a repository grows by when they are added.

    ``size`` is the objects' content (what ``git cat-file -s`` adds up); ``stored`` is what
    git keeps of them, each zlib-compressed with its header as a pack holds an object
    that is not a delta (GitHub's storage may delta-compress further).
    """

    objects: int = 0
    blobs: int = 0
    size: int = 0
    stored: int = 0


@dataclass
class GitHubRepo:
    """A repository of the imitation: its settings, git objects and refs."""

    owner: str
    name: str
    id: int
    default_branch: str = "main"
    private: bool = True
    archived: bool = False
    objects: dict[str, _Blob | _Tree | GitCommitObject] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=_now_iso)
    #: the raw content of each tree and commit object (blobs keep theirs), for sizes
    raw: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _stored: dict[str, int] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def empty(self) -> bool:
        """True while the repository has no commit at all."""
        return not self.refs

    # -- storing -------------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        sha = _git_sha("blob", data)
        if sha not in self.objects:
            self.objects[sha] = _Blob(data)
        return sha

    def put_tree(self, entries: Mapping[str, _Entry]) -> str:
        ordered = sorted(entries.items(), key=_tree_sort_key)
        raw = b"".join(
            f"{e.mode.lstrip('0')} {name}\0".encode() + bytes.fromhex(e.sha) for name, e in ordered
        )
        sha = _git_sha("tree", raw)
        if sha not in self.objects:
            self.objects[sha] = _Tree(dict(ordered))
            self.raw[sha] = ("tree", raw)
        return sha

    def put_commit(
        self,
        tree: str,
        parents: list[str],
        message: str,
        author: dict[str, str],
        committer: dict[str, str] | None = None,
    ) -> str:
        committer = committer or author
        lines = [f"tree {tree}", *(f"parent {p}" for p in parents)]
        lines += [f"author {_git_signature(author)}", f"committer {_git_signature(committer)}"]
        raw = ("\n".join(lines) + "\n\n" + message).encode()
        sha = _git_sha("commit", raw)
        if sha not in self.objects:
            self.raw[sha] = ("commit", raw)
            self.objects[sha] = GitCommitObject(
                sha, tree, list(parents), message, dict(author), dict(committer)
            )
        return sha

    # -- reading -------------------------------------------------------------------------

    def sizes(self, shas: Iterable[str] | None = None) -> ObjectSizes:
        """How much the objects named (default: every object) weigh; see
        :class:`ObjectSizes`."""
        objects = blobs = size = stored = 0
        for sha in self.objects if shas is None else shas:
            obj = self.objects.get(sha)
            if obj is None:
                continue
            kind, payload = ("blob", obj.data) if isinstance(obj, _Blob) else self.raw[sha]
            if sha not in self._stored:
                header = f"{kind} {len(payload)}\0".encode()
                self._stored[sha] = len(zlib.compress(header + payload))
            objects, size, stored = objects + 1, size + len(payload), stored + self._stored[sha]
            blobs += kind == "blob"
        return ObjectSizes(objects, blobs, size, stored)

    def blob(self, sha: str) -> _Blob | None:
        obj = self.objects.get(sha)
        return obj if isinstance(obj, _Blob) else None

    def tree(self, sha: str) -> _Tree | None:
        if sha == EMPTY_TREE_SHA and sha not in self.objects:
            self.objects[sha] = _Tree({})
        obj = self.objects.get(sha)
        return obj if isinstance(obj, _Tree) else None

    def commit(self, sha: str) -> GitCommitObject | None:
        obj = self.objects.get(sha)
        return obj if isinstance(obj, GitCommitObject) else None

    def resolve(self, ref: str | None) -> str | None:
        """The commit SHA a branch, tag, full ref or (short) commit SHA names."""
        if ref is None:
            ref = self.default_branch
        for candidate in (ref, f"refs/{ref}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if candidate in self.refs:
                return self.refs[candidate]
        lowered = ref.lower()
        if SHA_RE.match(lowered):
            return lowered if self.commit(lowered) else None
        if re.fullmatch(r"[0-9a-f]{7,39}", lowered):
            found = [s for s, o in self.objects.items() if s.startswith(lowered)]
            found = [s for s in found if isinstance(self.objects[s], GitCommitObject)]
            return found[0] if len(found) == 1 else None
        return None

    def lookup(self, tree_sha: str, path: str) -> _Entry | None:
        """The entry at ``path`` below a tree (the root itself for an empty path)."""
        entry = _Entry("040000", "tree", tree_sha)
        for part in [p for p in path.split("/") if p]:
            tree = self.tree(entry.sha) if entry.type == "tree" else None
            if tree is None or part not in tree.entries:
                return None
            entry = tree.entries[part]
        return entry

    def flatten(self, tree_sha: str, prefix: str = "") -> dict[str, _Entry]:
        """Every non-tree entry below a tree, by full path."""
        flat: dict[str, _Entry] = {}
        tree = self.tree(tree_sha)
        for name, entry in (tree.entries if tree else {}).items():
            path = f"{prefix}{name}"
            if entry.type == "tree":
                flat.update(self.flatten(entry.sha, path + "/"))
            else:
                flat[path] = entry
        return flat

    def build(self, flat: Mapping[str, _Entry]) -> str:
        """Store the trees for a flat ``{path: entry}`` map and return the root tree SHA."""
        here: dict[str, _Entry] = {}
        below: dict[str, dict[str, _Entry]] = {}
        for path, entry in flat.items():
            head, sep, rest = path.partition("/")
            if sep:
                below.setdefault(head, {})[rest] = entry
            else:
                here[head] = entry
        for name, sub in below.items():
            here[name] = _Entry("040000", "tree", self.build(sub))
        return self.put_tree(here)

    def walk(self, tree_sha: str, prefix: str = "") -> Iterable[tuple[str, _Entry]]:
        """Every entry below a tree (trees included), depth first in git order."""
        tree = self.tree(tree_sha)
        for name, entry in (tree.entries if tree else {}).items():
            yield f"{prefix}{name}", entry
            if entry.type == "tree":
                yield from self.walk(entry.sha, f"{prefix}{name}/")

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        seen: set[str] = set()
        stack = [descendant]
        while stack:
            sha = stack.pop()
            if sha == ancestor:
                return True
            if sha in seen:
                continue
            seen.add(sha)
            commit = self.commit(sha)
            if commit:
                stack.extend(commit.parents)
        return False

    def history(self, head: str) -> list[GitCommitObject]:
        """The commits reachable from ``head``, newest first (ties keep walk order)."""
        order: list[GitCommitObject] = []
        seen: set[str] = set()
        queue = [head]
        while queue:
            sha = queue.pop(0)
            commit = self.commit(sha)
            if sha in seen or commit is None:
                continue
            seen.add(sha)
            order.append(commit)
            queue.extend(commit.parents)
        indexed = list(enumerate(order))
        indexed.sort(key=lambda ic: (-_parse_date(ic[1].committer["date"]).timestamp(), ic[0]))
        return [c for _, c in indexed]


@dataclass
class GitHubToken:
    """A token the imitation accepts: whose it is, which repos it sees, whether it writes."""

    token: str
    login: str
    user_id: int
    repos: set[str] | None = None  # lower-case "owner/name"; None means every repository
    write: bool = True

    def sees(self, repo: GitHubRepo) -> bool:
        return self.repos is None or repo.full_name.lower() in self.repos


@dataclass
class _Bucket:
    limit: int
    used: int = 0
    reset: int = 0
    status: int = 403


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        doc: str = DOCS,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.doc = doc
        self.errors = errors
        self.headers = headers or {}

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message, "documentation_url": self.doc}
        if self.errors:
            body["errors"] = self.errors
        body["status"] = str(self.status)
        return Response.json(body, self.status, self.headers)


def _not_found(doc: str = DOCS) -> _ApiError:
    return _ApiError(404, "Not Found", doc)


@dataclass
class _Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    kind: str
    handler: Callable[..., Response]
    repo: bool  # the path starts with /repos/{owner}/{repo}


@dataclass
class _Call:
    """What a handler gets: the request, the caller, the repository and the parsed path."""

    request: RecordedRequest
    token: GitHubToken
    repo: GitHubRepo | None
    args: dict[str, str]

    def body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except ValueError as exc:
            raise _ApiError(400, "Problems parsing JSON") from exc
        if not isinstance(data, dict):
            raise _ApiError(400, "Problems parsing JSON")
        return data


# -- the server --------------------------------------------------------------------------


class GitHubServer(ServiceServer):
    """The GitHub REST API imitation (see the module docstring).

    ``url`` is PyGithub's ``base_url``; ``token`` is a token with access to every repository.
    Test helpers: :meth:`create_repo`, :meth:`add_token`, :meth:`read_file`,
    :meth:`list_files`, :meth:`list_commits`, :meth:`branch_head`, :meth:`move_branch`,
    :meth:`request_counts`, :meth:`count_requests`, :meth:`set_rate_limit`,
    :meth:`exhaust_rate_limit`, :meth:`trigger_secondary_rate_limit`,
    :meth:`fail_after_applying`, :meth:`git_objects` and :meth:`object_sizes` (what a run
    added to the repository), :attr:`rate_limited` (the requests refused by a rate limit)
    and :meth:`reset`, plus :meth:`fail` from the base class. Setting
    :attr:`content_writes_per_minute` and :attr:`content_writes_per_hour` enforces GitHub's
    documented secondary limits on writes (80 and 500).
    """

    name = "github"
    #: the Contents API returns ``encoding: "none"`` above this size
    contents_inline_limit = 1024 * 1024
    #: the largest blob (file) GitHub accepts: 100 MiB
    max_blob_size = 100 * 1024 * 1024
    #: the Contents API lists at most this many entries of a directory
    contents_dir_limit = 1000
    #: a recursive tree listing stops (``truncated: true``) after this many entries
    tree_entry_limit = 100_000
    #: the primary rate limit of a token per hour
    rate_limit_per_hour = 5000
    #: when set, more content-creating requests (POST/PATCH/PUT/DELETE) than this within a
    #: minute get a secondary rate limit, as GitHub documents (80); off by default
    content_writes_per_minute: int | None = None
    #: the same within an hour (GitHub documents 500); off by default
    content_writes_per_hour: int | None = None
    #: the "minute" of :attr:`content_writes_per_minute`, shorter in tests of pacing
    content_write_window: float = 60.0

    def __init__(self, host: str = "127.0.0.1", port: int = 0, prefix: str = "") -> None:
        super().__init__(host, port)
        self.prefix = prefix.rstrip("/")
        self._state = threading.RLock()
        self._routes = self._make_routes()
        self._ids = itertools.count(1)
        self.reset()

    @property
    def url(self) -> str:
        """The API root to give PyGithub as ``base_url`` (with the GHE-style prefix if any)."""
        return f"http://{self.host}:{self.port}{self.prefix}"

    @property
    def web_url(self) -> str:
        """Where ``html_url`` and ``download_url`` point (this server, never github.com)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> GitHubServer:
        # a short poll interval makes stop() quick, so a fresh server per test is cheap
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    # -- test helpers --------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every repository, token, rate-limit state, fault and logged request."""
        with self._state:
            self.clear()
            self.repos: dict[str, GitHubRepo] = {}
            self.tokens: dict[str, GitHubToken] = {}
            self._buckets: dict[str, _Bucket] = {}
            self._secondary: list[tuple[Fault, int | None]] = []
            self._after_faults: list[Fault] = []
            self._writes: list[float] = []
            #: the requests answered with a rate limit, as "METHOD path status"
            self.rate_limited: list[str] = []
            self.token = self.add_token(login="angles-bot")

    def add_token(
        self,
        token: str | None = None,
        *,
        login: str = "angles-bot",
        repos: Iterable[str] | None = None,
        write: bool = True,
    ) -> str:
        """Register a token and return it.

        ``repos`` limits it to some ``"owner/name"`` repositories (others answer 404, as for a
        private repository the token cannot see); ``write=False`` makes it read-only (writes
        answer 403 "Resource not accessible by personal access token").
        """
        token = token or "ghp_" + secrets.token_hex(18)
        with self._state:
            known = {t.login: t.user_id for t in self.tokens.values()}
            user_id = known.get(login, len(known) + 1)
            allowed = None if repos is None else {r.lower() for r in repos}
            self.tokens[token] = GitHubToken(token, login, user_id, allowed, write)
        return token

    def create_repo(
        self,
        owner: str,
        name: str,
        *,
        empty: bool = False,
        files: Mapping[str, bytes | str] | None = None,
        default_branch: str = "main",
        private: bool = True,
        archived: bool = False,
    ) -> GitHubRepo:
        """Create a repository: with one commit holding ``files`` (a README when none are
        given), or with no commit at all when ``empty`` is true."""
        with self._state:
            repo = GitHubRepo(owner, name, next(self._ids), default_branch, private, archived)
            self.repos[repo.full_name.lower()] = repo
            if not empty:
                initial = files if files is not None else {"README.md": f"# {name}\n"}
                self._commit_files(repo, default_branch, initial, "Initial commit")
        return repo

    def read_file(self, repo: str, path: str, ref: str | None = None) -> bytes | None:
        """The bytes of a file at a branch head (default branch), or None when absent."""
        with self._state:
            r = self._get_repo(repo)
            head = r.resolve(ref)
            entry = r.lookup(r.commit(head).tree, path) if head else None  # type: ignore[union-attr]
            blob = r.blob(entry.sha) if entry and entry.type == "blob" else None
            return blob.data if blob else None

    def list_files(self, repo: str, ref: str | None = None, prefix: str = "") -> dict[str, bytes]:
        """Every file at a branch head (default branch) whose path starts with ``prefix``."""
        with self._state:
            r = self._get_repo(repo)
            head = r.resolve(ref)
            if head is None:
                return {}
            flat = r.flatten(r.commit(head).tree)  # type: ignore[union-attr]
            return {
                p: r.blob(e.sha).data  # type: ignore[union-attr]
                for p, e in sorted(flat.items())
                if p.startswith(prefix) and e.type == "blob"
            }

    def list_commits(self, repo: str, branch: str | None = None) -> list[GitCommitObject]:
        """The commits of a branch (default branch), newest first."""
        with self._state:
            r = self._get_repo(repo)
            head = r.resolve(branch)
            return r.history(head) if head else []

    def branch_head(self, repo: str, branch: str | None = None) -> str | None:
        """The commit SHA a branch (default branch) points at, or None."""
        with self._state:
            r = self._get_repo(repo)
            return r.refs.get(f"refs/heads/{branch or r.default_branch}")

    def move_branch(
        self,
        repo: str,
        branch: str | None = None,
        *,
        files: Mapping[str, bytes | str | None] | None = None,
        to: str | None = None,
        message: str = "Concurrent change",
    ) -> str:
        """Move a branch behind the client's back, as a concurrent writer would.

        With ``files``, commit them on top of the head (``None`` deletes a path); with ``to``,
        point the branch at that commit (forced). Returns the new head SHA.
        """
        with self._state:
            r = self._get_repo(repo)
            branch = branch or r.default_branch
            if to is not None:
                if r.commit(to) is None:
                    raise KeyError(f"no commit {to} in {repo}")
                r.refs[f"refs/heads/{branch}"] = to
                return to
            return self._commit_files(r, branch, files or {}, message)

    def forget_writes(self) -> None:
        """Forget the writes counted against the secondary limits, as if an hour had
        passed (a benchmark's "next day")."""
        with self._state:
            self._writes = []

    def git_objects(self, repo: str) -> set[str]:
        """The SHAs of every git object a repository holds (blobs, trees, commits)."""
        with self._state:
            return set(self._get_repo(repo).objects)

    def object_sizes(self, repo: str, shas: Iterable[str] | None = None) -> ObjectSizes:
        """How much a repository's objects weigh (only ``shas`` when given): the growth of
        a run is ``object_sizes(repo, git_objects(repo) - before)``."""
        with self._state:
            return self._get_repo(repo).sizes(shas)

    def request_counts(self) -> Counter[str]:
        """How many requests of each kind arrived, for example ``{"PUT contents": 2}``.

        A kind is the method and the endpoint: ``user``, ``rate_limit``, ``repo``,
        ``contents``, ``git/blobs``, ``git/trees``, ``git/commits``, ``git/refs`` (singular
        ``git/ref`` paths count here too), ``branches``, ``commits``, ``raw`` or ``other``.
        """
        counts: Counter[str] = Counter()
        for request in list(self.requests):
            counts[f"{request.method} {self._kind(request.path)}"] += 1
        return counts

    def count_requests(self, kind: str) -> int:
        """The number of requests of a kind: ``"PUT contents"``, or ``"contents"`` for any
        method."""
        counts = self.request_counts()
        if " " in kind:
            return counts[kind]
        return sum(n for k, n in counts.items() if k.split(" ", 1)[1] == kind)

    def set_rate_limit(
        self,
        remaining: int,
        *,
        limit: int | None = None,
        reset_in: float = 3600.0,
        status: int = 403,
        token: str | None = None,
    ) -> None:
        """Set a token's primary rate limit (default: :attr:`token`): ``remaining`` requests
        left until ``reset_in`` seconds from now; once used up, requests answer ``status``
        (403 or 429) with ``x-ratelimit-remaining: 0`` until the reset."""
        with self._state:
            limit = limit if limit is not None else self.rate_limit_per_hour
            bucket = _Bucket(limit, max(0, limit - remaining), math.ceil(time.time() + reset_in))
            bucket.status = status
            self._buckets[token or self.token] = bucket

    def exhaust_rate_limit(
        self, *, reset_in: float = 3600.0, status: int = 403, token: str | None = None
    ) -> None:
        """Use up a token's primary rate limit until ``reset_in`` seconds from now."""
        self.set_rate_limit(0, reset_in=reset_in, status=status, token=token)

    def trigger_secondary_rate_limit(
        self,
        *,
        times: int = 1,
        retry_after: int | None = 60,
        status: int = 403,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests with a secondary rate limit: ``status``
        with GitHub's message and, unless ``retry_after`` is None, a ``Retry-After``."""
        fault = Fault(method=method, path=path, times=times, status=status)
        with self._state:
            self._secondary.append((fault, retry_after))
        return fault

    def fail_after_applying(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        status: int = 502,
        body: bytes | str | Any = b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> Fault:
        """Apply the next ``times`` matching requests, then answer ``status`` (or, with a
        ``delay``, answer late so that a client times out): the production hazard where a
        write succeeded but the client saw a failure and sends it again."""
        fault = Fault(method, path, times, status, body, dict(headers or {}), delay)
        with self._state:
            self._after_faults.append(fault)
        return fault

    # -- request handling ----------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Response:
        """Authenticate, apply the rate limits, route and answer one request."""
        token: GitHubToken | None = None
        try:
            path = self._api_path(request.path)
            if path.startswith("/_raw/"):
                return self._serve_raw(path)
            token = self._authenticate(request)
            with self._state:
                self._check_rate_limits(request, token, path)
                response = self._dispatch(request, token, path)
        except _ApiError as error:
            response = error.response()
        with self._state:
            after = self._take_after_fault(request)
            response.headers.update(self._standard_headers(token))
        if after is not None:
            if after.delay:
                time.sleep(after.delay)  # outside the lock: other requests go on
            if after.status is not None:
                response = Response(after.status, after.body, dict(after.headers))
        return response

    def _api_path(self, raw_path: str) -> str:
        if raw_path.startswith("/_raw/"):
            return raw_path
        if self.prefix:
            if not raw_path.startswith(self.prefix + "/"):
                raise _not_found()
            raw_path = raw_path[len(self.prefix) :]
        return raw_path.rstrip("/") or "/"

    def _authenticate(self, request: RecordedRequest) -> GitHubToken:
        header = (request.header("authorization") or "").strip()
        scheme, _, value = header.partition(" ")
        if not header:
            raise _ApiError(401, "Requires authentication", f"{DOCS}/users/users")
        known = self.tokens.get(value.strip())
        if scheme.lower() not in ("token", "bearer") or known is None:
            raise _ApiError(401, "Bad credentials", DOCS)
        return known

    def _check_rate_limits(self, request: RecordedRequest, token: GitHubToken, path: str) -> None:
        now = time.time()
        bucket = self._bucket(token.token, now)
        request_id = secrets.token_hex(8).upper()
        for i, (fault, retry_after) in enumerate(self._secondary):
            if fault.matches(request.method, request.path):
                fault.times -= 1
                if fault.times <= 0:
                    del self._secondary[i]
                self.rate_limited.append(f"{request.method} {request.path} {fault.status or 403}")
                raise self._secondary_error(fault.status or 403, retry_after, request_id)
        hourly, per_minute = self.content_writes_per_hour, self.content_writes_per_minute
        if request.method in ("POST", "PATCH", "PUT", "DELETE") and (per_minute or hourly):
            self._writes = [t for t in self._writes if t > now - 3600]
            window = self.content_write_window
            recent = [t for t in self._writes if t > now - window]
            if (per_minute and len(recent) >= per_minute) or (
                hourly and len(self._writes) >= hourly
            ):
                self.rate_limited.append(f"{request.method} {request.path} 403")
                raise self._secondary_error(403, 60, request_id)
            self._writes.append(now)
        if path == "/rate_limit":
            return  # does not count against the limit
        if bucket.used >= bucket.limit:
            self.rate_limited.append(f"{request.method} {request.path} {bucket.status}")
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            message = MSG_PRIMARY.format(user_id=token.user_id, request_id=request_id, stamp=stamp)
            doc = f"{DOCS}/overview/rate-limits-for-the-rest-api"
            raise _ApiError(bucket.status, message, doc)
        bucket.used += 1

    def _secondary_error(self, status: int, retry_after: int | None, request_id: str) -> _ApiError:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        doc = (
            "https://docs.github.com/free-pro-team@latest/rest/overview/"
            "rate-limits-for-the-rest-api#about-secondary-rate-limits"
        )
        return _ApiError(status, MSG_SECONDARY.format(request_id=request_id), doc, headers=headers)

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset:
            limit = bucket.limit if bucket else self.rate_limit_per_hour
            if key == "":
                limit = 60
            bucket = _Bucket(limit, 0, math.ceil(now + 3600))
            self._buckets[key] = bucket
        return bucket

    def _standard_headers(self, token: GitHubToken | None) -> dict[str, str]:
        bucket = self._bucket(token.token if token else "", time.time())
        headers = {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(max(0, bucket.limit - bucket.used)),
            "X-RateLimit-Reset": str(bucket.reset),
            "X-RateLimit-Used": str(bucket.used),
            "X-RateLimit-Resource": "core",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
        }
        if token:
            headers["X-OAuth-Scopes"] = "repo" if token.write else "public_repo"
            headers["X-Accepted-OAuth-Scopes"] = "repo"
        return headers

    def _take_after_fault(self, request: RecordedRequest) -> Fault | None:
        for fault in self._after_faults:
            if fault.matches(request.method, request.path):
                fault.times -= 1
                if fault.times <= 0:
                    self._after_faults.remove(fault)
                return fault
        return None

    def _dispatch(self, request: RecordedRequest, token: GitHubToken, path: str) -> Response:
        for route in self._routes:
            match = route.pattern.fullmatch(path)
            if not match or request.method not in route.methods:
                continue
            args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            repo = None
            if route.repo:
                write = request.method != "GET"
                repo = self._repo_for(args.pop("owner"), args.pop("repo"), token, write)
            return route.handler(_Call(request, token, repo, args))
        raise _not_found()

    def _kind(self, raw_path: str) -> str:
        if raw_path.startswith("/_raw/"):
            return "raw"
        path = raw_path[len(self.prefix) :] if self.prefix else raw_path
        path = path.rstrip("/") or "/"
        for route in self._routes:
            if route.pattern.fullmatch(path):
                return route.kind
        return "other"

    def _make_routes(self) -> list[_Route]:
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        table: list[tuple[str, str, str, Callable[..., Response]]] = [
            ("GET", "/user", "user", self._get_user),
            ("GET", "/rate_limit", "rate_limit", self._get_rate_limit),
            ("GET", f"{repo}", "repo", self._get_repo_json),
            ("GET PUT DELETE", f"{repo}/contents(?:/(?P<path>.*))?", "contents", self._contents),
            ("GET", f"{repo}/git/blobs/(?P<sha>[^/]+)", "git/blobs", self._get_blob),
            ("POST", f"{repo}/git/blobs", "git/blobs", self._post_blob),
            ("GET", f"{repo}/git/trees/(?P<sha>.+)", "git/trees", self._get_tree),
            ("POST", f"{repo}/git/trees", "git/trees", self._post_tree),
            ("GET", f"{repo}/git/commits/(?P<sha>[^/]+)", "git/commits", self._get_git_commit),
            ("POST", f"{repo}/git/commits", "git/commits", self._post_git_commit),
            ("GET", f"{repo}/git/refs", "git/refs", self._list_refs),
            ("POST", f"{repo}/git/refs", "git/refs", self._post_ref),
            ("GET", f"{repo}/git/matching-refs/(?P<ref>.*)", "git/refs", self._matching_refs),
            ("GET", f"{repo}/git/ref/(?P<ref>.+)", "git/refs", self._get_ref),
            ("GET", f"{repo}/git/refs/(?P<ref>.+)", "git/refs", self._get_refs_path),
            ("PATCH", f"{repo}/git/refs?/(?P<ref>.+)", "git/refs", self._patch_ref),
            ("DELETE", f"{repo}/git/refs?/(?P<ref>.+)", "git/refs", self._delete_ref),
            ("GET", f"{repo}/branches", "branches", self._list_branches),
            ("GET", f"{repo}/branches/(?P<branch>.+)", "branches", self._get_branch),
            ("GET", f"{repo}/commits", "commits", self._list_commits),
            ("GET", f"{repo}/commits/(?P<ref>.+)", "commits", self._get_commit),
        ]
        return [
            _Route(frozenset(m.split()), re.compile(p), kind, h, p.startswith("/repos/"))
            for m, p, kind, h in table
        ]

    # -- repositories and users ----------------------------------------------------------

    def _get_repo(self, full_name: str) -> GitHubRepo:
        try:
            return self.repos[full_name.lower()]
        except KeyError:
            raise KeyError(f"no repository {full_name!r}") from None

    def _repo_for(self, owner: str, name: str, token: GitHubToken, write: bool) -> GitHubRepo:
        repo = self.repos.get(f"{owner}/{name}".lower())
        if repo is None or not token.sees(repo):
            raise _not_found(f"{DOCS}/repos/repos#get-a-repository")
        if write and not token.write:
            raise _ApiError(403, "Resource not accessible by personal access token", DOCS)
        if write and repo.archived:
            raise _ApiError(403, "Repository was archived so is read-only.", DOCS)
        return repo

    def _api(self, repo: GitHubRepo) -> str:
        return f"{self.url}/repos/{repo.full_name}"

    def _html(self, repo: GitHubRepo) -> str:
        return f"{self.web_url}/{repo.full_name}"

    def _user_json(self, login: str, user_id: int) -> dict[str, Any]:
        return {
            "login": login,
            "id": user_id,
            "node_id": _node_id("U", str(user_id)),
            "type": "User",
            "site_admin": False,
            "url": f"{self.url}/users/{login}",
            "html_url": f"{self.web_url}/{login}",
        }

    def _get_user(self, call: _Call) -> Response:
        user = self._user_json(call.token.login, call.token.user_id)
        user.update({"name": call.token.login, "email": None})
        return Response.json(user)

    def _get_rate_limit(self, call: _Call) -> Response:
        bucket = self._bucket(call.token.token, time.time())
        core = {
            "limit": bucket.limit,
            "used": bucket.used,
            "remaining": max(0, bucket.limit - bucket.used),
            "reset": bucket.reset,
            "resource": "core",
        }
        search = {"limit": 30, "used": 0, "remaining": 30, "reset": bucket.reset}
        graphql = {"limit": 5000, "used": 0, "remaining": 5000, "reset": bucket.reset}
        resources = {"core": core, "search": search, "graphql": graphql}
        return Response.json({"resources": resources, "rate": core})

    def _get_repo_json(self, call: _Call) -> Response:
        repo, write = call.repo, call.token.write
        assert repo is not None
        api, html = self._api(repo), self._html(repo)
        owner = self._user_json(repo.owner, 10_000 + repo.id)
        owner["type"] = "Organization"
        size = sum(len(o.data) for o in repo.objects.values() if isinstance(o, _Blob)) // 1024
        body = {
            "id": repo.id,
            "node_id": _node_id("R", str(repo.id)),
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": owner,
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "description": None,
            "fork": False,
            "archived": repo.archived,
            "disabled": False,
            "default_branch": repo.default_branch,
            "size": size,
            "url": api,
            "html_url": html,
            "git_url": f"git://{self.host}:{self.port}/{repo.full_name}.git",
            "clone_url": f"{html}.git",
            "created_at": repo.created_at,
            "updated_at": _now_iso(),
            "pushed_at": _now_iso(),
            "permissions": {
                "admin": write,
                "maintain": write,
                "push": write,
                "triage": write,
                "pull": True,
            },
        }
        return Response.json(body)

    # -- Contents API --------------------------------------------------------------------

    def _contents(self, call: _Call) -> Response:
        path = call.args.get("path", "").strip("/")
        if call.request.method == "GET":
            return self._get_contents(call, path)
        return self._write_contents(call, path)

    def _content_json(
        self, repo: GitHubRepo, path: str, entry: _Entry, ref: str, with_content: bool
    ) -> dict[str, Any]:
        api, html = self._api(repo), self._html(repo)
        kind = {"tree": "dir", "commit": "submodule"}.get(entry.type, "file")
        if entry.mode == "120000":
            kind = "symlink"
        blob = repo.blob(entry.sha) if entry.type == "blob" else None
        url = f"{api}/contents/{quote(path)}?ref={quote(ref, safe='')}"
        git_kind = "trees" if entry.type == "tree" else "blobs"
        git_url = f"{api}/git/{git_kind}/{entry.sha}" if entry.type != "commit" else None
        html_url = f"{html}/{'tree' if kind == 'dir' else 'blob'}/{quote(ref)}/{quote(path)}"
        body: dict[str, Any] = {
            "type": kind,
            "size": len(blob.data) if blob else 0,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": entry.sha,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": (
                f"{self.web_url}/_raw/{repo.full_name}/{quote(ref)}/{quote(path)}" if blob else None
            ),
            "_links": {"self": url, "git": git_url, "html": html_url},
        }
        if with_content and blob is not None:
            if kind == "symlink":
                body["target"] = blob.data.decode("utf-8", "replace")
            if len(blob.data) > self.contents_inline_limit:
                body.update(encoding="none", content="")
            else:
                body.update(encoding="base64", content=blob.b64_lines())
        return body

    def _get_contents(self, call: _Call, path: str) -> Response:
        repo = call.repo
        assert repo is not None
        doc = f"{DOCS}/repos/contents#get-repository-content"
        if repo.empty:
            raise _ApiError(404, "This repository is empty.", doc)
        ref = call.request.params.get("ref") or repo.default_branch
        head = repo.resolve(ref)
        if head is None:
            raise _ApiError(404, f"No commit found for the ref {ref}", doc)
        commit = repo.commit(head)
        assert commit is not None
        entry = repo.lookup(commit.tree, path)
        if entry is None:
            raise _not_found(doc)
        accept = (call.request.header("accept") or "").lower()
        if entry.type == "blob" and "vnd.github.raw" in accept:
            data = repo.blob(entry.sha).data  # type: ignore[union-attr]
            return Response(200, data, {"Content-Type": "application/vnd.github.raw"})
        if entry.type != "tree":
            return Response.json(self._content_json(repo, path, entry, ref, True))
        tree = repo.tree(entry.sha)
        assert tree is not None
        listing = [
            self._content_json(repo, f"{path}/{name}" if path else name, sub, ref, False)
            for name, sub in sorted(tree.entries.items())[: self.contents_dir_limit]
        ]
        if "vnd.github.object" in accept:
            body = self._content_json(repo, path, entry, ref, False)
            body["entries"] = listing
            return Response.json(body)
        return Response.json(listing)

    def _write_contents(self, call: _Call, path: str) -> Response:
        repo, body = call.repo, call.body()
        assert repo is not None
        deleting = call.request.method == "DELETE"
        anchor = "delete-a-file" if deleting else "create-or-update-file-contents"
        doc = f"{DOCS}/repos/contents#{anchor}"
        if not isinstance(body.get("message"), str):
            raise _ApiError(422, 'Invalid request.\n\n"message" wasn\'t supplied.', doc)
        content: bytes | None = None
        if not deleting:
            if not isinstance(body.get("content"), str):
                raise _ApiError(422, 'Invalid request.\n\n"content" wasn\'t supplied.', doc)
            content = self._decode(body["content"], "base64", doc)
        if not path or any(p in ("", ".", "..") for p in path.split("/")):
            raise _ApiError(422, "path contains a malformed path component", doc)
        branch = body.get("branch") or repo.default_branch
        given = body.get("sha")
        ref_name = f"refs/heads/{branch}"
        head = repo.refs.get(ref_name)
        if head is None and not repo.empty:
            raise _ApiError(404, f"Branch {branch} not found", doc)
        current = None
        if head is not None:
            current = repo.lookup(repo.commit(head).tree, path)  # type: ignore[union-attr]
        if current is not None and current.type == "tree":
            raise _ApiError(422, f'Invalid request.\n\n"{path}" is a directory.', doc)
        if deleting:
            if not isinstance(given, str):
                raise _ApiError(422, MSG_NO_SHA, doc)
            if current is None:
                raise _not_found(doc)
        elif current is not None and not isinstance(given, str):
            raise _ApiError(422, MSG_NO_SHA, doc)
        if current is not None and given != current.sha:
            raise _ApiError(409, f"{path} is at {current.sha} but expected {given}", doc)
        person = self._person(call.token, body.get("author"))
        committer = self._person(call.token, body.get("committer"))
        sha = self._commit_files(
            repo, branch, {path: content}, body["message"], author=person, committer=committer
        )
        commit = repo.commit(sha)
        assert commit is not None
        result: dict[str, Any] = {"content": None, "commit": self._git_commit_json(repo, commit)}
        if not deleting:
            entry = repo.lookup(commit.tree, path)
            assert entry is not None
            result["content"] = self._content_json(repo, path, entry, branch, False)
        return Response.json(result, 201 if current is None and not deleting else 200)

    def _commit_files(
        self,
        repo: GitHubRepo,
        branch: str,
        files: Mapping[str, bytes | str | None],
        message: str,
        author: dict[str, str] | None = None,
        committer: dict[str, str] | None = None,
    ) -> str:
        """Commit file changes on top of a branch (creating it, and the first commit of an
        empty repository) and move the branch."""
        ref_name = f"refs/heads/{branch}"
        head = repo.refs.get(ref_name)
        base = repo.commit(head) if head else None
        flat = repo.flatten(base.tree) if base else {}
        for path, data in files.items():
            path = path.strip("/")
            if data is None:
                flat.pop(path, None)
                continue
            raw = data.encode() if isinstance(data, str) else bytes(data)
            flat = {p: e for p, e in flat.items() if not p.startswith(path + "/")}
            for parent in itertools.accumulate(path.split("/")[:-1], lambda a, b: f"{a}/{b}"):
                flat.pop(parent, None)  # a file where a folder now goes
            flat[path] = _Entry("100644", "blob", repo.put_blob(raw))
        if repo.empty:
            repo.default_branch = branch
        person = author or {
            "name": "angles-bot",
            "email": "angles-bot@users.noreply.github.com",
            "date": _now_iso(),
        }
        sha = repo.put_commit(
            repo.build(flat), [head] if head else [], message, person, committer or person
        )
        repo.refs[ref_name] = sha
        return sha

    def _person(self, token: GitHubToken, given: Any) -> dict[str, str]:
        person = {
            "name": token.login,
            "email": f"{token.user_id}+{token.login}@users.noreply.github.com",
            "date": _now_iso(),
        }
        if isinstance(given, dict):
            person.update({k: str(v) for k, v in given.items() if k in person and v})
        return person

    def _decode(self, content: str, encoding: str, doc: str) -> bytes:
        if encoding == "utf-8":
            data = content.encode("utf-8")
        elif encoding == "base64":
            if len(content) * 3 // 4 > self.max_blob_size + 3:
                raise _ApiError(422, MSG_TOO_LARGE, doc)
            try:
                data = base64.b64decode(content)
            except (binascii.Error, ValueError) as exc:
                raise _ApiError(
                    422, "Invalid request.\n\ncontent is not valid Base64.", doc
                ) from exc
        else:
            errors = [{"resource": "Blob", "field": "encoding", "code": "invalid"}]
            raise _ApiError(422, f"encoding must be utf-8 or base64, not {encoding}", doc, errors)
        if len(data) > self.max_blob_size:
            raise _ApiError(422, MSG_TOO_LARGE, doc)
        return data

    def _serve_raw(self, path: str) -> Response:
        # /_raw/{owner}/{repo}/{ref}/{path}: the imitation of raw.githubusercontent.com
        parts = [unquote(p) for p in path.split("/")[2:]]
        with self._state:
            repo = self.repos.get("/".join(parts[:2]).lower()) if len(parts) > 3 else None
            head = repo.resolve(parts[2]) if repo else None
            if repo is None or head is None:
                return Response(404, "404: Not Found", {"Content-Type": "text/plain"})
            entry = repo.lookup(repo.commit(head).tree, "/".join(parts[3:]))  # type: ignore[union-attr]
            blob = repo.blob(entry.sha) if entry else None
        if blob is None:
            return Response(404, "404: Not Found", {"Content-Type": "text/plain"})
        return Response(200, blob.data, {"Content-Type": "text/plain; charset=utf-8"})

    # -- Git Data API ----------------------------------------------------------------------

    @staticmethod
    def _require_commits(repo: GitHubRepo | None, doc: str) -> GitHubRepo:
        assert repo is not None
        if repo.empty:
            raise _ApiError(409, MSG_EMPTY, doc)
        return repo

    def _get_blob(self, call: _Call) -> Response:
        doc = f"{DOCS}/git/blobs#get-a-blob"
        repo = self._require_commits(call.repo, doc)
        sha = call.args["sha"].lower()
        blob = repo.blob(sha)
        if blob is None:
            raise _not_found(doc)
        meta = {
            "sha": sha,
            "node_id": _node_id("B", sha),
            "size": len(blob.data),
            "url": f"{self._api(repo)}/git/blobs/{sha}",
            "encoding": "base64",
        }
        # spliced in rather than json.dumps'ed: base64 needs no escaping but the newlines
        payload = json.dumps(meta).encode()[:-1] + b', "content": "' + blob.b64_json() + b'"}'
        return Response(200, payload, {"Content-Type": "application/json; charset=utf-8"})

    def _post_blob(self, call: _Call) -> Response:
        doc = f"{DOCS}/git/blobs#create-a-blob"
        repo = self._require_commits(call.repo, doc)
        body = call.body()
        content = body.get("content")
        if not isinstance(content, str):
            errors = [{"resource": "Blob", "field": "content", "code": "missing_field"}]
            raise _ApiError(422, 'Invalid request.\n\n"content" wasn\'t supplied.', doc, errors)
        data = self._decode(content, body.get("encoding") or "utf-8", doc)
        sha = repo.put_blob(data)
        return Response.json({"sha": sha, "url": f"{self._api(repo)}/git/blobs/{sha}"}, 201)

    def _tree_json(self, repo: GitHubRepo, sha: str, recursive: bool) -> dict[str, Any]:
        api = self._api(repo)
        if recursive:
            items = list(itertools.islice(repo.walk(sha), self.tree_entry_limit + 1))
        else:
            items = list(repo.tree(sha).entries.items())  # type: ignore[union-attr]
        truncated = len(items) > self.tree_entry_limit
        listing = []
        for path, entry in items[: self.tree_entry_limit]:
            item: dict[str, Any] = {
                "path": path,
                "mode": entry.mode,
                "type": entry.type,
                "sha": entry.sha,
            }
            if entry.type == "blob":
                item["size"] = len(repo.blob(entry.sha).data)  # type: ignore[union-attr]
                item["url"] = f"{api}/git/blobs/{entry.sha}"
            elif entry.type == "tree":
                item["url"] = f"{api}/git/trees/{entry.sha}"
            listing.append(item)
        return {
            "sha": sha,
            "url": f"{api}/git/trees/{sha}",
            "tree": listing,
            "truncated": truncated,
        }

    def _get_tree(self, call: _Call) -> Response:
        doc = f"{DOCS}/git/trees#get-a-tree"
        repo = self._require_commits(call.repo, doc)
        wanted = call.args["sha"]
        sha = wanted.lower()
        if repo.tree(sha) is None:
            commit = repo.commit(sha) or repo.commit(repo.resolve(wanted) or "")
            if commit is None:
                raise _not_found(doc)
            sha = commit.tree
        recursive = call.request.params.get("recursive", "") not in ("", "0", "false")
        return Response.json(self._tree_json(repo, sha, recursive))

    def _post_tree(self, call: _Call) -> Response:
        doc = f"{DOCS}/git/trees#create-a-tree"
        repo = self._require_commits(call.repo, doc)
        body = call.body()
        entries = body.get("tree")
        if not isinstance(entries, list):
            raise _ApiError(422, 'Invalid request.\n\n"tree" wasn\'t supplied.', doc)
        base = body.get("base_tree")
        flat: dict[str, _Entry] = {}
        if base:
            base_tree = repo.tree(str(base).lower())
            if base_tree is None:
                errors = [{"resource": "Tree", "field": "base_tree", "code": "invalid"}]
                raise _ApiError(422, MSG_BAD_OBJECT, doc, errors)
            flat = repo.flatten(str(base).lower())
        bad = _ApiError(422, MSG_BAD_OBJECT, doc)
        for item in entries:
            if not isinstance(item, dict):
                raise _ApiError(400, "Problems parsing JSON")
            path = str(item.get("path") or "")
            mode, kind = str(item.get("mode") or ""), str(item.get("type") or "")
            if (
                not path
                or path.startswith("/")
                or any(p in ("", ".", "..", ".git") for p in path.split("/"))
            ):
                raise _ApiError(422, "tree.path contains a malformed path component", doc)
            if TREE_MODES.get(mode.zfill(6)) is None:
                raise _ApiError(422, f"tree.mode is not a valid mode: {mode}", doc)
            mode = mode.zfill(6)
            if kind not in ("blob", "tree", "commit"):
                raise _ApiError(422, f"tree.type is not a valid type: {kind}", doc)
            has_sha, has_content = "sha" in item, "content" in item
            if has_sha == has_content:
                raise _ApiError(
                    422,
                    "Must supply either tree.sha or tree.content. "
                    "Request will be rejected if both are present.",
                    doc,
                )
            under = [p for p in flat if p.startswith(path + "/")]
            if has_sha and item["sha"] is None:  # a null sha deletes the path
                if path not in flat and not under:
                    raise bad
                flat.pop(path, None)
                for p in under:
                    del flat[p]
                continue
            if has_content:
                if kind != "blob":
                    raise _ApiError(422, "tree.content may only be given for a blob", doc)
                sha = repo.put_blob(str(item["content"]).encode("utf-8"))
            else:
                sha = str(item["sha"]).lower()
                known = {"blob": repo.blob, "tree": repo.tree}.get(kind)
                if not SHA_RE.match(sha) or (known is not None and known(sha) is None):
                    raise bad
            for p in under:
                del flat[p]
            for p in [p for p in flat if path.startswith(p + "/")]:
                del flat[p]  # a file where a folder now goes
            if kind == "tree":
                flat.pop(path, None)
                flat.update({f"{path}/{p}": e for p, e in repo.flatten(sha).items()})
            else:
                flat[path] = _Entry(mode, kind, sha)
        sha = repo.build(flat)
        return Response.json(self._tree_json(repo, sha, False), 201)

    def _git_commit_json(self, repo: GitHubRepo, commit: GitCommitObject) -> dict[str, Any]:
        api, html = self._api(repo), self._html(repo)
        return {
            "sha": commit.sha,
            "node_id": _node_id("C", commit.sha),
            "url": f"{api}/git/commits/{commit.sha}",
            "html_url": f"{html}/commit/{commit.sha}",
            "author": dict(commit.author),
            "committer": dict(commit.committer),
            "tree": {"sha": commit.tree, "url": f"{api}/git/trees/{commit.tree}"},
            "message": commit.message,
            "parents": [
                {"sha": p, "url": f"{api}/git/commits/{p}", "html_url": f"{html}/commit/{p}"}
                for p in commit.parents
            ],
            "verification": dict(UNSIGNED),
        }

    def _get_git_commit(self, call: _Call) -> Response:
        doc = f"{DOCS}/git/commits#get-a-commit-object"
        repo = self._require_commits(call.repo, doc)
        commit = repo.commit(call.args["sha"].lower())
        if commit is None:
            raise _not_found(doc)
        return Response.json(self._git_commit_json(repo, commit))

    def _post_git_commit(self, call: _Call) -> Response:
        doc = f"{DOCS}/git/commits#create-a-commit"
        repo = self._require_commits(call.repo, doc)
        body = call.body()
        message, tree = body.get("message"), str(body.get("tree") or "").lower()
        if not isinstance(message, str):
            raise _ApiError(422, 'Invalid request.\n\n"message" wasn\'t supplied.', doc)
        if repo.tree(tree) is None:
            raise _ApiError(422, "Tree SHA does not exist", doc)
        parents = [str(p).lower() for p in body.get("parents") or []]
        if any(repo.commit(p) is None for p in parents):
            raise _ApiError(422, "Parent SHA does not exist or is not a commit object", doc)
        author = self._person(call.token, body.get("author"))
        committer = self._person(call.token, body.get("committer") or body.get("author"))
        sha = repo.put_commit(tree, parents, message, author, committer)
        return Response.json(self._git_commit_json(repo, repo.commit(sha)), 201)  # type: ignore[arg-type]

    def _ref_json(self, repo: GitHubRepo, name: str) -> dict[str, Any]:
        api, sha = self._api(repo), repo.refs[name]
        kind = "commit" if repo.commit(sha) else "tag"
        return {
            "ref": name,
            "node_id": _node_id("REF", f"{repo.id}:{name}"),
            "url": f"{api}/git/{quote(name)}",
            "object": {"type": kind, "sha": sha, "url": f"{api}/git/{kind}s/{sha}"},
        }

    def _paginate(self, call: _Call, items: list[Any]) -> Response:
        params = call.request.params
        try:
            per_page = min(100, max(1, int(params.get("per_page", 30))))
            page = max(1, int(params.get("page", 1)))
        except ValueError as exc:
            raise _ApiError(422, "Invalid request.\n\nper_page and page must be numbers.") from exc
        last = max(1, math.ceil(len(items) / per_page))
        links = []
        for rel, number in (("prev", page - 1), ("next", page + 1), ("first", 1), ("last", last)):
            if (rel in ("prev", "first") and page > 1) or (rel in ("next", "last") and page < last):
                query = urlencode({**params, "per_page": per_page, "page": number})
                links.append(
                    f'<{self.url}{self._api_path(call.request.path)}?{query}>; rel="{rel}"'
                )
        headers = {"Link": ", ".join(links)} if links else {}
        return Response.json(items[(page - 1) * per_page : page * per_page], headers=headers)

    def _list_refs(self, call: _Call) -> Response:
        repo = self._require_commits(call.repo, f"{DOCS}/git/refs#list-matching-references")
        return self._paginate(call, [self._ref_json(repo, n) for n in sorted(repo.refs)])

    def _matching_refs(self, call: _Call) -> Response:
        repo = self._require_commits(call.repo, f"{DOCS}/git/refs#list-matching-references")
        prefix = "refs/" + call.args.get("ref", "")
        names = [n for n in sorted(repo.refs) if n.startswith(prefix)]
        return self._paginate(call, [self._ref_json(repo, n) for n in names])

    def _get_ref(self, call: _Call) -> Response:
        doc = f"{DOCS}/git/refs#get-a-reference"
        repo = self._require_commits(call.repo, doc)
        name = "refs/" + call.args["ref"]
        if name not in repo.refs:
            raise _not_found(doc)
        return Response.json(self._ref_json(repo, name))

    def _get_refs_path(self, call: _Call) -> Response:
        # the older plural form: an exact ref, or the refs under a prefix as a list
        doc = f"{DOCS}/git/refs#get-a-reference"
        repo = self._require_commits(call.repo, doc)
        name = "refs/" + call.args["ref"]
        if name in repo.refs:
            return Response.json(self._ref_json(repo, name))
        names = [n for n in sorted(repo.refs) if n.startswith(name + "/")]
        if not names:
            raise _not_found(doc)
        return Response.json([self._ref_json(repo, n) for n in names])

    def _post_ref(self, call: _Call) -> Response:
        doc = f"{DOCS}/git/refs#create-a-reference"
        repo = self._require_commits(call.repo, doc)
        body = call.body()
        name, sha = str(body.get("ref") or ""), str(body.get("sha") or "").lower()
        if not name.startswith("refs/") or name.count("/") < 2:
            raise _ApiError(422, "Reference name must start with 'refs/' and have two slashes", doc)
        if name in repo.refs:
            raise _ApiError(422, "Reference already exists", doc)
        if sha not in repo.objects:
            raise _ApiError(422, "Object does not exist", doc)
        repo.refs[name] = sha
        return Response.json(self._ref_json(repo, name), 201)

    def _patch_ref(self, call: _Call) -> Response:
        doc = f"{DOCS}/git/refs#update-a-reference"
        repo = self._require_commits(call.repo, doc)
        body = call.body()
        name, sha = "refs/" + call.args["ref"], str(body.get("sha") or "").lower()
        if name not in repo.refs:
            raise _ApiError(422, "Reference does not exist", doc)
        if sha not in repo.objects:
            raise _ApiError(422, "Object does not exist", doc)
        old = repo.refs[name]
        if not body.get("force") and not repo.is_ancestor(old, sha):
            raise _ApiError(422, "Update is not a fast forward", doc)
        repo.refs[name] = sha
        return Response.json(self._ref_json(repo, name))

    def _delete_ref(self, call: _Call) -> Response:
        doc = f"{DOCS}/git/refs#delete-a-reference"
        repo = self._require_commits(call.repo, doc)
        name = "refs/" + call.args["ref"]
        if name not in repo.refs:
            raise _ApiError(422, "Reference does not exist", doc)
        del repo.refs[name]
        return Response(204)

    # -- branches and commits --------------------------------------------------------------

    def _commit_json(self, repo: GitHubRepo, commit: GitCommitObject) -> dict[str, Any]:
        api, html = self._api(repo), self._html(repo)
        git = self._git_commit_json(repo, commit)
        return {
            "sha": commit.sha,
            "node_id": git["node_id"],
            "commit": {
                "author": git["author"],
                "committer": git["committer"],
                "message": commit.message,
                "tree": git["tree"],
                "url": git["url"],
                "comment_count": 0,
                "verification": git["verification"],
            },
            "url": f"{api}/commits/{commit.sha}",
            "html_url": git["html_url"],
            "comments_url": f"{api}/commits/{commit.sha}/comments",
            "author": None,
            "committer": None,
            "parents": [
                {"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{html}/commit/{p}"}
                for p in commit.parents
            ],
        }

    def _branch_json(self, repo: GitHubRepo, name: str) -> dict[str, Any]:
        api = self._api(repo)
        commit = repo.commit(repo.refs[f"refs/heads/{name}"])
        assert commit is not None
        protection = {"enabled": False, "required_status_checks": {"enforcement_level": "off"}}
        return {
            "name": name,
            "commit": self._commit_json(repo, commit),
            "_links": {
                "self": f"{api}/branches/{quote(name)}",
                "html": f"{self._html(repo)}/tree/{quote(name)}",
            },
            "protected": False,
            "protection": protection,
            "protection_url": f"{api}/branches/{quote(name)}/protection",
        }

    def _list_branches(self, call: _Call) -> Response:
        repo = call.repo
        assert repo is not None
        names = sorted(n[len("refs/heads/") :] for n in repo.refs if n.startswith("refs/heads/"))
        items = []
        for name in names:
            branch = self._branch_json(repo, name)
            items.append(
                {
                    "name": name,
                    "commit": {"sha": branch["commit"]["sha"], "url": branch["commit"]["url"]},
                    "protected": False,
                }
            )
        return self._paginate(call, items)

    def _get_branch(self, call: _Call) -> Response:
        repo = call.repo
        assert repo is not None
        name = call.args["branch"]
        if f"refs/heads/{name}" not in repo.refs:
            raise _ApiError(404, "Branch not found", f"{DOCS}/branches/branches#get-a-branch")
        return Response.json(self._branch_json(repo, name))

    def _changed(self, repo: GitHubRepo, commit: GitCommitObject, path: str) -> bool:
        parent = repo.commit(commit.parents[0]) if commit.parents else None
        mine = repo.lookup(commit.tree, path)
        theirs = repo.lookup(parent.tree, path) if parent else None
        return mine != theirs

    def _list_commits(self, call: _Call) -> Response:
        doc = f"{DOCS}/commits/commits#list-commits"
        repo = self._require_commits(call.repo, doc)
        params = call.request.params
        ref = params.get("sha") or repo.default_branch
        head = repo.resolve(ref)
        if head is None:
            raise _not_found(doc)
        commits = repo.history(head)
        if params.get("path"):
            commits = [c for c in commits if self._changed(repo, c, params["path"].strip("/"))]
        for key, keep in (("since", lambda d, b: d >= b), ("until", lambda d, b: d <= b)):
            if params.get(key):
                bound = _parse_date(params[key])
                commits = [c for c in commits if keep(_parse_date(c.committer["date"]), bound)]
        return self._paginate(call, [self._commit_json(repo, c) for c in commits])

    def _get_commit(self, call: _Call) -> Response:
        doc = f"{DOCS}/commits/commits#get-a-commit"
        repo = self._require_commits(call.repo, doc)
        sha = repo.resolve(call.args["ref"])
        commit = repo.commit(sha) if sha else None
        if commit is None:
            raise _ApiError(422, f"No commit found for SHA: {call.args['ref']}", doc)
        body = self._commit_json(repo, commit)
        parent = repo.commit(commit.parents[0]) if commit.parents else None
        before = repo.flatten(parent.tree) if parent else {}
        after = repo.flatten(commit.tree)
        files = []
        for path in sorted(set(before) | set(after)):
            old, new = before.get(path), after.get(path)
            if old == new:
                continue
            status = "added" if old is None else "removed" if new is None else "modified"
            files.append(
                {
                    "sha": (new or old).sha,
                    "filename": path,
                    "status": status,  # type: ignore[union-attr]
                    "additions": 0,
                    "deletions": 0,
                    "changes": 0,
                }
            )
        body.update(files=files, stats={"total": 0, "additions": 0, "deletions": 0})
        return Response.json(body)


def _node_id(kind: str, key: str) -> str:
    return base64.b64encode(f"{kind}_{key}".encode()).decode().rstrip("=")
