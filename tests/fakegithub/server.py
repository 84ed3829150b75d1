"""A fake GitHub REST API (aiohttp) that checks every request against the OpenAPI subset."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web

from tests.fakegithub.spec import UNCHECKED_RESPONSES, Operation, Spec, load_spec
from tests.fakegithub.state import (
    FakeInstallation,
    FakePull,
    FakePullFile,
    FakeRepo,
    Fault,
    LoggedRequest,
    Recorded,
    Violation,
    next_id,
)
from tests.fakegithub.tarballs import TarMember, build_tarball, github_prefix

#: GitHub lists at most this many files of a pull request.
MAX_PR_FILES = 3000
JWT_MAX_LIFETIME_S = 600
CLOCK_LEEWAY_S = 60


class Fail(Exception):
    """Answer with an error status and GitHub's error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Reply:
    status: int
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    op: Operation
    params: dict[str, str]
    query: Mapping[str, str]
    json: Any
    request: web.Request
    installation: FakeInstallation | None = None


def iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _right_side_lines(patch: str | None) -> set[int]:
    """Line numbers of the new file that appear in a unified diff (commentable on RIGHT)."""
    lines: set[int] = set()
    current = 0
    for text in (patch or "").splitlines():
        header = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@", text)
        if header:
            current = int(header.group(1))
        elif current and not text.startswith("-"):
            lines.add(current)
            current += 1
    return lines


