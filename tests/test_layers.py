"""The layers keep their direction: shell → pure core → checks, never back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Top-level packages each layer must never import.
FORBIDDEN = {
    "checks": ("bot", "aiohttp", "gidgethub", "sqlalchemy", "asyncpg", "aiosqlite", "jwt"),
    "bot/gate": ("aiohttp", "gidgethub", "sqlalchemy", "bot.storage", "bot.review", "bot.routes"),
    "bot/render": ("aiohttp", "gidgethub", "sqlalchemy", "bot.storage", "bot.review", "bot.routes"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_layer_imports_only_inward(folder: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(folder)
        for name in _imports(path)
        for banned in FORBIDDEN[folder]
        if name == banned or name.startswith(f"{banned}.")
    ]
    assert not offenders, "\n".join(offenders)


def test_the_gate_core_does_no_io() -> None:
    """Evaluation and rendering are pure: no network, files or subprocesses."""
    io_modules = ("asyncio", "subprocess", "socket", "urllib.request", "http.client")
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in ("bot/gate", "bot/render")
        for path in _modules(folder)
        for name in _imports(path)
        if name in io_modules
    ]
    assert not offenders, "\n".join(offenders)


def test_the_intake_process_loads_none_of_the_workers_code() -> None:
    """The process GitHub talks to stays small: no ORM, no key handling, no review code."""
    loaded = _loaded_by_import("bot.intake.__main__")
    heavy = {"sqlalchemy", "alembic", "cryptography", "jwt", "gidgethub", "jinja2", "yaml"}
    assert not loaded & heavy


def test_the_writer_process_loads_only_what_it_runs() -> None:
    """Run by path with -I -S: the standard library, and not even its heavier parts."""
    script = ROOT / "bot" / "storage" / "sqlite_ingest.py"
    # With no arguments it prints its usage after its imports; -X importtime lists them.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    loaded = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "sqlite3" in loaded
    assert not loaded & {"typing", "dataclasses", "logging", "concurrent", "bot"}


def _loaded_by_import(module: str) -> set[str]:
    code = (
        f"import {module}, sys; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(result.stdout.split())
