"""Path globs with `**` semantics, as people write them in rules files."""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=512)
def _compile(glob: str) -> re.Pattern[str]:
    """`*` and `?` stay inside one path segment, `**` spans any number of segments."""
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            out.append(_segment_char(glob[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _segment_char(char: str) -> str:
    if char == "*":
        return "[^/]*"
    if char == "?":
        return "[^/]"
    return re.escape(char)


def glob_match(path: str, glob: str) -> bool:
    """Whether `path` (repository-relative, `/`-separated) matches `glob`.

    A glob without a slash matches the file name in any directory, like `.gitignore` does,
    because `*.py` in a rules file is meant as "any Python file".
    """
    path = path.lstrip("/")
    glob = glob.lstrip("/")
    if glob.endswith("/"):
        glob = f"{glob}**"
    if "/" not in glob:
        glob = f"**/{glob}"
    return _compile(glob).match(path) is not None


def any_match(paths: tuple[str, ...] | list[str], globs: tuple[str, ...]) -> bool:
    """Whether any path matches any glob."""
    return any(glob_match(path, glob) for path in paths for glob in globs)
