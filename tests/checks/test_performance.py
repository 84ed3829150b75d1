"""connector-gate/performance with the real k6 binary against the example services."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from checks.base import CheckSettings
from checks.model import Conclusion, PerformanceBaseline
from checks.performance import (
    LoadFigures,
    PerformanceCheck,
    find_k6,
    k6_thresholds,
    parse_summary,
    regression_findings,
)
from tests.sandbox.helpers import (
    EXAMPLES,
    QUICK_PERF,
    context_for,
    copy_example,
    make_rules,
    replace_in_manifest,
    venv_cache,
    workdir,
)

__all__ = ["venv_cache", "workdir"]

pytestmark = pytest.mark.slow


async def test_acme_weather_meets_its_slos(venv_cache: Path) -> None:
    result = await PerformanceCheck().run(context_for(EXAMPLES / "acme-weather", venv_cache))
    assert result.conclusion is Conclusion.SUCCESS, result.details
    data = result.data
    assert data["verdict"] == "pass" and data["isolation"] == "netns+uid"
    assert data["vus"] == 3 and data["duration_s"] == 3
    assert 0 < data["p50_ms"] <= data["p95_ms"] <= data["p99_ms"] < 300  # type: ignore[operator]
    assert data["rps"] >= 20 and data["error_rate"] == 0  # type: ignore[operator]
    assert data["k6_failed_thresholds"] == []
    assert "| p95 latency |" in result.details and "no baseline" in result.details


async def test_leaky_notes_fails_on_p95_with_the_figures(venv_cache: Path) -> None:
    result = await PerformanceCheck().run(context_for(EXAMPLES / "leaky-notes", venv_cache))
    assert result.conclusion is Conclusion.FAILURE
    assert result.data["verdict"] == "fail"
    p95 = result.data["p95_ms"]
    assert isinstance(p95, float) and 250 <= p95 < 400  # /notes sleeps 250 ms
    [slow] = [f for f in result.findings if f.rule_id == "performance.slo-p95"]
    assert f"p95 latency {p95:.1f} ms exceeds the SLO of 100 ms" in slow.message
    assert slow.path == "connectors/leaky-notes/connector.yaml" and slow.start_line == 16
    # k6 itself applied the thresholds we passed with --config (true = crossed in the export).
    assert "http_req_duration: p(95)<=100" in result.data["k6_failed_thresholds"]  # type: ignore[operator]


async def test_p95_regression_against_the_baseline(venv_cache: Path) -> None:
    baseline = PerformanceBaseline(
        p95_ms=0.01, rps=5000, error_rate=0, measured_at="2026-11-30T10:00:00Z", commit="a" * 40
    )
    rules = dataclasses.replace(
        make_rules(), performance=dataclasses.replace(QUICK_PERF, regression_min_ms=0)
    )
    context = context_for(EXAMPLES / "acme-weather", venv_cache, baseline=baseline, rules=rules)
    result = await PerformanceCheck().run(context)
    assert result.conclusion is Conclusion.FAILURE
    [finding] = result.findings
    assert finding.rule_id == "performance.regression-p95"
    assert "baseline 0.0 ms" in finding.message and "tolerance 20%" in finding.message
    assert "2026-11-30T10:00:00Z" in result.details and "aaaaaaaaaaaa" in result.details


async def test_service_that_dies_is_an_invalid_run(workdir: Path, venv_cache: Path) -> None:
    directory = copy_example("acme-weather", workdir)
    replace_in_manifest(
        directory,
        'start: "python -m acme_weather.server --port {port}"',
        "start: \"python -c 'raise SystemExit(3)' {port}\"",
    )
    result = await PerformanceCheck().run(context_for(directory, venv_cache))
    assert result.conclusion is Conclusion.FAILURE
    assert result.data["verdict"] == "invalid"
    assert "exited with status 3 before it was ready" in result.summary


async def test_script_error_is_an_invalid_run(workdir: Path, venv_cache: Path) -> None:
    directory = copy_example("acme-weather", workdir)
    (directory / "perf" / "load.js").write_text(
        "export default function () { throw new Error('x'); }\n"
        "export const options = { iterations: 'many' };\n"
    )
    result = await PerformanceCheck().run(context_for(directory, venv_cache))
    assert result.data["verdict"] == "invalid"
    assert result.conclusion is not Conclusion.SUCCESS


async def test_missing_k6_is_never_a_pass(venv_cache: Path) -> None:
    context = context_for(EXAMPLES / "acme-weather", venv_cache, k6_path="/nonexistent/k6")
    result = await PerformanceCheck().run(context)
    assert result.conclusion is Conclusion.NEUTRAL
    assert result.data["verdict"] == "invalid" and "k6" in result.summary


def test_k6_lookup_prefers_explicit_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONNECTOR_GATE_K6", raising=False)
    assert find_k6(CheckSettings()) is not None
    assert find_k6(CheckSettings(k6_path="/nonexistent/k6")) is None


def test_summary_export_threshold_booleans_mean_crossed() -> None:
    # Shape of k6 1.1.0's --summary-export: `true` marks a threshold that FAILED.
    data = (
        b'{"metrics": {"http_reqs": {"count": 10, "rate": 5.0, "thresholds": {"rate>=20": true}},'
        b' "http_req_duration": {"med": 1, "p(90)": 2, "p(95)": 3, "p(99)": 4,'
        b' "thresholds": {"p(95)<=300": false}},'
        b' "http_req_failed": {"passes": 0, "fails": 10, "value": 0}}}'
    )
    figures = parse_summary(data)
    assert figures.failed_thresholds == ("http_reqs: rate>=20",)
    assert (figures.p95_ms, figures.rps, figures.requests) == (3, 5.0, 10)


def test_thresholds_follow_the_slo() -> None:
    from checks.manifest import parse_manifest

    manifest = parse_manifest(EXAMPLES / "leaky-notes" / "connector.yaml", display_path="x")
    assert manifest.performance is not None
    assert k6_thresholds(manifest.performance) == {
        "http_req_duration": ["p(95)<=100"],
        "http_req_failed": ["rate<=0.01"],
        "http_reqs": ["rate>=20"],
    }


@pytest.mark.parametrize(
    ("baseline_ms", "measured_ms", "min_ms", "regressed"),
    [
        (5.0, 8.0, 10.0, False),  # +60 % but only 3 ms: noise on a shared machine
        (5.0, 16.0, 10.0, True),  # +220 % and 11 ms
        (100.0, 115.0, 10.0, False),  # +15 %: within the 20 % tolerance
        (100.0, 125.0, 10.0, True),  # +25 % and 25 ms
        (5.0, 8.0, 0.0, True),  # percentage alone when the rules say so
    ],
)
def test_regression_needs_both_relative_and_absolute_growth(
    baseline_ms: float, measured_ms: float, min_ms: float, regressed: bool, venv_cache: Path
) -> None:
    rules = dataclasses.replace(
        make_rules(), performance=dataclasses.replace(QUICK_PERF, regression_min_ms=min_ms)
    )
    context = context_for(EXAMPLES / "acme-weather", venv_cache, rules=rules)
    assert context.manifest is not None
    figures = LoadFigures(
        p50_ms=measured_ms / 2,
        p90_ms=measured_ms,
        p95_ms=measured_ms,
        p99_ms=measured_ms,
        rps=100.0,
        error_rate=0.0,
        requests=1000,
        vus=2,
        dropped_iterations=0,
        failed_thresholds=(),
    )
    baseline = PerformanceBaseline(baseline_ms, 100.0, 0.0, "2026-11-30T10:00:00Z", "a" * 40)
    findings = regression_findings(context, context.manifest, figures, baseline)
    assert bool(findings) is regressed
