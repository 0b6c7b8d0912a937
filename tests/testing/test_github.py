"""Fidelity tests of the GitHub imitation, driven by the real PyGithub (never mocked)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from typing import Any

import pytest
import requests
from github import (
    Auth,
    BadCredentialsException,
    Github,
    GithubException,
    GithubRetry,
    InputGitTreeElement,
    RateLimitExceededException,
    UnknownObjectException,
)
from github.GithubException import RateLimitExceededExceedsMaxWait

from angles.testing.github import GitHubServer

REPO = "acme/backups"


def client(server: GitHubServer, token: str | None = None, **options: Any) -> Github:
    """PyGithub pointed at the imitation, throttling off and (unless given) retries off."""
    options.setdefault("retry", None)
    return Github(
        base_url=server.url,
        auth=Auth.Token(token or server.token),
        seconds_between_requests=None,
        seconds_between_writes=None,
        timeout=30,
        **options,
    )


@pytest.fixture
def repo(github_server: GitHubServer):
    """``acme/backups`` with one backup, as PyGithub sees it."""
    github_server.create_repo("acme", "backups", files={"backups/old.json": b'{"old":1}\n'})
    return client(github_server).get_repo(REPO)


# -- repository, user, auth --------------------------------------------------------------


def test_get_repo_and_user(github_server: GitHubServer, repo) -> None:
    g = client(github_server)
    assert g.get_user().login == "angles-bot"
    assert g.oauth_scopes == ["repo"]
    assert repo.full_name == REPO
    assert repo.default_branch == "main"
    assert repo.private is True
    assert repo.permissions.push is True
    # every url points back at the imitation (PyGithub refuses another host)
    assert repo.url == f"{github_server.url}/repos/{REPO}"
    assert g.get_rate_limit().resources.core.limit == 5000


def test_bearer_token_is_accepted(github_server: GitHubServer) -> None:
    github_server.create_repo("acme", "backups")
    reply = requests.get(
        f"{github_server.url}/repos/{REPO}",
        headers={"Authorization": f"Bearer {github_server.token}"},
        timeout=5,
    )
    assert reply.status_code == 200
    assert reply.json()["full_name"] == REPO


def test_bad_and_missing_credentials(github_server: GitHubServer) -> None:
    github_server.create_repo("acme", "backups")
    with pytest.raises(BadCredentialsException) as caught:
        client(github_server, token="ghp_wrong").get_repo(REPO)
    assert caught.value.status == 401
    assert caught.value.data["message"] == "Bad credentials"
    assert caught.value.data["status"] == "401"
    reply = requests.get(f"{github_server.url}/repos/{REPO}", timeout=5)
    assert reply.status_code == 401
    assert reply.json()["message"] == "Requires authentication"


def test_unknown_repo_and_repo_outside_the_token(github_server: GitHubServer) -> None:
    github_server.create_repo("acme", "backups")
    with pytest.raises(UnknownObjectException):
        client(github_server).get_repo("acme/nope")
    other = github_server.add_token(repos=["acme/elsewhere"])
    with pytest.raises(UnknownObjectException):
        client(github_server, token=other).get_repo(REPO)


def test_read_only_token_reads_but_cannot_write(github_server: GitHubServer) -> None:
    github_server.create_repo("acme", "backups", files={"a.json": b"{}"})
    reader = github_server.add_token(write=False)
    repo = client(github_server, token=reader).get_repo(REPO)
    assert repo.permissions.push is False
    assert repo.get_contents("a.json").decoded_content == b"{}"
    with pytest.raises(GithubException) as caught:
        repo.create_file("b.json", "add", "{}")
    assert caught.value.status == 403
    assert "not accessible" in caught.value.data["message"]


# -- Contents API -----------------------------------------------------------------------


def test_create_file_twice_without_sha_is_422(github_server: GitHubServer, repo) -> None:
    made = repo.create_file("backups/2024-01-01.json", "backup", '{"a":1}\n', branch="main")
    assert made["content"].sha == "0187f3b09d66cef7911083ad49f890f5a6589589"  # git's blob sha
    assert len(made["commit"].sha) == 40
    with pytest.raises(GithubException) as caught:
        repo.create_file("backups/2024-01-01.json", "again", '{"a":2}\n', branch="main")
    assert caught.value.status == 422
    assert '"sha" wasn\'t supplied' in caught.value.data["message"]
    assert github_server.read_file(REPO, "backups/2024-01-01.json") == b'{"a":1}\n'
    put = github_server.requests_to(r"/contents/backups/2024-01-01\.json$", "PUT")[0].json()
    assert put == {"message": "backup", "content": "eyJhIjoxfQo=", "branch": "main"}


def test_update_with_current_sha_then_stale_sha_is_409(github_server: GitHubServer, repo) -> None:
    current = repo.get_contents("backups/old.json", ref="main")
    updated = repo.update_file(current.path, "update", b'{"a":2}\n', current.sha, branch="main")
    assert updated["content"].sha != current.sha
    with pytest.raises(GithubException) as caught:
        repo.update_file(current.path, "stale", b'{"a":3}\n', current.sha, branch="main")
    assert caught.value.status == 409
    assert f"but expected {current.sha}" in caught.value.data["message"]
    assert github_server.read_file(REPO, "backups/old.json") == b'{"a":2}\n'


def test_delete_file_sends_json_body(github_server: GitHubServer, repo) -> None:
    current = repo.get_contents("backups/old.json")
    with pytest.raises(GithubException) as caught:
        repo.delete_file(current.path, "prune", "0" * 40, branch="main")
    assert caught.value.status == 409
    result = repo.delete_file(current.path, "prune", current.sha, branch="main")
    assert result["commit"].sha == github_server.branch_head(REPO)
    assert github_server.read_file(REPO, "backups/old.json") is None
    body = github_server.requests_to(r"/contents/", "DELETE")[-1].json()
    assert body == {"message": "prune", "sha": current.sha, "branch": "main"}
    with pytest.raises(UnknownObjectException):
        repo.get_contents("backups/old.json")


def test_folder_listing_is_lazy_per_file(github_server: GitHubServer, repo) -> None:
    repo.create_file("backups/new.json", "add", b'{"new":1}\n', branch="main")
    listing = repo.get_contents("backups", ref="main")
    assert [f.path for f in listing] == ["backups/new.json", "backups/old.json"]
    assert all(f.type == "file" for f in listing)
    before = github_server.count_requests("GET contents")
    assert listing[0].decoded_content == b'{"new":1}\n'  # fetched through its url
    assert github_server.count_requests("GET contents") == before + 1


def test_large_file_has_encoding_none_and_reads_through_git_blob(
    github_server: GitHubServer,
) -> None:
    big = os.urandom(1024 * 1024 + 10)
    github_server.create_repo("acme", "backups", files={"backups/big.bin": big})
    repo = client(github_server).get_repo(REPO)
    found = repo.get_contents("backups/big.bin", ref="main")
    assert found.encoding == "none"
    assert found.content == ""
    assert found.size == len(big)
    with pytest.raises(AssertionError, match="unsupported encoding: none"):
        _ = found.decoded_content
    blob = repo.get_git_blob(found.sha)
    assert blob.encoding == "base64"
    assert blob.content.split("\n", 1)[0] == base64.b64encode(big[:45]).decode()  # 60 a line
    assert base64.b64decode(blob.content) == big
    # the documented other ways: the raw media type and download_url
    raw = requests.get(
        f"{github_server.url}/repos/{REPO}/contents/backups/big.bin",
        headers={
            "Authorization": f"token {github_server.token}",
            "Accept": "application/vnd.github.raw+json",
        },
        timeout=5,
    )
    assert raw.content == big
    assert requests.get(found.download_url, timeout=5).content == big


def test_folder_of_1500_files_lists_1000_via_contents_all_via_tree(
    github_server: GitHubServer,
) -> None:
    files = {f"backups/b{i:04}.json": f'{{"i":{i}}}'.encode() for i in range(1500)}
    github_server.create_repo("acme", "backups", files=files)
    repo = client(github_server).get_repo(REPO)
    assert len(repo.get_contents("backups")) == 1000
    head = repo.get_git_commit(repo.get_git_ref("heads/main").object.sha)
    tree = repo.get_git_tree(head.tree.sha, recursive=True)
    assert tree.truncated is False
    assert sorted(e.path for e in tree.tree if e.type == "blob") == sorted(files)
    assert [e.path for e in tree.tree if e.type == "tree"] == ["backups"]


def test_recursive_tree_listing_truncates(github_server: GitHubServer) -> None:
    github_server.tree_entry_limit = 10
    github_server.create_repo("acme", "backups", files={f"f{i}": b"x" for i in range(20)})
    repo = client(github_server).get_repo(REPO)
    tree = repo.get_git_tree("main", recursive=True)
    assert tree.truncated is True
    assert len(tree.tree) == 10


# -- Git Data API -------------------------------------------------------------------------


def test_git_data_commit_flow_and_non_fast_forward(github_server: GitHubServer, repo) -> None:
    ref = repo.get_git_ref("heads/main")
    head = repo.get_git_commit(ref.object.sha)
    blob = repo.create_git_blob(base64.b64encode(b"big data").decode(), "base64")
    assert blob.sha == "24fb824b27a776516f70679d3d10930ff7d052ec"  # git hash-object
    text = repo.create_git_blob('{"u":1}', "utf-8")
    tree = repo.create_git_tree(
        [
            InputGitTreeElement("backups/a.json", "100644", "blob", sha=blob.sha),
            InputGitTreeElement("backups/u.json", "100644", "blob", sha=text.sha),
            InputGitTreeElement("backups/b.json", "100644", "blob", content='{"b":1}'),
        ],
        base_tree=head.tree,
    )
    commit = repo.create_git_commit("backup: 3 files", tree, [head])
    assert [p.sha for p in commit.parents] == [head.sha]
    ref.edit(commit.sha)
    assert ref.object.sha == commit.sha
    assert github_server.list_files(REPO, prefix="backups/") == {
        "backups/a.json": b"big data",
        "backups/b.json": b'{"b":1}',
        "backups/old.json": b'{"old":1}\n',
        "backups/u.json": b'{"u":1}',
    }
    # ref.edit PATCHes the url of the GET answer: the plural git/refs form
    assert github_server.requests_to(r"/git/refs/heads/main$", "PATCH")
    # back to the old head is not a fast forward; force moves it
    with pytest.raises(GithubException) as caught:
        ref.edit(head.sha)
    assert caught.value.status == 422
    assert caught.value.data["message"] == "Update is not a fast forward"
    ref.edit(head.sha, force=True)
    assert github_server.branch_head(REPO) == head.sha


def test_concurrent_writer_makes_the_ref_update_fail(github_server: GitHubServer, repo) -> None:
    ref = repo.get_git_ref("heads/main")
    head = repo.get_git_commit(ref.object.sha)
    tree = repo.create_git_tree(
        [InputGitTreeElement("backups/new.json", "100644", "blob", content="{}")], head.tree
    )
    commit = repo.create_git_commit("backup", tree, [head])
    moved = github_server.move_branch(REPO, files={"backups/other.json": b"{}"})
    with pytest.raises(GithubException) as caught:
        ref.edit(commit.sha)
    assert caught.value.status == 422
    assert github_server.branch_head(REPO) == moved
    # the Contents API still updates a file the other writer did not touch
    old = repo.get_contents("backups/old.json")
    repo.update_file(old.path, "update", b"{}", old.sha)
    messages = [c.message for c in github_server.list_commits(REPO)]
    assert messages == ["update", "Concurrent change", "Initial commit"]


def test_tree_entry_with_null_sha_deletes(github_server: GitHubServer, repo) -> None:
    head = repo.get_git_commit(repo.get_branch("main").commit.sha)
    tree = repo.create_git_tree(
        [InputGitTreeElement("backups/old.json", "100644", "blob", sha=None)], head.tree
    )
    sent = github_server.requests_to(r"/git/trees$", "POST")[-1].json()
    assert sent["tree"][0]["sha"] is None
    assert tree.tree == []  # the folder went with its only file
    commit = repo.create_git_commit("prune", tree, [head])
    repo.get_git_ref("heads/main").edit(commit.sha)
    assert github_server.list_files(REPO) == {}
    with pytest.raises(GithubException) as caught:  # deleting what is not there
        repo.create_git_tree(
            [InputGitTreeElement("backups/absent.json", "100644", "blob", sha=None)], head.tree
        )
    assert caught.value.status == 422
    assert caught.value.data["message"] == "GitRPC::BadObjectState"


def test_blob_limit_is_100_mib(github_server: GitHubServer, repo) -> None:
    content = base64.b64encode(bytes(100 * 1024 * 1024 + 1)).decode()
    with pytest.raises(GithubException) as caught:
        repo.create_git_blob(content, "base64")
    assert caught.value.status == 422
    assert caught.value.data["message"].startswith("Sorry, your input was too large")


def test_a_60_mib_blob_round_trips_quickly(github_server: GitHubServer, repo) -> None:
    data = os.urandom(60 * 1024 * 1024)
    started = time.monotonic()
    blob = repo.create_git_blob(base64.b64encode(data).decode(), "base64")
    got = repo.get_git_blob(blob.sha)
    assert got.size == len(data)
    assert base64.b64decode(got.content) == data
    assert time.monotonic() - started < 20


def test_create_a_branch_and_write_to_it(github_server: GitHubServer, repo) -> None:
    head = github_server.branch_head(REPO)
    assert head is not None
    created = repo.create_git_ref("refs/heads/backups", head)
    assert created.ref == "refs/heads/backups"
    with pytest.raises(GithubException) as caught:
        repo.create_git_ref("refs/heads/backups", head)
    assert caught.value.status == 422
    repo.create_file("x.json", "on branch", "{}", branch="backups")
    assert github_server.read_file(REPO, "x.json", ref="backups") == b"{}"
    assert github_server.read_file(REPO, "x.json") is None
    with pytest.raises(UnknownObjectException):
        repo.get_branch("nope")


def test_commits_listing_and_path_filter(github_server: GitHubServer, repo) -> None:
    for i in range(3):
        repo.create_file(f"backups/{i}.json", f"backup {i}", "{}")
    repo.create_file("notes.md", "notes", "n")
    all_commits = repo.get_commits()
    assert [c.commit.message for c in all_commits] == [
        "notes",
        "backup 2",
        "backup 1",
        "backup 0",
        "Initial commit",
    ]
    assert all_commits.totalCount == 5
    only = [c.commit.message for c in repo.get_commits(path="backups/1.json")]
    assert only == ["backup 1"]
    single = repo.get_commit(github_server.branch_head(REPO))
    assert [(f.filename, f.status) for f in single.files] == [("notes.md", "added")]


# -- empty repository ------------------------------------------------------------------------


def test_empty_repository_then_first_commit(github_server: GitHubServer) -> None:
    github_server.create_repo("acme", "backups", empty=True)
    repo = client(github_server).get_repo(REPO)
    assert repo.default_branch == "main"
    with pytest.raises(GithubException) as caught:
        repo.get_contents("backups")
    assert (caught.value.status, caught.value.data["message"]) == (404, "This repository is empty.")
    for call in (
        lambda: repo.create_git_blob("eA==", "base64"),
        lambda: repo.get_git_ref("heads/main").object,
    ):
        with pytest.raises(GithubException) as caught:
            call()
        assert (caught.value.status, caught.value.data["message"]) == (
            409,
            "Git Repository is empty.",
        )
    with pytest.raises(UnknownObjectException):
        repo.get_branch("main")
    # the Contents API makes the first commit; the Git Data API works from then on
    made = repo.create_file("backups/first.json", "first backup", "{}", branch="main")
    assert made["commit"].parents == []
    assert github_server.read_file(REPO, "backups/first.json") == b"{}"
    assert repo.get_git_ref("heads/main").object.sha == made["commit"].sha
    assert repo.create_git_blob("eA==", "base64").sha


# -- rate limits and retries -------------------------------------------------------------


def test_rate_limit_headers_on_every_answer(github_server: GitHubServer, repo) -> None:
    reply = requests.get(
        f"{github_server.url}/repos/{REPO}/contents/nope",
        headers={"Authorization": f"token {github_server.token}"},
        timeout=5,
    )
    assert reply.status_code == 404
    assert reply.headers["X-RateLimit-Limit"] == "5000"
    assert reply.headers["X-RateLimit-Resource"] == "core"
    used = int(reply.headers["X-RateLimit-Used"])
    assert int(reply.headers["X-RateLimit-Remaining"]) == 5000 - used
    assert int(reply.headers["X-RateLimit-Reset"]) > time.time()


def test_primary_rate_limit_exhausted(github_server: GitHubServer, repo) -> None:
    github_server.exhaust_rate_limit(reset_in=120)
    with pytest.raises(RateLimitExceededException) as caught:
        repo.get_contents("backups/old.json")
    assert caught.value.status == 403
    assert caught.value.headers["x-ratelimit-remaining"] == "0"
    assert caught.value.data["message"].startswith("API rate limit exceeded for user ID 1.")
    # PyGithub's retry reads X-RateLimit-Reset and refuses to wait that long
    patient = client(github_server, retry=GithubRetry(max_rate_limit_wait=5))
    with pytest.raises(RateLimitExceededExceedsMaxWait):
        patient.get_repo(REPO)


def test_primary_rate_limit_is_waited_out_until_reset(github_server: GitHubServer, repo) -> None:
    patient = client(github_server, retry=GithubRetry()).get_repo(REPO)
    github_server.exhaust_rate_limit(reset_in=1)
    assert patient.get_contents("backups/old.json").decoded_content == b'{"old":1}\n'
    assert github_server.count_requests("GET contents") == 2
    assert patient._requester.rate_limiting[0] == 4999  # a fresh hour after the reset


def test_primary_rate_limit_as_429_is_a_plain_github_exception(
    github_server: GitHubServer, repo
) -> None:
    github_server.exhaust_rate_limit(status=429)
    with pytest.raises(GithubException) as caught:
        repo.get_contents("backups/old.json")
    assert caught.value.status == 429
    assert not isinstance(caught.value, RateLimitExceededException)


def test_secondary_rate_limit_is_retried_after_retry_after(
    github_server: GitHubServer, repo
) -> None:
    github_server.trigger_secondary_rate_limit(retry_after=1, method="PUT")
    patient = client(github_server, retry=GithubRetry()).get_repo(REPO)
    started = time.monotonic()
    patient.create_file("backups/new.json", "add", "{}")
    assert time.monotonic() - started >= 0.9
    assert github_server.count_requests("PUT contents") == 2
    github_server.trigger_secondary_rate_limit(retry_after=None)
    with pytest.raises(RateLimitExceededException) as caught:
        repo.get_contents("backups/new.json")
    assert "secondary rate limit" in caught.value.data["message"]
    assert "Retry-After" not in caught.value.headers


def test_retry_on_a_programmed_5xx(github_server: GitHubServer, repo) -> None:
    github_server.fail(method="PUT", path=r"/contents/", status=502, body="<html>bad</html>")
    patient = client(github_server, retry=GithubRetry()).get_repo(REPO)
    patient.create_file("backups/new.json", "add", "{}")
    assert github_server.count_requests("PUT contents") == 2
    assert github_server.read_file(REPO, "backups/new.json") == b"{}"


def test_a_write_applied_then_failed_is_resent_and_refused(
    github_server: GitHubServer, repo
) -> None:
    github_server.fail_after_applying(method="PUT", path=r"/contents/", status=502)
    patient = client(github_server, retry=GithubRetry()).get_repo(REPO)
    with pytest.raises(GithubException) as caught:
        patient.create_file("backups/new.json", "add", "{}")
    assert caught.value.status == 422  # the retry found the file the first try wrote
    assert github_server.read_file(REPO, "backups/new.json") == b"{}"


def test_request_counts_by_kind(github_server: GitHubServer, repo) -> None:
    repo.create_file("a.json", "a", "{}")
    repo.get_contents("a.json")
    counts = github_server.request_counts()
    assert counts["GET repo"] == 1
    assert counts["PUT contents"] == 1
    assert github_server.count_requests("contents") == 2


# -- details ---------------------------------------------------------------------------------


def test_api_path_prefix_like_github_enterprise() -> None:
    with GitHubServer(prefix="/api/v3") as server:
        server.create_repo("acme", "backups")
        repo = client(server).get_repo(REPO)
        repo.create_file("a.json", "a", "{}")
        assert repo.get_contents("a.json").decoded_content == b"{}"
        assert all(r.path.startswith("/api/v3/") for r in server.requests)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_object_shas_are_the_ones_git_computes(github_server: GitHubServer, tmp_path) -> None:
    files = {"README.md": b"r", "backups/a.json": b'{"a":1}\n', "sub/deep/z": b"x", "sub.txt": b"y"}
    github_server.create_repo("acme", "backups", files=files)
    for path, data in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    git = ["git", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    tree = subprocess.run([*git, "write-tree"], check=True, capture_output=True, text=True)
    (head,) = github_server.list_commits(REPO)
    assert head.tree == tree.stdout.strip()
