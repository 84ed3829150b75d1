"""The secrets check: detect-secrets over every file of a connector; values stay in memory.

detect-secrets runs as a library, with its default plugins and filters, in a worker thread
behind a module-level lock (its settings are process-global), or for big trees in one worker
process per CPU, as its own CLI does. Live verification against
third-party services is switched off. Found values never leave this module except through
`SecretsScan.values` / `find_secret_values`, which exist so the runner can hand them to the
scrubber for other tools' output; they are not part of any result, message or fingerprint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from checks.base import Check, CheckContext
from checks.errors import ConfigError, ToolError
from checks.model import CheckResult, Conclusion, Finding, Severity, new_finding
from checks.policy import could_not_run, result_from_findings
from checks.process import run_process
from checks.scrub import scrub

CHECK = "secrets"
TOOL = "detect-secrets"

#: Text files above this size are reported (low) instead of scanned: a generated blob of
#: megabytes is where a scan would spend its whole budget.
MAX_SCAN_BYTES = 2 * 1024 * 1024

#: Accepted findings, in detect-secrets' baseline format, relative to the connector directory.
BASELINE_FILE = ".secrets.baseline"

#: A baseline bigger than this is refused rather than parsed.
MAX_BASELINE_BYTES = 5 * 1024 * 1024

#: The detect-secrets filter whose presence makes plugins call their `verify()` (network).
VERIFICATION_FILTER = "detect_secrets.filters.common.is_ignored_due_to_verification_policies"

RULE_TOO_LARGE = "secrets.file-too-large"

#: From this much text on, the scan is spread over worker processes (below, spawning them
#: costs more than it saves).
PARALLEL_MIN_BYTES = 256 * 1024

#: Bytes read to tell a binary file (a NUL byte in them) from text.
_SNIFF_BYTES = 8192

#: Version control metadata is not connector content.
_SKIPPED_DIRS = frozenset({".git"})

#: detect-secrets keeps its plugins and filters in process-global settings: one scan at a time.
_SETTINGS_LOCK = threading.Lock()

REMEDIATION = (
    "Remove the value from the code and rotate it (assume it is compromised once pushed); "
    "read it from the environment or a secrets manager at run time. If it is not a secret, "
    "mark the line with `# pragma: allowlist secret` or add it to `.secrets.baseline`."
)


@dataclass(frozen=True, slots=True)
class SecretHit:
    """One potential secret, described without its value."""

    type: str
    """detect-secrets' secret type (`AWS Access Key`, `GitHub Token`...)."""
    path: str
    """File path relative to the connector directory, with `/` separators."""
    line: int
    """1-based line where it was found."""
    identity: str
    """sha256 over the type and detect-secrets' SHA-1 of the value: stable, reveals neither."""


@dataclass(frozen=True, slots=True)
class SecretsScan:
    """What one scan of a connector directory found."""

    hits: tuple[SecretHit, ...]
    """Potential secrets not accepted by the baseline, ordered by path and line."""
    too_large: tuple[str, ...] = ()
    """Text files skipped for exceeding MAX_SCAN_BYTES (relative paths)."""
    files_scanned: int = 0
    """Files handed to detect-secrets."""
    binaries_skipped: int = 0
    """Files skipped because they look binary."""
    accepted_by_baseline: int = 0
    """Potential secrets found but listed in `.secrets.baseline`."""
    values: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    """Every secret value found (including baseline-accepted ones), for the scrubber only.

    Kept out of repr and comparisons so it cannot slip into logs or test output; never store
    or serialise it.
    """


@dataclass(frozen=True, slots=True)
class _Files:
    """The connector's files sorted by how they are treated."""

    text: tuple[str, ...]
    text_bytes: int
    too_large: tuple[str, ...]
    binaries: int


def secret_identity(secret_type: str, hashed_secret: str) -> str:
    """Hash of (type, SHA-1 of the value) so neither the value nor its SHA-1 is exposed."""
    return hashlib.sha256(f"{secret_type}\x00{hashed_secret}".encode()).hexdigest()


