"""Who may do what with `/gate` commands, and the reply they get."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never

from bot.gate.approval_eval import owners
from bot.gate.approvals import is_bot_login, is_member
from bot.gate.commands import (
    Command,
    HelpCommand,
    InvalidCommand,
    RerunCommand,
    StatusCommand,
    UnwaiveCommand,
    WaiveCommand,
)
from bot.gate.model import CHECK_NAMES, Waiver
from bot.gate.waivers import waiver_period
from checks.model import FINDING_ID_PREFIX, Finding
from checks.rules_model import ApprovalRule, Rules

#: Repository permissions that may rerun checks (besides the pull request's author).
RERUN_PERMISSIONS = frozenset({"admin", "maintain", "write"})
#: Finding ids listed at most in a reply about an unknown id.
MAX_IDS_LISTED = 20

HELP_TEXT = """\
**connector-gate commands** (one per line, each starting with `/gate`):

| Command | What it does | Who may |
| --- | --- | --- |
| `/gate help` | Show this help. | anyone |
| `/gate status` | Refresh the summary comment. | anyone |
| `/gate rerun [check]` | Run every check again, or one (`tests` or `connector-gate/tests`). \
| people with write access, and the author |
| `/gate waive <finding-id> <reason> [--until YYYY-MM-DD]` | Stop a finding from blocking, \
until the date (default and longest validity come from the rules). | members of the approval \
rule that owns the finding's check |
| `/gate unwaive <finding-id>` | Withdraw a waiver. | the same people |

Quote a reason with spaces if you like: `/gate waive sec-3f9a2c "test fixture, not a real key"`.
"""


class Decision(StrEnum):
    """What becomes of a command."""

    ALLOWED = "allowed"
    REFUSED = "refused"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class ActorFacts:
    """The person (or bot) who wrote the command."""

    login: str
    """Their login."""
    is_bot: bool = False
    """True when GitHub reports the account type as Bot."""
    permission: str = "none"
    """Their permission on the repository (`admin`, `maintain`, `write`, `triage`, `read`...)."""
    teams: frozenset[str] = frozenset()
    """Team slugs of the owner's organisation they belong to, as fetched."""


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What a decision needs to know about the pull request."""

    rules: Rules
    """Rules in force (an invalid rules file leaves no one able to waive)."""
    org: str
    """Owner of the repository, to show teams as `@org/team`."""
    pr_author: str
    """Login of the pull request's author."""
    today: dt.date
    """Date waivers start from."""
    findings: tuple[Finding, ...] = ()
    """Current findings of the head commit, waivers applied."""
    waivers: tuple[Waiver, ...] = ()
    """Waivers recorded for the pull request."""
    checks: tuple[str, ...] = CHECK_NAMES
    """Check names that exist."""


@dataclass(frozen=True, slots=True)
class RerunAction:
    """Run checks again."""

    checks: tuple[str, ...]
    """Short names of the checks to run."""


@dataclass(frozen=True, slots=True)
class WaiveAction:
    """Record a waiver."""

    waiver: Waiver
    """The waiver to store."""


@dataclass(frozen=True, slots=True)
class UnwaiveAction:
    """Delete the waivers of a finding."""

    finding_id: str
    """Id of the finding whose waivers go."""


@dataclass(frozen=True, slots=True)
class RefreshAction:
    """Re-evaluate the gate and update the summary comment."""


Action = RerunAction | WaiveAction | UnwaiveAction | RefreshAction


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """The decision on one command and the reply to post (markdown)."""

    decision: Decision
    """Allowed, refused, or ignored (bots)."""
    reply: str = ""
    """Markdown reply; empty when nothing needs saying."""
    action: Action | None = None
    """What the caller must do when allowed."""


@dataclass(frozen=True, slots=True)
class _Refusal:
    reply: str


def is_bot(actor: ActorFacts) -> bool:
    """Bots (type Bot, or a login ending `[bot]`) are never obeyed, to avoid bot ping-pong."""
    return actor.is_bot or is_bot_login(actor.login)


def decide(command: Command, actor: ActorFacts, context: CommandContext) -> CommandOutcome:
    """Whether `actor` may run `command` here, what to do, and what to reply."""
    if is_bot(actor):
        return CommandOutcome(Decision.IGNORED)
    if isinstance(command, HelpCommand):
        return CommandOutcome(Decision.ALLOWED, HELP_TEXT)
    if isinstance(command, StatusCommand):
        return CommandOutcome(Decision.ALLOWED, "", RefreshAction())
    if isinstance(command, RerunCommand):
        return decide_rerun(command, actor, context)
    if isinstance(command, WaiveCommand):
        return decide_waive(command, actor, context)
    if isinstance(command, UnwaiveCommand):
        return decide_unwaive(command, actor, context)
    if isinstance(command, InvalidCommand):
        return CommandOutcome(Decision.REFUSED, f"Sorry, {command.problem}.\n\n{HELP_TEXT}")
    assert_never(command)


def _refused(text: str) -> CommandOutcome:
    return CommandOutcome(Decision.REFUSED, text)


