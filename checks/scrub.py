"""The one scrubber every tool output passes through before it is shown, stored or sent.

It removes what looks like a credential: well-known token formats, private-key blocks, the
value side of `password = "..."`-style assignments, credentials in URLs, and any value the
caller knows to be secret (e.g. values detect-secrets found in this run, held in memory only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

#: Token formats with a distinctive shape; the whole match is replaced.
_TOKEN_PATTERNS = [
    r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}",  # AWS access key id
    r"gh[pousr]_[A-Za-z0-9_]{36,255}",  # GitHub tokens
    r"github_pat_[A-Za-z0-9_]{22,255}",  # GitHub fine-grained tokens
    r"xox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"[sr]k_(?:live|test)_[0-9a-zA-Z]{16,}",  # Stripe secret and restricted keys
    r"glpat-[A-Za-z0-9_\-]{20,}",  # GitLab personal access token
    r"pypi-AgE[A-Za-z0-9_\-]{40,}",  # PyPI upload token
    r"npm_[A-Za-z0-9]{36}",  # npm token
    r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]+",  # Slack webhook (the URL is the key)
    r"(?i:\bbearer\s+)[A-Za-z0-9._~+/\-]{8,}=*",  # OAuth bearer token
    r"AIza[0-9A-Za-z_\-]{35}",  # Google API key
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
]

#: `name = "value"`, `name: value`, `"name": "value"` where the name says secret. A quoted
#: value runs to its closing quote (it may hold spaces); a bare one to a space or delimiter.
_ASSIGNMENT = re.compile(
    r"""(?P<name>[\w.\-]*(?:pass(?:word|wd)?|pwd|secret|token|api[_\-]?key|apikey|"""
    r"""access[_\-]?key|private[_\-]?key|credential|auth)[\w.\-]*["']?\s*[:=]\s*)"""
    r"""(?:(?P<quote>["'])(?P<quoted>(?:(?!(?P=quote))[^\n]){4,})(?P=quote)"""
    r"""|(?P<bare>[^\s"',;)}\]]{4,}))""",
    re.IGNORECASE,
)

#: An `Authorization` header's whole value (`Basic dXNlcjpw...`, `token ...`): scheme and all.
_AUTHORIZATION = re.compile(
    r"""(?P<name>authorization["']?\s*[:=]\s*["']?)(?P<value>[^"'\r\n]+)""", re.IGNORECASE
)

#: user:password@host in URLs; the password may itself hold `@`, so run to the last one.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)[^\s/:@]+:[^\s/]+@", re.I)

_TOKENS = re.compile("|".join(f"(?:{p})" for p in _TOKEN_PATTERNS))


#: Values that say where a secret comes from: they are the fix, not the leak.
_REFERENCES = (REDACTED[:-1], "os.environ", "os.getenv", "environ", "$", "{", "getenv")


def _mask_assignment(match: re.Match[str]) -> str:
    value = match.group("quoted") or match.group("bare")
    if value.startswith(_REFERENCES):
        return match.group(0)
    quote = match.group("quote") or ""
    return f"{match.group('name')}{quote}{REDACTED}{quote}"


def _mask_authorization(match: re.Match[str]) -> str:
    value = match.group("value").strip()
    if not value or value.startswith(_REFERENCES):
        return match.group(0)
    return f"{match.group('name')}{REDACTED}"


def scrub(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Return `text` with every credential-looking value replaced by [REDACTED]."""
    if not text:
        return text
    for secret in sorted({s for s in known_secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _TOKENS.sub(REDACTED, text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _AUTHORIZATION.sub(_mask_authorization, text)
    return _ASSIGNMENT.sub(_mask_assignment, text)
