"""The static check, with the real bandit, on the example connectors and tmp trees."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from checks.base import CheckContext, CheckSettings
from checks.errors import ToolError
from checks.model import CheckResult, Conclusion, Severity
from checks.rules_model import Rules, StaticRules
from checks.static import (
    RULE_PLAIN_HTTP,
    RULE_UNPARSED,
    StaticCheck,
    find_plain_http,
    is_test_file,
    parse_bandit_json,
)
from tests.support.connectors import everything_shown, make_connector

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "connectors"
GITHUB_TOKEN = "ghp_Zx8TqL2mNv4RkP9sWb3YcH7dJf6Ga1Ue5Xo0"  # pragma: allowlist secret
PASSWORD = "Tr0ub4dor&3-horse"  # pragma: allowlist secret
DEFAULT_PASSWORD = "s3cr3t-def4ult"  # pragma: allowlist secret


def context_for(
    directory: Path, display: str = "", static: StaticRules | None = None
) -> CheckContext:
    return CheckContext(
        connector=directory.name,
        directory=directory,
        display_path=display,
        rules=Rules(static=static or StaticRules()),
        manifest=None,
        settings=CheckSettings(timeout_s=120),
    )


async def run(directory: Path, display: str = "", static: StaticRules | None = None) -> CheckResult:
    return await StaticCheck().run(context_for(directory, display, static))


def located(result: CheckResult) -> set[tuple[str, str]]:
    return {(f.rule_id, f.location) for f in result.findings}


# --- the example connectors ---------------------------------------------------------------


async def test_leaky_notes_planted_problems_are_found() -> None:
    result = await run(EXAMPLES / "leaky-notes", "connectors/leaky-notes")

    assert result.conclusion is Conclusion.FAILURE
    where = located(result)
    assert ("B501", "connectors/leaky-notes/leaky_notes/client.py:20") in where
    assert ("B324", "connectors/leaky-notes/leaky_notes/client.py:13") in where
    assert (RULE_PLAIN_HTTP, "connectors/leaky-notes/leaky_notes/settings.py:3") in where
    b501 = next(f for f in result.findings if f.rule_id == "B501")
    assert b501.severity is Severity.HIGH and b501.blocking
    assert "verify=False" in b501.message and "CWE-295" in b501.message
    assert "certificate verification" in b501.remediation
    b324 = next(f for f in result.findings if f.rule_id == "B324")
    assert "MD5" in b324.message and "sha256" in b324.remediation
    http = next(f for f in result.findings if f.rule_id == RULE_PLAIN_HTTP)
    assert http.severity is Severity.MEDIUM and "api.leaky-notes.example" in http.message
    assert http.finding_id.startswith("sta-")


async def test_test_files_are_left_out_by_default() -> None:
    result = await run(EXAMPLES / "leaky-notes")

    assert "B101" not in {f.rule_id for f in result.findings}
    assert not any(f.path.startswith("tests/") for f in result.findings)


async def test_test_files_are_analysed_when_the_rules_say_so() -> None:
    result = await run(EXAMPLES / "leaky-notes", static=StaticRules(include_tests=True))

    asserts = [f for f in result.findings if f.rule_id == "B101"]
    assert {f.location for f in asserts} == {"tests/test_client.py:5", "tests/test_client.py:9"}


async def test_leaky_notes_secret_values_are_not_echoed() -> None:
    result = await run(EXAMPLES / "leaky-notes", "connectors/leaky-notes")

    # bandit's B105 text quotes the token; the check must not.
    assert "B105" in {f.rule_id for f in result.findings}
    assert GITHUB_TOKEN not in everything_shown(result)
    assert "AKIAIOSFODNN7EXAMPLE" not in everything_shown(result)


async def test_acme_weather_is_clean() -> None:
    result = await run(EXAMPLES / "acme-weather")

    assert result.conclusion is Conclusion.SUCCESS, result.findings
    assert result.data["files"] == 3


# --- secrets in code never reach the output -------------------------------------------------


async def test_hard_coded_passwords_are_reported_without_their_values(tmp_path: Path) -> None:
    root = make_connector(
        tmp_path,
        {
            "conn/auth.py": (
                f'password = "{PASSWORD}"\n\n\n'
                f'def login(user, password="{DEFAULT_PASSWORD}"):\n'
                "    return connect(user=user, password=password)\n\n\n"
                f'session = connect(user="me", password="{PASSWORD}")\n'
            )
        },
    )

    result = await run(root, static=StaticRules(confidence=Severity.LOW))

    assert {"B105", "B107", "B106"} <= {f.rule_id for f in result.findings}
    shown = everything_shown(result)
    assert PASSWORD not in shown and DEFAULT_PASSWORD not in shown
    b105 = next(f for f in result.findings if f.rule_id == "B105")
    assert b105.message == "Possible hard-coded password (CWE-259)"
    assert "environment" in b105.remediation


async def test_code_excerpts_in_details_are_scrubbed(tmp_path: Path) -> None:
    root = make_connector(
        tmp_path,
        {
            "conn/run.py": (
                f'import subprocess\nsubprocess.call("deploy --token {GITHUB_TOKEN}", shell=True)\n'
            )
        },
    )

    result = await run(root)

    assert "B602" in {f.rule_id for f in result.findings}
    assert "subprocess.call(" in result.details
    assert GITHUB_TOKEN not in everything_shown(result)


# --- thresholds -----------------------------------------------------------------------------


async def test_severity_threshold_drops_lower_issues() -> None:
    result = await run(EXAMPLES / "leaky-notes", static=StaticRules(severity=Severity.HIGH))

    rules = {f.rule_id for f in result.findings}
    assert {"B501", "B324"} <= rules
    assert "B105" not in rules  # low severity


async def test_low_confidence_threshold_adds_the_request_without_timeout() -> None:
    default = await run(EXAMPLES / "leaky-notes")
    low = await run(EXAMPLES / "leaky-notes", static=StaticRules(confidence=Severity.LOW))

    assert "B113" not in {f.rule_id for f in default.findings}
    b113 = next(f for f in low.findings if f.rule_id == "B113")
    assert "timeout" in b113.remediation


# --- bandit cannot run -> ERROR, never success ------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("/nonexistent/python3", "-m", "bandit"), "cannot start"),
        ((sys.executable, "-I", "-m", "no_such_bandit_module"), "No module named"),
        ((sys.executable, "-c", "print('not json'); raise SystemExit(1)"), "unreadable JSON"),
        ((sys.executable, "-c", "import sys; sys.exit(2)"), "exited with 2"),
    ],
    ids=["missing-interpreter", "bandit-not-installed", "garbage-output", "crash"],
)
async def test_bandit_failure_is_an_error(command: tuple[str, ...], expected: str) -> None:
    result = await StaticCheck(command).run(context_for(EXAMPLES / "acme-weather"))

    assert result.conclusion is Conclusion.ERROR
    assert result.summary.startswith("bandit")
    assert expected in result.summary


async def test_bandit_stderr_in_the_error_is_scrubbed() -> None:
    crash = f"import sys; sys.stderr.write('failed with token {GITHUB_TOKEN}'); sys.exit(3)"

    result = await StaticCheck((sys.executable, "-c", crash)).run(
        context_for(EXAMPLES / "acme-weather")
    )

    assert result.conclusion is Conclusion.ERROR
    assert "failed with token" in result.summary and GITHUB_TOKEN not in result.summary


# --- hostile connectors -----------------------------------------------------------------------


async def test_a_bandit_module_in_the_connector_is_not_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    root = make_connector(
        tmp_path,
        {
            "bandit.py": f"open({str(marker)!r}, 'w').close()\n",
            "conn/client.py": "import requests\nrequests.get('https://x', verify=False)\n",
        },
    )

    result = await run(root)

    assert not marker.exists()
    assert "B501" in {f.rule_id for f in result.findings}


async def test_a_bandit_settings_file_in_the_connector_is_ignored(tmp_path: Path) -> None:
    root = make_connector(
        tmp_path,
        {
            ".bandit": "[bandit]\nskips = B501\nexclude = conn\n",
            "conn/client.py": "import requests\nrequests.get('https://x', verify=False)\n",
        },
    )

    result = await run(root)

    assert "B501" in {f.rule_id for f in result.findings}


async def test_files_that_bandit_cannot_parse_are_findings(tmp_path: Path) -> None:
    root = make_connector(tmp_path, {"conn/ok.py": "x = 1\n", "conn/bad.py": "def f(:\n"})

    result = await run(root)

    assert result.conclusion is Conclusion.FAILURE
    [finding] = result.findings
    assert finding.rule_id == RULE_UNPARSED and finding.path == "conn/bad.py"


async def test_nosec_cannot_silence_the_gate(tmp_path: Path) -> None:
    root = make_connector(
        tmp_path,
        {"conn/c.py": "import requests\nrequests.get('https://x', verify=False)  # nosec\n"},
    )

    result = await run(root)

    assert "B501" in {f.rule_id for f in result.findings}


async def test_no_python_files_is_skipped_not_passed(tmp_path: Path) -> None:
    root = make_connector(tmp_path, {"README.md": "http://example.org\n"})

    result = await run(root)

    assert result.conclusion is Conclusion.SKIPPED


async def test_contests_module_is_not_mistaken_for_tests(tmp_path: Path) -> None:
    root = make_connector(
        tmp_path, {"conn/contests.py": "import requests\nrequests.get('https://x', verify=False)\n"}
    )

    result = await run(root)

    assert "B501" in {f.rule_id for f in result.findings}


@pytest.mark.parametrize(
    ("path", "is_test"),
    [
        ("tests/test_client.py", True),
        ("tests/helpers.py", True),
        ("pkg/test/util.py", True),
        ("test_client.py", True),
        ("pkg/client_test.py", True),
        ("conftest.py", True),
        ("pkg/contests.py", False),
        ("pkg/testing.py", False),
        ("pkg/latest_test_data.py", False),
        ("pkg/client.py", False),
    ],
)
def test_is_test_file(path: str, is_test: bool) -> None:
    assert is_test_file(path) is is_test


# --- fingerprints ---------------------------------------------------------------------------


async def test_fingerprint_follows_the_line_not_its_number(tmp_path: Path) -> None:
    source = "import requests\n\nrequests.get('https://x', verify=False)\n"
    root = make_connector(tmp_path, {"c.py": source})
    first = next(f for f in (await run(root)).findings if f.rule_id == "B501")

    (root / "c.py").write_text(
        "import requests\n# moved\n\n\nrequests.get('https://x',  verify=False)\n"
    )
    moved = next(f for f in (await run(root)).findings if f.rule_id == "B501")

    (root / "c.py").write_text("import requests\n\nrequests.get('https://y', verify=False)\n")
    changed = next(f for f in (await run(root)).findings if f.rule_id == "B501")

    assert moved.start_line == 5 and moved.fingerprint == first.fingerprint
    assert changed.fingerprint != first.fingerprint


async def test_identical_lines_get_distinct_fingerprints(tmp_path: Path) -> None:
    line = "requests.get('https://x', verify=False)\n"
    root = make_connector(tmp_path, {"c.py": "import requests\n" + line + line})

    b501 = [f for f in (await run(root)).findings if f.rule_id == "B501"]

    assert len(b501) == 2 and b501[0].fingerprint != b501[1].fingerprint


# --- plain http:// ------------------------------------------------------------------------------

HTTP_CASES = [
    ("assignment", 'BASE = "http://api.example.net/v1"\n', [(1, "api.example.net")]),
    (
        "f-string",
        'url = f"http://{host}.example.net/x"\nu = f"http://svc.example.net/{p}"\n',
        [(2, "svc.example.net")],
    ),
    ("https", 'BASE = "https://api.example.net"\n', []),
    ("localhost", 'a = "http://localhost:8080/x"\nb = "http://127.0.0.1:9/x"\n', []),
    ("ipv6 loopback", 'a = "http://[::1]:8080/x"\n', []),
    ("any interface", 'a = "http://0.0.0.0:8000"\n', []),
    ("ipv6 remote", 'a = "http://[2001:db8::1]/x"\n', [(1, "2001:db8::1")]),
    ("xml namespace host", 'NS = "http://www.w3.org/2001/XMLSchema-instance"\n', []),
    ("clark notation", 'tag = "{http://ns.example.net/notes}note"\n', []),
    ("xmlns attribute", "doc = '<a xmlns=\"http://ns.example.net/a\"/>'\n", []),
    ("comment", "# see http://docs.example.net\nx = 1\n", []),
    ("docstring", '"""Client; docs at http://docs.example.net."""\n', []),
    ("function docstring", 'def f():\n    """See http://docs.example.net."""\n    return 1\n', []),
    ("call argument", 'get(\n    "http://api.example.net/a",\n)\n', [(2, "api.example.net")]),
    (
        "multi-line string",
        'q = """\nfirst\nhttp://api.example.net/x\n"""\n',
        [(3, "api.example.net")],
    ),
    ("does not tokenize", 'x = (\n"http://api.example.net"\n', [(2, "api.example.net")]),
]
HTTP_IDS = [c[0] for c in HTTP_CASES]


