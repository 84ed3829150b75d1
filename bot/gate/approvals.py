"""Which reviews count, and who counts for which approval rule."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.gate.model import Review, ReviewState
from checks.rules_model import ApprovalRule

#: Beyond this many rules, subsets are not enumerated; rules are served in file order.
MAX_RULES_FOR_EXACT_MATCHING = 12


def is_bot_login(login: str) -> bool:
    """GitHub Apps act as `name[bot]`; their reviews and commands never count."""
    return login.lower().endswith("[bot]")


def latest_reviews(reviews: Iterable[Review]) -> dict[str, Review]:
    """Latest deciding review per reviewer (login lower-cased); comments decide nothing."""
    latest: dict[str, Review] = {}
    for review in sorted(reviews, key=lambda r: r.submitted_at):
        if review.state in (ReviewState.COMMENTED, ReviewState.PENDING):
            continue
        latest[review.user.lower()] = review
    return latest


def is_member(login: str, rule: ApprovalRule, memberships: Mapping[str, frozenset[str]]) -> bool:
    """Whether `login` is in one of the rule's teams or among its users."""
    lowered = login.lower()
    if lowered in {user.lower().lstrip("@") for user in rule.users}:
        return True
    teams = _teams_of(login, memberships)
    return any(team.lower() in teams for team in rule.teams)


def _teams_of(login: str, memberships: Mapping[str, frozenset[str]]) -> set[str]:
    lowered = login.lower()
    found: set[str] = set()
    for member, teams in memberships.items():
        if member.lower() == lowered:
            found |= {team.lower() for team in teams}
    return found


@dataclass(frozen=True, slots=True)
class Slot:
    """One approval a rule needs (a rule needing two approvals has two slots)."""

    rule: int
    """Index of the rule in the list being matched."""
    eligible: frozenset[str]
    """Logins who may fill it."""


def assign_approvers(
    needs: Sequence[tuple[int, frozenset[str]]],
) -> dict[int, list[str]]:
    """Give each approver to at most one rule so that as many rules as possible are satisfied.

    `needs[i]` is (approvals rule i needs, logins who approved and may count for it). Subsets of
    rules are tried largest first (bipartite matching decides whether a subset can be fully
    staffed); the best subset is then topped up so unsatisfied rules show partial progress.
    """
    best = _best_satisfiable(needs)
    rest = [rule for rule in range(len(needs)) if rule not in best]
    slots = [Slot(rule, needs[rule][1]) for rule in (*best, *rest) for _ in range(needs[rule][0])]
    assigned: dict[int, list[str]] = {rule: [] for rule in range(len(needs))}
    for slot, login in _match(slots):
        assigned[slot.rule].append(login)
    return assigned


def _best_satisfiable(needs: Sequence[tuple[int, frozenset[str]]]) -> tuple[int, ...]:
    """The largest set of rules that can all be satisfied at once (earlier rules win ties)."""
    indices = range(len(needs))
    if len(needs) > MAX_RULES_FOR_EXACT_MATCHING:
        return tuple(indices)
    for size in range(len(needs), 0, -1):
        for subset in itertools.combinations(indices, size):
            slots = [Slot(i, needs[i][1]) for i in subset for _ in range(needs[i][0])]
            if len(_match(slots)) == len(slots):
                return subset
    return ()


def _match(slots: list[Slot]) -> list[tuple[Slot, str]]:
    """Maximum bipartite matching of slots to logins (Kuhn's augmenting paths).

    Slots are augmented in order and an augmenting path never uncovers a covered slot, so when
    the first slots can all be filled together, they all end up filled.
    """
    holder: dict[str, int] = {}
    for index in range(len(slots)):
        _augment(index, slots, holder, set())
    return sorted(((slots[i], login) for login, i in holder.items()), key=lambda p: p[1])


def _augment(index: int, slots: list[Slot], holder: dict[str, int], seen: set[str]) -> bool:
    for login in sorted(slots[index].eligible):
        if login in seen:
            continue
        seen.add(login)
        if login not in holder or _augment(holder[login], slots, holder, seen):
            holder[login] = index
            return True
    return False
