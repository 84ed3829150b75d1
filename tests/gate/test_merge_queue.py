"""The gate in a merge queue: which PRs a group holds, and whether it may merge."""

from __future__ import annotations

import pytest

from bot.gate.merge_queue import QueuedPull, decide_merge_group, queued_pull_numbers
from bot.gate.model import Verdict

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("head_ref", "numbers"),
    [
        (f"refs/heads/gh-readonly-queue/main/pr-123-{SHA}", (123,)),
        (f"refs/heads/gh-readonly-queue/release/v2/pr-7-{SHA}", (7,)),
        (f"refs/heads/gh-readonly-queue/main/pr-5-{SHA}/pr-6-{SHA}", (5, 6)),
        (f"refs/heads/gh-readonly-queue/main/pr-5-{SHA}/pr-5-{SHA}", (5,)),
        (f"refs/heads/main/pr-123-{SHA}", ()),
        ("refs/heads/gh-readonly-queue/main/pr-abc-123", ()),
        ("refs/heads/gh-readonly-queue/main/", ()),
    ],
)
def test_queued_pull_numbers(head_ref: str, numbers: tuple[int, ...]) -> None:
    assert queued_pull_numbers(head_ref) == numbers


def test_every_pull_passing_passes() -> None:
    decision = decide_merge_group([QueuedPull(1, SHA, Verdict.PASS, "ready")])
    assert decision.passed
    assert decision.title == "Merge queue: the gate passed for #1"
    assert decision.lines == ("✅ #1 at `0123456`: the gate passed",)


@pytest.mark.parametrize(
    ("pulls", "line"),
    [
        ([], "❌ no pull request could be read from the merge group's branch name"),
        (
            [QueuedPull(2, SHA, Verdict.PENDING, "waiting on 1 approval from @acme/ops")],
            "❌ #2 at `0123456`: gate pending: waiting on 1 approval from @acme/ops",
        ),
        (
            [QueuedPull(3, SHA, reason="the gate has not decided on this head")],
            "❌ #3 at `0123456`: the gate has not decided on this head",
        ),
        ([QueuedPull(4, reason="no such pull request")], "❌ #4: no such pull request"),
        (
            [QueuedPull(5, SHA, Verdict.PASS), QueuedPull(6, SHA, Verdict.FAIL, "rules invalid")],
            "❌ #6 at `0123456`: gate fail: rules invalid",
        ),
    ],
)
def test_anything_short_of_a_pass_fails(pulls: list[QueuedPull], line: str) -> None:
    decision = decide_merge_group(pulls)
    assert not decision.passed
    assert line in decision.lines
