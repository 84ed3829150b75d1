"""connector-gate/tests: the connector's own test suite, run in the sandbox with its own venv."""

from __future__ import annotations

import re
import shlex
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

from checks.base import Check, CheckContext
from checks.errors import ToolError, UnsafeInputError
from checks.model import CheckResult, Conclusion, Finding, Severity, new_finding
from checks.policy import could_not_run, result_from_findings
from checks.sandbox import (
    OUT_PLACEHOLDER,
    Isolation,
    LimitHit,
    Limits,
    LocalSandbox,
    SandboxBackend,
    SandboxJob,
    SandboxOutcome,
    weak_isolation_refusal,
)
from checks.sandbox.venv import ConnectorVenv, ensure_venv, is_world_usable
from checks.scrub import scrub

NAME = "tests"
JUNIT_FILE = "junit.xml"
#: A JUnit report larger than this is refused rather than parsed.
MAX_JUNIT_BYTES = 8 * 1024 * 1024
#: Longest failure text kept in a finding.
MAX_MESSAGE = 1500
_PYTEST_NAMES = ("pytest", "py.test")
_TRACE_LOCATION = re.compile(r"^(?P<path>[^\s:][^:\n]*\.py):(?P<line>\d+): ", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class FailedTest:
    """One failed or erroring test case from the JUnit report."""

    name: str
    """Test function name (with parameters)."""
    classname: str
    """Dotted module (and class) path."""
    path: str
    """Test file relative to the connector directory ('' when unknown)."""
    line: int
    """Line where it failed: the deepest traceback line in its file, else its definition."""
    kind: str
    """`failure` (an assertion) or `error` (setup, teardown or collection)."""
    message: str
    """Short message pytest gave."""
    text: str
    """Traceback text (scrubbed, capped)."""

    @property
    def qualified_name(self) -> str:
        return ".".join(part for part in (self.classname, self.name) if part)


@dataclass(frozen=True, slots=True)
class JunitSummary:
    """Counts and failures of one JUnit report."""

    tests: int
    """Test cases reported."""
    failed: int
    """Cases with a failure."""
    errors: int
    """Cases with an error."""
    skipped: int
    """Cases skipped."""
    failures: tuple[FailedTest, ...]
    """Every failed or erroring case."""

    @property
    def passed(self) -> int:
        return self.tests - self.failed - self.errors - self.skipped


def _failure_line(text: str, path: str, definition_line: int) -> int:
    lines = [int(m["line"]) for m in _TRACE_LOCATION.finditer(text) if m["path"] == path]
    return lines[-1] if lines else definition_line


def _failure_of(case: ET.Element, problem: ET.Element) -> FailedTest:
    path = case.get("file", "")
    definition = int(case.get("line", "-1")) + 1  # pytest writes 0-based lines
    text = scrub(problem.text or "")[-MAX_MESSAGE:]
    return FailedTest(
        name=case.get("name", "?"),
        classname=case.get("classname", ""),
        path=path,
        line=_failure_line(text, path, max(definition, 0)),
        kind=problem.tag,
        message=scrub(problem.get("message", ""))[:300],
        text=text,
    )


def parse_junit(data: bytes) -> JunitSummary:
    """Parse pytest's JUnit XML; raises ValueError on anything unexpected or unsafe."""
    if len(data) > MAX_JUNIT_BYTES:
        raise ValueError(f"JUnit report larger than {MAX_JUNIT_BYTES} bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError("JUnit report declares a DTD or entities")
    try:
        # Safe here: DTDs and entities were refused above, and the size is capped.
        root = ET.fromstring(data)  # noqa: S314
    except ET.ParseError as exc:
        raise ValueError(f"JUnit report is not valid XML: {exc}") from None
    counts = {"tests": 0, "failure": 0, "error": 0, "skipped": 0}
    failures = []
    for case in root.iter("testcase"):
        counts["tests"] += 1
        problem = case.find("failure")
        problem = problem if problem is not None else case.find("error")
        if problem is not None:
            counts[problem.tag] += 1
            failures.append(_failure_of(case, problem))
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
    return JunitSummary(
        counts["tests"], counts["failure"], counts["error"], counts["skipped"], tuple(failures)
    )


def command_argv(command: str) -> tuple[tuple[str, ...], bool]:
    """The argument list for `command`, with a JUnit report requested when it is pytest."""
    argv = shlex.split(command)
    if not argv:
        raise UnsafeInputError("tests.command is empty")
    is_pytest = Path(argv[0]).name in _PYTEST_NAMES or argv[1:3] == ["-m", "pytest"]
    if is_pytest:
        junit = f"{OUT_PLACEHOLDER}/{JUNIT_FILE}"
        argv += [f"--junitxml={junit}", "-o", "junit_family=xunit1", "-p", "no:cacheprovider"]
    return tuple(argv), is_pytest


class TestsCheck(Check):
    """Runs `tests.command` (default `pytest`) in the sandbox and reports each failing test."""

    name = NAME
    version = "1"
    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, sandbox: SandboxBackend | None = None) -> None:
        self.sandbox = sandbox or LocalSandbox()

    async def run(self, context: CheckContext) -> CheckResult:
        started = time.monotonic()
        result = await self._run(context)
        return replace(result, duration_s=time.monotonic() - started)

    async def _run(self, context: CheckContext) -> CheckResult:
        manifest = context.manifest
        if manifest is None:
            return could_not_run(NAME, Conclusion.NEUTRAL, "manifest invalid: tests not run")
        isolation = await self.sandbox.isolation()
        refusal = weak_isolation_refusal(
            isolation,
            is_fork=context.settings.is_fork,
            allow_weak=context.rules.sandbox.allow_weak_isolation_for_forks,
        )
        if refusal:
            return _refused(refusal, isolation)
        try:
            venv = await prepare_venv(context, needs_world_access=_switches_uid(isolation))
        except UnsafeInputError as exc:
            return _unsafe_requirements(context, str(exc))
        except ToolError as exc:
            reason = f"could not install the connector's requirements: {exc}"
            return could_not_run(NAME, Conclusion.NEUTRAL, scrub(reason)[:2000])
        argv, is_pytest = command_argv(manifest.tests.command)
        outcome = await self.sandbox.run(_job(context, venv, argv, is_pytest))
        return conclude(context, outcome, is_pytest, venv)


def _switches_uid(isolation: Isolation) -> bool:
    return isolation in (Isolation.NETNS_UID, Isolation.UID)


async def prepare_venv(context: CheckContext, *, needs_world_access: bool) -> ConnectorVenv:
    """The connector's virtualenv (shared with the performance check). Raises ToolError."""
    manifest = context.manifest
    assert manifest is not None
    requirements = (context.directory / manifest.requirements).resolve()
    if not requirements.is_relative_to(context.directory.resolve()) or not requirements.is_file():
        raise UnsafeInputError(
            f"requirements file {manifest.requirements!r} is not in the connector"
        )
    venv = await ensure_venv(
        requirements,
        cache_dir=context.settings.venv_dir,
        index_url=context.rules.tests.index_url,
        timeout_s=context.rules.tests.install_timeout_s,
    )
    if needs_world_access and not is_world_usable(venv.bin_dir / "python"):
        raise ToolError("venv", f"{venv.path} is not reachable by the unprivileged sandbox uid")
    return venv


def _job(
    context: CheckContext, venv: ConnectorVenv, argv: tuple[str, ...], junit: bool
) -> SandboxJob:
    timeout = context.rules.tests.timeout_s
    return SandboxJob(
        argv=argv,
        source=context.directory,
        limits=Limits(wall_s=float(timeout), cpu_s=timeout),
        path_prefix=(str(venv.bin_dir),),
        outputs=(JUNIT_FILE,) if junit else (),
    )


def _refused(reason: str, isolation: Isolation) -> CheckResult:
    return CheckResult(
        check=NAME,
        conclusion=Conclusion.FAILURE,
        summary=reason,
        data={"isolation": str(isolation), "refused": True},
    )


def _unsafe_requirements(context: CheckContext, reason: str) -> CheckResult:
    assert context.manifest is not None
    _, _, rest = reason.partition(":")
    line = int(rest.split(":", 1)[0]) if rest[:1].isdigit() else 0
    finding = new_finding(
        check=NAME,
        rule_id="tests.unsafe-requirements",
        severity=Severity.HIGH,
        path=context.show(context.manifest.requirements),
        line=line,
        message=f"Requirements refused: {reason}",
        remediation="List pinned packages by name only (`name==version`, optional hashes).",
        connector=context.connector,
    )
    return result_from_findings(NAME, [finding], context.rules, clean_summary="")


def _finding(
    context: CheckContext,
    rule: str,
    message: str,
    remediation: str,
    path: str = "",
    line: int = 0,
    identity: tuple[str, ...] = (),
) -> Finding:
    return new_finding(
        check=NAME,
        rule_id=rule,
        severity=Severity.HIGH,
        path=context.show(path) if path else context.show("connector.yaml"),
        line=line,
        message=message,
        remediation=remediation,
        identity=identity,
        connector=context.connector,
    )


def _failure_findings(context: CheckContext, summary: JunitSummary) -> list[Finding]:
    return [
        _finding(
            context,
            "tests.failed",
            f"`{f.qualified_name}` {'failed' if f.kind == 'failure' else 'errored'}: "
            f"{f.message}\n\n```\n{f.text}\n```",
            "Fix the code or the test; the test must pass in a clean environment without network.",
            path=f.path,
            line=f.line,
            identity=(f.classname, f.name),
        )
        for f in summary.failures
    ]


def _limit_finding(context: CheckContext, outcome: SandboxOutcome) -> Finding:
    hit = outcome.limit_hit
    assert hit is not None
    limit = outcome.report.limits
    figures = {
        LimitHit.WALL_CLOCK: f"{limit.wall_s:g} s",
        LimitHit.CPU: f"{limit.cpu_s} s",
        LimitHit.MEMORY: f"{limit.memory_bytes // 1024**2} MiB",
        LimitHit.FILE_SIZE: f"{limit.file_size_bytes // 1024**2} MiB",
        LimitHit.PROCESSES: f"{limit.processes}",
        LimitHit.OPEN_FILES: f"{limit.open_files}",
    }
    return _finding(
        context,
        "tests.limit",
        f"The test run hit the sandbox's {hit} ({figures[hit]}).",
        "Keep tests fast and small: no unbounded loops, forks, allocations or writes.",
        identity=(hit.name,),
    )


def _crash_finding(context: CheckContext, outcome: SandboxOutcome, why: str) -> Finding:
    tail = "\n".join((outcome.stdout + outcome.stderr).strip().splitlines()[-15:])
    return _finding(
        context,
        "tests.command-failed",
        f"{why} (exit status {outcome.returncode}).\n\n```\n{tail[-MAX_MESSAGE:]}\n```",
        "Make `tests.command` run the test suite to completion.",
        identity=(why,),
    )


def _outcome_findings(
    context: CheckContext, outcome: SandboxOutcome, summary: JunitSummary | None
) -> list[Finding]:
    findings = _failure_findings(context, summary) if summary else []
    if outcome.limit_hit is not None:
        findings.append(_limit_finding(context, outcome))
    if summary is not None and summary.passed + summary.failed + summary.errors == 0:
        findings.append(
            _finding(context, "tests.none-ran", "No tests ran.", "Add tests the command collects.")
        )
    elif outcome.returncode != 0 and not findings:
        findings.append(_crash_finding(context, outcome, "The test command failed"))
    return findings


def _read_summary(outcome: SandboxOutcome, is_pytest: bool) -> JunitSummary | None:
    data = outcome.files.get(JUNIT_FILE, b"")
    if not is_pytest or not data.strip():
        return None
    try:
        return parse_junit(data)
    except ValueError:
        return None


def conclude(
    context: CheckContext, outcome: SandboxOutcome, is_pytest: bool, venv: ConnectorVenv
) -> CheckResult:
    """Turn a sandboxed test run into the check's result."""
    summary = _read_summary(outcome, is_pytest)
    findings = _outcome_findings(context, outcome, summary)
    if is_pytest and summary is None and not findings:
        findings.append(_crash_finding(context, outcome, "pytest wrote no readable JUnit report"))
    data = _data(outcome, summary, venv)
    counts = _counts_line(summary, outcome)
    result = result_from_findings(
        NAME,
        findings,
        context.rules,
        clean_summary=counts,
        details=_details(outcome, summary, venv),
        data=data,
    )
    if result.conclusion is Conclusion.FAILURE:
        result = replace(result, summary=f"{result.summary}: {counts}")
    return result


def _counts_line(summary: JunitSummary | None, outcome: SandboxOutcome) -> str:
    if summary is None:
        return f"test command exited with status {outcome.returncode}"
    return (
        f"{summary.passed} passed, {summary.failed} failed, "
        f"{summary.errors} errors, {summary.skipped} skipped"
    )


def _data(
    outcome: SandboxOutcome, summary: JunitSummary | None, venv: ConnectorVenv
) -> dict[str, object]:
    data: dict[str, object] = {
        "isolation": str(outcome.report.isolation),
        "exit_status": outcome.returncode,
        "limit_hit": outcome.limit_hit.name if outcome.limit_hit else None,
        "venv_reused": venv.reused,
        "duration_s": round(outcome.duration_s, 3),
    }
    if summary is not None:
        data.update(
            tests=summary.tests,
            passed=summary.passed,
            failed=summary.failed,
            errors=summary.errors,
            skipped=summary.skipped,
        )
    return data


def _details(outcome: SandboxOutcome, summary: JunitSummary | None, venv: ConnectorVenv) -> str:
    cache = (
        "reused from cache"
        if venv.reused
        else f"built with {venv.installer} in {venv.build_s:.1f} s"
    )
    lines = [
        f"Tests: {_counts_line(summary, outcome)} in {outcome.duration_s:.1f} s.",
        f"Virtualenv `{venv.key[:12]}`: {cache}.",
        outcome.report.describe(),
    ]
    return "\n\n".join(lines)
