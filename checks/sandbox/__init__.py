"""A confined place to run a connector's own code: its tests, its service under load."""

from checks.sandbox.backend import (
    LocalSandbox,
    SandboxBackend,
    limit_hit,
    weak_isolation_refusal,
)
from checks.sandbox.isolation import detect_isolation
from checks.sandbox.model import (
    OUT_PLACEHOLDER,
    Isolation,
    LimitHit,
    Limits,
    LoadJob,
    LoadOutcome,
    SandboxJob,
    SandboxOutcome,
    SandboxReport,
)

__all__ = [
    "OUT_PLACEHOLDER",
    "Isolation",
    "LimitHit",
    "Limits",
    "LoadJob",
    "LoadOutcome",
    "LocalSandbox",
    "SandboxBackend",
    "SandboxJob",
    "SandboxOutcome",
    "SandboxReport",
    "detect_isolation",
    "limit_hit",
    "weak_isolation_refusal",
]
