"""merge_group events: the gate check run of a merge queue group reflects each PR's gate."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.gate.merge_queue import QueuedPull, decide_merge_group, queued_pull_numbers
from bot.github import CheckRunOutput, NotFound, RepoRef
from bot.render.text import neutralise_prose
from bot.review.checkruns import GATE_RUN, put_check_run
from bot.review.gate_step import latest_gate_verdict
from bot.routes.common import RouteContext, repo_of, sender_of
from bot.storage import AuditEntry

router = routing.Router()


async def _queued(ctx: RouteContext, repo: RepoRef, number: int) -> QueuedPull:
    try:
        pr = await ctx.gh.get_pull_request(repo, number)
    except NotFound:
        return QueuedPull(number, reason="no such pull request")
    stored = await latest_gate_verdict(ctx.deps, ctx.job(repo, pr))
    if stored is None:
        return QueuedPull(number, pr.head_sha, reason="the gate has not decided on this head")
    return QueuedPull(number, pr.head_sha, stored[0], stored[1])


@router.register("merge_group", action="checks_requested")
async def gate_merge_group(event: sansio.Event, ctx: RouteContext) -> None:
    repo, group = repo_of(event.data), event.data["merge_group"]
    head_sha = str(group["head_sha"])
    pulls = [await _queued(ctx, repo, n) for n in queued_pull_numbers(str(group["head_ref"]))]
    decision = decide_merge_group(pulls)
    summary = "\n".join(f"- {neutralise_prose(line)}" for line in decision.lines)
    existing = {r.name: r for r in await ctx.gh.list_check_runs(repo, head_sha, GATE_RUN)}
    await put_check_run(
        ctx.gh,
        repo,
        head_sha,
        GATE_RUN,
        existing,
        output=CheckRunOutput(decision.title, summary),
        conclusion="success" if decision.passed else "failure",
    )
    await ctx.deps.storage.append_audit(
        AuditEntry(
            actor=sender_of(event.data) or "connector-gate",
            kind="gate.merge_group",
            repo=f"{repo.owner}/{repo.name}",
            head_sha=head_sha,
            delivery_id=ctx.delivery_id,
            detail={"passed": decision.passed, "pulls": [p.number for p in pulls]},
        )
    )
