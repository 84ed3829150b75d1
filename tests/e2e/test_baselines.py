"""Performance baselines through the real App: recorded on pushes, measured on a PR's base."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from bot.review.baseline import NOT_RECORDED_KIND, RECORDED_KIND
from bot.storage import DeliveryStatus, PerfBaselineRecord, Storage
from tests.e2e.conftest import (
    FIXTURES,
    INSTALLATION,
    REPO,
    RULES,
    Gate,
    add_pull,
    connector_files,
    pull_payload,
)
from tests.fakegithub.server import FakeGitHub
from tests.fakegithub.state import FakePullFile

T = TypeVar("T")

PUSHED_SHA = "a1" * 20
BASE_SHA = "b2" * 20
HEAD_SHA = "c3" * 20
CONNECTOR = "acme-weather"
PERFORMANCE = "connector-gate/performance"


@dataclass
class BaselineGate:
    """The running App, its storage, and the fake GitHub behind it."""

    gate: Gate
    storage: Storage

    @property
    def fake(self) -> FakeGitHub:
        return self.gate.fake

    async def deliver_and_finish(self, event: str, payload: dict[str, Any]) -> None:
        """Deliver a webhook and wait until the App has handled it."""
        delivery = str(uuid.uuid4())
        assert await self.gate.deliver(event, payload, delivery) == 202

        async def handled() -> bool:
            stored = await self.storage.get_delivery(delivery)
            return stored is not None and stored.status == DeliveryStatus.DONE

        await poll(handled)

    async def performance_run(self, head_sha: str) -> dict[str, Any]:
        await self.gate.gate_done(head_sha)
        return self.gate.runs(head_sha)[PERFORMANCE][0]


async def poll(probe: Callable[[], Awaitable[T]], timeout_s: float = 240) -> T:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not (value := await probe()):
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.2)
    return value


@pytest.fixture
def baselines(gate: Gate) -> BaselineGate:
    """The shared running App, with its storage to look into."""
    assert gate.storage is not None
    return BaselineGate(gate, gate.storage)


def push_payload(ref: str, after: str, added: list[str], modified: list[str]) -> dict[str, Any]:
    """GitHub's push example, pointed at our repository, branch and files."""
    payload: dict[str, Any] = json.loads((FIXTURES / "push" / "push.json").read_text())
    payload["installation"] = {"id": INSTALLATION, "node_id": "x"}
    payload["ref"] = ref
    payload["after"] = after
    payload["before"] = "9" * 40
    payload["created"] = payload["deleted"] = False
    repository = payload["repository"]
    repository.update(full_name=REPO, name="connectors", default_branch="main")
    repository["owner"]["login"] = "acme"
    commit = {
        "id": after,
        "tree_id": "f" * 40,
        "distinct": True,
        "message": "Faster forecasts",
        "timestamp": "2024-05-01T10:00:00Z",
        "url": f"https://github.com/{REPO}/commit/{after}",
        "author": {"name": "Carol", "email": "carol@example.com", "username": "carol"},
        "committer": {"name": "Carol", "email": "carol@example.com", "username": "carol"},
        "added": added,
        "removed": [],
        "modified": modified,
    }
    # A README-only commit in the same push must not hide the connector's change.
    readme = {**copy.deepcopy(commit), "added": [], "modified": ["README.md"]}
    payload["commits"] = [commit, readme]
    payload["head_commit"] = readme
    return payload


def pushed_connector(fake: FakeGitHub, sha: str, files: dict[str, bytes]) -> dict[str, Any]:
    fake.set_tarball(REPO, sha, {"README.md": b"connectors\n", **files})
    manifest = f"connectors/{CONNECTOR}/connector.yaml"
    return push_payload("refs/heads/main", sha, [], [manifest, "connectors/README.md"])


