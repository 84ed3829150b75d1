"""The list of checks, in report order, and the short names users type."""

from __future__ import annotations

from checks.base import Check

SECURITY_CHECKS = ("manifest", "secrets", "dependencies", "static")
SANDBOXED_CHECKS = ("tests", "performance")
CHECK_NAMES = SECURITY_CHECKS + SANDBOXED_CHECKS


def all_checks() -> tuple[Check, ...]:
    """One instance of every check, in CHECK_NAMES order."""
    # Imported here so that `--only manifest` does not pay for importing bandit & co.
    from checks.connector_tests import TestsCheck
    from checks.dependencies import DependenciesCheck
    from checks.manifest import ManifestCheck
    from checks.performance import PerformanceCheck
    from checks.secrets import SecretsCheck
    from checks.static import StaticCheck

    return (
        ManifestCheck(),
        SecretsCheck(),
        DependenciesCheck(),
        StaticCheck(),
        TestsCheck(),
        PerformanceCheck(),
    )


def select_checks(only: tuple[str, ...] = ()) -> tuple[Check, ...]:
    """The checks named in `only` (short or `connector-gate/` names), or all of them."""
    wanted = {name.removeprefix("connector-gate/") for name in only}
    unknown = wanted - set(CHECK_NAMES)
    if unknown:
        raise ValueError(
            f"unknown check {', '.join(sorted(unknown))}; choose from {', '.join(CHECK_NAMES)}"
        )
    return tuple(c for c in all_checks() if not wanted or c.name in wanted)
