"""Bookkeeping tables: check runs, posted comments, audit log, waivers, baselines, migrations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage import AuditEntry, PerfBaselineRecord, Storage, Waiver, schema
from bot.storage.engine import async_url


async def test_check_run_is_reserved_once_per_repo_sha_name(storage: Storage) -> None:
    first = await storage.reserve_check_run("acme/c", "abc123", "security", "ext-1")
    again = await storage.reserve_check_run("acme/c", "abc123", "security", "ext-2")
    assert first == again
    assert again.external_id == "ext-1" and again.github_id is None

    await storage.set_check_run_github_id("acme/c", "abc123", "security", 555)
    reserved = await storage.reserve_check_run("acme/c", "abc123", "security", "ext-3")
    assert reserved.github_id == 555
    other_sha = await storage.reserve_check_run("acme/c", "def456", "security", "ext-4")
    assert other_sha.github_id is None
    assert await storage.check_run("acme/c", "nope", "security") is None


async def test_concurrent_reservations_create_one_row(storage: Storage) -> None:
    records = await asyncio.gather(
        *(storage.reserve_check_run("acme/c", "sha", "perf", f"ext-{i}") for i in range(10))
    )
    assert len({r.external_id for r in records}) == 1


async def test_a_comment_fingerprint_is_recorded_once(storage: Storage) -> None:
    assert await storage.comment_posted("acme/c", 7, "fp-1") is False
    assert await storage.record_posted_comment("acme/c", 7, "fp-1", github_id=11) is True
    assert await storage.record_posted_comment("acme/c", 7, "fp-1", github_id=12) is False
    assert await storage.comment_posted("acme/c", 7, "fp-1") is True
    assert await storage.comment_posted("acme/c", 8, "fp-1") is False


async def test_audit_log_appends_in_order(storage: Storage, clock: Any) -> None:
    first = await storage.append_audit(
        AuditEntry(actor="alice", kind="gate.approved", repo="acme/c", pr=7, head_sha="abc")
    )
    clock.advance(5)
    second = await storage.append_audit(
        AuditEntry(
            actor="bob",
            kind="waiver.granted",
            repo="acme/c",
            pr=7,
            delivery_id="d-1",
            detail={"finding": "sec-3f9a2c", "reason": "test fixture"},
        )
    )
    await storage.append_audit(AuditEntry(actor="carol", kind="gate.approved", repo="acme/c", pr=8))

    records = await storage.audit_entries("acme/c", pr=7)
    assert [r.id for r in records] == [first, second]
    assert records[1].entry.detail == {"finding": "sec-3f9a2c", "reason": "test fixture"}
    assert records[1].at - records[0].at == timedelta(seconds=5)
    assert len(await storage.audit_entries("acme/c")) == 3


def test_audit_log_has_no_update_or_delete_method() -> None:
    names = [name for name in dir(Storage) if "audit" in name]
    assert sorted(names) == ["append_audit", "audit_entries", "latest_audit_entry"]


async def test_latest_audit_entry_of_a_kind_for_a_head(storage: Storage) -> None:
    def entry(kind: str, sha: str, n: int) -> AuditEntry:
        return AuditEntry(
            actor="app", kind=kind, repo="acme/c", pr=7, head_sha=sha, detail={"n": n}
        )

    for item in (entry("review", "a1", 1), entry("review", "b2", 2), entry("review", "a1", 3)):
        await storage.append_audit(item)
    await storage.append_audit(entry("gate.approved", "a1", 4))

    latest = await storage.latest_audit_entry("acme/c", 7, "review", "a1")
    assert latest is not None and latest.entry.detail == {"n": 3}
    assert await storage.latest_audit_entry("acme/c", 8, "review", "a1") is None
    assert await storage.latest_audit_entry("acme/c", 7, "review", "c3") is None


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"]
)
async def test_the_database_refuses_to_rewrite_the_audit_log(
    storage: Storage, database_url: str, statement: str
) -> None:
    await storage.append_audit(AuditEntry(actor="alice", kind="gate.approved", repo="acme/c"))
    engine = create_async_engine(async_url(database_url))
    try:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()
    records = await storage.audit_entries("acme/c")
    assert [r.entry.actor for r in records] == ["alice"]


async def test_waivers_expire_and_can_be_revoked(storage: Storage, clock: Any) -> None:
    later = clock.now + timedelta(hours=1)
    await storage.add_waiver(Waiver("acme/c", 7, "sec-aaaaaa", "fixture", "alice", until=later))
    await storage.add_waiver(Waiver("acme/c", 7, "dep-bbbbbb", "accepted risk", "bob"))
    await storage.add_waiver(Waiver("acme/c", 8, "sec-cccccc", "other PR", "bob"))

    active = await storage.active_waivers("acme/c", 7)
    assert [w.finding_id for w in active] == ["sec-aaaaaa", "dep-bbbbbb"]
    assert active[0].until == later

    clock.advance(3601)
    assert [w.finding_id for w in await storage.active_waivers("acme/c", 7)] == ["dep-bbbbbb"]
    assert await storage.revoke_waiver("acme/c", 7, "dep-bbbbbb") == 1
    assert await storage.revoke_waiver("acme/c", 7, "dep-bbbbbb") == 0
    assert await storage.active_waivers("acme/c", 7) == []


async def test_latest_perf_baseline_wins(storage: Storage) -> None:
    old = datetime(2024, 1, 1, tzinfo=UTC)
    new = datetime(2024, 2, 1, tzinfo=UTC)
    for when, p95 in ((new, 120.0), (old, 90.0)):
        await storage.record_perf_baseline(
            PerfBaselineRecord("acme/c", "acme-weather", p95, 50.0, 0.0, f"sha-{p95}", when)
        )
    latest = await storage.latest_perf_baseline("acme/c", "acme-weather")
    assert latest is not None
    assert (latest.p95_ms, latest.commit, latest.measured_at) == (120.0, "sha-120.0", new)
    assert await storage.latest_perf_baseline("acme/c", "other") is None


async def test_migrations_are_idempotent_and_versioned(storage: Storage, database_url: str) -> None:
    await storage.migrate()
    await storage.migrate()
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
            tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    assert version == [(schema.SCHEMA_VERSION,)]
    assert set(tables) >= {
        "deliveries",
        "installations",
        "check_runs",
        "posted_comments",
        "audit_log",
        "waivers",
        "perf_baselines",
    }


def test_schema_version_names_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(schema.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == schema.SCHEMA_VERSION


async def test_schema_version_before_and_after_migrating(database_url: str) -> None:
    store = Storage.from_url(database_url)
    try:
        assert await store.schema_version() is None
        await store.migrate()
        assert await store.schema_version() == schema.SCHEMA_VERSION
    finally:
        await store.close()


async def test_two_instances_migrating_at_once_do_not_clash(database_url: str) -> None:
    stores = [Storage.from_url(database_url) for _ in range(2)]
    try:
        await asyncio.gather(*(s.migrate() for s in stores))
        await stores[0].ping()
    finally:
        for store in stores:
            await store.close()


async def test_sqlite_runs_in_wal_mode_with_the_chosen_synchronous(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'full.db'}"
    store = Storage.from_url(url, sqlite_synchronous="FULL")
    try:
        await store.migrate()
        engine = store._engine
        async with engine.connect() as conn:
            mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar_one()
            sync = (await conn.execute(sa.text("PRAGMA synchronous"))).scalar_one()
    finally:
        await store.close()
    assert (mode, sync) == ("wal", 2)  # 2 = FULL


async def test_unreachable_database_is_a_storage_error() -> None:
    from bot.storage import StorageError

    store = Storage.from_url("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StorageError, match="ping failed"):
        await store.ping()
    await store.close()