def _walk(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            yield Path(root, name)


def _is_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\x00" in handle.read(_SNIFF_BYTES)


def _sort_files(directory: Path) -> _Files:
    text: list[str] = []
    too_large: list[str] = []
    binaries = text_bytes = 0
    for path in _walk(directory):
        relative = path.relative_to(directory).as_posix()
        # Symlinks could point outside the connector; the baseline file holds only hashes.
        if path.is_symlink() or not path.is_file() or relative == BASELINE_FILE:
            continue
        if _is_binary(path):
            binaries += 1
        elif (size := path.stat().st_size) > MAX_SCAN_BYTES:
            too_large.append(relative)
        else:
            text.append(relative)
            text_bytes += size
    return _Files(tuple(text), text_bytes, tuple(too_large), binaries)


def _baseline_entries(data: object) -> Mapping[str, list[Mapping[str, object]]]:
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ConfigError("not a detect-secrets baseline (no `results` object)", file=BASELINE_FILE)
    results: dict[str, list[Mapping[str, object]]] = data["results"]
    for name, items in results.items():
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ConfigError("results must be lists of objects", file=BASELINE_FILE, key=name)
    return results


#: (path relative to the connector, secret type, detect-secrets hashed_secret) triples.
Baseline = frozenset[tuple[str, str, str]]


def load_baseline(directory: Path) -> Baseline:
    """(path, type, hashed_secret) accepted by the connector's `.secrets.baseline`, if any.

    Only the `results` are read, through detect-secrets' own loader. The baseline's
    `plugins_used` / `filters_used` are deliberately ignored: they may name `file://` plugins
    or filters (code execution), switch plugins off, or turn network verification on, and the
    file comes from the pull request. Entries audited as real secrets (`is_secret: true`) are
    not accepted: an audit that confirms a secret is no reason to let it through.
    """
    path = directory / BASELINE_FILE
    if path.is_symlink() or not path.is_file():
        return frozenset()
    if path.stat().st_size > MAX_BASELINE_BYTES:
        raise ConfigError(f"larger than {MAX_BASELINE_BYTES} bytes", file=BASELINE_FILE)
    from detect_secrets.core.secrets_collection import SecretsCollection  # see _scan_files

    try:
        entries = _baseline_entries(json.loads(path.read_bytes()))
        collection = SecretsCollection.load_from_baseline({"results": entries})
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"unreadable baseline ({type(exc).__name__})", file=BASELINE_FILE
        ) from exc
    return frozenset(
        (filename, secret.type, secret.secret_hash)
        for filename, secrets in collection.data.items()
        for secret in secrets
        if secret.is_secret is not True
    )


@dataclass(frozen=True, slots=True)
class _RawSecret:
    """A detect-secrets hit reduced to plain data (it crosses the worker's JSON pipe)."""

    path: str
    type: str
    hashed: str
    line: int
    value: str = field(repr=False)


def _scan_files(root: str, files: Sequence[str]) -> list[_RawSecret]:
    """Scan `files` (relative to `root`) with default plugins and filters, never verifying.

    Runs in a worker thread, or in a worker process (`python -m checks.secrets`); either way it
    holds that process's settings lock for the whole pass.
    """
    # Imported here: detect-secrets (with requests and urllib3) costs ~0.1 s to import, which a
    # run served from the cache, or a `--only` run without this check, should not pay.
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    with _SETTINGS_LOCK, default_settings() as settings:
        # Defence in depth: default settings do not verify, and nothing may turn it on here.
        settings.disable_filters(VERIFICATION_FILTER)
        collection = SecretsCollection(root=root)
        # File by file: `SecretsCollection.scan_files` forks a multiprocessing pool per call,
        # which is unsafe in a threaded server; big trees go to our worker processes instead.
        for relative in files:
            collection.scan_file(relative)
        return [
            _RawSecret(Path(name).as_posix(), s.type, s.secret_hash, s.line_number, s.secret_value)
            for name, found in collection.data.items()
            for s in found
            if s.secret_value
        ]


