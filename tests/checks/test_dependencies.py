"""The dependencies check: requirement parsing, pip-audit invocation, and real audits via OSV."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from packaging.version import Version

from checks.base import CheckContext, CheckSettings
from checks.dependencies import (
    DEFAULT_OSV_URL,
    RULE_DUPLICATE,
    RULE_UNPINNED,
    RULE_UNSUPPORTED,
    AuditedDependency,
    DependenciesCheck,
    ParsedRequirements,
    PinnedRequirement,
    Vulnerability,
    audit_environment,
    logical_lines,
    parse_audit_json,
    parse_requirements,
    pip_audit_argv,
    problem_finding,
    remediation_for,
    request_timeout_s,
    sanitised_requirements,
    unreachable_cause,
)
from checks.manifest_model import Auth, Manifest
from checks.model import CheckResult, Conclusion, Finding, Severity
from checks.rules_model import Rules
from tests.support.osv_server import (
    Mode,
    RunningServer,
    events_affect,
    load_advisories,
    matching_advisories,
    running_osv_server,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "connectors"
FIXTURES = ROOT / "tests" / "fixtures" / "osv"

#: Each stored advisory with the release its README names as affected, and its first fix.
ADVISORY_EXAMPLES = [
    ("PYSEC-2018-28", "requests", "2.19.0", "2.20.0"),
    ("PYSEC-2018-66", "flask", "0.12", "0.12.3"),
    ("PYSEC-2019-132", "urllib3", "1.24.1", "1.24.3"),
    ("PYSEC-2019-217", "jinja2", "2.10", "2.10.1"),
    ("PYSEC-2019-79", "django", "2.2", "2.2.2"),
    ("PYSEC-2020-96", "pyyaml", "5.3", "5.3.1"),
    ("PYSEC-2021-62", "cryptography", "3.2", "3.2.1"),
    ("PYSEC-2021-69", "pillow", "8.0.0", "8.1.0"),
]
SHA = "sha256:" + "0123456789abcdef" * 4


def manifest(requirements: str = "requirements.txt") -> Manifest:
    return Manifest(
        name="demo",
        version="1.0.0",
        description="demo connector",
        owners=("@acme/team",),
        auth=Auth(type="none"),
        data_classification="internal",
        egress=(),
        secrets=(),
        requirements=requirements,
        runbook="RUNBOOK.md",
    )


def context(
    directory: Path,
    osv_url: str,
    *,
    manifest_: Manifest | None = None,
    display_path: str = "",
    timeout_s: float = 60.0,
) -> CheckContext:
    return CheckContext(
        connector=directory.name,
        directory=directory,
        display_path=display_path,
        rules=Rules(),
        manifest=manifest_ if manifest_ is not None else manifest(),
        settings=CheckSettings(osv_url=osv_url, timeout_s=timeout_s),
    )


def connector_with(tmp_path: Path, requirements: str) -> Path:
    directory = tmp_path / "demo"
    directory.mkdir()
    (directory / "requirements.txt").write_text(requirements)
    return directory


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def by_id(result: CheckResult) -> dict[str, Finding]:
    return {f.finding_id: f for f in result.findings}


@pytest.fixture
async def osv() -> AsyncIterator[RunningServer]:
    async with running_osv_server() as server:
        yield server


# --- requirements parsing (pure) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("flask>=1.0", RULE_UNPINNED),
        ("flask", RULE_UNPINNED),
        ("flask~=1.0", RULE_UNPINNED),
        ("flask==1.*", RULE_UNPINNED),
        ("flask>=1.0,<2", RULE_UNPINNED),
        ("flask===1.0", RULE_UNPINNED),
        ("-e ./evil", RULE_UNSUPPORTED),
        ("--editable=./evil", RULE_UNSUPPORTED),
        ("./evil", RULE_UNSUPPORTED),
        ("/abs/evil.tar.gz", RULE_UNSUPPORTED),
        ("evil-1.0-py3-none-any.whl", RULE_UNSUPPORTED),
        ("git+https://example.com/evil.git#egg=evil", RULE_UNSUPPORTED),
        ("evil @ https://example.com/evil-1.0.tar.gz", RULE_UNSUPPORTED),
        ("https://example.com/evil-1.0.tar.gz", RULE_UNSUPPORTED),
        ("--index-url https://example.com/simple", RULE_UNSUPPORTED),
        ("-i https://example.com/simple", RULE_UNSUPPORTED),
        ("--extra-index-url=https://example.com/simple", RULE_UNSUPPORTED),
        ("-f ./wheels", RULE_UNSUPPORTED),
        ("--find-links https://example.com/", RULE_UNSUPPORTED),
        ("--trusted-host example.com", RULE_UNSUPPORTED),
        ("-r other.txt", RULE_UNSUPPORTED),
        ("-c constraints.txt", RULE_UNSUPPORTED),
        ("--no-index", RULE_UNSUPPORTED),
        ("flask==1.0 --config-settings=x=y", RULE_UNSUPPORTED),
        ("flask==1.0 --hash=md5:abc", RULE_UNSUPPORTED),
        ("flask==${VERSION}", RULE_UNSUPPORTED),
        ("flask=1.0", RULE_UNSUPPORTED),
    ],
)
def test_refused_lines_are_findings_and_never_audited(line: str, rule: str) -> None:
    parsed = parse_requirements(f"requests==2.19.0\n{line}\n")

    assert [(p.line, p.rule_id) for p in parsed.problems] == [(2, rule)]
    assert [p.name for p in parsed.pinned] == ["requests"]
    assert sanitised_requirements(parsed) == "requests==2.19.0\n"


def test_severities_of_refused_lines() -> None:
    parsed = parse_requirements("flask>=1\n-e .\nflask==1.0\nFlask==1.0\n")

    assert [(p.line, p.rule_id, p.severity) for p in parsed.problems] == [
        (1, RULE_UNPINNED, Severity.MEDIUM),
        (2, RULE_UNSUPPORTED, Severity.HIGH),
        (4, RULE_DUPLICATE, Severity.MEDIUM),
    ]


@pytest.mark.parametrize(
    "line", ["--require-hashes", "--prefer-binary", "--only-binary=:all:", "--pre", "# c", ""]
)
def test_harmless_options_and_comments_are_ignored(line: str) -> None:
    parsed = parse_requirements(f"{line}\nrequests==2.19.0\n")

    assert parsed.problems == ()
    assert [(p.name, p.version, p.line) for p in parsed.pinned] == [("requests", "2.19.0", 2)]


def test_continuations_keep_the_first_line_number() -> None:
    text = f"# top\nrequests==2.19.0 \\\n    --hash={SHA}\n\npytest==8.3.4  # tests\n"

    assert list(logical_lines(text)) == [
        (2, f"requests==2.19.0      --hash={SHA}"),
        (5, "pytest==8.3.4"),
    ]


def test_pinned_lines_are_rebuilt_without_markers_or_extras() -> None:
    parsed = parse_requirements('Requests[socks] == 2.19.0 ; python_version < "3"\n')

    assert parsed.pinned == (
        PinnedRequirement(
            name="Requests",
            canonical_name="requests",
            version="2.19.0",
            line=1,
            requirement="Requests==2.19.0",
        ),
    )


def test_hashes_are_kept_only_when_every_line_has_them() -> None:
    hashed = parse_requirements(f"requests==2.19.0 --hash={SHA}\npytest==8.3.4 --hash {SHA}\n")
    mixed = parse_requirements(f"requests==2.19.0 --hash={SHA}\npytest==8.3.4\n")

    assert hashed.all_hashed and not mixed.all_hashed
    assert sanitised_requirements(hashed) == (
        f"requests==2.19.0 --hash={SHA}\npytest==8.3.4 --hash={SHA}\n"
    )
    assert sanitised_requirements(mixed) == "requests==2.19.0\npytest==8.3.4\n"


def test_option_values_never_reach_messages() -> None:
    token = "ghp_" + "a1B2" * 9
    parsed = parse_requirements(f"--index-url https://user:{token}@evil.example/simple\n")

    assert parsed.problems[0].rule_id == RULE_UNSUPPORTED
    assert token not in parsed.problems[0].message
    assert "evil.example" not in parsed.problems[0].message


def test_refused_line_ids_survive_lines_moving() -> None:
    before = parse_requirements("-e .\nflask\n").problems
    after = parse_requirements("# new comment\n\n-e  .\nflask\n").problems

    ids_before = [problem_finding(p, path="r.txt", connector="c").finding_id for p in before]
    ids_after = [problem_finding(p, path="r.txt", connector="c").finding_id for p in after]
    assert ids_before == ids_after
    assert len(set(ids_before)) == 2 and all(i.startswith("dep-") for i in ids_before)


# --- pip-audit invocation (pure) ------------------------------------------------------------


def test_argv_never_lets_pip_audit_resolve_or_install(tmp_path: Path) -> None:
    argv = pip_audit_argv(
        tmp_path / "r.txt",
        cache_dir=tmp_path / "c",
        osv_url="http://127.0.0.1:1/v1/query",
        timeout_s=7,
        all_hashed=False,
    )

    assert argv[:4] == [sys.executable, "-I", "-m", "pip_audit"]
    assert "--disable-pip" in argv and "--no-deps" in argv
    assert "--require-hashes" not in argv
    assert "--osv-url=http://127.0.0.1:1/v1/query" in argv
    assert f"--cache-dir={tmp_path / 'c'}" in argv
    assert "--timeout=7" in argv
    assert argv[argv.index("--format") + 1] == "json"
    assert argv[argv.index("--requirement") + 1] == str(tmp_path / "r.txt")


def test_argv_for_hashed_files_and_default_service(tmp_path: Path) -> None:
    argv = pip_audit_argv(
        tmp_path / "r.txt", cache_dir=tmp_path, osv_url="", timeout_s=15, all_hashed=True
    )

    assert "--disable-pip" in argv and "--require-hashes" in argv
    assert "--no-deps" not in argv
    assert not any(a.startswith("--osv-url") for a in argv)


@pytest.mark.parametrize(("budget", "per_request"), [(0.5, 1), (8, 2), (60, 15), (300, 15)])
def test_request_timeout_is_a_slice_of_the_budget(budget: float, per_request: int) -> None:
    assert request_timeout_s(budget) == per_request


def test_environment_is_an_allowlist(tmp_path: Path) -> None:
    environ = {
        "PATH": "/usr/bin",
        "SSL_CERT_FILE": "/etc/ca.pem",
        "GITHUB_TOKEN": "ghs_secret",
        "CONNECTOR_GATE_WEBHOOK_SECRET": "s3cret",
        "CONNECTOR_GATE_PRIVATE_KEY": "key",
        "PYTHONPATH": "/evil",
        "PIP_INDEX_URL": "https://evil.example/simple",
        "AWS_SECRET_ACCESS_KEY": "x",
    }

    env = audit_environment(environ, tmp_path)

    assert env["PATH"] == "/usr/bin"
    assert env["SSL_CERT_FILE"] == "/etc/ca.pem"
    assert env["HOME"] == str(tmp_path)
    assert not {k for k in env if k.startswith(("GITHUB_", "CONNECTOR_GATE_", "PIP_", "AWS_"))}
    assert "PYTHONPATH" not in env


def test_audit_json_becomes_dataclasses() -> None:
    report = {
        "dependencies": [
            {
                "name": "requests",
                "version": "2.19.0",
                "vulns": [
                    {
                        "id": "PYSEC-2018-28",
                        "fix_versions": ["2.20.0"],
                        "aliases": ["GHSA-x84v-xcm2-53pg", "CVE-2018-18074"],
                        "description": "d",
                    }
                ],
            },
            {"name": "evil", "skip_reason": "URL requirements cannot be pinned"},
        ],
        "fixes": [],
    }

    assert parse_audit_json(json.dumps(report)) == (
        AuditedDependency(
            name="requests",
            version="2.19.0",
            vulns=(
                Vulnerability(
                    id="PYSEC-2018-28",
                    aliases=("CVE-2018-18074", "GHSA-x84v-xcm2-53pg"),
                    fix_versions=("2.20.0",),
                    description="d",
                ),
            ),
        ),
        AuditedDependency(
            name="evil", version="", vulns=(), skip_reason="URL requirements cannot be pinned"
        ),
    )


@pytest.mark.parametrize(
    "stdout",
    ["", "not json", "[]", '{"fixes": []}', '{"dependencies": [{"version": "1"}]}'],
)
def test_malformed_audit_json_is_rejected(stdout: str) -> None:
    with pytest.raises(ValueError):
        parse_audit_json(stdout)


@pytest.mark.parametrize(
    ("stderr", "cause"),
    [
        (
            "requests.exceptions.ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=1): "
            "Max retries exceeded with url: /v1/query (Caused by NewConnectionError(... "
            '[Errno 111] Connection refused"))',
            "connection refused",
        ),
        (
            "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='osv.invalid', "
            "port=443): Max retries exceeded (Caused by NameResolutionError(...))",
            "DNS failure",
        ),
        (
            "requests.exceptions.ReadTimeout: HTTPConnectionPool(host='127.0.0.1', port=1): "
            "Read timed out. (read timeout=2)",
            "timed out",
        ),
        (
            "requests.exceptions.HTTPError: 503 Server Error: Service Unavailable for url: x\n\n"
            "The above exception was the direct cause of the following exception:\n\n"
            "pip_audit._service.interface.ServiceError",
            "HTTP 503",
        ),
        ("requests.exceptions.HTTPError: 404 Client Error: Not Found for url: x", ""),
        ("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)", ""),
        ("ERROR:pip_audit._cli:requirement file r.txt contains invalid specifier", ""),
    ],
)
def test_unreachable_cause_from_stderr(stderr: str, cause: str) -> None:
    assert unreachable_cause(f"Traceback (most recent call last):\n  ...\n{stderr}\n") == cause


@pytest.mark.parametrize(
    ("name", "version", "fixes", "expected"),
    [
        ("requests", "2.19.0", ["2.20.0"], "upgrade to requests>=2.20.0"),
        ("django", "2.2", ["1.11.21", "2.1.9", "2.2.2"], "upgrade to django>=2.2.2"),
        ("django", "2.1.5", ["2.2.2", "1.11.21", "2.1.9"], "upgrade to django>=2.1.9"),
        ("x", "1.0", [], "no fixed release is known: remove x or replace it"),
    ],
)
def test_remediation_names_the_lowest_fix_above_the_pin(
    name: str, version: str, fixes: list[str], expected: str
) -> None:
    assert remediation_for(name, version, fixes) == expected


# --- the local OSV service's matching (pure) ------------------------------------------------

DJANGO_EVENTS = [
    {"introduced": "2.1"},
    {"fixed": "2.1.9"},
    {"introduced": "1.11"},
    {"fixed": "1.11.21"},
    {"introduced": "2.2"},
    {"fixed": "2.2.2"},
]


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("1.10", False),
        ("1.11", True),
        ("1.11.20", True),
        ("1.11.21", False),
        ("2.0", False),
        ("2.1.8", True),
        ("2.1.9", False),
        ("2.2", True),
        ("2.2.1", True),
        ("2.2.2", False),
        ("3.0", False),
    ],
)
def test_osv_ranges_are_evaluated_in_version_order(version: str, affected: bool) -> None:
    assert events_affect(DJANGO_EVENTS, Version(version)) is affected


def test_osv_last_affected_and_open_ranges() -> None:
    assert events_affect([{"introduced": "0"}, {"last_affected": "1.2"}], Version("1.2"))
    assert not events_affect([{"introduced": "0"}, {"last_affected": "1.2"}], Version("1.2.1"))
    assert events_affect([{"introduced": "1.0"}], Version("99"))


def test_osv_matching_normalises_names_and_versions() -> None:
    advisories = load_advisories(FIXTURES)

    assert [a["id"] for a in matching_advisories(advisories, "PyYAML", "5.3")] == ["PYSEC-2020-96"]
    assert [a["id"] for a in matching_advisories(advisories, "Jinja2", "2.10.0")] == [
        "PYSEC-2019-217"
    ]
    assert matching_advisories(advisories, "requests", "2.20.0") == []
    assert matching_advisories(advisories, "requests-oauthlib", "0.1") == []
    assert len(matching_advisories(advisories, "requests", "")) == 1


async def test_osv_server_endpoints(osv: RunningServer) -> None:
    base = osv.url.removesuffix("/v1/query")
    async with aiohttp.ClientSession() as session:
        async with session.post(osv.url, data="{broken") as bad:
            assert bad.status == 400
        npm = {"package": {"name": "requests", "ecosystem": "npm"}, "version": "2.19.0"}
        async with session.post(osv.url, json=npm) as other:
            assert await other.json() == {}
        async with session.get(f"{base}/v1/vulns/PYSEC-2019-79") as one:
            assert (await one.json())["aliases"] == ["CVE-2019-12308", "GHSA-7rp2-fm2h-wchj"]
        async with session.get(f"{base}/v1/vulns/PYSEC-0000-0") as missing:
            assert missing.status == 404
    assert [(q.name, q.ecosystem) for q in osv.queries] == [("requests", "npm")]


# --- the check, with real pip-audit against the local OSV service ---------------------------


async def test_leaky_notes_pins_a_vulnerable_requests(osv: RunningServer) -> None:
    ctx = context(EXAMPLES / "leaky-notes", osv.url, display_path="examples/connectors/leaky-notes")

    result = await DependenciesCheck().run(ctx)

    assert result.conclusion is Conclusion.FAILURE, result.summary
    assert list(by_id(result)) == ["PYSEC-2018-28"]
    finding = by_id(result)["PYSEC-2018-28"]
    assert finding.location == "examples/connectors/leaky-notes/requirements.txt:1"
    assert finding.rule_id == "PYSEC-2018-28"
    assert finding.severity is Severity.HIGH and finding.blocking
    assert finding.aliases == ("CVE-2018-18074", "GHSA-x84v-xcm2-53pg")
    assert finding.message.startswith(
        "requests 2.19.0 is affected by PYSEC-2018-28 (CVE-2018-18074, GHSA-x84v-xcm2-53pg): "
        "The Requests package before 2.20.0"
    )
    assert finding.remediation == "upgrade to requests>=2.20.0"
    assert finding.connector == "leaky-notes"
    assert result.data == {"audited": 2, "vulnerabilities": 1, "service": osv.url}


async def test_acme_weather_is_clean(osv: RunningServer) -> None:
    result = await DependenciesCheck().run(context(EXAMPLES / "acme-weather", osv.url))

    assert result.conclusion is Conclusion.SUCCESS, result.summary
    assert result.findings == ()
    assert result.summary == "2 pinned requirements audited, no known vulnerabilities"
    # The service really was asked: a clean result is not a skipped audit.
    assert {(q.name, q.version) for q in osv.queries} == {
        ("requests", "2.32.3"),
        ("pytest", "8.3.4"),
    }


async def test_every_stored_advisory_is_found_at_its_example_version(
    osv: RunningServer, tmp_path: Path
) -> None:
    lines = [f"{name}=={version}" for _, name, version, _ in ADVISORY_EXAMPLES]
    directory = connector_with(tmp_path, "\n".join(lines) + "\n")

    result = await DependenciesCheck().run(context(directory, osv.url))

    assert result.conclusion is Conclusion.FAILURE
    found = by_id(result)
    for number, (advisory, name, version, fix) in enumerate(ADVISORY_EXAMPLES, start=1):
        finding = found[advisory]
        assert finding.location == f"requirements.txt:{number}"
        assert finding.message.startswith(f"{name} {version} is affected by {advisory} (CVE-")
        assert finding.remediation == f"upgrade to {name}>={fix}"
    assert len(result.findings) == len(ADVISORY_EXAMPLES)


async def test_first_fixed_releases_are_clean(osv: RunningServer, tmp_path: Path) -> None:
    lines = [f"{name}=={fix}" for _, name, _, fix in ADVISORY_EXAMPLES]
    directory = connector_with(tmp_path, "\n".join(lines) + "\n")

    result = await DependenciesCheck().run(context(directory, osv.url))

    assert result.conclusion is Conclusion.SUCCESS, result.summary
    assert len(osv.queries) == len(ADVISORY_EXAMPLES)


async def test_hashed_requirements_are_audited(osv: RunningServer, tmp_path: Path) -> None:
    directory = connector_with(
        tmp_path, f"requests==2.19.0 \\\n    --hash={SHA}\npytest==8.3.4 --hash={SHA}\n"
    )

    result = await DependenciesCheck().run(context(directory, osv.url))

    assert [f.location for f in result.findings] == ["requirements.txt:1"]


async def test_hostile_lines_are_flagged_and_nothing_is_built_or_installed(
    osv: RunningServer, tmp_path: Path
) -> None:
    marker = tmp_path / "setup-py-ran"
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "setup.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    directory = connector_with(
        tmp_path,
        "\n".join(
            [
                "requests==2.19.0",  # 1
                "flask>=0.12",  # 2
                f"-e {evil}",  # 3
                f"{evil}",  # 4
                f"evil @ file://{evil}",  # 5
                "--extra-index-url https://evil.example/simple",  # 6
                "connector-gate-no-such-sdist==1.0",  # 7: on no index: resolving it would fail
                "--trusted-host evil.example",  # 8
                "-r ../../etc/passwd",  # 9
                "pyyaml",  # 10
            ]
        )
        + "\n",
    )

    result = await DependenciesCheck().run(context(directory, osv.url))

    assert result.conclusion is Conclusion.FAILURE
    assert sorted((f.start_line, f.rule_id) for f in result.findings) == [
        (1, "PYSEC-2018-28"),
        (2, RULE_UNPINNED),
        (3, RULE_UNSUPPORTED),
        (4, RULE_UNSUPPORTED),
        (5, RULE_UNSUPPORTED),
        (6, RULE_UNSUPPORTED),
        (8, RULE_UNSUPPORTED),
        (9, RULE_UNSUPPORTED),
        (10, RULE_UNPINNED),
    ]
    # Only the pinned lines reached pip-audit, which audited them without pip (--no-deps).
    assert sorted((q.name, q.version) for q in osv.queries) == [
        ("connector-gate-no-such-sdist", "1.0"),
        ("requests", "2.19.0"),
    ]
    assert not marker.exists()
    assert not (evil / "evil.egg-info").exists()


async def test_only_refused_lines_skip_pip_audit(osv: RunningServer, tmp_path: Path) -> None:
    directory = connector_with(tmp_path, "-e .\nflask\n")

    result = await DependenciesCheck().run(context(directory, osv.url))

    assert result.conclusion is Conclusion.FAILURE
    assert [(f.start_line, f.rule_id) for f in result.findings] == [
        (1, RULE_UNSUPPORTED),
        (2, RULE_UNPINNED),
    ]
    assert list(osv.queries) == []


async def test_unreachable_service_is_neutral_and_names_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1/query"
    directory = connector_with(tmp_path, "requests==2.19.0\n")

    result = await DependenciesCheck().run(context(directory, url))

    assert result.conclusion is Conclusion.NEUTRAL
    assert result.summary == (
        f"could not reach the vulnerability service at {url}: connection refused"
    )


async def test_failing_service_is_never_success(tmp_path: Path) -> None:
    directory = connector_with(tmp_path, "requests==2.32.3\n")
    async with running_osv_server(mode=Mode.ERROR) as server:
        result = await DependenciesCheck().run(context(directory, server.url))

    assert result.conclusion is Conclusion.NEUTRAL
    assert result.summary == f"could not reach the vulnerability service at {server.url}: HTTP 500"


async def test_slow_service_is_neutral(tmp_path: Path) -> None:
    directory = connector_with(tmp_path, "requests==2.32.3\n")
    async with running_osv_server(mode=Mode.SLOW, delay_s=5) as server:
        # A 4 s budget gives pip-audit 1 s per request.
        result = await DependenciesCheck().run(context(directory, server.url, timeout_s=4))

    assert result.conclusion is Conclusion.NEUTRAL
    assert result.summary.startswith(f"could not reach the vulnerability service at {server.url}")
    assert "timed out" in result.summary


async def test_a_broken_answer_is_an_error_naming_pip_audit(tmp_path: Path) -> None:
    directory = connector_with(tmp_path, "requests==2.32.3\n")
    async with running_osv_server(mode=Mode.GARBAGE) as server:
        result = await DependenciesCheck().run(context(directory, server.url))

    assert result.conclusion is Conclusion.ERROR
    assert result.summary.startswith("pip-audit: exited with status 1 without a report")
    assert "JSONDecodeError" in result.summary


# --- which file is read ----------------------------------------------------------------------


async def test_no_manifest_and_no_requirements_is_neutral(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    directory.mkdir()
    ctx = CheckContext(
        connector="demo", directory=directory, display_path="", rules=Rules(), manifest=None
    )

    result = await DependenciesCheck().run(ctx)

    assert (result.conclusion, result.summary) == (Conclusion.NEUTRAL, "no requirements file")


async def test_no_manifest_falls_back_to_requirements_txt(
    osv: RunningServer, tmp_path: Path
) -> None:
    directory = connector_with(tmp_path, "requests==2.19.0\n")
    ctx = CheckContext(
        connector="demo",
        directory=directory,
        display_path="connectors/demo",
        rules=Rules(),
        manifest=None,
        settings=CheckSettings(osv_url=osv.url),
    )

    result = await DependenciesCheck().run(ctx)

    assert [f.location for f in result.findings] == ["connectors/demo/requirements.txt:1"]


async def test_manifest_names_the_requirements_file(osv: RunningServer, tmp_path: Path) -> None:
    directory = connector_with(tmp_path, "requests==2.32.3\n")
    (directory / "deps").mkdir()
    (directory / "deps" / "runtime.txt").write_text("\nflask==0.12\n")

    result = await DependenciesCheck().run(
        context(directory, osv.url, manifest_=manifest("deps/runtime.txt"))
    )

    assert [(f.location, f.finding_id) for f in result.findings] == [
        ("deps/runtime.txt:2", "PYSEC-2018-66")
    ]


@pytest.mark.parametrize(
    ("requirements", "reason"),
    [
        ("missing.txt", "requirements file missing.txt does not exist"),
        ("../outside.txt", "requirements path ../outside.txt is outside the connector"),
        ("/etc/passwd", "requirements path /etc/passwd is outside the connector"),
    ],
)
async def test_unusable_requirements_paths_fail(
    tmp_path: Path, requirements: str, reason: str
) -> None:
    directory = connector_with(tmp_path, "requests==2.32.3\n")
    (tmp_path / "outside.txt").write_text("requests==2.32.3\n")

    result = await DependenciesCheck().run(
        context(directory, "http://127.0.0.1:1/v1/query", manifest_=manifest(requirements))
    )

    assert (result.conclusion, result.summary) == (Conclusion.FAILURE, reason)


async def test_symlink_out_of_the_connector_is_refused(tmp_path: Path) -> None:
    directory = connector_with(tmp_path, "")
    (tmp_path / "secret.txt").write_text("requests==2.32.3\n")
    (directory / "requirements.txt").unlink()
    (directory / "requirements.txt").symlink_to(tmp_path / "secret.txt")

    result = await DependenciesCheck().run(context(directory, "http://127.0.0.1:1/v1/query"))

    assert result.conclusion is Conclusion.FAILURE
    assert result.summary == "requirements path requirements.txt is outside the connector"


async def test_empty_requirements_need_no_audit(tmp_path: Path) -> None:
    directory = connector_with(tmp_path, "# nothing yet\n")

    result = await DependenciesCheck().run(context(directory, "http://127.0.0.1:1/v1/query"))

    assert (result.conclusion, result.summary) == (
        Conclusion.SUCCESS,
        "no pinned requirements to audit",
    )


def test_default_service_url_is_pip_audits() -> None:
    assert DEFAULT_OSV_URL == "https://api.osv.dev/v1/query"
    assert ParsedRequirements(pinned=(), problems=()).all_hashed is False
