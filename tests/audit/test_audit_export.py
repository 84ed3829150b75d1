"""`connector-gate audit export` writes the evidence of a repository or pull request."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from pathlib import Path

from bot.storage import AuditEntry, Storage

ROOT = Path(__file__).resolve().parents[2]


async def _record(url: str) -> None:
    storage = Storage.from_url(url)
    await storage.migrate()
    for pr, kind in ((7, "gate.evaluated"), (7, "command.waive"), (8, "gate.evaluated")):
        await storage.append_audit(
            AuditEntry(
                actor="sam",
                kind=kind,
                repo="acme/connectors",
                pr=pr,
                head_sha="c" * 40,
                delivery_id=f"d-{pr}-{kind}",
                detail={"verdict": "pass"},
            )
        )
    await storage.append_audit(AuditEntry(actor="x", kind="gate.evaluated", repo="acme/other"))
    await storage.close()


async def _export(url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "CONNECTOR_GATE_DATABASE_URL": url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "audit",
        "export",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_json_export_of_one_pull_request(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    await _record(url)
    code, out, err = await _export(url, "--repo", "acme/connectors", "--pr", "7")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["pr"], r["kind"]) for r in rows] == [(7, "gate.evaluated"), (7, "command.waive")]
    assert rows[0]["actor"] == "sam" and rows[0]["detail"] == {"verdict": "pass"}


async def test_csv_export_of_a_repository_to_a_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    await _record(url)
    target = tmp_path / "evidence.csv"
    code, _, err = await _export(
        url, "--repo", "acme/connectors", "--format", "csv", "--output", str(target)
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 3
    assert {r["repo"] for r in rows} == {"acme/connectors"}
    assert json.loads(rows[0]["detail"]) == {"verdict": "pass"}


async def test_a_bad_date_is_a_usage_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    await _record(url)
    code, _, err = await _export(url, "--repo", "acme/connectors", "--since", "yesterday")
    assert code == 2
    assert "yesterday" in err and "Traceback" not in err
