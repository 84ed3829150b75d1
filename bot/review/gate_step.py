"""Evaluate the gate for a head commit and show it: the gate check run and the summary comment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from bot.gate.evaluate import evaluate
from bot.gate.model import (
    GateInput,
    GateResult,
    PullRequestFacts,
    Review,
    ReviewState,
    Waiver,
    states_from_reports,
)
from bot.github import CheckRun, InstallationClient
from bot.render.conclusion import gate_check_state
from bot.render.gate import render_gate_output, render_summary_comment
from bot.render.markers import SUMMARY_MARKER_NAME
from bot.review.checkruns import GATE_RUN, put_check_run
from bot.review.context import PullRequestJob, ReviewDeps
from bot.review.snapshot import ReviewSnapshot
from bot.storage import AuditEntry
from checks.errors import ConfigError
from checks.registry import CHECK_NAMES
from checks.rules_model import Rules


def today(deps: ReviewDeps) -> dt.date:
    return deps.today or dt.datetime.now(dt.UTC).date()


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


async def evaluate_gate(
    deps: ReviewDeps,
    job: PullRequestJob,
    rules: Rules | ConfigError,
    snapshot: ReviewSnapshot,
    running: Sequence[str] = (),
) -> GateResult:
    """Gather reviews, memberships and waivers, then run the pure evaluation."""
    reviews = _reviews(job, await job.gh.list_reviews(job.repo, job.pr.number))
    members = (
        await memberships(job.gh, job.repo.owner, rules, (r.user for r in reviews))
        if isinstance(rules, Rules)
        else {}
    )
    gate_input = GateInput(
        rules=rules,
        pr=PullRequestFacts(
            org=job.repo.owner,
            author=job.pr.author,
            head_sha=job.pr.head_sha,
            changed_files=snapshot.changed_files,
            labels=job.pr.labels,
            connectors=snapshot.connector_facts(),
        ),
        checks=states_from_reports(snapshot.reports, running=running, expected=CHECK_NAMES),
        today=today(deps),
        reviews=reviews,
        memberships=members,
        waivers=await stored_waivers(deps, job),
    )
    return evaluate(gate_input)


async def publish_gate(
    deps: ReviewDeps,
    job: PullRequestJob,
    result: GateResult,
    existing: Mapping[str, CheckRun],
    details_url: str = "",
) -> None:
    """The gate check run, the sticky summary comment and an audit record."""
    state = gate_check_state(result)
    await put_check_run(
        job.gh,
        job.repo,
        job.pr.head_sha,
        GATE_RUN,
        existing,
        output=render_gate_output(result),
        conclusion=state.conclusion,
        details_url=details_url,
    )
    await job.gh.upsert_sticky_comment(
        job.repo,
        job.pr.number,
        SUMMARY_MARKER_NAME,
        render_summary_comment(result, job.pr.head_sha),
    )
    await deps.storage.append_audit(
        AuditEntry(
            actor=job.actor or "connector-gate",
            kind="gate.evaluated",
            repo=job.full_name,
            pr=job.pr.number,
            head_sha=job.pr.head_sha,
            delivery_id=job.delivery_id,
            detail={
                "verdict": result.verdict.value,
                "summary": result.summary,
                "approvals": [
                    {"rule": a.rule, "required": a.required, "approvers": list(a.approvers)}
                    for a in result.approvals
                ],
                "risk": result.risk.total,
            },
        )
    )
