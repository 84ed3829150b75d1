"""The one mapping from our verdicts to GitHub check-run status and conclusion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, assert_never

from bot.gate.model import GateResult, Verdict
from bot.github.models import GitHubConclusion
from checks.model import Conclusion

GitHubStatus = Literal["queued", "in_progress", "completed"]


def github_conclusion(conclusion: Conclusion) -> GitHubConclusion:
    """A check's conclusion as GitHub spells it; a broken check (ERROR) shows as a failure."""
    match conclusion:
        case Conclusion.SUCCESS:
            return "success"
        case Conclusion.FAILURE | Conclusion.ERROR:
            return "failure"
        case Conclusion.NEUTRAL:
            return "neutral"
        case Conclusion.SKIPPED:
            return "skipped"
        case _:
            assert_never(conclusion)


@dataclass(frozen=True, slots=True)
class CheckRunState:
    """Status and conclusion to send for a check run."""

    status: GitHubStatus
    """`completed` once decided, `in_progress` while waiting on checks."""
    conclusion: GitHubConclusion | None
    """None unless completed."""


def gate_check_state(result: GateResult) -> CheckRunState:
    """Pass is success, waiting on people is action_required, waiting on checks in_progress."""
    match result.verdict:
        case Verdict.PASS:
            return CheckRunState("completed", "success")
        case Verdict.FAIL:
            return CheckRunState("completed", "failure")
        case Verdict.PENDING if result.waiting_on_checks:
            return CheckRunState("in_progress", None)
        case Verdict.PENDING:
            return CheckRunState("completed", "action_required")
        case _:
            assert_never(result.verdict)
