"""Pytest fixtures for the fake GitHub; import them into a conftest to use them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakegithub.keys import AppKeyPair, generate_app_key
from tests.fakegithub.server import FakeGitHub


@pytest.fixture(scope="session")
def github_app_key() -> AppKeyPair:
    """An App key pair generated once per test session."""
    return generate_app_key()


@pytest.fixture
async def fake_github(github_app_key: AppKeyPair) -> AsyncIterator[FakeGitHub]:
    """A running fake GitHub on a free local port; fails the test on any spec violation."""
    fake = FakeGitHub(public_key_pem=github_app_key.public_pem)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
