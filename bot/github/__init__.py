"""GitHub REST client for the App: authentication, retries, typed operations."""

from bot.github.auth import AppJwt, InstallationTokens, make_app_jwt
from bot.github.client import DEFAULT_BASE_URL, MAX_PR_FILES, GitHubApp, InstallationClient
from bot.github.errors import (
    Forbidden,
    GitHubError,
    GitHubUnavailable,
    InvalidRequest,
    NotFound,
    RateLimited,
    ResponseTooLarge,
    Unauthorized,
    UnexpectedResponse,
)
from bot.github.models import (
    Annotation,
    AppInfo,
    CheckRun,
    CheckRunOutput,
    Installation,
    InstallationToken,
    IssueComment,
    PullRequest,
    PullRequestFile,
    PullRequestFiles,
    RepoRef,
    Review,
    ReviewComment,
)
from bot.github.payloads import (
    batch_annotations,
    find_marked_comment,
    marker_comment,
    truncate_text,
    with_marker,
)
from bot.github.retry import RetryPolicy
from bot.github.transport import TransportStats

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_PR_FILES",
    "Annotation",
    "AppInfo",
    "AppJwt",
    "CheckRun",
    "CheckRunOutput",
    "Forbidden",
    "GitHubApp",
    "GitHubError",
    "GitHubUnavailable",
    "Installation",
    "InstallationClient",
    "InstallationToken",
    "InstallationTokens",
    "InvalidRequest",
    "IssueComment",
    "NotFound",
    "PullRequest",
    "PullRequestFile",
    "PullRequestFiles",
    "RateLimited",
    "RepoRef",
    "ResponseTooLarge",
    "RetryPolicy",
    "Review",
    "ReviewComment",
    "TransportStats",
    "Unauthorized",
    "UnexpectedResponse",
    "batch_annotations",
    "find_marked_comment",
    "make_app_jwt",
    "marker_comment",
    "truncate_text",
    "with_marker",
]
