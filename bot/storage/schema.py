"""Table definitions shared by the queries and the migrations (SQLAlchemy Core)."""

from __future__ import annotations

import sqlalchemy as sa

#: Newest migration in migrations/versions; a test keeps it equal to alembic's head.
SCHEMA_VERSION = "0003"

metadata = sa.MetaData()

#: Timestamps are always written as UTC; SQLite keeps them as sortable ISO text.
_Time = sa.DateTime(timezone=True)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(64), nullable=False, unique=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64)),
    sa.Column("installation_id", sa.BigInteger),
    sa.Column("repo", sa.String(255)),
    sa.Column("payload", sa.Text, nullable=False),
    # Set when the payload lives in a payload file instead (then `payload` is empty).
    sa.Column("payload_ref", sa.String(64)),
    sa.Column("received_at", _Time, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", _Time, nullable=False),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", _Time),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_deliveries_queue", "status", "next_attempt_at"),
)

installations = sa.Table(
    "installations",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account", sa.String(255), nullable=False),
    sa.Column("suspended", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", _Time, nullable=False),
)

check_runs = sa.Table(
    "check_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("head_sha", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("github_id", sa.BigInteger),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("created_at", _Time, nullable=False),
    sa.UniqueConstraint("repo", "head_sha", "name", name="uq_check_runs_repo_sha_name"),
)

posted_comments = sa.Table(
    "posted_comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("pr", sa.Integer, nullable=False),
    sa.Column("fingerprint", sa.String(128), nullable=False),
    sa.Column("github_id", sa.BigInteger),
    sa.Column("posted_at", _Time, nullable=False),
    sa.UniqueConstraint("repo", "pr", "fingerprint", name="uq_posted_comments_fingerprint"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _Time, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("pr", sa.Integer),
    sa.Column("head_sha", sa.String(64)),
    sa.Column("delivery_id", sa.String(64)),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index("ix_audit_log_repo_pr", "repo", "pr"),
)

waivers = sa.Table(
    "waivers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("pr", sa.Integer, nullable=False),
    sa.Column("finding_id", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by", sa.String(255), nullable=False),
    sa.Column("until", _Time),
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", _Time, nullable=False),
    sa.Index("ix_waivers_repo_pr", "repo", "pr"),
)

perf_baselines = sa.Table(
    "perf_baselines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo", sa.String(255), nullable=False),
    sa.Column("connector", sa.String(255), nullable=False),
    sa.Column("p95_ms", sa.Float, nullable=False),
    sa.Column("rps", sa.Float, nullable=False),
    sa.Column("error_rate", sa.Float, nullable=False),
    sa.Column("commit", sa.String(64), nullable=False),
    sa.Column("measured_at", _Time, nullable=False),
    sa.Index("ix_perf_baselines_repo_connector", "repo", "connector", "measured_at"),
)
