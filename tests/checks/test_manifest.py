"""The manifest check on the example connectors and on broken or risky manifests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from checks.base import CheckContext
from checks.errors import ConfigError
from checks.manifest import (
    ManifestCheck,
    is_semver,
    load_manifest_or_none,
    parse_manifest,
    semver_key,
)
from checks.manifest_model import Auth, Manifest, PerformanceSpec, SecretSpec, Slo
from checks.manifest_model import TestsSpec as ManifestTests
from checks.model import CheckResult, Conclusion, Severity
from checks.rules import parse_rules
from checks.rules_model import Rules

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "connectors"

RULES = parse_rules(
    "manifest:\n  allowed_scopes:\n    api_key: ['forecast:read']\n    oauth2: ['notes:read']\n",
    source=".github/connector-gate.yml",
)

BRIEF_EXAMPLE = """\
name: acme-weather            # lowercase slug, equal to the directory name
version: 1.2.0                # semver; must increase when the connector changes
description: Reads forecasts from the Acme Weather API
owners: ["@acme/weather-team"]
auth: {type: api_key, scopes: ["forecast:read"]}   # type: none | api_key | basic | oauth2
data_classification: internal # public | internal | confidential | restricted
egress: ["api.acme-weather.example"]               # hosts it may call; https only
secrets: [{name: ACME_API_KEY, rotation_days: 90}] # names only, never values
requirements: requirements.txt                     # pinned with ==
runbook: RUNBOOK.md           # deployment, rollback and incident notes
tests: {command: "pytest -q"}
performance:
  start: "python -m acme_weather.server --port {port}"
  ready: /health
  script: perf/load.js        # k6 script; BASE_URL points at the started service
  slo: {p95_ms: 300, error_rate: 0.01, min_rps: 20}
