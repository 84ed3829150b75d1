"""Which lines of a pull request's unified diff can carry a review comment."""

from __future__ import annotations

import re

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(?P<start>\d+)(?:,(?P<count>\d+))? @@")


def right_side_lines(patch: str | None) -> frozenset[int]:
    """New-file line numbers shown in `patch` (added and context lines), i.e. side RIGHT.

    GitHub omits `patch` for binary and very large files: then nothing is commentable.
    """
    lines: set[int] = set()
    current = 0
    remaining = 0
    for line in (patch or "").splitlines():
        header = _HUNK.match(line)
        if header:
            current = int(header.group("start"))
            remaining = int(header.group("count") or "1")
        elif remaining > 0 and not line.startswith(("-", "\\")):
            # '+' added, ' ' context, '' a context line whose trailing space was stripped
            lines.add(current)
            current += 1
            remaining -= 1
    return frozenset(lines)
