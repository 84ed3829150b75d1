"""Table-driven tests of `/gate` command parsing and decisions."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from bot.gate.commands import (
    MAX_COMMANDS_PER_COMMENT,
    HelpCommand,
    InvalidCommand,
    RerunCommand,
    StatusCommand,
    UnwaiveCommand,
    WaiveCommand,
    parse_commands,
    parse_line,
)
from bot.gate.decide import (
    HELP_TEXT,
    ActorFacts,
    CommandContext,
    Decision,
    RefreshAction,
    RerunAction,
    UnwaiveAction,
    WaiveAction,
    decide,
)
from bot.gate.model import Waiver
from checks.model import Severity
from tests.gate.factories import OPS, ORG, SECURITY, TODAY, finding, rules

PARSE_CASES = [
    ("/gate help", HelpCommand()),
    ("/gate", HelpCommand()),
    ("/GATE Status", StatusCommand()),
    ("/gate rerun", RerunCommand(())),
    ("/gate rerun tests", RerunCommand(("tests",))),
    ("/gate rerun connector-gate/tests performance tests", RerunCommand(("tests", "performance"))),
    ("/gate waive sec-3f9a2c test fixture", WaiveCommand("sec-3f9a2c", "test fixture")),
    (
        '/gate waive sec-3f9a2c "quoted, with comma"',
        WaiveCommand("sec-3f9a2c", "quoted, with comma"),
    ),
    ("/gate waive sec-3f9a2c \u201csmart quotes\u201d", WaiveCommand("sec-3f9a2c", "smart quotes")),
    ("/gate waive sec-3f9a2c it's a fixture", WaiveCommand("sec-3f9a2c", "it's a fixture")),
    (
        "/gate waive PYSEC-2018-28 no fix yet --until 2025-04-01",
        WaiveCommand("PYSEC-2018-28", "no fix yet", dt.date(2025, 4, 1)),
    ),
    (
        "/gate waive sec-3f9a2c --until=2025-04-01 reason first",
        WaiveCommand("sec-3f9a2c", "reason first", dt.date(2025, 4, 1)),
    ),
    ("/gate waive sec-3f9a2c", InvalidCommand("waive needs a reason after the finding id")),
    ("/gate waive", InvalidCommand("waive needs a finding id first (like `sec-3f9a2c`)")),
    (
        "/gate waive <script> x",
        InvalidCommand("waive needs a finding id first (like `sec-3f9a2c`)"),
    ),
    (
        "/gate waive sec-1 r --until 2025-02-30",
        InvalidCommand("--until needs a date written YYYY-MM-DD"),
    ),
    (
        "/gate waive sec-1 r --until tomorrow",
        InvalidCommand("--until needs a date written YYYY-MM-DD"),
    ),
    (
        "/gate waive sec-1 r --force",
        InvalidCommand("the only option of waive is --until YYYY-MM-DD"),
    ),
    ("/gate unwaive sec-3f9a2c", UnwaiveCommand("sec-3f9a2c")),
    ("/gate unwaive", InvalidCommand("unwaive needs a finding id (like `sec-3f9a2c`)")),
    ("/gate deploy prod", InvalidCommand("unknown command")),
]


@pytest.mark.parametrize(("line", "command"), PARSE_CASES)
def test_parse_line(line: str, command: object) -> None:
    assert parse_line(line) == command


def test_parse_comment_reads_only_gate_lines() -> None:
    body = "\n".join(
        [
            "Thanks! Looks fine.",
            "  /gate rerun tests",
            "> /gate waive sec-111111 quoted reply is not a command",
            "/gateway is not us",
            "```",
            "/gate help inside a code block is an example",
            "```",
            "please /gate status mid-line is not a command",
            "/gate waive sec-3f9a2c fixture --until 2025-04-01",
        ]
    )
    assert parse_commands(body) == (
        RerunCommand(("tests",)),
        WaiveCommand("sec-3f9a2c", "fixture", dt.date(2025, 4, 1)),
    )


def test_parse_caps_commands_per_comment() -> None:
    body = "\n".join(["/gate status"] * 20)
    assert len(parse_commands(body)) == MAX_COMMANDS_PER_COMMENT


LEAK = finding()
PERF = finding(check="performance", severity=Severity.MEDIUM, rule_id="slo.p95")
LOW = dataclasses.replace(finding(severity=Severity.LOW, line=40), blocking=False)
ACTIVE = Waiver(LEAK.finding_id, "fixture", "sam", TODAY)
CONTEXT = CommandContext(
    rules=rules(SECURITY, OPS),
    org=ORG,
    pr_author="author",
    today=TODAY,
    findings=(LEAK, PERF, LOW),
    waivers=(ACTIVE,),
)
SAM = ActorFacts("sam", teams=frozenset({"security"}), permission="read")
OLGA = ActorFacts("olga", teams=frozenset({"ops"}), permission="write")
AUTHOR = ActorFacts("author", teams=frozenset({"security"}), permission="read")
STRANGER = ActorFacts("stranger", permission="read")
WAIVE = WaiveCommand(LEAK.finding_id, "fixture")

DECIDE_CASES = [
    ("help", HelpCommand(), STRANGER, Decision.ALLOWED, "connector-gate commands", None),
    ("status", StatusCommand(), STRANGER, Decision.ALLOWED, "", RefreshAction()),
    (
        "writer reruns",
        RerunCommand(("tests",)),
        OLGA,
        Decision.ALLOWED,
        "Rerunning `tests`.",
        RerunAction(("tests",)),
    ),
    ("author reruns all", RerunCommand(), AUTHOR, Decision.ALLOWED, "Rerunning `manifest`", None),
    (
        "reader may not rerun",
        RerunCommand(),
        STRANGER,
        Decision.REFUSED,
        "Only people with write access",
        None,
    ),
    (
        "unknown check",
        RerunCommand(("lint",)),
        OLGA,
        Decision.REFUSED,
        "Checks are: `manifest`",
        None,
    ),
    (
        "security member waives a secret",
        WAIVE,
        SAM,
        Decision.ALLOWED,
        f"Waived `{LEAK.finding_id}` until 2025-04-09.",
        WaiveAction(Waiver(LEAK.finding_id, "fixture", "sam", dt.date(2025, 4, 9))),
    ),
    (
        "ops member may not waive a secret and is told who may",
        WAIVE,
        OLGA,
        Decision.REFUSED,
        "Only members of the `security` approvers (@acme/security) may.",
        None,
    ),
    (
        "ops member waives a performance finding",
        WaiveCommand(PERF.finding_id, "known slow"),
        OLGA,
        Decision.ALLOWED,
        "Waived",
        None,
    ),
    (
        "author may not waive",
        WAIVE,
        AUTHOR,
        Decision.REFUSED,
        "The author cannot waive their own findings",
        None,
    ),
    (
        "until beyond max is capped and says so",
        WaiveCommand(LEAK.finding_id, "r", TODAY + dt.timedelta(days=400)),
        SAM,
        Decision.ALLOWED,
        "until 2025-06-08 (capped at 90 days).",
        None,
    ),
    (
        "until in the past",
        WaiveCommand(LEAK.finding_id, "r", dt.date(2020, 1, 1)),
        SAM,
        Decision.REFUSED,
        "in the past",
        None,
    ),
    (
        "unknown id lists only blocking ids",
        WaiveCommand("sec-ffffff", "r"),
        SAM,
        Decision.REFUSED,
        "No current finding has id `sec-ffffff`. Blocking findings:\n\n"
        + "\n".join(
            f"- `/gate waive {i} <reason>`" for i in sorted([LEAK.finding_id, PERF.finding_id])
        ),
        None,
    ),
    (
        "non-blocking finding",
        WaiveCommand(LOW.finding_id, "r"),
        SAM,
        Decision.REFUSED,
        "does not block the gate",
        None,
    ),
    (
        "unwaive",
        UnwaiveCommand(LEAK.finding_id.upper()),
        SAM,
        Decision.ALLOWED,
        "Withdrew",
        UnwaiveAction(LEAK.finding_id),
    ),
    (
        "unwaive without waiver",
        UnwaiveCommand(PERF.finding_id),
        OLGA,
        Decision.REFUSED,
        "No active waiver",
        None,
    ),
    (
        "unwaive by a non-member",
        UnwaiveCommand(LEAK.finding_id),
        STRANGER,
        Decision.REFUSED,
        "may not withdraw",
        None,
    ),
    (
        "invalid command answers with help",
        InvalidCommand("unknown command"),
        STRANGER,
        Decision.REFUSED,
        HELP_TEXT,
        None,
    ),
    (
        "bot type is ignored",
        HelpCommand(),
        ActorFacts("ci", is_bot=True),
        Decision.IGNORED,
        "",
        None,
    ),
    (
        "bot login is ignored",
        WAIVE,
        ActorFacts("renovate[bot]", teams=frozenset({"security"})),
        Decision.IGNORED,
        "",
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "command", "actor", "decision", "reply", "action"),
    DECIDE_CASES,
    ids=[c[0] for c in DECIDE_CASES],
)
def test_decide(
    name: str, command: object, actor: ActorFacts, decision: Decision, reply: str, action: object
) -> None:
    outcome = decide(command, actor, CONTEXT)  # type: ignore[arg-type]
    assert outcome.decision is decision
    assert reply in outcome.reply
    if action is not None:
        assert outcome.action == action
    if decision is not Decision.ALLOWED:
        assert outcome.action is None


def test_waive_needs_the_rule_to_exist() -> None:
    context = dataclasses.replace(CONTEXT, rules=rules(OPS))
    outcome = decide(WAIVE, SAM, context)
    assert outcome.decision is Decision.REFUSED
    assert "No approval rule named `security` exists" in outcome.reply


def test_user_listed_in_rule_may_waive() -> None:
    context = dataclasses.replace(
        CONTEXT, rules=rules(dataclasses.replace(SECURITY, users=("Carol",)))
    )
    assert decide(WAIVE, ActorFacts("carol"), context).decision is Decision.ALLOWED


def test_unknown_id_reply_reveals_no_paths_or_messages() -> None:
    reply = decide(WaiveCommand("sec-ffffff", "r"), SAM, CONTEXT).reply
    assert LEAK.path not in reply
    assert LEAK.message not in reply
    assert LOW.finding_id not in reply
