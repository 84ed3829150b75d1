"""The one storage layer: queries over SQLite or PostgreSQL through SQLAlchemy Core async."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.storage import schema
from bot.storage.engine import IMMEDIATE_OPTION, create_engine
from bot.storage.models import (
    AuditEntry,
    AuditRecord,
    CheckRunRecord,
    DeliveryStatus,
    Installation,
    InstallationChange,
    NewDelivery,
    PerfBaselineRecord,
    StorageError,
    StoredDelivery,
    Waiver,
    utcnow,
)
from bot.storage.sqlite_ingest import (
    delivery_row,
    insert_new_deliveries,
    payload_directory,
    read_payload,
)
from checks.scrub import scrub

Clock = Callable[[], datetime]

#: Longest error text kept per delivery; the tail holds the useful part of a traceback.
_MAX_ERROR_CHARS = 4000

_D = schema.deliveries


class Storage:
    """Deliveries queue, installations and the App's bookkeeping tables."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_attempts: int = 5,
        clock: Clock = utcnow,
    ) -> None:
        self._engine = engine
        # Write transactions take SQLite's write lock when they begin (see engine._begin).
        self._write_engine = engine.execution_options(**{IMMEDIATE_OPTION: True})
        self._max_attempts = max_attempts
        self._clock = clock
        self.backend = engine.dialect.name
        # SQLite has one writer per database: serialising our own writes here means they never
        # fail with "database is locked" mid-transaction. PostgreSQL takes row locks instead.
        self._write_lock: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if self.backend == "sqlite" else contextlib.nullcontext()
        )

    @classmethod
    def from_url(
        cls,
        database_url: str,
        *,
        sqlite_synchronous: str = "NORMAL",
        max_attempts: int = 5,
        pool_size: int = 5,
        clock: Clock = utcnow,
    ) -> Storage:
        """Storage over a `sqlite:///` or `postgresql://` URL (no connection is made yet)."""
        engine = create_engine(
            database_url, sqlite_synchronous=sqlite_synchronous, pool_size=pool_size
        )
        return cls(engine, max_attempts=max_attempts, clock=clock)

    @property
    def sqlite_file(self) -> str | None:
        """The database file, on SQLite with a file (None for PostgreSQL and `:memory:`)."""
        if self.backend != "sqlite":
            return None
        database = self._engine.url.database
        # Absolute: the writer process and the payload reads must agree whatever the cwd.
        return os.path.abspath(database) if database and database != ":memory:" else None

    def now(self) -> datetime:
        """The storage's idea of the current time (UTC); tests may move it by hand."""
        return self._clock()

    # -- lifetime --------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Bring the schema to the newest version (idempotent; safe with several replicas)."""
        if await self.schema_version() == schema.SCHEMA_VERSION:
            return  # the usual start: no need to load alembic at all
        async with self._transaction("migrate") as conn:
            if self.backend == "postgresql":
                # Two replicas starting together must not both create the tables.
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(7243001)"))
            # On SQLite the transaction began IMMEDIATE: a second process waits instead of
            # creating the tables twice.
            await conn.run_sync(_upgrade_to_head)

    async def schema_version(self) -> str | None:
        """The migration the database is at; None before the first migration."""
        try:
            async with self._reading("read schema version") as conn:
                query = sa.text("SELECT version_num FROM alembic_version")
                return (await conn.execute(query)).scalar_one_or_none()
        except StorageError:
            return None

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._engine.dispose()

    async def ping(self) -> None:
        """Raise StorageError unless the database answers."""
        async with self._reading("ping") as conn:
            await conn.execute(sa.text("SELECT 1"))

    # -- deliveries and the job queue ------------------------------------------------------

    async def insert_deliveries(self, batch: Sequence[NewDelivery]) -> list[bool]:
        """Store a batch in one transaction; per item, True if new, False if already stored.

        Installation changes of new deliveries are applied in the same transaction.
        """
        if not batch:
            return []
        now = self._clock()
        async with self._transaction("store deliveries") as conn:
            inserted = await conn.run_sync(_insert_deliveries, batch, now)
        return [item.delivery_id in inserted for item in batch]

    async def get_delivery(self, delivery_id: str) -> StoredDelivery | None:
        """The stored delivery with this X-GitHub-Delivery id, if any."""
        async with self._reading("read delivery") as conn:
            result = await conn.execute(sa.select(_D).where(_D.c.delivery_id == delivery_id))
            row = result.one_or_none()
        return self._stored(row._mapping) if row else None

    async def count_deliveries(self, status: DeliveryStatus | None = None) -> int:
        """How many deliveries are stored (with that status, when given)."""
        query = sa.select(sa.func.count()).select_from(_D)
        if status is not None:
            query = query.where(_D.c.status == status.value)
        async with self._reading("count deliveries") as conn:
            return int((await conn.execute(query)).scalar_one())

    async def queue_depth(self) -> int:
        """Deliveries waiting or running."""
        query = sa.select(sa.func.count()).where(
            _D.c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.RUNNING.value])
        )
        async with self._reading("queue depth") as conn:
            return int((await conn.execute(query)).scalar_one())

    async def claim_next(self, worker_id: str, lease_s: float) -> StoredDelivery | None:
        """Lease the oldest due queued delivery to `worker_id`, or None when none is due."""
        now = self._clock()
        candidate = (
            sa.select(_D.c.id)
            .where(_D.c.status == DeliveryStatus.QUEUED.value, _D.c.next_attempt_at <= now)
            .order_by(_D.c.next_attempt_at, _D.c.id)
            .limit(1)
        )
        if self.backend == "postgresql":
            candidate = candidate.with_for_update(skip_locked=True)
        claim = (
            sa.update(_D)
            .where(_D.c.id == candidate.scalar_subquery())
            .values(
                status=DeliveryStatus.RUNNING.value,
                lease_owner=worker_id,
                lease_until=now + timedelta(seconds=lease_s),
                attempts=_D.c.attempts + 1,
            )
            .returning(*_D.c)
        )
        async with self._transaction("claim delivery") as conn:
            row = (await conn.execute(claim)).one_or_none()
        return self._stored(row._mapping) if row else None

    async def extend_lease(self, job_id: int, worker_id: str, lease_s: float) -> bool:
        """Push the lease of a running job further; False if the worker no longer owns it."""
        until = self._clock() + timedelta(seconds=lease_s)
        return await self._update_owned(job_id, worker_id, {"lease_until": until}) > 0

    async def complete(self, job_id: int, *, owner: str | None = None) -> None:
        """Mark a job done (only if still leased to `owner`, when given)."""
        values = {"status": DeliveryStatus.DONE.value, "lease_owner": None, "lease_until": None}
        await self._update_owned(job_id, owner, values)

    async def fail(
        self, job_id: int, error: str, retry_at: datetime, *, owner: str | None = None
    ) -> DeliveryStatus:
        """Record a failed attempt: queued again for `retry_at`, or dead when out of attempts."""
        dead_or_queued = sa.case(
            (_D.c.attempts >= self._max_attempts, DeliveryStatus.DEAD.value),
            else_=DeliveryStatus.QUEUED.value,
        )
        stmt = _owned(job_id, owner).values(
            status=dead_or_queued,
            next_attempt_at=retry_at,
            last_error=scrub(error)[-_MAX_ERROR_CHARS:],
            lease_owner=None,
            lease_until=None,
        )
        async with self._transaction("fail delivery") as conn:
            row = (await conn.execute(stmt.returning(_D.c.status))).one_or_none()
        # A job no longer ours (its lease expired and another worker took it) stays as it is.
        status = DeliveryStatus(row.status) if row else DeliveryStatus.RUNNING
        return status

    async def release(self, job_id: int, *, owner: str | None = None) -> None:
        """Give a running job back to the queue unharmed (shutdown): the attempt is not counted."""
        values = {
            "status": DeliveryStatus.QUEUED.value,
            "lease_owner": None,
            "lease_until": None,
            "attempts": sa.func.max(_D.c.attempts - 1, 0)
            if self.backend == "sqlite"
            else sa.func.greatest(_D.c.attempts - 1, 0),
        }
        await self._update_owned(job_id, owner, values)

    async def requeue_expired_leases(self) -> int:
        """Queue again every running job whose lease ran out (its worker died); return how many."""
        stmt = (
            sa.update(_D)
            .where(_D.c.status == DeliveryStatus.RUNNING.value, _D.c.lease_until < self._clock())
            .values(status=DeliveryStatus.QUEUED.value, lease_owner=None, lease_until=None)
        )
        async with self._transaction("requeue expired leases") as conn:
            return (await conn.execute(stmt)).rowcount

    async def _update_owned(self, job_id: int, owner: str | None, values: Mapping[str, Any]) -> int:
        async with self._transaction("update delivery") as conn:
            return (await conn.execute(_owned(job_id, owner).values(**values))).rowcount

    # -- installations ---------------------------------------------------------------------

    async def record_installation(self, change: InstallationChange) -> None:
        """Apply what an installation event says (insert or update)."""
        async with self._transaction("record installation") as conn:
            await conn.execute(_installation_upsert(self.backend, change, self._clock()))

    async def installation(self, installation_id: int) -> Installation | None:
        """What we know about an installation, if anything."""
        table = schema.installations
        async with self._reading("read installation") as conn:
            result = await conn.execute(sa.select(table).where(table.c.id == installation_id))
            row = result.one_or_none()
        if row is None:
            return None
        return Installation(row.id, row.account, bool(row.suspended), bool(row.deleted))

    async def installation_active(self, installation_id: int) -> bool:
        """False once an installation is known to be deleted or suspended.

        An installation never seen in an installation event counts as active: the App may
        have been installed before this database existed.
        """
        known = await self.installation(installation_id)
        return known is None or not (known.deleted or known.suspended)

    async def installation_repos(self, installation_id: int, limit: int = 100) -> list[str]:
        """Repositories (`owner/name`) this installation has sent deliveries about, sorted."""
        query = (
            sa.select(_D.c.repo)
            .where(_D.c.installation_id == installation_id, _D.c.repo.is_not(None))
            .distinct()
            .order_by(_D.c.repo)
            .limit(limit)
        )
        async with self._reading("read installation repositories") as conn:
            return [str(row.repo) for row in (await conn.execute(query)).all()]

    # -- check runs ------------------------------------------------------------------------

    async def reserve_check_run(
        self, repo: str, head_sha: str, name: str, external_id: str
    ) -> CheckRunRecord:
        """The check run row for (repo, head_sha, name), inserting it if absent.

        Callers create the GitHub check run only when `github_id` is None, so a retried job
        updates the existing run instead of creating a second one.
        """
        table = schema.check_runs
        row = {"repo": repo, "head_sha": head_sha, "name": name, "external_id": external_id}
        stmt = self._insert(table).values(**row, created_at=self._clock())
        async with self._transaction("reserve check run") as conn:
            await conn.execute(stmt.on_conflict_do_nothing())
            found = await conn.execute(_check_run_query(repo, head_sha, name))
            return _check_run(found.one()._mapping)

    async def set_check_run_github_id(
        self, repo: str, head_sha: str, name: str, github_id: int
    ) -> None:
        """Remember GitHub's id for a reserved check run."""
        table = schema.check_runs
        stmt = (
            sa.update(table)
            .where(table.c.repo == repo, table.c.head_sha == head_sha, table.c.name == name)
            .values(github_id=github_id)
        )
        async with self._transaction("update check run") as conn:
            await conn.execute(stmt)

    async def check_run(self, repo: str, head_sha: str, name: str) -> CheckRunRecord | None:
        """The check run row for (repo, head_sha, name), if any."""
        async with self._reading("read check run") as conn:
            row = (await conn.execute(_check_run_query(repo, head_sha, name))).one_or_none()
        return _check_run(row._mapping) if row else None

    # -- posted comments -------------------------------------------------------------------

    async def comment_posted(self, repo: str, pr: int, fingerprint: str) -> bool:
        """True if a comment with this fingerprint was already posted on the PR."""
        table = schema.posted_comments
        query = sa.select(table.c.id).where(
            table.c.repo == repo, table.c.pr == pr, table.c.fingerprint == fingerprint
        )
        async with self._reading("read posted comment") as conn:
            return (await conn.execute(query)).first() is not None

    async def record_posted_comment(
        self, repo: str, pr: int, fingerprint: str, github_id: int | None = None
    ) -> bool:
        """Remember a posted comment; False if that fingerprint was already recorded."""
        table = schema.posted_comments
        stmt = self._insert(table).values(
            repo=repo, pr=pr, fingerprint=fingerprint, github_id=github_id, posted_at=self._clock()
        )
        async with self._transaction("record posted comment") as conn:
            result = await conn.execute(stmt.on_conflict_do_nothing().returning(table.c.id))
            return result.first() is not None

    # -- audit log (append-only: there is deliberately no update or delete) ----------------

    async def append_audit(self, entry: AuditEntry) -> int:
        """Append one audit record; return its sequence number."""
        table = schema.audit_log
        stmt = sa.insert(table).values(
            at=self._clock(),
            actor=entry.actor,
            repo=entry.repo,
            pr=entry.pr,
            head_sha=entry.head_sha,
            delivery_id=entry.delivery_id,
            kind=entry.kind,
            detail=entry.detail,
        )
        async with self._transaction("append audit") as conn:
            return int((await conn.execute(stmt.returning(table.c.id))).scalar_one())

    async def audit_entries(self, repo: str, pr: int | None = None) -> list[AuditRecord]:
        """Audit records of a repository (and PR), oldest first."""
        table = schema.audit_log
        query = sa.select(table).where(table.c.repo == repo).order_by(table.c.id)
        if pr is not None:
            query = query.where(table.c.pr == pr)
        async with self._reading("read audit") as conn:
            rows = (await conn.execute(query)).all()
        return [_audit_record(row._mapping) for row in rows]

    async def latest_audit_entry(
        self, repo: str, pr: int, kind: str, head_sha: str
    ) -> AuditRecord | None:
        """The newest audit record of this kind for a PR's head commit, if any."""
        table = schema.audit_log
        query = (
            sa.select(table)
            .where(
                table.c.repo == repo,
                table.c.pr == pr,
                table.c.kind == kind,
                table.c.head_sha == head_sha,
            )
            .order_by(table.c.id.desc())
            .limit(1)
        )
        async with self._reading("read audit") as conn:
            row = (await conn.execute(query)).one_or_none()
        return _audit_record(row._mapping) if row else None

    # -- waivers ---------------------------------------------------------------------------

    async def add_waiver(self, waiver: Waiver) -> int:
        """Store a waiver; return its id."""
        table = schema.waivers
        stmt = sa.insert(table).values(
            repo=waiver.repo,
            pr=waiver.pr,
            finding_id=waiver.finding_id,
            reason=waiver.reason,
            by=waiver.by,
            until=waiver.until,
            revoked=waiver.revoked,
            created_at=self._clock(),
        )
        async with self._transaction("add waiver") as conn:
            return int((await conn.execute(stmt.returning(table.c.id))).scalar_one())

    async def revoke_waiver(self, repo: str, pr: int, finding_id: str) -> int:
        """Withdraw the waivers of a finding on a PR; return how many were revoked."""
        table = schema.waivers
        stmt = (
            sa.update(table)
            .where(
                table.c.repo == repo,
                table.c.pr == pr,
                table.c.finding_id == finding_id,
                table.c.revoked == sa.false(),
            )
            .values(revoked=True)
        )
        async with self._transaction("revoke waiver") as conn:
            return (await conn.execute(stmt)).rowcount

    async def active_waivers(self, repo: str, pr: int) -> list[Waiver]:
        """Waivers of a PR that are neither revoked nor expired, oldest first."""
        table = schema.waivers
        now = self._clock()
        query = (
            sa.select(table)
            .where(table.c.repo == repo, table.c.pr == pr, table.c.revoked == sa.false())
            .where(sa.or_(table.c.until.is_(None), table.c.until > now))
            .order_by(table.c.id)
        )
        async with self._reading("read waivers") as conn:
            rows = (await conn.execute(query)).all()
        return [_waiver(row._mapping) for row in rows]

    # -- performance baselines -------------------------------------------------------------

    async def record_perf_baseline(self, record: PerfBaselineRecord) -> None:
        """Store a connector's figures measured on the default branch."""
        stmt = sa.insert(schema.perf_baselines).values(
            repo=record.repo,
            connector=record.connector,
            p95_ms=record.p95_ms,
            rps=record.rps,
            error_rate=record.error_rate,
            commit=record.commit,
            measured_at=record.measured_at,
        )
        async with self._transaction("record perf baseline") as conn:
            await conn.execute(stmt)

    async def latest_perf_baseline(self, repo: str, connector: str) -> PerfBaselineRecord | None:
        """The newest baseline of a connector in a repository, if any."""
        table = schema.perf_baselines
        query = (
            sa.select(table)
            .where(table.c.repo == repo, table.c.connector == connector)
            .order_by(table.c.measured_at.desc(), table.c.id.desc())
            .limit(1)
        )
        async with self._reading("read perf baseline") as conn:
            row = (await conn.execute(query)).one_or_none()
        return _perf_baseline(row._mapping) if row else None

    # -- plumbing --------------------------------------------------------------------------

    def _stored(self, row: sa.RowMapping) -> StoredDelivery:
        ref = row["payload_ref"]
        if not ref:
            return _stored(row, row["payload"])
        if self.sqlite_file is None:
            raise StorageError("a delivery points to a payload file, but there are none here")
        try:
            payload = read_payload(payload_directory(self.sqlite_file), ref)
        except ValueError as err:
            raise StorageError(f"delivery {row['delivery_id']}: {err}") from None
        return _stored(row, payload.decode())

    def _insert(self, table: sa.Table) -> Any:
        return _dialect_insert(self.backend, table)

    @contextlib.asynccontextmanager
    async def _transaction(self, what: str) -> AsyncIterator[AsyncConnection]:
        async with self._write_lock, _storage_errors(what), self._write_engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _reading(self, what: str) -> AsyncIterator[AsyncConnection]:
        async with _storage_errors(what), self._engine.connect() as conn:
            yield conn


