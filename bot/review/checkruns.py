"""Publishing the six check runs of a head commit: created once, updated on re-runs."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

from bot.gate.model import CheckState, RunStatus, Waiver, states_from_reports
from bot.gate.waivers import apply_waivers_to_states
from bot.github import CheckRun, CheckRunOutput, InstallationClient, RepoRef
from bot.github.models import CheckStatus, GitHubConclusion
from bot.render.checkrun import check_conclusion, render_check_run
from bot.render.conclusion import github_conclusion
from checks.model import ConnectorReport
from checks.registry import CHECK_NAMES

CHECK_RUN_PREFIX = "connector-gate/"
GATE_RUN = f"{CHECK_RUN_PREFIX}gate"


def run_name(check: str) -> str:
    return f"{CHECK_RUN_PREFIX}{check}"


def external_id(head_sha: str, name: str) -> str:
    """Stable id of our run for (head, name): lets a retried job find what it created."""
    return f"{head_sha}:{name}"


def check_states(
    reports: Sequence[ConnectorReport], waivers: Sequence[Waiver], today: dt.date
) -> tuple[CheckState, ...]:
    states = states_from_reports(reports, expected=CHECK_NAMES)
    return apply_waivers_to_states(states, waivers, today)


async def put_check_run(
    gh: InstallationClient,
    repo: RepoRef,
    head_sha: str,
    name: str,
    existing: Mapping[str, CheckRun],
    *,
    output: CheckRunOutput,
    conclusion: GitHubConclusion | None,
    details_url: str = "",
) -> CheckRun:
    """Create the run, or update the one a previous attempt created (never two per name)."""
    run = existing.get(name)
    status: CheckStatus = "completed" if conclusion else "in_progress"
    if run is None:
        return await gh.create_check_run(
            repo,
            name=name,
            head_sha=head_sha,
            external_id=external_id(head_sha, name),
            status=status,
            conclusion=conclusion,
            output=output,
            details_url=details_url,
        )
    if run.annotations_count:
        # GitHub appends the annotations of every update: the run already shows them.
        output = dataclasses.replace(output, annotations=())
    return await gh.update_check_run(
        repo,
        run.id,
        status=status,
        conclusion=conclusion,
        output=output,
        details_url=details_url,
    )


async def publish_check_runs(
    gh: InstallationClient,
    repo: RepoRef,
    head_sha: str,
    states: Sequence[CheckState],
    existing: Mapping[str, CheckRun],
    details_url: str = "",
) -> None:
    for state in states:
        if state.status is not RunStatus.COMPLETED:
            continue
        await put_check_run(
            gh,
            repo,
            head_sha,
            run_name(state.check),
            existing,
            output=render_check_run(state),
            conclusion=github_conclusion(check_conclusion(state)),
            details_url=details_url,
        )
