"""Changed connectors are found from the PR's files and the rules' globs."""

from __future__ import annotations

import pytest

from bot.review.changes import changed_connectors, touches_rules


@pytest.mark.parametrize(
    ("paths", "globs", "expected"),
    [
        (["connectors/acme/client.py"], ["connectors/*"], ("connectors/acme",)),
        (["connectors/acme/a/b/c.py", "connectors/acme/x"], ["connectors/*"], ("connectors/acme",)),
        (["README.md", "docs/x.md"], ["connectors/*"], ()),
        (["connectors/README.md"], ["connectors/*"], ()),
        (["connectors/b/x", "connectors/a/y"], ["connectors/*"], ("connectors/a", "connectors/b")),
        (["plugins/http/x/conn.py"], ["plugins/*/*"], ("plugins/http/x",)),
        (
            ["examples/connectors/leaky/x.py"],
            ["examples/connectors/*"],
            ("examples/connectors/leaky",),
        ),
    ],
)
def test_changed_connectors(paths: list[str], globs: list[str], expected: tuple[str, ...]) -> None:
    assert changed_connectors(paths, globs) == expected


def test_rules_file_change_is_noticed() -> None:
    assert touches_rules(["connectors/a/x", ".github/connector-gate.yml"])
    assert not touches_rules(["connectors/a/.github/connector-gate.yml"])
