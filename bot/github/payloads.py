"""Pure helpers that shape request bodies: truncation, annotation batches, conclusions, markers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.github.models import (
    Annotation,
    CheckRunOutput,
    IssueComment,
    ReviewComment,
)

#: GitHub's limit for a check run's `summary` and `text` (characters).
MAX_OUTPUT_CHARS = 65_535
#: GitHub accepts at most this many annotations per create/update request.
MAX_ANNOTATIONS_PER_REQUEST = 50
#: GitHub's limits for one annotation's title and message/raw_details.
MAX_ANNOTATION_TITLE = 255
MAX_ANNOTATION_MESSAGE = 64 * 1024 - 1
TRUNCATION_NOTE = "\n\n… truncated"


def truncate_text(text: str, limit: int = MAX_OUTPUT_CHARS, note: str = TRUNCATION_NOTE) -> str:
    """`text` if it fits in `limit` characters, else its head plus a visible note."""
    if len(text) <= limit:
        return text
    if limit <= len(note):
        return note[:limit]
    return text[: limit - len(note)] + note


def batch_annotations(
    annotations: Sequence[Annotation], size: int = MAX_ANNOTATIONS_PER_REQUEST
) -> tuple[tuple[Annotation, ...], ...]:
    """Split annotations into request-sized batches, keeping their order."""
    if size < 1:
        raise ValueError("batch size must be positive")
    return tuple(tuple(annotations[i : i + size]) for i in range(0, len(annotations), size))


def annotation_payload(annotation: Annotation) -> dict[str, object]:
    """One annotation as GitHub's JSON, clipped to GitHub's field limits."""
    payload: dict[str, object] = {
        "path": annotation.path,
        "start_line": max(annotation.start_line, 1),
        "end_line": max(annotation.end_line, annotation.start_line, 1),
        "annotation_level": annotation.level,
        "message": truncate_text(annotation.message, MAX_ANNOTATION_MESSAGE),
    }
    if annotation.title:
        payload["title"] = truncate_text(annotation.title, MAX_ANNOTATION_TITLE, "…")
    if annotation.raw_details:
        payload["raw_details"] = truncate_text(annotation.raw_details, MAX_ANNOTATION_MESSAGE)
    return payload


def output_payloads(output: CheckRunOutput) -> list[dict[str, object]]:
    """The `output` objects to send, one per request: the first carries the text, each ≤ 50
    annotations (GitHub appends annotations across updates)."""
    base: dict[str, object] = {
        "title": truncate_text(output.title, 1000, "…"),
        "summary": truncate_text(output.summary),
    }
    if output.text:
        base["text"] = truncate_text(output.text)
    batches = batch_annotations(output.annotations) or ((),)
    payloads = []
    for batch in batches:
        payload = dict(base)
        if batch:
            payload["annotations"] = [annotation_payload(a) for a in batch]
        payloads.append(payload)
    return payloads


def review_comment_payload(comment: ReviewComment) -> dict[str, object]:
    """An inline review comment on the new side (RIGHT) of the diff."""
    payload: dict[str, object] = {
        "path": comment.path,
        "line": comment.line,
        "side": "RIGHT",
        "body": comment.body,
    }
    if comment.start_line is not None and comment.start_line < comment.line:
        payload["start_line"] = comment.start_line
        payload["start_side"] = "RIGHT"
    return payload


def marker_comment(marker: str) -> str:
    """The hidden HTML comment that lets the bot find its own sticky comment again."""
    return f"<!-- {marker} -->"


def with_marker(marker: str, body: str) -> str:
    """`body` carrying the hidden marker on its first line (added once)."""
    hidden = marker_comment(marker)
    return body if hidden in body else f"{hidden}\n{body}"


def find_marked_comment(
    comments: Iterable[IssueComment], marker: str, author: str = ""
) -> IssueComment | None:
    """The first comment carrying `marker` (and written by `author`, when given)."""
    hidden = marker_comment(marker)
    for comment in comments:
        if hidden in comment.body and (not author or comment.author == author):
            return comment
    return None