async def test_push_to_default_branch_records_a_baseline_a_later_pr_uses(
    baselines: BaselineGate,
) -> None:
    before = datetime.now(UTC)
    payload = pushed_connector(baselines.fake, PUSHED_SHA, connector_files(CONNECTOR))
    await baselines.deliver_and_finish("push", payload)

    stored = await baselines.storage.latest_perf_baseline(REPO, CONNECTOR)
    assert stored is not None, "a push to the default branch records the connector's figures"
    assert stored.commit == PUSHED_SHA
    assert stored.measured_at >= before
    assert stored.p95_ms > 0 and stored.rps > 20 and stored.error_rate == 0
    audit = [e.entry for e in await baselines.storage.audit_entries(REPO)]
    recorded = [e for e in audit if e.kind == RECORDED_KIND]
    assert [(e.head_sha, e.detail["connector"], e.detail["source"]) for e in recorded] == [
        (PUSHED_SHA, CONNECTOR, "push")
    ]
    assert recorded[0].detail["p95_ms"] == stored.p95_ms
    print(f"\npush baseline: p95 {stored.p95_ms:.2f} ms, {stored.rps:.1f} req/s")

    add_pull(baselines.fake, 21, HEAD_SHA, connector_files(CONNECTOR), base_sha=PUSHED_SHA)
    await baselines.gate.deliver("pull_request", pull_payload("opened", 21, HEAD_SHA))
    run = await baselines.performance_run(HEAD_SHA)

    text = run["output"]["text"]
    assert f"Baseline from `{PUSHED_SHA[:12]}` measured {stored.measured_at.isoformat()}" in text
    assert "| p95 latency |" in text and f"{stored.p95_ms:.1f} ms (max " in text
    # The stored baseline was used as it was: the base was not measured again.
    assert await baselines.storage.latest_perf_baseline(REPO, CONNECTOR) == stored
    downloads = {d["ref"] for d in baselines.fake.recorded.downloads}
    assert downloads == {PUSHED_SHA, HEAD_SHA}


async def test_push_to_another_branch_or_a_tag_records_nothing(baselines: BaselineGate) -> None:
    manifest = [f"connectors/{CONNECTOR}/connector.yaml"]
    baselines.fake.set_tarball(REPO, PUSHED_SHA, connector_files(CONNECTOR))
    for ref in ("refs/heads/feature", "refs/tags/v1.0.0"):
        await baselines.deliver_and_finish("push", push_payload(ref, PUSHED_SHA, manifest, []))

    assert await baselines.storage.latest_perf_baseline(REPO, CONNECTOR) is None
    assert not baselines.fake.recorded.downloads, "nothing was fetched for another branch"
    assert not await baselines.storage.audit_entries(REPO)


async def test_push_without_connector_change_records_nothing(baselines: BaselineGate) -> None:
    payload = push_payload("refs/heads/main", PUSHED_SHA, ["docs/guide.md"], ["README.md"])
    await baselines.deliver_and_finish("push", payload)
    assert await baselines.storage.latest_perf_baseline(REPO, CONNECTOR) is None
    assert not baselines.fake.recorded.downloads


async def test_invalid_run_on_the_default_branch_is_audited_not_stored(
    baselines: BaselineGate,
) -> None:
    files = connector_files(CONNECTOR)
    manifest_path = f"connectors/{CONNECTOR}/connector.yaml"
    broken = files[manifest_path].replace(
        b'start: "python -m acme_weather.server --port {port}"',
        b'start: "python -m acme_weather.missing --port {port}"',
    )
    assert broken != files[manifest_path]
    payload = pushed_connector(baselines.fake, PUSHED_SHA, {**files, manifest_path: broken})
    await baselines.deliver_and_finish("push", payload)

    assert await baselines.storage.latest_perf_baseline(REPO, CONNECTOR) is None
    audit = [e.entry for e in await baselines.storage.audit_entries(REPO)]
    assert [e.kind for e in audit] == [NOT_RECORDED_KIND]
    assert audit[0].detail["connector"] == CONNECTOR
    assert audit[0].detail["reason"].startswith("invalid run: the service")


async def test_pr_much_slower_than_the_baseline_fails_with_both_figures(
    baselines: BaselineGate,
) -> None:
    measured_at = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    # A millisecond-scale baseline: judge the growth by percentage alone.
    rules = RULES + "  regression_min_ms: 0\n"
    baselines.fake.set_files(REPO, "main", {".github/connector-gate.yml": rules})
    await baselines.storage.record_perf_baseline(
        PerfBaselineRecord(REPO, CONNECTOR, 0.1, 5000.0, 0.0, PUSHED_SHA, measured_at)
    )
    add_pull(baselines.fake, 22, HEAD_SHA, connector_files(CONNECTOR))
    await baselines.gate.deliver("pull_request", pull_payload("opened", 22, HEAD_SHA))
    run = await baselines.performance_run(HEAD_SHA)

    assert run["conclusion"] == "failure", run["output"]
    output = json.dumps(run["output"])
    assert "regressed" in output
    assert "against the baseline 0.1 ms" in output
    assert f"commit {PUSHED_SHA[:12]}, measured {measured_at.isoformat()}" in output
    assert "tolerance 20%" in output
    regression = [a for a in run["annotations"] if "regression-p95" in a["title"]]
    assert len(regression) == 1 and regression[0]["annotation_level"] == "failure"
    print(f"\nregression: {regression[0]['message'].splitlines()[0]}\n{run['output']['summary']}")


