"""Performance baselines: connectors measured on the default branch, stored for later reviews."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.github import GitHubError, InstallationClient, RepoRef
from bot.review.changes import changed_connectors
from bot.review.context import PullRequestJob, ReviewDeps
from bot.review.rules_source import load_rules
from bot.review.workspace import fetched_workspace
from bot.storage import AuditEntry, PerfBaselineRecord
from checks.errors import ConfigError, UnsafeInputError
from checks.manifest_model import MANIFEST_FILE
from checks.model import CheckResult, ConnectorReport
from checks.registry import select_checks
from checks.rules_model import Rules
from checks.runner import Reviewer, Target

logger = logging.getLogger(__name__)

PERFORMANCE = "performance"
RECORDED_KIND = "perf.baseline.recorded"
NOT_RECORDED_KIND = "perf.baseline.not-recorded"

#: A push touching more connectors measures only the first ones (each load test takes a worker
#: for its whole duration); the others get measured on the base commit of their next PR.
MAX_CONNECTORS_PER_PUSH = 10

_JUDGED = ("pass", "fail")
_NO_COMMIT = "0" * 40


@dataclass(frozen=True, slots=True)
class PushFacts:
    """What a push event says about the branch it moved and the files it changed."""

    repo: RepoRef
    """Repository pushed to."""
    branch: str
    """Branch name without `refs/heads/` ("" for a tag)."""
    default_branch: str
    """The repository's default branch, as the payload states it."""
    after: str
    """Commit the branch points at after the push."""
    paths: tuple[str, ...]
    """Files the pushed commits added or modified, sorted."""
    deleted: bool
    """True when the push deleted the branch."""

    @property
    def lands_on_default_branch(self) -> bool:
        return bool(self.branch) and self.branch == self.default_branch and not self.deleted


@dataclass(frozen=True, slots=True)
class BaselineSource:
    """Which commit is measured and why, for the stored figures and the audit trail."""

    commit: str
    """Commit whose tree is measured."""
    reason: str
    """`push` (the default branch moved) or `base` (a PR found no baseline)."""
    actor: str
    """Who caused it (pusher or PR event sender)."""
    delivery_id: str
    """Webhook delivery that led to it."""
    pr: int | None = None
    """Pull request that asked for it, for `base` measurements."""


def pushed_paths(commits: Sequence[object]) -> tuple[str, ...]:
    """Files the commits added or modified (a removed file leaves nothing to measure)."""
    found = {
        str(path)
        for commit in commits
        if isinstance(commit, Mapping)
        for key in ("added", "modified")
        for path in commit.get(key) or ()
    }
    return tuple(sorted(found))


