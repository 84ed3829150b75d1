"""connector-gate/performance: the connector's service under real k6 load, against its SLOs."""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import socket
import sys
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from checks.base import Check, CheckContext, CheckSettings
from checks.connector_tests import prepare_venv
from checks.errors import ToolError, UnsafeInputError
from checks.manifest_model import Manifest, PerformanceSpec
from checks.model import (
    CheckResult,
    Conclusion,
    Finding,
    PerformanceBaseline,
    Severity,
    new_finding,
)
from checks.policy import result_from_findings
from checks.rules_model import PerformanceRules
from checks.sandbox import (
    OUT_PLACEHOLDER,
    Isolation,
    Limits,
    LoadJob,
    LoadOutcome,
    LocalSandbox,
    SandboxBackend,
    weak_isolation_refusal,
)
from checks.sandbox.venv import is_world_usable
from checks.scrub import scrub

NAME = "performance"
SUMMARY_FILE = "summary.json"
OPTIONS_FILE = "k6-options.json"
READY_TIMEOUT_S = 30.0
#: k6 exit statuses: 0 all thresholds held, 99 a threshold failed; anything else broke the run.
K6_OK = 0
K6_THRESHOLDS_FAILED = 99
#: k6 statuses caused by the connector's script: invalid options, script exception or abort.
K6_SCRIPT_ERRORS = {104: "invalid options", 107: "script exception", 108: "script aborted"}
_TREND_STATS = "avg,min,med,max,p(90),p(95),p(99)"


class Verdict(StrEnum):
    """How a load run ended."""

    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "fail"
    """An SLO was missed or p95 regressed against the baseline."""
    INVALID = "invalid"
    """k6 could not drive the planned load; never a pass."""


@dataclass(frozen=True, slots=True)
class LoadFigures:
    """What k6 measured, from its summary export."""

    p50_ms: float
    """Median request duration."""
    p90_ms: float
    """90th percentile request duration."""
    p95_ms: float
    """95th percentile request duration."""
    p99_ms: float
    """99th percentile request duration."""
    rps: float
    """Requests per second over the run."""
    error_rate: float
    """Share of failed requests (k6's http_req_failed rate)."""
    requests: int
    """Requests made."""
    vus: int
    """Highest number of virtual users."""
    dropped_iterations: int
    """Iterations k6 had to skip because it could not keep up."""
    failed_thresholds: tuple[str, ...]
    """Thresholds k6 reports as crossed (`metric: expression`)."""


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """The load the check asks k6 for."""

    vus: int
    """Virtual users."""
    duration_s: int
    """Run length."""


def plan_load(rules: PerformanceRules) -> LoadPlan:
    """VUs and duration from the rules, within their caps."""
    vus = max(1, min(rules.vus, rules.max_vus))
    return LoadPlan(vus=vus, duration_s=max(1, min(rules.duration_s, rules.max_duration_s)))


def k6_thresholds(spec: PerformanceSpec) -> dict[str, list[str]]:
    """The SLOs as k6 thresholds."""
    slo = spec.slo
    return {
        "http_req_duration": [f"p(95)<={slo.p95_ms:g}"],
        "http_req_failed": [f"rate<={slo.error_rate:g}"],
        "http_reqs": [f"rate>={slo.min_rps:g}"],
    }


def find_k6(settings: CheckSettings) -> str | None:
    """The k6 binary: CONNECTOR_GATE_K6, else the settings (either one is final when set),
    else the one beside our Python (the `k6` package), else PATH."""
    configured = os.environ.get("CONNECTOR_GATE_K6", "") or settings.k6_path
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    beside = Path(sys.executable).parent / "k6"
    return str(beside) if os.access(beside, os.X_OK) else shutil.which("k6")


def _metric(metrics: dict[str, object], name: str) -> dict[str, object]:
    value = metrics.get(name, {})
    return value if isinstance(value, dict) else {}


def _number(values: dict[str, object], key: str) -> float:
    value = values.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return float(value)


