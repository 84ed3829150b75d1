"""`connector-gate serve`: settings from the environment, then the App until SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys

from bot.app import serve
from bot.dispatch import handler_factory
from bot.intake.link import IntakeError
from bot.settings import Settings, SettingsError
from bot.storage import StorageError


def run_serve_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"connector-gate: cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        serve(settings, args.port, host=args.host, handler_factory=handler_factory)
    except (StorageError, IntakeError) as exc:
        # The database, the delivery writer or the port could not be opened: the cause only.
        print(f"connector-gate: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