"""


def copy_example(tmp_path: Path, name: str, where: str = "head") -> Path:
    target = tmp_path / where / "connectors" / name
    shutil.copytree(EXAMPLES / name, target)
    return target


def context_for(
    directory: Path,
    rules: Rules = RULES,
    base_directory: Path | None = None,
) -> CheckContext:
    return CheckContext(
        connector=directory.name,
        directory=directory,
        display_path=f"connectors/{directory.name}",
        rules=rules,
        manifest=load_manifest_or_none(directory),
        base_directory=base_directory,
        base_manifest=load_manifest_or_none(base_directory),
    )


async def run_check(
    directory: Path, rules: Rules = RULES, base_directory: Path | None = None
) -> CheckResult:
    return await ManifestCheck().run(context_for(directory, rules, base_directory))


def edit(directory: Path, old: str, new: str) -> None:
    path = directory / "connector.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def found(result: CheckResult) -> list[tuple[str, int]]:
    return sorted((f.rule_id, f.start_line) for f in result.findings)


# -- the example connectors -------------------------------------------------------------------


async def test_acme_weather_passes(tmp_path: Path) -> None:
    result = await run_check(copy_example(tmp_path, "acme-weather"))
    assert result.check == "manifest"
    assert result.conclusion is Conclusion.SUCCESS, result.findings
    assert result.findings == ()
    assert result.data["version"] == "1.2.0"


async def test_leaky_notes_fails_on_egress_and_scope(tmp_path: Path) -> None:
    result = await run_check(copy_example(tmp_path, "leaky-notes"))
    assert result.conclusion is Conclusion.FAILURE
    assert found(result) == [
        ("manifest.egress-not-https", 7),
        ("manifest.scope-not-allowed", 5),
    ]
    by_rule = {f.rule_id: f for f in result.findings}
    egress = by_rule["manifest.egress-not-https"]
    assert egress.path == "connectors/leaky-notes/connector.yaml"
    assert egress.severity is Severity.HIGH and egress.blocking
    assert "http://" in egress.message and "https://" in egress.remediation
    scope = by_rule["manifest.scope-not-allowed"]
    assert "notes:admin" in scope.message
    assert "notes:read" not in scope.message.split("(")[0]
    assert scope.connector == "leaky-notes"
    assert scope.finding_id.startswith("man-")


def test_brief_example_parses_cleanly(tmp_path: Path) -> None:
    directory = copy_example(tmp_path, "acme-weather")
    (directory / "connector.yaml").write_text(BRIEF_EXAMPLE)
    manifest = parse_manifest(directory / "connector.yaml", display_path="connector.yaml")
    assert manifest == Manifest(
        name="acme-weather",
        version="1.2.0",
        description="Reads forecasts from the Acme Weather API",
        owners=("@acme/weather-team",),
        auth=Auth(type="api_key", scopes=("forecast:read",)),
        data_classification="internal",
        egress=("api.acme-weather.example",),
        secrets=(SecretSpec(name="ACME_API_KEY", rotation_days=90),),
        requirements="requirements.txt",
        runbook="RUNBOOK.md",
        tests=ManifestTests(command="pytest -q"),
        performance=PerformanceSpec(
            start="python -m acme_weather.server --port {port}",
            ready="/health",
            script="perf/load.js",
            slo=Slo(p95_ms=300, error_rate=0.01, min_rps=20),
        ),
        lines=manifest.lines,
    )
    assert manifest.line_of("auth.scopes.0") == 5
    assert manifest.line_of("performance.slo.p95_ms") == 16


def test_optional_sections_default(tmp_path: Path) -> None:
    directory = copy_example(tmp_path, "acme-weather")
    text = BRIEF_EXAMPLE.split("tests:")[0]
    (directory / "connector.yaml").write_text(text)
    manifest = load_manifest_or_none(directory)
    assert manifest is not None
    assert manifest.tests == ManifestTests()
    assert manifest.performance is None


def test_load_manifest_or_none() -> None:
    assert load_manifest_or_none(None) is None
    assert load_manifest_or_none(EXAMPLES / "does-not-exist") is None
    manifest = load_manifest_or_none(EXAMPLES / "leaky-notes")
    assert manifest is not None and manifest.auth.scopes == ("notes:read", "notes:admin")


# -- malformed manifests: FAILURE, a finding naming file and line, never a traceback ----------

MALFORMED: list[tuple[str, bytes | None, str, int, str]] = [
    # (case, connector.yaml content or None to delete it, rule, line, words in the message)
    ("missing file", None, "manifest.missing", 0, "no connector.yaml"),
    ("bad yaml", b"name: acme-weather\nversion: [1.2.0\n", "manifest.unreadable", 3, "YAML"),
    ("binary", b"name: acme-weather\n\x00\x01\x02", "manifest.unreadable", 2, "binary"),
    ("not utf-8", b"name: acme-weather\ndescription: \xff\n", "manifest.unreadable", 2, "UTF-8"),
    ("huge", b"name: x\n" + b"#" * 300_000, "manifest.unreadable", 1, "300008 bytes"),
    ("duplicate key", b"name: a\nversion: 1.0.0\nname: b\n", "manifest.unreadable", 3, "duplicate"),
    ("alias", b"name: &n a\ndescription: *n\n", "manifest.unreadable", 2, "aliases"),
    ("top-level list", b"- name: acme-weather\n", "manifest.unreadable", 1, "mapping"),
    ("empty", b"", "manifest.unreadable", 1, "empty"),
]


@pytest.mark.parametrize(
    ("content", "rule", "line", "words"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
async def test_malformed_manifest_fails_with_location(
    tmp_path: Path, content: bytes | None, rule: str, line: int, words: str
) -> None:
    directory = copy_example(tmp_path, "acme-weather")
    path = directory / "connector.yaml"
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    result = await run_check(directory)
    assert result.conclusion is Conclusion.FAILURE
    assert [(f.rule_id, f.start_line) for f in result.findings] == [(rule, line)]
    finding = result.findings[0]
    assert finding.path == "connectors/acme-weather/connector.yaml"
    assert words in finding.message, finding.message
    assert finding.remediation
    assert result.data == {"valid": False}
    assert "connector.yaml" in result.summary


SCHEMA: list[tuple[str, str, str, str, int, str]] = [
    # (case, old text, new text, key, line, words in the message)
    ("unknown key", "runbook: RUNBOOK.md", "runbok: RUNBOOK.md", "runbok", 10, "did you mean"),
    ("required key", "runbook: RUNBOOK.md\n", "", "runbook", 1, "required"),
    ("version float", "version: 1.2.0", "version: 1.2", "version", 2, "quote it"),
    ("version not semver", "version: 1.2.0", "version: v1.2.0", "version", 2, "semantic"),
    ("name not slug", "name: acme-weather", "name: Acme_Weather", "name", 1, "slug"),
    ("owners empty", 'owners: ["@acme/weather-team"]', "owners: []", "owners", 4, "at least one"),
    ("owner format", '"@acme/weather-team"', '"acme team"', "owners.0", 4, "@user or @org/team"),
    ("auth type", "type: api_key", "type: apikey", "auth.type", 5, "did you mean 'api_key'"),
    ("auth unknown", "auth: {type", "auth: {kind: x, type", "auth.kind", 5, "unknown key"),
    ("scopes type", 'scopes: ["forecast:read"]', "scopes: forecast:read", "auth.scopes", 5, "list"),
    (
        "classification",
        "data_classification: internal",
        "data_classification: secret",
        "data_classification",
        6,
        "not one of",
    ),
    ("egress type", 'egress: ["api.acme-weather.example"]', "egress: {}", "egress", 7, "list"),
    ("egress space", '"api.acme-weather.example"', '"api.acme example"', "egress.0", 7, "spaces"),
    ("secret name", "name: ACME_API_KEY", "name: acme-api-key", "secrets.0.name", 8, "UPPER_SNAKE"),
    (
        "rotation type",
        "rotation_days: 90",
        "rotation_days: '90'",
        "secrets.0.rotation_days",
        8,
        "integer",
    ),
    ("rotation zero", "rotation_days: 90", "rotation_days: 0", "secrets.0.rotation_days", 8, "1"),
    (
        "duplicate secret",
        "secrets: [{name: ACME_API_KEY, rotation_days: 90}]",
        "secrets: [{name: ACME_API_KEY, rotation_days: 90},\n"
        "  {name: ACME_API_KEY, rotation_days: 9}]",
        "secrets.1.name",
        9,
        "twice",
    ),
    (
        "absolute path",
        "requirements: requirements.txt",
        "requirements: /etc/passwd",
        "requirements",
        9,
        "relative",
    ),
    (
        "dotdot path",
        "runbook: RUNBOOK.md",
        "runbook: ../leaky-notes/RUNBOOK.md",
        "runbook",
        10,
        "relative",
    ),
    (
        "tests command",
        'command: "pytest -q"',
        'command: "pytest \'q"',
        "tests.command",
        11,
        "split",
    ),
    ("start port", "--port {port}", "--port 8000", "performance.start", 13, "{port}"),
    ("ready path", "ready: /health", "ready: health", "performance.ready", 14, "starting with /"),
    ("slo p95", "p95_ms: 300", "p95_ms: 0", "performance.slo.p95_ms", 16, "greater than 0"),
    (
        "slo error rate",
        "error_rate: 0.01",
        "error_rate: 1",
        "performance.slo.error_rate",
        16,
        "share",
    ),
    ("slo rps", "min_rps: 20", "min_rps: -1", "performance.slo.min_rps", 16, "at least 0"),
    ("slo missing", ", min_rps: 20", "", "performance.slo.min_rps", 16, "required"),
    ("slo bool", "min_rps: 20", "min_rps: true", "performance.slo.min_rps", 16, "number"),
    (
        "perf unknown",
        "ready: /health",
        "ready: /health\n  warmup: 5",
        "performance.warmup",
        15,
        "unknown",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "line", "words"),
    [case[1:] for case in SCHEMA],
    ids=[case[0] for case in SCHEMA],
)
async def test_schema_errors_name_line_and_key(
    tmp_path: Path, old: str, new: str, key: str, line: int, words: str
) -> None:
    directory = copy_example(tmp_path, "acme-weather")
    edit(directory, old, new)
    with pytest.raises(ConfigError) as caught:
        parse_manifest(directory / "connector.yaml", display_path="c/connector.yaml")
    error = caught.value
    assert (error.file, error.line, error.key) == ("c/connector.yaml", line, key)
    assert words in error.message, error.message

    result = await run_check(directory)
    assert result.conclusion is Conclusion.FAILURE
    expected_rule = "manifest.unknown-key" if "unknown" in error.message else "manifest.schema"
    [finding] = [f for f in result.findings if f.rule_id == expected_rule]
    assert finding.start_line == line
    assert f"`{key}`" in finding.message


async def test_every_schema_error_is_reported(tmp_path: Path) -> None:
    directory = copy_example(tmp_path, "acme-weather")
    edit(directory, "version: 1.2.0", "version: 1.2")
    edit(directory, "runbook: RUNBOOK.md", "runbok: RUNBOOK.md")
    edit(directory, "p95_ms: 300", "p95_ms: -5")
    result = await run_check(directory)
    assert found(result) == [
        ("manifest.schema", 1),  # `runbook` is missing: the file as a whole
        ("manifest.schema", 2),
        ("manifest.schema", 16),
        ("manifest.unknown-key", 10),
    ]
    missing = next(f for f in result.findings if f.start_line == 1)
    assert "'runbok' at line 10 may be a misspelling" in missing.message


async def test_invalid_manifest_fails_even_when_thresholds_would_not_block(
    tmp_path: Path,
) -> None:
    directory = copy_example(tmp_path, "acme-weather")
    edit(directory, "version: 1.2.0", "version: latest")
    lenient = parse_rules(
        "fail_on: critical\n"
        "ignore:\n  - {rule: manifest.schema, reason: try, expires: 2999-01-01}\n",
        source="r",
    )
    result = await run_check(directory, rules=lenient)
    assert result.conclusion is Conclusion.FAILURE
    assert all(f.blocking for f in result.findings)


# -- policy findings on a schema-valid manifest ------------------------------------------------

POLICY: list[tuple[str, str, str, list[tuple[str, int]]]] = [
    # (case, old text, new text, expected (rule, line) findings)
    (
        "wildcard egress",
        '"api.acme-weather.example"',
        '"*.acme-weather.example"',
        [("manifest.egress-wildcard", 7)],
    ),
    ("https url egress", '"api.acme-weather.example"', '"https://api.acme-weather.example/v1"', []),
    ("egress with port", '"api.acme-weather.example"', '"api.acme-weather.example:8443"', []),
    (
        "egress other scheme",
        '"api.acme-weather.example"',
        '"ftp://files.example"',
        [("manifest.egress-not-https", 7)],
    ),
    (
        "egress credentials",
        '"api.acme-weather.example"',
        '"https://user:hunter2@api.example"',
        [("manifest.egress-credentials", 7)],
    ),
    (
        "egress invalid",
        '"api.acme-weather.example"',
        '"api.example/v1"',
        [("manifest.egress-invalid", 7)],
    ),
    (
        "egress bad port",
        '"api.acme-weather.example"',
        '"api.example:99999"',
        [("manifest.egress-invalid", 7)],
    ),
    (
        "second egress plain http",
        '"api.acme-weather.example"',
        '"api.acme-weather.example",\n  "http://metrics.example"',
        [("manifest.egress-not-https", 8)],
    ),
    (
        "scope not allowed",
        'scopes: ["forecast:read"]',
        'scopes: ["forecast:read", "forecast:write"]',
        [("manifest.scope-not-allowed", 5)],
    ),
    (
        "auth type without allowlist",
        'auth: {type: api_key, scopes: ["forecast:read"]}',
        'auth: {type: basic, scopes: ["read"]}',
        [("manifest.scope-not-allowed", 5)],
    ),
    (
        "auth none without scopes",
        'auth: {type: api_key, scopes: ["forecast:read"]}',
        "auth: {type: none}",
        [],
    ),
    (
        "auth none with scopes",
        'auth: {type: api_key, scopes: ["forecast:read"]}',
        'auth: {type: none, scopes: ["x"]}',
        [("manifest.scope-not-allowed", 5)],
    ),
    (
        "rotation too long",
        "rotation_days: 90",
        "rotation_days: 365",
        [("manifest.secret-rotation", 8)],
    ),
    (
        "runbook missing",
        "runbook: RUNBOOK.md",
        "runbook: docs/RUNBOOK.md",
        [("manifest.runbook-missing", 10)],
    ),
    (
        "requirements missing",
        "requirements: requirements.txt",
        "requirements: requirements-lock.txt",
        [("manifest.requirements-missing", 9)],
    ),
    (
        "requirements is a directory",
        "requirements: requirements.txt",
        "requirements: perf",
        [("manifest.requirements-missing", 9)],
    ),
    (
        "script missing",
        "script: perf/load.js",
        "script: perf/soak.js",
        [("manifest.script-missing", 15)],
    ),
    (
        "name mismatch",
        "name: acme-weather",
        "name: acme-forecast",
        [("manifest.name-mismatch", 1)],
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [case[1:] for case in POLICY],
    ids=[case[0] for case in POLICY],
)
async def test_policy_findings(
    tmp_path: Path, old: str, new: str, expected: list[tuple[str, int]]
) -> None:
    directory = copy_example(tmp_path, "acme-weather")
    edit(directory, old, new)
    result = await run_check(directory)
    assert found(result) == sorted(expected)
    assert result.conclusion is (Conclusion.FAILURE if expected else Conclusion.SUCCESS)
    for finding in result.findings:
        assert "hunter2" not in finding.message + finding.remediation


async def test_denied_egress(tmp_path: Path) -> None:
    directory = copy_example(tmp_path, "acme-weather")
    rules = parse_rules(
        "manifest:\n  allowed_scopes: {api_key: ['*']}\n  denied_egress: ['*.example']\n",
        source="r",
    )
    result = await run_check(directory, rules=rules)
    assert found(result) == [("manifest.egress-denied", 7)]
    assert "*.example" in result.findings[0].message


async def test_rules_without_scope_list_report_every_scope(tmp_path: Path) -> None:
    result = await run_check(copy_example(tmp_path, "leaky-notes"), rules=Rules())
    scopes = [f for f in result.findings if f.rule_id == "manifest.scope-not-allowed"]
    assert len(scopes) == 2
    assert all("rules allow no scopes for auth type oauth2" in f.message for f in scopes)
    assert all("manifest.allowed_scopes.oauth2" in f.remediation for f in scopes)


async def test_symlink_escaping_the_connector(tmp_path: Path) -> None:
    directory = copy_example(tmp_path, "acme-weather")
    outside = tmp_path / "outside.md"
    outside.write_text("# not ours\n")
    (directory / "RUNBOOK.md").unlink()
    (directory / "RUNBOOK.md").symlink_to(outside)
    result = await run_check(directory)
    assert found(result) == [("manifest.path-escape", 10)]


async def test_lower_severity_findings_follow_the_threshold(tmp_path: Path) -> None:
    directory = copy_example(tmp_path, "acme-weather")
    edit(directory, "rotation_days: 90", "rotation_days: 365")
    rules = parse_rules(
        "fail_on: high\nmanifest: {allowed_scopes: {api_key: ['forecast:read']}}\n", source="r"
    )
    result = await run_check(directory, rules=rules)
    assert result.conclusion is Conclusion.SUCCESS
    [finding] = result.findings
    assert finding.severity is Severity.MEDIUM and not finding.blocking


async def test_finding_ids_survive_reordering(tmp_path: Path) -> None:
    first = await run_check(copy_example(tmp_path, "leaky-notes", "one"))
    directory = copy_example(tmp_path, "leaky-notes", "two")
    edit(directory, '["notes:read", "notes:admin"]', '["notes:admin", "notes:read"]')
    second = await run_check(directory)
    ids = {f.finding_id for f in first.findings if f.rule_id == "manifest.scope-not-allowed"}
    assert ids == {f.finding_id for f in second.findings if f.rule_id.endswith("not-allowed")}


# -- version bumps -----------------------------------------------------------------------------


async def test_changed_connector_without_version_bump(tmp_path: Path) -> None:
    base = copy_example(tmp_path, "acme-weather", "base")
    head = copy_example(tmp_path, "acme-weather", "head")
    client = head / "acme_weather" / "client.py"
    client.write_text(client.read_text() + "\n# tweak\n")
    result = await run_check(head, base_directory=base)
    assert found(result) == [("manifest.version-not-increased", 2)]
    assert "1.2.0 equals" in result.findings[0].message
    assert result.findings[0].severity is Severity.MEDIUM


async def test_unchanged_connector_needs_no_bump(tmp_path: Path) -> None:
    base = copy_example(tmp_path, "acme-weather", "base")
    head = copy_example(tmp_path, "acme-weather", "head")
    (head / "acme_weather" / "__pycache__").mkdir(exist_ok=True)
    (head / "acme_weather" / "__pycache__" / "client.cpython-311.pyc").write_bytes(b"x")
    result = await run_check(head, base_directory=base)
    assert result.findings == ()


@pytest.mark.parametrize(
    ("base_version", "head_version", "flagged"),
    [
        ("1.2.0", "1.2.1", False),
        ("1.2.0", "1.10.0", False),
        ("1.2.0", "2.0.0-rc.1", False),
        ("1.2.0", "1.2.0+build.7", True),  # build metadata does not count
        ("1.2.0", "1.1.9", True),
        ("1.2.0", "1.2.0-rc.1", True),  # a pre-release is lower than its release
        ("1.2.0-rc.1", "1.2.0", False),
        ("1.2.0-beta.11", "1.2.0-beta.2", True),
        ("1.2.0-alpha", "1.2.0-alpha.1", False),
    ],
)
async def test_version_must_increase(
    tmp_path: Path, base_version: str, head_version: str, flagged: bool
) -> None:
    base = copy_example(tmp_path, "acme-weather", "base")
    head = copy_example(tmp_path, "acme-weather", "head")
    edit(base, "version: 1.2.0", f"version: {base_version}")
    edit(head, "version: 1.2.0", f"version: {head_version}")
    result = await run_check(head, base_directory=base)
    expected = [("manifest.version-not-increased", 2)] if flagged else []
    assert found(result) == expected


async def test_base_with_invalid_manifest_is_not_compared(tmp_path: Path) -> None:
    base = copy_example(tmp_path, "acme-weather", "base")
    head = copy_example(tmp_path, "acme-weather", "head")
    edit(base, "version: 1.2.0", "version: one")
    result = await run_check(head, base_directory=base)
    assert result.findings == ()


def test_semver_precedence_follows_the_specification() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.9.0",
        "1.10.0",
        "2.0.0",
    ]
    assert sorted(ordered, key=semver_key) == ordered
    assert semver_key("1.0.0+a") == semver_key("1.0.0+b")


@pytest.mark.parametrize(
    "version",
    ["1.2", "01.2.3", "1.02.3", "1.2.3-", "1.2.3-01", "v1.2.3", "1.2.3\n", "1.2.3+", " 1.2.3"],
)
def test_invalid_semver(version: str) -> None:
    assert not is_semver(version)
    with pytest.raises(ValueError):
        semver_key(version)


def test_manifest_model_line_fallback() -> None:
    manifest = load_manifest_or_none(EXAMPLES / "acme-weather")
    assert manifest is not None
    assert manifest.line_of("egress.0") == 7
    assert manifest.line_of("performance.slo.unknown") == 16


def test_documented_example_is_the_reference_example() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "manifest.md"
    example = docs.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    assert example == BRIEF_EXAMPLE


async def test_change_detection_sees_links_and_ignores_fifos(tmp_path: Path) -> None:
    base = copy_example(tmp_path, "acme-weather", "base")
    head = copy_example(tmp_path, "acme-weather", "head")
    os.mkfifo(base / "pipe")
    os.mkfifo(head / "pipe")
    assert (await run_check(head, base_directory=base)).findings == ()
    (head / "docs").symlink_to(head / "perf")
    result = await run_check(head, base_directory=base)
    assert found(result) == [("manifest.version-not-increased", 2)]
