"""Strict parser of the repository rules (`.github/connector-gate.yml`), with org-level layers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from checks.manifest_model import AUTH_TYPES, DATA_CLASSIFICATIONS
from checks.model import FINDING_ID_PREFIX, Severity
from checks.rules_model import (
    RULES_PATH,
    ApprovalCondition,
    ApprovalRule,
    IgnoreEntry,
    ManifestRules,
    PerformanceRules,
    RiskRaise,
    RiskRules,
    Rules,
    SandboxRules,
    StaticRules,
    TestsRules,
    WaiverRules,
)
from checks.yamlload import (
    YamlDocument,
    as_bool,
    as_choice,
    as_int,
    as_list,
    as_mapping,
    as_number,
    as_str,
    as_str_list,
    check_keys,
    load_yaml_mapping,
    read_bounded,
    read_optional,
    read_required,
    wrong_type,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    D = TypeVar("D", bound=DataclassInstance)

Reader = Callable[[YamlDocument, str, object], object]
"""Reads one raw value at a dotted path into its typed form, or raises ConfigError."""

ORG_RULES_PATH = "connector-gate.yml"
"""Path of the org-wide defaults inside the organisation's `.github` repository."""

CHECK_NAMES = tuple(FINDING_ID_PREFIX)
"""Check names a waiver category may name."""

_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NONE: tuple[str, ...] = ()
_BANDIT_LEVELS = ("low", "medium", "high")
_LOCAL_INDEX = re.compile(r"http://(?:localhost|127\.0\.0\.1|\[::1\])(?::[0-9]+)?(?:/.*)?")


# ---------------------------------------------------------------------------------------------
# Entry points


def load_rules(path: Path | None) -> Rules:
    """Rules from a file; an absent file (or None) means the defaults, `Rules()`."""
    if path is None or not path.exists():
        return Rules()
    data = read_bounded(path, source=str(path), follow_symlinks=True)
    return parse_rules(data, source=str(path))


def parse_rules(text: str | bytes, *, source: str) -> Rules:
    """Parse one rules file; any problem is a ConfigError naming file, line and key."""
    return parse_rules_layered([(source, text)])


def parse_rules_layered(texts: Sequence[tuple[str, str | bytes]]) -> Rules:
    """Parse (source, text) layers; a later layer replaces earlier ones key by key (top level).

    Typical layers: the organisation's `.github` repository `connector-gate.yml`, then the
    repository's `.github/connector-gate.yml`. Validation runs on the merged result, so a risk
    rule in one layer may name an approval rule defined in another.
    """
    if not texts:
        return Rules()
    docs = [load_yaml_mapping(text, source=src, allow_empty=True) for src, text in texts]
    merged = merge_documents(docs)
    rules = _rules_from(merged)
    source = " + ".join(src for src, _ in texts)
    return dataclasses.replace(rules, source=source, digest=_digest(merged.data))


def merge_rules(
    org_defaults_text: str | bytes,
    repo_text: str | bytes,
    *,
    org_source: str = f".github:{ORG_RULES_PATH}",
    repo_source: str = RULES_PATH,
) -> Rules:
    """Org defaults overridden by the repository's rules at top-level-key granularity."""
    return parse_rules_layered([(org_source, org_defaults_text), (repo_source, repo_text)])


def merge_documents(docs: Sequence[YamlDocument]) -> YamlDocument:
    """Fold layers: each top-level key (with its lines and source) comes from its last layer."""
    data: dict[str, object] = {}
    lines: dict[str, int] = {}
    sources: dict[str, str] = {}
    for doc in docs:
        for key, value in doc.data.items():
            data[key] = value
            sources[key] = doc.source
            lines = {p: n for p, n in lines.items() if _top(p) != key}
            lines.update({p: n for p, n in doc.lines.items() if _top(p) == key})
    return YamlDocument(data=data, lines=lines, source=docs[-1].source, sources=sources)


def _top(path: str) -> str:
    return path.partition(".")[0]


