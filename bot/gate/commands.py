"""`/gate` commands: parsing a comment into typed commands."""

from __future__ import annotations

import datetime as dt
import re
import shlex
from dataclasses import dataclass

from bot.gate.model import CHECK_RUN_PREFIX

#: Commands read from one comment at most; the rest are ignored (a pasted log is not a script).
MAX_COMMANDS_PER_COMMENT = 5
#: Longest waiver reason kept.
MAX_REASON_CHARS = 500
#: What a finding id or advisory id looks like; anything else is never echoed back.
FINDING_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,79}")

_COMMAND_LINE = re.compile(r"^/gate(?:\s+(?P<rest>.*))?$", re.IGNORECASE)
_FENCE = re.compile(r"^(```|~~~)")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


@dataclass(frozen=True, slots=True)
class HelpCommand:
    """`/gate help`."""


@dataclass(frozen=True, slots=True)
class StatusCommand:
    """`/gate status`: refresh the summary comment."""


@dataclass(frozen=True, slots=True)
class RerunCommand:
    """`/gate rerun [check...]`."""

    checks: tuple[str, ...] = ()
    """Short check names (`tests`); empty means every check."""


@dataclass(frozen=True, slots=True)
class WaiveCommand:
    """`/gate waive <finding-id> <reason> [--until YYYY-MM-DD]`."""

    finding_id: str
    """Id as typed (format already validated)."""
    reason: str
    """Why the finding is acceptable."""
    until: dt.date | None = None
    """Requested last day; None means the rules' default."""


@dataclass(frozen=True, slots=True)
class UnwaiveCommand:
    """`/gate unwaive <finding-id>`."""

    finding_id: str
    """Id as typed (format already validated)."""


@dataclass(frozen=True, slots=True)
class InvalidCommand:
    """A `/gate` line that could not be understood; answered with the help text."""

    problem: str
    """What is wrong, in words that never repeat the user's text."""


Command = (
    HelpCommand | StatusCommand | RerunCommand | WaiveCommand | UnwaiveCommand | InvalidCommand
)


def command_lines(body: str) -> list[str]:
    """Lines starting with `/gate`, outside fenced code blocks (quoted help is not a command)."""
    lines, fenced = [], False
    for raw in body.splitlines():
        line = raw.strip()
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and _COMMAND_LINE.match(line):
            lines.append(line)
    return lines[:MAX_COMMANDS_PER_COMMENT]


def parse_commands(body: str) -> tuple[Command, ...]:
    """Every `/gate` command of a comment, in order (at most MAX_COMMANDS_PER_COMMENT)."""
    return tuple(parse_line(line) for line in command_lines(body))


def parse_line(line: str) -> Command:
    """One `/gate ...` line as a command."""
    match = _COMMAND_LINE.match(line.strip())
    if match is None:
        return InvalidCommand("not a /gate command")
    words = _words((match.group("rest") or "").translate(_SMART_QUOTES))
    if not words:
        return HelpCommand()
    verb, args = words[0].lower(), words[1:]
    parser = _PARSERS.get(verb)
    return parser(args) if parser else InvalidCommand("unknown command")


def _words(text: str) -> list[str]:
    """Shell-style words, so reasons can be quoted; a lone apostrophe (`it's`) splits plainly."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _help(_args: list[str]) -> Command:
    return HelpCommand()


def _status(_args: list[str]) -> Command:
    return StatusCommand()


def short_check_name(name: str) -> str:
    """`connector-gate/tests` and `tests` both name the `tests` check."""
    lowered = name.lower()
    return lowered.removeprefix(CHECK_RUN_PREFIX)


def _rerun(args: list[str]) -> Command:
    return RerunCommand(tuple(dict.fromkeys(short_check_name(a) for a in args)))


def _finding_id(args: list[str]) -> str | None:
    if not args or not FINDING_ID_RE.fullmatch(args[0]):
        return None
    return args[0]


def _waive(args: list[str]) -> Command:
    finding_id = _finding_id(args)
    if finding_id is None:
        return InvalidCommand("waive needs a finding id first (like `sec-3f9a2c`)")
    until, rest, problem = _take_until(args[1:])
    if problem:
        return InvalidCommand(problem)
    reason = " ".join(rest).strip()
    if not reason:
        return InvalidCommand("waive needs a reason after the finding id")
    return WaiveCommand(finding_id, reason[:MAX_REASON_CHARS], until)


def _take_until(args: list[str]) -> tuple[dt.date | None, list[str], str]:
    """Split `--until DATE` / `--until=DATE` from the reason words."""
    until: dt.date | None = None
    rest: list[str] = []
    words = iter(args)
    for word in words:
        if word == "--until" or word.startswith("--until="):
            value = word.partition("=")[2] or next(words, "")
            until = _parse_date(value)
            if until is None:
                return None, [], "--until needs a date written YYYY-MM-DD"
        elif word.startswith("--"):
            return None, [], "the only option of waive is --until YYYY-MM-DD"
        else:
            rest.append(word)
    return until, rest, ""


def _parse_date(value: str) -> dt.date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _unwaive(args: list[str]) -> Command:
    finding_id = _finding_id(args)
    if finding_id is None:
        return InvalidCommand("unwaive needs a finding id (like `sec-3f9a2c`)")
    return UnwaiveCommand(finding_id)


_PARSERS = {
    "help": _help,
    "status": _status,
    "rerun": _rerun,
    "waive": _waive,
    "unwaive": _unwaive,
}
