"""Renderings of connector reports for people and machines: text, json, markdown, sarif."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from checks.model import ConnectorReport
from checks.report.jsonout import render_json
from checks.report.markdown import render_markdown
from checks.report.sarif import render_sarif
from checks.report.text import render_text

FORMATS: dict[str, Callable[[Sequence[ConnectorReport]], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
    "sarif": render_sarif,
}

__all__ = ["FORMATS", "render_json", "render_markdown", "render_sarif", "render_text"]