def _balanced_chunks(directory: Path, files: Sequence[str], count: int) -> list[list[str]]:
    chunks: list[list[str]] = [[] for _ in range(count)]
    loads = [0] * count
    sizes = {f: (directory / f).stat().st_size for f in files}
    for name in sorted(files, key=sizes.__getitem__, reverse=True):
        lightest = loads.index(min(loads))
        chunks[lightest].append(name)
        loads[lightest] += sizes[name]
    return [c for c in chunks if c]


def _workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def _parse_worker_output(stdout: bytes) -> list[_RawSecret]:
    try:
        rows = json.loads(stdout)
        return [_RawSecret(str(p), str(t), str(h), int(n), str(v)) for p, t, h, n, v in rows]
    except (ValueError, TypeError) as exc:
        raise ToolError(TOOL, f"worker returned unreadable output ({type(exc).__name__})") from exc


async def _scan_in_worker(root: Path, files: Sequence[str], timeout_s: float) -> list[_RawSecret]:
    """Scan `files` in a fresh interpreter running this module (`python -m checks.secrets`)."""
    request = json.dumps({"root": str(root), "files": list(files)}).encode()
    output = await run_process(
        [sys.executable, "-P", "-m", __spec__.name if __spec__ else "checks.secrets"],
        tool=TOOL,
        timeout_s=timeout_s,
        env=_worker_env(),
        stdin=request,
    )
    if output.returncode != 0:
        raise ToolError(
            TOOL, f"worker exited with {output.returncode}", stderr_tail=output.stderr_tail()
        )
    return _parse_worker_output(output.stdout)


def _worker_env() -> dict[str, str]:
    # Only what an interpreter needs: the bot's own credentials stay out of the worker.
    package_root = str(Path(__file__).resolve().parent.parent)
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": package_root, "LANG": "C.UTF-8"}


async def _detect(directory: Path, files: _Files, timeout_s: float) -> list[_RawSecret]:
    """Every potential secret in the text files; big trees are spread over one process per CPU.

    detect-secrets is CPU-bound pure Python, so more threads would not help. Small trees stay
    in one worker thread: starting interpreters costs more than scanning a connector. Worker
    processes are plain subprocesses (not multiprocessing) so that no entry point of ours has
    to be re-importable, and each gets its own detect-secrets settings.
    """
    workers = _workers()
    if files.text_bytes < PARALLEL_MIN_BYTES or workers == 1 or len(files.text) < 2:
        return await asyncio.to_thread(_scan_files, str(directory), files.text)
    chunks = _balanced_chunks(directory, files.text, workers)
    parts = await asyncio.gather(*(_scan_in_worker(directory, c, timeout_s) for c in chunks))
    return [raw for part in parts for raw in part]


def _assemble(files: _Files, accepted: Baseline, raws: Sequence[_RawSecret]) -> SecretsScan:
    hits: list[SecretHit] = []
    for raw in raws:
        if (raw.path, raw.type, raw.hashed) not in accepted:
            hits.append(
                SecretHit(raw.type, raw.path, raw.line, secret_identity(raw.type, raw.hashed))
            )
    return SecretsScan(
        hits=tuple(sorted(hits, key=lambda h: (h.path, h.line, h.type))),
        too_large=files.too_large,
        files_scanned=len(files.text),
        binaries_skipped=files.binaries,
        accepted_by_baseline=len(raws) - len(hits),
        values=frozenset(raw.value for raw in raws),
    )


async def scan_secrets(directory: Path, *, timeout_s: float = 300.0) -> SecretsScan:
    """Scan every file of `directory` off the event loop.

    Raises ConfigError for an unreadable `.secrets.baseline`, ToolError when a worker process
    fails, OSError when the directory cannot be read.
    """
    files = await asyncio.to_thread(_sort_files, directory)
    accepted = await asyncio.to_thread(load_baseline, directory)
    raws = await _detect(directory, files, timeout_s)
    return _assemble(files, accepted, raws)


