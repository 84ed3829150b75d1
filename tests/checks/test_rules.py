"""Repository rules: every section parsed strictly, errors name file, line and key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from checks.errors import ConfigError
from checks.model import Severity
from checks.rules import load_rules, merge_rules, parse_rules, parse_rules_layered
from checks.rules_model import (
    ApprovalCondition,
    ApprovalRule,
    IgnoreEntry,
    RiskRaise,
    Rules,
    WaiverRules,
)

FULL = """\
connectors: ["connectors/*", "integrations/*"]
fail_on: high
run_on_drafts: true
manifest:
  allowed_scopes:
    api_key: ["forecast:read"]
    oauth2: ["notes:read", "notes:write"]
  max_rotation_days: 60
  denied_egress: ["*.internal", "169.254.169.254"]
static: {severity: medium, confidence: high, include_tests: true}
ignore:
  - id: PYSEC-2018-28
    reason: no fixed release yet
    expires: 2030-06-30
  - rule: B501
    paths: ["connectors/legacy/*"]
    reason: "legacy TLS endpoint, tracked in OPS-12"
    expires: "2030-01-15"
approvals:
  - name: security
    teams: [security]
    count: 1
  - name: ops
    teams: [ops, sre]
    users: ["@alice", bob]
    count: 2
    when:
      changed: ["connectors/**/perf/*"]
      labels: [performance]
      data_classification: [confidential, restricted]
      min_risk: 3
risk:
  raises:
    - {min_score: 4, add: {security: 1}}
    - {min_score: 8, add: {security: 1, ops: 1}}
waivers:
  default_days: 14
  max_days: 30
  categories: {performance: security}
tests: {timeout_s: 120, install_timeout_s: 240, index_url: "https://pypi.example/simple"}
performance:
  duration_s: 20
  max_duration_s: 30
  vus: 10
  max_vus: 20
  regression_tolerance: 0.1
