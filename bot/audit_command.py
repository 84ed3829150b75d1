"""`connector-gate audit export`: the evidence of a repository or pull request, as JSON or CSV."""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import io
import json
import os
import sys
from collections.abc import Sequence

from bot.settings import DEFAULT_DATABASE_URL
from bot.storage import Storage
from bot.storage.models import AuditRecord

CSV_FIELDS = ("id", "at", "kind", "actor", "repo", "pr", "head_sha", "delivery_id", "detail")


def _when(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _row(record: AuditRecord) -> dict[str, object]:
    entry = record.entry
    return {
        "id": record.id,
        "at": record.at.isoformat(),
        "kind": entry.kind,
        "actor": entry.actor,
        "repo": entry.repo,
        "pr": entry.pr,
        "head_sha": entry.head_sha,
        "delivery_id": entry.delivery_id,
        "detail": entry.detail,
    }


def render_audit(records: Sequence[AuditRecord], fmt: str) -> str:
    rows = [_row(r) for r in records]
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "detail": json.dumps(row["detail"], sort_keys=True)})
    return out.getvalue()


async def _records(args: argparse.Namespace) -> list[AuditRecord]:
    url = os.environ.get("CONNECTOR_GATE_DATABASE_URL", DEFAULT_DATABASE_URL)
    storage = Storage.from_url(url)
    try:
        records = await storage.audit_entries(args.repo, args.pr)
    finally:
        await storage.close()
    since, until = _when(args.since), _when(args.until)
    return [
        r for r in records if (since is None or r.at >= since) and (until is None or r.at <= until)
    ]


def run_audit_export(args: argparse.Namespace) -> int:
    try:
        text = render_audit(asyncio.run(_records(args)), args.format)
    except ValueError as exc:
        print(f"connector-gate: error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0
