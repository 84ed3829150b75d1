"""A fake GitHub REST API for tests, validated against GitHub's OpenAPI description."""

from tests.fakegithub.keys import AppKeyPair, generate_app_key
from tests.fakegithub.server import FakeGitHub
from tests.fakegithub.state import FakePull, FakePullFile, FakeRepo, Fault
from tests.fakegithub.tarballs import (
    TarMember,
    build_tarball,
    github_prefix,
    hardlink,
    huge_file,
    raw_file,
    symlink,
)

__all__ = [
    "AppKeyPair",
    "FakeGitHub",
    "FakePull",
    "FakePullFile",
    "FakeRepo",
    "Fault",
    "TarMember",
    "build_tarball",
    "generate_app_key",
    "github_prefix",
    "hardlink",
    "huge_file",
    "raw_file",
    "symlink",
]