def push_facts(payload: Mapping[str, Any]) -> PushFacts:
    """The facts of a `push` payload; raises KeyError/ValueError when it names no repository."""
    repository = payload["repository"]
    ref = str(payload.get("ref", ""))
    after = str(payload.get("after", ""))
    return PushFacts(
        repo=RepoRef.parse(str(repository["full_name"])),
        branch=ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else "",
        default_branch=str(repository.get("default_branch") or ""),
        after=after,
        paths=pushed_paths(payload.get("commits") or ()),
        deleted=bool(payload.get("deleted")) or after in ("", _NO_COMMIT),
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def baseline_record(
    repo: str, connector: str, result: CheckResult, commit: str, at: datetime
) -> PerfBaselineRecord | None:
    """The figures worth keeping from a performance result: judged runs only, never invalid."""
    if result.data.get("verdict") not in _JUDGED:
        return None
    p95, rps, errors = (_number(result.data.get(k)) for k in ("p95_ms", "rps", "error_rate"))
    if p95 is None or rps is None or errors is None:
        return None
    return PerfBaselineRecord(repo, connector, p95, rps, errors, commit, at)


def wants_performance(only: Sequence[str]) -> bool:
    """Whether a review runs the performance check (`only` empty means every check)."""
    return not only or PERFORMANCE in {name.removeprefix("connector-gate/") for name in only}


def _targets(root: Path, connectors: Sequence[str]) -> list[Target]:
    return [
        Target(connector=Path(c).name, directory=root / c, display_path=c)
        for c in connectors
        if (root / c / MANIFEST_FILE).is_file()
    ]


async def _audit(
    deps: ReviewDeps, repo: RepoRef, source: BaselineSource, kind: str, detail: dict[str, Any]
) -> None:
    entry = AuditEntry(
        actor=source.actor or "connector-gate",
        kind=kind,
        repo=repo.full_name,
        pr=source.pr,
        head_sha=source.commit,
        delivery_id=source.delivery_id,
        detail={"source": source.reason, **detail},
    )
    await deps.storage.append_audit(entry)


async def _keep(
    deps: ReviewDeps, repo: RepoRef, report: ConnectorReport, source: BaselineSource
) -> PerfBaselineRecord | None:
    """Store a judged measurement; an invalid one is only audited, with its reason."""
    result = report.results[0]
    record = baseline_record(
        repo.full_name, report.connector, result, source.commit, deps.storage.now()
    )
    if record is None:
        reason = {"connector": report.connector, "reason": result.summary}
        await _audit(deps, repo, source, NOT_RECORDED_KIND, reason)
        return None
    await deps.storage.record_perf_baseline(record)
    figures = {"p95_ms": record.p95_ms, "rps": record.rps, "error_rate": record.error_rate}
    detail: dict[str, Any] = {
        "connector": record.connector,
        "verdict": result.data["verdict"],
        **figures,
    }
    await _audit(deps, repo, source, RECORDED_KIND, detail)
    return record


async def measure_baselines(
    deps: ReviewDeps,
    gh: InstallationClient,
    repo: RepoRef,
    rules: Rules,
    connectors: Sequence[str],
    source: BaselineSource,
) -> tuple[PerfBaselineRecord, ...]:
    """Run only the performance check on `connectors` at `source.commit`; store judged runs."""
    # The repository's own commit, not a fork's; and no result cache, so the stored time is
    # when these figures were really measured.
    settings = dataclasses.replace(deps.check_settings, is_fork=False, cache_dir=None)
    reviewer = Reviewer(select_checks((PERFORMANCE,)), rules, settings)
    async with fetched_workspace(
        gh, repo, source.commit, source.commit, (), deps.work_dir
    ) as workspace:
        reports = await reviewer.review(_targets(workspace.head, connectors))
    kept = [await _keep(deps, repo, report, source) for report in reports]
    return tuple(record for record in kept if record is not None)


async def record_push_baselines(
    deps: ReviewDeps, gh: InstallationClient, push: PushFacts, delivery_id: str, actor: str
) -> tuple[PerfBaselineRecord, ...]:
    """After a push to the default branch: measure and store the connectors it changed."""
    if not push.lands_on_default_branch:
        return ()
    rules = await load_rules(gh, push.repo, push.default_branch)
    if isinstance(rules, ConfigError):
        logger.warning("rules invalid on the default branch; no baseline recorded: %s", rules)
        return ()
    connectors = changed_connectors(push.paths, rules.connectors)
    if not connectors:
        return ()
    if len(connectors) > MAX_CONNECTORS_PER_PUSH:
        logger.warning(
            "push changes %d connectors; measuring the first %d",
            len(connectors),
            MAX_CONNECTORS_PER_PUSH,
        )
    source = BaselineSource(push.after, "push", actor, delivery_id)
    chosen = connectors[:MAX_CONNECTORS_PER_PUSH]
    return await measure_baselines(deps, gh, push.repo, rules, chosen, source)


async def _tried_before(deps: ReviewDeps, job: PullRequestJob, connector: str) -> bool:
    """A base commit whose run was invalid is not measured again for the same PR."""
    for record in await deps.storage.audit_entries(job.full_name, job.pr.number):
        entry = record.entry
        if (
            entry.kind == NOT_RECORDED_KIND
            and entry.head_sha == job.pr.base_sha
            and entry.detail.get("connector") == connector
        ):
            return True
    return False


async def _missing(deps: ReviewDeps, job: PullRequestJob, connectors: Sequence[str]) -> list[str]:
    missing = []
    for path in connectors:
        name = Path(path).name
        stored = await deps.storage.latest_perf_baseline(job.full_name, name)
        if stored is None and not await _tried_before(deps, job, name):
            missing.append(path)
    return missing


async def measure_missing_base_baselines(
    deps: ReviewDeps, job: PullRequestJob, rules: Rules, on_base: Sequence[str]
) -> tuple[PerfBaselineRecord, ...]:
    """Before a review: measure on the base commit the connectors (existing there) that have
    no stored baseline, so the PR's figures have something to be compared with."""
    pr = job.pr
    targets_default = not pr.default_branch or pr.base_ref == pr.default_branch
    if not (wants_performance(job.only) and targets_default and on_base):
        return ()
    missing = await _missing(deps, job, on_base)
    if not missing:
        return ()
    source = BaselineSource(pr.base_sha, "base", job.actor, job.delivery_id, pr.number)
    try:
        return await measure_baselines(deps, job.gh, job.repo, rules, missing, source)
    except (GitHubError, UnsafeInputError) as exc:
        # The review goes on without a baseline: the check then says "no baseline".
        logger.warning("base commit %s not measured: %s", pr.base_sha[:12], exc)
        return ()
