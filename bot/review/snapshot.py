"""What a review found for one head commit, stored so later events re-evaluate the gate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.gate.model import ConnectorFacts
from checks.errors import ConfigError
from checks.manifest import manifest_from_document
from checks.manifest_model import Manifest
from checks.model import ConnectorReport
from checks.serialize import report_from_dict, report_to_dict
from checks.yamlload import load_yaml_mapping


@dataclass(frozen=True, slots=True)
class ConnectorSource:
    """A changed connector and its manifest texts (head and base)."""

    name: str
    """Connector name."""
    path: str
    """Directory in the repository."""
    manifest_text: str
    """connector.yaml at the head ("" when absent)."""
    base_manifest_text: str
    """connector.yaml on the base ("" for a new connector)."""


@dataclass(frozen=True, slots=True)
class ReviewSnapshot:
    """The stored outcome of reviewing one head commit of a pull request."""

    head_sha: str
    """Commit reviewed."""
    changed_files: tuple[str, ...]
    """Paths the pull request changes."""
    connectors: tuple[ConnectorSource, ...]
    """Changed connectors."""
    reports: tuple[ConnectorReport, ...]
    """Check results per connector."""
    files_truncated: bool = False
    """GitHub stopped listing the changed files at 3000."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "head_sha": self.head_sha,
                "changed_files": list(self.changed_files),
                "connectors": [_source(c) for c in self.connectors],
                "reports": [report_to_dict(r) for r in self.reports],
                "files_truncated": self.files_truncated,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ReviewSnapshot:
        data: dict[str, Any] = json.loads(text)
        return cls(
            head_sha=data["head_sha"],
            changed_files=tuple(data["changed_files"]),
            connectors=tuple(ConnectorSource(**c) for c in data["connectors"]),
            reports=tuple(report_from_dict(r) for r in data["reports"]),
            files_truncated=bool(data.get("files_truncated", False)),
        )

    def connector_facts(self) -> tuple[ConnectorFacts, ...]:
        return tuple(
            ConnectorFacts(c.name, _manifest(c.manifest_text), _manifest(c.base_manifest_text))
            for c in self.connectors
        )


def _source(source: ConnectorSource) -> dict[str, str]:
    return {
        "name": source.name,
        "path": source.path,
        "manifest_text": source.manifest_text,
        "base_manifest_text": source.base_manifest_text,
    }


def _manifest(text: str) -> Manifest | None:
    if not text:
        return None
    try:
        manifest, errors = manifest_from_document(load_yaml_mapping(text, source="connector.yaml"))
    except ConfigError:
        return None
    return manifest if not errors else None