def _digest(data: Mapping[str, object]) -> str:
    """Hash of the effective rules content; stable across key order and formatting."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=_json_value)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _json_value(value: object) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"unexpected value {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# The whole file


def _rules_from(doc: YamlDocument) -> Rules:
    check_keys(doc, "", doc.data, _SECTIONS)
    # Each reader returns exactly the type of the field it is registered for.
    changes: dict[str, Any] = {key: _SECTIONS[key](doc, key, raw) for key, raw in doc.data.items()}
    rules = dataclasses.replace(Rules(), **changes)
    _check_references(doc, rules)
    return rules


def _section(
    doc: YamlDocument, path: str, value: object, default: D, readers: Mapping[str, Reader]
) -> D:
    """A mapping whose keys are the fields of `default`, each read by its reader."""
    mapping = as_mapping(doc, path, value)
    check_keys(doc, path, mapping, readers)
    changes = {key: readers[key](doc, f"{path}.{key}", raw) for key, raw in mapping.items()}
    return dataclasses.replace(default, **changes)


def _check_references(doc: YamlDocument, rules: Rules) -> None:
    """Risk raises and waiver categories must name approval rules that exist."""
    names = {rule.name for rule in rules.approvals}
    if not names:
        return
    known = ", ".join(sorted(names))
    if "risk" in doc.data:
        for i, raise_ in enumerate(rules.risk.raises):
            for name in raise_.add:
                if name not in names:
                    path = f"risk.raises.{i}.add.{name}"
                    raise doc.error(path, f"'{name}' is not an approval rule (known: {known})")
    given = _given_categories(doc)
    for check, name in rules.waivers.categories.items():
        if check in given and name not in names:
            path = f"waivers.categories.{check}"
            raise doc.error(path, f"'{name}' is not an approval rule (known: {known})")


def _given_categories(doc: YamlDocument) -> set[str]:
    waivers = doc.data.get("waivers")
    categories = waivers.get("categories") if isinstance(waivers, dict) else None
    return set(categories) if isinstance(categories, dict) else set()


# ---------------------------------------------------------------------------------------------
# Scalars shared by several sections


def _globs(doc: YamlDocument, path: str, value: object) -> tuple[str, ...]:
    globs = as_str_list(doc, path, value)
    for i, glob in enumerate(globs):
        if glob.startswith("/") or ".." in glob.split("/"):
            raise doc.error(f"{path}.{i}", f"'{glob}' must be relative to the repository root")
    return globs


def _nonempty_globs(doc: YamlDocument, path: str, value: object) -> tuple[str, ...]:
    globs = _globs(doc, path, value)
    if not globs:
        raise doc.error(path, "must list at least one glob")
    return globs


def _severity(doc: YamlDocument, path: str, value: object) -> Severity:
    return Severity(as_choice(doc, path, value, [s.value for s in Severity]))


def _bandit_level(doc: YamlDocument, path: str, value: object) -> Severity:
    return Severity(as_choice(doc, path, value, _BANDIT_LEVELS))


def _positive_int(doc: YamlDocument, path: str, value: object) -> int:
    return as_int(doc, path, value, minimum=1)


def _non_negative_int(doc: YamlDocument, path: str, value: object) -> int:
    return as_int(doc, path, value, minimum=0)


def _date(doc: YamlDocument, path: str, value: object) -> dt.date:
    """A calendar date written YYYY-MM-DD (quoted or not), without a time."""
    if isinstance(value, dt.datetime):
        raise doc.error(path, "expected a date YYYY-MM-DD, without a time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise doc.error(path, f"invalid date '{value}': {exc}") from None
    raise wrong_type(doc, path, "a date YYYY-MM-DD", value)


# ---------------------------------------------------------------------------------------------
# Sections


def _manifest(doc: YamlDocument, path: str, value: object) -> ManifestRules:
    return _section(doc, path, value, ManifestRules(), _MANIFEST_READERS)


def _allowed_scopes(doc: YamlDocument, path: str, value: object) -> dict[str, tuple[str, ...]]:
    mapping = as_mapping(doc, path, value)
    check_keys(doc, path, mapping, AUTH_TYPES)
    return {auth: as_str_list(doc, f"{path}.{auth}", raw) for auth, raw in mapping.items()}


def _static(doc: YamlDocument, path: str, value: object) -> StaticRules:
    return _section(doc, path, value, StaticRules(), _STATIC_READERS)


def _ignore(doc: YamlDocument, path: str, value: object) -> tuple[IgnoreEntry, ...]:
    items = as_list(doc, path, value)
    return tuple(_ignore_entry(doc, f"{path}.{i}", item) for i, item in enumerate(items))


def _ignore_entry(doc: YamlDocument, path: str, value: object) -> IgnoreEntry:
    entry = as_mapping(doc, path, value)
    check_keys(doc, path, entry, ("id", "rule", "paths", "reason", "expires"))
    if "id" not in entry and "rule" not in entry:
        raise doc.error(path, "an ignore entry needs `id` (a finding or advisory id) or `rule`")
    return IgnoreEntry(
        finding_id=read_optional(doc, path, entry, "id", as_str, ""),
        rule_id=read_optional(doc, path, entry, "rule", as_str, ""),
        paths=read_optional(doc, path, entry, "paths", _globs, _NONE),
        reason=read_required(doc, path, entry, "reason", as_str),
        expires=read_required(doc, path, entry, "expires", _date),
        line=doc.line_of(path),
    )


def _approvals(doc: YamlDocument, path: str, value: object) -> tuple[ApprovalRule, ...]:
    items = as_list(doc, path, value)
    rules = tuple(_approval(doc, f"{path}.{i}", item) for i, item in enumerate(items))
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name in seen:
            first = seen[rule.name]
            raise doc.error(
                f"{path}.{i}.name",
                f"duplicate approval rule name '{rule.name}' (first at line {first})",
            )
        seen[rule.name] = rule.line
    return rules


def _approval(doc: YamlDocument, path: str, value: object) -> ApprovalRule:
    item = as_mapping(doc, path, value)
    check_keys(doc, path, item, ("name", "teams", "users", "count", "when"))
    name = read_required(doc, path, item, "name", _slug)
    teams = read_optional(doc, path, item, "teams", _teams, _NONE)
    users = read_optional(doc, path, item, "users", _users, _NONE)
    if not teams and not users:
        raise doc.error(path, f"approval rule '{name}' needs at least one of `teams` or `users`")
    return ApprovalRule(
        name=name,
        teams=teams,
        users=users,
        count=read_optional(doc, path, item, "count", _positive_int, 1),
        when=read_optional(doc, path, item, "when", _condition, ApprovalCondition()),
        line=doc.line_of(path),
    )


def _slug(doc: YamlDocument, path: str, value: object) -> str:
    text = as_str(doc, path, value)
    if not _SLUG.fullmatch(text):
        raise doc.error(path, f"'{text}' must be letters, digits, '-', '_' or '.'")
    return text


def _teams(doc: YamlDocument, path: str, value: object) -> tuple[str, ...]:
    teams = as_str_list(doc, path, value)
    for i, team in enumerate(teams):
        if not _SLUG.fullmatch(team):
            raise doc.error(
                f"{path}.{i}",
                f"'{team}' is not a team slug; write the slug alone (`security`, not "
                "`@org/security`): teams belong to the repository owner's organisation",
            )
    return teams


def _users(doc: YamlDocument, path: str, value: object) -> tuple[str, ...]:
    users = tuple(user.removeprefix("@") for user in as_str_list(doc, path, value))
    for i, user in enumerate(users):
        if not _LOGIN.fullmatch(user):
            raise doc.error(f"{path}.{i}", f"'{user}' is not a GitHub login")
    return users


def _condition(doc: YamlDocument, path: str, value: object) -> ApprovalCondition:
    return _section(doc, path, value, ApprovalCondition(), _CONDITION_READERS)


def _classifications(doc: YamlDocument, path: str, value: object) -> tuple[str, ...]:
    items = as_list(doc, path, value)
    return tuple(
        as_choice(doc, f"{path}.{i}", item, DATA_CLASSIFICATIONS) for i, item in enumerate(items)
    )


def _risk(doc: YamlDocument, path: str, value: object) -> RiskRules:
    return _section(doc, path, value, RiskRules(), {"raises": _raises})


def _raises(doc: YamlDocument, path: str, value: object) -> tuple[RiskRaise, ...]:
    items = as_list(doc, path, value)
    return tuple(_raise_rule(doc, f"{path}.{i}", item) for i, item in enumerate(items))


def _raise_rule(doc: YamlDocument, path: str, value: object) -> RiskRaise:
    item = as_mapping(doc, path, value)
    check_keys(doc, path, item, ("min_score", "add"))
    return RiskRaise(
        min_score=read_required(doc, path, item, "min_score", _non_negative_int),
        add=read_required(doc, path, item, "add", _additions),
    )


def _additions(doc: YamlDocument, path: str, value: object) -> dict[str, int]:
    add = as_mapping(doc, path, value)
    if not add:
        raise doc.error(path, "must name at least one approval rule")
    return {name: _positive_int(doc, f"{path}.{name}", n) for name, n in add.items()}


def _waivers(doc: YamlDocument, path: str, value: object) -> WaiverRules:
    waivers = _section(doc, path, value, WaiverRules(), _WAIVER_READERS)
    if waivers.default_days > waivers.max_days:
        raise doc.error(
            f"{path}.default_days",
            f"default_days ({waivers.default_days}) exceeds max_days ({waivers.max_days})",
        )
    return waivers


def _categories(doc: YamlDocument, path: str, value: object) -> dict[str, str]:
    """Given categories override the defaults; checks not listed keep theirs."""
    mapping = as_mapping(doc, path, value)
    check_keys(doc, path, mapping, CHECK_NAMES)
    given = {check: _slug(doc, f"{path}.{check}", raw) for check, raw in mapping.items()}
    return {**WaiverRules().categories, **given}


def _tests(doc: YamlDocument, path: str, value: object) -> TestsRules:
    return _section(doc, path, value, TestsRules(), _TESTS_READERS)


def _index_url(doc: YamlDocument, path: str, value: object) -> str:
    url = as_str(doc, path, value, allow_empty=True)
    if url and not (url.startswith("https://") or _LOCAL_INDEX.fullmatch(url)):
        raise doc.error(path, "must be an https:// URL (plain http only for localhost)")
    return url


def _performance(doc: YamlDocument, path: str, value: object) -> PerformanceRules:
    perf = _section(doc, path, value, PerformanceRules(), _PERFORMANCE_READERS)
    if perf.duration_s > perf.max_duration_s:
        raise doc.error(
            f"{path}.duration_s",
            f"duration_s ({perf.duration_s}) exceeds max_duration_s ({perf.max_duration_s})",
        )
    if perf.vus > perf.max_vus:
        raise doc.error(f"{path}.vus", f"vus ({perf.vus}) exceeds max_vus ({perf.max_vus})")
    return perf


def _tolerance(doc: YamlDocument, path: str, value: object) -> float:
    number = as_number(doc, path, value)
    if number < 0:
        raise doc.error(path, f"must be at least 0, got {value}")
    return number


def _sandbox(doc: YamlDocument, path: str, value: object) -> SandboxRules:
    return _section(doc, path, value, SandboxRules(), {"allow_weak_isolation_for_forks": as_bool})


_MANIFEST_READERS: Mapping[str, Reader] = {
    "allowed_scopes": _allowed_scopes,
    "max_rotation_days": _positive_int,
    "denied_egress": as_str_list,
}
_STATIC_READERS: Mapping[str, Reader] = {
    "severity": _bandit_level,
    "confidence": _bandit_level,
    "include_tests": as_bool,
}
_CONDITION_READERS: Mapping[str, Reader] = {
    "changed": _globs,
    "labels": as_str_list,
    "data_classification": _classifications,
    "min_risk": _non_negative_int,
}
_WAIVER_READERS: Mapping[str, Reader] = {
    "default_days": _positive_int,
    "max_days": _positive_int,
    "categories": _categories,
}
_TESTS_READERS: Mapping[str, Reader] = {
    "timeout_s": _positive_int,
    "install_timeout_s": _positive_int,
    "index_url": _index_url,
}
_PERFORMANCE_READERS: Mapping[str, Reader] = {
    "duration_s": _positive_int,
    "max_duration_s": _positive_int,
    "vus": _positive_int,
    "max_vus": _positive_int,
    "regression_tolerance": _tolerance,
    "regression_min_ms": _tolerance,
}
_SECTIONS: Mapping[str, Reader] = {
    "connectors": _nonempty_globs,
    "fail_on": _severity,
    "run_on_drafts": as_bool,
    "manifest": _manifest,
    "static": _static,
    "ignore": _ignore,
    "approvals": _approvals,
    "risk": _risk,
    "waivers": _waivers,
    "tests": _tests,
    "performance": _performance,
    "sandbox": _sandbox,
}

__all__ = [
    "ORG_RULES_PATH",
    "load_rules",
    "merge_documents",
    "merge_rules",
    "parse_rules",
    "parse_rules_layered",
]
