"""Alembic environment: migrates the connection that Storage.migrate() hands over."""

from __future__ import annotations

from alembic import context

from bot.storage.schema import metadata


def _run_migrations() -> None:
    connection = context.config.attributes["connection"]
    # Batch mode lets later migrations alter tables on SQLite too (it copies the table).
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


_run_migrations()
