"""Tests of the assignment of approvers to rules (one person, one rule)."""

from __future__ import annotations

import pytest

from bot.gate.approvals import assign_approvers

F = frozenset

CASES = [
    ("one rule one approver", [(1, F({"a"}))], {0: ["a"]}),
    ("shared member goes where needed", [(1, F({"a", "b"})), (1, F({"a"}))], {0: ["b"], 1: ["a"]}),
    ("one person cannot fill two rules", [(1, F({"a"})), (1, F({"a"}))], {0: ["a"], 1: []}),
    ("count of two", [(2, F({"a", "b", "c"}))], {0: ["a", "b"]}),
    (
        "satisfy more rules rather than partially fill",
        [(2, F({"a", "b"})), (1, F({"a"})), (1, F({"b"}))],
        {0: [], 1: ["a"], 2: ["b"]},
    ),
    (
        "unsatisfied rule shows partial progress",
        [(1, F({"a"})), (2, F({"a", "b"}))],
        {0: ["a"], 1: ["b"]},
    ),
    ("nobody", [(1, F())], {0: []}),
    ("no rules", [], {}),
]


@pytest.mark.parametrize(("name", "needs", "expected"), CASES, ids=[c[0] for c in CASES])
def test_assign(
    name: str, needs: list[tuple[int, frozenset[str]]], expected: dict[int, list[str]]
) -> None:
    assert {k: sorted(v) for k, v in assign_approvers(needs).items()} == expected


def test_each_person_counted_once() -> None:
    needs = [(2, F({"a", "b", "c"})), (2, F({"b", "c", "d"})), (1, F({"a", "d"}))]
    assigned = assign_approvers(needs)
    people = [p for logins in assigned.values() for p in logins]
    assert len(people) == len(set(people))
    satisfied = sum(len(assigned[i]) >= need for i, (need, _) in enumerate(needs))
    assert satisfied == 2
