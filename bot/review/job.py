"""The review of one pull request head: checks, check runs, gate, comments."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from bot.gate.model import CheckState, RunStatus
from bot.github import CheckRun, CheckRunOutput, PullRequestFile
from bot.github.models import ReviewComment
from bot.render.review import select_inline_comments
from bot.review.baseline import measure_missing_base_baselines
from bot.review.changes import changed_connectors
from bot.review.checkruns import GATE_RUN, check_states, publish_check_runs, put_check_run
from bot.review.context import PullRequestJob, ReviewDeps
from bot.review.gate_step import (
    evaluate_gate,
    no_connector_output,
    publish_gate,
    stored_waivers,
    today,
)
from bot.review.rules_source import load_rules
from bot.review.snapshot import ConnectorSource, ReviewSnapshot
from bot.review.workspace import Workspace, fetched_workspace
from checks.errors import ConfigError, UnsafeInputError
from checks.manifest_model import MANIFEST_FILE
from checks.model import (
    CheckResult,
    Conclusion,
    ConnectorReport,
    PerformanceBaseline,
    Severity,
    new_finding,
)
from checks.registry import CHECK_NAMES, select_checks
from checks.rules_model import Rules
from checks.runner import Reviewer, Target
from checks.scrub import scrub

logger = logging.getLogger(__name__)

SNAPSHOT_KIND = "review.snapshot"


def _not_run(connectors: Sequence[str], reason: str) -> tuple[ConnectorReport, ...]:
    """Every check concluded NEUTRAL with `reason`: nothing ran, so nothing passed."""
    results = tuple(CheckResult(c, Conclusion.NEUTRAL, reason) for c in CHECK_NAMES)
    return tuple(ConnectorReport(c.rsplit("/", 1)[-1], c, results) for c in connectors or ["-"])


def _refused_findings(report: ConnectorReport, workspace: Workspace) -> ConnectorReport:
    """Hostile archive members under this connector become blocking manifest findings."""
    refused = [m for m in workspace.refused if m.path.startswith(f"{report.path}/")]
    if not refused:
        return report
    findings = tuple(
        new_finding(
            check="manifest",
            rule_id="archive.refused-member",
            severity=Severity.CRITICAL,
            path=m.path,
            line=0,
            message=f"archive entry refused and not followed: {m.reason}",
            remediation="Remove the entry: connectors hold regular files inside their folder.",
            identity=(m.reason,),
            connector=report.connector,
        )
        for m in refused
    )
    results = tuple(
        dataclasses.replace(
            r,
            conclusion=Conclusion.FAILURE,
            summary=f"{len(findings)} archive entr{'y' if len(findings) == 1 else 'ies'} refused"
            + (f"; {r.summary}" if r.summary else ""),
            findings=findings + r.findings,
        )
        if r.check == "manifest"
        else r
        for r in report.results
    )
    return dataclasses.replace(report, results=results)


async def _baselines(
    deps: ReviewDeps, job: PullRequestJob, names: Sequence[str]
) -> dict[str, PerformanceBaseline]:
    found = {}
    for name in names:
        record = await deps.storage.latest_perf_baseline(job.full_name, name)
        if record is not None:
            found[name] = PerformanceBaseline(
                p95_ms=record.p95_ms,
                rps=record.rps,
                error_rate=record.error_rate,
                measured_at=record.measured_at.isoformat(),
                commit=record.commit,
            )
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _maybe_on_base(connectors: Sequence[str], files: Sequence[PullRequestFile]) -> list[str]:
    """Connectors whose manifest the base may hold: not those whose manifest this PR adds."""
    # Saves one contents call (a 404) per new connector, the usual pull request.
    added = {f.filename for f in files if f.status == "added"}
    return [c for c in connectors if f"{c}/{MANIFEST_FILE}" not in added]


async def _run_checks(
    deps: ReviewDeps,
    job: PullRequestJob,
    rules: Rules,
    connectors: Sequence[str],
    files: Sequence[PullRequestFile],
) -> tuple[tuple[ConnectorReport, ...], tuple[ConnectorSource, ...]]:
    base_manifests = _maybe_on_base(connectors, files)
    async with fetched_workspace(
        job.gh, job.repo, job.pr.head_sha, job.pr.base_sha, base_manifests, deps.work_dir
    ) as workspace:
        present = [c for c in connectors if (workspace.head / c).is_dir()]
        # No stored baseline yet: measure the base commit first (bot/review/baseline.py).
        on_base = [c for c in present if (workspace.base / c).is_dir()]
        await measure_missing_base_baselines(deps, job, rules, on_base)
        targets = [
            Target(
                connector=Path(c).name,
                directory=workspace.head / c,
                display_path=c,
                base_directory=(workspace.base / c) if (workspace.base / c).is_dir() else None,
            )
            for c in present
        ]
        is_fork = job.pr.head_repo != job.pr.base_repo
        settings = dataclasses.replace(deps.check_settings, is_fork=is_fork)
        reviewer = Reviewer(
            select_checks(job.only),
            rules,
            settings,
            baselines=await _baselines(deps, job, [t.connector for t in targets]),
        )
        reports = tuple(_refused_findings(r, workspace) for r in await reviewer.review(targets))
        sources = tuple(
            ConnectorSource(
                name=Path(c).name,
                path=c,
                manifest_text=_read(workspace.head / c / MANIFEST_FILE),
                base_manifest_text=_read(workspace.base / c / MANIFEST_FILE),
            )
            for c in present
        )
    return reports, sources


async def _store_snapshot(deps: ReviewDeps, job: PullRequestJob, snapshot: ReviewSnapshot) -> None:
    entry = job.audit_entry(SNAPSHOT_KIND, {"snapshot": snapshot.to_json()})
    await deps.storage.append_audit(entry)


async def latest_snapshot(deps: ReviewDeps, job: PullRequestJob) -> ReviewSnapshot | None:
    """The last stored review of the current head commit, if any."""
    record = await deps.storage.latest_audit_entry(
        job.full_name, job.pr.number, SNAPSHOT_KIND, job.pr.head_sha
    )
    return ReviewSnapshot.from_json(str(record.entry.detail["snapshot"])) if record else None


def _merge_previous(
    previous: ReviewSnapshot | None, fresh: tuple[ConnectorReport, ...], only: Sequence[str]
) -> tuple[ConnectorReport, ...]:
    """A partial re-run keeps the other checks' previous results."""
    if not only or previous is None:
        return fresh
    old = {r.path: r for r in previous.reports}
    merged = []
    for report in fresh:
        kept = [r for r in old.get(report.path, report).results if r.check not in only]
        results = sorted((*kept, *report.results), key=lambda r: CHECK_NAMES.index(r.check))
        merged.append(dataclasses.replace(report, results=tuple(results)))
    return tuple(merged)


