"""The connector manifest (`connector.yaml`) as typed, frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

AUTH_TYPES = ("none", "api_key", "basic", "oauth2")
DATA_CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
MANIFEST_FILE = "connector.yaml"


@dataclass(frozen=True, slots=True)
class Auth:
    """How the connector authenticates to the service it integrates."""

    type: str
    """One of AUTH_TYPES."""
    scopes: tuple[str, ...] = ()
    """Scopes or permissions it asks for; checked against the rules' allowlist."""


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """A secret the connector needs at run time (its name only, never a value)."""

    name: str
    """Environment variable name, e.g. ACME_API_KEY."""
    rotation_days: int
    """How often it must be rotated; capped by the rules."""


@dataclass(frozen=True, slots=True)
class TestsSpec:
    """How to run the connector's own tests."""

    command: str = "pytest"
    """Command line, split shell-style but never run through a shell."""


@dataclass(frozen=True, slots=True)
class Slo:
    """Service-level objectives the performance check enforces."""

    p95_ms: float
    """95th percentile latency limit in milliseconds."""
    error_rate: float
    """Highest acceptable share of failed requests (0.01 = 1 %)."""
    min_rps: float
    """Lowest acceptable sustained request rate (k6's http_reqs rate)."""


@dataclass(frozen=True, slots=True)
class PerformanceSpec:
    """How to start the connector's service and load it with k6."""

    start: str
    """Command that starts the service; `{port}` is replaced with a free loopback port."""
    ready: str
    """HTTP path polled until it answers 2xx."""
    script: str
    """k6 script path, relative to the connector directory."""
    slo: Slo
    """Objectives to meet."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed, schema-valid `connector.yaml`."""

    name: str
    """Lowercase slug, equal to the directory name."""
    version: str
    """Semantic version; must increase when the connector changes."""
    description: str
    """One line saying what the connector does."""
    owners: tuple[str, ...]
    """GitHub users or teams (`@org/team`) who own it."""
    auth: Auth
    """Authentication it uses."""
    data_classification: str
    """One of DATA_CLASSIFICATIONS."""
    egress: tuple[str, ...]
    """Hosts (or https URLs) it may call."""
    secrets: tuple[SecretSpec, ...]
    """Secrets it needs, by name."""
    requirements: str
    """Path of its pinned requirements file."""
    runbook: str
    """Path of its runbook."""
    tests: TestsSpec = field(default_factory=TestsSpec)
    """How to run its tests."""
    performance: PerformanceSpec | None = None
    """How to load-test it; None when the manifest declares no performance section."""
    lines: Mapping[str, int] = field(default_factory=dict)
    """Line of each key in the file, by dotted path (`auth.scopes`, `egress.0`), for findings."""

    def line_of(self, key: str) -> int:
        """Line of `key`, falling back to its parent keys, then to line 1."""
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rpartition(".")[0]
        return 1
