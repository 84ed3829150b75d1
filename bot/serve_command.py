"""`connector-gate serve`: settings from the environment, then the App until SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys

from bot.app import serve
from bot.dispatch import handler_factory
from bot.settings import Settings, SettingsError


def run_serve_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"connector-gate: cannot start: {exc}", file=sys.stderr)
        return 2
    serve(settings, args.port, host=args.host, handler_factory=handler_factory)
    return 0
