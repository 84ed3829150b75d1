"""Measure the sandbox's overhead and the cold/warm timings of the tests and performance checks.

Run: `uv run python bench/sandbox_overhead.py` (as root for the netns+uid mode).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from checks.base import CheckContext, CheckSettings
from checks.connector_tests import TestsCheck
from checks.manifest import parse_manifest
from checks.performance import PerformanceCheck
from checks.process import run_process
from checks.rules_model import PerformanceRules, Rules
from checks.sandbox import LocalSandbox, SandboxJob
from checks.sandbox.venv import sandbox_interpreter

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "connectors"
ROUNDS = 10


async def _bare(python: str, directory: Path) -> float:
    started = time.monotonic()
    await run_process([python, "-c", "pass"], tool="bare", timeout_s=30, cwd=directory)
    return time.monotonic() - started


async def _sandboxed(sandbox: LocalSandbox, python: str, directory: Path) -> float:
    started = time.monotonic()
    await sandbox.run(SandboxJob(argv=(python, "-c", "pass"), source=directory))
    return time.monotonic() - started


async def overhead() -> None:
    python = str(sandbox_interpreter())
    sandbox = LocalSandbox()
    directory = EXAMPLES / "acme-weather"
    bare = [await _bare(python, directory) for _ in range(ROUNDS)]
    boxed = [await _sandboxed(sandbox, python, directory) for _ in range(ROUNDS)]
    print(f"isolation: {await sandbox.isolation()}")
    print(f"`python -c pass` bare:      median {statistics.median(bare) * 1000:7.1f} ms")
    print(f"`python -c pass` sandboxed: median {statistics.median(boxed) * 1000:7.1f} ms")
    extra = (statistics.median(boxed) - statistics.median(bare)) * 1000
    print(f"overhead per sandboxed command: {extra:.1f} ms")


def _cache_dir() -> Path:
    # World-traversable, so the unprivileged sandbox uid can run the cached virtualenvs.
    cache = Path(tempfile.mkdtemp(prefix="connector-gate-bench-"))
    cache.chmod(0o755)
    return cache


async def check_timings() -> None:
    cache = _cache_dir()
    rules = Rules(performance=PerformanceRules(duration_s=5, vus=5))
    try:
        for name in ("acme-weather", "leaky-notes"):
            directory = EXAMPLES / name
            context = CheckContext(
                connector=name,
                directory=directory,
                display_path=f"connectors/{name}",
                rules=rules,
                manifest=parse_manifest(directory / "connector.yaml", display_path=name),
                settings=CheckSettings(venv_dir=cache),
            )
            for label in ("cold", "warm"):
                tests = await TestsCheck().run(context)
                perf = await PerformanceCheck().run(context)
                print(
                    f"{name:13} {label}: tests {tests.duration_s:5.2f} s ({tests.conclusion}), "
                    f"performance {perf.duration_s:5.2f} s ({perf.conclusion}, 5 s of load)"
                )
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    asyncio.run(overhead())
    asyncio.run(check_timings())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
