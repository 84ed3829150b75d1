"""Fixtures for the GitHub client tests: a fake GitHub, a shared clock and a recording sleep."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.github import GitHubApp, RepoRef
from tests.fakegithub.keys import AppKeyPair
from tests.fakegithub.plugin import fake_github, github_app_key
from tests.fakegithub.server import FakeGitHub

__all__ = ["fake_github", "github_app_key"]

INSTALLATION = 42
REPO = RepoRef("acme", "connectors")


class ManualClock:
    """Wall time both the client and the fake read; tests move it forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    """Records each requested delay instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def fake(fake_github: FakeGitHub, clock: ManualClock) -> FakeGitHub:
    """The fake with one installation on `acme` and the `acme/connectors` repository."""
    fake_github.clock = clock
    fake_github.add_installation(INSTALLATION, "acme")
    fake_github.add_repo(REPO.full_name, default_branch="main")
    return fake_github


@pytest.fixture
def app(
    fake: FakeGitHub,
    github_app_key: AppKeyPair,
    http_session: aiohttp.ClientSession,
    sleeps: RecordingSleep,
    clock: ManualClock,
) -> GitHubApp:
    return GitHubApp(
        http_session,
        app_id=fake.app_id,
        private_key=github_app_key.private_pem,
        base_url=fake.url,
        sleep=sleeps,
        clock=clock,
        rng=random.Random(7),
    )