def _crossed(metrics: dict[str, object]) -> tuple[str, ...]:
    # In --summary-export a threshold's boolean is TRUE when it FAILED (checked on k6 1.1.0).
    crossed = []
    for name, values in metrics.items():
        thresholds = values.get("thresholds", {}) if isinstance(values, dict) else {}
        if isinstance(thresholds, dict):
            crossed += [f"{name}: {expr}" for expr, failed in thresholds.items() if failed is True]
    return tuple(sorted(crossed))


def parse_summary(data: bytes) -> LoadFigures:
    """Figures from k6's `--summary-export` JSON; raises ValueError when unusable."""
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"k6 summary is not JSON: {exc}") from None
    metrics = document.get("metrics") if isinstance(document, dict) else None
    if not isinstance(metrics, dict) or "http_reqs" not in metrics:
        raise ValueError("k6 summary has no http_reqs metric: the script made no HTTP request")
    duration, reqs = _metric(metrics, "http_req_duration"), _metric(metrics, "http_reqs")
    return LoadFigures(
        p50_ms=_number(duration, "med"),
        p90_ms=_number(duration, "p(90)"),
        p95_ms=_number(duration, "p(95)"),
        p99_ms=_number(duration, "p(99)"),
        rps=_number(reqs, "rate"),
        error_rate=_number(_metric(metrics, "http_req_failed"), "value"),
        requests=int(_number(reqs, "count")),
        vus=int(_number(_metric(metrics, "vus_max"), "max")),
        dropped_iterations=int(_number(_metric(metrics, "dropped_iterations"), "count")),
        failed_thresholds=_crossed(metrics),
    )


def free_loopback_port() -> int:
    """A port free on loopback now (inside a fresh network namespace every port is free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _inside(directory: Path, relative: str) -> bool:
    target = (directory / relative).resolve()
    return target.is_relative_to(directory.resolve()) and target.is_file()


def build_job(
    context: CheckContext, spec: PerformanceSpec, k6: str, bin_dir: Path, plan: LoadPlan
) -> LoadJob:
    """The sandbox job: start the service on a loopback port, then run k6 against it."""
    if not _inside(context.directory, spec.script):
        raise UnsafeInputError(f"performance.script {spec.script!r} is not a file in the connector")
    if not spec.ready.startswith("/"):
        raise UnsafeInputError(f"performance.ready {spec.ready!r} must be a path starting with /")
    port = free_loopback_port()
    base_url = f"http://127.0.0.1:{port}"
    out = OUT_PLACEHOLDER
    # --vus/--duration on the command line override whatever the script's options say.
    k6_argv = (
        *(k6, "run", "--quiet", "--no-usage-report", "--no-color"),
        *("--vus", str(plan.vus), "--duration", f"{plan.duration_s}s"),
        *("--config", f"{out}/{OPTIONS_FILE}", "--summary-trend-stats", _TREND_STATS),
        *("--summary-export", f"{out}/{SUMMARY_FILE}", spec.script),
    )
    wall = plan.duration_s + READY_TIMEOUT_S + 60
    options = json.dumps({"thresholds": k6_thresholds(spec)}).encode()
    return LoadJob(
        source=context.directory,
        service_argv=tuple(shlex.split(spec.start.replace("{port}", str(port)))),
        ready_url=base_url + spec.ready,
        load_argv=k6_argv,
        ready_timeout_s=READY_TIMEOUT_S,
        service_limits=Limits(wall_s=wall, cpu_s=int(wall), open_files=1024, processes=256),
        load_limits=Limits(
            wall_s=wall, cpu_s=int(wall), memory_bytes=4 * 1024**3, open_files=4096, processes=512
        ),
        path_prefix=(str(bin_dir),),
        load_env={"BASE_URL": base_url, "K6_NO_USAGE_REPORT": "true"},
        outputs=(SUMMARY_FILE,),
        inputs={OPTIONS_FILE: options},
    )


class PerformanceCheck(Check):
    """Loads the connector's service with k6 in the sandbox and enforces its SLOs."""

    name = NAME
    version = "1"

    def __init__(self, sandbox: SandboxBackend | None = None) -> None:
        self.sandbox = sandbox or LocalSandbox()

    async def run(self, context: CheckContext) -> CheckResult:
        started = time.monotonic()
        result = await self._run(context)
        return replace(result, duration_s=time.monotonic() - started)

    async def _run(self, context: CheckContext) -> CheckResult:
        manifest = context.manifest
        if manifest is None:
            return invalid_result("manifest invalid: performance not measured", Conclusion.NEUTRAL)
        if manifest.performance is None:
            return CheckResult(NAME, Conclusion.SKIPPED, "no performance section in connector.yaml")
        isolation = await self.sandbox.isolation()
        refusal = weak_isolation_refusal(
            isolation,
            is_fork=context.settings.is_fork,
            allow_weak=context.rules.sandbox.allow_weak_isolation_for_forks,
        )
        if refusal:
            return invalid_result(refusal, Conclusion.FAILURE, {"isolation": str(isolation)})
        return await self._measure(context, manifest, manifest.performance, isolation)

    async def _measure(
        self, context: CheckContext, manifest: Manifest, spec: PerformanceSpec, isolation: Isolation
    ) -> CheckResult:
        k6 = find_k6(context.settings)
        switches_uid = isolation in (Isolation.NETNS_UID, Isolation.UID)
        if k6 is None or (switches_uid and not is_world_usable(Path(k6))):
            return invalid_result(
                "k6 is not installed where the sandbox can run it", Conclusion.NEUTRAL
            )
        try:
            venv = await prepare_venv(context, needs_world_access=switches_uid)
            job = build_job(context, spec, k6, venv.bin_dir, plan_load(context.rules.performance))
        except UnsafeInputError as exc:
            return invalid_result(f"cannot run the load test: {exc}", Conclusion.FAILURE)
        except ToolError as exc:
            return invalid_result(
                scrub(f"could not prepare the service: {exc}")[:2000], Conclusion.NEUTRAL
            )
        outcome = await self.sandbox.serve_and_load(job)
        return conclude(context, manifest, outcome, plan_load(context.rules.performance))