def decide_rerun(command: RerunCommand, actor: ActorFacts, ctx: CommandContext) -> CommandOutcome:
    """Writers and the author may rerun; unknown check names are refused with the known ones."""
    is_author = actor.login.lower() == ctx.pr_author.lower()
    if actor.permission not in RERUN_PERMISSIONS and not is_author:
        return _refused("Only people with write access and the author may rerun checks.")
    unknown = [name for name in command.checks if name not in ctx.checks]
    if unknown:
        known = ", ".join(f"`{name}`" for name in ctx.checks)
        return _refused(f"There is no such check. Checks are: {known}.")
    checks = command.checks or ctx.checks
    shown = ", ".join(f"`{name}`" for name in checks)
    return CommandOutcome(Decision.ALLOWED, f"Rerunning {shown}.", RerunAction(checks))


def find_finding(finding_id: str, findings: tuple[Finding, ...]) -> Finding | None:
    """The finding with this id or alias (case-insensitive)."""
    wanted = finding_id.lower()
    for finding in findings:
        if wanted in {finding.finding_id.lower(), *(a.lower() for a in finding.aliases)}:
            return finding
    return None


def check_of_id(finding_id: str, ctx: CommandContext) -> str:
    """The check a finding id belongs to: from the finding, else from the id's prefix."""
    finding = find_finding(finding_id, ctx.findings)
    if finding is not None:
        return finding.check
    by_prefix = {prefix: check for check, prefix in FINDING_ID_PREFIX.items()}
    return by_prefix.get(finding_id.lower().partition("-")[0], "dependencies")


def waiver_rule(check: str, rules: Rules) -> ApprovalRule | None:
    """The approval rule whose members may waive findings of `check` (security by default)."""
    name = rules.waivers.categories.get(check, "security")
    return next((rule for rule in rules.approvals if rule.name == name), None)


def may_waive(actor: ActorFacts, check: str, ctx: CommandContext) -> _Refusal | ApprovalRule:
    """The rule that allows `actor` to waive findings of `check`, or a refusal saying who may."""
    rule = waiver_rule(check, ctx.rules)
    name = ctx.rules.waivers.categories.get(check, "security")
    if rule is None:
        return _Refusal(f"No approval rule named `{name}` exists, so no one may waive this.")
    if actor.login.lower() == ctx.pr_author.lower():
        return _Refusal(f"The author cannot waive their own findings; ask {_who(rule, ctx)}.")
    if not is_member(actor.login, rule, _memberships(actor)):
        return _Refusal(f"Only members of the `{rule.name}` approvers ({_who(rule, ctx)}) may.")
    return rule


def _who(rule: ApprovalRule, ctx: CommandContext) -> str:
    return " or ".join(owners(rule, ctx.org)) or "nobody"


def _memberships(actor: ActorFacts) -> Mapping[str, frozenset[str]]:
    return {actor.login: actor.teams}


def decide_waive(command: WaiveCommand, actor: ActorFacts, ctx: CommandContext) -> CommandOutcome:
    """A member of the owning rule may waive a blocking finding for a bounded period."""
    finding = find_finding(command.finding_id, ctx.findings)
    if finding is None:
        return _refused(unknown_id_reply(command.finding_id, ctx.findings))
    if not finding.blocking and not finding.waived_by:
        return _refused(f"`{finding.finding_id}` does not block the gate; nothing to waive.")
    allowed = may_waive(actor, finding.check, ctx)
    if isinstance(allowed, _Refusal):
        return _refused(f"You may not waive `{finding.finding_id}`. {allowed.reply}")
    if command.until is not None and command.until < ctx.today:
        return _refused("The `--until` date is in the past.")
    period = waiver_period(command.until, ctx.today, ctx.rules.waivers)
    waiver = Waiver(finding.finding_id, command.reason, actor.login, period.until)
    capped = f" (capped at {ctx.rules.waivers.max_days} days)" if period.capped else ""
    reply = f"Waived `{finding.finding_id}` until {period.until.isoformat()}{capped}."
    return CommandOutcome(Decision.ALLOWED, reply, WaiveAction(waiver))


def unknown_id_reply(finding_id: str, findings: tuple[Finding, ...]) -> str:
    """Says the id is unknown and lists current blocking ids only (never paths or messages)."""
    ids = sorted({f.finding_id for f in findings if f.blocking})[:MAX_IDS_LISTED]
    if not ids:
        return f"No current finding has id `{finding_id}`. No finding blocks the gate."
    lines = "\n".join(f"- `/gate waive {i} <reason>`" for i in ids)
    return f"No current finding has id `{finding_id}`. Blocking findings:\n\n{lines}"


def decide_unwaive(
    command: UnwaiveCommand, actor: ActorFacts, ctx: CommandContext
) -> CommandOutcome:
    """The same people who may waive a finding may withdraw its waiver."""
    wanted = command.finding_id.lower()
    existing = [w for w in ctx.waivers if w.finding_id.lower() == wanted and w.active_on(ctx.today)]
    if not existing:
        return _refused(f"No active waiver covers `{command.finding_id}`.")
    allowed = may_waive(actor, check_of_id(command.finding_id, ctx), ctx)
    if isinstance(allowed, _Refusal):
        return _refused(f"You may not withdraw this waiver. {allowed.reply}")
    finding_id = existing[0].finding_id
    reply = f"Withdrew the waiver of `{finding_id}`; it blocks again if it still fails."
    return CommandOutcome(Decision.ALLOWED, reply, UnwaiveAction(finding_id))
