"""One exception family for the GitHub boundary; messages never carry tokens or query strings."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_path(url: str) -> str:
    """The path of `url` without its query, which may hold a signed download token."""
    return urlsplit(url).path or url.split("?", 1)[0]


class GitHubError(Exception):
    """Base of every error the GitHub client raises on purpose."""

    def __init__(
        self, message: str, *, status: int | None = None, method: str = "", url: str = ""
    ) -> None:
        self.message = message
        self.status = status
        self.method = method
        self.path = safe_path(url) if url else ""
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.method} {self.path}".strip()
        code = f" ({self.status})" if self.status is not None else ""
        return f"{where}{code}: {self.message}" if where else f"{self.message}{code}"


class GitHubUnavailable(GitHubError):
    """GitHub kept failing (5xx, timeouts, connection errors) after every retry."""


class RateLimited(GitHubError):
    """GitHub's primary or secondary rate limit held for longer than we are willing to wait."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, method=method, url=url)


class NotFound(GitHubError):
    """The resource does not exist, or the installation cannot see it (GitHub answers 404)."""


class Unauthorized(GitHubError):
    """GitHub refused our credentials (401): bad JWT, expired or revoked token."""


class Forbidden(GitHubError):
    """The App lacks a permission for this call (403 that is not a rate limit)."""


class InvalidRequest(GitHubError):
    """GitHub rejected the request itself (400, 409, 422...)."""


class ResponseTooLarge(GitHubError):
    """A download exceeded the size cap and was abandoned."""


class UnexpectedResponse(GitHubError):
    """GitHub answered with a payload we cannot understand."""
