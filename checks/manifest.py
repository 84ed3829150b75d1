"""The `manifest` check: connector.yaml parsed strictly, then held to the repository rules."""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import hashlib
import os
import re
import shlex
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import TypeVar
from urllib.parse import urlsplit

from checks.base import Check, CheckContext
from checks.errors import ConfigError
from checks.manifest_model import (
    AUTH_TYPES,
    DATA_CLASSIFICATIONS,
    MANIFEST_FILE,
    Auth,
    Manifest,
    PerformanceSpec,
    SecretSpec,
    Slo,
    TestsSpec,
)
from checks.model import CheckResult, Conclusion, Finding, Severity, new_finding
from checks.policy import result_from_findings
from checks.rules_model import RULES_PATH
from checks.scrub import scrub
from checks.yamlload import (
    MISSING,
    UnknownKeyError,
    YamlDocument,
    as_choice,
    as_int,
    as_list,
    as_mapping,
    as_number,
    as_str,
    as_str_list,
    check_keys,
    describe,
    read_optional,
    read_required,
    read_yaml_mapping,
    unknown_key_errors,
)

T = TypeVar("T")

CHECK = "manifest"
DOCS = "docs/manifest.md"

_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_NAME_MAX = 64
_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    rf"(?:-({_IDENT}(?:\.{_IDENT})*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_OWNER = re.compile(r"@[A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9][A-Za-z0-9_.-]*)?")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.IGNORECASE)
_HOST_MAX = 253

#: Directories left behind by running a connector; they do not count as a change to it.
_GENERATED = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".venv"})


# ---------------------------------------------------------------------------------------------
# Semantic versions


_SemverKey = tuple[tuple[int, int, int], int, tuple[tuple[int, int, str], ...]]


def semver_key(version: str) -> _SemverKey:
    """Sort key giving semver 2.0.0 precedence; build metadata is ignored.

    The middle element puts a release after its pre-releases (`1.0.0-rc.1` < `1.0.0`); the
    last compares pre-release identifiers: numbers numerically and below any text, and a
    shorter list of equal identifiers first.
    """
    match = _SEMVER.fullmatch(version)
    if match is None:
        raise ValueError(f"not a semantic version: {version!r}")
    core = (int(match[1]), int(match[2]), int(match[3]))
    if match[4] is None:
        return core, 1, ()
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in match[4].split("."))
    return core, 0, parts


def is_semver(version: str) -> bool:
    """Whether `version` is a strict semantic version (`1.2.0`, `2.0.0-rc.1+build.5`)."""
    return _SEMVER.fullmatch(version) is not None


# ---------------------------------------------------------------------------------------------
# Parsing: every schema error is collected, so one run reports them all


_TOP_KEYS = (
    "name",
    "version",
    "description",
    "owners",
    "auth",
    "data_classification",
    "egress",
    "secrets",
    "requirements",
    "runbook",
    "tests",
    "performance",
)


def parse_manifest(path: Path, *, display_path: str) -> Manifest:
    """The manifest at `path`; the first problem is raised as a ConfigError (file, line, key)."""
    manifest, errors = read_manifest(path, display_path=display_path)
    if manifest is None:
        raise errors[0]
    return manifest


def load_manifest_or_none(directory: Path | None) -> Manifest | None:
    """The connector's manifest when present and schema-valid, else None (the check says why)."""
    if directory is None:
        return None
    try:
        return parse_manifest(directory / MANIFEST_FILE, display_path=MANIFEST_FILE)
    except ConfigError:
        return None


def read_manifest(
    path: Path, *, display_path: str
) -> tuple[Manifest | None, tuple[ConfigError, ...]]:
    """The manifest and no errors, or None and every schema error found.

    File-level problems (missing, too big, binary, not UTF-8, not YAML) raise ConfigError.
    """
    doc = read_yaml_mapping(path, source=display_path)
    return manifest_from_document(doc)


