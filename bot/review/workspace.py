"""The pull request's files on disk: the head tarball, safely extracted, and base manifests."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.github import InstallationClient, RepoRef
from checks.archive import Extraction, RefusedMember, extract_tarball
from checks.manifest_model import MANIFEST_FILE


@dataclass(frozen=True, slots=True)
class Workspace:
    """Head and base trees of one review."""

    head: Path
    """Repository at the head commit (only safe members)."""
    base: Path
    """Base manifests of the changed connectors, at their repository paths."""
    refused: tuple[RefusedMember, ...]
    """Archive members refused during extraction."""


async def _base_manifests(
    gh: InstallationClient, repo: RepoRef, base_sha: str, connectors: Sequence[str], into: Path
) -> None:
    # Only connector.yaml is needed from the base (version increase, new egress, baseline),
    # so one small contents call per connector replaces a second tarball.
    for connector in connectors:
        content = await gh.get_file_contents(repo, f"{connector}/{MANIFEST_FILE}", base_sha)
        if content is not None:
            target = into / connector / MANIFEST_FILE
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


@asynccontextmanager
async def fetched_workspace(
    gh: InstallationClient,
    repo: RepoRef,
    head_sha: str,
    base_sha: str,
    connectors: Sequence[str],
    work_dir: Path,
) -> AsyncIterator[Workspace]:
    """Download and extract the head, fetch base manifests; everything is removed after."""
    folder = Path(await asyncio.to_thread(_new_folder, work_dir, head_sha))
    try:
        archive = folder / "head.tar.gz"
        await gh.download_tarball(repo, head_sha, archive)
        # Extraction is disk-bound: keep it off the event loop that answers webhooks.
        extraction: Extraction = await asyncio.to_thread(extract_tarball, archive, folder / "head")
        await _base_manifests(gh, repo, base_sha, connectors, folder / "base")
        yield Workspace(folder / "head", folder / "base", extraction.refused)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


def _new_folder(work_dir: Path, head_sha: str) -> str:
    work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # PR code runs as other users
    return tempfile.mkdtemp(prefix=f"review-{head_sha[:12]}-", dir=work_dir)
