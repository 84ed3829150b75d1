"""Helpers shared by the sandbox, tests-check and performance-check tests."""

from __future__ import annotations

import os
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.base import CheckContext, CheckSettings
from checks.manifest import parse_manifest
from checks.model import PerformanceBaseline
from checks.rules_model import PerformanceRules, Rules, SandboxRules, TestsRules

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "connectors"

#: Short, light load so the suite stays quick on a shared two-core machine.
QUICK_PERF = PerformanceRules(duration_s=3, vus=3)


def make_rules(*, timeout_s: int = 120, index_url: str = "", allow_weak: bool = False) -> Rules:
    return Rules(
        tests=TestsRules(timeout_s=timeout_s, index_url=index_url),
        performance=QUICK_PERF,
        sandbox=SandboxRules(allow_weak_isolation_for_forks=allow_weak),
    )


def context_for(
    directory: Path,
    cache_dir: Path,
    *,
    rules: Rules | None = None,
    is_fork: bool = False,
    k6_path: str = "",
    baseline: PerformanceBaseline | None = None,
) -> CheckContext:
    manifest = parse_manifest(directory / "connector.yaml", display_path=directory.name)
    return CheckContext(
        connector=directory.name,
        directory=directory,
        display_path=f"connectors/{directory.name}",
        rules=rules or make_rules(),
        manifest=manifest,
        settings=CheckSettings(venv_dir=cache_dir, is_fork=is_fork, k6_path=k6_path),
        performance_baseline=baseline,
    )


def copy_example(name: str, target: Path) -> Path:
    """A private copy of an example connector, to add hostile or failing tests to."""
    directory = target / name
    shutil.copytree(EXAMPLES / name, directory)
    return directory


def add_test(directory: Path, filename: str, source: str) -> Path:
    path = directory / "tests" / filename
    path.write_text(textwrap.dedent(source))
    return path


def replace_in_manifest(directory: Path, old: str, new: str) -> None:
    manifest = directory / "connector.yaml"
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new))


@pytest.fixture(scope="session")
def venv_cache() -> Iterator[Path]:
    """A virtualenv cache the unprivileged sandbox uid can read (pytest's tmp is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="connector-gate-test-cache-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A scratch directory for connectors built by a test."""
    directory = Path(tempfile.mkdtemp(prefix="connector-gate-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def sandbox_uid_processes() -> list[int]:
    """Pids of processes running as a sandbox pool uid right now."""
    base = int(os.environ.get("CONNECTOR_GATE_SANDBOX_UID_BASE", "61000"))
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                uid = entry.stat().st_uid
            except OSError:
                continue
            if base <= uid < base + 1000:
                pids.append(int(entry.name))
    return pids
