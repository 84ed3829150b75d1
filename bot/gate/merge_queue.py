"""The gate in a merge queue: which PRs a merge group holds and whether each has passed (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.gate.model import Verdict

#: `refs/heads/gh-readonly-queue/<base>/pr-<number>-<sha>`: GitHub's merge group branches.
_QUEUED_PR = re.compile(r"(?:^|/)pr-(\d+)-[0-9a-f]{7,64}(?=/|$)")
_QUEUE_PREFIX = "refs/heads/gh-readonly-queue/"


@dataclass(frozen=True, slots=True)
class QueuedPull:
    """A pull request of a merge group, with the gate's last word on its current head."""

    number: int
    """PR number."""
    head_sha: str = ""
    """Its current head commit (empty when the PR could not be read)."""
    verdict: Verdict | None = None
    """The stored gate verdict for that head; None when the gate never decided on it."""
    reason: str = ""
    """The gate's summary for that verdict, or why there is none."""


@dataclass(frozen=True, slots=True)
class MergeGroupDecision:
    """What the gate check run of a merge group says."""

    passed: bool
    """True only when every PR of the group has a passing gate on its current head."""
    title: str
    """One line for the check run's title."""
    lines: tuple[str, ...]
    """One line per PR (or why none was found)."""


def queued_pull_numbers(head_ref: str) -> tuple[int, ...]:
    """PR numbers named by a merge group's head ref, in order; () when it is not one."""
    if not head_ref.startswith(_QUEUE_PREFIX):
        return ()
    numbers = (int(n) for n in _QUEUED_PR.findall(head_ref.removeprefix(_QUEUE_PREFIX)))
    return tuple(dict.fromkeys(numbers))


def _line(pull: QueuedPull) -> str:
    head = f" at `{pull.head_sha[:7]}`" if pull.head_sha else ""
    if pull.verdict is Verdict.PASS:
        return f"✅ #{pull.number}{head}: the gate passed"
    if pull.verdict is None:
        return f"❌ #{pull.number}{head}: {pull.reason or 'the gate has not decided on this head'}"
    return f"❌ #{pull.number}{head}: gate {pull.verdict}: {pull.reason}"


def decide_merge_group(pulls: Sequence[QueuedPull]) -> MergeGroupDecision:
    """Success only if each PR's gate passed on its current head; fails closed otherwise."""
    if not pulls:
        reason = "no pull request could be read from the merge group's branch name"
        return MergeGroupDecision(False, f"Merge queue: {reason}", (f"❌ {reason}",))
    lines = tuple(_line(p) for p in pulls)
    failed = [p.number for p in pulls if p.verdict is not Verdict.PASS]
    if not failed:
        shown = ", ".join(f"#{p.number}" for p in pulls)
        return MergeGroupDecision(True, f"Merge queue: the gate passed for {shown}", lines)
    shown = ", ".join(f"#{n}" for n in failed)
    return MergeGroupDecision(False, f"Merge queue: the gate has not passed for {shown}", lines)
