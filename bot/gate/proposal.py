"""What a pull request's own version of the rules file would change, were it merged (pure)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bot.gate.evaluate import evaluate
from bot.gate.model import ApprovalOutcome, GateInput, Verdict
from checks.errors import ConfigError
from checks.rules_model import Rules

#: Fields of Rules that say where the rules came from rather than what they require.
_BOOKKEEPING = frozenset({"source", "digest"})


@dataclass(frozen=True, slots=True)
class ApprovalChange:
    """One approval rule whose required approvals differ under the proposed rules."""

    rule: str
    """Rule name."""
    before: int
    """Approvals required by the rules in force (0: not required)."""
    after: int
    """Approvals the proposed rules would require (0: not required)."""


@dataclass(frozen=True, slots=True)
class RulesProposal:
    """The pull request's rules file, validated and compared; never applied before merge."""

    file: str
    """Where the proposed rules were read (`owner/repo@sha:.github/connector-gate.yml`)."""
    problem: str = ""
    """Why the proposed rules are invalid (file, line, key and message); empty when valid."""
    approvals: tuple[ApprovalChange, ...] = ()
    """Approval rules whose requirement for this pull request would change."""
    sections: tuple[str, ...] = ()
    """Top-level sections whose content differs (`approvals`, `waivers`...)."""
    verdict_before: Verdict | None = None
    """The gate's verdict under the rules in force."""
    verdict_after: Verdict | None = None
    """The verdict the proposed rules would give (None when they are invalid)."""

    @property
    def valid(self) -> bool:
        return not self.problem


def propose(gate: GateInput, proposed: Rules | ConfigError, file: str) -> RulesProposal:
    """Evaluate the pull request under the proposed rules too, and say what would differ."""
    if isinstance(proposed, ConfigError):
        return RulesProposal(file, problem=str(proposed))
    before = evaluate(gate)
    after = evaluate(dataclasses.replace(gate, rules=proposed))
    return RulesProposal(
        file,
        approvals=approval_changes(_required(before.approvals), _required(after.approvals)),
        sections=changed_sections(gate.rules, proposed),
        verdict_before=before.verdict,
        verdict_after=after.verdict,
    )


def _required(outcomes: tuple[ApprovalOutcome, ...]) -> dict[str, int]:
    return {outcome.rule: outcome.required for outcome in outcomes}


def approval_changes(before: dict[str, int], after: dict[str, int]) -> tuple[ApprovalChange, ...]:
    """Rules whose required count differs, in rule-name order (a missing rule requires 0)."""
    names = sorted(set(before) | set(after))
    return tuple(
        ApprovalChange(name, before.get(name, 0), after.get(name, 0))
        for name in names
        if before.get(name, 0) != after.get(name, 0)
    )


def changed_sections(current: Rules | ConfigError, proposed: Rules) -> tuple[str, ...]:
    """Top-level sections that differ, ignoring where each rule sits in the file."""
    if isinstance(current, ConfigError):
        return ()
    return tuple(
        field.name
        for field in dataclasses.fields(Rules)
        if field.name not in _BOOKKEEPING
        and _comparable(getattr(current, field.name)) != _comparable(getattr(proposed, field.name))
    )


def _comparable(value: object) -> object:
    """Approval rules without their line numbers: moving a rule in the file changes nothing."""
    if isinstance(value, tuple):
        return tuple(_comparable(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and hasattr(value, "line"):
        return dataclasses.replace(value, line=0)
    return value
