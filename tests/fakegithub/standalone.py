"""Load fake GitHub state from a JSON file, for runs as a separate process."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.fakegithub.server import FakeGitHub
from tests.fakegithub.state import FakePullFile


def apply_state(fake: FakeGitHub, document: Mapping[str, Any], base_dir: Path) -> None:
    """Populate `fake` from a state document (paths are relative to `base_dir`).

    Shape: {"installations": [{"id", "account", "repos"}], "repos": [{"full_name",
    "default_branch", "files": {ref: {path: text}}, "tarball_dirs": {ref: dir},
    "collaborators": {login: permission}}], "pulls": [{"repo", "number", "head_sha",
    "files": [name | {filename, status, patch...}], ...FakePull fields}],
    "teams": [{"org", "slug", "members": {login: role}}]}
    """
    for item in document.get("installations", []):
        fake.add_installation(int(item["id"]), item["account"], item.get("repos", []))
    for item in document.get("repos", []):
        repo = fake.add_repo(
            item["full_name"],
            default_branch=item.get("default_branch", "main"),
            files=item.get("files", {}),
        )
        repo.collaborators.update(item.get("collaborators", {}))
        for ref, directory in item.get("tarball_dirs", {}).items():
            fake.set_tarball(item["full_name"], ref, base_dir / directory)
    for item in document.get("pulls", []):
        fields = {k: v for k, v in item.items() if k not in ("repo", "number", "head_sha", "files")}
        files = [f if isinstance(f, str) else FakePullFile(**f) for f in item.get("files", [])]
        fake.add_pull(item["repo"], int(item["number"]), item["head_sha"], files=files, **fields)
    for item in document.get("teams", []):
        fake.add_team(item["org"], item["slug"], item.get("members", {}), item.get("pending", []))
