"""The list of checks, in report order, and the short names users type."""

from __future__ import annotations

import importlib

from checks.base import Check

SECURITY_CHECKS = ("manifest", "secrets", "dependencies", "static")
SANDBOXED_CHECKS = ("tests", "performance")
CHECK_NAMES = SECURITY_CHECKS + SANDBOXED_CHECKS

#: Where each check lives. Imported on demand: `--only manifest`, or a run served entirely
#: from the cache, must not pay for importing detect-secrets, bandit & co.
_IMPLEMENTATIONS = {
    "manifest": ("checks.manifest", "ManifestCheck"),
    "secrets": ("checks.secrets", "SecretsCheck"),
    "dependencies": ("checks.dependencies", "DependenciesCheck"),
    "static": ("checks.static", "StaticCheck"),
    "tests": ("checks.connector_tests", "TestsCheck"),
    "performance": ("checks.performance", "PerformanceCheck"),
}


def load_check(name: str) -> Check:
    """A new instance of the check called `name` (one of CHECK_NAMES)."""
    module, cls = _IMPLEMENTATIONS[name]
    check: Check = getattr(importlib.import_module(module), cls)()
    return check


def all_checks() -> tuple[Check, ...]:
    """One instance of every check, in CHECK_NAMES order."""
    return tuple(load_check(name) for name in CHECK_NAMES)


def select_checks(only: tuple[str, ...] = ()) -> tuple[Check, ...]:
    """The checks named in `only` (short or `connector-gate/` names), or all of them."""
    wanted = {name.removeprefix("connector-gate/") for name in only}
    unknown = wanted - set(CHECK_NAMES)
    if unknown:
        raise ValueError(
            f"unknown check {', '.join(sorted(unknown))}; choose from {', '.join(CHECK_NAMES)}"
        )
    return tuple(load_check(n) for n in CHECK_NAMES if not wanted or n in wanted)
