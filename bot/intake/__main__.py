"""`python -m bot.intake`: the intake process, started by `connector-gate serve` (not by hand).

It reads its config on stdin, listens, and runs until SIGTERM, SIGINT or the end of its input
(the workers' process stopped or died).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys

from aiohttp import web

from bot.intake.app import create_intake_app
from bot.intake.link import IntakeConfig, WorkersLink, connect_workers_link, read_config
from bot.logs import configure_logging
from bot.storage.models import StorageError


def main() -> int:
    try:
        config = read_config(sys.stdin.fileno())
    except ValueError as err:
        print(f"connector-gate intake: {err}", file=sys.stderr)
        return 2
    configure_logging(known_secrets=config.webhook_secrets)
    return asyncio.run(_serve(config))


async def _serve(config: IntakeConfig) -> int:
    link = await connect_workers_link()
    runner = web.AppRunner(create_intake_app(config, link), access_log=None, handle_signals=False)
    try:
        await runner.setup()
        await web.TCPSite(runner, config.host, config.port).start()
    except (StorageError, OSError) as err:
        link.send(f"failed {err}")
        await runner.cleanup()
        return 1
    # What is loaded now lives as long as the process: keep it out of every collection.
    gc.collect()
    gc.freeze()
    link.send("ready")
    await _stop_requested(link)
    await runner.cleanup()
    return 0


async def _stop_requested(link: WorkersLink) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(link.closed.wait())]
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()


if __name__ == "__main__":
    sys.exit(main())