async def _post_inline_comments(
    deps: ReviewDeps,
    job: PullRequestJob,
    files: Sequence[PullRequestFile],
    snapshot: ReviewSnapshot,
) -> None:
    """One review with inline comments on new findings that sit on lines of the diff."""
    states = check_states(snapshot.reports, await stored_waivers(deps, job), today(deps))
    findings = [f for s in states for cr in s.results for f in cr.result.findings]
    seen = {
        f.fingerprint
        for f in findings
        if await deps.storage.comment_posted(job.full_name, job.pr.number, f.fingerprint)
    }
    patches = {f.filename: f.patch for f in files}
    comments = select_inline_comments(findings, patches, frozenset(seen))
    if not comments:
        return
    await job.gh.create_review(
        job.repo,
        job.pr.number,
        body="connector-gate found problems on lines this pull request changes.",
        commit_id=job.pr.head_sha,
        comments=[ReviewComment(c.path, c.line, c.body) for c in comments],
    )
    for comment in comments:
        await deps.storage.record_posted_comment(job.full_name, job.pr.number, comment.fingerprint)


async def review_pull_request(deps: ReviewDeps, job: PullRequestJob) -> None:
    """Run the checks on the PR's head and publish check runs, the gate and comments."""
    gh, repo, pr = job.gh, job.repo, job.pr
    existing: dict[str, CheckRun] = {r.name: r for r in await gh.list_check_runs(repo, pr.head_sha)}
    running = CheckRunOutput("Reviewing", "connector-gate is running the checks on this commit.")
    existing[GATE_RUN] = await put_check_run(
        gh, repo, pr.head_sha, GATE_RUN, existing, output=running, conclusion=None
    )
    try:
        await _review(deps, job, existing)
    except Exception as exc:
        await _report_unfinished(job, existing, exc)
        raise  # the job runner retries it later, within its bounded attempts


