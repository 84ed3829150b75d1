"""One bandit run covers several connectors; each gets only its own findings."""

from __future__ import annotations

from pathlib import Path

from checks.model import Conclusion
from checks.static import StaticCheck
from tests.checks.test_static import context_for

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "connectors"


async def test_examples_in_one_batch_match_separate_runs() -> None:
    contexts = [
        context_for(EXAMPLES / name, f"connectors/{name}")
        for name in ("acme-weather", "leaky-notes")
    ]
    together = await StaticCheck().run_many(contexts)
    apart = [await StaticCheck().run(c) for c in contexts]
    assert [r.conclusion for r in together] == [Conclusion.SUCCESS, Conclusion.FAILURE]
    assert [r.findings for r in together] == [r.findings for r in apart]
    assert {(f.rule_id, f.path, f.start_line) for f in together[1].findings} >= {
        ("B501", "connectors/leaky-notes/leaky_notes/client.py", 20),
        ("B324", "connectors/leaky-notes/leaky_notes/client.py", 13),
    }


async def test_connector_without_python_is_skipped_in_a_batch(tmp_path: Path) -> None:
    empty = tmp_path / "docs-only"
    empty.mkdir()
    (empty / "README.md").write_text("nothing to run\n")
    results = await StaticCheck().run_many(
        [context_for(empty), context_for(EXAMPLES / "leaky-notes")]
    )
    assert [r.conclusion for r in results] == [Conclusion.SKIPPED, Conclusion.FAILURE]


async def test_bandit_failing_is_an_error_for_every_connector_of_the_batch() -> None:
    check = StaticCheck(bandit_command=("/nonexistent/python", "-m", "bandit"))
    contexts = [context_for(EXAMPLES / n) for n in ("acme-weather", "leaky-notes")]
    results = await check.run_many(contexts)
    assert [r.conclusion for r in results] == [Conclusion.ERROR, Conclusion.ERROR]
    assert all("bandit" in r.summary for r in results)
