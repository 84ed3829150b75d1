"""The static check: bandit over the connector's Python, plus plain `http://` endpoints."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import ipaddress
import json
import os
import re
import sys
import time
import tokenize
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from checks.base import Check, CheckContext
from checks.errors import ToolError
from checks.model import CheckResult, Conclusion, Finding, Severity, new_finding
from checks.policy import could_not_run, result_from_findings
from checks.process import run_process
from checks.rules_model import StaticRules
from checks.scrub import scrub

CHECK = "static"
TOOL = "bandit"
RULE_PLAIN_HTTP = "static.plain-http"
RULE_UNPARSED = "static.unparsed-file"

#: `-I`: the connector directory is bandit's cwd, and a `bandit.py` in it must not be imported
#: in place of bandit (nor PYTHON* variables honoured).
DEFAULT_BANDIT = (sys.executable, "-I", "-m", "bandit")

#: Directories bandit skips by default, and so do we.
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "CVS", "__pycache__", ".tox", ".eggs"})
_TEST_DIRS = frozenset({"tests", "test"})

_BANDIT_LEVEL = {
    Severity.INFO: "low",
    Severity.LOW: "low",
    Severity.MEDIUM: "medium",
    Severity.HIGH: "high",
    Severity.CRITICAL: "high",
}
_SEVERITY = {"LOW": Severity.LOW, "MEDIUM": Severity.MEDIUM, "HIGH": Severity.HIGH}

#: Rules whose bandit text quotes the offending value (a hard-coded password): never echoed.
_QUOTES_VALUE = frozenset({"B105", "B106", "B107"})

_HASH_FIX = (
    "Use hashlib.sha256 or stronger; for passwords use a key-derivation function "
    "(hashlib.scrypt, argon2, bcrypt). If the hash is not for security, pass "
    "usedforsecurity=False."
)
_SHELL_FIX = (
    "Pass an argument list without shell=True (subprocess.run([...])) and never build a "
    "command line from input."
)
_CREDENTIAL_FIX = (
    "Read the credential from the environment or the connector's declared secrets at run "
    "time, and rotate the value that was committed."
)
_PICKLE_FIX = "Do not unpickle data you did not produce; exchange JSON or another data format."

#: How to fix the common findings; others point to bandit's documentation.
REMEDIATIONS: Mapping[str, str] = {
    "B501": (
        "Keep TLS certificate verification on: drop verify=False (pass verify=<CA bundle path> "
        "when the service uses a private CA)."
    ),
    "B324": _HASH_FIX,
    "B303": _HASH_FIX,
    "B602": _SHELL_FIX,
    "B604": _SHELL_FIX,
    "B605": _SHELL_FIX,
    "B506": "Use yaml.safe_load (or yaml.load with Loader=yaml.SafeLoader).",
    "B301": _PICKLE_FIX,
    "B403": _PICKLE_FIX,
    "B105": _CREDENTIAL_FIX,
    "B106": _CREDENTIAL_FIX,
    "B107": _CREDENTIAL_FIX,
    "B104": "Bind to 127.0.0.1 or a configured address rather than all interfaces (0.0.0.0).",
    "B113": "Pass an explicit timeout= to every requests call so a slow service cannot hang it.",
    "B307": "Avoid eval(); use ast.literal_eval for data, or parse the input explicitly.",
    "B608": "Use parameterised queries instead of building SQL from strings.",
    "B108": "Use tempfile.mkstemp / tempfile.TemporaryDirectory instead of a fixed /tmp path.",
    "B311": "Use the secrets module for tokens, passwords and anything security-related.",
}


@dataclass(frozen=True, slots=True)
class BanditIssue:
    """One entry of bandit's `results`."""

    test_id: str
    """Bandit rule id (`B501`)."""
    severity: Severity
    """Bandit's severity, in our scale."""
    text: str
    """Bandit's issue text, unscrubbed (may quote a hard-coded password)."""
    cwe: int
    """CWE number, 0 when bandit gives none."""
    path: str
    """File path relative to the connector directory."""
    line: int
    """Line bandit points at."""
    code_line: str
    """Source of that line, taken from bandit's `code` excerpt, unscrubbed."""
    more_info: str
    """Bandit's documentation URL for the rule."""


