"""Markdown helpers: neutralising user text, table cells, code spans, and GitHub's size limits."""

from __future__ import annotations

import re

#: GitHub's limits (characters): check-run summary and text, comment bodies, annotation parts.
SUMMARY_MAX = 65535
TEXT_MAX = 65535
COMMENT_MAX = 65536
TITLE_MAX = 255
ANNOTATION_TITLE_MAX = 255
ANNOTATION_MESSAGE_MAX = 64 * 1024
ANNOTATIONS_PER_REQUEST = 50

TRUNCATION_NOTE = "\n\n… truncated to fit GitHub's size limit; the full report is in the logs."

_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_ZERO_WIDTH_SPACE = "\u200b"


def neutralise(text: str) -> str:
    """User-controlled text made inert: HTML escaped (no fake markers) and no @-mentions."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION.sub("@" + _ZERO_WIDTH_SPACE, escaped)


_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)


def neutralise_prose(text: str) -> str:
    """Like `neutralise`, but code spans stay readable (`/gate waive <id>`).

    Inside a code span HTML and mentions are already inert; only comment openers are broken so
    no text can pass for one of our hidden markers.
    """
    out, last = [], 0
    for span in _CODE_SPAN.finditer(text):
        out.append(neutralise(text[last : span.start()]))
        out.append(span.group(0).replace("<!--", "<!\u200b--"))
        last = span.end()
    out.append(neutralise(text[last:]))
    return "".join(out)


def cell(text: str) -> str:
    """Text safe inside a markdown table cell: neutralised, pipes escaped, one line."""
    flat = neutralise(text).replace("|", "\\|")
    return "<br>".join(line.strip() for line in flat.strip().splitlines()) or " "


def code(text: str) -> str:
    """An inline code span that holds any text (mentions and HTML are inert inside one)."""
    flat = " ".join(text.split())
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {flat} " if flat.startswith("`") or flat.endswith("`") else flat
    return f"{fence}{padded}{fence}"


def code_cell(text: str) -> str:
    """A code span inside a table cell (GitHub still splits cells on `|` in code spans)."""
    return code(text).replace("|", "\\|")


def truncate(text: str, limit: int, note: str = TRUNCATION_NOTE) -> str:
    """`text` if it fits, else cut at a line boundary with a note saying so (total <= limit)."""
    if len(text) <= limit:
        return text
    room = max(0, limit - len(note))
    cut = text[:room]
    line_end = cut.rfind("\n")
    if line_end > room // 2:
        cut = cut[:line_end]
    return (cut + note)[:limit]


def shorten(text: str, limit: int) -> str:
    """One line of at most `limit` characters, with an ellipsis when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
