"""A migrated SQLite file for tests that open it from another process."""

from __future__ import annotations

from pathlib import Path

from bot.storage import Storage


async def migrated_sqlite_file(path: Path) -> Path:
    """Create and migrate `path`; no connection is left open."""
    storage = Storage.from_url(f"sqlite:///{path}")
    await storage.migrate()
    await storage.close()
    return path