async def _report_unfinished(
    job: PullRequestJob, existing: dict[str, CheckRun], error: Exception
) -> None:
    """Best effort: a review that broke shows so on the gate instead of running forever."""
    output = CheckRunOutput(
        "connector-gate could not finish this review",
        f"{type(error).__name__}: {scrub(str(error))}\n\n"
        "The review is retried automatically; `/gate rerun` starts it again.",
    )
    with contextlib.suppress(Exception):  # GitHub itself may be what is failing
        await put_check_run(
            job.gh,
            job.repo,
            job.pr.head_sha,
            GATE_RUN,
            existing,
            output=output,
            conclusion="failure",
        )


async def _review(deps: ReviewDeps, job: PullRequestJob, existing: dict[str, CheckRun]) -> None:
    gh, repo, pr = job.gh, job.repo, job.pr
    rules = await load_rules(gh, repo, pr.default_branch)
    files = await gh.list_pull_request_files(repo, pr.number)
    paths = [f.filename for f in files.files]
    globs = rules.connectors if isinstance(rules, Rules) else Rules().connectors
    connectors = changed_connectors(paths, globs)
    sources: tuple[ConnectorSource, ...] = ()
    if isinstance(rules, ConfigError):
        reports = _not_run(connectors, f"not run: the rules are invalid ({rules})")
    elif not connectors:
        reports = ()
    elif pr.draft and not rules.run_on_drafts:
        reports = _not_run(connectors, "not run: draft pull request (rules: run_on_drafts)")
    else:
        try:
            reports, sources = await _run_checks(deps, job, rules, connectors, files.files)
        except UnsafeInputError as exc:
            reports = _not_run(connectors, f"the repository archive was refused: {exc}")
    if files.truncated:
        logger.warning("pull request lists 3000 files or more; GitHub stops there")
    snapshot = ReviewSnapshot(
        pr.head_sha,
        tuple(paths),
        sources,
        _merge_previous(await latest_snapshot(deps, job), reports, job.only),
        files_truncated=files.truncated,
    )
    await _store_snapshot(deps, job, snapshot)
    current = await gh.get_pull_request(repo, pr.number)
    states = check_states(snapshot.reports, await stored_waivers(deps, job), today(deps))
    if not snapshot.reports:
        states = tuple(CheckState(c, RunStatus.COMPLETED) for c in CHECK_NAMES)
    # A partial re-run leaves the other runs alone: GitHub appends the annotations of each update.
    states = tuple(s for s in states if not job.only or s.check in job.only)
    await publish_check_runs(gh, repo, pr.head_sha, states, existing)
    if current.head_sha != pr.head_sha:
        # A newer push supersedes this work: its results stay on this commit only.
        superseded = CheckRunOutput(
            "Superseded by a newer commit",
            f"The pull request moved on to {current.head_sha[:7]}; see the checks there.",
        )
        await put_check_run(
            gh, repo, pr.head_sha, GATE_RUN, existing, output=superseded, conclusion="neutral"
        )
        return
    await finish_gate(deps, job, rules, snapshot, existing)
    if connectors and isinstance(rules, Rules):
        await _post_inline_comments(deps, job, files.files, snapshot)


async def finish_gate(
    deps: ReviewDeps,
    job: PullRequestJob,
    rules: Rules | ConfigError,
    snapshot: ReviewSnapshot,
    existing: dict[str, CheckRun],
) -> None:
    """Evaluate and publish the gate; a PR that changes no connector passes and says so."""
    if (
        not snapshot.connectors
        and not snapshot.reports
        and not snapshot.files_truncated
        and not isinstance(rules, ConfigError)
    ):
        output = await no_connector_output(deps, job, rules, snapshot)
        await put_check_run(
            job.gh,
            job.repo,
            job.pr.head_sha,
            GATE_RUN,
            existing,
            output=output,
            conclusion="success",
        )
        return
    result = await evaluate_gate(deps, job, rules, snapshot)
    await publish_gate(deps, job, result, existing)


async def reevaluate_gate(deps: ReviewDeps, job: PullRequestJob) -> None:
    """After a review, label, waiver...: evaluate again from the stored results, no re-run."""
    snapshot = await latest_snapshot(deps, job)
    if snapshot is None:
        # Never reviewed (e.g. installed after the PR was opened): review it now.
        await review_pull_request(deps, job)
        return
    rules = await load_rules(job.gh, job.repo, job.pr.default_branch)
    existing = {
        r.name: r for r in await job.gh.list_check_runs(job.repo, job.pr.head_sha, GATE_RUN)
    }
    await finish_gate(deps, job, rules, snapshot, existing)