def manifest_from_document(doc: YamlDocument) -> tuple[Manifest | None, tuple[ConfigError, ...]]:
    """Validate a loaded document against the manifest schema."""
    fields = _Fields(doc)
    manifest = Manifest(
        name=fields.read("name", _name, ""),
        version=fields.read("version", _version, ""),
        description=fields.read("description", as_str, ""),
        owners=fields.read("owners", _owners, ()),
        auth=fields.read("auth", _auth, Auth(type="none")),
        data_classification=fields.read("data_classification", _classification, ""),
        egress=fields.read("egress", _egress, ()),
        secrets=fields.read("secrets", _secrets, ()),
        requirements=fields.read("requirements", _relative_file, ""),
        runbook=fields.read("runbook", _relative_file, ""),
        tests=fields.read("tests", _tests, TestsSpec(), required=False),
        performance=fields.read("performance", _performance, None, required=False),
        lines=dict(doc.lines),
    )
    if fields.errors:
        return None, tuple(fields.errors)
    return manifest, ()


class _Fields:
    """Reads top-level fields, collecting every error instead of stopping at the first."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.errors: list[ConfigError] = list(unknown_key_errors(doc, "", doc.data, _TOP_KEYS))

    def read(
        self,
        key: str,
        reader: Callable[[YamlDocument, str, object], T],
        fallback: T,
        *,
        required: bool = True,
    ) -> T:
        raw = self.doc.data.get(key, MISSING)
        if raw is MISSING and not required:
            return fallback
        if raw is MISSING:
            self.errors.append(self._missing(key))
            return fallback
        try:
            return reader(self.doc, key, raw)
        except ConfigError as exc:
            self.errors.append(exc)
            return fallback

    def _missing(self, key: str) -> ConfigError:
        unknown = [k for k in self.doc.data if k not in _TOP_KEYS]
        typo = difflib.get_close_matches(key, unknown, n=1, cutoff=0.6)
        hint = ""
        if typo:
            hint = f" ('{typo[0]}' at line {self.doc.line_of(typo[0])} may be a misspelling)"
        return self.doc.error(key, f"required key is missing{hint}")


def _name(doc: YamlDocument, path: str, value: object) -> str:
    name = as_str(doc, path, value)
    if not _NAME.fullmatch(name) or len(name) > _NAME_MAX:
        raise doc.error(
            path,
            f"'{name}' is not a lowercase slug (a-z, 0-9 and single hyphens, "
            f"at most {_NAME_MAX} characters)",
        )
    return name


def _version(doc: YamlDocument, path: str, value: object) -> str:
    if not isinstance(value, str):
        raise doc.error(
            path, f"expected a semantic version such as 1.2.0, got {describe(value)} (quote it)"
        )
    if not is_semver(value):
        raise doc.error(path, f"'{value}' is not a semantic version (MAJOR.MINOR.PATCH)")
    return value


def _owners(doc: YamlDocument, path: str, value: object) -> tuple[str, ...]:
    owners = as_str_list(doc, path, value)
    if not owners:
        raise doc.error(path, "must name at least one owner")
    for i, owner in enumerate(owners):
        if not _OWNER.fullmatch(owner):
            raise doc.error(f"{path}.{i}", f"'{owner}' is not @user or @org/team")
    return owners


def _auth(doc: YamlDocument, path: str, value: object) -> Auth:
    auth = as_mapping(doc, path, value)
    check_keys(doc, path, auth, ("type", "scopes"))
    return Auth(
        type=read_required(doc, path, auth, "type", _auth_type),
        scopes=read_optional(doc, path, auth, "scopes", as_str_list, ()),
    )


def _auth_type(doc: YamlDocument, path: str, value: object) -> str:
    return as_choice(doc, path, value, AUTH_TYPES)


def _classification(doc: YamlDocument, path: str, value: object) -> str:
    return as_choice(doc, path, value, DATA_CLASSIFICATIONS)


def _egress(doc: YamlDocument, path: str, value: object) -> tuple[str, ...]:
    entries = as_str_list(doc, path, value)
    for i, entry in enumerate(entries):
        if any(c.isspace() for c in entry):
            raise doc.error(f"{path}.{i}", "an egress entry must not contain spaces")
    return entries


def _secrets(doc: YamlDocument, path: str, value: object) -> tuple[SecretSpec, ...]:
    items = as_list(doc, path, value)
    secrets = tuple(_secret(doc, f"{path}.{i}", item) for i, item in enumerate(items))
    seen: set[str] = set()
    for i, secret in enumerate(secrets):
        if secret.name in seen:
            raise doc.error(f"{path}.{i}.name", f"secret {secret.name} is declared twice")
        seen.add(secret.name)
    return secrets


def _secret(doc: YamlDocument, path: str, value: object) -> SecretSpec:
    item = as_mapping(doc, path, value)
    check_keys(doc, path, item, ("name", "rotation_days"))
    return SecretSpec(
        name=read_required(doc, path, item, "name", _env_name),
        rotation_days=read_required(doc, path, item, "rotation_days", _positive_int),
    )


def _env_name(doc: YamlDocument, path: str, value: object) -> str:
    name = as_str(doc, path, value)
    if not _ENV_NAME.fullmatch(name):
        # The value is not echoed: someone may have pasted the secret itself here.
        raise doc.error(path, "must be an environment variable name in UPPER_SNAKE_CASE")
    return name


def _positive_int(doc: YamlDocument, path: str, value: object) -> int:
    return as_int(doc, path, value, minimum=1)


def _relative_file(doc: YamlDocument, path: str, value: object) -> str:
    """A path inside the connector: relative, forward slashes, no `..`."""
    text = as_str(doc, path, value)
    parts = PurePosixPath(text).parts
    if text.startswith("/") or "\\" in text or "\x00" in text or ".." in parts:
        raise doc.error(path, f"'{text}' must be a relative path inside the connector")
    return str(PurePosixPath(text))


def _command(doc: YamlDocument, path: str, value: object) -> str:
    text = as_str(doc, path, value)
    try:
        shlex.split(text)
    except ValueError as exc:
        raise doc.error(path, f"cannot be split into arguments: {exc}") from None
    return text


def _tests(doc: YamlDocument, path: str, value: object) -> TestsSpec:
    tests = as_mapping(doc, path, value)
    check_keys(doc, path, tests, ("command",))
    return TestsSpec(command=read_optional(doc, path, tests, "command", _command, "pytest"))


def _performance(doc: YamlDocument, path: str, value: object) -> PerformanceSpec:
    perf = as_mapping(doc, path, value)
    check_keys(doc, path, perf, ("start", "ready", "script", "slo"))
    return PerformanceSpec(
        start=read_required(doc, path, perf, "start", _start),
        ready=read_required(doc, path, perf, "ready", _ready),
        script=read_required(doc, path, perf, "script", _relative_file),
        slo=read_required(doc, path, perf, "slo", _slo),
    )


def _start(doc: YamlDocument, path: str, value: object) -> str:
    command = _command(doc, path, value)
    if "{port}" not in command:
        raise doc.error(path, "must contain {port}, where the service is told its port")
    return command


def _ready(doc: YamlDocument, path: str, value: object) -> str:
    ready = as_str(doc, path, value)
    if not ready.startswith("/") or any(c.isspace() for c in ready):
        raise doc.error(path, f"'{ready}' must be an HTTP path starting with /")
    return ready


def _slo(doc: YamlDocument, path: str, value: object) -> Slo:
    slo = as_mapping(doc, path, value)
    check_keys(doc, path, slo, ("p95_ms", "error_rate", "min_rps"))
    return Slo(
        p95_ms=read_required(doc, path, slo, "p95_ms", _p95),
        error_rate=read_required(doc, path, slo, "error_rate", _error_rate),
        min_rps=read_required(doc, path, slo, "min_rps", _min_rps),
    )


def _p95(doc: YamlDocument, path: str, value: object) -> float:
    number = as_number(doc, path, value)
    if number <= 0:
        raise doc.error(path, f"must be greater than 0, got {value}")
    return number


def _error_rate(doc: YamlDocument, path: str, value: object) -> float:
    number = as_number(doc, path, value)
    if not 0 <= number < 1:
        raise doc.error(path, f"must be a share from 0 up to (not including) 1, got {value}")
    return number


def _min_rps(doc: YamlDocument, path: str, value: object) -> float:
    number = as_number(doc, path, value)
    if number < 0:
        raise doc.error(path, f"must be at least 0, got {value}")
    return number


# ---------------------------------------------------------------------------------------------
# Policy: a schema-valid manifest held to the rules and to the files beside it


@dataclasses.dataclass(frozen=True, slots=True)
class _Reporter:
    """Builds this check's findings, all located in the connector's manifest."""

    context: CheckContext
    manifest: Manifest | None = None

    def finding(
        self,
        rule: str,
        severity: Severity,
        key: str,
        message: str,
        remediation: str,
        *,
        subject: str = "",
    ) -> Finding:
        """A finding at `key`'s line; `subject` (a scope, a host) keeps its id stable when
        list items move, so a waiver keeps applying."""
        line = self.manifest.line_of(key) if self.manifest and key else 0
        unindexed = ".".join(part for part in key.split(".") if not part.isdigit())
        identity = (unindexed, subject) if subject else (key,)
        return self.at_line(rule, severity, line, identity, message, remediation)

    def at_line(
        self,
        rule: str,
        severity: Severity,
        line: int,
        identity: tuple[str, ...],
        message: str,
        remediation: str,
    ) -> Finding:
        return new_finding(
            check=CHECK,
            rule_id=rule,
            severity=severity,
            path=self.context.show(MANIFEST_FILE),
            line=line,
            message=scrub(message),
            remediation=scrub(remediation),
            identity=identity,
            connector=self.context.connector,
        )


def policy_findings(manifest: Manifest, context: CheckContext) -> list[Finding]:
    """Findings of a schema-valid manifest against the rules and the connector's files."""
    report = _Reporter(context, manifest)
    return [
        *_name_findings(report, manifest),
        *_version_findings(report, manifest),
        *_scope_findings(report, manifest),
        *_egress_findings(report, manifest),
        *_rotation_findings(report, manifest),
        *_file_findings(report, manifest),
    ]


