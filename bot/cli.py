"""The `connector-gate` command: `check` (local review), `serve` (the App), `audit export`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from checks import cli as check_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connector-gate",
        description="Review connector pull requests: security, tests, performance, approvals.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser("check", help="run the checks on local connector directories")
    check_cli.add_arguments(check)
    serve = commands.add_parser("serve", help="run the GitHub App (webhook server and workers)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 (a server, behind ingress)
    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    export = audit_commands.add_parser("export", help="write the evidence of a repo or PR")
    export.add_argument("--repo", required=True, metavar="OWNER/REPO")
    export.add_argument("--pr", type=int)
    export.add_argument("--since", help="ISO date or time")
    export.add_argument("--until", help="ISO date or time")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--output", "-o")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        return check_cli.run_check_command(args)
    if args.command == "serve":
        from bot.serve_command import run_serve_command

        return run_serve_command(args)
    from bot.audit_command import run_audit_export

    return run_audit_export(args)


if __name__ == "__main__":
    sys.exit(main())
