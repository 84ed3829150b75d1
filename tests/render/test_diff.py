"""Tests of the unified-diff line mapping used to place inline comments."""

from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.render.diff import right_side_lines

EXAMPLE = Path(__file__).parents[2] / "examples/connectors/leaky-notes/leaky_notes/settings.py"

TABLE = [
    ("new file", "@@ -0,0 +1,3 @@\n+a\n+b\n+c", {1, 2, 3}),
    ("deleted lines take no new line", "@@ -1,4 +1,2 @@\n a\n-b\n-c\n d", {1, 2}),
    (
        "two hunks",
        "@@ -1,2 +1,3 @@\n a\n+b\n c\n@@ -10,2 +11,2 @@ def f():\n x\n-y\n+z",
        {1, 2, 3, 11, 12},
    ),
    ("no newline marker", "@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b", {1}),
    ("context line with stripped space", "@@ -5,3 +5,3 @@\n a\n\n-c\n+d", {5, 6, 7}),
    ("binary file has no patch", None, set()),
    ("headers only", "@@ -132,7 +132,7 @@ module Test @@ -1000,7 +1000,7 @@ module Test", set()),
]


@pytest.mark.parametrize(("name", "patch", "lines"), TABLE, ids=[t[0] for t in TABLE])
def test_right_side_lines(name: str, patch: str | None, lines: set[int]) -> None:
    assert right_side_lines(patch) == lines


def _patch(old: list[str], new: list[str]) -> str:
    diff = difflib.unified_diff(old, new, lineterm="", n=3)
    return "\n".join(line for line in diff if not line.startswith(("---", "+++")))


def test_difflib_patch_covers_changed_lines_and_only_nearby_context() -> None:
    old = [f"line {i}" for i in range(1, 61)]
    new = [*old[:9], "inserted A", "inserted B", *old[9:40], "changed 41", *old[41:]]
    lines = right_side_lines(_patch(old, new))
    assert {10, 11, 43} <= lines  # inserted and changed lines
    assert {7, 8, 9, 12, 13, 14, 40, 41, 42, 44, 45, 46} <= lines  # three lines of context
    assert not lines & {1, 5, 6, 15, 30, 38, 39, 47, 60}


def test_real_git_patch_of_the_example_connector(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    old = tmp_path / "old.py"
    new = tmp_path / "new.py"
    shutil.copy(EXAMPLE, old)
    text = EXAMPLE.read_text().splitlines(keepends=True)
    new.write_text("".join([*text[:5], "# added above the key\n", *text[5:]]))
    proc = subprocess.run(
        ["git", "diff", "--no-index", "--no-color", str(old), str(new)],
        capture_output=True,
        text=True,
        check=False,
    )
    patch = proc.stdout[proc.stdout.index("@@") :]
    lines = right_side_lines(patch)
    assert 6 in lines  # the added line
    assert 7 in lines  # the AWS key line, now one lower, as context
    assert 1 not in lines
