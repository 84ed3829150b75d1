"""Run the checks over connector directories: concurrently, with timeouts, cached by content."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from checks.base import Check, CheckContext, CheckSettings
from checks.cache import ResultCache, tree_digest
from checks.errors import CheckError, ConfigError
from checks.manifest import load_manifest_or_none
from checks.manifest_model import MANIFEST_FILE
from checks.model import CheckResult, Conclusion, ConnectorReport, Finding, PerformanceBaseline
from checks.registry import CHECK_NAMES
from checks.rules_model import Rules
from checks.scrub import scrub

#: Vulnerability data changes without the connector changing: reuse it for an hour only.
_MAX_AGE_S = {"dependencies": 3600.0}

#: Called with (finished, total, names still running) as checks complete.
ProgressCallback = Callable[[int, int, Sequence[str]], None]


@dataclass(frozen=True, slots=True)
class Target:
    """One connector directory to check."""

    connector: str
    """Connector name (directory name)."""
    directory: Path
    """Absolute directory."""
    display_path: str
    """Directory as shown in findings (relative to the repository root or the cwd)."""
    base_directory: Path | None = None
    """The same connector in the base version, when given."""


def _display(path: Path, root: Path | None) -> str:
    try:
        return path.resolve().relative_to((root or Path.cwd()).resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def discover_targets(
    paths: Sequence[Path], *, base: Path | None = None, root: Path | None = None
) -> list[Target]:
    """Connector directories named by `paths`: a connector itself or a folder of connectors."""
    found: dict[Path, Target] = {}
    for path in paths:
        if not path.is_dir():
            raise ConfigError("no such directory", file=str(path))
        candidates = (
            [path]
            if (path / MANIFEST_FILE).exists()
            else sorted(p for p in path.iterdir() if (p / MANIFEST_FILE).exists())
        )
        if not candidates:
            raise ConfigError(f"no {MANIFEST_FILE} here nor in its sub-folders", file=str(path))
        for directory in candidates:
            resolved = directory.resolve()
            found[resolved] = Target(
                connector=resolved.name,
                directory=resolved,
                display_path=_display(directory, root),
                base_directory=_base_for(resolved.name, base, single=len(paths) == 1),
            )
    return list(found.values())


def _base_for(name: str, base: Path | None, *, single: bool) -> Path | None:
    if base is None:
        return None
    if (base / name / MANIFEST_FILE).exists():
        return (base / name).resolve()
    if single and (base / MANIFEST_FILE).exists():
        return base.resolve()
    return None


def _timeout_for(check: Check, rules: Rules, settings: CheckSettings) -> float:
    if check.name == "tests":
        return float(rules.tests.install_timeout_s + rules.tests.timeout_s + 60)
    if check.name == "performance":
        return float(rules.tests.install_timeout_s + rules.performance.max_duration_s + 180)
    return settings.timeout_s


def scrub_result(result: CheckResult, known_secrets: frozenset[str] = frozenset()) -> CheckResult:
    """Last line of defence: every text a report can show goes through the scrubber."""

    def clean(finding: Finding) -> Finding:
        return dataclasses.replace(
            finding,
            message=scrub(finding.message, known_secrets),
            remediation=scrub(finding.remediation, known_secrets),
        )

    return dataclasses.replace(
        result,
        summary=scrub(result.summary, known_secrets),
        details=scrub(result.details, known_secrets),
        findings=tuple(clean(f) for f in result.findings),
    )


def _error_result(check: Check, exc: BaseException, timeout_s: float) -> CheckResult:
    """What a check that raised instead of concluding reports: ERROR, naming the cause."""
    if isinstance(exc, TimeoutError):
        summary = f"{check.name} did not finish within {timeout_s:g} s"
    elif isinstance(exc, CheckError):  # ToolError included: it names the tool and stderr tail
        summary = str(exc)
    else:  # a bug in a check must not take the others down
        summary = f"{check.name} failed unexpectedly: {type(exc).__name__}: {exc}"
    return CheckResult(check=check.name, conclusion=Conclusion.ERROR, summary=summary)


async def _run_guarded(
    check: Check, contexts: Sequence[CheckContext], timeout_s: float
) -> list[CheckResult]:
    """`check.run_many` under a timeout; any exception becomes an ERROR result for each."""
    started = time.monotonic()
    try:
        results = await asyncio.wait_for(check.run_many(contexts), timeout=timeout_s)
    except Exception as exc:
        results = [_error_result(check, exc, timeout_s)] * len(contexts)
    elapsed = time.monotonic() - started
    return [
        dataclasses.replace(scrub_result(r), duration_s=r.duration_s or elapsed, cached=False)
        for r in results
    ]


async def _run_pending(
    check: Check, contexts: Sequence[CheckContext], timeout_s: float
) -> list[CheckResult]:
    """One call for checks that batch their tool; otherwise one guarded call per connector,
    so one connector's crash or timeout does not take the others' results with it."""
    if type(check).run_many is not Check.run_many:
        return await _run_guarded(check, contexts, timeout_s)
    singles = await asyncio.gather(*(_run_guarded(check, [c], timeout_s) for c in contexts))
    return [result for (result,) in singles]


class Reviewer:
    """Runs a set of checks over targets; one instance per command or job."""

    def __init__(
        self,
        checks: Sequence[Check],
        rules: Rules,
        settings: CheckSettings,
        *,
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
        baselines: Mapping[str, PerformanceBaseline] | None = None,
    ) -> None:
        self._checks = sorted(checks, key=lambda c: CHECK_NAMES.index(c.name))
        self._rules = rules
        self._settings = settings
        self._progress = progress
        self._baselines = dict(baselines or {})
        self._cache = ResultCache(settings.cache_dir / "results") if settings.cache_dir else None
        self._limit = asyncio.Semaphore(concurrency or max(4, (os.cpu_count() or 2) * 2))
        self._running: list[str] = []
        self._done = 0
        self._total = 0

    async def review(self, targets: Sequence[Target]) -> tuple[ConnectorReport, ...]:
        """Check every target; a report per target, results in check order."""
        self._total = len(targets) * len(self._checks)
        contexts = [self._context(t) for t in targets]
        keys = [self._digest(t) for t in targets]
        results: list[dict[str, CheckResult]] = [{} for _ in targets]
        # Performance runs after the rest, alone, so other checks do not skew its figures.
        first = [c for c in self._checks if c.name != "performance"]
        last = [c for c in self._checks if c.name == "performance"]
        items = list(zip(contexts, keys, results, strict=True))
        # Each check gets the whole batch, so a slow-starting tool starts once per review.
        await asyncio.gather(*(self._batch(check, items) for check in first))
        for item in items:
            for check in last:
                await self._batch(check, [item])
        return tuple(
            self._finish(target, ctx, key, into)
            for target, ctx, key, into in zip(targets, contexts, keys, results, strict=True)
        )

    def _finish(
        self, target: Target, context: CheckContext, key: str, results: dict[str, CheckResult]
    ) -> ConnectorReport:
        # Scrub again with the values the secrets check found, now that every check is done,
        # so no tool can echo a secret that only detect-secrets recognised; then cache.
        known = frozenset(context.known_secrets)
        ordered = []
        for check in self._checks:
            result = results[check.name]
            if not result.cached:
                result = scrub_result(result, known)
                if self._cache is not None:
                    self._cache.put(ResultCache.key(key, check.name, check.version), result)
            ordered.append(result)
        return ConnectorReport(target.connector, target.display_path, tuple(ordered))

    def _context(self, target: Target) -> CheckContext:
        return CheckContext(
            connector=target.connector,
            directory=target.directory,
            display_path=target.display_path,
            rules=self._rules,
            manifest=load_manifest_or_none(target.directory),
            base_directory=target.base_directory,
            base_manifest=load_manifest_or_none(target.base_directory)
            if target.base_directory
            else None,
            settings=self._settings,
            performance_baseline=self._baselines.get(target.connector),
        )

    def _digest(self, target: Target) -> str:
        if self._cache is None:
            return ""
        return "|".join(
            (
                tree_digest(target.directory),
                tree_digest(target.base_directory),
                target.display_path,
                self._rules.digest,
                self._settings.osv_url,
                repr(self._baselines.get(target.connector)),
            )
        )

    async def _batch(
        self, check: Check, items: Sequence[tuple[CheckContext, str, dict[str, CheckResult]]]
    ) -> None:
        pending = []
        for context, digest, into in items:
            key = ResultCache.key(digest, check.name, check.version)
            cached = self._cache.get(key, _MAX_AGE_S.get(check.name)) if self._cache else None
            if cached is not None:
                into[check.name] = dataclasses.replace(cached, cached=True, duration_s=0.0)
                self._done += 1
            else:
                pending.append((context, into))
        if pending:
            async with self._limit:
                self._running.append(check.name)
                self._report_progress()
                timeout = _timeout_for(check, self._rules, self._settings)
                fresh = await _run_pending(check, [c for c, _ in pending], timeout)
                self._running.remove(check.name)
            for (_, into), result in zip(pending, fresh, strict=True):
                into[check.name] = result
            self._done += len(pending)
        self._report_progress()

    def _report_progress(self) -> None:
        if self._progress is not None:
            self._progress(self._done, self._total, tuple(self._running))
