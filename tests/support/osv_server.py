"""A local OSV-compatible vulnerability service serving stored advisories, with fault modes.

It answers what pip-audit's OSV service sends (`POST <osv-url>` with
`{"package": {"name", "ecosystem": "PyPI"}, "version"}`) using the OSV matching rules: the
advisory's package name (PEP 503-normalised) and either its explicit `versions` list or its
ECOSYSTEM `ranges`. Tests start it with `running_osv_server()`; benchmarks run it with
`python -m tests.support.osv_server --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from aiohttp import web
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

#: The stored advisories (PyPA advisory database, CC-BY 4.0).
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "osv"
#: Path pip-audit posts to when given `--osv-url http://host:port/v1/query`.
QUERY_PATH = "/v1/query"
#: How many received queries are remembered (bounded so a benchmark cannot exhaust memory).
QUERY_MEMORY = 10_000

Advisory = Mapping[str, Any]


class Mode(StrEnum):
    """How the server behaves; the faults let tests see what an unreachable service does."""

    OK = "ok"
    """Answer queries from the advisories."""
    ERROR = "error"
    """Answer every query with HTTP 500."""
    SLOW = "slow"
    """Answer correctly, but only after `delay_s` seconds."""
    GARBAGE = "garbage"
    """Answer 200 with a body that is not JSON (a broken proxy or service)."""


@dataclass(frozen=True, slots=True)
class Query:
    """One query the server received."""

    name: str
    """Package name as sent."""
    version: str
    """Version as sent (empty when the query had none)."""
    ecosystem: str
    """Ecosystem as sent (`PyPI`)."""


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A started server, as tests see it."""

    url: str
    """The URL to pass as pip-audit's `--osv-url` (ends in /v1/query)."""
    queries: deque[Query]
    """Every query received so far, oldest first."""


ADVISORIES: web.AppKey[tuple[Advisory, ...]] = web.AppKey("advisories")
MODE = web.AppKey("mode", Mode)
DELAY_S = web.AppKey("delay_s", float)
QUERIES: web.AppKey[deque[Query]] = web.AppKey("queries")


def load_advisories(directory: Path = FIXTURES) -> tuple[Advisory, ...]:
    """Every `*.json` advisory in `directory`, sorted by file name."""
    return tuple(json.loads(p.read_text("utf-8")) for p in sorted(directory.glob("*.json")))


def _parse_version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _event_version(event: Mapping[str, str]) -> Version:
    # "introduced": "0" means "from the very first release"; Version("0") sorts first.
    return Version(next(iter(event.values())))


def _ends_range(kind: str, bound: str, version: Version) -> bool:
    if kind == "last_affected":
        return version > Version(bound)
    return kind in ("fixed", "limit") and version >= Version(bound)


def events_affect(events: Sequence[Mapping[str, str]], version: Version) -> bool:
    """The OSV evaluation of one range: walk its events in version order."""
    affected = False
    for event in sorted(events, key=_event_version):
        kind, bound = next(iter(event.items()))
        if kind == "introduced" and version >= Version(bound):
            affected = True
        elif _ends_range(kind, bound, version):
            affected = False
    return affected


def _ranges_affect(ranges: Iterable[Mapping[str, Any]], version: Version) -> bool:
    for one in ranges:
        if one.get("type") != "ECOSYSTEM":
            continue  # GIT ranges name commits, not releases
        try:
            if events_affect(one.get("events", ()), version):
                return True
        except InvalidVersion:
            continue  # a range we cannot read does not make a release affected
    return False


def _versions_list_affects(versions: Iterable[str], text: str, version: Version | None) -> bool:
    for listed in versions:
        if listed == text or (version is not None and _parse_version(listed) == version):
            return True
    return False


def affected_entry_matches(entry: Mapping[str, Any], name: str, version_text: str) -> bool:
    """Whether one `affected[]` entry covers `name` at `version_text` (empty: any version)."""
    package = entry.get("package", {})
    if package.get("ecosystem") != "PyPI":
        return False
    if canonicalize_name(package.get("name", "")) != canonicalize_name(name):
        return False
    if not version_text:
        return True
    version = _parse_version(version_text)
    if _versions_list_affects(entry.get("versions", ()), version_text, version):
        return True
    return version is not None and _ranges_affect(entry.get("ranges", ()), version)


