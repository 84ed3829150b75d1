"""Pure helpers: truncation, annotation batches, conclusions, markers, retry decisions."""

from __future__ import annotations

import random

import pytest

from bot.github import Annotation, IssueComment, RepoRef, ReviewComment
from bot.github.models import CheckRunOutput
from bot.github.payloads import (
    TRUNCATION_NOTE,
    annotation_payload,
    batch_annotations,
    find_marked_comment,
    output_payloads,
    review_comment_payload,
    truncate_text,
    with_marker,
)
from bot.github.retry import RetryPolicy, next_delay, rate_limit_wait

POLICY = RetryPolicy()


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("x" * 10, 10, "x" * 10),
        ("x" * 30, 20, "x" * (20 - len(TRUNCATION_NOTE)) + TRUNCATION_NOTE),
        ("x" * 30, 5, TRUNCATION_NOTE[:5]),
    ],
)
def test_truncate_text(text: str, limit: int, expected: str) -> None:
    assert truncate_text(text, limit) == expected
    assert len(truncate_text(text, limit)) <= limit


def _notes(count: int) -> tuple[Annotation, ...]:
    return tuple(Annotation("a.py", i + 1, i + 1, "notice", str(i)) for i in range(count))


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(0, []), (1, [1]), (50, [50]), (51, [50, 1]), (120, [50, 50, 20])],
)
def test_batch_annotations(count: int, sizes: list[int]) -> None:
    batches = batch_annotations(_notes(count))
    assert [len(b) for b in batches] == sizes
    assert [a for b in batches for a in b] == list(_notes(count))


def test_output_payloads_repeat_text_and_split_annotations() -> None:
    payloads = output_payloads(CheckRunOutput("t", "s", "body", annotations=_notes(60)))
    assert [len(p["annotations"]) for p in payloads] == [50, 10]  # type: ignore[arg-type]
    assert all(p["title"] == "t" and p["summary"] == "s" for p in payloads)
    assert output_payloads(CheckRunOutput("t", "s")) == [{"title": "t", "summary": "s"}]


def test_annotation_payload_clips_fields() -> None:
    note = Annotation("a.py", 0, 0, "failure", "m" * 70_000, title="t" * 300)
    payload = annotation_payload(note)
    assert payload["start_line"] == 1 and payload["end_line"] == 1
    assert len(payload["message"]) < 65_536 and len(payload["title"]) == 255  # type: ignore[arg-type]
    assert "raw_details" not in payload


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        (ReviewComment("a.py", 3, "b"), {"path": "a.py", "line": 3, "side": "RIGHT", "body": "b"}),
        (
            ReviewComment("a.py", 5, "b", start_line=2),
            {
                "path": "a.py",
                "line": 5,
                "side": "RIGHT",
                "body": "b",
                "start_line": 2,
                "start_side": "RIGHT",
            },
        ),
        (
            ReviewComment("a.py", 5, "b", start_line=5),
            {"path": "a.py", "line": 5, "side": "RIGHT", "body": "b"},
        ),
    ],
)
def test_review_comment_payload(comment: ReviewComment, expected: dict[str, object]) -> None:
    assert review_comment_payload(comment) == expected


def test_markers() -> None:
    body = with_marker("cg:summary", "hello")
    assert body == "<!-- cg:summary -->\nhello" and with_marker("cg:summary", body) == body
    comments = [
        IssueComment(1, "<!-- cg:summary --> quoted", "mallory", ""),
        IssueComment(2, body, "app[bot]", ""),
    ]
    assert find_marked_comment(comments, "cg:summary", "app[bot]") == comments[1]
    assert find_marked_comment(comments, "cg:other") is None


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (403, {"Retry-After": "12"}, b"", 12.0),
        (429, {"retry-after": "3"}, b"", 3.0),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030"}, b"", 31.0),
        (403, {}, b'{"message": "You have exceeded a secondary rate limit"}', 60.0),
        (429, {}, b"", 0.0),
        (403, {}, b'{"message": "Resource not accessible by integration"}', None),
        (404, {"Retry-After": "5"}, b"", None),
    ],
)
def test_rate_limit_wait(
    status: int, headers: dict[str, str], body: bytes, expected: float | None
) -> None:
    assert rate_limit_wait(status, headers, body, 1000.0, POLICY) == expected


@pytest.mark.parametrize(
    ("attempt", "response", "retried"),
    [
        (1, None, True),
        (1, (502, {}, b""), True),
        (4, (503, {}, b""), True),
        (5, (503, {}, b""), False),  # bounded
        (1, (501, {}, b""), False),
        (1, (404, {}, b""), False),
        (1, (422, {}, b""), False),
        (1, (200, {}, b""), False),
    ],
)
def test_next_delay(
    attempt: int, response: tuple[int, dict[str, str], bytes] | None, retried: bool
) -> None:
    delay = next_delay(attempt, response, policy=POLICY, rng=random.Random(0), now=0.0)
    assert (delay is not None) == retried


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(0)
    delays = [next_delay(a, None, policy=POLICY, rng=rng, now=0) for a in (1, 2, 3, 4)]
    assert [round(d or 0, 3) for d in delays] == sorted(round(d or 0, 3) for d in delays)
    policy = RetryPolicy(max_attempts=20, max_delay=4.0)
    assert all((next_delay(a, None, policy=policy, rng=rng, now=0) or 0) <= 4 for a in range(1, 19))


@pytest.mark.parametrize(
    ("text", "ok"), [("acme/connectors", True), ("acme", False), ("a/b/c", False), ("/x", False)]
)
def test_repo_ref_parse(text: str, ok: bool) -> None:
    if ok:
        assert RepoRef.parse(text).full_name == text
    else:
        with pytest.raises(ValueError):
            RepoRef.parse(text)