def invalid_result(
    reason: str, conclusion: Conclusion, data: dict[str, object] | None = None, details: str = ""
) -> CheckResult:
    """An invalid run: never a pass, the reason as summary, `verdict: invalid` in data."""
    assert conclusion in (Conclusion.NEUTRAL, Conclusion.FAILURE, Conclusion.ERROR)
    return CheckResult(
        check=NAME,
        conclusion=conclusion,
        summary=f"invalid run: {reason}",
        details=details,
        data={**(data or {}), "verdict": Verdict.INVALID.value, "reason": reason},
    )


def _invalid_reason(outcome: LoadOutcome) -> tuple[str, Conclusion] | None:
    """Why the run cannot be judged, and whose fault (FAILURE: the connector's)."""
    if outcome.timed_out:
        return "the run exceeded its wall-clock limit and was killed", Conclusion.FAILURE
    if not outcome.ready:
        return f"the service never became ready: {outcome.ready_error}", Conclusion.FAILURE
    if outcome.service_exit is not None:
        return (
            f"the service exited during the load (status {outcome.service_exit})",
            Conclusion.FAILURE,
        )
    code = outcome.load_exit
    if code in K6_SCRIPT_ERRORS:
        return f"k6 stopped: {K6_SCRIPT_ERRORS[code]} (exit status {code})", Conclusion.FAILURE
    if code not in (K6_OK, K6_THRESHOLDS_FAILED):
        return f"k6 failed with exit status {code}", Conclusion.NEUTRAL
    return None


def _log_details(outcome: LoadOutcome) -> str:
    parts = [outcome.report.describe()]
    for title, log in (("Service output", outcome.service_log), ("k6 output", outcome.load_log)):
        tail = "\n".join(log.strip().splitlines()[-20:])
        if tail:
            parts.append(f"{title} (tail):\n\n```\n{tail}\n```")
    return "\n\n".join(parts)


