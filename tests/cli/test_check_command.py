"""`connector-gate check` as a contributor runs it: real process, real tools, local OSV."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from tests.support.osv_server import running_osv_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "connectors"
RULES = ROOT / "examples" / "connector-gate.yml"
SARIF_SCHEMA = ROOT / "tests" / "fixtures" / "sarif-schema-2.1.0.json"
SECURITY = "manifest,secrets,dependencies,static"
PLANTED_SECRETS = ("AKIAIOSFODNN7EXAMPLE", "ghp_Zx8TqL2mNv4RkP9sWb3YcH7dJf6Ga1Ue5Xo0")


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
async def osv_url() -> AsyncIterator[str]:
    async with running_osv_server() as server:
        yield server.url


async def gate(*args: str | Path, cache: Path | None = None) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_GATE_")}
    env["NO_COLOR"] = "1"
    cache_args = ["--cache-dir", str(cache)] if cache else ["--no-cache"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "check",
        *map(str, args),
        *cache_args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def test_clean_connector_passes_with_exit_0(osv_url: str) -> None:
    run = await gate(
        EXAMPLES / "acme-weather", "--rules", RULES, "--only", SECURITY, "--osv-url", osv_url
    )
    assert run.code == 0, run.out + run.err
    assert "all checks passed" in run.out


async def test_planted_problems_fail_with_exit_1_at_their_lines(osv_url: str) -> None:
    run = await gate(
        EXAMPLES / "leaky-notes",
        "--rules",
        RULES,
        "--only",
        SECURITY,
        "--osv-url",
        osv_url,
        "--format",
        "json",
    )
    assert run.code == 1
    findings = {
        (f["rule_id"], f["path"].removeprefix("examples/connectors/leaky-notes/"), f["start_line"])
        for r in json.loads(run.out)["connectors"][0]["results"]
        for f in r["findings"]
    }
    assert {
        ("AWS Access Key", "leaky_notes/settings.py", 6),
        ("GitHub Token", "leaky_notes/settings.py", 7),
        ("PYSEC-2018-28", "requirements.txt", 1),
        ("B501", "leaky_notes/client.py", 20),
        ("B324", "leaky_notes/client.py", 13),
        ("manifest.egress-not-https", "connector.yaml", 7),
        ("manifest.scope-not-allowed", "connector.yaml", 5),
    } <= findings


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "sarif"])
async def test_no_secret_value_in_any_format(osv_url: str, fmt: str) -> None:
    run = await gate(
        EXAMPLES, "--rules", RULES, "--only", SECURITY, "--osv-url", osv_url, "--format", fmt
    )
    assert run.code == 1
    for secret in PLANTED_SECRETS:
        assert secret not in run.out
        assert secret not in run.err


async def test_sarif_output_is_valid_sarif_2_1_0(osv_url: str) -> None:
    run = await gate(
        EXAMPLES, "--rules", RULES, "--only", SECURITY, "--osv-url", osv_url, "--format", "sarif"
    )
    document = json.loads(run.out)
    jsonschema.validate(document, json.loads(SARIF_SCHEMA.read_text()))
    rule_ids = {r["ruleId"] for run_ in document["runs"] for r in run_["results"]}
    assert {"B501", "PYSEC-2018-28", "AWS Access Key"} <= rule_ids


async def test_second_run_is_served_from_the_cache(osv_url: str, tmp_path: Path) -> None:
    args = (EXAMPLES, "--rules", RULES, "--only", SECURITY, "--osv-url", osv_url)
    first = await gate(*args, "--format", "json", cache=tmp_path)
    second = await gate(*args, "--format", "json", cache=tmp_path)
    assert first.code == second.code == 1
    cached = [r["cached"] for c in json.loads(second.out)["connectors"] for r in c["results"]]
    assert all(cached)
    strip = [
        {k: v for k, v in r.items() if k not in ("cached", "duration_s")}
        for c in json.loads(first.out)["connectors"]
        for r in c["results"]
    ]
    again = [
        {k: v for k, v in r.items() if k not in ("cached", "duration_s")}
        for c in json.loads(second.out)["connectors"]
        for r in c["results"]
    ]
    assert strip == again


async def test_changed_connector_is_checked_again(osv_url: str, tmp_path: Path) -> None:
    connector = tmp_path / "src" / "acme-weather"
    shutil.copytree(EXAMPLES / "acme-weather", connector)
    args = (connector, "--rules", RULES, "--only", "secrets", "--format", "json")
    assert (await gate(*args, cache=tmp_path / "cache")).code == 0
    (connector / "acme_weather" / "keys.py").write_text('KEY = "AKIAIOSFODNN7EXAMPLE"\n')
    run = await gate(*args, cache=tmp_path / "cache")
    assert run.code == 1
    assert not json.loads(run.out)["connectors"][0]["results"][0]["cached"]


async def test_vulnerability_service_down_is_not_success(tmp_path: Path) -> None:
    run = await gate(
        EXAMPLES / "acme-weather",
        "--rules",
        RULES,
        "--only",
        "dependencies",
        "--osv-url",
        "http://127.0.0.1:9/v1/query",
    )
    assert run.code == 1
    assert "NEUTRAL" in run.out
    assert "could not reach the vulnerability service" in run.out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("fail_onn: high\n", "fail_onn"),
        ("connectors: [a]\nstatic:\n  severity: loud\n", ":3"),
        ("approvals: [\n", ".yml:"),
    ],
)
async def test_malformed_rules_exit_2_naming_file_line_and_key(
    tmp_path: Path, content: str, expected: str
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(content)
    run = await gate(EXAMPLES / "acme-weather", "--rules", rules, "--only", "manifest")
    assert run.code == 2
    assert str(rules) in run.err and expected in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize(
    "args",
    [
        ("--only", "nonsense"),
        ("--format", "pdf"),
        ("--rules", "/nonexistent/rules.yml"),
    ],
)
async def test_bad_arguments_exit_2_without_traceback(args: tuple[str, ...]) -> None:
    run = await gate(EXAMPLES / "acme-weather", *args)
    assert run.code == 2
    assert run.err.strip() and "Traceback" not in run.err


async def test_missing_directory_exits_2() -> None:
    run = await gate("/nonexistent/connector")
    assert run.code == 2
    assert "/nonexistent/connector" in run.err


async def test_malformed_manifest_fails_manifest_but_other_checks_still_run(
    tmp_path: Path,
) -> None:
    connector = tmp_path / "broken"
    shutil.copytree(EXAMPLES / "acme-weather", connector)
    (connector / "connector.yaml").write_text("name: broken\nversion: [1, 2\n")
    run = await gate(
        connector, "--rules", RULES, "--only", "manifest,secrets,static", "--format", "json"
    )
    assert run.code == 1
    results = {r["check"]: r for r in json.loads(run.out)["connectors"][0]["results"]}
    assert results["manifest"]["conclusion"] == "failure"
    finding = results["manifest"]["findings"][0]
    assert finding["path"].endswith("broken/connector.yaml") and finding["start_line"] >= 2
    assert results["secrets"]["conclusion"] == "success"
    assert results["static"]["conclusion"] == "success"


async def test_base_version_must_increase_when_the_connector_changes(tmp_path: Path) -> None:
    base = tmp_path / "base" / "acme-weather"
    head = tmp_path / "head" / "acme-weather"
    shutil.copytree(EXAMPLES / "acme-weather", base)
    shutil.copytree(EXAMPLES / "acme-weather", head)
    (head / "acme_weather" / "extra.py").write_text("VALUE = 1\n")
    args = ("--rules", RULES, "--only", "manifest", "--format", "json")

    same_version = await gate(head, "--base", base, *args)
    assert same_version.code == 1
    [finding] = json.loads(same_version.out)["connectors"][0]["results"][0]["findings"]
    assert finding["rule_id"] == "manifest.version-not-increased"
    assert finding["path"].endswith("acme-weather/connector.yaml") and finding["start_line"] == 2

    manifest = head / "connector.yaml"
    manifest.write_text(manifest.read_text().replace("version: 1.2.0", "version: 1.3.0"))
    assert (await gate(head, "--base", base.parent, *args)).code == 0
