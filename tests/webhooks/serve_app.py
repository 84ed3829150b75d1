"""Runs the App as a real process for the crash-safety test (argv: port, handler mode, record)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.app import serve
from bot.settings import Settings
from bot.storage import StoredDelivery


def main() -> None:
    port, mode, record = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

    async def block(job: StoredDelivery) -> None:
        # Stands for a long check run: the process is killed while this runs.
        record.with_suffix(".started").write_text(job.delivery_id)
        await asyncio.sleep(3600)

    def append(delivery_id: str) -> None:
        with record.open("a") as out:
            out.write(delivery_id + "\n")

    async def record_it(job: StoredDelivery) -> None:
        await asyncio.to_thread(append, job.delivery_id)

    handler = block if mode == "block" else record_it
    serve(Settings.from_env(os.environ), port, host="127.0.0.1", handler=handler)


if __name__ == "__main__":
    main()
