"""Typed facade over GitHub's REST API for the App: one `GitHubApp`, one client per installation."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import cachetools
from gidgethub import sansio

from bot.github import parse
from bot.github.auth import AppJwt, InstallationTokens
from bot.github.errors import NotFound, ResponseTooLarge, Unauthorized, UnexpectedResponse
from bot.github.models import (
    AppInfo,
    CheckRun,
    CheckRunOutput,
    CheckStatus,
    CommitState,
    GitHubConclusion,
    Installation,
    InstallationToken,
    IssueComment,
    PullRequest,
    PullRequestFiles,
    Reaction,
    RepoRef,
    Review,
    ReviewComment,
    ReviewEvent,
)
from bot.github.payloads import (
    find_marked_comment,
    output_payloads,
    review_comment_payload,
    with_marker,
)
from bot.github.retry import DEFAULT_POLICY, RetryPolicy
from bot.github.transport import (
    Clock,
    Download,
    RetryingGitHubAPI,
    Sleep,
    Transport,
    TransportStats,
    error_for_response,
)

DEFAULT_BASE_URL = "https://api.github.com"
#: GitHub lists at most this many files of a pull request.
MAX_PR_FILES = 3000
PER_PAGE = 100
DEFAULT_TARBALL_MAX_BYTES = 100 * 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class GitHubApp:
    """The App's GitHub access: JWT, token cache, ETag cache and retries, shared process-wide."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        app_id: int | str,
        private_key: str,
        base_url: str = DEFAULT_BASE_URL,
        requester: str = "connector-gate",
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        etag_cache_size: int = 512,
        team_cache_ttl_s: float = 60.0,
    ) -> None:
        self.app_id = int(app_id)
        self.requester = requester
        self.transport = Transport(session, policy=policy, sleep=sleep, clock=clock, rng=rng)
        self.api = RetryingGitHubAPI(
            self.transport,
            requester=requester,
            base_url=base_url.rstrip("/"),
            cache=cachetools.LRUCache(maxsize=etag_cache_size),
        )
        self.jwt = AppJwt(str(self.app_id), private_key, clock=clock)
        self.tokens = InstallationTokens(self._mint_token, clock=clock)
        self.membership_cache: cachetools.TTLCache[tuple[str, ...], bool] = cachetools.TTLCache(
            maxsize=4096, ttl=team_cache_ttl_s, timer=clock
        )
        self._app_info: AppInfo | None = None

    def __repr__(self) -> str:
        return f"GitHubApp(app_id={self.app_id}, base_url={self.api.base_url!r})"

    @property
    def stats(self) -> TransportStats:
        return self.transport.stats

    def installation(self, installation_id: int) -> InstallationClient:
        """A client acting as `installation_id` (cheap; tokens are shared and cached)."""
        return InstallationClient(self, installation_id)

    async def _mint_token(self, installation_id: int) -> InstallationToken:
        url = "/app/installations/{installation_id}/access_tokens"
        with self.api.mapped_errors("POST", url):
            data = await self.api.post(
                url, {"installation_id": installation_id}, data={}, jwt=self.jwt.current()
            )
        return parse.parsed(parse.token, data, "installation token")

    async def _app_get(self, url: str, url_vars: Mapping[str, Any]) -> Any:
        with self.api.mapped_errors("GET", url):
            return await self.api.getitem(url, url_vars, jwt=self.jwt.current())

    async def app_info(self) -> AppInfo:
        """The App itself (id, slug); fetched once."""
        if self._app_info is None:
            data = await self._app_get("/app", {})
            self._app_info = parse.parsed(parse.app_info, data, "app")
        return self._app_info

    async def installations(self) -> tuple[Installation, ...]:
        """Every installation of the App."""
        url = "/app/installations{?per_page}"
        found = []
        with self.api.mapped_errors("GET", url):
            async for item in self.api.getiter(url, {"per_page": PER_PAGE}, jwt=self.jwt.current()):
                found.append(parse.parsed(parse.installation, item, "installation"))
        return tuple(found)

    async def repo_installation_id(self, repo: RepoRef) -> int:
        """Installation id covering `repo` (NotFound when the App is not installed there)."""
        data = await self._app_get(
            "/repos/{owner}/{repo}/installation", {"owner": repo.owner, "repo": repo.name}
        )
        return parse.parsed(parse.installation, data, "installation").id


