"""The `dependencies` check: pinned requirements, audited by pip-audit against OSV."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from checks.base import Check, CheckContext
from checks.errors import ToolError
from checks.model import CheckResult, Conclusion, Finding, Severity, new_finding
from checks.policy import could_not_run, result_from_findings
from checks.process import ProcessOutput, run_process
from checks.scrub import scrub

CHECK = "dependencies"
TOOL = "pip-audit"
DEFAULT_REQUIREMENTS = "requirements.txt"
#: pip-audit's own default, named in messages when no URL is configured.
DEFAULT_OSV_URL = "https://api.osv.dev/v1/query"
#: A requirements file above this size is refused rather than parsed.
MAX_REQUIREMENTS_BYTES = 1024 * 1024
#: Longest vulnerability description kept in a finding message.
DESCRIPTION_CHARS = 200

RULE_UNPINNED = "dependencies.unpinned"
RULE_UNSUPPORTED = "dependencies.unsupported-line"
RULE_DUPLICATE = "dependencies.duplicate"

#: Options that only tune how pip installs; they change nothing about what is audited.
_HARMLESS_OPTIONS = frozenset({"--require-hashes", "--prefer-binary", "--only-binary", "--pre"})
#: Why each dangerous option is refused (the rest get a generic reason).
_OPTION_REASONS = {
    "-e": "an editable install runs the project's build code",
    "--editable": "an editable install runs the project's build code",
    "-r": "includes of other files cannot be audited from the connector alone",
    "--requirement": "includes of other files cannot be audited from the connector alone",
    "-c": "constraint files cannot be audited from the connector alone",
    "--constraint": "constraint files cannot be audited from the connector alone",
    "-i": "a custom package index could serve anything under a known name",
    "--index-url": "a custom package index could serve anything under a known name",
    "--extra-index-url": "an extra package index allows dependency confusion",
    "-f": "find-links pulls packages from arbitrary locations",
    "--find-links": "find-links pulls packages from arbitrary locations",
    "--trusted-host": "trusting a host disables TLS verification for it",
}
_OPTION_NAME = re.compile(r"^-{1,2}[A-Za-z][A-Za-z0-9-]*")
_OPTION_START = re.compile(r"(?:^|\s)-{1,2}[A-Za-z]")
_COMMENT = re.compile(r"(?:^|\s+)#.*$")
_HASH = re.compile(r"^(?:sha256|sha384|sha512):[0-9a-fA-F]{32,128}$")
_URL_OR_PATH = re.compile(
    r"://|^[./~\\]|^[A-Za-z]:[\\/]|@|^(?:git|hg|svn|bzr)\+|\.(?:whl|zip|tar\.gz|tar\.bz2|tgz)$",
    re.IGNORECASE,
)

#: Environment variables pip-audit may see; everything else (tokens, keys, app settings) stays out.
_PASSED_ENVIRONMENT = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)

#: Last-line exception names pip-audit dies with when the service cannot be reached.
_UNREACHABLE = (
    (re.compile(r"Connection refused", re.I), "connection refused"),
    (re.compile(r"NameResolutionError|Name or service not known|getaddrinfo", re.I), "DNS failure"),
    (re.compile(r"ReadTimeout|ConnectTimeout|timed out|Could not connect", re.I), "timed out"),
    (re.compile(r"SSLError|CERTIFICATE_VERIFY_FAILED", re.I), "TLS failure"),
    (re.compile(r"ProxyError", re.I), "proxy failure"),
    (re.compile(r"\b(5\d\d) Server Error", re.I), "HTTP {0}"),
    (re.compile(r"requests\.exceptions\.(?:ConnectionError|ChunkedEncodingError)"), "no answer"),
)


class ServiceUnreachableError(ToolError):
    """pip-audit ran but could not get answers from the vulnerability service."""

    def __init__(self, cause: str) -> None:
        super().__init__(TOOL, f"could not reach the vulnerability service: {cause}")
        self.cause = cause


# --- requirements file, parsed without pip --------------------------------------------------


@dataclass(frozen=True, slots=True)
class PinnedRequirement:
    """A requirement pinned to one exact version, safe to hand to pip-audit."""

    name: str
    """Name as written in the file (`Requests`)."""
    canonical_name: str
    """PEP 503 name (`requests`), as pip-audit reports it."""
    version: str
    """The exact pinned version."""
    line: int
    """Line of the requirement (first physical line when continued with `\\`)."""
    requirement: str
    """`name==version` rebuilt from the parsed parts: what pip-audit receives."""
    hashes: tuple[str, ...] = ()
    """Its `--hash` values (`sha256:...`)."""


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A requirements line the check refuses to pass on, and why."""

    line: int
    """Line of the problem."""
    rule_id: str
    """RULE_UNPINNED, RULE_UNSUPPORTED or RULE_DUPLICATE."""
    severity: Severity
    """How serious it is."""
    message: str
    """What is wrong; never quotes option values (they may hold credentials)."""
    remediation: str
    """How to fix it."""
    identity: str
    """Stable identifying fact for the fingerprint: package name, or a digest of the line."""