class FakeGitHub:
    """State, fault injection and the aiohttp app of the fake GitHub."""

    def __init__(
        self,
        *,
        public_key_pem: str,
        app_id: int = 1,
        app_slug: str = "connector-gate",
        clock: Callable[[], float] = time.time,
        token_lifetime_s: float = 3600.0,
    ) -> None:
        self.spec: Spec = load_spec()
        self.public_key_pem = public_key_pem
        self.app_id = app_id
        self.app_slug = app_slug
        self.clock = clock
        self.token_lifetime_s = token_lifetime_s
        self.repos: dict[str, FakeRepo] = {}
        self.installations: dict[int, FakeInstallation] = {}
        self.teams: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
        self.tokens: dict[str, tuple[int, float]] = {}
        self.download_tokens: dict[str, tuple[str, str]] = {}
        self.faults: list[Fault] = []
        self.requests: list[LoggedRequest] = []
        self.violations: list[Violation] = []
        self.recorded = Recorded()
        self.url = ""
        self._runner: web.AppRunner | None = None

    # -- set-up ---------------------------------------------------------------------------

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    def add_installation(
        self, installation_id: int, account: str, repos: Iterable[str] = ()
    ) -> FakeInstallation:
        installation = FakeInstallation(installation_id, account, list(repos))
        self.installations[installation_id] = installation
        return installation

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        files: Mapping[str, Mapping[str, bytes | str]] | None = None,
    ) -> FakeRepo:
        owner, name = full_name.split("/", 1)
        repo = FakeRepo(owner, name, default_branch=default_branch)
        self.repos[full_name.lower()] = repo
        for ref, tree in (files or {}).items():
            self.set_files(full_name, ref, tree)
        return repo

    def repo(self, full_name: str) -> FakeRepo:
        return self.repos[full_name.lower()]

    def set_files(self, full_name: str, ref: str, tree: Mapping[str, bytes | str]) -> None:
        """Files of the repository at `ref` (a branch name or a sha)."""
        encoded = {p: d.encode() if isinstance(d, str) else d for p, d in tree.items()}
        self.repo(full_name).files[ref] = encoded

    def set_tarball(
        self,
        full_name: str,
        ref: str,
        files: Mapping[str, bytes] | Path | None = None,
        *,
        extra: Iterable[TarMember] = (),
        data: bytes | None = None,
    ) -> bytes:
        """The tarball served for `ref`: given bytes, or built from files or a directory."""
        repo = self.repo(full_name)
        if data is None:
            prefix = github_prefix(repo.owner, repo.name, ref)
            data = build_tarball(prefix, files if files is not None else {}, extra)
        repo.tarballs[ref] = data
        return data

    def add_pull(
        self,
        full_name: str,
        number: int,
        head_sha: str,
        *,
        files: Iterable[FakePullFile | str] = (),
        **fields: Any,
    ) -> FakePull:
        pull_files = [f if isinstance(f, FakePullFile) else FakePullFile(f) for f in files]
        pull = FakePull(number, head_sha, files=pull_files, **fields)
        self.repo(full_name).pulls[number] = pull
        return pull

    def add_review(
        self, full_name: str, number: int, user: str, state: str = "APPROVED", commit_id: str = ""
    ) -> dict[str, Any]:
        pull = self.repo(full_name).pulls[number]
        review = self._review_json(full_name, number, user, state, commit_id or pull.head_sha, "")
        pull.reviews.append(review)
        return review

    def add_issue_comment(self, full_name: str, number: int, user: str, body: str) -> int:
        comment = self._comment_json(full_name, number, user, body)
        self.repo(full_name).comments.setdefault(number, []).append(comment)
        return int(comment["id"])

    def add_team(
        self, org: str, slug: str, members: Mapping[str, str], pending: Iterable[str] = ()
    ) -> None:
        """Team `org/slug` with members `login → role` (`member`/`maintainer`)."""
        team = {login.lower(): (role, "active") for login, role in members.items()}
        team.update({login.lower(): ("member", "pending") for login in pending})
        self.teams[(org.lower(), slug.lower())] = team

    # -- faults ---------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 502,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        fault = Fault(count, status, method, path, body={"message": "Server Error"})
        self.faults.append(fault)
        return fault

    def rate_limit_next(
        self,
        count: int = 1,
        *,
        retry_after: int | None = 7,
        reset_in: int | None = None,
        status: int = 403,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Secondary (Retry-After) or primary (remaining 0 + reset) rate-limit answers."""
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if reset_in is not None:
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-limit"] = "5000"
            headers["x-ratelimit-reset"] = str(int(self.clock()) + reset_in)
        message = "You have exceeded a secondary rate limit. Please wait a few minutes."
        fault = Fault(count, status, method, path, headers=headers, body={"message": message})
        self.faults.append(fault)
        return fault

    def delay_next(
        self,
        count: int = 1,
        seconds: float = 1.0,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        fault = Fault(count, 200, method, path, delay_s=seconds, passthrough=True)
        self.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.count -= 1
                return fault
        return None

    # -- assertions -----------------------------------------------------------------------

    def assert_no_violations(self) -> None:
        assert not self.violations, "\n".join(
            f"{v.kind}: {v.method} {v.path} [{v.operation}] {v.detail}" for v in self.violations
        )

    def requests_for(self, operation_id: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.operation == operation_id]

    # -- server ---------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_fake/"):
            return await self._control(request)
        body = await request.read()
        payload = _json_or_none(body)
        op = None if path.startswith("/_codeload/") else self.spec.find(request.method, path)
        entry = LoggedRequest(
            request.method,
            path,
            dict(request.query),
            payload,
            op.operation_id if op else None,
            has_authorization="Authorization" in request.headers,
        )
        self.requests.append(entry)
        fault = self._take_fault(request.method, path)
        if fault is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if not fault.passthrough:
                entry.status, entry.fault = fault.status, "injected"
                return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        response = await self._answer(request, op, path, body, payload)
        entry.status = response.status
        return response

    async def _answer(
        self, request: web.Request, op: Operation | None, path: str, body: bytes, payload: Any
    ) -> web.StreamResponse:
        if path.startswith("/_codeload/"):
            return self._codeload(request)
        if op is None:
            self._violate(request.method, path, None, "unknown-operation", "not in the subset")
            return _error(404, "Not Found")
        content_type = request.headers.get("Content-Type", "") if body else ""
        errors = self.spec.request_errors(op, path, request.query, body, content_type)
        if errors:
            self._violate(
                request.method, path, op.operation_id, "invalid-request", "; ".join(errors)
            )
            return _error(422, "Invalid request.\n\n" + "; ".join(errors))
        call = Call(op, op.params(path), request.query, payload, request)
        try:
            self._authenticate(call)
            handler = getattr(self, "op_" + re.sub(r"\W", "_", op.operation_id))
            reply: Reply = handler(call)
        except Fail as failure:
            return _error(failure.status, failure.message)
        return self._respond(call, path, reply)

    def _respond(self, call: Call, path: str, reply: Reply) -> web.StreamResponse:
        data = reply.data
        if isinstance(data, list) and "per_page" in self._param_names(call.op):
            data, link = _paginate(data, call.request)
            if link:
                reply.headers["Link"] = link
        if call.op.operation_id == "checks/list-for-ref":
            runs, link = _paginate(data["check_runs"], call.request)
            data = {"total_count": data["total_count"], "check_runs": runs}
            if link:
                reply.headers["Link"] = link
        if reply.status in (302, 202, 204) and data is None:
            return web.Response(status=reply.status, headers=reply.headers)
        encoded = json.dumps(data).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": str(int(self.clock()) + 3600),
            **reply.headers,
        }
        if call.op.method == "get" and reply.status == 200:
            etag = '"' + hashlib.sha1(encoded + headers.get("Link", "").encode()).hexdigest() + '"'
            headers["ETag"] = etag
            if call.request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
        self._check_response(call, path, reply.status, encoded, headers)
        return web.Response(status=reply.status, body=encoded, headers=headers)

    def _check_response(
        self, call: Call, path: str, status: int, body: bytes, headers: Mapping[str, str]
    ) -> None:
        if call.op.operation_id in UNCHECKED_RESPONSES:
            return
        errors = self.spec.response_errors(call.op, path, status, body, headers)
        if errors:
            self._violate(
                call.op.method.upper(),
                path,
                call.op.operation_id,
                "invalid-response",
                "; ".join(errors),
            )

    def _param_names(self, op: Operation) -> set[str]:
        item = self.spec.document["paths"][op.template][op.method]
        names = set()
        for param in item.get("parameters", []):
            ref = param.get("$ref", "")
            resolved = (
                self.spec.document["components"]["parameters"][ref.split("/")[-1]] if ref else param
            )
            names.add(resolved["name"])
        return names

    def _violate(self, method: str, path: str, op: str | None, kind: str, detail: str) -> None:
        self.violations.append(Violation(method, path, op, kind, detail))

    # -- authentication -------------------------------------------------------------------

    def _authenticate(self, call: Call) -> None:
        scheme, _, credential = call.request.headers.get("Authorization", "").partition(" ")
        if (
            call.op.template.startswith("/app")
            or call.op.operation_id == "apps/get-repo-installation"
        ):
            if scheme.lower() != "bearer":
                raise Fail(401, "A JSON web token could not be decoded")
            self._verify_jwt(credential)
            return
        if scheme.lower() not in ("token", "bearer") or credential not in self.tokens:
            raise Fail(401, "Bad credentials")
        installation_id, expires_at = self.tokens[credential]
        if self.clock() >= expires_at:
            raise Fail(401, "Bad credentials")
        installation = self.installations[installation_id]
        params = call.params
        if "owner" in params and not installation.covers(f"{params['owner']}/{params['repo']}"):
            raise Fail(404, "Not Found")
        if "org" in params and params["org"].lower() != installation.account.lower():
            raise Fail(404, "Not Found")
        call.installation = installation

    def _verify_jwt(self, token: str) -> None:
        try:
            claims = jwt.decode(
                token,
                self.public_key_pem,
                algorithms=["RS256"],
                options={
                    "require": ["iat", "exp", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise Fail(
                401, f"A JSON web token could not be decoded ({type(exc).__name__})"
            ) from None
        now = self.clock()
        if str(claims["iss"]) != str(self.app_id):
            raise Fail(401, "'Issuer' claim ('iss') must be the app id")
        if claims["iat"] > now + CLOCK_LEEWAY_S:
            raise Fail(
                401, "'Issued at' claim ('iat') must be an Integer representing a time in the past"
            )
        if claims["exp"] <= now or claims["exp"] > now + JWT_MAX_LIFETIME_S + CLOCK_LEEWAY_S:
            raise Fail(401, "'Expiration time' claim ('exp') is too far in the future or expired")

    # -- JSON builders --------------------------------------------------------------------

    def _user(self, login: str) -> dict[str, Any]:
        user: dict[str, Any] = self.spec.example_object("issue-comment")["user"]
        user.update(
            login=login,
            id=int(hashlib.sha1(login.encode()).hexdigest()[:6], 16),
            html_url=f"https://github.com/{login}",
            type="Bot" if login.endswith("[bot]") else "User",
        )
        return user

    def _repo_json(self, full_name: str, base: dict[str, Any]) -> dict[str, Any]:
        owner, name = full_name.split("/", 1)
        known = self.repos.get(full_name.lower())
        base.update(
            name=name,
            full_name=full_name,
            owner=self._user(owner),
            html_url=f"https://github.com/{full_name}",
            fork=known is None,
        )
        if known is not None:
            base.update(id=known.id, default_branch=known.default_branch)
        return base

    def _pull_json(self, repo: FakeRepo, pull: FakePull, example: str) -> dict[str, Any]:
        data = self.spec.example_object(example)
        head_repo = pull.head_repo or repo.full_name
        label = self.spec.example("label-items")[0]
        data.update(
            number=pull.number,
            state=pull.state,
            title=pull.title,
            draft=pull.draft,
            user=self._user(pull.author),
            labels=[{**label, "name": name} for name in pull.labels],
            html_url=f"https://github.com/{repo.full_name}/pull/{pull.number}",
        )
        data["head"].update(
            ref=pull.head_ref,
            sha=pull.head_sha,
            label=f"{head_repo.split('/')[0]}:{pull.head_ref}",
            repo=self._repo_json(head_repo, data["head"]["repo"]),
        )
        data["base"].update(
            ref=pull.base_ref,
            sha=pull.base_sha,
            label=f"{repo.owner}:{pull.base_ref}",
            repo=self._repo_json(repo.full_name, data["base"]["repo"]),
        )
        return data

    def _review_json(
        self, full_name: str, number: int, user: str, state: str, commit_id: str, body: str
    ) -> dict[str, Any]:
        review = self.spec.example_object("pull-request-review")
        review.update(
            id=next_id(),
            user=self._user(user),
            state=state,
            commit_id=commit_id,
            body=body,
            submitted_at=iso(self.clock()),
            html_url=f"https://github.com/{full_name}/pull/{number}#pullrequestreview-1",
        )
        return review

    def _comment_json(self, full_name: str, number: int, user: str, body: str) -> dict[str, Any]:
        comment = self.spec.example_object("issue-comment")
        comment_id = next_id()
        comment.update(
            id=comment_id,
            body=body,
            user=self._user(user),
            html_url=f"https://github.com/{full_name}/pull/{number}#issuecomment-{comment_id}",
        )
        return comment

    def _check_run_json(self, run: Mapping[str, Any]) -> dict[str, Any]:
        data = self.spec.example_object("check-run")
        data.update(
            id=run["id"],
            name=run["name"],
            head_sha=run["head_sha"],
            status=run["status"],
            conclusion=run["conclusion"],
            external_id=run["external_id"],
            details_url=run["details_url"] or None,
            started_at=run["started_at"],
            completed_at=run["completed_at"],
            html_url=f"https://github.com/{run['repo']}/runs/{run['id']}",
            pull_requests=[],
        )
        data["output"].update(
            title=run["output"].get("title"),
            summary=run["output"].get("summary"),
            text=run["output"].get("text"),
            annotations_count=len(run["annotations"]),
        )
        data["app"].update(id=self.app_id, slug=self.app_slug)
        return data

    # -- lookups --------------------------------------------------------------------------

    def _repo_of(self, call: Call) -> FakeRepo:
        repo = self.repos.get(f"{call.params['owner']}/{call.params['repo']}".lower())
        if repo is None:
            raise Fail(404, "Not Found")
        return repo

    def _pull_of(self, call: Call, key: str = "pull_number") -> tuple[FakeRepo, FakePull]:
        repo = self._repo_of(call)
        pull = repo.pulls.get(int(call.params[key]))
        if pull is None:
            raise Fail(404, "Not Found")
        return repo, pull

    def _run_of(self, call: Call) -> dict[str, Any]:
        run = self.recorded.check_runs.get(int(call.params["check_run_id"]))
        if run is None or run["repo"].lower() != self._repo_of(call).full_name.lower():
            raise Fail(404, "Not Found")
        return run

    def _comment_of(self, call: Call) -> dict[str, Any]:
        wanted = int(call.params["comment_id"])
        for comments in self._repo_of(call).comments.values():
            for comment in comments:
                if comment["id"] == wanted:
                    return comment
        raise Fail(404, "Not Found")

    # -- operations: apps -----------------------------------------------------------------

    def op_apps_get_authenticated(self, call: Call) -> Reply:
        data = self.spec.example("integration")
        data.update(id=self.app_id, slug=self.app_slug, name=self.app_slug)
        return Reply(200, data)

    def op_apps_list_installations(self, call: Call) -> Reply:
        items = []
        for installation in self.installations.values():
            item = self.spec.example("base-installation-items")[0]
            item.update(id=installation.id, account=self._user(installation.account))
            items.append(item)
        return Reply(200, items)

    def op_apps_create_installation_access_token(self, call: Call) -> Reply:
        installation_id = int(call.params["installation_id"])
        if installation_id not in self.installations:
            raise Fail(404, "Not Found")
        token = "ghs_" + secrets.token_urlsafe(27)
        expires_at = self.clock() + self.token_lifetime_s
        self.tokens[token] = (installation_id, expires_at)
        self.recorded.tokens_issued += 1
        data = self.spec.example("installation-token")
        data.pop("repositories", None)
        data.update(token=token, expires_at=iso(expires_at))
        return Reply(201, data)

    def op_apps_get_repo_installation(self, call: Call) -> Reply:
        full_name = f"{call.params['owner']}/{call.params['repo']}"
        for installation in self.installations.values():
            if installation.covers(full_name):
                data = self.spec.example("installation")
                data.update(id=installation.id, account=self._user(installation.account))
                data["app_id"] = self.app_id
                return Reply(200, data)
        raise Fail(404, "Not Found")

    def op_apps_list_webhook_deliveries(self, call: Call) -> Reply:
        return Reply(200, [])

    def op_apps_redeliver_webhook_delivery(self, call: Call) -> Reply:
        return Reply(202, {})

    # -- operations: pull requests --------------------------------------------------------

    def op_pulls_get(self, call: Call) -> Reply:
        repo, pull = self._pull_of(call)
        return Reply(200, self._pull_json(repo, pull, "pull-request"))

    def op_pulls_list(self, call: Call) -> Reply:
        repo = self._repo_of(call)
        state = call.query.get("state", "open")
        pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
        if "base" in call.query:
            pulls = [p for p in pulls if p.base_ref == call.query["base"]]
        return Reply(200, [self._pull_json(repo, p, "pull-request-simple-items") for p in pulls])

    def op_pulls_list_files(self, call: Call) -> Reply:
        _, pull = self._pull_of(call)
        items = []
        for changed in pull.files[:MAX_PR_FILES]:
            item = self.spec.example("diff-entry-items")[0]
            item.update(
                filename=changed.filename,
                status=changed.status,
                additions=changed.additions,
                deletions=changed.deletions,
                changes=changed.additions + changed.deletions,
                patch=changed.patch,
            )
            if changed.patch is None:
                del item["patch"]
            if changed.previous_filename:
                item["previous_filename"] = changed.previous_filename
            items.append(item)
        return Reply(200, items)

    def op_pulls_list_reviews(self, call: Call) -> Reply:
        _, pull = self._pull_of(call)
        return Reply(200, list(pull.reviews))

    def op_pulls_create_review(self, call: Call) -> Reply:
        repo, pull = self._pull_of(call)
        body = call.json or {}
        diff = {f.filename: _right_side_lines(f.patch) for f in pull.files}
        for comment in body.get("comments", []):
            if comment["path"] not in diff:
                raise Fail(422, "Path could not be resolved")
            if "line" in comment and comment["line"] not in diff[comment["path"]]:
                raise Fail(422, "Pull request review thread line must be part of the diff")
        states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED"}
        state = states.get(body.get("event", ""), "COMMENTED" if body.get("event") else "PENDING")
        review = self._review_json(
            repo.full_name,
            pull.number,
            self.bot_login,
            state,
            body.get("commit_id", pull.head_sha),
            body.get("body", ""),
        )
        pull.reviews.append(review)
        self.recorded.reviews.append({"repo": repo.full_name, "number": pull.number, **body})
        return Reply(200, review)

    # -- operations: check runs and statuses ----------------------------------------------

    def op_checks_create(self, call: Call) -> Reply:
        repo, body = self._repo_of(call), call.json
        conclusion = body.get("conclusion")
        output = body.get("output", {})
        run = {
            "id": next_id(),
            "repo": repo.full_name,
            "name": body["name"],
            "head_sha": body["head_sha"],
            "status": "completed" if conclusion else body.get("status", "queued"),
            "conclusion": conclusion,
            "external_id": body.get("external_id", ""),
            "details_url": body.get("details_url", ""),
            "started_at": body.get("started_at", iso(self.clock())),
            "completed_at": body.get("completed_at", iso(self.clock()) if conclusion else None),
            "output": {k: output.get(k) for k in ("title", "summary", "text")},
            "annotations": list(output.get("annotations", [])),
        }
        self.recorded.check_runs[run["id"]] = run
        return Reply(201, self._check_run_json(run))

    def op_checks_update(self, call: Call) -> Reply:
        run, body = self._run_of(call), call.json
        self.recorded.check_run_patches.append({"id": run["id"], **body})
        for key in ("name", "details_url", "external_id", "started_at", "status", "completed_at"):
            if key in body:
                run[key] = body[key]
        if "conclusion" in body:
            run.update(conclusion=body["conclusion"], status="completed")
            run["completed_at"] = run["completed_at"] or iso(self.clock())
        output = body.get("output", {})
        run["output"].update({k: output[k] for k in ("title", "summary", "text") if k in output})
        run["annotations"].extend(output.get("annotations", []))
        return Reply(200, self._check_run_json(run))

    def op_checks_get(self, call: Call) -> Reply:
        return Reply(200, self._check_run_json(self._run_of(call)))

    def op_checks_list_for_ref(self, call: Call) -> Reply:
        repo, query = self._repo_of(call), call.query
        runs = [
            r
            for r in self.recorded.check_runs.values()
            if r["repo"] == repo.full_name
            and r["head_sha"] == call.params["ref"]
            and query.get("check_name", r["name"]) == r["name"]
            and int(query.get("app_id", self.app_id)) == self.app_id
        ]
        if query.get("filter", "latest") == "latest":
            latest: dict[str, dict[str, Any]] = {}
            for run in runs:
                latest[run["name"]] = run
            runs = list(latest.values())
        runs.sort(key=lambda r: -int(r["id"]))
        data = [self._check_run_json(r) for r in runs]
        return Reply(200, {"total_count": len(data), "check_runs": data})

    def op_repos_create_commit_status(self, call: Call) -> Reply:
        repo = self._repo_of(call)
        self.recorded.statuses.append(
            {"repo": repo.full_name, "sha": call.params["sha"], **call.json}
        )
        data = self.spec.example("status")
        data.update(
            state=call.json["state"],
            context=call.json.get("context", "default"),
            description=call.json.get("description"),
            target_url=call.json.get("target_url"),
        )
        return Reply(201, data)

    # -- operations: conversation ---------------------------------------------------------

    def op_issues_list_comments(self, call: Call) -> Reply:
        repo, pull = self._pull_of(call, "issue_number")
        return Reply(200, list(repo.comments.get(pull.number, [])))

    def op_issues_create_comment(self, call: Call) -> Reply:
        repo, pull = self._pull_of(call, "issue_number")
        comment = self._comment_json(repo.full_name, pull.number, self.bot_login, call.json["body"])
        repo.comments.setdefault(pull.number, []).append(comment)
        self.recorded.comments_created.append(
            {
                "repo": repo.full_name,
                "number": pull.number,
                "id": comment["id"],
                "body": comment["body"],
            }
        )
        return Reply(201, comment)

    def op_issues_update_comment(self, call: Call) -> Reply:
        comment = self._comment_of(call)
        comment["body"] = call.json["body"]
        self.recorded.comments_updated.append(
            {"id": comment["id"], "body": comment["body"], "author": comment["user"]["login"]}
        )
        return Reply(200, comment)

    def op_reactions_create_for_issue_comment(self, call: Call) -> Reply:
        comment = self._comment_of(call)
        self.recorded.reactions.append(
            {"comment_id": comment["id"], "content": call.json["content"]}
        )
        data = self.spec.example("reaction")
        data.update(id=next_id(), content=call.json["content"], user=self._user(self.bot_login))
        return Reply(201, data)

    def op_issues_add_labels(self, call: Call) -> Reply:
        repo, pull = self._pull_of(call, "issue_number")
        names = [
            label if isinstance(label, str) else label["name"]
            for label in call.json.get("labels", [])
        ]
        pull.labels.extend(n for n in names if n not in pull.labels)
        self.recorded.labels.append(
            {"repo": repo.full_name, "number": pull.number, "labels": names}
        )
        template = self.spec.example("label-items")[0]
        return Reply(200, [{**template, "name": name} for name in pull.labels])

    # -- operations: content and people ---------------------------------------------------

    def op_repos_get_content(self, call: Call) -> Reply:
        repo = self._repo_of(call)
        ref = call.query.get("ref", repo.default_branch)
        path = call.params["path"].strip("/")
        data = repo.files.get(ref, {}).get(path)
        if data is None:
            raise Fail(404, "Not Found")
        encoded = base64.b64encode(data).decode()
        wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60))
        content = self.spec.example("content-file-response-if-content-is-a-file")
        content.update(
            name=path.rsplit("/", 1)[-1],
            path=path,
            size=len(data),
            sha=hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
            content=wrapped + "\n",
            encoding="base64",
        )
        return Reply(200, content)

    def op_repos_download_tarball_archive(self, call: Call) -> Reply:
        repo, ref = self._repo_of(call), call.params["ref"]
        if ref not in repo.tarballs and ref not in repo.files:
            raise Fail(404, "Not Found")
        download = secrets.token_urlsafe(16)
        self.download_tokens[download] = (repo.full_name, ref)
        base = f"{call.request.url.scheme}://{call.request.url.host}:{call.request.url.port}"
        location = f"{base}/_codeload/{repo.full_name}/legacy.tar.gz/{ref}?token={download}"
        return Reply(302, None, {"Location": location})

    def _codeload(self, request: web.Request) -> web.Response:
        grant = self.download_tokens.get(request.query.get("token", ""))
        if grant is None:
            return _error(404, "Not Found")
        full_name, ref = grant
        repo = self.repo(full_name)
        if ref not in repo.tarballs:
            self.set_tarball(full_name, ref, repo.files[ref])
        self.recorded.downloads.append(
            {"repo": full_name, "ref": ref, "had_authorization": "Authorization" in request.headers}
        )
        return web.Response(body=repo.tarballs[ref], content_type="application/x-gzip")

    def op_repos_get_collaborator_permission_level(self, call: Call) -> Reply:
        repo = self._repo_of(call)
        permission = repo.collaborators.get(call.params["username"], "none")
        data = self.spec.example(
            "repository-collaborator-permission-response-if-user-has-admin-permissions"
        )
        data.update(
            permission=permission, role_name=permission, user=self._user(call.params["username"])
        )
        return Reply(200, data)

    def op_teams_get_membership_for_user_in_org(self, call: Call) -> Reply:
        team = self.teams.get((call.params["org"].lower(), call.params["team_slug"].lower()))
        member = (team or {}).get(call.params["username"].lower())
        if member is None:
            raise Fail(404, "Not Found")
        data = self.spec.example("team-membership-response-if-user-is-a-team-maintainer")
        data.update(role=member[0], state=member[1])
        return Reply(200, data)

    def op_teams_list_members_in_org(self, call: Call) -> Reply:
        team = self.teams.get((call.params["org"].lower(), call.params["team_slug"].lower()))
        if team is None:
            raise Fail(404, "Not Found")
        return Reply(
            200, [self._user(login) for login, (_, state) in team.items() if state == "active"]
        )

    # -- control endpoints (standalone use) -----------------------------------------------

    async def _control(self, request: web.Request) -> web.Response:
        name = request.path.removeprefix("/_fake/")
        if request.method == "POST" and name == "faults":
            spec = await request.json()
            self.faults.append(Fault(**spec))
            return web.json_response({"ok": True})
        views: dict[str, Callable[[], Any]] = {
            "requests": lambda: [asdict(r) for r in self.requests],
            "violations": lambda: [asdict(v) for v in self.violations],
            "recorded": self.recorded.as_json,
        }
        if request.method == "GET" and name in views:
            return web.json_response(views[name]())
        return _error(404, "Not Found")


def _json_or_none(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _error(status: int, message: str) -> web.Response:
    docs = "https://docs.github.com/rest"
    return web.json_response({"message": message, "documentation_url": docs}, status=status)


def _paginate(items: list[Any], request: web.Request) -> tuple[list[Any], str]:
    """One page of `items` and GitHub's Link header (per_page capped at 100)."""
    per_page = min(max(int(request.query.get("per_page", "30")), 1), 100)
    page = max(int(request.query.get("page", "1")), 1)
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = items[(page - 1) * per_page : page * per_page]

    def link(number: int, rel: str) -> str:
        query = {**request.query, "per_page": str(per_page), "page": str(number)}
        base = f"{request.url.scheme}://{request.url.host}:{request.url.port}{request.path}"
        return f'<{base}?{urlencode(query)}>; rel="{rel}"'

    rels = []
    if page > 1:
        rels += [link(page - 1, "prev"), link(1, "first")]
    if page < last:
        rels += [link(page + 1, "next"), link(last, "last")]
    return chunk, ", ".join(rels)
