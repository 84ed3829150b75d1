"""Parse GitHub's JSON into the client's frozen dataclasses; malformed data is an error."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from bot.github.errors import UnexpectedResponse
from bot.github.models import (
    AppInfo,
    CheckRun,
    Installation,
    InstallationToken,
    IssueComment,
    PullRequest,
    PullRequestFile,
    Review,
)

T = TypeVar("T")


def _obj(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise UnexpectedResponse(f"expected an object for {what}, got {type(data).__name__}")
    return data


def _login(user: Any) -> str:
    """Login of a (nullable) user object; deleted accounts come back as null."""
    return str(user.get("login", "")) if isinstance(user, Mapping) else ""


def parsed(parser: Callable[[Mapping[str, Any]], T], data: Any, what: str) -> T:
    """Apply `parser`, turning missing keys or wrong types into UnexpectedResponse."""
    try:
        return parser(_obj(data, what))
    except (KeyError, TypeError, ValueError) as exc:
        raise UnexpectedResponse(f"malformed {what}: {type(exc).__name__} {exc}") from None


def token(data: Mapping[str, Any]) -> InstallationToken:
    expires = dt.datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
    return InstallationToken(token=str(data["token"]), expires_at=expires.timestamp())


def app_info(data: Mapping[str, Any]) -> AppInfo:
    return AppInfo(id=int(data["id"]), slug=str(data["slug"]), name=str(data["name"]))


def installation(data: Mapping[str, Any]) -> Installation:
    return Installation(id=int(data["id"]), account=_login(data.get("account")))


def _repo_name(branch: Mapping[str, Any]) -> str:
    repo = branch.get("repo")
    return str(repo["full_name"]) if isinstance(repo, Mapping) else ""


def pull_request(data: Mapping[str, Any]) -> PullRequest:
    head, base = _obj(data["head"], "head"), _obj(data["base"], "base")
    base_repo = base.get("repo")
    default_branch = base_repo.get("default_branch", "") if isinstance(base_repo, Mapping) else ""
    return PullRequest(
        number=int(data["number"]),
        title=str(data.get("title", "")),
        state=str(data["state"]),
        draft=bool(data.get("draft", False)),
        author=_login(data.get("user")),
        head_sha=str(head["sha"]),
        head_ref=str(head["ref"]),
        head_repo=_repo_name(head),
        base_ref=str(base["ref"]),
        base_sha=str(base["sha"]),
        base_repo=_repo_name(base),
        default_branch=str(default_branch or ""),
        labels=tuple(str(label["name"]) for label in data.get("labels") or ()),
        html_url=str(data.get("html_url", "")),
    )


def pull_request_file(data: Mapping[str, Any]) -> PullRequestFile:
    patch = data.get("patch")
    return PullRequestFile(
        filename=str(data["filename"]),
        status=str(data["status"]),
        additions=int(data.get("additions", 0)),
        deletions=int(data.get("deletions", 0)),
        previous_filename=str(data.get("previous_filename") or ""),
        patch=str(patch) if patch is not None else None,
    )


def review(data: Mapping[str, Any]) -> Review:
    return Review(
        id=int(data["id"]),
        author=_login(data.get("user")),
        state=str(data["state"]),
        commit_id=str(data.get("commit_id") or ""),
        submitted_at=str(data.get("submitted_at") or ""),
        body=str(data.get("body") or ""),
    )


def check_run(data: Mapping[str, Any]) -> CheckRun:
    conclusion = data.get("conclusion")
    return CheckRun(
        id=int(data["id"]),
        name=str(data["name"]),
        head_sha=str(data["head_sha"]),
        status=str(data["status"]),
        conclusion=str(conclusion) if conclusion is not None else None,
        external_id=str(data.get("external_id") or ""),
        html_url=str(data.get("html_url") or ""),
        annotations_count=int((data.get("output") or {}).get("annotations_count") or 0),
    )


def issue_comment(data: Mapping[str, Any]) -> IssueComment:
    return IssueComment(
        id=int(data["id"]),
        body=str(data.get("body") or ""),
        author=_login(data.get("user")),
        html_url=str(data.get("html_url") or ""),
    )