async def test_without_a_baseline_the_base_commit_is_measured_and_stored(
    baselines: BaselineGate,
) -> None:
    files = connector_files(CONNECTOR)
    baselines.fake.set_files(REPO, BASE_SHA, files)
    baselines.fake.set_tarball(REPO, HEAD_SHA, files)
    # The connector exists on the base: the PR modifies its files.
    changed = [FakePullFile(path, status="modified") for path in files]
    baselines.fake.add_pull(REPO, 23, HEAD_SHA, files=changed, base_sha=BASE_SHA)
    await baselines.gate.deliver("pull_request", pull_payload("opened", 23, HEAD_SHA))
    run = await baselines.performance_run(HEAD_SHA)

    stored = await baselines.storage.latest_perf_baseline(REPO, CONNECTOR)
    assert stored is not None, "the base commit was measured and stored"
    assert stored.commit == BASE_SHA and stored.p95_ms > 0 and stored.rps > 20
    text = run["output"]["text"]
    assert f"Baseline from `{BASE_SHA[:12]}` measured {stored.measured_at.isoformat()}" in text
    audit = [e.entry for e in await baselines.storage.audit_entries(REPO, 23)]
    recorded = [e for e in audit if e.kind == RECORDED_KIND]
    assert [(e.head_sha, e.detail["source"]) for e in recorded] == [(BASE_SHA, "base")]
    print(f"\nbase baseline: p95 {stored.p95_ms:.2f} ms, {stored.rps:.1f} req/s")


async def test_a_pr_of_a_new_connector_measures_no_base(baselines: BaselineGate) -> None:
    add_pull(baselines.fake, 24, HEAD_SHA, connector_files(CONNECTOR), base_sha=BASE_SHA)
    await baselines.gate.deliver("pull_request", pull_payload("opened", 24, HEAD_SHA))
    run = await baselines.performance_run(HEAD_SHA)

    assert "no baseline" in run["output"]["text"]
    assert await baselines.storage.latest_perf_baseline(REPO, CONNECTOR) is None
    assert {d["ref"] for d in baselines.fake.recorded.downloads} == {HEAD_SHA}


async def test_an_invalid_base_is_audited_and_not_measured_again_for_the_same_pr(
    baselines: BaselineGate,
) -> None:
    files = connector_files(CONNECTOR)
    manifest_path = f"connectors/{CONNECTOR}/connector.yaml"
    broken = files[manifest_path].replace(b"acme_weather.server", b"acme_weather.missing")
    baselines.fake.set_files(REPO, BASE_SHA, {**files, manifest_path: broken})
    changed = [FakePullFile(path, status="modified") for path in files]
    baselines.fake.add_pull(REPO, 25, HEAD_SHA, files=changed, base_sha=BASE_SHA)
    newer = "d4" * 20
    for sha, action in ((HEAD_SHA, "opened"), (newer, "synchronize")):
        baselines.fake.set_tarball(REPO, sha, files)
        baselines.fake.repo(REPO).pulls[25].head_sha = sha
        await baselines.gate.deliver("pull_request", pull_payload(action, 25, sha))
        run = await baselines.performance_run(sha)
        assert "no baseline" in run["output"]["text"], run["output"]

    assert await baselines.storage.latest_perf_baseline(REPO, CONNECTOR) is None
    audit = [e.entry for e in await baselines.storage.audit_entries(REPO, 25)]
    tried = [e for e in audit if e.kind == NOT_RECORDED_KIND]
    assert [(e.head_sha, e.detail["source"]) for e in tried] == [(BASE_SHA, "base")]
    assert "the service" in tried[0].detail["reason"]
    downloads = [d["ref"] for d in baselines.fake.recorded.downloads]
    assert downloads.count(BASE_SHA) == 1, downloads
