"""`/gate` commands in pull-request comments: help, status, rerun, waive, unwaive."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gidgethub import routing, sansio

from bot.gate.commands import parse_commands
from bot.gate.decide import (
    ActorFacts,
    CommandContext,
    CommandOutcome,
    Decision,
    RerunAction,
    UnwaiveAction,
    WaiveAction,
    decide,
)
from bot.github import PullRequest, RepoRef
from bot.review.checkruns import check_states
from bot.review.gate_step import memberships, stored_waivers, today
from bot.review.job import latest_snapshot, reevaluate_gate, review_pull_request
from bot.review.rules_source import load_rules
from bot.routes.common import RouteContext, repo_of
from bot.storage import AuditEntry, Waiver
from checks.registry import CHECK_NAMES
from checks.rules_model import Rules

router = routing.Router()


async def _actor(
    ctx: RouteContext, repo: RepoRef, user: dict[str, Any], rules: Rules
) -> ActorFacts:
    login = str(user.get("login", ""))
    is_bot = user.get("type") == "Bot"
    if is_bot:
        return ActorFacts(login, is_bot=True)
    permission = await ctx.gh.collaborator_permission(repo, login)
    found = await memberships(ctx.gh, repo.owner, rules, [login])
    teams = found.get(login, frozenset())
    return ActorFacts(login, False, permission, teams)


async def _command_context(
    ctx: RouteContext, repo: RepoRef, pr: PullRequest, rules: Rules
) -> CommandContext:
    job = ctx.job(repo, pr)
    snapshot = await latest_snapshot(ctx.deps, job)
    waivers = await stored_waivers(ctx.deps, job)
    states = check_states(snapshot.reports if snapshot else (), waivers, today(ctx.deps))
    findings = tuple(f for s in states for cr in s.results for f in cr.result.findings)
    return CommandContext(rules, repo.owner, pr.author, today(ctx.deps), findings, waivers)


async def _act(
    ctx: RouteContext, repo: RepoRef, pr: PullRequest, actor: str, outcome: CommandOutcome
) -> None:
    job = ctx.job(repo, pr, actor)
    action = outcome.action
    if isinstance(action, WaiveAction):
        waiver = action.waiver
        until = dt.datetime.combine(waiver.until, dt.time.max, tzinfo=dt.UTC)
        await ctx.deps.storage.add_waiver(
            Waiver(
                job.full_name, pr.number, waiver.finding_id, waiver.reason, waiver.waived_by, until
            )
        )
    elif isinstance(action, UnwaiveAction):
        await ctx.deps.storage.revoke_waiver(job.full_name, pr.number, action.finding_id)
    if isinstance(action, RerunAction):
        only = () if set(action.checks) >= set(CHECK_NAMES) else action.checks
        await review_pull_request(ctx.deps, ctx.job(repo, pr, actor, tuple(only)))
    elif action is not None:
        await reevaluate_gate(ctx.deps, job)


@router.register("issue_comment", action="created")
async def gate_command(event: sansio.Event, ctx: RouteContext) -> None:
    issue, comment = event.data["issue"], event.data["comment"]
    if "pull_request" not in issue:
        return  # commands only mean something on pull requests
    commands = parse_commands(str(comment.get("body", "")))
    if not commands:
        return
    repo = repo_of(event.data)
    pr = await ctx.gh.get_pull_request(repo, int(issue["number"]))
    rules = await load_rules(ctx.gh, repo, pr.default_branch)
    if not isinstance(rules, Rules):
        rules = Rules()  # invalid rules: no approval rule exists, so nobody may waive
    actor = await _actor(ctx, repo, comment["user"], rules)
    context = await _command_context(ctx, repo, pr, rules)
    for command in commands:
        outcome = decide(command, actor, context)
        if outcome.decision is Decision.IGNORED:
            return
        await ctx.gh.add_reaction(
            repo, int(comment["id"]), "+1" if outcome.decision is Decision.ALLOWED else "-1"
        )
        await ctx.deps.storage.append_audit(
            AuditEntry(
                actor=actor.login,
                kind=f"command.{type(command).__name__.removesuffix('Command').lower()}",
                repo=f"{repo.owner}/{repo.name}",
                pr=pr.number,
                head_sha=pr.head_sha,
                delivery_id=ctx.delivery_id,
                detail={"decision": outcome.decision.value, "command": repr(command)},
            )
        )
        if outcome.reply:
            await ctx.gh.create_issue_comment(repo, pr.number, outcome.reply)
        if outcome.decision is Decision.ALLOWED:
            await _act(ctx, repo, pr, actor.login, outcome)
