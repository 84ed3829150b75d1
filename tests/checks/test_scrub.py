"""The one scrubber: what it removes, what it leaves alone."""

from __future__ import annotations

import pytest

from checks.scrub import REDACTED, scrub

GITHUB_TOKEN = "ghp_Zx8TqL2mNv4RkP9sWb3YcH7dJf6Ga1Ue5Xo0"  # pragma: allowlist secret

#: (label, text, the secret part that must disappear)
LEAKS = [
    ("aws key id", "key AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
    ("github classic token", f"token {GITHUB_TOKEN}", GITHUB_TOKEN),
    ("github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijKLMNOP", "11ABCDEFG0123"),
    ("slack token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKl", "AbCdEfGhIjKl"),
    ("slack webhook", "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXX", "XXXXXXXXXXXX"),
    ("stripe live", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    ("stripe test", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    ("gitlab", "glpat-abcdefghij1234567890", "abcdefghij1234567890"),
    ("pypi", "pypi-AgEIcHlwaS5vcmcCJGE1ZTk2YjY0LTk1ZTYtNDA2Yi1hN2NjLTY4ZjQy", "AgEIcHlwaS5vcmc"),
    ("npm", "npm_abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz"),
    ("google api key", "AIzaSyA-abcdefghijklmnopqrstuvwxyz12345", "SyA-abcdefghijklmnop"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N",
    ),
    (
        "private key block",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA",
    ),
    ("truncated key block", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq", "MIIEvQIBADANBgkq"),
    ("password assignment", "PASSWORD=hunter2", "hunter2"),
    ("quoted with spaces", 'password = "correct horse battery staple"', "correct horse"),
    ("json field", '{"client_secret": "s3cr3t value"}', "s3cr3t value"),
    ("apostrophe inside", """db_password = "it's a secret" """, "it's a secret"),
    ("bandit B105 text", "Possible hardcoded password: 'hunter2hunter2'", "hunter2hunter2"),
    ("api key", "api_key: abcd1234efgh", "abcd1234efgh"),
    ("aws secret", "aws_secret_access_key=wJalrXUtnFI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFI"),
    ("url credentials", "postgres://app:s3cret@db.internal/x", "s3cret"),
    ("url password with @", "postgres://app:p@ss@db.internal/x", "p@ss"),
    ("bearer header", "Authorization: Bearer abcdef1234567890abcdef", "abcdef1234567890"),
    ("basic header", 'curl -H "Authorization: Basic dXNlcjpwYXNzd29yZA=="', "dXNlcjpwYXNz"),
    ("token header", f"authorization: token {GITHUB_TOKEN[:10]}zzzz", "ghp_Zx8TqLzzzz"),
    ("bearer in prose", "sent bearer abcdef1234567890 to the api", "abcdef1234567890"),
]


@pytest.mark.parametrize(("label", "text", "secret"), LEAKS, ids=[c[0] for c in LEAKS])
def test_secret_is_removed(label: str, text: str, secret: str) -> None:
    cleaned = scrub(text)

    assert secret not in cleaned
    assert REDACTED in cleaned


#: (label, text) that must come out unchanged: ordinary output and references to secrets.
KEPT = [
    ("plain log", "collected 12 items; 12 passed in 0.4s"),
    ("environment lookup", 'api_key = os.environ["API_KEY"]'),
    ("getenv", 'password = os.getenv("DB_PASSWORD")'),
    ("shell variable", "token: $GITHUB_TOKEN"),
    ("actions expression", "token: ${{ secrets.X }}"),
    ("short value", 'password="p"'),
    ("url without credentials", "https://api.example.com:8443/v1/notes?page=2"),
    ("bandit text", "Use of weak MD5 hash for security. Consider usedforsecurity=False"),
    ("sha1 digest", "hashed_secret 25910f981e85ca04baf359199dd0bd4a3ae738b6"),
    ("empty", ""),
]


@pytest.mark.parametrize(("label", "text"), KEPT, ids=[c[0] for c in KEPT])
def test_harmless_text_is_kept(label: str, text: str) -> None:
    assert scrub(text) == text


def test_known_secrets_are_removed_whatever_their_shape() -> None:
    text = "connecting with q7Zr!x_w and then q7Zr!x_w-long"

    cleaned = scrub(text, known_secrets=["q7Zr!x_w", "q7Zr!x_w-long"])

    assert cleaned == f"connecting with {REDACTED} and then {REDACTED}"


def test_known_secrets_shorter_than_four_characters_are_ignored() -> None:
    # Redacting "a" or "ab" everywhere would destroy the text and tell nothing useful.
    assert scrub("a b abc", known_secrets=["a", "ab", "abc"]) == "a b abc"


def test_scrubbing_twice_changes_nothing_more() -> None:
    once = scrub(f"password: hunter2hunter2 and {GITHUB_TOKEN}")

    assert scrub(once) == once
    assert once == f"password: {REDACTED} and {REDACTED}"


def test_every_occurrence_is_removed() -> None:
    text = f"{GITHUB_TOKEN}\nretry with {GITHUB_TOKEN}\n"

    assert GITHUB_TOKEN not in scrub(text)
    assert scrub(text).count(REDACTED) == 2