sandbox: {allow_weak_isolation_for_forks: true}
"""


def test_every_section_parses() -> None:
    rules = parse_rules(FULL, source=".github/connector-gate.yml")
    assert rules.connectors == ("connectors/*", "integrations/*")
    assert rules.fail_on is Severity.HIGH
    assert rules.run_on_drafts is True
    assert rules.manifest.allowed_scopes == {
        "api_key": ("forecast:read",),
        "oauth2": ("notes:read", "notes:write"),
    }
    assert rules.manifest.max_rotation_days == 60
    assert rules.manifest.denied_egress == ("*.internal", "169.254.169.254")
    assert (rules.static.severity, rules.static.confidence) == (Severity.MEDIUM, Severity.HIGH)
    assert rules.static.include_tests is True
    assert rules.ignore == (
        IgnoreEntry(
            reason="no fixed release yet",
            expires=dt.date(2030, 6, 30),
            finding_id="PYSEC-2018-28",
            line=12,
        ),
        IgnoreEntry(
            reason="legacy TLS endpoint, tracked in OPS-12",
            expires=dt.date(2030, 1, 15),
            rule_id="B501",
            paths=("connectors/legacy/*",),
            line=15,
        ),
    )
    assert rules.approvals == (
        ApprovalRule(name="security", teams=("security",), count=1, line=20),
        ApprovalRule(
            name="ops",
            teams=("ops", "sre"),
            users=("alice", "bob"),
            count=2,
            when=ApprovalCondition(
                changed=("connectors/**/perf/*",),
                labels=("performance",),
                data_classification=("confidential", "restricted"),
                min_risk=3,
            ),
            line=23,
        ),
    )
    assert rules.risk.raises == (
        RiskRaise(min_score=4, add={"security": 1}),
        RiskRaise(min_score=8, add={"security": 1, "ops": 1}),
    )
    assert (rules.waivers.default_days, rules.waivers.max_days) == (14, 30)
    # A given category overrides its default; the others keep theirs.
    assert rules.waivers.categories == {**WaiverRules().categories, "performance": "security"}
    assert (rules.tests.timeout_s, rules.tests.install_timeout_s) == (120, 240)
    assert rules.tests.index_url == "https://pypi.example/simple"
    perf = rules.performance
    assert (perf.duration_s, perf.max_duration_s, perf.vus, perf.max_vus) == (20, 30, 10, 20)
    assert perf.regression_tolerance == pytest.approx(0.1)
    assert rules.sandbox.allow_weak_isolation_for_forks is True
    assert rules.source == ".github/connector-gate.yml"
    assert len(rules.digest) == 64


def test_absent_rules_are_the_defaults(tmp_path: Path) -> None:
    assert load_rules(None) == Rules()
    assert load_rules(tmp_path / "connector-gate.yml") == Rules()
    assert parse_rules_layered([]) == Rules()


def test_empty_file_means_defaults_with_source(tmp_path: Path) -> None:
    path = tmp_path / "connector-gate.yml"
    path.write_text("# defaults are fine\n")
    rules = load_rules(path)
    assert rules.fail_on is Rules().fail_on
    assert rules.approvals == ()
    assert rules.source == str(path)
    assert rules.digest


def test_load_rules_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "connector-gate.yml"
    path.write_text("fail_on: critical\n")
    assert load_rules(path).fail_on is Severity.CRITICAL


def test_load_rules_errors_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "connector-gate.yml"
    path.write_text("fail_on: high\nfail_on: low\n")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert (caught.value.file, caught.value.line) == (str(path), 2)


def test_digest_ignores_formatting_but_not_content() -> None:
    a = parse_rules("fail_on: high\nrun_on_drafts: true\n", source="a")
    b = parse_rules("run_on_drafts:   true   # same\nfail_on: 'high'\n", source="b")
    c = parse_rules("fail_on: low\nrun_on_drafts: true\n", source="c")
    assert a.digest == b.digest
    assert a.digest != c.digest


INVALID = [
    # (case, rules text, line, key, words in the message)
    (
        "unknown top key",
        "fail_on: high\nfail_onn: low\n",
        2,
        "fail_onn",
        ["did you mean 'fail_on'"],
    ),
    (
        "unknown nested key",
        "manifest:\n  max_rotation_day: 30\n",
        2,
        "manifest.max_rotation_day",
        ["unknown key", "did you mean 'max_rotation_days'"],
    ),
    (
        "unknown auth type",
        "manifest:\n  allowed_scopes:\n    api-key: [a]\n",
        3,
        "manifest.allowed_scopes.api-key",
        ["did you mean 'api_key'"],
    ),
    ("severity", "fail_on: severe\n", 1, "fail_on", ["not one of", "critical"]),
    ("severity type", "fail_on: 3\n", 1, "fail_on", ["expected a string, got the number 3"]),
    ("bool as string", "run_on_drafts: 'yes'\n", 1, "run_on_drafts", ["true or false"]),
    ("connectors scalar", "connectors: connectors/*\n", 1, "connectors", ["expected a list"]),
    ("connectors empty", "connectors: []\n", 1, "connectors", ["at least one"]),
    ("connectors escape", "connectors: [../x/*]\n", 1, "connectors.0", ["relative"]),
    ("section type", "static: [medium]\n", 1, "static", ["expected a mapping, got a list"]),
    ("bandit level", "static: {severity: critical}\n", 1, "static.severity", ["low, medium, high"]),
    (
        "rotation days",
        "manifest:\n  max_rotation_days: 0\n",
        2,
        "manifest.max_rotation_days",
        ["at least 1"],
    ),
    (
        "scopes type",
        "manifest:\n  allowed_scopes: {oauth2: notes:read}\n",
        2,
        "manifest.allowed_scopes.oauth2",
        ["expected a list"],
    ),
    (
        "ignore reason missing",
        "ignore:\n  - rule: B501\n    expires: 2030-01-01\n",
        2,
        "ignore.0.reason",
        ["required"],
    ),
    (
        "ignore expires missing",
        "ignore:\n  - id: sec-123456\n    reason: ok\n",
        2,
        "ignore.0.expires",
        ["required"],
    ),
    (
        "ignore expires format",
        "ignore:\n  - {id: x, reason: ok, expires: 30/01/2030}\n",
        2,
        "ignore.0.expires",
        ["YYYY-MM-DD"],
    ),
    (
        "ignore expires impossible",
        "ignore:\n  - {id: x, reason: ok, expires: '2030-02-30'}\n",
        2,
        "ignore.0.expires",
        ["invalid date"],
    ),
    (
        "ignore expires with time",
        "ignore:\n  - {id: x, reason: ok, expires: 2030-01-01 10:00:00}\n",
        2,
        "ignore.0.expires",
        ["without a time"],
    ),
    (
        "ignore without target",
        "ignore:\n  - {reason: ok, expires: 2030-01-01}\n",
        2,
        "ignore.0",
        ["`id`", "`rule`"],
    ),
    (
        "ignore blank reason",
        "ignore:\n  - {id: x, reason: '  ', expires: 2030-01-01}\n",
        2,
        "ignore.0.reason",
        ["must not be empty"],
    ),
    (
        "approval duplicate name",
        "approvals:\n  - {name: ops, teams: [a]}\n  - {name: ops, users: [b]}\n",
        3,
        "approvals.1.name",
        ["duplicate", "line 2"],
    ),
    (
        "approval without people",
        "approvals:\n  - name: ops\n    count: 1\n",
        2,
        "approvals.0",
        ["at least one of `teams` or `users`"],
    ),
    (
        "approval count",
        "approvals:\n  - name: ops\n    teams: [ops]\n    count: 0\n",
        4,
        "approvals.0.count",
        ["at least 1"],
    ),
    (
        "approval team with org",
        "approvals:\n  - name: sec\n    teams: ['@acme/security']\n",
        3,
        "approvals.0.teams.0",
        ["team slug"],
    ),
    (
        "approval unknown condition",
        "approvals:\n  - name: sec\n    teams: [s]\n    when: {label: [x]}\n",
        4,
        "approvals.0.when.label",
        ["did you mean 'labels'"],
    ),
    (
        "approval classification",
        "approvals:\n  - name: sec\n    teams: [s]\n"
        "    when:\n      data_classification: [secret]\n",
        5,
        "approvals.0.when.data_classification.0",
        ["not one of"],
    ),
    (
        "risk names unknown rule",
        "approvals:\n  - {name: security, teams: [s]}\n"
        "risk:\n  raises:\n    - min_score: 5\n      add: {secuirty: 1}\n",
        6,
        "risk.raises.0.add.secuirty",
        ["not an approval rule", "security"],
    ),
    (
        "risk add missing",
        "risk:\n  raises:\n    - {min_score: 5}\n",
        3,
        "risk.raises.0.add",
        ["required"],
    ),
    (
        "risk negative score",
        "risk:\n  raises:\n    - {min_score: -1, add: {security: 1}}\n",
        3,
        "risk.raises.0.min_score",
        ["at least 0"],
    ),
    (
        "waiver category check",
        "waivers:\n  categories: {secret: security}\n",
        2,
        "waivers.categories.secret",
        ["did you mean 'secrets'"],
    ),
    (
        "waiver category rule",
        "approvals:\n  - {name: security, teams: [s]}\nwaivers:\n  categories:\n    tests: qa\n",
        5,
        "waivers.categories.tests",
        ["not an approval rule"],
    ),
    (
        "waiver days",
        "waivers:\n  default_days: 40\n  max_days: 30\n",
        2,
        "waivers.default_days",
        ["exceeds max_days"],
    ),
    (
        "plain http index",
        "tests:\n  index_url: http://pypi.example/simple\n",
        2,
        "tests.index_url",
        ["https"],
    ),
    (
        "timeout type",
        "tests:\n  timeout_s: 1.5\n",
        2,
        "tests.timeout_s",
        ["expected an integer"],
    ),
    (
        "duration over cap",
        "performance:\n  duration_s: 90\n",
        2,
        "performance.duration_s",
        ["exceeds max_duration_s (60)"],
    ),
    (
        "vus over cap",
        "performance:\n  vus: 10\n  max_vus: 5\n",
        2,
        "performance.vus",
        ["exceeds max_vus"],
    ),
    (
        "tolerance negative",
        "performance:\n  regression_tolerance: -0.1\n",
        2,
        "performance.regression_tolerance",
        ["at least 0"],
    ),
    (
        "sandbox flag",
        "sandbox:\n  allow_weak_isolation_for_forks: 1\n",
        2,
        "sandbox.allow_weak_isolation_for_forks",
        ["true or false"],
    ),
    ("top-level list", "- fail_on: high\n", 1, "", ["mapping"]),
]


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_rules_name_file_line_and_key(
    text: str, line: int, key: str, words: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, source=".github/connector-gate.yml")
    error = caught.value
    assert (error.file, error.line, error.key) == (".github/connector-gate.yml", line, key)
    for word in words:
        assert word in error.message, error.message


def test_risk_may_name_any_rule_when_no_approvals_are_configured() -> None:
    rules = parse_rules("risk:\n  raises: [{min_score: 2, add: {anyone: 1}}]\n", source="r")
    assert rules.risk.raises == (RiskRaise(min_score=2, add={"anyone": 1}),)


def test_local_http_index_is_allowed() -> None:
    rules = parse_rules("tests: {index_url: 'http://127.0.0.1:8080/simple'}\n", source="r")
    assert rules.tests.index_url == "http://127.0.0.1:8080/simple"


ORG = """\
fail_on: high
manifest:
  allowed_scopes: {api_key: ["forecast:read"]}