def _name_findings(report: _Reporter, manifest: Manifest) -> Iterator[Finding]:
    directory = report.context.connector
    if manifest.name != directory:
        yield report.finding(
            "manifest.name-mismatch",
            Severity.HIGH,
            "name",
            f"name '{manifest.name}' differs from the directory name '{directory}'",
            f"Set `name: {directory}` or rename the directory to match.",
        )


def _version_findings(report: _Reporter, manifest: Manifest) -> Iterator[Finding]:
    context = report.context
    base = context.base_manifest
    if base is None or not is_semver(base.version):
        return  # a new connector, or nothing valid to compare with
    if context.base_directory is not None and not tree_changed(
        context.directory, context.base_directory
    ):
        return
    if semver_key(manifest.version) > semver_key(base.version):
        return
    verb = "is lower than" if semver_key(manifest.version) < semver_key(base.version) else "equals"
    yield report.finding(
        "manifest.version-not-increased",
        Severity.MEDIUM,
        "version",
        f"the connector changed but version {manifest.version} {verb} the base "
        f"branch's {base.version}",
        f"Raise `version` above {base.version} (semver: patch for fixes, minor for features, "
        "major for breaking changes).",
    )


def _scope_findings(report: _Reporter, manifest: Manifest) -> Iterator[Finding]:
    auth = manifest.auth
    allowed = report.context.rules.manifest.allowed_scopes.get(auth.type)
    for i, scope in enumerate(auth.scopes):
        if allowed is not None and ("*" in allowed or scope in allowed):
            continue
        if allowed is None:
            message = (
                f"scope '{scope}' is requested, but the rules allow no scopes for "
                f"auth type {auth.type}"
            )
        else:
            listed = ", ".join(allowed) or "none"
            message = (
                f"scope '{scope}' is not allowed for auth type {auth.type} (allowed: {listed})"
            )
        yield report.finding(
            "manifest.scope-not-allowed",
            Severity.HIGH,
            f"auth.scopes.{i}",
            message,
            "Request only the scopes the connector needs (least privilege). If this one is "
            f"needed, add it to manifest.allowed_scopes.{auth.type} in {RULES_PATH} "
            "with the security team's review.",
            subject=scope,
        )