@contextlib.asynccontextmanager
async def _storage_errors(what: str) -> AsyncIterator[None]:
    try:
        yield
    except (sa.exc.SQLAlchemyError, sqlite3.Error, OSError) as err:
        # Only the driver's own message: SQLAlchemy's text would list the bound parameters,
        # which include webhook payloads.
        detail = getattr(err, "orig", None) or err
        raise StorageError(f"{what} failed: {type(detail).__name__}: {detail}") from None


def _dialect_insert(backend: str, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return (postgresql.insert if backend == "postgresql" else sqlite.insert)(table)


def _insert_deliveries(
    conn: sa.Connection, batch: Sequence[NewDelivery], now: datetime
) -> set[str]:
    """Insert what is new in `batch` (one transaction, caller's); return the ids inserted."""
    backend = conn.dialect.name
    if backend == "postgresql":
        insert = postgresql.insert(_D).on_conflict_do_nothing(index_elements=["delivery_id"])
        rows = [_delivery_row(item, now) for item in batch]
        result = conn.execute(insert.returning(_D.c.delivery_id), rows)
        inserted = {row.delivery_id for row in result}
        for item in batch:
            if item.installation_change and item.delivery_id in inserted:
                conn.execute(_installation_upsert(backend, item.installation_change, now))
        return inserted
    return _insert_deliveries_sqlite(conn, batch, now)


def _insert_deliveries_sqlite(
    conn: sa.Connection, batch: Sequence[NewDelivery], now: datetime
) -> set[str]:
    # The same statements as the delivery writer process, straight to the driver.
    cursor = conn.connection.cursor()
    try:
        return insert_new_deliveries(cursor, [delivery_row(0, item, now) for item in batch])
    finally:
        cursor.close()


def _installation_upsert(backend: str, change: InstallationChange, now: datetime) -> Any:
    updates: dict[str, Any] = {"account": change.account, "updated_at": now}
    if change.suspended is not None:
        updates["suspended"] = change.suspended
    if change.deleted is not None:
        updates["deleted"] = change.deleted
    stmt = _dialect_insert(backend, schema.installations).values(
        id=change.installation_id,
        account=change.account,
        suspended=bool(change.suspended),
        deleted=bool(change.deleted),
        updated_at=now,
    )
    return stmt.on_conflict_do_update(index_elements=["id"], set_=updates)


def _upgrade_to_head(sync_connection: sa.Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "head")


def _owned(job_id: int, owner: str | None) -> sa.Update:
    stmt = sa.update(_D).where(_D.c.id == job_id)
    return stmt.where(_D.c.lease_owner == owner) if owner is not None else stmt


def _delivery_row(item: NewDelivery, now: datetime) -> dict[str, Any]:
    return {
        "delivery_id": item.delivery_id,
        "event": item.event,
        "action": item.action,
        "installation_id": item.installation_id,
        "repo": item.repo,
        "payload": item.payload,
        "received_at": now,
        "status": DeliveryStatus.QUEUED.value,
        "attempts": 0,
        "next_attempt_at": now,
    }


def _utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; we only ever write UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return _utc(value) if value is not None else None


def _stored(row: sa.RowMapping, payload: str) -> StoredDelivery:
    return StoredDelivery(
        id=row["id"],
        delivery_id=row["delivery_id"],
        event=row["event"],
        action=row["action"],
        installation_id=row["installation_id"],
        repo=row["repo"],
        payload=payload,
        received_at=_utc(row["received_at"]),
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=_utc(row["next_attempt_at"]),
        lease_owner=row["lease_owner"],
        lease_until=_utc_or_none(row["lease_until"]),
        last_error=row["last_error"],
    )


def _check_run_query(repo: str, head_sha: str, name: str) -> sa.Select[Any]:
    table = schema.check_runs
    return sa.select(table).where(
        table.c.repo == repo, table.c.head_sha == head_sha, table.c.name == name
    )


def _check_run(row: sa.RowMapping) -> CheckRunRecord:
    return CheckRunRecord(
        repo=row["repo"],
        head_sha=row["head_sha"],
        name=row["name"],
        external_id=row["external_id"],
        github_id=row["github_id"],
    )


def _audit_record(row: sa.RowMapping) -> AuditRecord:
    entry = AuditEntry(
        actor=row["actor"],
        kind=row["kind"],
        repo=row["repo"],
        pr=row["pr"],
        head_sha=row["head_sha"],
        delivery_id=row["delivery_id"],
        detail=dict(row["detail"]),
    )
    return AuditRecord(id=row["id"], at=_utc(row["at"]), entry=entry)


def _waiver(row: sa.RowMapping) -> Waiver:
    return Waiver(
        repo=row["repo"],
        pr=row["pr"],
        finding_id=row["finding_id"],
        reason=row["reason"],
        by=row["by"],
        until=_utc_or_none(row["until"]),
        revoked=bool(row["revoked"]),
    )


def _perf_baseline(row: sa.RowMapping) -> PerfBaselineRecord:
    return PerfBaselineRecord(
        repo=row["repo"],
        connector=row["connector"],
        p95_ms=row["p95_ms"],
        rps=row["rps"],
        error_rate=row["error_rate"],
        commit=row["commit"],
        measured_at=_utc(row["measured_at"]),
    )
