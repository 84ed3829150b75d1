"""The secrets check, with the real detect-secrets, on the example connectors and tmp trees."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from checks.base import CheckContext
from checks.model import CheckResult, Conclusion, Severity
from checks.rules_model import Rules
from checks.secrets import (
    BASELINE_FILE,
    MAX_SCAN_BYTES,
    PARALLEL_MIN_BYTES,
    RULE_TOO_LARGE,
    SecretsCheck,
    find_secret_values,
    scan_secrets,
)
from tests.support.connectors import everything_shown, make_connector

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "connectors"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"  # pragma: allowlist secret
GITHUB_TOKEN = "ghp_Zx8TqL2mNv4RkP9sWb3YcH7dJf6Ga1Ue5Xo0"  # pragma: allowlist secret
#: Another well-formed but fake AWS key id, for trees built by the tests.
OTHER_AWS_KEY = "AKIAJ7Q2ZXRV5T3LW4PA"  # pragma: allowlist secret
#: Formats whose detect-secrets plugins implement `verify()` against a live service.
VERIFIABLE = {
    "slack": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",  # pragma: allowlist secret
    "stripe": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",  # pragma: allowlist secret
    "mailchimp": "abcdef0123456789abcdef0123456789-us12",  # pragma: allowlist secret
}
CLI = Path(sys.executable).parent / "detect-secrets"


def context_for(directory: Path, display: str = "", rules: Rules | None = None) -> CheckContext:
    return CheckContext(
        connector=directory.name,
        directory=directory,
        display_path=display,
        rules=rules or Rules(),
        manifest=None,
    )


def cli_baseline(directory: Path) -> None:
    """Write `.secrets.baseline` the way a connector author would, with the real CLI."""
    out = subprocess.run(
        [str(CLI), "scan", "--all-files", "--no-verify"],
        cwd=directory,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (directory / BASELINE_FILE).write_text(out)


async def run(directory: Path, display: str = "") -> CheckResult:
    return await SecretsCheck().run(context_for(directory, display))


# --- the example connectors ---------------------------------------------------------------


async def test_leaky_notes_planted_keys_are_found_at_their_lines() -> None:
    result = await run(EXAMPLES / "leaky-notes", "connectors/leaky-notes")

    assert result.conclusion is Conclusion.FAILURE
    located = {(f.rule_id, f.location) for f in result.findings}
    assert ("AWS Access Key", "connectors/leaky-notes/leaky_notes/settings.py:6") in located
    assert ("GitHub Token", "connectors/leaky-notes/leaky_notes/settings.py:7") in located
    aws = next(f for f in result.findings if f.rule_id == "AWS Access Key")
    assert aws.severity is Severity.HIGH and aws.blocking
    assert aws.message == (
        "Possible AWS Access Key in connectors/leaky-notes/leaky_notes/settings.py line 6"
    )
    assert "rotate" in aws.remediation and "pragma: allowlist secret" in aws.remediation
    assert aws.finding_id.startswith("sec-")


async def test_leaky_notes_values_appear_nowhere_in_the_result() -> None:
    result = await run(EXAMPLES / "leaky-notes", "connectors/leaky-notes")
    shown = everything_shown(result)

    for value in (AWS_KEY, GITHUB_TOKEN):
        assert value not in shown
        assert hashlib.sha1(value.encode()).hexdigest() not in shown  # detect-secrets' hash


async def test_scan_keeps_values_in_memory_but_out_of_its_repr() -> None:
    scan = await scan_secrets(EXAMPLES / "leaky-notes")

    assert {AWS_KEY, GITHUB_TOKEN} <= scan.values
    assert AWS_KEY not in repr(scan) and GITHUB_TOKEN not in repr(scan)
    assert AWS_KEY not in repr(scan.hits)


async def test_find_secret_values_feeds_the_scrubber() -> None:
    from checks.scrub import scrub

    values = await find_secret_values(EXAMPLES / "leaky-notes")

    assert {AWS_KEY, GITHUB_TOKEN} <= values
    assert scrub(f"echo {GITHUB_TOKEN} done", values) == "echo [REDACTED] done"


async def test_acme_weather_is_clean() -> None:
    result = await run(EXAMPLES / "acme-weather")

    assert result.conclusion is Conclusion.SUCCESS
    assert result.findings == ()
    assert result.data["files_scanned"] == len(
        [p for p in (EXAMPLES / "acme-weather").rglob("*") if p.is_file()]
    ) - sum(1 for p in (EXAMPLES / "acme-weather").rglob("*.pyc"))


# --- false-positive markers: pragma and baseline --------------------------------------------


async def test_pragma_allowlist_silences_one_line_only(tmp_path: Path) -> None:
    root = make_connector(
        tmp_path,
        {
            "conn/settings.py": (
                f'KEY = "{AWS_KEY}"  # pragma: allowlist secret\nOTHER = "{OTHER_AWS_KEY}"\n'
            )
        },
    )
    result = await run(root)

    assert [(f.rule_id, f.start_line) for f in result.findings] == [("AWS Access Key", 2)]


async def test_secrets_in_a_cli_written_baseline_are_not_findings(tmp_path: Path) -> None:
    root = make_connector(tmp_path, {"conn/settings.py": f'KEY = "{AWS_KEY}"\n'})
    cli_baseline(root)

    accepted = await run(root)
    assert accepted.conclusion is Conclusion.SUCCESS
    assert accepted.data["accepted_by_baseline"] == 1

    (root / "conn" / "settings.py").write_text(f'KEY = "{AWS_KEY}"\nNEW = "{OTHER_AWS_KEY}"\n')
    after = await run(root)
    assert after.conclusion is Conclusion.FAILURE
    assert [(f.rule_id, f.start_line) for f in after.findings] == [("AWS Access Key", 2)]


async def test_baseline_entry_for_another_file_does_not_cover_a_copy(tmp_path: Path) -> None:
    root = make_connector(tmp_path, {"a.py": f'KEY = "{AWS_KEY}"\n'})
    cli_baseline(root)
    (root / "b.py").write_text(f'KEY = "{AWS_KEY}"\n')

    result = await run(root)

    assert [f.path for f in result.findings] == ["b.py"]


async def test_baseline_entry_audited_as_real_secret_still_fails(tmp_path: Path) -> None:
    root = make_connector(tmp_path, {"a.py": f'KEY = "{AWS_KEY}"\n'})
    cli_baseline(root)
    baseline = json.loads((root / BASELINE_FILE).read_text())
    for entry in baseline["results"]["a.py"]:
        entry["is_secret"] = True
    (root / BASELINE_FILE).write_text(json.dumps(baseline))

    result = await run(root)

    assert result.conclusion is Conclusion.FAILURE


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"version": "1.5.0"}), json.dumps({"results": {"a.py": "x"}})],
    ids=["not-json", "no-results", "bad-results"],
)
async def test_unreadable_baseline_is_an_error_not_a_pass(tmp_path: Path, content: str) -> None:
    root = make_connector(tmp_path, {"a.py": f'KEY = "{AWS_KEY}"\n', BASELINE_FILE: content})

    result = await run(root)

    assert result.conclusion is Conclusion.ERROR
    assert BASELINE_FILE in result.summary and "detect-secrets" in result.summary


async def test_baseline_settings_cannot_run_code_disable_plugins_or_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "executed"
    hook = tmp_path / "hook.py"
    hook.write_text(
        f"open({str(marker)!r}, 'w').close()\n\n"
        "def should_exclude_secret(secret):\n    return True\n"
    )
    baseline = {
        "version": "1.5.0",
        "plugins_used": [{"name": "Custom", "path": f"file://{hook}"}],
        "filters_used": [
            {"path": f"file://{hook}::should_exclude_secret"},
            {
                "path": "detect_secrets.filters.common.is_ignored_due_to_verification_policies",
                "min_level": 2,
            },
        ],
        "results": {},
    }
    root = make_connector(
        tmp_path,
        {"a.py": f'KEY = "{AWS_KEY}"\nSLACK = "{VERIFIABLE["slack"]}"\n'},
    )
    (root / BASELINE_FILE).write_text(json.dumps(baseline))
    attempts = record_connections(monkeypatch)

    result = await run(root)

    assert not marker.exists()
    assert attempts == []
    assert {f.rule_id for f in result.findings} >= {"AWS Access Key", "Slack Token"}


# --- no live verification -------------------------------------------------------------------


def record_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Make every outbound connection of this process fail, and remember who tried."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: attempts.append(a) or [])
    return attempts


async def test_no_plugin_verifies_against_a_live_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [f'{name.upper()} = "{value}"' for name, value in VERIFIABLE.items()]
    root = make_connector(tmp_path, {"keys.py": "\n".join(lines) + "\n"})
    attempts = record_connections(monkeypatch)

    result = await run(root)

    assert attempts == []
    assert {"Slack Token", "Stripe Access Key", "Mailchimp Access Key"} <= {
        f.rule_id for f in result.findings
    }


async def test_verification_filter_is_off_during_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detect_secrets.core import scan as ds_scan
    from detect_secrets.settings import get_settings

    seen: list[set[str]] = []
    original = ds_scan.scan_file

    def spy(filename: str):  # type: ignore[no-untyped-def]
        seen.append(set(get_settings().filters))
        yield from original(filename)

    monkeypatch.setattr(ds_scan, "scan_file", spy)
    root = make_connector(tmp_path, {"a.py": f'KEY = "{AWS_KEY}"\n'})

    await run(root)

    assert seen, "detect-secrets scanned nothing"
    verify = "detect_secrets.filters.common.is_ignored_due_to_verification_policies"
    assert all(verify not in filters for filters in seen)
    assert all("detect_secrets.filters.allowlist.is_line_allowlisted" in f for f in seen)


# --- files that are not scanned ---------------------------------------------------------------


async def test_oversized_text_file_is_reported_low_not_ignored(tmp_path: Path) -> None:
    root = make_connector(tmp_path, {"small.py": "x = 1\n"})
    big = root / "data" / "dump.txt"
    big.parent.mkdir()
    big.write_text(("harmless line\n" * (MAX_SCAN_BYTES // 14 + 10)) + f"KEY={AWS_KEY}\n")

    result = await run(root)

    assert result.conclusion is Conclusion.SUCCESS  # low is below the default fail_on
    [finding] = result.findings
    assert finding.rule_id == RULE_TOO_LARGE and finding.severity is Severity.LOW
    assert finding.path == "data/dump.txt" and not finding.blocking
    assert "too large to scan" in finding.message


async def test_binary_files_and_symlinks_are_skipped(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text(f'KEY = "{AWS_KEY}"\n')
    root = make_connector(tmp_path, {"a.py": "x = 1\n"})
    (root / "blob.bin").write_bytes(b"\x00\x01" + AWS_KEY.encode() + b"\x00")
    (root / "link.py").symlink_to(outside)

    result = await run(root)

    assert result.conclusion is Conclusion.SUCCESS
    assert result.data["binaries_skipped"] == 1
    assert result.data["files_scanned"] == 1


# --- identity ---------------------------------------------------------------------------------


async def test_fingerprint_survives_moving_lines_but_not_a_new_value(tmp_path: Path) -> None:
    root = make_connector(tmp_path, {"a.py": f'KEY = "{AWS_KEY}"\n'})
    first = (await run(root)).findings[0]
    (root / "a.py").write_text(f'# moved\n\nKEY = "{AWS_KEY}"\n')
    moved = (await run(root)).findings[0]
    (root / "a.py").write_text(f'KEY = "{OTHER_AWS_KEY}"\n')
    other = (await run(root)).findings[0]

    assert moved.start_line == 3
    assert moved.fingerprint == first.fingerprint and moved.finding_id == first.finding_id
    assert other.fingerprint != first.fingerprint


# --- concurrency and throughput ---------------------------------------------------------------


async def test_concurrent_scans_do_not_mix_settings_or_results(tmp_path: Path) -> None:
    leaky = EXAMPLES / "leaky-notes"
    clean = EXAMPLES / "acme-weather"
    allowed = make_connector(tmp_path, {"a.py": f'K = "{AWS_KEY}"  # pragma: allowlist secret\n'})

    results = await asyncio.gather(*(run(d) for d in [leaky, clean, allowed] * 4))

    conclusions = [r.conclusion for r in results]
    assert conclusions == [Conclusion.FAILURE, Conclusion.SUCCESS, Conclusion.SUCCESS] * 4


def write_big_tree(root: Path) -> None:
    """About 2x PARALLEL_MIN_BYTES of ordinary code, with secrets in two files."""
    body = "".join(f"def f{i}(x):\n    return x + {i}  # ordinary code\n" for i in range(2500))
    for n in range(6):
        (root / f"m{n}.py").write_text(body)
    with (root / "m1.py").open("a") as f:
        f.write(f'KEY = "{AWS_KEY}"\n')
    with (root / "m4.py").open("a") as f:
        f.write(f'TOKEN = "{GITHUB_TOKEN}"\n')


def cli_hits(directory: Path) -> set[tuple[str, str, int]]:
    out = subprocess.run(
        [str(CLI), "scan", "--all-files", "--no-verify"],
        cwd=directory,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    results = json.loads(out)["results"]
    return {(p, e["type"], e["line_number"]) for p, items in results.items() for e in items}


@pytest.mark.slow
async def test_big_tree_is_spread_over_workers_and_matches_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    write_big_tree(root)
    assert sum(p.stat().st_size for p in root.iterdir()) > PARALLEL_MIN_BYTES

    scan = await scan_secrets(root)

    assert {(h.path, h.type, h.line) for h in scan.hits} == cli_hits(root)
    assert {AWS_KEY, GITHUB_TOKEN} <= scan.values