@dataclass(frozen=True, slots=True)
class ParsedRequirements:
    """A requirements file split into what is audited and what is refused."""

    pinned: tuple[PinnedRequirement, ...]
    """Requirements passed to pip-audit, in file order."""
    problems: tuple[LineProblem, ...]
    """Lines that are never passed to pip-audit."""

    @property
    def all_hashed(self) -> bool:
        """True when every pinned requirement has hashes (pip-audit's --require-hashes mode)."""
        return bool(self.pinned) and all(p.hashes for p in self.pinned)


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line, content) per logical line: comments dropped, `\\` continuations joined."""
    start, pending = 0, ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw)
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined, pending = (pending + line).strip(), ""
        if joined:
            yield start, joined
    if pending.strip():
        yield start, pending.strip()


def line_digest(content: str) -> str:
    """Short hash of a whitespace-normalised line: identifies it without repeating its text."""
    return hashlib.sha256(" ".join(content.split()).encode()).hexdigest()[:16]


def _unsupported(line: int, content: str, message: str, remediation: str) -> LineProblem:
    digest = line_digest(content)
    return LineProblem(line, RULE_UNSUPPORTED, Severity.HIGH, message, remediation, digest)


def _option_problem(line: int, content: str) -> LineProblem | None:
    match = _OPTION_NAME.match(content)
    option = match.group(0) if match else "-"
    if option in _HARMLESS_OPTIONS:
        return None
    reason = _OPTION_REASONS.get(option, "only pinned `name==version` lines can be audited")
    return _unsupported(
        line,
        content,
        f"`{option}` is not allowed in a connector's requirements file: {reason}",
        "list every dependency as `name==version` (optionally with `--hash`) from the public index",
    )


def _split_hashes(line: int, content: str, at: int) -> tuple[tuple[str, ...], LineProblem | None]:
    tokens = content[at:].replace("--hash=", "--hash ").split()
    hashes = tokens[1::2]
    well_formed = tokens[0::2] == ["--hash"] * len(hashes) and len(tokens) == 2 * len(hashes)
    if well_formed and all(_HASH.match(h) for h in hashes):
        return tuple(hashes), None
    return (), _unsupported(
        line,
        content,
        "only `--hash=sha256:<hex>` may follow a requirement (per-requirement options such as "
        "`--config-settings` change how packages are built)",
        "keep just `name==version` and its `--hash` options on the line",
    )


def _read_requirement(line: int, text: str) -> Requirement | LineProblem:
    if _URL_OR_PATH.search(text):
        return _unsupported(
            line,
            text,
            "a requirement pointing at a URL, VCS repository or local path cannot be audited "
            "and its build code would run on install",
            "depend on a released package from the public index, pinned as `name==version`",
        )
    try:
        return Requirement(text)
    except InvalidRequirement:
        return _unsupported(
            line,
            text,
            "this line is not a valid requirement",
            "write it as `name==version`",
        )


def _pin_problem(line: int, req: Requirement) -> LineProblem | None:
    specs = list(req.specifier)
    pinned = len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version
    if pinned:
        return None
    written = scrub(f"{req.name}{req.specifier}")
    return LineProblem(
        line,
        RULE_UNPINNED,
        Severity.MEDIUM,
        f"`{written}` is not pinned to one exact version, so what gets installed can change "
        "without review",
        f"pin it with `==` to the exact version you tested, e.g. `{req.name}==<version>`",
        canonicalize_name(req.name),
    )


def parse_requirement_line(line: int, content: str) -> PinnedRequirement | LineProblem | None:
    """One logical line: a pinned requirement, a problem, or None for a harmless option."""
    if content.startswith("-"):
        return _option_problem(line, content)
    split_at = _OPTION_START.search(content)
    text = content[: split_at.start()].strip() if split_at else content
    hashes, problem = _split_hashes(line, content, split_at.start()) if split_at else ((), None)
    parsed = problem or _read_requirement(line, text)
    if isinstance(parsed, LineProblem):
        return parsed
    return _pin_problem(line, parsed) or _pinned(line, parsed, hashes)


def _pinned(line: int, req: Requirement, hashes: tuple[str, ...]) -> PinnedRequirement:
    version = next(iter(req.specifier)).version
    return PinnedRequirement(
        name=req.name,
        canonical_name=canonicalize_name(req.name),
        version=version,
        line=line,
        # Rebuilt, never copied, so nothing unparsed reaches pip-audit. The marker is dropped on
        # purpose: a pin is audited whatever Python the auditor runs on, so a marker false here
        # but true in production cannot hide a vulnerable release.
        requirement=f"{req.name}=={version}",
        hashes=hashes,
    )


def _duplicate_problem(
    pin: PinnedRequirement, seen: Mapping[str, PinnedRequirement]
) -> LineProblem | None:
    first = seen.get(pin.canonical_name)
    if first is None:
        return None
    return LineProblem(
        pin.line,
        RULE_DUPLICATE,
        Severity.MEDIUM,
        f"`{pin.name}` is already required at line {first.line}; pip-audit refuses "
        "a package listed twice",
        f"keep a single `{pin.canonical_name}==<version>` line",
        f"{pin.canonical_name}:{pin.line}",
    )


def parse_requirements(text: str) -> ParsedRequirements:
    """Split a requirements file into pinned requirements and refused lines (no pip involved)."""
    first_by_name: dict[str, PinnedRequirement] = {}
    kept: list[PinnedRequirement] = []
    problems: list[LineProblem] = []
    for line, content in logical_lines(text):
        parsed = parse_requirement_line(line, content)
        if isinstance(parsed, PinnedRequirement):
            duplicate = _duplicate_problem(parsed, first_by_name)
            if duplicate is not None:
                problems.append(duplicate)
                continue
            first_by_name[parsed.canonical_name] = parsed
            kept.append(parsed)
        elif parsed is not None:
            problems.append(parsed)
    return ParsedRequirements(pinned=tuple(kept), problems=tuple(problems))


def sanitised_requirements(parsed: ParsedRequirements) -> str:
    """The requirements file pip-audit actually reads: only the pinned, rebuilt lines.

    Hashes are kept only when every line has them: pip-audit takes one hash as a demand for
    hashes everywhere, and OSV answers by name and version alone.
    """
    keep_hashes = parsed.all_hashed
    lines = [
        " ".join([p.requirement, *(f"--hash={h}" for h in p.hashes if keep_hashes)])
        for p in parsed.pinned
    ]
    return "".join(f"{line}\n" for line in lines)


# --- pip-audit invocation and output --------------------------------------------------------


def request_timeout_s(check_timeout_s: float) -> int:
    """pip-audit's per-request timeout: a slice of the check's budget, between 1 and 15 s."""
    return max(1, min(15, int(check_timeout_s // 4)))


def pip_audit_argv(
    requirements_file: Path,
    *,
    cache_dir: Path,
    osv_url: str,
    timeout_s: int,
    all_hashed: bool,
    python: str = sys.executable,
) -> list[str]:
    """The pip-audit command line; `--disable-pip` always, so nothing is resolved or installed."""
    # -I: the working directory and PYTHON* variables cannot inject modules into pip-audit.
    argv = [python, "-I", "-m", "pip_audit", "--requirement", str(requirements_file)]
    argv += ["--format", "json", "--progress-spinner", "off", "--vulnerability-service", "osv"]
    if osv_url:
        argv.append(f"--osv-url={osv_url}")
    argv += [f"--timeout={timeout_s}", "--aliases", "on", "--desc", "on"]
    argv += [f"--cache-dir={cache_dir}", "--disable-pip"]
    # Without pip, pip-audit insists on either hashes everywhere or an explicit --no-deps.
    argv.append("--require-hashes" if all_hashed else "--no-deps")
    return argv


def audit_environment(environ: Mapping[str, str], home: Path) -> dict[str, str]:
    """The environment pip-audit runs with: an allowlist, plus a private home and cache."""
    env = {key: environ[key] for key in _PASSED_ENVIRONMENT if key in environ}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "xdg-cache"),
        PYTHONNOUSERSITE="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One advisory pip-audit reported for a dependency."""

    id: str
    """Primary advisory id (`PYSEC-2018-28`)."""
    aliases: tuple[str, ...]
    """Other ids (CVE, GHSA), sorted."""
    fix_versions: tuple[str, ...]
    """Releases that fix it, as the advisory lists them."""
    description: str
    """The advisory's summary or details, on one line."""


