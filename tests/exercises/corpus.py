"""Running the variant corpus (``variants/``) through the checker, for the per-lesson test modules."""

from __future__ import annotations

from resnet_tutorial import exercises as E

from .variants import Variant


def assert_verdict(v: Variant) -> None:
    """A correct variant passes; a wrong one is rejected, with the mistake the corpus lists named in the report."""
    result = E.check(v.exercise, v.fn, record=False)
    if v.correct:
        assert result.passed, f"a correct solution ({v.note}) was rejected:\n{result.message}"
        return
    assert result.status == "failed" and not result.passed, f"a wrong solution ({v.note}) was accepted"
    assert result.tried.startswith("case ") and result.diagnosis, result.message
    if v.mistake is not None:
        assert v.mistake in result.mistakes, f"{v.note}: expected {v.mistake!r}, named {result.mistakes}:\n{result.message}"
        named = [m for m in E.get_exercise(v.exercise).mistakes if m.name == v.mistake]
        if named:  # the exercise's own mistake: its diagnosis is in the report, word for word
            assert named[0].diagnosis in result.diagnosis, result.message