def _egress_findings(report: _Reporter, manifest: Manifest) -> Iterator[Finding]:
    denied = report.context.rules.manifest.denied_egress
    for i, entry in enumerate(manifest.egress):
        yield from _egress_entry_findings(report, f"egress.{i}", entry, denied)


def _egress_entry_findings(
    report: _Reporter, key: str, entry: str, denied: tuple[str, ...]
) -> Iterator[Finding]:
    if "*" in entry:
        yield report.finding(
            "manifest.egress-wildcard",
            Severity.HIGH,
            key,
            f"egress '{entry}' uses a wildcard, allowing calls to hosts nobody reviewed",
            "List each host the connector calls by its full name.",
            subject=entry,
        )
        return
    scheme, host, has_credentials = split_egress(entry)
    if has_credentials:
        yield report.finding(
            "manifest.egress-credentials",
            Severity.HIGH,
            key,
            "egress entry embeds credentials in the URL",
            "Remove the user name and password from the URL; declare the secret under "
            "`secrets` and read it from the environment.",
            subject=entry,
        )
    if scheme and scheme != "https":
        yield report.finding(
            "manifest.egress-not-https",
            Severity.HIGH,
            key,
            f"egress to {host or entry} uses {scheme}://, which is not encrypted",
            f"Use https://{host or '<host>'} (or the bare host name, which means https).",
            subject=entry,
        )
    yield from _egress_host_findings(report, key, entry, host, denied)