@dataclass(frozen=True, slots=True)
class AuditedDependency:
    """One dependency in pip-audit's JSON report."""

    name: str
    """Canonical (PEP 503) name."""
    version: str
    """Audited version (empty when skipped)."""
    vulns: tuple[Vulnerability, ...]
    """Advisories affecting that version."""
    skip_reason: str = ""
    """Why pip-audit did not audit it (empty when audited)."""


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


def _vulnerability(raw: Mapping[str, object]) -> Vulnerability:
    return Vulnerability(
        id=str(raw["id"]),
        aliases=tuple(sorted(_strings(raw.get("aliases", [])))),
        fix_versions=_strings(raw.get("fix_versions", [])),
        description=str(raw.get("description", "")),
    )


def _dependency(raw: Mapping[str, object]) -> AuditedDependency:
    vulns = raw.get("vulns", [])
    if not isinstance(vulns, list):
        raise ValueError("vulns is not a list")
    return AuditedDependency(
        name=str(raw["name"]),
        version=str(raw.get("version", "")),
        vulns=tuple(_vulnerability(v) for v in vulns),
        skip_reason=str(raw.get("skip_reason", "")),
    )


def parse_audit_json(stdout: str) -> tuple[AuditedDependency, ...]:
    """pip-audit's `--format json` report as dataclasses; ValueError when it is not one."""
    document = json.loads(stdout)
    if not isinstance(document, dict) or not isinstance(document.get("dependencies"), list):
        raise ValueError("not a pip-audit JSON report")
    try:
        return tuple(_dependency(d) for d in document["dependencies"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed dependency entry: {exc}") from exc


def unreachable_cause(stderr: str) -> str:
    """Why the service could not be reached, from pip-audit's stderr; empty when it could."""
    # Only unindented lines: exception and log messages, not the source lines of a traceback.
    messages = [line for line in stderr.splitlines() if line and not line[0].isspace()]
    tail = "\n".join(messages[-20:])
    for pattern, cause in _UNREACHABLE:
        match = pattern.search(tail)
        if match:
            return cause.format(*match.groups())
    return ""


def read_audit_output(output: ProcessOutput) -> tuple[AuditedDependency, ...]:
    """Decide from the output, not the exit code (1 means both "found" and "crashed")."""
    try:
        return parse_audit_json(output.stdout.decode("utf-8", "replace"))
    except ValueError:
        pass  # no report: find out why below
    cause = unreachable_cause(output.stderr.decode("utf-8", "replace"))
    if cause:
        raise ServiceUnreachableError(cause)
    raise ToolError(
        TOOL,
        f"exited with status {output.returncode} without a report",
        stderr_tail=output.stderr_tail(),
    )


# --- findings -------------------------------------------------------------------------------


def _version_or_none(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def remediation_for(name: str, version: str, fix_versions: Sequence[str]) -> str:
    """`upgrade to name>=X`, X the lowest fix above the pinned version."""
    fixes = sorted(v for v in map(_version_or_none, fix_versions) if v is not None)
    current = _version_or_none(version)
    above = [f for f in fixes if current is None or f > current]
    if above or fixes:
        return f"upgrade to {name}>={(above or fixes)[0]}"
    return f"no fixed release is known: remove {name} or replace it"


def _short(description: str) -> str:
    text = " ".join(description.split())
    if len(text) <= DESCRIPTION_CHARS:
        return text
    return text[: DESCRIPTION_CHARS - 1].rsplit(" ", 1)[0] + "…"


def vulnerability_finding(
    pin: PinnedRequirement, vuln: Vulnerability, *, path: str, connector: str
) -> Finding:
    """The finding for one advisory affecting one pinned requirement."""
    aliases = f" ({', '.join(vuln.aliases)})" if vuln.aliases else ""
    description = f": {_short(vuln.description)}" if vuln.description else ""
    return new_finding(
        check=CHECK,
        rule_id=vuln.id,
        severity=Severity.HIGH,
        path=path,
        line=pin.line,
        message=scrub(f"{pin.name} {pin.version} is affected by {vuln.id}{aliases}{description}"),
        remediation=remediation_for(pin.name, pin.version, vuln.fix_versions),
        identity=(pin.canonical_name, vuln.id),
        connector=connector,
        finding_id=vuln.id,
        aliases=vuln.aliases,
    )


def problem_finding(problem: LineProblem, *, path: str, connector: str) -> Finding:
    """The finding for a refused requirements line."""
    return new_finding(
        check=CHECK,
        rule_id=problem.rule_id,
        severity=problem.severity,
        path=path,
        line=problem.line,
        message=problem.message,
        remediation=problem.remediation,
        identity=(problem.identity,),
        connector=connector,
    )


def vulnerability_findings(
    parsed: ParsedRequirements,
    audited: Sequence[AuditedDependency],
    *,
    path: str,
    connector: str,
) -> list[Finding]:
    """One finding per (requirement, advisory) pip-audit reported."""
    by_name = {p.canonical_name: p for p in reversed(parsed.pinned)}
    findings = []
    for dependency in audited:
        pin = by_name.get(canonicalize_name(dependency.name))
        if pin is None:
            continue  # not one of ours; cannot happen with --no-deps, but never guess a line
        findings += [
            vulnerability_finding(pin, vuln, path=path, connector=connector)
            for vuln in dependency.vulns
        ]
    return findings


# --- the check ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequirementsSource:
    """Where the requirements came from, or why they could not be read."""

    relative: str
    """Path inside the connector directory (empty when none)."""
    text: str
    """File content (empty when unreadable)."""
    refusal: CheckResult | None = None
    """The result to return instead of auditing, when the file cannot be used."""


def _requirements_name(context: CheckContext) -> str | None:
    if context.manifest is not None:
        return context.manifest.requirements or DEFAULT_REQUIREMENTS
    # No valid manifest: audit the conventional file when there is one.
    return DEFAULT_REQUIREMENTS if (context.directory / DEFAULT_REQUIREMENTS).is_file() else None


def _refuse(relative: str, conclusion: Conclusion, reason: str) -> RequirementsSource:
    return RequirementsSource(relative, "", could_not_run(CHECK, conclusion, reason))


def read_requirements(context: CheckContext) -> RequirementsSource:
    """Read the requirements file, refusing paths outside the connector and oversized files."""
    relative = _requirements_name(context)
    if relative is None:
        return _refuse("", Conclusion.NEUTRAL, "no requirements file")
    root = context.directory.resolve()
    path = (root / relative).resolve()
    shown = context.show(relative)
    if not path.is_relative_to(root):
        # Named as written: show() would make `../x` look like a path inside the connector.
        reason = f"requirements path {scrub(relative)} is outside the connector"
        return _refuse(relative, Conclusion.FAILURE, reason)
    if not path.is_file():
        return _refuse(relative, Conclusion.FAILURE, f"requirements file {shown} does not exist")
    if path.stat().st_size > MAX_REQUIREMENTS_BYTES:
        return _refuse(relative, Conclusion.FAILURE, f"{shown} is over 1 MiB")
    try:
        return RequirementsSource(relative, path.read_text("utf-8"))
    except UnicodeDecodeError:
        return _refuse(relative, Conclusion.FAILURE, f"{shown} is not UTF-8 text")


def _write_private_file(path: Path, text: str) -> None:
    path.write_text(text, "utf-8")


async def run_pip_audit(
    parsed: ParsedRequirements, *, osv_url: str, timeout_s: float
) -> tuple[AuditedDependency, ...]:
    """Audit the pinned requirements with pip-audit in a private directory; raise ToolError."""
    with tempfile.TemporaryDirectory(prefix="connector-gate-audit-") as scratch:
        home = Path(scratch)
        requirements = home / "requirements.txt"
        _write_private_file(requirements, sanitised_requirements(parsed))
        argv = pip_audit_argv(
            requirements,
            cache_dir=home / "cache",
            osv_url=osv_url,
            timeout_s=request_timeout_s(timeout_s),
            all_hashed=parsed.all_hashed,
        )
        env = audit_environment(os.environ, home)
        output = await run_process(argv, tool=TOOL, timeout_s=timeout_s, cwd=home, env=env)
        return read_audit_output(output)


def _audit_failure(exc: ToolError, url: str) -> CheckResult:
    if isinstance(exc, ServiceUnreachableError):
        reason = f"could not reach the vulnerability service at {url}: {exc.cause}"
        return could_not_run(CHECK, Conclusion.NEUTRAL, reason)
    if "timed out" in exc.message:
        # A whole run past its budget is almost always a slow or silent service.
        reason = f"could not reach the vulnerability service at {url}: {TOOL} {exc.message}"
        return could_not_run(CHECK, Conclusion.NEUTRAL, reason)
    return could_not_run(CHECK, Conclusion.ERROR, scrub(str(exc)))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _conclude(
    context: CheckContext,
    parsed: ParsedRequirements,
    audited: Sequence[AuditedDependency],
    findings: Sequence[Finding],
    url: str,
) -> CheckResult:
    count = len(parsed.pinned)
    clean = "no pinned requirements to audit"
    details = ""
    if count:
        clean = f"{_plural(count, 'pinned requirement')} audited, no known vulnerabilities"
        details = f"Audited {_plural(count, 'pinned requirement')} with {TOOL} against {url}."
    skipped = [f"{d.name} ({d.skip_reason})" for d in audited if d.skip_reason]
    if skipped:
        details += f" Not audited: {scrub(', '.join(skipped))}."
    vulns = sum(len(d.vulns) for d in audited)
    data: dict[str, object] = {"audited": count, "vulnerabilities": vulns, "service": url}
    return result_from_findings(
        CHECK, findings, context.rules, clean_summary=clean, details=details, data=data
    )


@dataclass(frozen=True, slots=True)
class AuditPlan:
    """One connector's requirements, ready to audit."""

    context: CheckContext
    parsed: ParsedRequirements
    path: str
    findings: tuple[Finding, ...]


def plan_audit(context: CheckContext) -> AuditPlan | CheckResult:
    source = read_requirements(context)
    if source.refusal is not None:
        return source.refusal
    parsed = parse_requirements(source.text)
    path = context.show(source.relative)
    problems = tuple(
        problem_finding(p, path=path, connector=context.connector) for p in parsed.problems
    )
    return AuditPlan(context, parsed, path, problems)


def audit_groups(plans: Sequence[AuditPlan]) -> list[list[AuditPlan]]:
    """Plans grouped so no group pins one package at two versions (pip-audit refuses that)."""
    groups: list[tuple[dict[str, str], list[AuditPlan]]] = []
    for plan in plans:
        pins = {p.canonical_name: p.version for p in plan.parsed.pinned}
        for versions, members in groups:
            if all(versions.get(name, version) == version for name, version in pins.items()):
                versions.update(pins)
                members.append(plan)
                break
        else:
            groups.append((dict(pins), [plan]))
    return [members for _, members in groups]


def merged_requirements(group: Sequence[AuditPlan]) -> ParsedRequirements:
    """The union of a group's pins, each package once."""
    seen: dict[str, PinnedRequirement] = {}
    for plan in group:
        for pin in plan.parsed.pinned:
            seen.setdefault(pin.canonical_name, pin)
    return ParsedRequirements(pinned=tuple(seen.values()), problems=())


def _own(plan: AuditPlan, audited: Sequence[AuditedDependency]) -> tuple[AuditedDependency, ...]:
    pins = {(p.canonical_name, p.version) for p in plan.parsed.pinned}
    return tuple(d for d in audited if (canonicalize_name(d.name), d.version) in pins)


class DependenciesCheck(Check):
    """Refuses unpinned or unsafe requirement lines and audits the rest with pip-audit."""

    name = CHECK
    version = "1"

    async def run(self, context: CheckContext) -> CheckResult:
        return (await self.run_many([context]))[0]

    async def run_many(self, contexts: Sequence[CheckContext]) -> list[CheckResult]:
        """pip-audit spends most of its time starting: one run audits every connector's pins."""
        plans = [plan_audit(c) for c in contexts]
        todo = [p for p in plans if isinstance(p, AuditPlan) and p.parsed.pinned]
        groups = audit_groups(todo)
        # Groups are independent (they differ only in conflicting pins): audit them at once.
        outcomes = await asyncio.gather(*(self._audit(group) for group in groups))
        audits = {
            id(p): outcome for group, outcome in zip(groups, outcomes, strict=True) for p in group
        }
        return [
            p if isinstance(p, CheckResult) else self._finish(p, audits.get(id(p), ()))
            for p in plans
        ]

    @staticmethod
    async def _audit(group: Sequence[AuditPlan]) -> tuple[AuditedDependency, ...] | ToolError:
        settings = group[0].context.settings
        try:
            return await run_pip_audit(
                merged_requirements(group), osv_url=settings.osv_url, timeout_s=settings.timeout_s
            )
        except ToolError as exc:
            return exc

    @staticmethod
    def _finish(plan: AuditPlan, audited: tuple[AuditedDependency, ...] | ToolError) -> CheckResult:
        url = scrub(plan.context.settings.osv_url or DEFAULT_OSV_URL)
        if isinstance(audited, ToolError):
            return _audit_failure(audited, url)
        own = _own(plan, audited)
        findings = [
            *plan.findings,
            *vulnerability_findings(
                plan.parsed, own, path=plan.path, connector=plan.context.connector
            ),
        ]
        return _conclude(plan.context, plan.parsed, own, findings, url)