def matching_advisories(
    advisories: Iterable[Advisory], name: str, version_text: str
) -> list[Advisory]:
    """The advisories affecting `name` at `version_text`, in the order given."""
    return [
        advisory
        for advisory in advisories
        if any(affected_entry_matches(e, name, version_text) for e in advisory.get("affected", ()))
    ]


def _query_from(body: object) -> Query | None:
    if not isinstance(body, dict) or not isinstance(body.get("package"), dict):
        return None
    package = body["package"]
    name, ecosystem, version = package.get("name"), package.get("ecosystem"), body.get("version")
    if not isinstance(name, str) or not isinstance(ecosystem, str):
        return None
    if version is not None and not isinstance(version, str):
        return None
    return Query(name=name, version=version or "", ecosystem=ecosystem)


async def handle_query(request: web.Request) -> web.Response:
    """`POST /v1/query`: the advisories affecting one package version (`{}` when none)."""
    app = request.app
    if app[MODE] is Mode.ERROR:
        return web.Response(status=500, text="internal error (fault mode)")
    if app[MODE] is Mode.GARBAGE:
        return web.Response(status=200, text="<html>not an OSV answer</html>")
    if app[MODE] is Mode.SLOW:
        await asyncio.sleep(app[DELAY_S])
    try:
        # pip-audit posts JSON without a content type, so the body is read as bytes.
        query = _query_from(json.loads(await request.read()))
    except (json.JSONDecodeError, UnicodeDecodeError):
        query = None
    if query is None:
        return web.json_response({"code": 3, "message": "Invalid query."}, status=400)
    app[QUERIES].append(query)
    if query.ecosystem != "PyPI":
        return web.json_response({})
    advisories = app[ADVISORIES]
    vulns = matching_advisories(advisories, query.name, query.version)
    return web.json_response({"vulns": vulns} if vulns else {})


async def handle_vuln(request: web.Request) -> web.Response:
    """`GET /v1/vulns/{id}`: one advisory by id."""
    wanted = request.match_info["id"]
    for advisory in request.app[ADVISORIES]:
        if advisory.get("id") == wanted:
            return web.json_response(advisory)
    return web.json_response({"code": 5, "message": "Bug not found."}, status=404)


def create_app(
    advisories: Sequence[Advisory] | None = None, *, mode: Mode = Mode.OK, delay_s: float = 5.0
) -> web.Application:
    """The OSV application serving `advisories` (default: the stored fixtures)."""
    app = web.Application()
    app[ADVISORIES] = tuple(load_advisories() if advisories is None else advisories)
    app[MODE] = mode
    app[DELAY_S] = delay_s
    app[QUERIES] = deque(maxlen=QUERY_MEMORY)
    app.router.add_post(QUERY_PATH, handle_query)
    app.router.add_get("/v1/vulns/{id}", handle_vuln)
    return app


@asynccontextmanager
async def running_osv_server(
    advisories: Sequence[Advisory] | None = None,
    *,
    mode: Mode = Mode.OK,
    delay_s: float = 5.0,
    host: str = "127.0.0.1",
) -> AsyncIterator[RunningServer]:
    """Serve on a free loopback port for the duration of the block."""
    app = create_app(advisories, mode=mode, delay_s=delay_s)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield RunningServer(url=f"http://{host}:{port}{QUERY_PATH}", queries=app[QUERIES])
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m tests.support.osv_server --port N [--mode ok|error|slow|garbage]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8087)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--mode", type=Mode, choices=list(Mode), default=Mode.OK)
    parser.add_argument("--delay", type=float, default=5.0, help="seconds, in slow mode")
    args = parser.parse_args(argv)
    app = create_app(load_advisories(args.fixtures), mode=args.mode, delay_s=args.delay)
    print(f"OSV service at http://{args.host}:{args.port}{QUERY_PATH}", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
