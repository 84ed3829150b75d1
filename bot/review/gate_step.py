"""Evaluate the gate for a head commit and show it: the gate check run and the summary comment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.gate.evaluate import evaluate
from bot.gate.model import (
    GateInput,
    GateResult,
    PullRequestFacts,
    Review,
    ReviewState,
    Verdict,
    Waiver,
    states_from_reports,
)
from bot.gate.proposal import RulesProposal, propose
from bot.github import CheckRun, CheckRunOutput, InstallationClient
from bot.render.conclusion import gate_check_state
from bot.render.gate import render_gate_output, render_proposal, render_summary_comment
from bot.render.markers import SUMMARY_MARKER_NAME
from bot.review.changes import RULES_FILE, touches_rules
from bot.review.checkruns import GATE_RUN, put_check_run
from bot.review.context import PullRequestJob, ReviewDeps
from bot.review.rules_source import load_rules
from bot.review.snapshot import ReviewSnapshot
from checks.errors import ConfigError
from checks.registry import CHECK_NAMES
from checks.rules_model import Rules

#: Audit kind of each published gate evaluation (its detail holds verdict and summary).
GATE_EVALUATED = "gate.evaluated"


def utc_today() -> dt.date:
    """The real date (UTC); the clock seam tests move to see waivers expire."""
    return dt.datetime.now(dt.UTC).date()


def today(deps: ReviewDeps) -> dt.date:
    return deps.today or utc_today()


@dataclass(frozen=True, slots=True)
class GateEvaluation:
    """The gate's result, and what the pull request's own rules file would change."""

    result: GateResult
    """The verdict under the rules in force (the default branch's)."""
    proposal: RulesProposal | None = None
    """Set when the pull request edits the rules file; never applied before merge."""


def _reviews(job: PullRequestJob, raw: Iterable[object]) -> tuple[Review, ...]:
    reviews = []
    for item in raw:
        state = getattr(item, "state", "")
        if state not in ReviewState.__members__:
            continue
        submitted = getattr(item, "submitted_at", "") or "1970-01-01T00:00:00Z"
        author = str(getattr(item, "author", ""))
        reviews.append(
            Review(
                user=author,
                state=ReviewState(state),
                commit_id=str(getattr(item, "commit_id", "")),
                submitted_at=dt.datetime.fromisoformat(submitted.replace("Z", "+00:00")),
                user_is_bot=author.endswith("[bot]"),
            )
        )
    return tuple(reviews)


def _teams(rules: Rules) -> set[str]:
    return {team for rule in rules.approvals for team in rule.teams}


async def memberships(
    gh: InstallationClient, org: str, rules: Rules, logins: Iterable[str]
) -> Mapping[str, frozenset[str]]:
    """Team slugs (of the approval rules) each login belongs to; cached by the client."""
    teams = _teams(rules)
    found: dict[str, frozenset[str]] = {}
    for login in sorted(set(logins)):
        found[login] = frozenset(
            [t for t in sorted(teams) if await gh.is_team_member(org, t, login)]
        )
    return found


async def stored_waivers(deps: ReviewDeps, job: PullRequestJob) -> tuple[Waiver, ...]:
    rows = await deps.storage.active_waivers(job.full_name, job.pr.number)
    return tuple(
        Waiver(
            finding_id=w.finding_id,
            reason=w.reason,
            waived_by=w.by,
            until=(w.until or dt.datetime.max.replace(tzinfo=dt.UTC)).date(),
        )
        for w in rows
    )


async def _gate_input(
    deps: ReviewDeps,
    job: PullRequestJob,
    rules: Rules | ConfigError,
    snapshot: ReviewSnapshot,
    running: Sequence[str],
    proposed: Rules | ConfigError | None,
) -> GateInput:
    reviews = _reviews(job, await job.gh.list_reviews(job.repo, job.pr.number))
    members: dict[str, frozenset[str]] = {}
    for source in (rules, proposed):
        if isinstance(source, Rules):
            found = await memberships(job.gh, job.repo.owner, source, (r.user for r in reviews))
            for login, teams in found.items():
                members[login] = members.get(login, frozenset()) | teams
    return GateInput(
        rules=rules,
        pr=PullRequestFacts(
            org=job.repo.owner,
            author=job.pr.author,
            head_sha=job.pr.head_sha,
            changed_files=snapshot.changed_files,
            labels=job.pr.labels,
            connectors=snapshot.connector_facts(),
            files_truncated=snapshot.files_truncated,
        ),
        checks=states_from_reports(snapshot.reports, running=running, expected=CHECK_NAMES),
        today=today(deps),
        reviews=reviews,
        memberships=members,
        waivers=await stored_waivers(deps, job),
    )


async def proposed_rules(
    job: PullRequestJob, snapshot: ReviewSnapshot
) -> tuple[Rules | ConfigError, str] | None:
    """The pull request's version of the rules file (at its head commit), when it edits it."""
    if not touches_rules(snapshot.changed_files):
        return None
    file = f"{job.full_name}@{job.pr.head_sha}:{RULES_FILE}"
    return await load_rules(job.gh, job.repo, job.pr.head_sha), file


async def evaluate_gate(
    deps: ReviewDeps,
    job: PullRequestJob,
    rules: Rules | ConfigError,
    snapshot: ReviewSnapshot,
    running: Sequence[str] = (),
) -> GateEvaluation:
    """Gather reviews, memberships and waivers, then run the pure evaluation.

    A pull request that edits the rules file is still judged by `rules` (the default
    branch's); its own version is only validated and compared.
    """
    proposal = await proposed_rules(job, snapshot)
    gate_input = await _gate_input(
        deps, job, rules, snapshot, running, proposal[0] if proposal else None
    )
    result = evaluate(gate_input)
    if proposal is None:
        return GateEvaluation(result)
    return GateEvaluation(result, propose(gate_input, *proposal))


async def no_connector_output(
    deps: ReviewDeps, job: PullRequestJob, rules: Rules, snapshot: ReviewSnapshot
) -> CheckRunOutput:
    """The gate's output when no connector changed; a rules change still gets validated."""
    summary = "This pull request changes no connector directory, so no approval is required."
    if touches_rules(snapshot.changed_files):
        proposal = (await evaluate_gate(deps, job, rules, snapshot)).proposal
        summary += f"\n\n{render_proposal(proposal)}" if proposal else ""
    return CheckRunOutput("No connector changed", summary)


async def publish_gate(
    deps: ReviewDeps,
    job: PullRequestJob,
    evaluation: GateEvaluation,
    existing: Mapping[str, CheckRun],
    details_url: str = "",
) -> None:
    """The gate check run, the sticky summary comment and an audit record."""
    result, proposal = evaluation.result, evaluation.proposal
    state = gate_check_state(result)
    await put_check_run(
        job.gh,
        job.repo,
        job.pr.head_sha,
        GATE_RUN,
        existing,
        output=render_gate_output(result, proposal),
        conclusion=state.conclusion,
        details_url=details_url,
    )
    await job.gh.upsert_sticky_comment(
        job.repo,
        job.pr.number,
        SUMMARY_MARKER_NAME,
        render_summary_comment(result, job.pr.head_sha, proposal),
    )
    detail: dict[str, object] = {
        "verdict": result.verdict.value,
        "summary": result.summary,
        "approvals": [
            {"rule": a.rule, "required": a.required, "approvers": list(a.approvers)}
            for a in result.approvals
        ],
        "risk": result.risk.total,
    }
    if proposal:
        detail["proposed_rules"] = proposal.problem or "valid"
    await deps.storage.append_audit(job.audit_entry(GATE_EVALUATED, detail))


async def latest_gate_verdict(deps: ReviewDeps, job: PullRequestJob) -> tuple[Verdict, str] | None:
    """The last published verdict (and its summary) for the PR's current head, if any."""
    for record in reversed(await deps.storage.audit_entries(job.full_name, job.pr.number)):
        entry = record.entry
        if entry.kind == GATE_EVALUATED and entry.head_sha == job.pr.head_sha:
            return Verdict(str(entry.detail["verdict"])), str(entry.detail.get("summary", ""))
    return None