@dataclass(frozen=True, slots=True)
class BanditReport:
    """Bandit's JSON report, parsed."""

    issues: tuple[BanditIssue, ...]
    """Issues at or above the thresholds, minus `# nosec` lines."""
    errors: tuple[tuple[str, str], ...]
    """(relative path, reason) of files bandit could not analyse."""
    nosec: int
    """`# nosec` markers bandit saw (ignored: see `bandit_argv`)."""
    nosec_by_file: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """The same count per file, so a report over several connectors can be split."""

    def under(self, prefix: str) -> BanditReport:
        """The part of the report about files below `prefix/`, with paths made relative."""
        if not prefix:
            return self
        head = f"{prefix}/"
        issues = tuple(
            dataclasses.replace(i, path=i.path.removeprefix(head))
            for i in self.issues
            if i.path.startswith(head)
        )
        errors = tuple((p.removeprefix(head), r) for p, r in self.errors if p.startswith(head))
        nosec = {
            p.removeprefix(head): n for p, n in self.nosec_by_file.items() if p.startswith(head)
        }
        return BanditReport(issues, errors, sum(nosec.values()), nosec)


@dataclass(frozen=True, slots=True)
class HttpUse:
    """A plain `http://` URL in a string of the code."""

    path: str
    """File path relative to the connector directory."""
    line: int
    """Line of the URL."""
    url: str
    """The URL as written (unscrubbed: it may carry credentials)."""

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


# --- which files ------------------------------------------------------------------------------