def _repo_vars(repo: RepoRef, **more: Any) -> dict[str, Any]:
    return {"owner": repo.owner, "repo": repo.name, **more}


def _json_message(body: bytes) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(body).get("message", ""))
    return ""


class InstallationClient:
    """The operations the App performs as one installation, with typed results."""

    def __init__(self, app: GitHubApp, installation_id: int) -> None:
        self.app = app
        self.installation_id = installation_id

    def __repr__(self) -> str:
        return f"InstallationClient(installation_id={self.installation_id})"

    # -- plumbing -------------------------------------------------------------------------

    async def _call(self, method: str, url: str, url_vars: Mapping[str, Any], data: Any) -> Any:
        """One JSON request; a refused cached token is forgotten and the call made once more."""
        api = self.app.api
        for attempt in (1, 2):
            token = await self.app.tokens.token(self.installation_id)
            try:
                with api.mapped_errors(method, url):
                    if method == "GET":
                        return await api.getitem(url, url_vars, oauth_token=token)
                    if method == "POST":
                        return await api.post(url, url_vars, data=data, oauth_token=token)
                    return await api.patch(url, url_vars, data=data, oauth_token=token)
            except Unauthorized:
                self.app.tokens.forget(self.installation_id)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _iter(
        self, url: str, url_vars: Mapping[str, Any], *, key: str = "items"
    ) -> AsyncGenerator[Any, None]:
        """Items of every page (gidgethub follows the Link header)."""
        token = await self.app.tokens.token(self.installation_id)
        pages = self.app.api.getiter(url, url_vars, oauth_token=token, iterable_key=key)
        with self.app.api.mapped_errors("GET", url):
            async with contextlib.aclosing(pages):
                async for item in pages:
                    yield item

    # -- pull requests --------------------------------------------------------------------

    async def get_pull_request(self, repo: RepoRef, number: int) -> PullRequest:
        """The pull request `number`."""
        url = "/repos/{owner}/{repo}/pulls/{pull_number}"
        data = await self._call("GET", url, _repo_vars(repo, pull_number=number), b"")
        return parse.parsed(parse.pull_request, data, "pull request")

    async def list_pull_request_files(self, repo: RepoRef, number: int) -> PullRequestFiles:
        """Changed files, every page; `truncated` when GitHub's 3000-file cap was reached."""
        url = "/repos/{owner}/{repo}/pulls/{pull_number}/files{?per_page}"
        url_vars = _repo_vars(repo, pull_number=number, per_page=PER_PAGE)
        files = []
        async with contextlib.aclosing(self._iter(url, url_vars)) as items:
            async for item in items:
                files.append(parse.parsed(parse.pull_request_file, item, "pull request file"))
                if len(files) >= MAX_PR_FILES:
                    break
        return PullRequestFiles(files=tuple(files), truncated=len(files) >= MAX_PR_FILES)

    async def open_pull_requests_for_sha(
        self, repo: RepoRef, head_sha: str
    ) -> tuple[PullRequest, ...]:
        """Open PRs whose head is `head_sha` (check events from forks carry no PR list)."""
        url = "/repos/{owner}/{repo}/pulls{?state,per_page}"
        url_vars = _repo_vars(repo, state="open", per_page=PER_PAGE)
        found = []
        async with contextlib.aclosing(self._iter(url, url_vars)) as items:
            async for item in items:
                pull = parse.parsed(parse.pull_request, item, "pull request")
                if pull.head_sha == head_sha:
                    found.append(pull)
        return tuple(found)

    async def open_pull_requests(
        self, repo: RepoRef, limit: int = PER_PAGE
    ) -> tuple[PullRequest, ...]:
        """The open PRs of `repo`, most recently updated first, at most `limit`."""
        url = "/repos/{owner}/{repo}/pulls{?state,sort,direction,per_page}"
        url_vars = _repo_vars(
            repo, state="open", sort="updated", direction="desc", per_page=min(limit, PER_PAGE)
        )
        found: list[PullRequest] = []
        async with contextlib.aclosing(self._iter(url, url_vars)) as items:
            async for item in items:
                found.append(parse.parsed(parse.pull_request, item, "pull request"))
                if len(found) >= limit:
                    break
        return tuple(found)

    async def list_reviews(self, repo: RepoRef, number: int) -> tuple[Review, ...]:
        """Every review of the PR, oldest first."""
        url = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews{?per_page}"
        url_vars = _repo_vars(repo, pull_number=number, per_page=PER_PAGE)
        async with contextlib.aclosing(self._iter(url, url_vars)) as items:
            return tuple([parse.parsed(parse.review, item, "review") async for item in items])

    async def create_review(
        self,
        repo: RepoRef,
        number: int,
        *,
        body: str,
        event: ReviewEvent = "COMMENT",
        commit_id: str = "",
        comments: Sequence[ReviewComment] = (),
    ) -> int:
        """Post a review with inline comments on the new side of the diff; returns its id."""
        payload: dict[str, Any] = {"body": body, "event": event}
        if commit_id:
            payload["commit_id"] = commit_id
        if comments:
            payload["comments"] = [review_comment_payload(c) for c in comments]
        url = "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"
        data = await self._call("POST", url, _repo_vars(repo, pull_number=number), payload)
        return parse.parsed(parse.review, data, "review").id

    # -- repository content ---------------------------------------------------------------

    async def get_file_contents(self, repo: RepoRef, path: str, ref: str = "") -> bytes | None:
        """Bytes of the file at `path` (default branch unless `ref`); None when absent."""
        # `{+path}` keeps the slashes: GitHub addresses nested files as real path segments.
        url = "/repos/{owner}/{repo}/contents/{+path}{?ref}"
        url_vars = _repo_vars(repo, path=path.strip("/"), **({"ref": ref} if ref else {}))
        try:
            data = await self._call("GET", url, url_vars, b"")
        except NotFound:
            return None
        if not isinstance(data, Mapping) or data.get("type") != "file":
            raise UnexpectedResponse(f"{path} is not a file", method="GET", url=url)
        if data.get("encoding") != "base64":
            raise ResponseTooLarge(f"{path} is too large for the contents API", url=url)
        return base64.b64decode(str(data.get("content", "")))

    async def download_tarball(
        self,
        repo: RepoRef,
        ref: str,
        dest: Path,
        *,
        max_bytes: int = DEFAULT_TARBALL_MAX_BYTES,
    ) -> int:
        """Stream the gzipped tarball of `ref` to `dest`; returns its size in bytes.

        GitHub answers with a redirect to a signed download URL; we follow it ourselves so
        the installation token is never sent to the download host.
        """
        api, transport = self.app.api, self.app.transport
        template = "/repos/{owner}/{repo}/tarball/{ref}"
        url = sansio.format_url(template, _repo_vars(repo, ref=ref), base_url=api.base_url)
        token = await self.app.tokens.token(self.installation_id)
        headers = sansio.create_headers(self.app.requester, oauth_token=token)
        first = await transport.send("GET", url, headers, allow_redirects=False)
        if first.status not in _REDIRECTS or "location" not in first.headers:
            raise self._final_error(first.status, first.headers, first.body, "GET", url)
        target = urljoin(url, first.headers["location"])
        plain = {"user-agent": self.app.requester}
        second = await transport.send("GET", target, plain, download=Download(dest, max_bytes))
        if second.status != 200:
            raise self._final_error(second.status, second.headers, second.body, "GET", target)
        return second.streamed

    def _final_error(
        self, status: int, headers: Mapping[str, str], body: bytes, method: str, url: str
    ) -> Exception:
        if status < 300:
            return UnexpectedResponse(f"expected a redirect, got {status}", method=method, url=url)
        policy, now = self.app.transport.policy, self.app.transport.clock()
        message = _json_message(body)
        return error_for_response(
            status, headers, message, method=method, url=url, now=now, policy=policy
        )

    # -- check runs -----------------------------------------------------------------------

    async def list_check_runs(
        self, repo: RepoRef, head_sha: str, name: str = ""
    ) -> tuple[CheckRun, ...]:
        """Our latest check runs on `head_sha` (only those called `name`, when given)."""
        url = "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,filter,app_id,per_page}"
        url_vars = _repo_vars(repo, ref=head_sha, filter="latest", app_id=self.app.app_id)
        if name:
            url_vars["check_name"] = name
        url_vars["per_page"] = PER_PAGE
        runs = []
        async with contextlib.aclosing(self._iter(url, url_vars, key="check_runs")) as items:
            async for item in items:
                run = parse.parsed(parse.check_run, item, "check run")
                if run.head_sha == head_sha and (not name or run.name == name):
                    runs.append(run)
        return tuple(runs)

    async def find_check_run(self, repo: RepoRef, head_sha: str, name: str) -> CheckRun | None:
        """Our latest check run called `name` on `head_sha`, if one exists."""
        runs = await self.list_check_runs(repo, head_sha, name)
        return runs[0] if runs else None

    async def create_check_run(
        self,
        repo: RepoRef,
        *,
        name: str,
        head_sha: str,
        external_id: str,
        status: CheckStatus = "in_progress",
        conclusion: GitHubConclusion | None = None,
        details_url: str = "",
        output: CheckRunOutput | None = None,
    ) -> CheckRun:
        """Create a check run (always a new one; see `ensure_check_run`)."""
        payload: dict[str, Any] = {
            "name": name,
            "head_sha": head_sha,
            "external_id": external_id,
            "status": "completed" if conclusion else status,
        }
        if conclusion:
            payload["conclusion"] = conclusion
        if details_url:
            payload["details_url"] = details_url
        outputs = output_payloads(output) if output else []
        if outputs:
            payload["output"] = outputs[0]
        url = "/repos/{owner}/{repo}/check-runs"
        data = await self._call("POST", url, _repo_vars(repo), payload)
        run = parse.parsed(parse.check_run, data, "check run")
        return await self._append_outputs(repo, run, outputs[1:])

    async def ensure_check_run(
        self,
        repo: RepoRef,
        *,
        name: str,
        head_sha: str,
        external_id: str,
        details_url: str = "",
    ) -> CheckRun:
        """The existing run called `name` on `head_sha`, or a new in-progress one.

        Redelivered webhooks and restarted jobs reuse the run instead of stacking duplicates.
        """
        existing = await self.find_check_run(repo, head_sha, name)
        if existing is not None:
            return existing
        return await self.create_check_run(
            repo, name=name, head_sha=head_sha, external_id=external_id, details_url=details_url
        )

    async def update_check_run(
        self,
        repo: RepoRef,
        check_run_id: int,
        *,
        status: CheckStatus | None = None,
        conclusion: GitHubConclusion | None = None,
        output: CheckRunOutput | None = None,
        details_url: str = "",
    ) -> CheckRun:
        """Update a run; text is truncated to GitHub's limits and annotations sent 50 per PATCH."""
        payload: dict[str, Any] = {}
        if status is not None:
            payload["status"] = status
        if conclusion is not None:
            payload["conclusion"] = conclusion
        if details_url:
            payload["details_url"] = details_url
        outputs = output_payloads(output) if output else []
        if outputs:
            payload["output"] = outputs[0]
        run = await self._patch_check_run(repo, check_run_id, payload)
        return await self._append_outputs(repo, run, outputs[1:])

    async def _patch_check_run(
        self, repo: RepoRef, check_run_id: int, payload: Mapping[str, Any]
    ) -> CheckRun:
        url = "/repos/{owner}/{repo}/check-runs/{check_run_id}"
        url_vars = _repo_vars(repo, check_run_id=check_run_id)
        data = await self._call("PATCH", url, url_vars, payload)
        return parse.parsed(parse.check_run, data, "check run")

    async def _append_outputs(
        self, repo: RepoRef, run: CheckRun, outputs: Sequence[Mapping[str, object]]
    ) -> CheckRun:
        """Further annotation batches: GitHub appends the annotations of each update."""
        for output in outputs:
            run = await self._patch_check_run(repo, run.id, {"output": output})
        return run

    async def create_commit_status(
        self,
        repo: RepoRef,
        sha: str,
        *,
        state: CommitState,
        context: str,
        description: str = "",
        target_url: str = "",
    ) -> None:
        """Set a commit status (for setups that require statuses rather than checks)."""
        payload: dict[str, Any] = {"state": state, "context": context}
        if description:
            payload["description"] = description[:140]  # GitHub truncates longer descriptions
        if target_url:
            payload["target_url"] = target_url
        url = "/repos/{owner}/{repo}/statuses/{sha}"
        await self._call("POST", url, _repo_vars(repo, sha=sha), payload)

    # -- people ---------------------------------------------------------------------------

    async def is_team_member(self, org: str, team_slug: str, username: str) -> bool:
        """True when `username` is an active member of `org/team_slug` (cached briefly)."""
        key = (str(self.installation_id), org.lower(), team_slug.lower(), username.lower())
        cached = self.app.membership_cache.get(key)
        if cached is not None:
            return cached
        url = "/orgs/{org}/teams/{team_slug}/memberships/{username}"
        url_vars = {"org": org, "team_slug": team_slug, "username": username}
        try:
            data = await self._call("GET", url, url_vars, b"")
            member = isinstance(data, Mapping) and data.get("state") == "active"
        except NotFound:
            member = False
        self.app.membership_cache[key] = member
        return member

    def forget_team_member(self, org: str, team_slug: str, username: str) -> None:
        """Drop the cached answer for `username` in `org/team_slug` (a membership event came)."""
        key = (str(self.installation_id), org.lower(), team_slug.lower(), username.lower())
        self.app.membership_cache.pop(key, None)

    async def collaborator_permission(self, repo: RepoRef, username: str) -> str:
        """`admin`, `write`, `read` or `none` for `username` on `repo`."""
        url = "/repos/{owner}/{repo}/collaborators/{username}/permission"
        try:
            data = await self._call("GET", url, _repo_vars(repo, username=username), b"")
        except NotFound:
            return "none"
        if not isinstance(data, Mapping) or "permission" not in data:
            raise UnexpectedResponse("permission missing", method="GET", url=url)
        return str(data["permission"])

    # -- conversation ---------------------------------------------------------------------

    async def list_issue_comments(self, repo: RepoRef, number: int) -> tuple[IssueComment, ...]:
        """Every conversation comment of the issue or PR, oldest first."""
        url = "/repos/{owner}/{repo}/issues/{issue_number}/comments{?per_page}"
        url_vars = _repo_vars(repo, issue_number=number, per_page=PER_PAGE)
        async with contextlib.aclosing(self._iter(url, url_vars)) as items:
            return tuple([parse.parsed(parse.issue_comment, i, "comment") async for i in items])

    async def create_issue_comment(self, repo: RepoRef, number: int, body: str) -> IssueComment:
        """Post a new conversation comment."""
        url = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
        data = await self._call("POST", url, _repo_vars(repo, issue_number=number), {"body": body})
        return parse.parsed(parse.issue_comment, data, "comment")

    async def update_issue_comment(self, repo: RepoRef, comment_id: int, body: str) -> IssueComment:
        """Replace the body of a conversation comment."""
        url = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
        url_vars = _repo_vars(repo, comment_id=comment_id)
        data = await self._call("PATCH", url, url_vars, {"body": body})
        return parse.parsed(parse.issue_comment, data, "comment")

    async def upsert_sticky_comment(
        self, repo: RepoRef, number: int, marker: str, body: str
    ) -> IssueComment:
        """Edit the App's own comment carrying `marker`, or post it; never someone else's."""
        text = with_marker(marker, body)
        bot_login = (await self.app.app_info()).bot_login
        existing = find_marked_comment(
            await self.list_issue_comments(repo, number), marker, bot_login
        )
        if existing is None:
            return await self.create_issue_comment(repo, number, text)
        if existing.body == text:
            return existing
        return await self.update_issue_comment(repo, existing.id, text)

    async def add_reaction(self, repo: RepoRef, comment_id: int, content: Reaction) -> None:
        """React to a conversation comment (e.g. 👀 on a `/gate` command)."""
        url = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"
        url_vars = _repo_vars(repo, comment_id=comment_id)
        await self._call("POST", url, url_vars, {"content": content})

    async def add_labels(self, repo: RepoRef, number: int, labels: Sequence[str]) -> None:
        """Add labels to an issue or PR (existing labels stay)."""
        if not labels:
            return
        url = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
        url_vars = _repo_vars(repo, issue_number=number)
        await self._call("POST", url, url_vars, {"labels": list(labels)})