@pytest.mark.parametrize(
    ("label", "source", "expected"), HTTP_CASES, ids=[c[0] for c in HTTP_CASES]
)
def test_plain_http_detector(label: str, source: str, expected: list[tuple[int, str]]) -> None:
    assert [(u.line, u.host) for u in find_plain_http("m.py", source)] == expected


async def test_credentials_in_an_http_url_are_not_echoed(tmp_path: Path) -> None:
    root = make_connector(tmp_path, {"c.py": 'U = "http://svc:pa55w0rd-x@api.example.net/v1"\n'})

    result = await run(root)

    [finding] = [f for f in result.findings if f.rule_id == RULE_PLAIN_HTTP]
    assert "api.example.net" in finding.message
    assert "pa55w0rd-x" not in everything_shown(result)


# --- parsing bandit's report ------------------------------------------------------------------


def test_parse_bandit_json_reads_issues_errors_and_nosec() -> None:
    raw = {
        "errors": [{"filename": "./bad.py", "reason": "syntax error while parsing AST from file"}],
        "metrics": {"_totals": {"nosec": 2}},
        "results": [
            {
                "code": "19     x = 1\n20     requests.get(u, verify=False)\n",
                "filename": "./pkg/c.py",
                "issue_cwe": {"id": 295, "link": "https://cwe.mitre.org/"},
                "issue_severity": "HIGH",
                "issue_text": "Call to requests with verify=False",
                "line_number": 20,
                "more_info": "https://bandit.readthedocs.io/b501",
                "test_id": "B501",
            }
        ],
    }

    report = parse_bandit_json(json.dumps(raw).encode())

    [issue] = report.issues
    assert (issue.test_id, issue.path, issue.line, issue.cwe) == ("B501", "pkg/c.py", 20, 295)
    assert issue.severity is Severity.HIGH
    assert issue.code_line.strip() == "requests.get(u, verify=False)"
    assert report.errors == (("bad.py", "syntax error while parsing AST from file"),)
    assert report.nosec == 2
    assert dataclasses.is_dataclass(report)


@pytest.mark.parametrize(
    "stdout",
    [
        b"",
        b"not json",
        b"[]",
        b'{"results": []}',
        b'{"errors": [], "results": [{"test_id": "B1"}]}',
    ],
    ids=["empty", "text", "list", "no-errors", "issue-without-fields"],
)
def test_parse_bandit_json_refuses_what_is_not_a_report(stdout: bytes) -> None:
    with pytest.raises(ToolError, match="bandit"):
        parse_bandit_json(stdout)
