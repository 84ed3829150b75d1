"""connector-gate/tests on the examples and on hostile or broken connectors (real pytest)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from checks.connector_tests import TestsCheck, command_argv, parse_junit
from checks.model import Conclusion
from checks.sandbox import Isolation, LocalSandbox
from checks.sandbox.venv import unsafe_requirement_lines
from tests.sandbox.helpers import (
    EXAMPLES,
    add_test,
    context_for,
    copy_example,
    make_rules,
    replace_in_manifest,
    venv_cache,
    workdir,
)

__all__ = ["venv_cache", "workdir"]
SECRET = "whsec-tests-check-7d3e91"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["acme-weather", "leaky-notes"])
async def test_examples_pass(name: str, venv_cache: Path) -> None:
    result = await TestsCheck().run(context_for(EXAMPLES / name, venv_cache))
    assert result.conclusion is Conclusion.SUCCESS, result.details
    assert result.data["passed"] == 2 and result.data["failed"] == 0
    assert result.data["isolation"] == "netns+uid"
    assert "netns+uid" in result.details


async def test_second_run_reuses_the_venv(workdir: Path) -> None:
    cache = workdir / "cache"
    cache.mkdir(mode=0o755)
    context = context_for(EXAMPLES / "acme-weather", cache)
    first = await TestsCheck().run(context)
    marker = next(cache.glob("venvs/*/.connector-gate-complete"))
    built_at = marker.stat().st_mtime_ns
    second = await TestsCheck().run(context)
    assert (first.data["venv_reused"], second.data["venv_reused"]) == (False, True)
    assert marker.stat().st_mtime_ns == built_at
    assert "reused from cache" in second.details


async def test_failing_test_is_reported_with_file_and_line(workdir: Path, venv_cache: Path) -> None:
    directory = copy_example("acme-weather", workdir)
    add_test(
        directory,
        "test_broken.py",
        """\
        from acme_weather.client import parse_forecast


        def test_reads_fahrenheit():
            forecast = parse_forecast({"city": "Oslo", "temperature": {"celsius": -3.0}})
            assert forecast.temperature_c == 26.6
        """,
    )
    result = await TestsCheck().run(context_for(directory, venv_cache))
    assert result.conclusion is Conclusion.FAILURE
    assert result.data["passed"] == 2 and result.data["failed"] == 1
    [finding] = result.findings
    assert finding.rule_id == "tests.failed" and finding.severity == "high"
    assert finding.path == "connectors/acme-weather/tests/test_broken.py"
    assert finding.start_line == 6
    assert "test_reads_fahrenheit" in finding.message and "26.6" in finding.message


async def test_hostile_tests_find_no_secret(
    workdir: Path, venv_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "app.pem"
    key.write_text(
        "-----BEGIN RSA PRIVATE KEY-----\nsecretkeybody\n-----END RSA PRIVATE KEY-----\n"
    )
    key.chmod(0o600)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("GITHUB_PRIVATE_KEY_PATH", str(key))
    directory = copy_example("acme-weather", workdir)
    add_test(
        directory,
        "test_hostile.py",
        f"""\
        import os
        import socket


        def test_environment_holds_no_secret():
            print(dict(os.environ))
            assert "GITHUB_WEBHOOK_SECRET" not in os.environ
            assert not [name for name in os.environ if name.startswith("GITHUB")]


        def test_key_file_is_unreadable():
            try:
                with open({str(key)!r}) as handle:
                    data = handle.read()
            except OSError:
                data = ""
            print(data)
            assert data == ""


        def test_no_network():
            try:
                socket.create_connection(("10.255.255.1", 443), timeout=1)
                reached = True
            except OSError:
                reached = False
            assert not reached
        """,
    )
    result = await TestsCheck().run(context_for(directory, venv_cache))
    assert result.conclusion is Conclusion.SUCCESS, result.details
    assert result.data["passed"] == 5
    everything = repr(result)
    assert SECRET not in everything and "secretkeybody" not in everything


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        (
            "import os, time\n\ndef test_bomb():\n    while True:\n        if os.fork() == 0:\n"
            "            time.sleep(60)\n            os._exit(0)\n",
            "RLIMIT_NPROC",
        ),
        (
            "def test_big_write():\n    with open('big.bin', 'wb') as f:\n"
            "        for _ in range(10 * 1024):\n            f.write(b'x' * 2**20)\n",
            "RLIMIT_FSIZE",
        ),
        ("def test_memory():\n    x = bytearray(16 * 1024**3)\n", "RLIMIT_AS"),
        ("def test_spin():\n    while True:\n        pass\n", "wall-clock"),
    ],
    ids=["fork-bomb", "10GB-write", "memory-bomb", "infinite-loop"],
)
async def test_limits_end_as_a_clear_failure(
    body: str, limit: str, workdir: Path, venv_cache: Path
) -> None:
    directory = copy_example("acme-weather", workdir)
    add_test(directory, "test_hostile.py", body)
    result = await TestsCheck().run(
        context_for(directory, venv_cache, rules=make_rules(timeout_s=8))
    )
    assert result.conclusion is Conclusion.FAILURE
    limit_findings = [f for f in result.findings if f.rule_id == "tests.limit"]
    assert limit_findings and limit in limit_findings[0].message, result.findings
    assert os.getpid() > 0


async def test_no_tests_collected_fails(workdir: Path, venv_cache: Path) -> None:
    directory = copy_example("acme-weather", workdir)
    for test in (directory / "tests").glob("test_*.py"):
        test.unlink()
    result = await TestsCheck().run(context_for(directory, venv_cache))
    assert result.conclusion is Conclusion.FAILURE
    assert [f.rule_id for f in result.findings] == ["tests.none-ran"]


async def test_non_pytest_command_uses_its_exit_status(workdir: Path, venv_cache: Path) -> None:
    directory = copy_example("acme-weather", workdir)
    replace_in_manifest(
        directory, 'command: "pytest -q"', "command: \"python -c 'raise SystemExit(3)'\""
    )
    result = await TestsCheck().run(context_for(directory, venv_cache))
    assert result.conclusion is Conclusion.FAILURE
    assert result.findings[0].rule_id == "tests.command-failed"
    assert "exit status 3" in result.findings[0].message


async def test_unreachable_index_is_neutral_not_success(workdir: Path, venv_cache: Path) -> None:
    directory = copy_example("acme-weather", workdir)
    (directory / "requirements.txt").write_text("requests==2.31.0\npytest==8.3.3\n")
    rules = make_rules(index_url="http://127.0.0.1:9/simple")
    result = await TestsCheck().run(context_for(directory, venv_cache, rules=rules))
    assert result.conclusion is Conclusion.NEUTRAL
    assert "could not install" in result.summary


async def test_fork_with_weak_isolation_is_refused(venv_cache: Path) -> None:
    check = TestsCheck(LocalSandbox(isolation=Isolation.NONE))
    context = context_for(EXAMPLES / "acme-weather", venv_cache, is_fork=True)
    result = await check.run(context)
    assert result.conclusion is Conclusion.FAILURE
    assert "refusing to run code from a fork" in result.summary
    allowed = context_for(
        EXAMPLES / "acme-weather", venv_cache, is_fork=True, rules=make_rules(allow_weak=True)
    )
    ran = await check.run(allowed)
    assert ran.conclusion is Conclusion.SUCCESS and ran.data["isolation"] == "none"


async def test_requirements_with_options_are_refused(workdir: Path, venv_cache: Path) -> None:
    directory = copy_example("acme-weather", workdir)
    (directory / "requirements.txt").write_text(
        "--extra-index-url http://evil.example/\npytest==8.3.4\n"
    )
    result = await TestsCheck().run(context_for(directory, venv_cache))
    assert result.conclusion is Conclusion.FAILURE
    assert result.findings[0].rule_id == "tests.unsafe-requirements"
    assert result.findings[0].start_line == 1


def test_requirement_lines() -> None:
    text = "a==1\n-e .\npkg @ https://x/y.whl\n./local\nb==2 \\\n    --hash=sha256:00\n"
    assert [n for n, _ in unsafe_requirement_lines(text)] == [2, 3, 4]


def test_pytest_command_gets_a_junit_report() -> None:
    argv, junit = command_argv("pytest -q tests")
    assert junit and "--junitxml={out}/junit.xml" in argv and "junit_family=xunit1" in argv
    assert command_argv("make test") == (("make", "test"), False)


def test_junit_with_entities_is_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><testsuites/>'
    with pytest.raises(ValueError, match="DTD"):
        parse_junit(bomb)
