"""Helpers the check tests share: throwaway connectors and everything a result shows."""

from __future__ import annotations

import json
from pathlib import Path

from checks.model import CheckResult


def everything_shown(result: CheckResult) -> str:
    """Every text a result could leak through: repr, messages, ids, details, data."""
    parts = [repr(result), result.summary, result.details, json.dumps(result.data)]
    for f in result.findings:
        parts += [f.message, f.remediation, f.fingerprint, f.finding_id, f.location]
    return "\n".join(parts)


def make_connector(tmp_path: Path, files: dict[str, str]) -> Path:
    """A connector folder `tmp_path/conn` holding `files` (relative path → text)."""
    root = tmp_path / "conn"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
