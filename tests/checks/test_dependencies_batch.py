"""Several connectors are audited by one pip-audit run, and findings go back to their owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from checks.dependencies import DependenciesCheck, audit_groups, plan_audit
from checks.model import Conclusion
from tests.checks.test_dependencies import context
from tests.support.osv_server import RunningServer, running_osv_server


@pytest.fixture
async def osv() -> AsyncIterator[RunningServer]:
    async with running_osv_server() as server:
        yield server


def _connector(root: Path, name: str, requirements: str) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "requirements.txt").write_text(requirements)
    return directory


async def test_one_audit_serves_every_connector_and_keeps_findings_apart(
    tmp_path: Path, osv: RunningServer
) -> None:
    old = _connector(tmp_path, "old", "requests==2.19.0\nflask==0.12\n")
    new = _connector(tmp_path, "new", "requests==2.32.3\n")
    fixed = _connector(tmp_path, "fixed", "flask==0.12.3\n")
    contexts = [context(d, osv.url, display_path=d.name) for d in (old, new, fixed)]

    results = await DependenciesCheck().run_many(contexts)

    by_name = {c.connector: r for c, r in zip(contexts, results, strict=True)}
    assert {f.finding_id for f in by_name["old"].findings} == {"PYSEC-2018-28", "PYSEC-2018-66"}
    assert by_name["new"].conclusion is Conclusion.SUCCESS
    assert by_name["fixed"].conclusion is Conclusion.SUCCESS
    assert all(f.path.startswith("old/") for f in by_name["old"].findings)
    asked = {(q.name.lower(), q.version) for q in osv.queries}
    assert asked == {
        ("requests", "2.19.0"),
        ("flask", "0.12"),
        ("requests", "2.32.3"),
        ("flask", "0.12.3"),
    }


async def test_an_unreachable_service_is_neutral_for_every_connector(tmp_path: Path) -> None:
    a = _connector(tmp_path, "a", "requests==2.32.3\n")
    b = _connector(tmp_path, "b", "flask==2.0.0\n")
    contexts = [context(d, "http://127.0.0.1:9/v1/query") for d in (a, b)]
    results = await DependenciesCheck().run_many(contexts)
    assert [r.conclusion for r in results] == [Conclusion.NEUTRAL, Conclusion.NEUTRAL]


def test_groups_never_pin_one_package_at_two_versions(tmp_path: Path) -> None:
    old = _connector(tmp_path, "old", "requests==2.19.0\nflask==0.12\n")
    new = _connector(tmp_path, "new", "requests==2.32.3\n")
    same = _connector(tmp_path, "same", "requests==2.19.0\nidna==3.7\n")
    fixed = _connector(tmp_path, "fixed", "flask==0.12.3\n")
    plans = [plan_audit(context(d, "")) for d in (old, new, same, fixed)]
    groups = audit_groups(plans)  # type: ignore[arg-type]
    assert [[p.context.connector for p in g] for g in groups] == [
        ["old", "same"],
        ["new", "fixed"],
    ]
