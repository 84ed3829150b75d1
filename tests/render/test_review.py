"""Inline review comments: selection from the diff, markers and deduplication."""

from __future__ import annotations

import dataclasses

from bot.render.markers import commented_fingerprints, finding_marker
from bot.render.review import MAX_INLINE_COMMENTS, render_finding_comment, select_inline_comments
from checks.model import Severity
from tests.gate.factories import finding

PATH = "connectors/acme-weather/client.py"
PATCH = "@@ -1,3 +1,5 @@\n import os\n+KEY = 1\n+TOKEN = 2\n x = 1\n y = 2"  # RIGHT lines 1-5
ON_DIFF = finding(line=2)
OFF_DIFF = finding(line=40)
SPANNING = dataclasses.replace(finding(line=0, rule_id="r"), start_line=4, end_line=9)
WHOLE_FILE = finding(line=0, rule_id="whole")
NOT_BLOCKING = dataclasses.replace(
    finding(line=3, rule_id="low", severity=Severity.LOW), blocking=False
)
OTHER_FILE = finding(line=2, path="connectors/acme-weather/other.py")


def test_only_blocking_findings_on_diff_lines_are_chosen() -> None:
    chosen = select_inline_comments(
        [ON_DIFF, OFF_DIFF, SPANNING, WHOLE_FILE, NOT_BLOCKING, OTHER_FILE], {PATH: PATCH}
    )
    assert [(c.path, c.line, c.side) for c in chosen] == [(PATH, 2, "RIGHT"), (PATH, 4, "RIGHT")]
    assert chosen[0].fingerprint == ON_DIFF.fingerprint


def test_already_commented_findings_are_not_repeated() -> None:
    first = select_inline_comments([ON_DIFF], {PATH: PATCH})
    seen = commented_fingerprints(c.body for c in first)
    assert seen == {ON_DIFF.fingerprint}
    assert select_inline_comments([ON_DIFF, ON_DIFF], {PATH: PATCH}, seen) == ()


def test_the_same_finding_twice_gets_one_comment() -> None:
    assert len(select_inline_comments([ON_DIFF, ON_DIFF], {PATH: PATCH})) == 1


def test_comment_count_is_capped() -> None:
    patch = "@@ -0,0 +1,100 @@\n" + "\n".join(f"+l{i}" for i in range(100))
    many = [finding(line=i) for i in range(1, 60)]
    assert len(select_inline_comments(many, {PATH: patch})) == MAX_INLINE_COMMENTS


def test_comment_body() -> None:
    body = render_finding_comment(
        dataclasses.replace(ON_DIFF, message="key for @octocat <script>"), waiver_rule="security"
    )
    assert body.startswith(finding_marker(ON_DIFF.fingerprint) + "\n")
    assert f"<!-- connector-gate:finding:{ON_DIFF.fingerprint} -->" in body
    assert "key for @\u200boctocat &lt;script&gt;" in body
    assert "**How to fix:** Read it from the environment" in body
    assert f"`/gate waive {ON_DIFF.finding_id} <reason>`" in body
    assert "a member of the security approvers" in body


def test_marker_keeps_only_hex() -> None:
    assert finding_marker("ABC--> <x>def") == "<!-- connector-gate:finding:abcdef -->"