approvals:
  - {name: security, teams: [security]}
  - {name: ops, teams: [ops]}
"""

REPO = """\
fail_on: low
risk:
  raises:
    - {min_score: 3, add: {ops: 1}}
"""


def test_layers_override_key_by_key() -> None:
    rules = merge_rules(ORG, REPO, org_source="acme/.github:connector-gate.yml")
    assert rules.fail_on is Severity.LOW  # repo wins
    assert [a.name for a in rules.approvals] == ["security", "ops"]  # kept from the org
    assert rules.manifest.allowed_scopes == {"api_key": ("forecast:read",)}
    assert rules.risk.raises == (RiskRaise(min_score=3, add={"ops": 1}),)  # names an org rule
    assert rules.source == "acme/.github:connector-gate.yml + .github/connector-gate.yml"
    only_org = parse_rules(ORG, source="org")
    assert rules.digest != only_org.digest


def test_layer_replaces_a_whole_section() -> None:
    org = "manifest:\n  max_rotation_days: 30\n  denied_egress: ['*.internal']\n"
    repo = "manifest:\n  max_rotation_days: 45\n"
    rules = parse_rules_layered([("org", org), ("repo", repo)])
    assert rules.manifest.max_rotation_days == 45
    assert rules.manifest.denied_egress == ()  # top-level granularity: org's list is gone


def test_layered_errors_name_the_layer_that_holds_the_key() -> None:
    org = "fail_on: high\napprovals:\n  - {name: security, teams: [security]}\n"
    repo = "# repo rules\nrisk:\n  raises:\n    - {min_score: 3, add: {ops: 1}}\n"
    with pytest.raises(ConfigError) as caught:
        parse_rules_layered([("org.yml", org), ("repo.yml", repo)])
    assert (caught.value.file, caught.value.line) == ("repo.yml", 4)
    assert caught.value.key == "risk.raises.0.add.ops"

    with pytest.raises(ConfigError) as caught:
        parse_rules_layered([("org.yml", "static: {severity: huge}\n"), ("repo.yml", repo)])
    assert (caught.value.file, caught.value.line) == ("org.yml", 1)


def test_overridden_invalid_org_key_still_fails_syntax_but_not_schema() -> None:
    # A broken value the repository overrides no longer matters...
    rules = parse_rules_layered([("org", "fail_on: huge\n"), ("repo", "fail_on: high\n")])
    assert rules.fail_on is Severity.HIGH
    # ...but a file that is not YAML at all is always an error.
    with pytest.raises(ConfigError) as caught:
        parse_rules_layered([("org", "fail_on: [\n"), ("repo", "fail_on: high\n")])
    assert caught.value.file == "org"


def test_documented_example_parses() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
    example = docs.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    rules = parse_rules(example, source="docs/rules.md")
    assert [a.name for a in rules.approvals] == ["security", "ops"]
    assert rules.manifest.allowed_scopes["oauth2"] == ("notes:read",)
    assert rules.waivers.categories["performance"] == "ops"
