"""Machine-readable JSON report."""

from __future__ import annotations

import json
from collections.abc import Sequence

from checks.model import ConnectorReport, worst_conclusion
from checks.serialize import SCHEMA_VERSION, report_to_dict


def render_json(reports: Sequence[ConnectorReport]) -> str:
    document = {
        "schema_version": SCHEMA_VERSION,
        "tool": "connector-gate",
        "conclusion": str(worst_conclusion(r.conclusion for r in reports)),
        "connectors": [report_to_dict(r) for r in reports],
    }
    return json.dumps(document, indent=2, sort_keys=False) + "\n"