def conclude(
    context: CheckContext, manifest: Manifest, outcome: LoadOutcome, plan: LoadPlan
) -> CheckResult:
    """Judge a load run: invalid, or the figures against the SLOs and the baseline."""
    base_data: dict[str, object] = {"isolation": str(outcome.report.isolation)}
    invalid = _invalid_reason(outcome)
    if invalid is not None:
        return invalid_result(invalid[0], invalid[1], base_data, _log_details(outcome))
    try:
        figures = parse_summary(outcome.files.get(SUMMARY_FILE, b""))
    except ValueError as exc:
        return invalid_result(str(exc), Conclusion.FAILURE, base_data, _log_details(outcome))
    if figures.dropped_iterations > 0:
        reason = (
            f"k6 dropped {figures.dropped_iterations} iterations: the planned load was not driven"
        )
        return invalid_result(reason, Conclusion.NEUTRAL, base_data, _log_details(outcome))
    if figures.requests == 0:
        return invalid_result("k6 made no HTTP request", Conclusion.FAILURE, base_data)
    return _judged(context, manifest, outcome, plan, figures)


def _judged(
    context: CheckContext,
    manifest: Manifest,
    outcome: LoadOutcome,
    plan: LoadPlan,
    figures: LoadFigures,
) -> CheckResult:
    spec = manifest.performance
    assert spec is not None
    baseline = context.performance_baseline
    findings = slo_findings(context, manifest, figures)
    findings += regression_findings(context, manifest, figures, baseline)
    verdict = Verdict.FAIL if findings else Verdict.PASS
    data = {
        "isolation": str(outcome.report.isolation),
        "verdict": verdict.value,
        **_figures_data(figures, plan),
        "slo": {
            "p95_ms": spec.slo.p95_ms,
            "error_rate": spec.slo.error_rate,
            "min_rps": spec.slo.min_rps,
        },
        "baseline": _baseline_data(baseline),
        "k6_failed_thresholds": list(figures.failed_thresholds),
    }
    details = "\n\n".join(
        [
            figures_table(figures, plan, spec, baseline, context.rules.performance),
            _baseline_line(baseline),
            _log_details(outcome),
        ]
    )
    clean = (
        f"p95 {figures.p95_ms:.1f} ms, {figures.rps:.1f} req/s, "
        f"{figures.error_rate:.2%} errors: within SLOs"
    )
    return result_from_findings(
        NAME, findings, context.rules, clean_summary=clean, details=details, data=data
    )


def _finding(
    context: CheckContext, manifest: Manifest, rule: str, key: str, message: str, remediation: str
) -> Finding:
    return new_finding(
        check=NAME,
        rule_id=rule,
        severity=Severity.HIGH,
        path=context.show("connector.yaml"),
        line=manifest.line_of(key),
        message=message,
        remediation=remediation,
        connector=context.connector,
    )


def slo_findings(context: CheckContext, manifest: Manifest, figures: LoadFigures) -> list[Finding]:
    """One finding per missed SLO, with the measured figure and the limit."""
    assert manifest.performance is not None
    slo = manifest.performance.slo
    findings = []
    if figures.p95_ms > slo.p95_ms:
        message = f"p95 latency {figures.p95_ms:.1f} ms exceeds the SLO of {slo.p95_ms:g} ms."
        findings.append(
            _finding(
                context,
                manifest,
                "performance.slo-p95",
                "performance.slo.p95_ms",
                message,
                "Make the slow path faster (profile the endpoint the script calls).",
            )
        )
    if figures.error_rate > slo.error_rate:
        message = f"Error rate {figures.error_rate:.2%} exceeds the SLO of {slo.error_rate:.2%}."
        findings.append(
            _finding(
                context,
                manifest,
                "performance.slo-error-rate",
                "performance.slo.error_rate",
                message,
                "Find why requests fail under load (see the service output).",
            )
        )
    if figures.rps < slo.min_rps:
        message = f"Throughput {figures.rps:.1f} req/s is below the SLO of {slo.min_rps:g} req/s."
        findings.append(
            _finding(
                context,
                manifest,
                "performance.slo-rps",
                "performance.slo.min_rps",
                message,
                "Serve requests concurrently and faster.",
            )
        )
    return findings


