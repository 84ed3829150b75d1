"""When an approval rule applies, and how many approvals risk makes it need."""

from __future__ import annotations

from dataclasses import dataclass

from bot.gate.globs import any_match
from bot.gate.model import PullRequestFacts, RiskScore
from checks.rules_model import ApprovalCondition, RiskRules


@dataclass(frozen=True, slots=True)
class Applicability:
    """Whether a rule's `when` holds, with the reasons in words."""

    applies: bool
    """True when every given part holds."""
    reasons: tuple[str, ...]
    """Why it applies (each part that held), or the first part that did not hold."""


def classifications(pr: PullRequestFacts) -> set[str] | None:
    """Data classifications of the changed connectors; None when one manifest is unreadable."""
    found = set()
    for connector in pr.connectors:
        if connector.manifest is None:
            return None
        found.add(connector.manifest.data_classification)
    return found


def condition_applies(
    when: ApprovalCondition, pr: PullRequestFacts, risk: RiskScore
) -> Applicability:
    """Every given part of `when` must hold; an empty condition always holds."""
    reasons: list[str] = []
    for holds, reason in _parts(when, pr, risk):
        if not holds:
            return Applicability(False, (f"does not apply: {reason}",))
        reasons.append(reason)
    return Applicability(True, tuple(reasons) or ("always required",))


def _parts(
    when: ApprovalCondition, pr: PullRequestFacts, risk: RiskScore
) -> list[tuple[bool, str]]:
    parts: list[tuple[bool, str]] = []
    if when.changed:
        holds = any_match(pr.changed_files, when.changed)
        parts.append((holds, f"changed files {_verb(holds)} {', '.join(when.changed)}"))
    if when.labels:
        holds = bool({x.lower() for x in pr.labels} & {x.lower() for x in when.labels})
        parts.append((holds, f"labels {_verb(holds)} {', '.join(when.labels)}"))
    if when.data_classification:
        parts.append(_classification_part(when.data_classification, pr))
    if when.min_risk:
        holds = risk.total >= when.min_risk
        sign = ">=" if holds else "<"
        parts.append((holds, f"risk score {risk.total} {sign} {when.min_risk}"))
    return parts


def _classification_part(wanted: tuple[str, ...], pr: PullRequestFacts) -> tuple[bool, str]:
    """An unreadable manifest counts as matching: unknown data is treated as sensitive."""
    found = classifications(pr)
    if found is None:
        return True, "a connector's data classification is unknown (manifest unreadable)"
    holds = bool(found & set(wanted))
    shown = ", ".join(sorted(found)) or "no connector"
    return holds, f"data classification {shown} {_verb(holds)} {', '.join(wanted)}"


def _verb(holds: bool) -> str:
    return "match" if holds else "do not match"


def risk_additions(risk_rules: RiskRules, rule_name: str, score: int) -> list[tuple[int, str]]:
    """Extra approvals (with their reason) that the score adds to rule `rule_name`."""
    return [
        (
            raise_.add[rule_name],
            f"risk score {score} >= {raise_.min_score} adds {raise_.add[rule_name]}",
        )
        for raise_ in risk_rules.raises
        if score >= raise_.min_score and raise_.add.get(rule_name, 0) > 0
    ]
