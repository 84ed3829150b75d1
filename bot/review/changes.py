"""Which connectors a pull request changes (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from bot.gate.globs import glob_match

RULES_FILE = ".github/connector-gate.yml"


def connector_dir_of(path: str, globs: Sequence[str]) -> str | None:
    """The connector directory (matching one of `globs`) that contains `path`, if any."""
    parents = list(PurePosixPath(path).parents)[:-1]  # drop "."
    for parent in reversed(parents):  # outermost first: `connectors/x`, not `connectors/x/y`
        if any(glob_match(parent.as_posix(), glob) for glob in globs):
            return parent.as_posix()
    return None


def changed_connectors(paths: Iterable[str], globs: Sequence[str]) -> tuple[str, ...]:
    """Sorted connector directories containing at least one of `paths`."""
    found = {d for p in paths if (d := connector_dir_of(p, globs)) is not None}
    return tuple(sorted(found))


def touches_rules(paths: Iterable[str]) -> bool:
    """Whether the pull request edits the rules file (validated, never applied)."""
    return RULES_FILE in set(paths)
