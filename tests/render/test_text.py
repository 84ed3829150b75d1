"""Tests of the markdown helpers and size limits."""

from __future__ import annotations

import pytest

from bot.render.text import (
    TRUNCATION_NOTE,
    cell,
    code,
    neutralise,
    neutralise_prose,
    shorten,
    truncate,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ping @octocat", "ping @\u200boctocat"),
        ("team @acme/ops", "team @\u200bacme/ops"),
        ("mail a@b.c", "mail a@\u200bb.c"),
        ("<!-- connector-gate:summary -->", "&lt;!-- connector-gate:summary --&gt;"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
        ("a & b", "a &amp; b"),
    ],
)
def test_neutralise(text: str, expected: str) -> None:
    assert neutralise(text) == expected


def test_prose_keeps_code_spans_readable_but_breaks_markers() -> None:
    text = "run `/gate waive <id> <reason>` and ping @sam `<!-- connector-gate:summary -->`"
    out = neutralise_prose(text)
    assert "`/gate waive <id> <reason>`" in out
    assert "@\u200bsam" in out
    assert "<!-- connector-gate:summary -->" not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a|b", "a\\|b"),
        ("line one\nline two", "line one<br>line two"),
        ("", " "),
        ("@x <b>", "@\u200bx &lt;b&gt;"),
    ],
)
def test_cell(text: str, expected: str) -> None:
    assert cell(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("plain", "`plain`"), ("has `tick`", "`` has `tick` ``"), ("two\nlines", "`two lines`")],
)
def test_code(text: str, expected: str) -> None:
    assert code(text) == expected


def test_truncate_keeps_short_text() -> None:
    assert truncate("short", 100) == "short"


def test_truncate_cuts_at_a_line_and_says_so() -> None:
    text = "\n".join(f"row {i:05d}" for i in range(20000))
    out = truncate(text, 65535)
    assert len(out) <= 65535
    assert out.endswith(TRUNCATION_NOTE)
    assert out[: -len(TRUNCATION_NOTE)].endswith(("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"))
    assert "\nrow" not in out[-len(TRUNCATION_NOTE) - 3 :]


def test_truncate_never_exceeds_tiny_limits() -> None:
    assert len(truncate("x" * 50, 10)) == 10


def test_shorten() -> None:
    assert shorten("a  b\nc", 10) == "a b c"
    assert shorten("x" * 300, 255) == "x" * 254 + "…"
