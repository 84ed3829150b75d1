"""`connector-gate check`: the same review the App runs, on local directories."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from checks.base import CheckSettings
from checks.errors import ConfigError
from checks.model import Conclusion, ConnectorReport
from checks.registry import CHECK_NAMES, select_checks
from checks.report import FORMATS
from checks.report.text import render_text
from checks.rules import load_rules
from checks.runner import Reviewer, discover_targets

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
_PASSING = (Conclusion.SUCCESS, Conclusion.SKIPPED)


def default_cache_dir() -> Path:
    explicit = os.environ.get("CONNECTOR_GATE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "connector-gate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="connector dir(s)")
    parser.add_argument("--rules", type=Path, help="rules file (.github/connector-gate.yml)")
    parser.add_argument("--base", type=Path, help="base version: a connector dir or their parent")
    parser.add_argument("--format", choices=sorted(FORMATS), default="text")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="CHECK",
        help=f"run only these checks (repeatable or comma-separated): {', '.join(CHECK_NAMES)}",
    )
    parser.add_argument(
        "--osv-url",
        default=os.environ.get("CONNECTOR_GATE_OSV_URL", ""),
        help="OSV-compatible endpoint for vulnerability data (env CONNECTOR_GATE_OSV_URL)",
    )
    parser.add_argument("--output", "-o", type=Path, help="write the report here, not stdout")
    parser.add_argument("--no-cache", action="store_true", help="ignore and keep no cache")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache directory")
    parser.add_argument("--timeout", type=float, default=300.0, help="per-check seconds")


class _Progress:
    """A single self-rewriting status line on a terminal's stderr."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._enabled = stream.isatty()

    def __call__(self, done: int, total: int, running: Sequence[str]) -> None:
        if not self._enabled:
            return
        now = ", ".join(sorted(set(running))) or "-"
        self._stream.write(f"\r\x1b[2K{done}/{total} checks done; running: {now}")
        self._stream.flush()

    def clear(self) -> None:
        if self._enabled:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()


def _only(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def run_check_command(args: argparse.Namespace) -> int:
    """Execute a parsed `check` command; return the exit code."""
    try:
        checks = select_checks(_only(args.only))
        rules = load_rules(args.rules)
        if args.rules is not None and not args.rules.is_file():
            raise ConfigError("rules file not found", file=str(args.rules))
        targets = discover_targets(args.paths, base=args.base)
    except ConfigError as exc:
        print(f"connector-gate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"connector-gate: error: --only: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    settings = CheckSettings(osv_url=args.osv_url, timeout_s=args.timeout, cache_dir=cache_dir)
    progress = _Progress(sys.stderr)
    reviewer = Reviewer(checks, rules, settings, progress=progress)
    reports = asyncio.run(reviewer.review(targets))
    progress.clear()
    _emit(reports, args)
    passed = all(r.conclusion in _PASSING for rep in reports for r in rep.results)
    return EXIT_PASS if passed else EXIT_FAIL


def _emit(reports: Sequence[ConnectorReport], args: argparse.Namespace) -> None:
    if args.format == "text":
        colour = args.output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        text = render_text(reports, colour=colour)
    else:
        text = FORMATS[args.format](reports)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
