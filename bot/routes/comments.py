"""`/gate` commands in pull-request comments: help, status, rerun, waive, unwaive."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from gidgethub import routing, sansio

from bot.gate.commands import Command, parse_commands
from bot.gate.decide import (
    ActorFacts,
    CommandContext,
    CommandOutcome,
    Decision,
    RerunAction,
    UnwaiveAction,
    WaiveAction,
    check_of_id,
    decide,
)
from bot.github import PullRequest, RepoRef
from bot.render.checkrun import check_conclusion, render_check_run
from bot.render.conclusion import github_conclusion
from bot.render.text import neutralise_prose
from bot.review.checkruns import check_states, put_check_run, run_name
from bot.review.context import PullRequestJob
from bot.review.gate_step import memberships, stored_waivers, today
from bot.review.job import latest_snapshot, reevaluate_gate, review_pull_request
from bot.review.rules_source import load_rules
from bot.routes.common import RouteContext, repo_of
from bot.storage import Waiver
from checks.registry import CHECK_NAMES
from checks.rules_model import Rules

router = routing.Router()


async def _actor(
    ctx: RouteContext, repo: RepoRef, user: dict[str, Any], rules: Rules
) -> ActorFacts:
    login = str(user.get("login", ""))
    if user.get("type") == "Bot":
        return ActorFacts(login, is_bot=True)
    permission = await ctx.gh.collaborator_permission(repo, login)
    found = await memberships(ctx.gh, repo.owner, rules, [login])
    return ActorFacts(login, False, permission, found.get(login, frozenset()))


async def _command_context(ctx: RouteContext, job: PullRequestJob, rules: Rules) -> CommandContext:
    snapshot = await latest_snapshot(ctx.deps, job)
    waivers = await stored_waivers(ctx.deps, job)
    states = check_states(snapshot.reports if snapshot else (), waivers, today(ctx.deps))
    findings = tuple(f for s in states for cr in s.results for f in cr.result.findings)
    return CommandContext(rules, job.repo.owner, job.pr.author, today(ctx.deps), findings, waivers)


async def _refresh_check_run(ctx: RouteContext, job: PullRequestJob, check: str) -> None:
    """Show a waiver change in the check run of the finding's check, not only in the gate.

    The annotations are left as they are: GitHub appends those of every update, so sending
    them again would list each finding twice.
    """
    snapshot = await latest_snapshot(ctx.deps, job)
    if snapshot is None:
        return
    waivers = await stored_waivers(ctx.deps, job)
    states = check_states(snapshot.reports, waivers, today(ctx.deps))
    state = next((s for s in states if s.check == check and s.results), None)
    if state is None:
        return
    name = run_name(check)
    existing = {r.name: r for r in await job.gh.list_check_runs(job.repo, job.pr.head_sha, name)}
    if name not in existing:
        return  # never published: the next review creates it with the waiver shown
    await put_check_run(
        job.gh,
        job.repo,
        job.pr.head_sha,
        name,
        existing,
        output=dataclasses.replace(render_check_run(state), annotations=()),
        conclusion=github_conclusion(check_conclusion(state)),
    )


async def _store_waiver_change(
    ctx: RouteContext, job: PullRequestJob, action: WaiveAction | UnwaiveAction
) -> None:
    if isinstance(action, WaiveAction):
        waiver = action.waiver
        # Stored as the end of the last day, so storage keeps it as long as the gate counts it.
        until = dt.datetime.combine(waiver.until, dt.time.max, tzinfo=dt.UTC)
        await ctx.deps.storage.add_waiver(
            Waiver(
                job.full_name,
                job.pr.number,
                waiver.finding_id,
                waiver.reason,
                waiver.waived_by,
                until,
            )
        )
    else:
        await ctx.deps.storage.revoke_waiver(job.full_name, job.pr.number, action.finding_id)


async def _act(
    ctx: RouteContext, job: PullRequestJob, outcome: CommandOutcome, context: CommandContext
) -> None:
    action = outcome.action
    if isinstance(action, RerunAction):
        only = () if set(action.checks) >= set(CHECK_NAMES) else action.checks
        await review_pull_request(ctx.deps, dataclasses.replace(job, only=tuple(only)))
        return
    if isinstance(action, WaiveAction | UnwaiveAction):
        await _store_waiver_change(ctx, job, action)
        finding_id = (
            action.waiver.finding_id if isinstance(action, WaiveAction) else action.finding_id
        )
        await _refresh_check_run(ctx, job, check_of_id(finding_id, context))
    if action is not None:
        await reevaluate_gate(ctx.deps, job)


def _audit_detail(command: Command, outcome: CommandOutcome) -> dict[str, object]:
    detail: dict[str, object] = {"decision": outcome.decision.value, "command": repr(command)}
    if isinstance(outcome.action, WaiveAction):
        waiver = outcome.action.waiver
        detail |= {
            "finding_id": waiver.finding_id,
            "reason": waiver.reason,
            "until": waiver.until.isoformat(),
        }
    elif isinstance(outcome.action, UnwaiveAction):
        detail["finding_id"] = outcome.action.finding_id
    return detail


async def _answer(
    ctx: RouteContext,
    job: PullRequestJob,
    comment_id: int,
    command: Command,
    outcome: CommandOutcome,
) -> None:
    """React, audit and reply: every command that is not ignored gets a reaction."""
    allowed = outcome.decision is Decision.ALLOWED
    await job.gh.add_reaction(job.repo, comment_id, "+1" if allowed else "-1")
    kind = f"command.{type(command).__name__.removesuffix('Command').lower()}"
    await ctx.deps.storage.append_audit(job.audit_entry(kind, _audit_detail(command, outcome)))
    if outcome.reply:
        # Replies name teams (`@acme/security`): shown, never pinged.
        await job.gh.create_issue_comment(job.repo, job.pr.number, neutralise_prose(outcome.reply))


async def _rules(ctx: RouteContext, repo: RepoRef, pr: PullRequest) -> Rules:
    rules = await load_rules(ctx.gh, repo, pr.default_branch)
    # Invalid rules hold no approval rule, so nobody may waive until they are fixed.
    return rules if isinstance(rules, Rules) else Rules()


@router.register("issue_comment", action="created")
async def gate_command(event: sansio.Event, ctx: RouteContext) -> None:
    issue, comment = event.data["issue"], event.data["comment"]
    if "pull_request" not in issue:
        return  # commands only mean something on pull requests
    commands = parse_commands(str(comment.get("body", "")))
    if not commands or comment.get("user", {}).get("type") == "Bot":
        return  # bots are never obeyed nor answered, so two bots cannot talk forever
    repo = repo_of(event.data)
    pr = await ctx.gh.get_pull_request(repo, int(issue["number"]))
    rules = await _rules(ctx, repo, pr)
    actor = await _actor(ctx, repo, comment["user"], rules)
    job = ctx.job(repo, pr, actor.login)
    for command in commands:
        context = await _command_context(ctx, job, rules)
        outcome = decide(command, actor, context)
        if outcome.decision is Decision.IGNORED:
            return
        await _answer(ctx, job, int(comment["id"]), command, outcome)
        if outcome.decision is Decision.ALLOWED:
            await _act(ctx, job, outcome, context)
