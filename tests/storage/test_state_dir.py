"""The App's state folder is private: sandboxed PR code runs as other users."""

from __future__ import annotations

import stat
from pathlib import Path

from bot.storage import Storage


async def test_sqlite_state_folder_is_created_private(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "nested"
    storage = Storage.from_url(f"sqlite:///{folder / 'gate.db'}")
    await storage.migrate()
    await storage.close()
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0