def is_test_file(relative: str) -> bool:
    """Tests are not shipped code: `tests/` or `test/` dirs, `test_*.py`, `*_test.py`."""
    parts = relative.split("/")
    name = parts[-1]
    return (
        any(part in _TEST_DIRS for part in parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def python_files(directory: Path, include_tests: bool) -> list[str]:
    """Python files of the connector (relative, sorted), symlinks not followed."""
    found: list[str] = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(root, name)
            relative = path.relative_to(directory).as_posix()
            if not name.endswith((".py", ".pyw")) or path.is_symlink():
                continue
            if include_tests or not is_test_file(relative):
                found.append(relative)
    return found


# --- bandit -----------------------------------------------------------------------------------


def bandit_argv(command: Sequence[str], rules: StaticRules, files: Sequence[str]) -> list[str]:
    """Bandit's command line: explicit files (see `StaticCheck`), JSON, thresholds."""
    return [
        *command,
        "-f",
        "json",
        "-q",
        "--severity-level",
        _BANDIT_LEVEL[rules.severity],
        "--confidence-level",
        _BANDIT_LEVEL[rules.confidence],
        # The PR's author must not be able to silence the gate with `# nosec`: accepted
        # findings go through the rules' ignore list or a reviewer's waiver instead.
        "--ignore-nosec",
        # No path exclusions: we chose the files; bandit's own are substring matches.
        "-x",
        "",
        "--",
        *files,
    ]


def _relative(filename: object) -> str:
    return str(filename).removeprefix("./")


def _code_line(code: object, line: int) -> str:
    """The line numbered `line` in bandit's excerpt (`"19  text\\n20  text"`)."""
    for row in str(code or "").splitlines():
        number, _, text = row.partition(" ")
        if number == str(line):
            return text
    return ""


def _issue(raw: Mapping[str, object]) -> BanditIssue:
    cwe = raw.get("issue_cwe")
    line = int(str(raw["line_number"]))
    return BanditIssue(
        test_id=str(raw["test_id"]),
        severity=_SEVERITY.get(str(raw.get("issue_severity", "")).upper(), Severity.LOW),
        text=str(raw.get("issue_text", "")),
        cwe=int(cwe.get("id", 0) or 0) if isinstance(cwe, dict) else 0,
        path=_relative(raw["filename"]),
        line=line,
        code_line=_code_line(raw.get("code"), line),
        more_info=str(raw.get("more_info", "")),
    )


def parse_bandit_json(stdout: bytes) -> BanditReport:
    """Bandit's `-f json` output as a BanditReport; ToolError when it is not that."""
    try:
        data = json.loads(stdout)
        issues = tuple(_issue(raw) for raw in data["results"])
        errors = tuple((_relative(e["filename"]), str(e["reason"])) for e in data["errors"])
        metrics = data.get("metrics", {})
        per_file = {
            _relative(name): int(m.get("nosec", 0))
            for name, m in metrics.items()
            if name != "_totals" and isinstance(m, dict)
        }
        totals = metrics.get("_totals", {})
        return BanditReport(issues, errors, int(totals.get("nosec", 0)), per_file)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ToolError(TOOL, f"unreadable JSON output ({type(exc).__name__})") from exc


async def run_bandit(
    command: Sequence[str],
    directory: Path,
    files: Sequence[str],
    rules: StaticRules,
    timeout_s: float,
) -> BanditReport:
    """Run bandit over `files` (relative to `directory`); ToolError unless it reported."""
    output = await run_process(
        bandit_argv(command, rules, files),
        tool=TOOL,
        timeout_s=timeout_s,
        cwd=directory,
        env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
    )
    # 0: nothing found, 1: issues found; anything else is bandit failing.
    if output.returncode not in (0, 1):
        reason = f"exited with {output.returncode}"
        raise ToolError(TOOL, reason, stderr_tail=output.stderr_tail())
    try:
        return parse_bandit_json(output.stdout)
    except ToolError as exc:
        raise ToolError(TOOL, exc.message, stderr_tail=output.stderr_tail()) from exc


# --- plain http:// ----------------------------------------------------------------------------

_HTTP_URL = re.compile(r"""http://[^\s'"`<>()\[\]{}\\]+|http://\[[0-9a-fA-F:.]+\][^\s'"`<>]*""")

#: Hosts that name XML namespaces and schemas: identifiers, never fetched.
NAMESPACE_HOSTS = frozenset(
    {
        "www.w3.org",
        "w3.org",
        "schemas.xmlsoap.org",
        "schemas.openxmlformats.org",
        "schemas.microsoft.com",
        "schemas.android.com",
        "purl.org",
        "ns.adobe.com",
        "xmlns.com",
        "www.opengis.net",
        "docs.oasis-open.org",
        "www.sitemaps.org",
        "json-schema.org",
    }
)


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _is_namespace(url: str, before: str, line_text: str) -> bool:
    # `{http://ns}tag` is ElementTree's notation; `xmlns="http://..."` declares a namespace.
    host = urlsplit(url).hostname or ""
    return host in NAMESPACE_HOSTS or before.endswith("{") or "xmlns" in line_text


_STATEMENT_EDGES = frozenset(
    {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
)


def _string_tokens(source: str) -> Iterator[tokenize.TokenInfo]:
    """String literals of the code, minus bare string statements (docstrings)."""
    tokens = [
        t
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type not in (tokenize.NL, tokenize.COMMENT)
    ]
    i = 0
    while i < len(tokens):
        if tokens[i].type != tokenize.STRING:
            i += 1
            continue
        end = i  # adjacent literals ("a" "b") form one expression
        while end + 1 < len(tokens) and tokens[end + 1].type == tokenize.STRING:
            end += 1
        starts = i == 0 or tokens[i - 1].type in _STATEMENT_EDGES
        ends = end + 1 >= len(tokens) or tokens[end + 1].type in _STATEMENT_EDGES
        if not (starts and ends):
            yield from tokens[i : end + 1]
        i = end + 1


def _urls_in(text: str, first_line: int, lines: Sequence[str]) -> Iterator[tuple[int, str]]:
    for match in _HTTP_URL.finditer(text):
        url = match.group(0).rstrip(".,;:")
        line = first_line + text.count("\n", 0, match.start())
        line_text = lines[line - 1] if 0 < line <= len(lines) else ""
        host = urlsplit(url).hostname or ""
        if not host or _is_local(host):
            continue
        if not _is_namespace(url, text[: match.start()], line_text):
            yield line, url


def find_plain_http(relative: str, source: str) -> list[HttpUse]:
    """Plain `http://` URLs in the strings of one Python file (comments, docstrings excluded).

    A file that does not tokenize is searched line by line instead: better noisy than blind.
    """
    lines = source.splitlines()
    try:
        pieces = [(t.start[0], t.string) for t in _string_tokens(source)]
    except (tokenize.TokenError, SyntaxError):
        pieces = list(enumerate(lines, start=1))
    return [
        HttpUse(relative, line, url)
        for start, text in pieces
        for line, url in _urls_in(text, start, lines)
    ]


def scan_plain_http(directory: Path, files: Iterable[str]) -> list[HttpUse]:
    """Plain `http://` URLs across `files` (relative to `directory`)."""
    found: list[HttpUse] = []
    for relative in files:
        source = (directory / relative).read_text(encoding="utf-8", errors="replace")
        found.extend(find_plain_http(relative, source))
    return found


# --- findings ---------------------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _normalised(line: str) -> str:
    return " ".join(line.split())


class _Occurrences:
    """Tells apart identical problems in one file, so each keeps its own stable fingerprint."""

    def __init__(self) -> None:
        self._seen: Counter[tuple[str, ...]] = Counter()

    def identity(self, *key: str) -> tuple[str, ...]:
        n = self._seen[key]
        self._seen[key] += 1
        return (key[-1],) if n == 0 else (key[-1], str(n))


def _bandit_message(issue: BanditIssue) -> str:
    text = "Possible hard-coded password" if issue.test_id in _QUOTES_VALUE else issue.text
    cwe = f" (CWE-{issue.cwe})" if issue.cwe else ""
    return scrub(f"{text}{cwe}")


def _remediation(issue: BanditIssue) -> str:
    known = REMEDIATIONS.get(issue.test_id)
    if known:
        return known
    return f"See {issue.more_info}" if issue.more_info else "See bandit's documentation."


def bandit_findings(context: CheckContext, report: BanditReport) -> list[Finding]:
    """Findings for bandit's issues and for the files it could not parse."""
    seen = _Occurrences()
    findings = []
    for issue in report.issues:
        shown = context.show(issue.path)
        line_hash = _sha256(_normalised(issue.code_line))
        findings.append(
            new_finding(
                check=CHECK,
                rule_id=issue.test_id,
                severity=issue.severity,
                path=shown,
                line=issue.line,
                message=_bandit_message(issue),
                remediation=_remediation(issue),
                identity=seen.identity(issue.test_id, shown, line_hash),
                connector=context.connector,
            )
        )
    findings.extend(_unparsed_finding(context, path, reason) for path, reason in report.errors)
    return findings


def _unparsed_finding(context: CheckContext, relative: str, reason: str) -> Finding:
    shown = context.show(relative)
    return new_finding(
        check=CHECK,
        rule_id=RULE_UNPARSED,
        severity=Severity.MEDIUM,
        path=shown,
        line=0,
        message=scrub(f"bandit could not analyse {shown}: {reason}"),
        remediation="Make the file valid Python 3 so it can be reviewed, or remove it.",
        connector=context.connector,
    )


def http_findings(context: CheckContext, uses: Iterable[HttpUse]) -> list[Finding]:
    """One medium finding per plain `http://` URL."""
    seen = _Occurrences()
    findings = []
    for use in uses:
        shown = context.show(use.path)
        findings.append(
            new_finding(
                check=CHECK,
                rule_id=RULE_PLAIN_HTTP,
                severity=Severity.MEDIUM,
                path=shown,
                line=use.line,
                message=scrub(
                    f"Plain http:// endpoint on host {use.host} in {shown} line {use.line}: "
                    "traffic can be read and altered in transit"
                ),
                remediation="Use https:// for every endpoint outside this machine.",
                identity=seen.identity(shown, _sha256(use.url)),
                connector=context.connector,
            )
        )
    return findings


def _details(context: CheckContext, report: BanditReport, files: int) -> str:
    rules = context.rules.static
    lines = [
        f"bandit analysed {files} Python file(s) at severity >= {_BANDIT_LEVEL[rules.severity]}, "
        f"confidence >= {_BANDIT_LEVEL[rules.confidence]}; tests "
        f"{'included' if rules.include_tests else 'excluded'}.",
    ]
    if report.nosec:
        lines.append(f"{report.nosec} `# nosec` marker(s) were ignored (use a waiver instead).")
    for issue in report.issues:
        if issue.code_line and issue.test_id not in _QUOTES_VALUE:
            code = scrub(issue.code_line.strip()).replace("`", "'")
            lines.append(f"- `{issue.test_id}` {context.show(issue.path)}:{issue.line}: `{code}`")
    return "\n".join(lines)


class StaticCheck(Check):
    """Bandit's findings and plain `http://` endpoints in the connector's Python code.

    Bandit gets the list of files rather than `-r <dir>`: its `-x` exclusions match substrings
    of paths (excluding `tests` would drop `contests.py`), and with `-r` it reads a `.bandit`
    settings file from the scanned tree, which the pull request controls.
    """

    name = CHECK
    version = "1"

    def __init__(self, bandit_command: Sequence[str] = DEFAULT_BANDIT) -> None:
        self.bandit_command = tuple(bandit_command)

    async def run(self, context: CheckContext) -> CheckResult:
        return (await self.run_many([context]))[0]

    async def run_many(self, contexts: Sequence[CheckContext]) -> list[CheckResult]:
        """Bandit starts slowly: one run over every connector's files, split by folder."""
        started = time.monotonic()
        # File walking and reading stay off the event loop (the server keeps serving).
        file_lists = await asyncio.gather(
            *(
                asyncio.to_thread(python_files, c.directory, c.rules.static.include_tests)
                for c in contexts
            )
        )
        work = [(c, files) for c, files in zip(contexts, file_lists, strict=True) if files]
        reports = await self._bandit(work)
        results = []
        for context, files in zip(contexts, file_lists, strict=True):
            report = reports.get(id(context))
            if not files:
                result = CheckResult(CHECK, Conclusion.SKIPPED, "no Python files to analyse")
            elif isinstance(report, ToolError):
                result = could_not_run(CHECK, Conclusion.ERROR, str(report))
            else:
                assert report is not None
                result = await self._conclude(context, files, report)
            results.append(dataclasses.replace(result, duration_s=time.monotonic() - started))
        return results

    async def _bandit(
        self, work: Sequence[tuple[CheckContext, list[str]]]
    ) -> dict[int, BanditReport | ToolError]:
        if not work:
            return {}
        root = Path(os.path.commonpath([str(c.directory) for c, _ in work]))
        relative = [c.directory.relative_to(root).as_posix() for c, _ in work]
        prefixes = ["" if r == "." else r for r in relative]
        every_file = [
            f"{prefix}/{name}" if prefix else name
            for (_, files), prefix in zip(work, prefixes, strict=True)
            for name in files
        ]
        first = work[0][0]
        try:
            report = await run_bandit(
                self.bandit_command,
                root,
                every_file,
                first.rules.static,
                first.settings.timeout_s,
            )
        except ToolError as exc:
            return {id(c): exc for c, _ in work}
        return {id(c): report.under(prefix) for (c, _), prefix in zip(work, prefixes, strict=True)}

    @staticmethod
    async def _conclude(
        context: CheckContext, files: list[str], report: BanditReport
    ) -> CheckResult:
        uses = await asyncio.to_thread(scan_plain_http, context.directory, files)
        findings = [*bandit_findings(context, report), *http_findings(context, uses)]
        return result_from_findings(
            CHECK,
            findings,
            context.rules,
            clean_summary=f"nothing found in {len(files)} Python file(s)",
            details=_details(context, report, len(files)),
            data={"files": len(files), "nosec": report.nosec, "unparsed": len(report.errors)},
        )
