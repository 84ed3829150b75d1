"""Tests of the path globs used by approval conditions."""

from __future__ import annotations

import pytest

from bot.gate.globs import any_match, glob_match

CASES = [
    ("connectors/a/connector.yaml", "connectors/**", True),
    ("connectors/a/b/c.py", "connectors/**/*.py", True),
    ("connectors/c.py", "connectors/**/*.py", True),
    ("connectors/a/c.py", "connectors/*.py", False),
    ("connectors/a/perf/load.js", "connectors/*/perf/*.js", True),
    ("connectors/a/b/perf/load.js", "connectors/*/perf/*.js", False),
    ("deep/dir/setup.py", "*.py", True),
    ("setup.py", "*.py", True),
    ("setup.pyc", "*.py", False),
    ("docs/readme.md", "docs/", True),
    ("other/docs/readme.md", "docs/", False),
    (".github/connector-gate.yml", ".github/*.yml", True),
    ("a.b/c", "a?b/c", True),
    ("a/b", "a?b", False),
    ("connectors/x[1]/f", "connectors/x[1]/f", True),
]


@pytest.mark.parametrize(("path", "glob", "matches"), CASES)
def test_glob_match(path: str, glob: str, matches: bool) -> None:
    assert glob_match(path, glob) is matches


def test_any_match() -> None:
    assert any_match(("README.md", "connectors/a/x.py"), ("docs/**", "**/*.py"))
    assert not any_match((), ("**",))