def _egress_host_findings(
    report: _Reporter, key: str, entry: str, host: str, denied: tuple[str, ...]
) -> Iterator[Finding]:
    if not host or len(host) > _HOST_MAX or not _HOST.fullmatch(host):
        yield report.finding(
            "manifest.egress-invalid",
            Severity.HIGH,
            key,
            f"egress '{entry}' is not a host name or an https URL",
            "Write a host name (`api.example.com`, optionally `:port`) or an https:// URL.",
            subject=entry,
        )
        return
    glob = next((g for g in denied if fnmatch(host.lower(), g.lower())), None)
    if glob is not None:
        yield report.finding(
            "manifest.egress-denied",
            Severity.HIGH,
            key,
            f"egress to {host} matches '{glob}', which the rules deny",
            "Connectors may not call this host; remove it or ask the security team.",
            subject=entry,
        )


def split_egress(entry: str) -> tuple[str, str, bool]:
    """(scheme or '', host, whether the URL embeds credentials) of an egress entry."""
    if "://" in entry:
        try:
            parts = urlsplit(entry)
            host = parts.hostname or ""
            _ = parts.port  # raises on a malformed port
        except ValueError:
            return entry.split("://", 1)[0].lower(), "", False
        has_credentials = parts.username is not None or parts.password is not None
        return parts.scheme.lower(), host, has_credentials
    host, _, port = entry.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return "", "", False
    return "", host, False


def _rotation_findings(report: _Reporter, manifest: Manifest) -> Iterator[Finding]:
    limit = report.context.rules.manifest.max_rotation_days
    for i, secret in enumerate(manifest.secrets):
        if secret.rotation_days > limit:
            yield report.finding(
                "manifest.secret-rotation",
                Severity.MEDIUM,
                f"secrets.{i}.rotation_days",
                f"secret {secret.name} rotates every {secret.rotation_days} days; the rules "
                f"allow at most {limit}",
                f"Set rotation_days to {limit} or less and rotate the secret that often.",
                subject=secret.name,
            )


def _file_findings(report: _Reporter, manifest: Manifest) -> Iterator[Finding]:
    wanted = [
        ("requirements", manifest.requirements, "manifest.requirements-missing", Severity.HIGH),
        ("runbook", manifest.runbook, "manifest.runbook-missing", Severity.MEDIUM),
    ]
    if manifest.performance is not None:
        script = manifest.performance.script
        wanted.append(("performance.script", script, "manifest.script-missing", Severity.MEDIUM))
    for key, relative, rule, severity in wanted:
        yield from _one_file(report, key, relative, rule, severity)


def _one_file(
    report: _Reporter, key: str, relative: str, rule: str, severity: Severity
) -> Iterator[Finding]:
    root = report.context.directory.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        yield report.finding(
            "manifest.path-escape",
            Severity.HIGH,
            key,
            f"`{key}` ({relative}) resolves outside the connector directory",
            "Keep the file inside the connector and do not point symbolic links outside it.",
        )
    elif not target.is_file():
        yield report.finding(
            rule,
            severity,
            key,
            f"`{key}` names {relative}, which does not exist in the connector",
            f"Add {relative} to the connector, or point `{key}` at the right file.",
        )


