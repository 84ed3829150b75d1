"""Run the fake GitHub as a process: `python -m tests.fakegithub --port N --state FILE`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path

from tests.fakegithub.server import FakeGitHub
from tests.fakegithub.standalone import apply_state


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.fakegithub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state", type=Path, help="JSON state file (see standalone.apply_state)")
    parser.add_argument("--public-key", type=Path, required=True, help="App public key (PEM)")
    parser.add_argument("--app-id", type=int, default=1)
    parser.add_argument("--app-slug", default="connector-gate")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    return parser


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeGitHub(
        public_key_pem=args.public_key.read_text(), app_id=args.app_id, app_slug=args.app_slug
    )
    if args.state:
        apply_state(fake, json.loads(args.state.read_text()), args.state.parent)
    url = await fake.start(args.host, args.port)
    if args.port_file:
        args.port_file.write_text(url.rsplit(":", 1)[1])
    print(f"fake github listening on {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