async def find_secret_values(directory: Path, *, timeout_s: float = 300.0) -> frozenset[str]:
    """The secret values in `directory`, in memory only, to pass to `scrub(known_secrets=...)`.

    A runner that also wants the check's result can scan once with `scan_secrets`, then call
    `result_from_scan` and read `.values`, instead of scanning twice.
    """
    return (await scan_secrets(directory, timeout_s=timeout_s)).values


def _hit_finding(context: CheckContext, hit: SecretHit) -> Finding:
    shown = context.show(hit.path)
    return new_finding(
        check=CHECK,
        rule_id=hit.type,
        severity=Severity.HIGH,
        path=shown,
        line=hit.line,
        message=f"Possible {hit.type} in {shown} line {hit.line}",
        remediation=REMEDIATION,
        identity=(hit.identity,),
        connector=context.connector,
    )


def _too_large_finding(context: CheckContext, relative: str) -> Finding:
    shown = context.show(relative)
    limit_mib = MAX_SCAN_BYTES // (1024 * 1024)
    return new_finding(
        check=CHECK,
        rule_id=RULE_TOO_LARGE,
        severity=Severity.LOW,
        path=shown,
        line=0,
        message=f"{shown} is larger than {limit_mib} MiB: file too large to scan for secrets",
        remediation="Keep generated or bulky data out of the connector, or split the file.",
        connector=context.connector,
    )


def result_from_scan(context: CheckContext, scan: SecretsScan) -> CheckResult:
    """The check's verdict on one scan (pure: no value of `scan.values` is used)."""
    findings = [
        *(_hit_finding(context, hit) for hit in scan.hits),
        *(_too_large_finding(context, path) for path in scan.too_large),
    ]
    details = (
        f"detect-secrets scanned {scan.files_scanned} file(s); "
        f"{scan.binaries_skipped} binary file(s) skipped; "
        f"{scan.accepted_by_baseline} potential secret(s) accepted by `{BASELINE_FILE}`."
    )
    return result_from_findings(
        CHECK,
        findings,
        context.rules,
        clean_summary=f"no secrets in {scan.files_scanned} file(s)",
        details=details,
        data={
            "files_scanned": scan.files_scanned,
            "binaries_skipped": scan.binaries_skipped,
            "too_large": len(scan.too_large),
            "accepted_by_baseline": scan.accepted_by_baseline,
        },
    )


class SecretsCheck(Check):
    """Potential secrets (keys, tokens, passwords) written into the connector's files."""

    name = CHECK
    version = "1"

    async def run(self, context: CheckContext) -> CheckResult:
        started = time.monotonic()
        try:
            scan = await scan_secrets(context.directory, timeout_s=context.settings.timeout_s)
        except ConfigError as exc:
            return could_not_run(CHECK, Conclusion.ERROR, f"{TOOL}: {exc}")
        except ToolError as exc:
            return could_not_run(CHECK, Conclusion.ERROR, str(exc))
        except OSError as exc:
            reason = scrub(f"cannot read the connector's files: {exc.strerror or exc}")
            return could_not_run(CHECK, Conclusion.ERROR, f"{TOOL}: {reason}")
        context.known_secrets.update(scan.values)
        result = result_from_scan(context, scan)
        return dataclasses.replace(result, duration_s=time.monotonic() - started)


def _worker_main() -> None:
    """Worker process: scan the files named on stdin, print the raw hits as JSON on stdout."""
    request = json.load(sys.stdin)
    raws = _scan_files(str(request["root"]), [str(f) for f in request["files"]])
    json.dump([[r.path, r.type, r.hashed, r.line, r.value] for r in raws], sys.stdout)


if __name__ == "__main__":
    _worker_main()