def tree_changed(directory: Path, base_directory: Path) -> bool:
    """Whether two connector trees differ in any file's path, content or link target."""
    return _tree_hashes(directory) != _tree_hashes(base_directory)


def _tree_hashes(root: Path) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _GENERATED)
        # os.walk lists symlinked directories without entering them: record them as links.
        names = [*files, *(d for d in dirs if Path(folder, d).is_symlink())]
        for name in names:
            if not name.endswith(".pyc"):
                path = Path(folder, name)
                hashes[path.relative_to(root).as_posix()] = _file_hash(path)
    return hashes


def _file_hash(path: Path) -> str:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return "link:" + os.readlink(path)
    if not stat.S_ISREG(mode):
        return f"special:{stat.S_IFMT(mode)}"  # never opened: a FIFO would block the read
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# The check


def manifest_findings(context: CheckContext) -> tuple[list[Finding], Manifest | None]:
    """Every finding about the connector's manifest, and the manifest when schema-valid."""
    path = context.directory / MANIFEST_FILE
    report = _Reporter(context)
    if not os.path.lexists(path):
        return [_missing_finding(report)], None
    try:
        manifest, errors = read_manifest(path, display_path=context.show(MANIFEST_FILE))
    except ConfigError as exc:
        return [_error_finding(report, "manifest.unreadable", exc)], None
    if manifest is None:
        return [_schema_finding(report, exc) for exc in errors], None
    return policy_findings(manifest, context), manifest


def _missing_finding(report: _Reporter) -> Finding:
    return report.at_line(
        "manifest.missing",
        Severity.HIGH,
        0,
        (),
        f"the connector has no {MANIFEST_FILE}",
        f"Add {MANIFEST_FILE} to the connector directory; see {DOCS}.",
    )


def _schema_finding(report: _Reporter, exc: ConfigError) -> Finding:
    rule = "manifest.unknown-key" if isinstance(exc, UnknownKeyError) else "manifest.schema"
    return _error_finding(report, rule, exc)


def _error_finding(report: _Reporter, rule: str, exc: ConfigError) -> Finding:
    message = f"`{exc.key}`: {exc.message}" if exc.key else exc.message
    remediation = {
        "manifest.unknown-key": f"Remove or rename `{exc.key}`; every valid key is in {DOCS}.",
        "manifest.unreadable": f"Make {MANIFEST_FILE} a small UTF-8 YAML mapping; see {DOCS}.",
    }.get(rule, f"Fix `{exc.key}` as described in {DOCS}.")
    # The key path only: values may be anything someone pasted, secrets included.
    return report.at_line(rule, Severity.HIGH, exc.line, (exc.key,), message, remediation)


def _summary_data(manifest: Manifest | None, context: CheckContext) -> Mapping[str, object]:
    if manifest is None:
        return {"valid": False}
    base = context.base_manifest
    return {
        "valid": True,
        "name": manifest.name,
        "version": manifest.version,
        "base_version": base.version if base else None,
        "auth_type": manifest.auth.type,
        "data_classification": manifest.data_classification,
    }


class ManifestCheck(Check):
    """Validates connector.yaml: schema, version bump, least privilege, egress, files."""

    name = CHECK
    version = "1"

    async def run(self, context: CheckContext) -> CheckResult:
        started = time.monotonic()
        findings, manifest = await asyncio.to_thread(manifest_findings, context)
        result = result_from_findings(
            CHECK,
            findings,
            context.rules,
            clean_summary=f"{MANIFEST_FILE} is valid and within the rules",
            data=_summary_data(manifest, context),
        )
        if manifest is None:
            result = _unusable(result)
        return dataclasses.replace(result, duration_s=time.monotonic() - started)


def _unusable(result: CheckResult) -> CheckResult:
    """A manifest that cannot be read fails whatever the thresholds: other checks depend on it."""
    findings = tuple(dataclasses.replace(f, blocking=True, waived_by="") for f in result.findings)
    first = findings[0]
    return dataclasses.replace(
        result,
        conclusion=Conclusion.FAILURE,
        findings=findings,
        summary=f"{MANIFEST_FILE} is invalid: {first.location}: {first.message}",
    )