def regression_limit(baseline_p95_ms: float, rules: PerformanceRules) -> float:
    """Highest p95 that is not a regression: both the relative and the absolute margin."""
    relative = baseline_p95_ms * (1 + rules.regression_tolerance)
    return max(relative, baseline_p95_ms + rules.regression_min_ms)


def regression_findings(
    context: CheckContext,
    manifest: Manifest,
    figures: LoadFigures,
    baseline: PerformanceBaseline | None,
) -> list[Finding]:
    """A finding when p95 grew beyond both the relative and the absolute tolerance."""
    if baseline is None or baseline.p95_ms <= 0:
        return []
    rules = context.rules.performance
    tolerance = rules.regression_tolerance
    if figures.p95_ms <= regression_limit(baseline.p95_ms, rules):
        return []
    growth = figures.p95_ms / baseline.p95_ms - 1
    message = (
        f"p95 latency {figures.p95_ms:.1f} ms regressed {growth:.0%} against the baseline "
        f"{baseline.p95_ms:.1f} ms (commit {baseline.commit[:12]}, "
        f"measured {baseline.measured_at}); "
        f"tolerance {tolerance:.0%} and at least {rules.regression_min_ms:g} ms."
    )
    return [
        _finding(
            context,
            manifest,
            "performance.regression-p95",
            "performance.slo.p95_ms",
            message,
            "Find what made the endpoint slower than on the default branch.",
        )
    ]


def _figures_data(figures: LoadFigures, plan: LoadPlan) -> dict[str, object]:
    return {
        "p50_ms": round(figures.p50_ms, 3),
        "p90_ms": round(figures.p90_ms, 3),
        "p95_ms": round(figures.p95_ms, 3),
        "p99_ms": round(figures.p99_ms, 3),
        "rps": round(figures.rps, 3),
        "error_rate": round(figures.error_rate, 6),
        "requests": figures.requests,
        "vus": figures.vus or plan.vus,
        "duration_s": plan.duration_s,
    }


def _baseline_data(baseline: PerformanceBaseline | None) -> dict[str, object] | None:
    if baseline is None:
        return None
    return {
        "p95_ms": baseline.p95_ms,
        "rps": baseline.rps,
        "error_rate": baseline.error_rate,
        "measured_at": baseline.measured_at,
        "commit": baseline.commit,
    }


def _baseline_line(baseline: PerformanceBaseline | None) -> str:
    if baseline is None:
        return "Baseline: no baseline (no measurement of this connector on the default branch)."
    return f"Baseline from `{baseline.commit[:12]}` measured {baseline.measured_at}."


def figures_table(
    figures: LoadFigures,
    plan: LoadPlan,
    spec: PerformanceSpec,
    baseline: PerformanceBaseline | None,
    rules: PerformanceRules,
) -> str:
    """Markdown table of the figures against the SLOs (and the baseline when there is one)."""
    slo = spec.slo
    base_p95 = (
        f"{baseline.p95_ms:.1f} ms (max {regression_limit(baseline.p95_ms, rules):.1f})"
        if baseline
        else "—"
    )
    rows = [
        ("p50 latency", f"{figures.p50_ms:.1f} ms", "", ""),
        ("p90 latency", f"{figures.p90_ms:.1f} ms", "", ""),
        ("p95 latency", f"{figures.p95_ms:.1f} ms", f"≤ {slo.p95_ms:g} ms", base_p95),
        ("p99 latency", f"{figures.p99_ms:.1f} ms", "", ""),
        (
            "requests/s",
            f"{figures.rps:.1f}",
            f"≥ {slo.min_rps:g}",
            f"{baseline.rps:.1f}" if baseline else "—",
        ),
        (
            "error rate",
            f"{figures.error_rate:.2%}",
            f"≤ {slo.error_rate:.2%}",
            f"{baseline.error_rate:.2%}" if baseline else "—",
        ),
        ("requests", str(figures.requests), "", ""),
        ("VUs", str(figures.vus or plan.vus), "", ""),
        ("duration", f"{plan.duration_s} s", "", ""),
    ]
    lines = ["| Figure | Measured | SLO | Baseline |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)
