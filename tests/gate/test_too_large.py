"""A pull request GitHub cannot list in full is never passed on a partial view."""

from __future__ import annotations

from bot.gate.evaluate import evaluate
from bot.gate.model import Verdict
from tests.gate.factories import all_passing, approve, gate_input, pr, rules


def test_files_beyond_githubs_listing_fail_the_gate_even_when_all_else_passes() -> None:
    everything_fine = gate_input(rules=rules(), checks=all_passing(), reviews=(approve("sam"),))
    assert evaluate(everything_fine).verdict is Verdict.PASS

    truncated = gate_input(
        rules=rules(), checks=all_passing(), reviews=(approve("sam"),), pr=pr(files_truncated=True)
    )
    result = evaluate(truncated)
    assert result.verdict is Verdict.FAIL
    assert "3000" in result.summary
    assert any("Split the pull request" in step for step in result.next_steps)
