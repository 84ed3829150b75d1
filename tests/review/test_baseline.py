"""Which pushes record baselines and which performance results are worth keeping (pure parts)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.github import RepoRef
from bot.review.baseline import baseline_record, push_facts, pushed_paths, wants_performance
from bot.storage import PerfBaselineRecord
from checks.model import CheckResult, Conclusion

PUSH = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "push" / "push.json"
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SHA = "a" * 40


def _example() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(PUSH.read_text())
    return payload


def _payload(**changes: Any) -> dict[str, Any]:
    """GitHub's example made a live push (it deletes a tag), then changed."""
    return {**_example(), "after": SHA, "deleted": False, **changes}


def test_github_example_deletes_a_tag_and_lands_nowhere() -> None:
    facts = push_facts(_example())
    assert facts.repo == RepoRef("Codertocat", "Hello-World")
    assert (facts.branch, facts.default_branch, facts.paths) == ("", "master", ())
    assert facts.deleted and not facts.lands_on_default_branch


@pytest.mark.parametrize(
    ("changes", "lands"),
    [
        ({"ref": "refs/heads/master"}, True),
        ({"ref": "refs/heads/feature"}, False),
        ({"ref": "refs/tags/master"}, False),
        ({"ref": "refs/heads/master", "deleted": True}, False),
        ({"ref": "refs/heads/master", "after": "0" * 40}, False),
    ],
)
def test_only_a_live_default_branch_counts(changes: dict[str, Any], lands: bool) -> None:
    assert push_facts(_payload(**changes)).lands_on_default_branch is lands


def test_pushed_paths_are_added_and_modified_files_of_every_commit() -> None:
    commits: list[object] = [
        {"added": ["c/a/x.py"], "modified": ["c/a/y.py"], "removed": ["c/gone/z.py"]},
        {"added": [], "modified": ["README.md", "c/a/x.py"]},
        "not a commit",
        {"added": None},
    ]
    assert pushed_paths(commits) == ("README.md", "c/a/x.py", "c/a/y.py")


def _result(conclusion: Conclusion, data: dict[str, object]) -> CheckResult:
    return CheckResult("performance", conclusion, "summary", data=data)


FIGURES = {"p95_ms": 4.5, "rps": 800.0, "error_rate": 0.0}


@pytest.mark.parametrize(
    ("result", "kept"),
    [
        (_result(Conclusion.SUCCESS, {"verdict": "pass", **FIGURES}), True),
        (_result(Conclusion.FAILURE, {"verdict": "fail", **FIGURES}), True),
        (_result(Conclusion.FAILURE, {"verdict": "invalid", **FIGURES}), False),
        (_result(Conclusion.NEUTRAL, {"verdict": "invalid", "reason": "k6 missing"}), False),
        (_result(Conclusion.SKIPPED, {}), False),
        (_result(Conclusion.ERROR, {}), False),
        (_result(Conclusion.SUCCESS, {"verdict": "pass", "p95_ms": 4.5, "rps": 800.0}), False),
        (_result(Conclusion.SUCCESS, {"verdict": "pass", **FIGURES, "rps": True}), False),
    ],
)
def test_only_judged_runs_become_baselines(result: CheckResult, kept: bool) -> None:
    record = baseline_record("acme/c", "acme-weather", result, SHA, AT)
    if kept:
        assert record == PerfBaselineRecord("acme/c", "acme-weather", 4.5, 800.0, 0.0, SHA, AT)
    else:
        assert record is None


@pytest.mark.parametrize(
    ("only", "wanted"),
    [
        ((), True),
        (("performance",), True),
        (("connector-gate/performance", "tests"), True),
        (("secrets",), False),
        (("connector-gate/tests",), False),
    ],
)
def test_performance_is_wanted_when_selected(only: tuple[str, ...], wanted: bool) -> None:
    assert wants_performance(only) is wanted
